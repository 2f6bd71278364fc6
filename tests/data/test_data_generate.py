"""The trajectory generator: shapes, meta, determinism, and agreement with the env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from physprior.data import TransitionDataset, generate_trajectories, make_windows

MASS_SPRING = "physprior/MassSpring-v0"


def test_shapes_meta_and_episode_structure() -> None:
    ds = generate_trajectories(MASS_SPRING, 4, 6, seed=3)
    assert ds.obs.shape == ds.next_obs.shape == (20, 2)
    assert ds.actions.shape == (20, 1) and ds.obs.dtype == np.float64
    np.testing.assert_array_equal(ds.episode, np.repeat(np.arange(4), 5))
    np.testing.assert_array_equal(ds.actions, 0.0)
    # Episodes chain, and each ends truncated (full length, no termination).
    same = ds.episode[1:] == ds.episode[:-1]
    np.testing.assert_array_equal(ds.next_obs[:-1][same], ds.obs[1:][same])
    np.testing.assert_array_equal(np.flatnonzero(ds.truncated), [4, 9, 14, 19])
    assert not ds.terminated.any()
    meta = ds.meta
    assert (meta.env_id, meta.q_dim, meta.state_layout, meta.agent, meta.seed, meta.steps) == (
        MASS_SPRING,
        1,
        "qp",
        "zero",
        3,
        20,
    )
    assert meta.dt == pytest.approx(0.1)
    assert meta.extra == {"n_trajectories": 4, "length": 6, "env_kwargs": {}}
    # One window per trajectory of its full length.
    assert len(make_windows(ds, 6)) == 4


def test_initial_states_come_from_the_env_and_rows_replay_it() -> None:
    ds = generate_trajectories(MASS_SPRING, 3, 4, actions="random", seed=11)
    env = gym.make(MASS_SPRING)
    first, _ = env.reset(seed=11)
    np.testing.assert_array_equal(ds.obs[0], first)
    for i in range(len(ds)):
        env.reset(options={"state": ds.obs[i]})
        next_obs, reward, terminated, _, _ = env.step(ds.actions[i].astype(np.float32))
        np.testing.assert_array_equal(next_obs, ds.next_obs[i])
        assert reward == ds.rewards[i] and terminated == ds.terminated[i]
    env.close()
    space = env.action_space
    assert np.all((ds.actions >= space.low) & (ds.actions <= space.high))
    assert np.all(ds.actions != 0.0)


def test_same_seed_same_data_other_seed_other_data() -> None:
    for actions in ("zero", "random"):
        a = generate_trajectories(MASS_SPRING, 3, 5, actions=actions, seed=1)
        b = generate_trajectories(MASS_SPRING, 3, 5, actions=actions, seed=1)
        c = generate_trajectories(MASS_SPRING, 3, 5, actions=actions, seed=2)
        for name in ("obs", "actions", "next_obs", "rewards"):
            np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
        assert not np.array_equal(a.obs, c.obs)
        # Trajectories of one set differ from each other.
        assert len(np.unique(a.obs[::4, 0])) == 3


def test_env_kwargs_reach_the_env_and_meta_survives_a_file(tmp_path) -> None:
    ds = generate_trajectories(MASS_SPRING, 2, 3, seed=0, env_kwargs={"dt": 0.05})
    assert ds.meta.dt == pytest.approx(0.05)
    assert ds.meta.extra["env_kwargs"] == {"dt": 0.05}
    loaded = TransitionDataset.load(ds.save(tmp_path / "ms.npz"))
    assert loaded.meta == ds.meta
    np.testing.assert_array_equal(loaded.obs, ds.obs)


def test_a_terminating_env_gives_shorter_episodes() -> None:
    ds = generate_trajectories(
        "physprior/InvertedPendulumFull-v0", 3, 300, actions="random", seed=0
    )
    sizes = np.bincount(ds.episode)
    assert len(sizes) == 3 and np.all(sizes < 299)
    ends = np.cumsum(sizes) - 1
    np.testing.assert_array_equal(np.flatnonzero(ds.terminated), ends)
    assert not ds.truncated.any()
    assert ds.meta.state_layout == "qv"


def test_bad_arguments_are_clear() -> None:
    with pytest.raises(ValueError, match="actions must be 'zero' or 'random'"):
        generate_trajectories(MASS_SPRING, 1, 3, actions="sac", seed=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="length must be at least 2"):
        generate_trajectories(MASS_SPRING, 1, 1, seed=0)
    with pytest.raises(ValueError, match="n_trajectories must be at least 1"):
        generate_trajectories(MASS_SPRING, 0, 3, seed=0)
    with pytest.raises(TypeError, match="needs a physprior env"):
        generate_trajectories("Pendulum-v1", 1, 3, seed=0)
    with pytest.raises(TypeError, match="seed must be an int"):
        generate_trajectories(MASS_SPRING, 1, 3, seed=None)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="JSON"):
        generate_trajectories(MASS_SPRING, 1, 3, seed=0, env_kwargs={"dt": object()})


def test_derivative_windows_pair_noisy_states_with_exact_derivatives() -> None:
    from physprior.data import derivative_windows

    kwargs = {"stiffness": 2.0, "mass": 0.5}
    data = generate_trajectories("physprior/MassSpring-v0", 4, 6, seed=0, env_kwargs=kwargs)
    windows = derivative_windows(data, noise_std=0.1, seed=1)
    assert windows.states.shape == (20, 2, 2) and windows.actions.shape == (20, 1, 1)
    env = gym.make("physprior/MassSpring-v0", **kwargs).unwrapped
    rates = (windows.states[:, 1] - windows.states[:, 0]) / data.meta.dt
    np.testing.assert_allclose(rates, env.time_derivative(data.obs), atol=1e-12)
    noise = windows.states[:, 0] - data.obs
    assert 0.05 < noise.std() < 0.2 and windows.meta.extra["noise_std"] == 0.1
    clean = derivative_windows(data, seed=1)
    np.testing.assert_array_equal(clean.states[:, 0], data.obs)
    with pytest.raises(ValueError, match="noise_std must be a finite number >= 0"):
        derivative_windows(data, noise_std=-1.0, seed=0)
    chain = generate_trajectories("physprior/ChainPendulum-v0", 1, 3, seed=0)
    with pytest.raises(NotImplementedError, match="no closed-form time derivative"):
        derivative_windows(chain, seed=0)
