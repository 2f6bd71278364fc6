"""`LearnedVectorEnv` in the tools people run: Gymnasium's `make_vec` and vector wrappers,
both autoreset modes, rendering, and SB3 through its `VecEnv` view."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.vector import AutoresetMode

import physprior
from physprior.learned_env import LearnedVectorEnv
from physprior.models import make
from physprior.training import save_model

MASS_SPRING = "physprior/MassSpring-v0"
INVERTED = "physprior/InvertedPendulumFull-v0"


def _model(env_id: str) -> torch.nn.Module:
    env = gym.make(env_id).unwrapped
    torch.manual_seed(0)
    obs_dim, action_dim = env.observation_space.shape[0], env.action_space.shape[0]
    return make("mlp", obs_dim=obs_dim, action_dim=action_dim, q_dim=env.q_dim, dt=env.dt,
                env_id=env_id, hidden=16).eval()  # fmt: skip


@pytest.fixture(scope="module")
def mass_spring_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return save_model(_model(MASS_SPRING), tmp_path_factory.mktemp("ckpt") / "mlp")


def test_make_vec_with_the_vector_entry_point_and_a_vector_wrapper(
    mass_spring_checkpoint: Path,
) -> None:
    envs = gym.make_vec(
        "physprior/Learned-v0",
        num_envs=6,
        vectorization_mode="vector_entry_point",
        model_path=str(mass_spring_checkpoint),
        autoreset_mode=AutoresetMode.NEXT_STEP,
    )
    assert isinstance(envs.unwrapped, LearnedVectorEnv) and envs.num_envs == 6
    assert envs.unwrapped.spec is not None and envs.unwrapped.spec.id == "physprior/Learned-v0"
    # Gymnasium's vector observation wrappers accept NEXT_STEP envs only.
    scaled = gym.wrappers.vector.TransformObservation(envs, lambda obs: 2.0 * obs)
    obs, _ = scaled.reset(seed=0)
    raw, _ = envs.unwrapped.reset(seed=0)
    np.testing.assert_array_equal(obs, 2.0 * raw)
    scaled.step(scaled.action_space.sample())
    same_step = gym.make_vec("physprior/Learned-v0", num_envs=2,
                             vectorization_mode="vector_entry_point",
                             model_path=str(mass_spring_checkpoint))  # fmt: skip
    assert same_step.unwrapped.autoreset_mode is AutoresetMode.SAME_STEP
    with pytest.raises(ValueError, match="NEXT_STEP or DISABLED"):
        gym.wrappers.vector.TransformObservation(same_step, lambda obs: obs)
    with pytest.raises(ValueError, match="autoreset_mode must be one of"):
        LearnedVectorEnv(_model(MASS_SPRING), num_envs=2, autoreset_mode="Disabled")


def test_next_step_resets_a_finished_copy_on_the_following_step() -> None:
    """Copy 0 ends at step 3 (time limit): step 3 returns its final state with the flag, step
    4 returns a fresh initial state, reward 0 and no flags; the other copy steps on."""
    model = _model(MASS_SPRING)
    same = LearnedVectorEnv(model, MASS_SPRING, 2, max_episode_steps=3)
    nxt = LearnedVectorEnv(model, MASS_SPRING, 2, max_episode_steps=3, autoreset_mode="NextStep")
    assert nxt.autoreset_mode is AutoresetMode.NEXT_STEP
    nxt.reset(seed=0)
    start = np.array([[0.5, 0.0], [0.3, 0.1]])
    same.reset(options={"state": start})
    obs_next, _ = nxt.reset(options={"state": start})
    zero = np.zeros((2, 1), dtype=np.float32)
    for _ in range(3):
        *_, info_same = same.step(zero)
        obs_next, r_next, term, trunc, info_next = nxt.step(zero)
    assert trunc.all() and not term.any()
    np.testing.assert_array_equal(obs_next, info_same["final_obs"])  # the final states
    assert "final_obs" not in info_next
    obs_next, r_next, term, trunc, _ = nxt.step(zero)
    assert not trunc.any() and not term.any() and (r_next == 0).all()
    assert np.all(np.abs(obs_next) <= 1.0 + 1e-9)  # drawn from MassSpring's initial radii


def test_vector_render_gives_every_copy_a_frame() -> None:
    envs = LearnedVectorEnv(_model(MASS_SPRING), MASS_SPRING, 3, render_mode="rgb_array")
    envs.reset(seed=0)
    frames = envs.render()
    assert frames is not None and len(frames) == 3
    assert all(f.ndim == 3 and f.shape[2] == 3 and f.dtype == np.uint8 for f in frames)
    with pytest.raises(ValueError, match="render_mode='human' is not supported"):
        LearnedVectorEnv(_model(MASS_SPRING), MASS_SPRING, 3, render_mode="human")


def test_sb3_view_matches_the_vector_env_and_reports_final_states() -> None:
    envs = LearnedVectorEnv(_model(MASS_SPRING), MASS_SPRING, 4, max_episode_steps=5)
    twin = LearnedVectorEnv(_model(MASS_SPRING), MASS_SPRING, 4, max_episode_steps=5)
    vec = envs.as_sb3()
    vec.seed(3)
    obs = vec.reset()
    np.testing.assert_array_equal(obs, twin.reset(seed=3)[0])
    actions = np.full((4, 1), 0.3, dtype=np.float32)
    for _ in range(5):
        obs, rewards, dones, infos = vec.step(actions)
        expected, r, _, _, info = twin.step(actions)
        np.testing.assert_array_equal(obs, expected)
        assert rewards.dtype == np.float32 and np.allclose(rewards, r)
    assert dones.all() and all(i["TimeLimit.truncated"] for i in infos)
    np.testing.assert_array_equal(
        np.stack([i["terminal_observation"] for i in infos]), info["final_obs"]
    )
    assert vec.get_attr("dt") == [envs.dt] * 4 and vec.env_is_wrapped(gym.Wrapper) == [False] * 4
    with pytest.raises(ValueError, match="autoreset_mode=SAME_STEP"):
        LearnedVectorEnv(_model(MASS_SPRING), MASS_SPRING, 2, autoreset_mode="NextStep").as_sb3()


def test_sb3_ppo_trains_on_the_view_of_many_model_copies() -> None:
    from stable_baselines3 import PPO

    envs = LearnedVectorEnv(_model(INVERTED), INVERTED, 32).as_sb3()
    agent = PPO("MlpPolicy", envs, n_steps=64, batch_size=256, n_epochs=1, seed=0,
                policy_kwargs={"net_arch": [16, 16]}, device="cpu")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # SB3 on the asymmetric action box
        agent.learn(4096)
    assert agent.num_timesteps == 4096
    action, _ = agent.predict(envs.reset(), deterministic=True)
    assert action.shape == (32, 1) and np.all(np.abs(action) <= 3.0)
    assert physprior.LearnedVectorEnv is LearnedVectorEnv
