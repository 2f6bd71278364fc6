"""The learned-dynamics environments: contract, divergence safety, vector env, bad input."""

from __future__ import annotations

import functools
import math
import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from gymnasium.vector import AutoresetMode
from stable_baselines3.common.env_checker import check_env as sb3_check_env

import physprior  # noqa: F401  (registers physprior/Learned-v0)
from physprior.learned_env import (
    DEFAULT_BOUND,
    LearnedDynamicsEnv,
    LearnedVectorEnv,
    ModelDynamics,
)
from physprior.models import TransitionModel, make
from physprior.training import save_model

PENDULUM = "physprior/Pendulum-v0"
INVERTED = "physprior/InvertedPendulumFull-v0"
ENV_IDS = (PENDULUM, INVERTED)

# Gymnasium's check_env warns about any unbounded Box observation space; the base envs' states
# are unbounded (tests/envs/test_contract.py explains), and the learned env keeps their space.
UNBOUNDED_OBSERVATIONS = r".*Box observation space (minimum|maximum) value is -?infinity.*"
# InvertedPendulumFull keeps v5's action range [-3, 3] (see tests/envs/test_contract.py); the
# learned env keeps the base env's action space, so the checkers warn about the same range.
ASYMMETRIC_ACTIONS = r".*symmetric and normalized.*"


# ---------------------------------------------------------------------------------- models
def random_transitions(env_id: str, n: int = 400, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """`n` random-action transitions of the base env as windows `(n, 2, D)`, actions `(n, 1, A)`."""
    env = gym.make(env_id).unwrapped
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    states, actions = [], []
    for _ in range(n):
        action = env.action_space.sample()
        next_obs, _, terminated, _, _ = env.step(action)
        states.append((obs, next_obs))
        actions.append(action[None])
        obs = env.reset()[0] if terminated else next_obs
    env.close()
    return np.array(states), np.array(actions)


def normalised_model(env_id: str, *, seed: int = 0, scale: float = 1.0) -> TransitionModel:
    """An untrained `mlp` for `env_id` whose normalisers are fitted on real transitions.

    `scale` multiplies every weight: 30 makes a model that blows up within a few steps.
    """
    env = gym.make(env_id).unwrapped
    dims = dict(obs_dim=env.observation_space.shape[0], action_dim=env.action_space.shape[0])
    torch.manual_seed(seed)
    model = make("mlp", **dims, q_dim=env.q_dim, dt=env.dt, env_id=env_id, hidden=32)
    states, actions = random_transitions(env_id)
    model.fit_normalization(torch.as_tensor(states).float(), torch.as_tensor(actions).float())
    with torch.no_grad():
        for linear in model.net.linears:
            linear.weight.mul_(scale)
            linear.bias.mul_(scale)
    return model.eval()


@functools.cache
def _saved(env_id: str, folder: str) -> str:
    return str(save_model(normalised_model(env_id), Path(folder) / env_id.replace("/", "_")))


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory):
    """`checkpoint(env_id)`: the folder of a saved normalised model of `env_id`."""
    folder = str(tmp_path_factory.mktemp("checkpoints"))
    return lambda env_id: _saved(env_id, folder)


@pytest.fixture(scope="module")
def exploding() -> TransitionModel:
    """A Pendulum model with large random weights: its states overflow within a few steps."""
    return normalised_model(PENDULUM, scale=30.0)


# ---------------------------------------------------------------------------------- contract
@pytest.mark.parametrize("env_id", ENV_IDS)
def test_checkers_pass_on_gym_make_from_a_checkpoint(env_id: str, checkpoint) -> None:
    physics = env_id == PENDULUM
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=UNBOUNDED_OBSERVATIONS)
        if not physics:
            warnings.filterwarnings("ignore", message=ASYMMETRIC_ACTIONS)
        env = gym.make(
            "physprior/Learned-v0",
            model_path=checkpoint(env_id),
            base_env_id=env_id,
            render_mode="rgb_array" if physics else None,
        )
        # MuJoCo's offscreen rendering needs an OpenGL backend; the physics envs draw in numpy.
        gym_check_env(env.unwrapped, skip_render_check=not physics)
        sb3_check_env(env, warn=True)
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_spaces_episode_length_and_contract_come_from_the_base_env(env_id: str, checkpoint) -> None:
    env = gym.make("physprior/Learned-v0", model_path=checkpoint(env_id), base_env_id=env_id)
    base = gym.make(env_id)
    core = env.unwrapped
    assert env.observation_space == base.observation_space
    assert env.action_space == base.action_space
    assert core.max_episode_steps == gym.spec(env_id).max_episode_steps
    assert (core.dt, core.q_dim, core.state_layout) == (
        base.unwrapped.dt,
        base.unwrapped.q_dim,
        base.unwrapped.state_layout,
    )
    # Without base_env_id the env recorded in the checkpoint is used.
    same = LearnedDynamicsEnv(model_path=checkpoint(env_id))
    assert same.base_env_id == env_id
    for e in (env, base, same):
        e.close()


def test_reset_seed_gives_the_base_env_initial_state(checkpoint) -> None:
    env = LearnedDynamicsEnv(checkpoint(INVERTED), INVERTED)
    base = gym.make(INVERTED)
    for seed in (0, 5):
        obs, _ = env.reset(seed=seed)
        expected = base.reset(seed=seed)[0].astype(np.float32)  # the model's dtype
        np.testing.assert_array_equal(obs, expected)
        assert obs.dtype == np.float64
    again = [env.reset()[0] for _ in range(3)]
    env.reset(seed=5)
    np.testing.assert_array_equal(again, [env.reset()[0] for _ in range(3)])
    env.close()


def test_initial_states_are_drawn_from_the_given_array(checkpoint) -> None:
    pool = np.array([[0.1, 0.2], [-0.3, 0.4], [0.5, -0.6]])
    env = LearnedDynamicsEnv(checkpoint(PENDULUM), PENDULUM, initial_states=pool)
    starts = {tuple(env.reset(seed=s)[0]) for s in range(30)}
    assert starts == {tuple(row) for row in pool.astype(np.float32).astype(np.float64)}
    np.testing.assert_array_equal(env.reset(seed=3)[0], env.reset(seed=3)[0])


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_and_termination_are_the_base_functions(env_id: str, checkpoint) -> None:
    env = LearnedDynamicsEnv(checkpoint(env_id), env_id)
    core = gym.make(env_id).unwrapped
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    for _ in range(100):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        clipped = np.clip(action, env.action_space.low, env.action_space.high)
        assert reward == pytest.approx(core.reward_fn(obs, clipped, next_obs), abs=1e-5)
        assert terminated == core.termination_fn(next_obs)
        obs = env.reset()[0] if terminated or truncated else next_obs
    env.close()


def test_same_seed_same_rollout(checkpoint) -> None:
    runs = []
    for _ in range(2):
        env = gym.make(
            "physprior/Learned-v0", model_path=checkpoint(PENDULUM), base_env_id=PENDULUM
        )
        env.action_space.seed(1)
        rows = [env.reset(seed=1)[0]]
        for _ in range(20):
            rows.append(env.step(env.action_space.sample())[0])
        runs.append(np.array(rows))
    np.testing.assert_array_equal(*runs)


def test_episode_truncates_at_the_base_length(checkpoint) -> None:
    env = LearnedDynamicsEnv(checkpoint(PENDULUM), PENDULUM, max_episode_steps=5)
    env.reset(seed=0)
    flags = [env.step(np.zeros(1, np.float32))[3] for _ in range(5)]
    assert flags == [False] * 4 + [True]


def test_sac_learns_inside_the_model(checkpoint) -> None:
    from stable_baselines3 import SAC

    env = gym.make("physprior/Learned-v0", model_path=checkpoint(PENDULUM), base_env_id=PENDULUM)
    agent = SAC(
        "MlpPolicy",
        env,
        learning_starts=50,
        batch_size=32,
        train_freq=4,  # 63 gradient steps: enough to exercise learning, seconds on a busy CPU
        policy_kwargs={"net_arch": [16, 16]},
        seed=0,
        device="cpu",
    )
    agent.learn(total_timesteps=300)
    obs, _ = env.reset(seed=0)
    action, _ = agent.predict(obs, deterministic=True)
    assert env.action_space.contains(action)
    assert agent.num_timesteps == 300
    env.close()


# ---------------------------------------------------------------------------------- divergence
@pytest.mark.parametrize("bound", [None, math.inf])
def test_exploding_model_never_leaks_a_non_finite_state_in_100k_vector_steps(
    exploding: TransitionModel, bound: float | None
) -> None:
    pool = random_transitions(PENDULUM, n=200)[0][:, 0]
    envs = LearnedVectorEnv(exploding, PENDULUM, 1000, initial_states=pool, bound=bound)
    envs.action_space.seed(0)
    obs, _ = envs.reset(seed=0)
    diverged = 0
    for _ in range(100):  # 1000 copies x 100 steps
        obs, rewards, _, truncations, info = envs.step(envs.action_space.sample())
        assert np.isfinite(obs).all()
        flags = info["model_diverged"]
        assert flags.dtype == np.bool_ and flags.shape == (1000,)
        assert truncations[flags].all()
        if "final_obs" in info:
            assert np.isfinite(info["final_obs"]).all()
        # Under bound=inf finite states can square to inf in float32: those steps count as
        # diverged, so rewards stay finite too.
        assert np.isfinite(rewards).all()
        diverged += int(flags.sum())
    assert diverged > 1000  # the model did blow up, again and again


def test_exploding_model_in_the_single_env_truncates_with_the_flag(
    exploding: TransitionModel,
) -> None:
    env = LearnedDynamicsEnv(exploding, PENDULUM)
    env.action_space.seed(0)
    obs, _ = env.reset(seed=0)
    divergences = 0
    for _ in range(1500):
        next_obs, reward, _, truncated, info = env.step(env.action_space.sample())
        assert np.isfinite(next_obs).all() and math.isfinite(reward)
        if info["model_diverged"]:
            divergences += 1
            assert truncated
            np.testing.assert_array_equal(next_obs, obs)  # the last finite state is kept
            norm = exploding.state_norm
            assert (np.abs(next_obs - norm.mean.numpy()) <= DEFAULT_BOUND * norm.std.numpy()).all()
        obs = env.reset()[0] if truncated else next_obs
    assert divergences > 50


def test_divergence_covers_non_finite_and_far_out_states(exploding: TransitionModel) -> None:
    dynamics = ModelDynamics(exploding, PENDULUM, bound=10.0)
    mean, std = exploding.state_norm.mean, exploding.state_norm.std
    states = torch.stack(
        [mean, mean + 9.9 * std, mean - 10.1 * std, torch.tensor([math.nan, 0.0]), mean + math.inf]
    )
    assert dynamics.diverged(states).tolist() == [False, False, True, True, True]
    unbounded = ModelDynamics(exploding, PENDULUM, bound=math.inf)
    assert unbounded.diverged(states).tolist() == [False, False, False, True, True]


# ---------------------------------------------------------------------------------- vector env
def test_vector_env_matches_the_single_env_step_for_step(checkpoint) -> None:
    n, steps = 6, 40
    path = checkpoint(INVERTED)
    envs = LearnedVectorEnv(model_path=path, base_env_id=INVERTED, num_envs=n)
    single = LearnedDynamicsEnv(path, INVERTED)
    rng = np.random.default_rng(0)
    starts = rng.uniform(-0.05, 0.05, (n, 4))
    actions = rng.uniform(-3.0, 3.0, (steps, n, 1)).astype(np.float32)
    vec_obs = [envs.reset(options={"state": starts})[0]]
    vec_out = [envs.step(actions[t])[:4] for t in range(steps)]
    for i in range(n):
        np.testing.assert_array_equal(single.reset(options={"state": starts[i]})[0], vec_obs[0][i])
        for t in range(steps):
            obs, reward, terminated, truncated, _ = single.step(actions[t, i])
            v_obs, v_reward, v_term, v_trunc = (x[i] for x in vec_out[t])
            assert (terminated, truncated) == (v_term, v_trunc)
            assert reward == pytest.approx(v_reward, abs=1e-6)
            if terminated or truncated:
                break  # the vector copy has been reset to a new initial state
            np.testing.assert_allclose(obs, v_obs, rtol=1e-6, atol=1e-6)
    envs.close()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.bfloat16])
def test_single_env_one_row_path_equals_the_batched_step(dtype: torch.dtype) -> None:
    # The single env steps one row through numpy (`ModelDynamics.transition_one`): the model
    # too where numpy has its dtype (its `numpy_row_step`), in torch where not (bfloat16).
    model = normalised_model(PENDULUM).to(dtype)
    env = LearnedDynamicsEnv(model, PENDULUM)
    dynamics = env.dynamics
    with torch.no_grad():
        assert (dynamics._numpy_row_step() is None) == (dtype == torch.bfloat16)
    # numpy's BLAS sums in another order than torch's: the same to rounding; torch: exact.
    tolerance = {torch.float32: 2e-6, torch.float64: 1e-13, torch.bfloat16: 0.0}[dtype]
    obs, _ = env.reset(seed=3)
    rng = np.random.default_rng(1)
    for _ in range(30):
        action = rng.uniform(-3.0, 3.0, 1).astype(np.float32)  # beyond the bounds: clipped
        state = torch.as_tensor(obs[None], dtype=dtype)
        expected = dynamics.step(state, torch.as_tensor(action[None], dtype=dtype))
        obs, reward, terminated, truncated, info = env.step(action)
        np.testing.assert_allclose(obs, expected[0][0].double().numpy(), rtol=tolerance, atol=0)
        assert reward == pytest.approx(
            float(expected[1][0]), rel=1e-2 if dtype == torch.bfloat16 else 1e-6
        )
        assert terminated == bool(expected[2][0])
        assert info["model_diverged"] == bool(expected[3][0])
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    envs = LearnedVectorEnv(model, PENDULUM, 3)  # numpy out of any model dtype as well
    vec_obs, _ = envs.reset(seed=0)
    vec_obs, rewards, *_ = envs.step(np.zeros((3, 1), np.float32))
    assert vec_obs.dtype == rewards.dtype == np.float64
    envs.close()


def test_single_env_steps_node_so_through_numpy_and_only_a_lone_mean_model() -> None:
    # node-so's averaged-velocity rule on one row in numpy, on a [q, v] env.
    env_id = "physprior/InvertedPendulumFull-v0"
    torch.manual_seed(0)
    model = make("node-so", obs_dim=4, action_dim=1, q_dim=2, state_layout="qv", dt=0.04,
                 hidden=32, env_id=env_id)  # fmt: skip
    states, actions = random_transitions(env_id, n=200)
    model.fit_normalization(torch.as_tensor(states).float(), torch.as_tensor(actions).float())
    env = LearnedDynamicsEnv(model.eval(), env_id)
    with torch.no_grad():
        assert env.dynamics._numpy_row_step() is not None
    obs, _ = env.reset(seed=0)
    for t in range(20):
        action = np.array([np.sin(t)], np.float32)
        with torch.no_grad():
            expected = model.step(torch.as_tensor(obs[None]), torch.as_tensor(action[None]))
        obs, _, terminated, truncated, _ = env.step(action)
        np.testing.assert_allclose(obs, expected[0].double().numpy(), rtol=2e-5, atol=1e-6)
        if terminated or truncated:
            obs, _ = env.reset()
    pendulum = gym.make(PENDULUM).unwrapped
    probabilistic = make("mlp", obs_dim=2, action_dim=1, q_dim=1, dt=pendulum.dt,
                         probabilistic=True)  # fmt: skip
    for sample in (False, True):  # a draw from the Gaussian stays in torch, with its generator
        dynamics = LearnedDynamicsEnv(probabilistic, PENDULUM, sample=sample).dynamics
        with torch.no_grad():
            assert (dynamics._numpy_row_step() is None) == sample


def test_vector_env_spaces_autoreset_and_counters(checkpoint) -> None:
    n = 4
    envs = LearnedVectorEnv(checkpoint(PENDULUM), PENDULUM, n, max_episode_steps=3)
    assert envs.metadata["autoreset_mode"] is AutoresetMode.SAME_STEP
    assert envs.single_observation_space == gym.make(PENDULUM).observation_space
    assert envs.observation_space.shape == (n, 2) and envs.action_space.shape == (n, 1)
    obs, _ = envs.reset(seed=0)
    assert envs.observation_space.contains(obs)
    zero = np.zeros((n, 1), np.float32)
    envs.step(zero)
    envs.step(zero)
    # A partial reset restarts only the masked copies' counters.
    envs.reset(options={"reset_mask": np.array([True, False, False, False])})
    _, _, _, truncations, info = envs.step(zero)
    assert truncations.tolist() == [False, True, True, True]
    assert info["_final_obs"].tolist() == [False, True, True, True]
    envs.step(zero)
    obs, _, _, truncations, info = envs.step(zero)
    assert truncations.tolist() == [True, False, False, False]
    np.testing.assert_array_equal(info["final_obs"][1:], obs[1:])
    assert not np.array_equal(info["final_obs"][0], obs[0])  # copy 0 restarted this step


def test_vector_env_seeding_and_record_episode_statistics(checkpoint) -> None:
    path = checkpoint(INVERTED)
    envs = LearnedVectorEnv(path, INVERTED, 3)
    first = envs.reset(seed=4)[0]
    np.testing.assert_array_equal(first, envs.reset(seed=4)[0])
    single = LearnedDynamicsEnv(path, INVERTED)
    np.testing.assert_array_equal(first[0], single.reset(seed=4)[0])
    # Gymnasium's vector wrappers read the autoreset mode from the metadata.
    wrapped = gym.wrappers.vector.RecordEpisodeStatistics(envs)
    wrapped.reset(seed=0)
    ended = 0
    for _ in range(200):
        _, _, terminations, truncations, info = wrapped.step(np.full((3, 1), 3.0, np.float32))
        ended += int((terminations | truncations).sum())
        if "episode" in info:
            assert (info["episode"]["l"][info["_episode"]] > 0).all()
    assert ended > 0


@pytest.mark.parametrize("bound", [None, 2.0], ids=["default-bound", "tight-bound"])
def test_step_tensor_and_rollout_returns(checkpoint, bound) -> None:
    """`rollout_returns` (one model rollout, masked) equals stepping and summing by hand,
    also when a tight bound makes rows diverge part-way."""
    envs = LearnedVectorEnv(checkpoint(INVERTED), INVERTED, 8, bound=bound)
    envs.reset(seed=0)
    obs, rewards, terminations, truncations, info = envs.step_tensor(torch.zeros(8, 1))
    assert isinstance(obs, torch.Tensor) and obs.shape == (8, 4)
    assert rewards.shape == terminations.shape == truncations.shape == (8,)
    assert info["model_diverged"].dtype == torch.bool

    dynamics = envs.dynamics
    start = torch.zeros(5, 4)
    start[:, 1] = torch.linspace(-0.1, 0.1, 5)
    actions = torch.rand(5, 30, 1, generator=torch.Generator().manual_seed(0)) * 6 - 3
    expected = torch.zeros(5)
    state, alive = start, torch.ones(5, dtype=torch.bool)
    for t in range(30):
        state, reward, terminated, diverged = dynamics.step(state, actions[:, t])
        expected += 0.9**t * reward * alive
        alive &= ~(terminated | diverged)
    returns = dynamics.rollout_returns(start, actions, discount=0.9)
    torch.testing.assert_close(returns, expected)
    if bound is not None:
        assert not alive.all(), "the tight bound should stop rows part-way"


# ---------------------------------------------------------------------------------- bad input
def _one_line_error(call, error: type[Exception], pattern: str) -> None:
    with pytest.raises(error, match=pattern) as caught:
        call()
    assert "\n" not in str(caught.value)


def test_bad_models_and_ids_are_refused_with_one_line_errors(checkpoint) -> None:
    pendulum_model = checkpoint(PENDULUM)
    _one_line_error(
        lambda: LearnedDynamicsEnv(pendulum_model, INVERTED),
        ValueError,
        r"obs_dim 2 / action_dim 1, but physprior/InvertedPendulumFull-v0 has observation "
        r"shape \(4,\)",
    )
    _one_line_error(
        lambda: gym.make(
            "physprior/Learned-v0", model_path=pendulum_model, base_env_id="physprior/Nope-v0"
        ),
        ValueError,
        r"unknown base env id 'physprior/Nope-v0'; run `physprior envs`",
    )
    _one_line_error(
        lambda: ModelDynamics(pendulum_model, "CartPole-v1"),
        ValueError,
        r"'CartPole-v1' lacks reward_fn, termination_fn, dt",
    )
    model = make("mlp", obs_dim=2, action_dim=1, dt=0.1)
    _one_line_error(
        lambda: ModelDynamics(model, PENDULUM), ValueError, r"model has dt 0.1, but .* has dt 0.06"
    )
    other = make("mlp", obs_dim=2, action_dim=1, dt=1 / 15, env_id="physprior/MassSpring-v0")
    _one_line_error(
        lambda: ModelDynamics(other, PENDULUM),
        ValueError,
        r"model was trained on physprior/MassSpring-v0, not on physprior/Pendulum-v0",
    )
    _one_line_error(lambda: ModelDynamics(pendulum_model, PENDULUM, bound=0), ValueError, "bound")
    _one_line_error(lambda: LearnedDynamicsEnv(base_env_id=PENDULUM), TypeError, "model_path")


def test_bad_actions_are_refused_with_one_line_errors(checkpoint) -> None:
    env = gym.make("physprior/Learned-v0", model_path=checkpoint(PENDULUM), base_env_id=PENDULUM)
    env.reset(seed=0)
    _one_line_error(
        lambda: env.step(np.zeros(2, np.float32)),
        ValueError,
        r"action has shape \(2,\), expected shape \(1,\)",
    )
    _one_line_error(lambda: env.step(np.array([np.nan], np.float32)), ValueError, "NaN")
    envs = LearnedVectorEnv(checkpoint(PENDULUM), PENDULUM, 3)
    envs.reset(seed=0)
    _one_line_error(
        lambda: envs.step(np.zeros((2, 1), np.float32)),
        ValueError,
        r"actions have shape \(2, 1\), expected shape \(3, 1\)",
    )
    _one_line_error(lambda: envs.step(np.full((3, 1), np.nan)), ValueError, "NaN")
    dynamics = envs.dynamics
    _one_line_error(
        lambda: dynamics.step(torch.zeros(3, 2), torch.zeros(3, 2)),
        ValueError,
        r"action has shape \(3, 2\), expected \(3, 1\)",
    )
    _one_line_error(
        lambda: dynamics.step(torch.zeros(3, 3), torch.zeros(3, 1)),
        ValueError,
        r"obs has shape \(3, 3\), expected \(N, 2\)",
    )


def test_states_beyond_the_model_dtype_are_refused(checkpoint) -> None:
    """1e39 is finite in float64 but inf in the model's float32: refused, not returned as inf."""
    env = gym.make("physprior/Learned-v0", model_path=checkpoint(PENDULUM), base_env_id=PENDULUM)
    huge = r"holds 1e\+39, beyond the model's float32 range"
    _one_line_error(lambda: env.reset(options={"state": [1e39, 0.0]}), ValueError, huge)
    _one_line_error(
        lambda: LearnedDynamicsEnv(checkpoint(PENDULUM), PENDULUM, initial_states=[[1e39, 0.0]]),
        ValueError,
        "initial_states " + huge,
    )
    envs = LearnedVectorEnv(checkpoint(PENDULUM), PENDULUM, 2)
    _one_line_error(
        lambda: envs.reset(options={"state": [[0.0, 0.0], [0.0, -1e39]]}), ValueError, huge
    )
    _one_line_error(
        lambda: env.reset(options={"state": ["a", 0.0]}), TypeError, "must be an array of numbers"
    )
    _one_line_error(
        lambda: ModelDynamics(checkpoint(PENDULUM), PENDULUM, bound="abc"),  # type: ignore[arg-type]
        TypeError,
        r"bound must be a positive number or None \(math.inf disables it\), got 'abc'",
    )


def test_non_finite_rewards_count_as_divergence(exploding: TransitionModel) -> None:
    """Under bound=inf a finite float32 state can square to inf in the reward: the step is a
    divergence (state kept, reward finite), in `step` and in `rollout_returns` alike."""
    dynamics = ModelDynamics(exploding, PENDULUM, bound=math.inf)
    obs = torch.tensor([[1e20, 0.0], [0.1, 0.0]])
    next_obs, reward, _, diverged = dynamics.step(obs, torch.zeros(2, 1))
    assert torch.isfinite(reward).all() and torch.isfinite(next_obs).all()
    assert diverged[0] and torch.equal(next_obs[0], obs[0])
    returns = dynamics.rollout_returns(obs, torch.zeros(2, 5, 1))
    assert torch.isfinite(returns).all()


_HEADLESS_SCRIPT = """
import sys, warnings
warnings.simplefilter("ignore")
import gymnasium as gym
import physprior
from gymnasium.utils.env_checker import check_env
env = gym.make("physprior/Learned-v0", model_path=sys.argv[1], render_mode="rgb_array")
try:
    check_env(env.unwrapped)
    env.reset(seed=0)
    print("frame", env.render().shape)
except RuntimeError as err:
    print("error", err)
"""


def test_rendering_headless_works_or_raises_never_aborts(checkpoint) -> None:
    """No display: with MUJOCO_GL unset physprior picks EGL and check_env renders; with a
    backend that needs a display, rendering raises a RuntimeError saying what to set."""
    import os
    import subprocess
    import sys

    base = {k: v for k, v in os.environ.items() if k not in ("MUJOCO_GL", "DISPLAY")}
    argv = [sys.executable, "-c", _HEADLESS_SCRIPT, checkpoint(INVERTED)]
    unset = subprocess.run(argv, env=base, capture_output=True, text=True, timeout=120)
    assert unset.returncode == 0 and "frame (480, 480, 3)" in unset.stdout, unset.stderr
    glfw = subprocess.run(
        argv, env={**base, "MUJOCO_GL": "glfw"}, capture_output=True, text=True, timeout=120
    )
    assert glfw.returncode == 0, glfw.stderr
    assert "could not render with MUJOCO_GL='glfw'" in glfw.stdout
    assert "set MUJOCO_GL=egl" in glfw.stdout
