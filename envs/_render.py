"""A tiny numpy rasteriser for `render_mode="rgb_array"`.

Frames are drawn with distance fields on the pixel grid (anti-aliasing off, so frames are exact
functions of the state), which keeps the envs free of pygame and fast enough for pixel datasets.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

Color = tuple[int, int, int]

BACKGROUND: Color = (255, 255, 255)
PALETTE: tuple[Color, ...] = (
    (31, 119, 180),
    (214, 39, 40),
    (44, 160, 44),
    (255, 127, 14),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
)


class Canvas:
    """An RGB image of `size x size` pixels showing the world square `[-extent, extent]^2`.

    World y points up; pixel rows go down. Lengths passed to the drawing methods are in world
    units.
    """

    def __init__(self, size: int, extent: float, background: Color = BACKGROUND) -> None:
        self.size = size
        self.extent = extent
        self.image: NDArray[np.uint8] = np.empty((size, size, 3), dtype=np.uint8)
        self.image[:] = background
        centres = np.arange(size) + 0.5
        # Pixel centres in world coordinates.
        self._x = (centres / size * 2.0 - 1.0) * extent
        self._y = (1.0 - centres / size * 2.0) * extent

    def disc(self, centre: NDArray[np.float64], radius: float, color: Color) -> None:
        """Fill a disc of `radius` (world units, at least half a pixel) around `centre` (2,)."""
        r = max(radius, self.extent / self.size)
        dx = self._x[None, :] - centre[0]
        dy = self._y[:, None] - centre[1]
        self.image[dx * dx + dy * dy <= r * r] = color

    def segment(
        self, start: NDArray[np.float64], end: NDArray[np.float64], width: float, color: Color
    ) -> None:
        """Draw a segment from `start` to `end` (each (2,)) of the given width (world units)."""
        half = max(width / 2.0, self.extent / self.size)
        px = self._x[None, :] - start[0]
        py = self._y[:, None] - start[1]
        d = np.asarray(end, dtype=np.float64) - start
        length2 = float(d @ d)
        t = np.clip((px * d[0] + py * d[1]) / length2, 0.0, 1.0) if length2 > 0 else 0.0
        ex = px - t * d[0]
        ey = py - t * d[1]
        self.image[ex * ex + ey * ey <= half * half] = color
