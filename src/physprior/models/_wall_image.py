"""The wall image of an environment, read through differentiable bilinear neighbourhoods.

SRNN's rebound module (Chen et al. 2020, section 6) sees the walls as a background image and
reads small neighbourhoods of it around positions. Positions can lie beyond a wall (a
tentative step that flew through it) or beyond the image, so the image is sampled in
unclamped coordinates with the wall value outside it; bilinear interpolation makes every
neighbourhood a continuous, almost-everywhere differentiable function of the position, which
is how the module learns sub-pixel timing and how gradients reach the tentative step.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

#: Value of an occupied (wall) pixel after scaling the image to [0, 1]; also the padding.
WALL = 1.0


def env_wall_image(env_id: str) -> tuple[np.ndarray, np.ndarray]:
    """The wall image `(H, W)` in [0, 1] (1: wall) and the affine map `(2, 3)` from a position
    `(x, y, 1)` to continuous image coordinates `(row, col)`, both from the env `env_id`.

    The env (its `unwrapped`) must offer `background_image()` (uint8, walls 255) and
    `image_coordinates(q)`, as `physprior/HeavyBilliard-v0` does.
    """
    import gymnasium as gym

    import physprior.envs  # noqa: F401  (registers the physprior envs)

    try:
        env: Any = gym.make(env_id).unwrapped
    except gym.error.Error as err:
        raise ValueError(f"env_id {env_id!r}: {err}") from None
    if not (hasattr(env, "background_image") and hasattr(env, "image_coordinates")):
        raise ValueError(
            f"env_id {env_id!r} has no wall image: the rebound module needs an env with "
            "background_image() and image_coordinates(q), such as physprior/HeavyBilliard-v0"
        )
    image = np.asarray(env.background_image(), dtype=np.float64) / 255.0
    corners = np.array([[0.0, 0.0], [1.0, 0.0], [0.0, 1.0]])
    rc = np.asarray(env.image_coordinates(corners), dtype=np.float64)  # (3, 2)
    affine = np.stack([rc[1] - rc[0], rc[2] - rc[0], rc[0]], axis=1)  # (2, 3): [d/dx, d/dy, 0]
    return image, affine


def offsets(size: int) -> Tensor:
    """Pixel offsets `(size * size, 2)` of a `size x size` neighbourhood centred on a point:
    `-(size - 1) / 2, ..., (size - 1) / 2` along rows and columns, row-major."""
    line = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    rows, cols = torch.meshgrid(line, line, indexing="ij")
    return torch.stack([rows.reshape(-1), cols.reshape(-1)], dim=-1)


class WallImage(nn.Module):
    """A wall image and its position-to-pixel map, as buffers that are not saved: a model
    rebuilds them from its env, so checkpoints carry no image.

    `neighbourhoods(q, size)`: the image sampled bilinearly on a `size x size` grid of pixel
    spacing centred on each position `q` `(B, K, 2)` -> `(B, K, size * size)`, the wall value
    outside the image.
    """

    padded: Tensor
    affine: Tensor

    def __init__(self, image: np.ndarray, affine: np.ndarray) -> None:
        super().__init__()
        if image.ndim != 2 or affine.shape != (2, 3):
            raise ValueError(
                f"expected an image (H, W) and an affine map (2, 3), got {image.shape} and "
                f"{affine.shape}"
            )
        # A ring of wall around the image: `grid_sample`'s border padding then repeats wall
        # values forever outside, which is exactly "beyond the image is wall".
        padded = np.pad(np.asarray(image, dtype=np.float64), 1, constant_values=WALL)
        self.register_buffer("padded", torch.as_tensor(padded, dtype=torch.float32), False)
        self.register_buffer("affine", torch.as_tensor(affine, dtype=torch.float32), False)
        self._grids: dict[int, Tensor] = {}

    @property
    def image(self) -> Tensor:
        """The image `(H, W)` in [0, 1] (1: wall)."""
        return self.padded[1:-1, 1:-1]

    def coordinates(self, q: Tensor) -> Tensor:
        """Continuous image coordinates `(row, col)` `(..., 2)` of positions `q` `(..., 2)`."""
        return q @ self.affine[:, :2].mT + self.affine[:, 2]

    def neighbourhoods(self, q: Tensor, size: int) -> Tensor:
        """`(B, K, size * size)` image values around the positions `q` `(B, K, 2)`."""
        grid = self._grids.get(size)
        if grid is None:
            grid = self._grids[size] = offsets(size)
        centre = self.coordinates(q)  # (B, K, 2)
        points = centre[..., None, :] + grid.to(centre)  # (B, K, size^2, 2)
        return self.sample(points.flatten(1, 2)).unflatten(1, (q.shape[1], grid.shape[0]))

    def neighbourhood(self, q: Tensor, size: int) -> Tensor:
        """`(B, size * size)` image values around each of the positions `q` `(B, 2)`."""
        return self.neighbourhoods(q[:, None, :], size)[:, 0]

    def sample(self, rc: Tensor) -> Tensor:
        """Bilinear samples `(B, N)` at continuous image coordinates `rc` `(B, N, 2)`."""
        height, width = self.padded.shape
        # grid_sample with align_corners=True: -1 and +1 are the centres of the first and
        # last pixels of the padded image, whose pixel (r, c) is the image's (r - 1, c - 1).
        x = (rc[..., 1] + 1.0) * (2.0 / (width - 1)) - 1.0
        y = (rc[..., 0] + 1.0) * (2.0 / (height - 1)) - 1.0
        grid = torch.stack((x, y), dim=-1)[None]  # (1, B, N, 2)
        image = self.padded.to(rc.dtype)[None, None]
        out = torch.nn.functional.grid_sample(
            image, grid, mode="bilinear", padding_mode="border", align_corners=True
        )
        return out[0, 0]
