"""32x32 RGB frames of blurred discs in the style of the HGN paper's datasets, batched in numpy.

The HGN paper (Toth et al. 2020, appendix A.4) renders each body as a circle "smoothed such
that [it does] not have hard edges", one colour per body, on 32x32x3 images (appendix A.1;
the main text's 64x64 contradicts the architecture, which upsamples 4 -> 32). The paper gives
no radius, world extent, colours or kernel; those come from the best-known reimplementation
(CampusAI/Hamiltonian-Generative-Networks, `environments/*.py`), whose drawing is:

- a world square `[-W, W]^2` mapped to pixels by `int(32 (x + W) / (2 W))` for the column
  and the same for the row (world `y` grows *down* the image);
- a filled disc of integer radius `int(size / (2 W / 32))` at that integer pixel, drawn in
  the body's colour on black;
- a 2x2 box blur applied twice; then the background colour is added and values clipped to 1.

Here the disc is the set of pixels whose centre offset `(dx, dy)` from the disc's pixel has
`dx^2 + dy^2 <= r^2` (OpenCV's filled circle, up to its edge rule), and the blur is the
symmetric `[1, 2, 1] / 4` kernel in each direction with edge replication: two 2x2 boxes are
that kernel shifted by one pixel, and the shift only moves the whole picture.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

HGN_FRAME_SIZE = 32
"""HGN frames are `32 x 32` RGB."""
HGN_BACKGROUND = np.array([81, 88, 93], dtype=np.float64) / 255.0
"""The reimplementation's background colour (RGB in [0, 1])."""
HGN_COLOURS = np.array([[173, 146, 0], [173, 0, 0], [0, 146, 0]], dtype=np.float64) / 255.0
"""Body colours (yellow, red, green); single-body systems use the first."""


def world_to_hgn_pixels(points: NDArray[np.float64], world_size: float) -> NDArray[np.int64]:
    """Integer pixel `(column, row)` `(..., 2)` of world points `(..., 2)` on `[-W, W]^2`
    (world `y` grows down the image, as in the reimplementation)."""
    scaled = HGN_FRAME_SIZE * (points + world_size) / (2.0 * world_size)
    return np.floor(scaled).astype(np.int64)


def disc_radius_pixels(size: float, world_size: float) -> int:
    """The reimplementation's integer disc radius for a body of world size `size`."""
    return int(size / (2.0 * world_size / HGN_FRAME_SIZE))


def blurred_discs(
    centres: NDArray[np.float64],
    radii: NDArray[np.int64],
    colours: NDArray[np.float64],
    world_size: float,
) -> NDArray[np.float32]:
    """Frames `(N, 32, 32, 3)` (float32 in [0, 1]) of `B` discs per frame.

    `centres` `(N, B, 2)` world positions, `radii` `(B,)` pixel radii, `colours` `(B, 3)`
    RGB in [0, 1]. Later bodies are painted over earlier ones, as the reimplementation's
    successive `cv2.circle` calls do.
    """
    n, bodies = centres.shape[:2]
    pixels = world_to_hgn_pixels(centres, world_size)  # (N, B, 2)
    grid = np.arange(HGN_FRAME_SIZE)
    image = np.zeros((n, HGN_FRAME_SIZE, HGN_FRAME_SIZE, 3), dtype=np.float32)
    for b in range(bodies):
        dx2 = np.square(grid[None, :] - pixels[:, b, 0, None])  # (N, S) over columns
        dy2 = np.square(grid[None, :] - pixels[:, b, 1, None])  # (N, S) over rows
        inside = dy2[:, :, None] + dx2[:, None, :] <= int(radii[b]) ** 2  # (N, S, S)
        mask = inside[..., None].astype(np.float32)
        image = image * (1.0 - mask) + mask * colours[b].astype(np.float32)
    image = _blur_121(_blur_121(image, axis=1), axis=2)
    return np.minimum(image + HGN_BACKGROUND.astype(np.float32), 1.0)


def _blur_121(image: NDArray[np.float32], axis: int) -> NDArray[np.float32]:
    """The `[1, 2, 1] / 4` kernel along `axis` (1: rows, 2: columns), edges replicated."""
    moved = np.moveaxis(image, axis, 0)
    out = 0.5 * moved
    out[1:] += 0.25 * moved[:-1]
    out[0] += 0.25 * moved[0]
    out[:-1] += 0.25 * moved[1:]
    out[-1] += 0.25 * moved[-1]
    return np.moveaxis(out, 0, axis)
