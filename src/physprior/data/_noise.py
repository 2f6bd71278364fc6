"""Gaussian observation noise, as in the SRNN noisy protocol.

The SRNN protocol observes `z(t) + eps(t)`, with `eps(t) ~ N(0, std^2)` i.i.d. over time steps
and coordinates (q and p alike). Noise belongs to an *observation*, not to a row or a window:
`next_obs[i]` and `obs[i + 1]` are the same observation, and so is state `t + 1` of a window
and state `t` of the window that starts one step later. So noise is drawn once per state of the
dataset's state sequence (`_sequences`) and indexed from there: a noisy dataset still chains
exactly, overlapping windows share their noisy states, and for one seed
`make_windows(add_noise(ds))` equals `add_noise(make_windows(ds))`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import TypeVar

import numpy as np
from numpy.typing import NDArray

from ._dataset import TransitionDataset
from ._sequences import find_segments, state_sequence, with_state_sequence
from ._windows import Windows

Data = TypeVar("Data", TransitionDataset, Windows)


def add_noise(data: Data, std: float | Sequence[float], *, seed: int) -> Data:
    """`data` (a dataset or windows) with `N(0, std^2)` added to every observed state.

    Args:
        data: a `TransitionDataset` (`obs` and `next_obs` change) or `Windows` (`states`
            change); actions and rewards are left exact.
        std: standard deviation in the state's units, one number or one per coordinate `(D,)`.
        seed: seeds `np.random.default_rng`; state `s` of the state sequence always gets draw
            `s`, whichever windows were cut.

    A dataset records the noise in `meta.extra["noise_std"]` (combined in quadrature with any
    noise already recorded; a per-coordinate `std` is stored as a list).
    """
    if isinstance(data, TransitionDataset):
        scale = _scale(std, data.obs_dim)
        segments = find_segments(data)
        states = state_sequence(data, segments)
        noisy = (states + _draws(seed, states.shape[0], states.shape[1]) * scale).astype(
            states.dtype
        )
        meta = data.meta
        extra = dict(meta.extra)
        extra["noise_std"] = _combined(extra.get("noise_std"), scale)
        noisy_ds = with_state_sequence(data, segments, noisy)
        return dataclasses.replace(noisy_ds, meta=dataclasses.replace(meta, extra=extra))
    if isinstance(data, Windows):
        d = data.states.shape[2]
        scale = _scale(std, d)
        if len(data) == 0:
            return data
        index = data.state_index[:, None] + np.arange(data.length, dtype=np.int64)
        # Generator.standard_normal fills row by row, so the first m rows of a draw of any
        # size are the same numbers: drawing only up to the last state used is enough.
        draws = _draws(seed, int(index.max()) + 1, d)
        states = (data.states + draws[index] * scale).astype(data.states.dtype)
        return dataclasses.replace(data, states=states)
    raise TypeError(f"add_noise takes a TransitionDataset or Windows, got {type(data).__name__}")


def _draws(seed: int, rows: int, dim: int) -> NDArray[np.float64]:
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an int, got {type(seed).__name__}")
    return np.random.default_rng(seed).standard_normal((rows, dim))


def _scale(std: float | Sequence[float], dim: int) -> NDArray[np.float64]:
    scale = np.asarray(std, dtype=np.float64)
    if scale.ndim == 1 and scale.shape != (dim,):
        raise ValueError(f"std has {scale.shape[0]} entries; the states have dimension {dim}")
    if scale.ndim > 1:
        raise ValueError(f"std must be a number or a sequence of {dim}, got shape {scale.shape}")
    if not np.all(np.isfinite(scale)) or np.any(scale < 0):
        raise ValueError(f"std must be finite and non-negative, got {std}")
    return scale


def _combined(previous: object, scale: NDArray[np.float64]) -> float | list[float]:
    """Total noise std after adding `scale` to data already carrying `previous`."""
    old = np.asarray(0.0 if previous is None else previous, dtype=np.float64)
    total = np.sqrt(old**2 + scale**2)
    if total.ndim == 0:
        return float(total)
    return [float(x) for x in total]
