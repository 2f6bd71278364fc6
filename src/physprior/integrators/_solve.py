"""Whole trajectories by integrator name: the convenience entry point."""

from __future__ import annotations

from torch import Tensor

from ._base import Integrator, Step
from ._field import Field
from ._registry import resolve_integrator


def integrate(
    field: Field,
    z0: Tensor,
    h: Step,
    n_steps: int,
    *,
    method: str | Integrator = "rk4",
    substeps: int = 1,
) -> Tensor:
    """Fixed-step trajectory from ``z0``.

    Args:
        field: a plain ``f(z) -> dz/dt`` or a split field (required by the split integrators).
        z0: initial states of shape ``(..., D)``, float32 or float64.
        h: time between recorded states, in the field's time unit; a float or a tensor
            broadcastable to ``(..., 1)``. Negative ``h`` integrates backwards.
        n_steps: number of recorded steps after ``z0``.
        method: an integrator name (see :func:`get_integrator`) or an :class:`Integrator`.
        substeps: steps of ``h / substeps`` taken per recorded step.

    Returns:
        States at ``t0 + k * h``, ``k = 0..n_steps``, shape ``(..., n_steps + 1, D)``, with
        ``z0`` first and the dtype of ``z0``. Differentiable with respect to ``z0``, ``h`` and
        any parameters inside ``field``.
    """
    return resolve_integrator(method).trajectory(field, z0, h, n_steps, substeps)
