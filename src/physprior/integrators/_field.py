"""The vector fields integrators accept: a plain first-order field or a split (partitioned) one.

A state ``z`` is a tensor of shape ``(..., D)``. For a split field, ``D`` is even and
``z = [x, y]`` with ``x = z[..., :D//2]`` the positions ``q`` and ``y = z[..., D//2:]`` the
momenta ``p`` (Hamiltonian models) or the velocities ``v`` (second-order models). Rates are
per unit of the model's time, the same unit as the step ``h``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from typing import Protocol, TypeAlias, runtime_checkable

import torch
from torch import Tensor

#: A first-order field ``f(z) -> dz/dt``, both of shape ``(..., D)``.
VectorField: TypeAlias = Callable[[Tensor], Tensor]

#: One half of a split field: ``rate(q, p)``, inputs and output of shape ``(..., D//2)``.
RateFn: TypeAlias = Callable[[Tensor, Tensor], Tensor]


@runtime_checkable
class PartitionedField(Protocol):
    """Anything that gives the two halves of ``dz/dt`` separately.

    Integrators check for this protocol (by the presence of both methods), so a model such as
    an ``nn.Module`` can implement the two methods itself instead of building a
    :class:`SplitField`. An object with these methods is always treated as split, even when it is
    also callable. It may also carry a ``separable: bool`` attribute (see :class:`SplitField`);
    when absent it is taken as ``False``, which is always correct, only slower for leapfrog.
    """

    def position_rate(self, q: Tensor, p: Tensor) -> Tensor:
        """``dq/dt`` of shape ``(..., D//2)`` at positions ``q`` and momenta/velocities ``p``."""
        ...

    def momentum_rate(self, q: Tensor, p: Tensor) -> Tensor:
        """``dp/dt`` (or ``dv/dt``) of shape ``(..., D//2)`` at ``q`` and ``p``."""
        ...


@dataclasses.dataclass(frozen=True)
class SplitField:
    """A partitioned field ``dq/dt = position_rate(q, p)``, ``dp/dt = momentum_rate(q, p)``.

    Build it with :meth:`from_separable` for a separable Hamiltonian ``H = T(p) + V(q)``
    (``dq/dt = dT/dp``, ``dp/dt = -dV/dq``) or with :meth:`from_second_order` for
    ``q'' = a(q, v)``; or pass both rates directly.

    Attributes:
        position_rate: ``(q, p) -> dq/dt``, shapes ``(..., D//2)``.
        momentum_rate: ``(q, p) -> dp/dt``, shapes ``(..., D//2)``.
        separable: promise that ``position_rate`` ignores ``q`` and ``momentum_rate`` ignores
            ``p``. Leapfrog then uses plain kick-drift-kick (two momentum evaluations a step);
            otherwise it spends a third one to stay second order for velocity-dependent forces.
            Leave it ``False`` when unsure: the result is the same for separable fields.

    A ``SplitField`` is also a plain :data:`VectorField`: ``field(z)`` concatenates the two rates,
    which is how Euler and RK4 use it.
    """

    position_rate: RateFn
    momentum_rate: RateFn
    separable: bool = False

    def __call__(self, z: Tensor) -> Tensor:
        """``dz/dt = [dq/dt, dp/dt]`` of shape ``(..., D)`` at a state ``z`` of that shape."""
        q, p = split_state(z)
        return join_state(self.position_rate(q, p), self.momentum_rate(q, p))

    @classmethod
    def from_separable(
        cls, dq_dt: Callable[[Tensor], Tensor], dp_dt: Callable[[Tensor], Tensor]
    ) -> SplitField:
        """Field of a separable Hamiltonian: ``dq/dt = dq_dt(p)``, ``dp/dt = dp_dt(q)``.

        For ``H = T(p) + V(q)``, pass ``dq_dt = dT/dp`` and ``dp_dt = -dV/dq``. Leapfrog and
        symplectic Euler are symplectic for such fields.
        """
        return cls(_OfMomentum(dq_dt), _OfPosition(dp_dt), separable=True)

    @classmethod
    def from_second_order(cls, acceleration: RateFn) -> SplitField:
        """Field of ``q'' = acceleration(q, v)``, the state being ``z = [q, v]``.

        ``dq/dt = v`` and ``dv/dt = acceleration(q, v)``. If the acceleration depends on ``q``
        only, prefer ``from_separable(lambda v: v, lambda q: a(q))``: it is cheaper for leapfrog.
        """
        return cls(_velocity, acceleration, separable=False)


#: Either kind of field. Integrators that ``requires_split`` accept only the second.
Field: TypeAlias = VectorField | PartitionedField


@dataclasses.dataclass(frozen=True)
class _OfMomentum:
    """``(q, p) -> fn(p)``; a class rather than a lambda so it pickles and prints clearly."""

    fn: Callable[[Tensor], Tensor]

    def __call__(self, q: Tensor, p: Tensor) -> Tensor:
        return self.fn(p)


@dataclasses.dataclass(frozen=True)
class _OfPosition:
    """``(q, p) -> fn(q)``."""

    fn: Callable[[Tensor], Tensor]

    def __call__(self, q: Tensor, p: Tensor) -> Tensor:
        return self.fn(q)


def _velocity(q: Tensor, v: Tensor) -> Tensor:
    """``dq/dt = v`` for second-order systems."""
    return v


def is_split(field: object) -> bool:
    """Whether ``field`` gives its two halves separately (implements :class:`PartitionedField`)."""
    return isinstance(field, PartitionedField)


def split_state(z: Tensor) -> tuple[Tensor, Tensor]:
    """Views ``(q, p)``, each ``(..., D//2)``, of a state ``z`` of shape ``(..., D)``, D even."""
    size = z.shape[-1]
    if size % 2:
        raise ValueError(f"a split state needs an even last dimension, got shape {tuple(z.shape)}")
    half = size // 2
    return z[..., :half], z[..., half:]


def join_state(q: Tensor, p: Tensor) -> Tensor:
    """The state ``[q, p]`` of shape ``(..., D)`` from two halves of shape ``(..., D//2)``."""
    return torch.cat((q, p), dim=-1)


def as_vector_field(field: Field) -> VectorField:
    """``field`` as a plain ``z -> dz/dt``; split fields concatenate their two rates."""
    if isinstance(field, SplitField):
        return field
    if isinstance(field, PartitionedField):
        split_field = field

        def joined(z: Tensor) -> Tensor:
            q, p = split_state(z)
            return join_state(split_field.position_rate(q, p), split_field.momentum_rate(q, p))

        return joined
    if callable(field):
        return field
    raise TypeError(
        "a field must be callable as f(z) -> dz/dt or have position_rate(q, p) and "
        f"momentum_rate(q, p) methods; got {type(field).__name__}"
    )


def is_separable(field: PartitionedField) -> bool:
    """The field's ``separable`` promise, ``False`` when it makes none."""
    return bool(getattr(field, "separable", False))
