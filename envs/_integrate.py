"""Ground-truth integration over one observation interval with SciPy's adaptive solvers."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray
from scipy.integrate import solve_ivp

Rhs = Callable[[float, NDArray[np.float64]], NDArray[np.float64]]


def adaptive_step(
    rhs: Rhs,
    state: NDArray[np.float64],
    dt: float,
    *,
    rtol: float = 1e-10,
    atol: float = 1e-10,
    method: str = "DOP853",
) -> NDArray[np.float64]:
    """Integrate `dz/dt = rhs(t, z)` from `state` over `dt` and return the final state.

    Raises RuntimeError if the solver fails (for instance on a collision singularity), rather
    than handing a wrong state to the agent.
    """
    sol = solve_ivp(rhs, (0.0, dt), state, method=method, rtol=rtol, atol=atol)
    if not sol.success:
        raise RuntimeError(f"ground-truth integration failed: {sol.message}")
    out: NDArray[np.float64] = sol.y[:, -1].copy()
    return out
