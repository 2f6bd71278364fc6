"""Shared type aliases. Imports nothing else from physprior."""

from __future__ import annotations

from typing import Literal, TypeAlias

#: How a state is laid out: positions then momenta (`"qp"`), or positions then velocities
#: (`"qv"`). The models' `state_layout` and the Hamiltonian core's `layout` arguments.
StateLayout: TypeAlias = Literal["qp", "qv"]

__all__ = ["StateLayout"]
