"""The SB3 replay-buffer adapter, on buffers filled by real SAC runs.

Every recovered row must replay in the env: `reset(options={"state": obs})`, then
`step(action)` in env units gives `next_obs`, the reward and the termination flag.
"""

from __future__ import annotations

from collections.abc import Iterator

import gymnasium as gym
import numpy as np
import pytest
import torch
from stable_baselines3 import SAC
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.env_util import make_vec_env

from physprior.data import TransitionDataset, from_replay_buffer

CART = "physprior/InvertedPendulumFull-v0"  # actions in [-3, 3] N: exercises the rescaling
PENDULUM = "physprior/Pendulum-v0"


@pytest.fixture(autouse=True)
def one_thread() -> Iterator[None]:
    # SAC's tiny networks gain nothing from threads, and on a busy 2-core machine torch's
    # spinning threads make each gradient step ~20 times slower.
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _sac(
    env: gym.Env | object,
    *,
    learning_starts: int,
    buffer_size: int = 150,
    optimize_memory_usage: bool = False,
    handle_timeout_termination: bool = True,
) -> SAC:
    return SAC(
        "MlpPolicy",
        env,  # type: ignore[arg-type]
        buffer_size=buffer_size,
        learning_starts=learning_starts,
        batch_size=32,
        train_freq=4,
        gradient_steps=1,
        policy_kwargs={"net_arch": [16, 16]},
        optimize_memory_usage=optimize_memory_usage,
        replay_buffer_kwargs={"handle_timeout_termination": handle_timeout_termination},
        seed=0,
        device="cpu",
    )


def _check_replays(ds: TransitionDataset, env_id: str) -> None:
    env = gym.make(env_id)
    dtype = env.action_space.dtype
    for i in range(len(ds)):
        env.reset(options={"state": ds.obs[i]})
        next_obs, reward, terminated, _, _ = env.step(ds.actions[i].astype(dtype))
        np.testing.assert_allclose(next_obs, ds.next_obs[i], rtol=0, atol=1e-12, err_msg=str(i))
        # SB3 keeps rewards in float32.
        assert ds.rewards[i] == pytest.approx(np.float32(reward), rel=1e-6, abs=1e-7)
        assert terminated == ds.terminated[i], f"row {i}"
    env.close()
    # Every episode ends with a flag, and only there.
    ends = np.flatnonzero(ds.terminated | ds.truncated)
    last_rows = np.flatnonzero(np.r_[ds.episode[1:] != ds.episode[:-1], True])
    np.testing.assert_array_equal(ends, last_rows)
    np.testing.assert_array_equal(np.unique(ds.episode), np.arange(len(last_rows)))


def test_sac_buffer_round_trip_with_wrap_scaling_and_timeouts() -> None:
    env = gym.make(CART, max_episode_steps=8)  # short episodes: time limits and falls
    model = _sac(env, learning_starts=50)
    model.learn(300)
    buffer = model.replay_buffer
    assert isinstance(buffer, ReplayBuffer) and buffer.full  # 300 steps in 150 rows
    assert np.abs(buffer.actions).max() <= 1.0  # SB3 stores scaled actions

    ds = from_replay_buffer(buffer, env, seed=0)
    assert len(ds) == 150
    assert np.abs(ds.actions).max() > 1.0 and np.abs(ds.actions).max() <= 3.0
    assert ds.terminated.any() and ds.truncated.any()
    # Rows are in time order from the oldest (row `pos`) on.
    np.testing.assert_array_equal(ds.obs[0], buffer.observations[buffer.pos, 0])
    meta = ds.meta
    assert (meta.env_id, meta.agent, meta.seed, meta.steps, meta.state_layout) == (
        CART,
        "sac",
        0,
        150,
        "qv",
    )
    assert meta.extra == {"n_envs": 1, "dropped_rows": 0}
    _check_replays(ds, CART)
    # The time-limit ends are exactly SB3's timeouts.
    order = np.r_[buffer.pos : buffer.buffer_size, 0 : buffer.pos]
    np.testing.assert_array_equal(ds.truncated[:-1], buffer.timeouts[order, 0][:-1] > 0)
    # The env id works as well as the env.
    same = from_replay_buffer(buffer, CART, seed=0)
    np.testing.assert_array_equal(same.actions, ds.actions)


def test_two_envs_with_memory_optimised_buffer() -> None:
    venv = make_vec_env(CART, n_envs=2, seed=0, env_kwargs={"max_episode_steps": 8})
    model = _sac(
        venv,
        learning_starts=10_000,  # warm-up actions only: the buffer layout is what matters
        buffer_size=160,
        optimize_memory_usage=True,
        handle_timeout_termination=False,
    )
    model.learn(200)  # 100 rows per env in a buffer of 80 rows per env: wrapped
    buffer = model.replay_buffer
    assert buffer.full and buffer.n_envs == 2
    ds = from_replay_buffer(buffer, venv.envs[0])
    # Row `pos` is no transition; a finished episode's last transition is lost.
    assert len(ds) + ds.meta.extra["dropped_rows"] == 2 * (80 - 1)
    assert ds.meta.extra["dropped_rows"] > 0
    _check_replays(ds, CART)
    # Env 0's stream comes first, and no episode mixes rows of the two envs.
    order = (buffer.pos + 1 + np.arange(79)) % 80
    rows_env0 = 79 - int(np.count_nonzero(buffer.dones[order[:-1], 0]))
    np.testing.assert_array_equal(
        ds.obs[:rows_env0],
        buffer.observations[order, 0][np.r_[buffer.dones[order[:-1], 0] == 0, True]],
    )
    assert ds.episode[rows_env0 - 1] != ds.episode[rows_env0]


def test_without_timeouts_the_env_tells_termination_from_time_limits() -> None:
    env = gym.make(CART, max_episode_steps=6)
    model = _sac(env, learning_starts=10_000, handle_timeout_termination=False)
    model.learn(120)
    ds = from_replay_buffer(model.replay_buffer, env)
    assert ds.terminated.any() and ds.truncated[:-1].any()
    _check_replays(ds, CART)


def test_a_restarted_run_breaks_the_episode_and_partial_episodes_are_kept() -> None:
    env = gym.make(PENDULUM)  # 200-step episodes: none finishes here
    model = _sac(env, learning_starts=10_000, buffer_size=1000)
    model.learn(40)
    model.learn(28, reset_num_timesteps=True)  # resets the env mid-episode, without `done`
    ds = from_replay_buffer(model.replay_buffer, env)
    assert len(ds) == 68
    np.testing.assert_array_equal(np.flatnonzero(ds.truncated), [39, 67])
    assert not ds.terminated.any()
    np.testing.assert_array_equal(np.bincount(ds.episode), [40, 28])
    _check_replays(ds, PENDULUM)


def test_bad_inputs_are_refused() -> None:
    env = gym.make(CART)
    model = _sac(env, learning_starts=10_000)
    with pytest.raises(ValueError, match="the replay buffer is empty"):
        from_replay_buffer(model.replay_buffer, env)
    model.learn(5)
    with pytest.raises(ValueError, match="differs from the env's"):
        from_replay_buffer(model.replay_buffer, gym.make(PENDULUM))
    with pytest.raises(TypeError, match="needs a physprior env"):
        from_replay_buffer(model.replay_buffer, gym.make("InvertedPendulum-v5"))
    with pytest.raises(TypeError, match="SB3 ReplayBuffer"):
        from_replay_buffer(object(), env)  # type: ignore[arg-type]
