"""Fixed-step ODE integrators in pure torch, chosen by name.

Integrators know nothing about the vector field: each is a step rule over a state of shape
``(..., D)`` that declares its ``order`` and whether it is ``symplectic``. Pick one with
:func:`get_integrator` (``"euler"``, ``"rk4"``, ``"leapfrog"``, ``"symplectic_euler"``) and call
``integrator.step(field, z, h)``, ``integrator.advance(field, z, h, n_steps)`` or
:func:`integrate` for a whole trajectory.

Fields come in two kinds. A plain field ``f(z) -> dz/dt`` works with ``euler`` and ``rk4``. A
split field for ``z = [q, p]`` (or ``[q, v]``) gives ``position_rate(q, p)`` and
``momentum_rate(q, p)`` separately; every integrator accepts it, and ``leapfrog`` and
``symplectic_euler`` require it. Build one with :meth:`SplitField.from_separable` (separable
Hamiltonians) or :meth:`SplitField.from_second_order` (``q'' = a(q, v)``), or implement the two
methods on a model (:class:`PartitionedField`).
"""

from ._base import ExplicitIntegrator, Integrator, SplitIntegrator, Step
from ._explicit import EULER, RK4, euler_update, rk4_update
from ._field import (
    Field,
    PartitionedField,
    SplitField,
    VectorField,
    as_vector_field,
    is_split,
    join_state,
    split_state,
)
from ._registry import INTEGRATORS, available_integrators, get_integrator
from ._solve import integrate
from ._symplectic import LEAPFROG, SYMPLECTIC_EULER, leapfrog_update, symplectic_euler_update

__all__ = [
    "EULER",
    "INTEGRATORS",
    "LEAPFROG",
    "RK4",
    "SYMPLECTIC_EULER",
    "ExplicitIntegrator",
    "Field",
    "Integrator",
    "PartitionedField",
    "SplitField",
    "SplitIntegrator",
    "Step",
    "VectorField",
    "as_vector_field",
    "available_integrators",
    "euler_update",
    "get_integrator",
    "integrate",
    "is_split",
    "join_state",
    "leapfrog_update",
    "rk4_update",
    "split_state",
    "symplectic_euler_update",
]
