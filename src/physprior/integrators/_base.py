"""What an integrator is: a step rule over a state plus the facts a caller may rely on.

Two families share one interface. An :class:`ExplicitIntegrator` applies its rule to the whole
state with any field (split fields are concatenated). A :class:`SplitIntegrator` applies its
rule to the two halves ``(q, p)`` and needs a split field; it keeps the halves apart over
repeated steps, so sub-stepping costs no extra split/concatenate.
"""

from __future__ import annotations

import dataclasses
import operator
from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import TypeAlias, cast

import torch
from torch import Tensor

from ._field import (
    Field,
    PartitionedField,
    VectorField,
    as_vector_field,
    is_split,
    join_state,
    split_state,
)

#: A step size in the field's time unit: a Python float or a tensor broadcastable to
#: ``(..., 1)`` (a per-sample step). Negative steps integrate backwards in time.
Step: TypeAlias = float | Tensor

#: One step of an explicit rule: ``(f, z, h) -> z_next``, states of shape ``(..., D)``.
VectorUpdate: TypeAlias = Callable[[VectorField, Tensor, Step], Tensor]

#: One step of a split rule: ``(field, q, p, h) -> (q_next, p_next)``, halves ``(..., D//2)``.
SplitUpdate: TypeAlias = Callable[[PartitionedField, Tensor, Tensor, Step], tuple[Tensor, Tensor]]


class Integrator(ABC):
    """A fixed-step integrator.

    Attributes:
        name: the canonical name in the integrator table.
        order: global order of accuracy (error ``O(h**order)`` at a fixed final time).
        symplectic: whether a step is a symplectic map for separable Hamiltonian fields.
        requires_split: whether the field must implement :class:`PartitionedField`.

    Every method takes states of shape ``(..., D)`` in float32 or float64, returns the same
    shape and dtype, and is differentiable: no in-place updates, no detaching.
    """

    name: str
    order: int
    symplectic: bool
    requires_split: bool

    def step(self, field: Field, z: Tensor, h: Step) -> Tensor:
        """One step of size ``h``: the state ``(..., D)`` at time ``t + h`` from ``z`` at ``t``."""
        return self.advance(field, z, h, 1)

    def __call__(self, field: Field, z: Tensor, h: Step) -> Tensor:
        """Same as :meth:`step`."""
        return self.step(field, z, h)

    def advance(self, field: Field, z: Tensor, h: Step, n_steps: int = 1) -> Tensor:
        """``n_steps`` steps of size ``h``: the state ``(..., D)`` at ``t + n_steps * h``.

        Use it for sub-stepping: ``advance(field, z, dt / k, k)`` covers ``dt`` in ``k`` steps.
        """
        count = _count(n_steps, "n_steps", minimum=0)
        self.check(field, z)
        return self._advance(self._prepare(field), z, _match_step(h, z), count)

    def trajectory(
        self, field: Field, z0: Tensor, h: Step, n_steps: int, substeps: int = 1
    ) -> Tensor:
        """States at ``t0 + k * h`` for ``k = 0..n_steps``, stacked: shape ``(..., n_steps+1, D)``.

        Each recorded interval ``h`` is covered by ``substeps`` steps of ``h / substeps``.
        """
        count = _count(n_steps, "n_steps", minimum=0)
        sub = _count(substeps, "substeps", minimum=1)
        self.check(field, z0)
        return self._trajectory(self._prepare(field), z0, _match_step(h, z0) / sub, count, sub)

    def check(self, field: Field, z: Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` if this integrator cannot step ``field`` at ``z``."""
        if not isinstance(z, Tensor):
            raise TypeError(f"the state must be a torch.Tensor, got {type(z).__name__}")
        if not z.is_floating_point():
            raise TypeError(f"the state must be a floating-point tensor, got {z.dtype}")
        if self.requires_split:
            if not is_split(field):
                raise TypeError(
                    f"integrator {self.name!r} needs a split field with position_rate(q, p) and "
                    "momentum_rate(q, p) (e.g. SplitField.from_separable or "
                    f"SplitField.from_second_order); got a plain {type(field).__name__}. "
                    "Use 'euler' or 'rk4' for a plain field f(z) -> dz/dt."
                )
            if z.shape[-1] % 2:
                raise ValueError(
                    f"integrator {self.name!r} splits the state into equal halves [q, p]; "
                    f"its last dimension must be even, got shape {tuple(z.shape)}"
                )
        elif not (is_split(field) or callable(field)):
            raise TypeError(
                "a field must be callable as f(z) -> dz/dt or have position_rate(q, p) and "
                f"momentum_rate(q, p) methods; got {type(field).__name__}"
            )

    def _prepare(self, field: Field) -> Field:
        """The checked field in the form :meth:`_advance` wants; done once per call."""
        return field

    def _trajectory(self, field: Field, z0: Tensor, h: Step, n_steps: int, substeps: int) -> Tensor:
        """Unchecked :meth:`trajectory`; ``h`` is already the sub-step."""
        states = [z0]
        z = z0
        for _ in range(n_steps):
            z = self._advance(field, z, h, substeps)
            states.append(z)
        return torch.stack(states, dim=-2)

    @abstractmethod
    def _advance(self, field: Field, z: Tensor, h: Step, n_steps: int) -> Tensor:
        """``n_steps`` unchecked steps of a prepared field; ``h`` matches ``z``'s dtype/device."""

    def __repr__(self) -> str:
        return (
            f"{type(self).__name__}(name={self.name!r}, order={self.order}, "
            f"symplectic={self.symplectic}, requires_split={self.requires_split})"
        )


@dataclasses.dataclass(frozen=True, repr=False)
class ExplicitIntegrator(Integrator):
    """An integrator whose rule sees the whole state; works with any field.

    Attributes:
        update: one step ``(f, z, h) -> z_next`` with ``f`` a plain ``z -> dz/dt``.
    """

    name: str
    order: int
    update: VectorUpdate
    symplectic: bool = dataclasses.field(default=False, init=False)
    requires_split: bool = dataclasses.field(default=False, init=False)

    def _prepare(self, field: Field) -> Field:
        return as_vector_field(field)

    def _advance(self, field: Field, z: Tensor, h: Step, n_steps: int) -> Tensor:
        # _prepare made ``field`` a plain z -> dz/dt.
        f = cast(VectorField, field)
        for _ in range(n_steps):
            z = self.update(f, z, h)
        return z


@dataclasses.dataclass(frozen=True, repr=False)
class SplitIntegrator(Integrator):
    """An integrator whose rule updates positions and momenta in turn; needs a split field.

    Attributes:
        update: one step ``(field, q, p, h) -> (q_next, p_next)``.
    """

    name: str
    order: int
    symplectic: bool
    update: SplitUpdate
    requires_split: bool = dataclasses.field(default=True, init=False)

    def _advance(self, field: Field, z: Tensor, h: Step, n_steps: int) -> Tensor:
        if n_steps == 0:
            return z
        # check() guaranteed a split field; no isinstance here, it is slow for protocols.
        split_field = cast(PartitionedField, field)
        q, p = split_state(z)
        for _ in range(n_steps):
            q, p = self.update(split_field, q, p, h)
        return join_state(q, p)

    def _trajectory(self, field: Field, z0: Tensor, h: Step, n_steps: int, substeps: int) -> Tensor:
        # Record the halves and join once at the end: a split and a concatenation per
        # recorded step would cost as much as the step itself for small states.
        split_field = cast(PartitionedField, field)
        q, p = split_state(z0)
        qs, ps = [q], [p]
        for _ in range(n_steps):
            for _ in range(substeps):
                q, p = self.update(split_field, q, p, h)
            qs.append(q)
            ps.append(p)
        return join_state(torch.stack(qs, dim=-2), torch.stack(ps, dim=-2))


def _match_step(h: Step, z: Tensor) -> Step:
    """A tensor step cast to the state's dtype/device, so the state keeps its dtype.

    Python floats already adopt the state's dtype, but a float64 per-sample step of shape
    ``(B, 1)`` would promote a float32 state to float64. The cast is differentiable.
    """
    if isinstance(h, Tensor):
        return h.to(dtype=z.dtype, device=z.device)
    return h


def _count(value: int, what: str, minimum: int) -> int:
    """``value`` as an int ``>= minimum`` (numpy integers accepted), else ``ValueError``."""
    try:
        count = operator.index(value)
    except TypeError:
        raise TypeError(f"{what} must be an integer, got {type(value).__name__}") from None
    if count < minimum:
        raise ValueError(f"{what} must be >= {minimum}, got {count}")
    return count
