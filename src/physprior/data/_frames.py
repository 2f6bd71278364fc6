"""Frames drawn from stored states, for pixel models: nothing is stored as images."""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ._windows import Windows

FrameStyle = Literal["binary", "hgn"]
#: frame style -> the physics env's drawing method
_DRAWERS = {"binary": "binary_frames", "hgn": "hgn_frames"}


def _drawer(env: Any, style: str) -> Any:
    """The drawing method of `style` on `env` (or the env a wrapper holds); a one-line
    ValueError for an unknown style, TypeError for an env that cannot draw it."""
    if style not in _DRAWERS:
        raise ValueError(f"style must be one of {', '.join(_DRAWERS)}, got {style!r}")
    base = getattr(env, "unwrapped", env)
    draw = getattr(base, _DRAWERS[style], None)
    if draw is None:
        raise TypeError(
            f"env must be a physprior physics env (with {_DRAWERS[style]}), "
            f"got {type(base).__name__}"
        )
    return draw


def render_frames(env: Any, states: Any, style: FrameStyle = "binary") -> NDArray[np.float32]:
    """Flattened frames `(..., P)` (float32 in [0, 1]) of states `(..., D)`, drawn by a
    physprior physics env.

    `style="binary"`: the VIN paper's 28 x 28 binary frames (`P = 784`, `binary_frames`);
    `style="hgn"`: the HGN paper's 32 x 32 RGB frames (`P = 3072`, rows, columns, colour;
    `hgn_frames`). `env` is the env or a wrapper of it (`gym.make(...)`). Drawing is fast, so
    pixel datasets are drawn from their stored states when needed.
    """
    frames = np.asarray(_drawer(env, style)(states))
    trailing = 2 if style == "binary" else 3
    return frames.reshape(*frames.shape[:-trailing], -1).astype(np.float32)


def frame_windows(windows: Windows, env: Any) -> tuple[NDArray[np.float32], NDArray[Any]]:
    """`(frames (W, T + 1, P), actions (W, T, A))`: the windows' states drawn as frames, for
    the trainer and a pixel model (`physprior.models.make("pixel-vin", ...)`)."""
    if not isinstance(windows, Windows):
        raise TypeError(f"windows must be physprior.data.Windows, got {type(windows).__name__}")
    return render_frames(env, windows.states), windows.actions


class FrameRenderer:
    """A trainer `transform` that draws each batch of state windows as frames.

    `Trainer.fit(..., transform=FrameRenderer(env, "hgn"))` trains a pixel model on windows
    of *states* `(B, T + 1, D)`: every batch becomes frames `(B, T + 1, P)` just before the
    model sees it, so a dataset of 50,000 sequences keeps 50,000 x 31 states in memory rather
    than 19 GB of images. Drawing is deterministic, so resumed runs see the same frames.
    """

    def __init__(self, env: Any, style: FrameStyle = "hgn") -> None:
        _drawer(env, style)  # a bad style or env fails here, not in the first batch
        base = getattr(env, "unwrapped", env)
        self.env, self.style = base, style
        self.state_dim = int(base.obs_dim)

    def __call__(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """`(frames (B, T + 1, P), actions)` of `states (B, T + 1, D)`, on `states`'s device
        and dtype."""
        drawn = render_frames(self.env, states.detach().cpu().double().numpy(), self.style)
        return torch.from_numpy(drawn).to(device=states.device, dtype=states.dtype), actions

    def __repr__(self) -> str:
        return f"FrameRenderer({type(self.env).__name__}, style={self.style!r})"
