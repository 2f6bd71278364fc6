"""Binary 28x28 frames in the style of the VIN authors' pixel datasets, batched in numpy.

The VIN authors (steindoringi/Variational_Integrator_Networks, `systems.py`) draw each state
with matplotlib on a 1 x 1 inch figure at 28 dpi, axis off, and keep a pixel as 1 only where
it came out pure black; anti-aliased edge pixels become 0. This module draws the same shapes
with distance fields on the pixel grid instead, so that a frame is an exact function of the
state and thousands are drawn in milliseconds (the datasets are rendered on the fly from
stored states, never stored as frames):

- the drawing area is matplotlib's default subplot box (figure fractions 0.125 to 0.9 across,
  0.11 to 0.88 up), so the axes' limits span about 22 of the 28 pixels, as in theirs;
- lengths in points become pixels at 28 / 72 px per point;
- "pure black" is "fully covered": a pixel is set when its whole square lies inside the
  shape, tested as the pixel centre lying far enough inside it (`COVER_MARGIN`,
  `LINE_COVER_MARGIN`);
- matplotlib snaps a marker's centre to the pixel grid (`floor(c + 1/2) + 1/2`); discs here
  are snapped the same way.

Checked against matplotlib 3.11 drawing the authors' way (`tests/envs/test_binary_frames.py`):
the disc frames are identical, the pendulum rod differs in about 1 of its ~44 pixels.

Pixel coordinates: column `x` grows to the right, row `y` grows downwards, both in pixels
from the frame's top-left corner; pixel `(row, col)` has its centre at `(col + 0.5, row + 0.5)`.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

FRAME_SIZE = 28
"""Frames are `FRAME_SIZE x FRAME_SIZE` pixels (1 inch at 28 dpi)."""
POINTS_TO_PIXELS = FRAME_SIZE / 72.0
"""matplotlib lengths in points (1/72 inch) to pixels at 28 dpi."""
SUBPLOT_BOX = (0.125, 0.9, 0.11, 0.88)
"""matplotlib's default subplot margins (left, right, bottom, top), as figure fractions."""
COVER_MARGIN = 0.5
"""How far inside a disc's rim (pixels) a pixel centre must lie for the pixel to count as
fully covered: half a pixel, the inscribed distance of a pixel square."""
LINE_COVER_MARGIN = 0.6
"""The same for a line's edges. A tilted edge needs between 0.5 and 0.71 pixels; 0.6 is the
value that agrees best with matplotlib's Agg rasteriser (1.2 of ~44 rod pixels differ per
frame on average, against 2.2 for the exact square test)."""


def world_to_pixels(points: NDArray[np.float64], limit: float) -> NDArray[np.float64]:
    """Pixel coordinates `(..., 2)` of world points `(..., 2)` on axes `[-limit, limit]^2`."""
    left, right, bottom, top = SUBPLOT_BOX
    fx = left + (points[..., 0] + limit) / (2.0 * limit) * (right - left)
    fy = bottom + (points[..., 1] + limit) / (2.0 * limit) * (top - bottom)
    return np.stack((fx * FRAME_SIZE, (1.0 - fy) * FRAME_SIZE), axis=-1)


def _pixel_centres() -> tuple[NDArray[np.floating], NDArray[np.floating]]:
    centres = np.arange(FRAME_SIZE) + 0.5
    return centres[None, None, :], centres[None, :, None]  # x (1, 1, S), y (1, S, 1)


def thick_line(
    start: NDArray[np.float64], end: NDArray[np.float64], width_points: float
) -> NDArray[np.uint8]:
    """Frames `(N, S, S)` of a line `start -> end` (pixel coordinates, each `(N, 2)`).

    The stroke is `width_points` wide with matplotlib's default "projecting" caps: a
    rectangle reaching half the width beyond both ends.
    """
    half = 0.5 * width_points * POINTS_TO_PIXELS
    x, y = _pixel_centres()
    direction = end - start
    length = np.linalg.norm(direction, axis=-1)
    unit = direction / np.maximum(length, 1e-12)[:, None]
    dx = x - start[:, 0, None, None]
    dy = y - start[:, 1, None, None]
    along = dx * unit[:, 0, None, None] + dy * unit[:, 1, None, None]
    across = np.abs(dx * unit[:, 1, None, None] - dy * unit[:, 0, None, None])
    centre = 0.5 * length[:, None, None]
    margin = LINE_COVER_MARGIN
    inside_along = np.abs(along - centre) <= centre + half - margin
    inside_across = across <= half - margin
    return (inside_along & inside_across).astype(np.uint8)


def filled_disc(centre: NDArray[np.float64], area_points2: float) -> NDArray[np.uint8]:
    """Frames `(N, S, S)` of a disc at `centre` `(N, 2)` (pixel coordinates) whose area is
    `area_points2` square points (matplotlib's `scatter(s=...)`)."""
    radius = 0.5 * np.sqrt(area_points2) * POINTS_TO_PIXELS
    centre = np.floor(centre + 0.5) + 0.5  # matplotlib's snapping of marker positions
    x, y = _pixel_centres()
    dx = x - centre[:, 0, None, None]
    dy = y - centre[:, 1, None, None]
    reach = radius - COVER_MARGIN
    return (dx * dx + dy * dy <= reach * reach).astype(np.uint8)
