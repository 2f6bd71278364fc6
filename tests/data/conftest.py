"""Small hand-made datasets for the data tests."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import pytest

from physprior.data import DatasetMeta, TransitionDataset

ToyFactory = Callable[..., TransitionDataset]


def toy_dataset(
    lengths: Sequence[int], dim: int = 2, action_dim: int = 1, dtype: type = np.float64
) -> TransitionDataset:
    """Episodes of `lengths[e]` transitions whose values identify where they come from.

    State `t` of episode `e` is `1000 e + t` in every coordinate (plus the coordinate index /
    100), and the action of its row `t` is `1000 e + t`: any value read back names its
    episode and time step, so a window that crossed an episode end would show it.
    """
    obs, nxt, act, ep, term, trunc = [], [], [], [], [], []
    offsets = np.arange(dim) / 100.0
    for e, n in enumerate(lengths):
        states = 1000.0 * e + np.arange(n + 1)[:, None] + offsets
        obs.append(states[:-1])
        nxt.append(states[1:])
        act.append(np.repeat(1000.0 * e + np.arange(n)[:, None], action_dim, axis=1))
        ep.append(np.full(n, e, dtype=np.int64))
        end = np.zeros(n, dtype=bool)
        end[-1] = True
        term.append(end & (e % 2 == 0))
        trunc.append(end & (e % 2 == 1))
    return TransitionDataset(
        obs=np.concatenate(obs).astype(dtype),
        actions=np.concatenate(act).astype(dtype).reshape(sum(lengths), action_dim),
        next_obs=np.concatenate(nxt).astype(dtype),
        rewards=np.arange(sum(lengths), dtype=np.float64),
        terminated=np.concatenate(term),
        truncated=np.concatenate(trunc),
        episode=np.concatenate(ep),
        meta=DatasetMeta(env_id="toy", dt=0.1, q_dim=dim // 2, state_layout="qp"),
    )


@pytest.fixture
def toy() -> ToyFactory:
    return toy_dataset
