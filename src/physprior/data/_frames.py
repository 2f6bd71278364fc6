"""Frames drawn from stored states, for pixel models: nothing is stored as images."""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from ._windows import Windows


def render_frames(env: Any, states: Any) -> NDArray[np.float32]:
    """Flattened binary frames `(..., P)` (float32, 0 or 1; `P = 784` for 28 x 28) of
    states `(..., D)`, drawn by a physprior physics env's `binary_frames`.

    `env` is the env or a wrapper of it (`gym.make(...)`). Drawing is fast (a distance field
    per shape) so pixel datasets are drawn from their stored states when needed.
    """
    base = getattr(env, "unwrapped", env)
    draw = getattr(base, "binary_frames", None)
    if draw is None:
        raise TypeError(
            f"env must be a physprior physics env (with binary_frames), got {type(base).__name__}"
        )
    frames = np.asarray(draw(states))
    return frames.reshape(*frames.shape[:-2], -1).astype(np.float32)


def frame_windows(windows: Windows, env: Any) -> tuple[NDArray[np.float32], NDArray[Any]]:
    """`(frames (W, T + 1, P), actions (W, T, A))`: the windows' states drawn as frames, for
    the trainer and a pixel model (`physprior.models.make("pixel-vin", ...)`)."""
    if not isinstance(windows, Windows):
        raise TypeError(f"windows must be physprior.data.Windows, got {type(windows).__name__}")
    return render_frames(env, windows.states), windows.actions
