"""Explicit Runge–Kutta steps on the whole state: forward Euler and classic RK4.

They treat a split field as the plain field ``z -> [dq/dt, dp/dt]``, so a model can switch
between these and the split integrators by name without changing its field.
"""

from __future__ import annotations

from torch import Tensor

from ._base import ExplicitIntegrator, Step
from ._field import VectorField
from ._ops import axpy


def euler_update(f: VectorField, z: Tensor, h: Step) -> Tensor:
    """Forward Euler, ``z + h f(z)``: order 1, one evaluation. ``z`` has shape ``(..., D)``."""
    return axpy(z, h, f(z))


def rk4_update(f: VectorField, z: Tensor, h: Step) -> Tensor:
    """Classic fourth-order Runge–Kutta (the 1/6, 1/3, 1/3, 1/6 tableau): four evaluations.

    ``z`` has shape ``(..., D)``; ``h`` is in the field's time unit and may be negative.
    """
    half = 0.5 * h
    k1 = f(z)
    k2 = f(axpy(z, half, k1))
    k3 = f(axpy(z, half, k2))
    k4 = f(axpy(z, h, k3))
    slope = axpy(k1, 2.0, k2 + k3) + k4  # k1 + 2 k2 + 2 k3 + k4
    return axpy(z, h / 6.0, slope)


EULER = ExplicitIntegrator(name="euler", order=1, update=euler_update)
RK4 = ExplicitIntegrator(name="rk4", order=4, update=rk4_update)
