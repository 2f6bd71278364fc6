"""The env contract of DESIGN.md, checked on every registered environment."""

from __future__ import annotations

import math
import warnings

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env as gym_check_env
from stable_baselines3.common.env_checker import check_env as sb3_check_env

from physprior.envs import ENV_IDS, MUJOCO_FULL_ENVS, PHYSICS_ENVS

PHYSICS_IDS = [e.id for e in PHYSICS_ENVS]
FULL_IDS = [e.id for e in MUJOCO_FULL_ENVS]

# Gymnasium's check_env warns about any unbounded Box observation space. Positions and momenta
# of physical systems are unbounded (so are Gymnasium's own MuJoCo v5 observations, which get
# the same warning); an artificial bound would be a lie about the state space.
UNBOUNDED_OBSERVATIONS = r"Box observation space (minimum|maximum) value is -?infinity"

# Further warnings that the checkers raise for a reason we accept, with that reason.
EXPLAINED_WARNINGS = {
    # Gymnasium's InvertedPendulum-v5 acts in [-3, 3] N (its actuator's ctrlrange); the Full
    # variant keeps v5's action space so data and policies transfer between the two.
    "physprior/InvertedPendulumFull-v0": r"symmetric and normalized",
}


def _transitions(env_id: str, n: int, seed: int = 0):
    """`n` random-action transitions of `env_id` (resetting at episode ends)."""
    env = gym.make(env_id)
    env.action_space.seed(seed)
    obs, _ = env.reset(seed=seed)
    rows = []
    for _ in range(n):
        action = env.action_space.sample()
        next_obs, reward, terminated, truncated, _ = env.step(action)
        rows.append((obs, action, reward, next_obs, terminated))
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    core = env.unwrapped
    env.close()
    obs, act, rew, nxt, term = (np.array(col) for col in zip(*rows, strict=True))
    return core, obs, act, rew, nxt, term


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_contract_attributes(env_id: str) -> None:
    env = gym.make(env_id)
    core = env.unwrapped
    assert core.dt > 0
    assert core.state_layout in ("qp", "qv")
    obs_dim = env.observation_space.shape[0]
    v_dim = getattr(core, "v_dim", core.q_dim)
    assert core.q_dim + v_dim == obs_dim
    assert callable(core.reward_fn) and callable(core.termination_fn)
    if env_id in PHYSICS_IDS:
        assert core.state_layout == "qp"
        assert callable(core.energy)
    else:
        assert core.state_layout == "qv"
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_checkers_pass(env_id: str) -> None:
    explained = EXPLAINED_WARNINGS.get(env_id)
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=f".*{UNBOUNDED_OBSERVATIONS}.*")
        if explained:
            warnings.filterwarnings("ignore", message=f".*{explained}.*")
        env = gym.make(env_id, render_mode="rgb_array" if env_id in PHYSICS_IDS else None)
        gym_check_env(env.unwrapped, skip_render_check=env_id not in PHYSICS_IDS)
        sb3_check_env(env, warn=True)
        env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_same_seed_same_rollout(env_id: str) -> None:
    runs = []
    for _ in range(2):
        _, obs, act, rew, nxt, term = _transitions(env_id, 30, seed=7)
        runs.append((obs, act, rew, nxt, term))
    for a, b in zip(*runs, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_reward_and_termination_functions_reproduce_the_env(env_id: str) -> None:
    core, obs, act, rew, nxt, term = _transitions(env_id, 1000)
    np.testing.assert_allclose(core.reward_fn(obs, act, nxt), rew, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(core.termination_fn(nxt), term)
    # The same functions on torch tensors (planners call them on batches of model states).
    t = {k: torch.as_tensor(v) for k, v in dict(obs=obs, act=act, nxt=nxt).items()}
    torch_reward = core.reward_fn(t["obs"], t["act"], t["nxt"])
    assert isinstance(torch_reward, torch.Tensor)
    np.testing.assert_allclose(torch_reward.numpy(), rew, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(core.termination_fn(t["nxt"]).numpy(), term)


@pytest.mark.parametrize("env_id", PHYSICS_IDS)
def test_zero_action_conserves_energy(env_id: str) -> None:
    env = gym.make(env_id).unwrapped
    obs, _ = env.reset(seed=3)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    energies = [env.energy(obs)]
    for _ in range(1000):
        obs, *_ = env.step(zero)
        energies.append(env.energy(obs))
    energies = np.array(energies)
    relative = np.abs(energies - energies[0]) / abs(energies[0])
    assert relative.max() < 1e-4, f"relative energy error {relative.max():.2e}"


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_bad_actions_are_refused_with_the_expected_shape(env_id: str) -> None:
    env = gym.make(env_id)
    env.reset(seed=0)
    shape = env.action_space.shape
    with pytest.raises(ValueError, match=rf"expected shape \({shape[0]},\)"):
        env.step(np.zeros(shape[0] + 1, dtype=np.float32))
    bad = np.zeros(shape, dtype=np.float32)
    bad[0] = np.nan
    with pytest.raises(ValueError, match=r"NaN"):
        env.step(bad)
    env.close()


@pytest.mark.parametrize("env_id", ENV_IDS)
def test_unknown_constructor_argument_lists_valid_ones(env_id: str) -> None:
    # Python's own wording first: tools such as TorchRL's GymEnv match it (they pass
    # `frameskip` and retry without it on "unexpected keyword argument 'frameskip'").
    expected = r"__init__\(\) got an unexpected keyword argument 'frameskip'; valid arguments"
    with pytest.raises(TypeError, match=expected):
        gym.make(env_id, frameskip=1)
    with pytest.raises(TypeError, match=r"argument 'a' \(and 'b'\); valid arguments are: "):
        gym.make(env_id, a=1, b=2)


def test_spring_chain_can_start_its_end_masses_at_rest() -> None:
    # The SRNN authors' generator: both end masses start at rest at q = 0.
    env = gym.make("physprior/SpringChain-v0", ends_at_rest=True).unwrapped
    for seed in range(3):
        obs, _ = env.reset(seed=seed)
        assert (obs[[0, 19, 20, 39]] == 0).all() and (obs[1:19] != 0).all()
    default, _ = gym.make("physprior/SpringChain-v0").unwrapped.reset(seed=0)
    assert (default[[0, 19, 20, 39]] != 0).all()
    with pytest.raises(TypeError, match="ends_at_rest must be True or False"):
        gym.make("physprior/SpringChain-v0", ends_at_rest="yes")


CLOSED_FORM_FIELDS = [
    ("physprior/MassSpring-v0", {"stiffness": 2.0, "mass": 0.5}),
    ("physprior/Pendulum-v0", {"mass": 0.5}),
    ("physprior/TwoBody-v0", {}),
    ("physprior/ThreeBody-v0", {}),
    ("physprior/SpringChain-v0", {"substeps": 1}),
]


@pytest.mark.parametrize(("env_id", "kwargs"), CLOSED_FORM_FIELDS)
def test_time_derivative_is_the_envs_own_motion(env_id: str, kwargs: dict) -> None:
    # A tiny step of the env's ground truth is the field, to first order in the step.
    env = gym.make(env_id).unwrapped
    obs, _ = env.reset(seed=3)
    action = np.full(env.action_dim, 0.4)
    h = 1e-6
    tiny = gym.make(env_id, dt=h, **kwargs).unwrapped
    tiny.reset(options={"state": obs})
    finite_difference = (tiny.step(action)[0] - obs) / h
    field = tiny.time_derivative(obs, action)
    assert np.abs(finite_difference - field).max() < 1e-4 * np.abs(field).max()
    # Batched, numpy or torch; no action is no force.
    batch = torch.tensor(np.stack([obs, obs]))
    torch.testing.assert_close(
        tiny.time_derivative(batch), torch.tensor(tiny.time_derivative(obs)).expand(2, -1)
    )


def test_time_derivative_is_refused_where_there_is_no_closed_form() -> None:
    env = gym.make("physprior/ChainPendulum-v0").unwrapped
    with pytest.raises(NotImplementedError, match="ChainPendulumEnv has no closed-form"):
        env.time_derivative(np.zeros(4))


def test_the_hnn_authors_system_variants() -> None:
    spring = gym.make("physprior/MassSpring-v0", stiffness=2.0, mass=0.5).unwrapped
    assert spring.energy(np.array([1.0, 1.0])) == 2.0  # H = q^2 + p^2
    pendulum = gym.make("physprior/Pendulum-v0", mass=0.5).unwrapped
    assert math.isclose(pendulum.energy(np.array([np.pi, 1.0])), 3 * 2 + 1.0)
    with pytest.raises(ValueError, match="mass must be a finite number > 0, got -1"):
        gym.make("physprior/MassSpring-v0", mass=-1.0)
    with pytest.raises(ValueError, match="mass must be a finite number > 0"):
        gym.make("physprior/Pendulum-v0", mass=0.0)
    two_body = gym.make("physprior/TwoBody-v0", start="authors").unwrapped
    for seed in range(5):
        obs, _ = two_body.reset(seed=seed)
        assert ((obs[:2] >= 0.5) & (obs[:2] <= 1.5)).all()
        np.testing.assert_allclose(obs[:4], np.concatenate([obs[:2], -obs[:2]]))
    with pytest.raises(ValueError, match="start must be 'paper' or 'authors'"):
        gym.make("physprior/TwoBody-v0", start="elsewhere")


def test_the_vin_authors_systems_and_starts() -> None:
    pendulum = gym.make("physprior/Pendulum-v0", gravity=4.91, start="vin").unwrapped
    spring = gym.make("physprior/MassSpring-v0", stiffness=2.0, start="vin").unwrapped
    # The VIN pendulum: d^2q/dt^2 = -9.82 sin q, p = dq/dt, H its energy.
    np.testing.assert_allclose(
        pendulum.time_derivative(np.array([1.0, 0.5])), [0.5, -9.82 * np.sin(1.0)]
    )
    assert math.isclose(pendulum.energy(np.array([np.pi / 2, 1.0])), 9.82 + 0.5)
    for seed in range(20):
        q, p = pendulum.reset(seed=seed)[0]
        assert np.pi / 2 <= abs(q) <= np.pi - 0.1 and abs(p) <= 1.0
        q, p = spring.reset(seed=seed)[0]
        assert 1.0 <= abs(q) <= 1.5 and abs(p) <= 0.5
    signs = {np.sign(pendulum.reset(seed=seed)[0][0]) for seed in range(20)}
    assert signs == {-1.0, 1.0}
    with pytest.raises(ValueError, match="start must be 'hnn' or 'vin', got 'x'"):
        gym.make("physprior/Pendulum-v0", start="x")
    with pytest.raises(ValueError, match="start must be 'hnn' or 'vin'"):
        gym.make("physprior/MassSpring-v0", start="paper")
    with pytest.raises(ValueError, match="gravity must be a finite number > 0, got nan"):
        gym.make("physprior/Pendulum-v0", gravity=float("nan"))
    with pytest.raises(ValueError, match="gravity must be a finite number > 0, got 'x'"):
        gym.make("physprior/Pendulum-v0", gravity="x")
    with pytest.raises(ValueError, match="stiffness must be a finite number > 0, got True"):
        gym.make("physprior/MassSpring-v0", stiffness=True)
