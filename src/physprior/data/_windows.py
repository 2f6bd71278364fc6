"""Windows: `T + 1` consecutive states (and the `T` actions between them) from inside episodes.

Models train on windows: the recurrent protocols roll out through `T` steps from a window's
first state, the single-step ones use windows of 2 states (the SRNN protocol's 9 pairs of a
10-state trajectory). A window never crosses an episode end or a break in the chain of rows
(see `_sequences`); episodes shorter than the window are skipped.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from numpy.typing import NDArray

from ._dataset import DatasetMeta, TransitionDataset
from ._sequences import find_segments, state_sequence


@dataclass(frozen=True)
class Windows:
    """A batch of `W` windows of `T + 1` states, as numpy arrays.

    Attributes:
        states: `(W, T + 1, D)`, the dataset's float dtype (float64 from the generators), in the
            env's units; `states[:, 0]` is each window's first observation.
        actions: `(W, T, A)`, env units; `actions[:, t]` acts between `states[:, t]` and
            `states[:, t + 1]`.
        episode: `(W,)` int64, the episode id each window lies in.
        start: `(W,)` int64, the dataset row of each window's first state (its `obs` row);
            state `t` of window `w` is `obs[start[w] + t]`, the last possibly `next_obs`.
        state_index: `(W,)` int64, the index of each window's first state in the dataset's
            state sequence (`_sequences`); overlapping windows share indices, which is how
            `add_noise` gives them the same noisy observation.
        meta: the dataset's meta (env id, dt, q_dim, layout).

    `to_torch(dtype)` gives `(states, actions)` tensors for the trainer.
    """

    states: NDArray[np.floating]
    actions: NDArray[np.floating]
    episode: NDArray[np.int64]
    start: NDArray[np.int64]
    state_index: NDArray[np.int64]
    meta: DatasetMeta

    def __post_init__(self) -> None:
        if self.states.ndim != 3 or self.actions.ndim != 3:
            raise ValueError(
                f"states must be (W, T + 1, D) and actions (W, T, A), got shapes "
                f"{self.states.shape} and {self.actions.shape}"
            )
        w, length, _ = self.states.shape
        if self.actions.shape[:2] != (w, length - 1):
            raise ValueError(
                f"actions has shape {self.actions.shape}, expected ({w}, {length - 1}, A) "
                f"for states of shape {self.states.shape}"
            )
        for name in ("episode", "start", "state_index"):
            if getattr(self, name).shape != (w,):
                raise ValueError(f"{name} has shape {getattr(self, name).shape}, expected ({w},)")

    def __len__(self) -> int:
        return int(self.states.shape[0])

    @property
    def length(self) -> int:
        """States per window, `T + 1`."""
        return int(self.states.shape[1])

    @property
    def horizon(self) -> int:
        """Transitions per window, `T`."""
        return self.length - 1

    def take(self, index: NDArray[Any] | slice) -> Windows:
        """The windows selected by a boolean mask, an index array or a slice."""
        return dataclasses.replace(
            self,
            states=self.states[index],
            actions=self.actions[index],
            episode=self.episode[index],
            start=self.start[index],
            state_index=self.state_index[index],
        )

    def to_torch(
        self, dtype: torch.dtype = torch.float32, device: torch.device | str | None = None
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """`(states (W, T + 1, D), actions (W, T, A))` as tensors of `dtype` on `device`."""
        states = torch.as_tensor(self.states, dtype=dtype, device=device)
        actions = torch.as_tensor(self.actions, dtype=dtype, device=device)
        return states, actions


def make_windows(
    dataset: TransitionDataset,
    length: int,
    *,
    count: int | None = None,
    replace: bool = False,
    stride: int = 1,
    seed: int | None = None,
) -> Windows:
    """Cut windows of `length` consecutive states (`length - 1` transitions) from `dataset`.

    Candidate windows start at every `stride`-th state of each continuous segment (an episode,
    or the part of one between breaks in its chain of rows) that has at least `length` states.
    With `count=None` all candidates are returned in file order; with an integer `count`, that
    many are drawn at random (`replace=False`: distinct windows; `replace=True`: with
    repetition), in the order drawn, from `np.random.default_rng(seed)` - then `seed` is
    required, so that the draw is reproducible.

    The decon-hnn protocol is `make_windows(train, 3, count=40_000, seed=s)` and
    `make_windows(test, 200, count=200, seed=s)`; the SRNN single-step protocol uses
    `make_windows(train, 2)`.

    Raises ValueError for a bad `length`, `count` or `stride`, for a `count` above the number
    of distinct windows without `replace`, and when no window fits (naming the longest
    segment).
    """
    length = _positive_int(length, "length")
    if length < 2:
        raise ValueError(f"length must be at least 2 states (one transition), got {length}")
    stride = _positive_int(stride, "stride")
    segments = find_segments(dataset)
    n_states = segments.n_states
    per_segment = np.where(n_states >= length, (n_states - length) // stride + 1, 0)
    total = int(per_segment.sum())
    if total == 0:
        longest = int(n_states.max()) if len(segments) else 0
        note = (
            f" ({segments.breaks} break(s) where next_obs[i] != obs[i+1] split episodes)"
            if segments.breaks
            else ""
        )
        raise ValueError(
            f"no window of {length} states fits: the longest episode has {longest} "
            f"state{'s' if longest != 1 else ''}{note}"
        )

    segment_of = np.repeat(np.arange(len(segments), dtype=np.int64), per_segment)
    first_candidate = np.concatenate([[0], np.cumsum(per_segment)[:-1]]).astype(np.int64)
    offset = (np.arange(total, dtype=np.int64) - first_candidate[segment_of]) * stride
    if count is not None:
        count = _positive_int(count, "count")
        if seed is None:
            raise ValueError("count draws windows at random: pass seed= for a reproducible draw")
        if not replace and count > total:
            raise ValueError(
                f"count={count} exceeds the {total} distinct windows of {length} states "
                "(pass replace=True to draw with repetition)"
            )
        pick = np.random.default_rng(seed).choice(total, size=count, replace=replace)
        segment_of, offset = segment_of[pick], offset[pick]

    first_state = segments.state_offset[segment_of] + offset
    first_row = segments.start[segment_of] + offset
    steps = np.arange(length, dtype=np.int64)
    states = state_sequence(dataset, segments)[first_state[:, None] + steps]
    actions = dataset.actions[first_row[:, None] + steps[:-1]]
    return Windows(
        states=states,
        actions=actions,
        episode=segments.episode[segment_of],
        start=first_row,
        state_index=first_state,
        meta=dataset.meta,
    )


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{name} must be an int, got {type(value).__name__}")
    if value < 1:
        raise ValueError(f"{name} must be positive, got {value}")
    return int(value)
