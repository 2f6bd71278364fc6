"""Minari round trips: physprior -> Minari -> physprior keeps every row and field."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from physprior.data import TransitionDataset, from_minari, generate_trajectories, to_minari

minari = pytest.importorskip("minari", reason="the minari extra is not installed")


@pytest.fixture(autouse=True)
def _own_minari_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MINARI_DATASETS_PATH", str(tmp_path / "minari"))


def _same(a: TransitionDataset, b: TransitionDataset) -> None:
    for name in ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)
    for name in ("env_id", "dt", "q_dim", "state_layout", "agent", "seed"):
        assert getattr(a.meta, name) == getattr(b.meta, name), name


def test_round_trip_of_a_physics_dataset_keeps_every_row_and_field() -> None:
    ds = generate_trajectories("physprior/Pendulum-v0", 5, 12, actions="random", seed=3)
    exported = to_minari(ds, "physprior/pendulum/random-v0", author="tests")
    assert exported.total_episodes == 5 and exported.total_steps == len(ds)
    back = from_minari("physprior/pendulum/random-v0")
    _same(ds, back)
    assert back.meta.extra["minari_dataset_id"] == "physprior/pendulum/random-v0"
    env = minari.load_dataset("physprior/pendulum/random-v0").recover_environment()
    assert env.spec.id == "physprior/Pendulum-v0"


def test_round_trip_of_collected_mujoco_episodes(tmp_path: Path) -> None:
    from physprior.agents.collect import CollectConfig, collect

    ds = collect(
        CollectConfig(
            "physprior/InvertedPendulumFull-v0",
            200,
            str(tmp_path / "c.npz"),
            agent="random",
            seed=0,
            progress=False,
        )
    ).dataset
    to_minari(ds, "physprior/cart/random-v0")
    _same(ds, from_minari(minari.load_dataset("physprior/cart/random-v0")))


def test_foreign_dataset_needs_its_layout_and_unchained_rows_are_refused() -> None:
    from minari.data_collector import EpisodeBuffer

    rng = np.random.default_rng(0)
    episodes = [
        EpisodeBuffer(
            id=i,
            observations=rng.normal(size=(6, 4)),
            actions=rng.normal(size=(5, 2)),
            rewards=[0.0] * 5,
            terminations=[False] * 4 + [True],
            truncations=[False] * 5,
        )
        for i in range(3)
    ]
    from gymnasium.spaces import Box

    with warnings.catch_warnings():  # Minari's advice on metadata a test has no use for
        warnings.simplefilter("ignore", UserWarning)
        minari.create_dataset_from_buffers(
            "elsewhere/walker/expert-v0",
            episodes,
            observation_space=Box(-np.inf, np.inf, (4,)),
            action_space=Box(-1.0, 1.0, (2,)),
        )
    with pytest.raises(ValueError, match=r"does not say its dt, q_dim, state_layout .* pass dt="):
        from_minari("elsewhere/walker/expert-v0")
    ds = from_minari("elsewhere/walker/expert-v0", dt=0.05, q_dim=2, state_layout="qv")
    assert len(ds) == 15 and ds.terminated.sum() == 3 and ds.meta.state_layout == "qv"
    np.testing.assert_array_equal(ds.obs[1:5], ds.next_obs[0:4])

    chain = generate_trajectories("physprior/MassSpring-v0", 3, 6, seed=0)
    shuffled = chain.take(np.array([1, 0, *range(2, len(chain))]))
    with pytest.raises(ValueError, match="rows do not chain"):
        to_minari(shuffled, "elsewhere/shuffled-v0")
