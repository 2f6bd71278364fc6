"""Split steps that update momenta and positions in turn: leapfrog and symplectic Euler.

Both need a split field ``(q, p) -> (dq/dt, dp/dt)``. For a separable Hamiltonian
``H = T(p) + V(q)`` every sub-update is the exact flow of one part of ``H`` (a shear), so each
step is symplectic and preserves phase-space volume; that is why energy stays bounded over long
rollouts instead of drifting.
"""

from __future__ import annotations

from torch import Tensor

from ._base import SplitIntegrator, Step
from ._field import PartitionedField, is_separable
from ._ops import axpy


def leapfrog_update(
    field: PartitionedField, q: Tensor, p: Tensor, h: Step
) -> tuple[Tensor, Tensor]:
    """One kick-drift-kick Störmer–Verlet step; ``q`` and ``p`` have shape ``(..., D//2)``.

    Separable fields (``field.separable`` true)::

        p_half = p      + h/2 * momentum_rate(q, p)
        q_new  = q      + h   * position_rate(q, p_half)
        p_new  = p_half + h/2 * momentum_rate(q_new, p_half)

    This is the textbook scheme: order 2, symplectic, and time-reversible (stepping with ``-h``
    undoes a step up to rounding).

    Other fields, e.g. second-order systems ``q'' = a(q, v)`` with damping or velocity-dependent
    forces, would drop to order 1 with that last kick, since it evaluates the force at the
    half-step velocity. The last kick should use ``p_new`` itself (the Euler / adjoint-Euler
    composition that makes Störmer–Verlet symmetric); one explicit predictor of ``p_new`` gets
    that to ``O(h**3)`` per step, so order 2 holds, at the cost of a third force evaluation::

        p_pred = p_half + h/2 * momentum_rate(q_new, p_half)
        p_new  = p_half + h/2 * momentum_rate(q_new, p_pred)

    For such fields the step is explicit and approximate: neither symplectic nor exactly
    reversible (a velocity-dependent force need not conserve anything anyway). For a field that
    really is separable the two forms give identical numbers; the flag only saves work.
    Order 2 also assumes ``position_rate`` does not depend on ``q``; for fields where it does
    (non-separable Hamiltonians) prefer ``rk4``.
    """
    half = 0.5 * h
    p_half = axpy(p, half, field.momentum_rate(q, p))
    q_new = axpy(q, h, field.position_rate(q, p_half))
    kick = field.momentum_rate(q_new, p_half)
    if not is_separable(field):
        kick = field.momentum_rate(q_new, axpy(p_half, half, kick))
    return q_new, axpy(p_half, half, kick)


def symplectic_euler_update(
    field: PartitionedField, q: Tensor, p: Tensor, h: Step
) -> tuple[Tensor, Tensor]:
    """One kick-then-drift symplectic Euler step; ``q`` and ``p`` have shape ``(..., D//2)``::

        p_new = p + h * momentum_rate(q, p)
        q_new = q + h * position_rate(q, p_new)

    Order 1, symplectic for separable fields. For ``q'' = a(q, v)`` it is the semi-implicit
    Euler used by many physics engines: the velocity is updated first and the position moves
    with the new velocity. Its adjoint (drift then kick) is not provided; composing the two
    half-steps gives leapfrog.
    """
    p_new = axpy(p, h, field.momentum_rate(q, p))
    q_new = axpy(q, h, field.position_rate(q, p_new))
    return q_new, p_new


LEAPFROG = SplitIntegrator(name="leapfrog", order=2, symplectic=True, update=leapfrog_update)
SYMPLECTIC_EULER = SplitIntegrator(
    name="symplectic_euler", order=1, symplectic=True, update=symplectic_euler_update
)
