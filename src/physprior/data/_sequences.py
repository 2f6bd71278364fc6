"""Episodes as state sequences: the continuous runs of rows that windows and noise work on.

An episode of `n` rows is a sequence of `n + 1` states: its `obs` rows followed by the last
`next_obs`. That only holds where the rows chain, `next_obs[i] == obs[i + 1]`; a row flagged
`terminated` or `truncated`, a change of episode id, or a break in the chain (a replay buffer
with gaps, rows dropped by a filter) ends a *segment*. Segments, not episode ids, are what
windows are cut from, so no window ever spans a break, whatever the file's ids say.

All states of all segments, concatenated, are the dataset's *state sequence*, of length
`N + K` for `N` rows in `K` segments: row `r` of segment `k` is state `r + k`, and the end state
of segment `k` (its last `next_obs`) is state `stop[k] + k`.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
from numpy.typing import NDArray

from ._dataset import TransitionDataset

IntArray = NDArray[np.int64]


@dataclass(frozen=True)
class Segments:
    """The continuous runs of rows of a dataset, in file order.

    `start`, `stop` `(K,)`: first row and one past the last row of each segment;
    `episode` `(K,)`: its episode id; `breaks`: how many segments end in a broken chain
    (`next_obs[i] != obs[i + 1]` inside one episode id, with no end flag).
    """

    start: IntArray
    stop: IntArray
    episode: IntArray
    breaks: int

    def __len__(self) -> int:
        return int(self.start.shape[0])

    @property
    def n_states(self) -> NDArray[np.int64]:
        """States per segment `(K,)`: its rows plus the final `next_obs`."""
        return self.stop - self.start + 1

    @property
    def state_offset(self) -> IntArray:
        """Index `(K,)` of each segment's first state in the concatenated state sequence."""
        return self.start + np.arange(len(self), dtype=np.int64)

    @property
    def total_states(self) -> int:
        return int(self.n_states.sum())


def find_segments(dataset: TransitionDataset) -> Segments:
    """Split `dataset` into continuous runs of rows (see the module docstring)."""
    n = len(dataset)
    if n == 0:
        empty = np.zeros(0, dtype=np.int64)
        return Segments(empty, empty, empty, 0)
    ep = dataset.episode
    new_episode = ep[1:] != ep[:-1]
    flagged_end = (dataset.terminated | dataset.truncated)[:-1]
    # Exact equality: rows written by an env loop share the very same numbers, so any
    # difference is a real gap, not rounding.
    broken = ~np.all(dataset.next_obs[:-1] == dataset.obs[1:], axis=1)
    cut = new_episode | flagged_end | broken
    start = np.concatenate([[0], np.flatnonzero(cut) + 1]).astype(np.int64)
    stop = np.concatenate([start[1:], [n]]).astype(np.int64)
    breaks = int(np.count_nonzero(broken & ~new_episode & ~flagged_end))
    return Segments(start, stop, ep[start].astype(np.int64), breaks)


def state_sequence(dataset: TransitionDataset, segments: Segments) -> NDArray[np.floating]:
    """All segments' states concatenated: `(N + K, D)`, the dtype of `dataset.obs`."""
    n, d = dataset.obs.shape
    k = len(segments)
    states = np.empty((n + k, d), dtype=dataset.obs.dtype)
    seg_of_row = np.repeat(np.arange(k, dtype=np.int64), segments.stop - segments.start)
    states[np.arange(n, dtype=np.int64) + seg_of_row] = dataset.obs
    states[segments.stop + np.arange(k, dtype=np.int64)] = dataset.next_obs[segments.stop - 1]
    return states


def with_state_sequence(
    dataset: TransitionDataset, segments: Segments, states: NDArray[np.floating]
) -> TransitionDataset:
    """`dataset` with `obs` and `next_obs` read back from a (modified) state sequence.

    Both arrays come from the same states, so rows keep chaining exactly.
    """
    n = len(dataset)
    k = len(segments)
    seg_of_row = np.repeat(np.arange(k, dtype=np.int64), segments.stop - segments.start)
    index = np.arange(n, dtype=np.int64) + seg_of_row
    return replace(dataset, obs=states[index], next_obs=states[index + 1])
