"""Initial-state samplers shared by several environments."""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray


def check_radius_range(radius_range: tuple[float, float]) -> tuple[float, float]:
    """`(low, high)` as floats; ValueError unless `0 <= low <= high`."""
    lo, hi = radius_range
    if not 0 <= lo <= hi:
        raise ValueError(f"radius_range must satisfy 0 <= low <= high, got {radius_range}")
    return float(lo), float(hi)


def point_on_phase_circle(
    rng: np.random.Generator, radius_range: tuple[float, float]
) -> NDArray[np.float64]:
    """`[q, p]` on a circle of radius `U[radius_range]` in the phase plane, at a uniform angle.

    The HNN protocol's initial states for its one-degree-of-freedom systems.
    """
    radius = rng.uniform(*radius_range)
    angle = rng.uniform(0.0, 2.0 * np.pi)
    return np.array([radius * np.cos(angle), radius * np.sin(angle)])
