"""The one table that maps integrator names (and a few aliases) to integrators."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from ._base import Integrator
from ._explicit import EULER, RK4
from ._symplectic import LEAPFROG, SYMPLECTIC_EULER

#: Canonical name -> integrator. Read-only: integrators are stateless and shared.
INTEGRATORS: Mapping[str, Integrator] = MappingProxyType(
    {integrator.name: integrator for integrator in (EULER, RK4, LEAPFROG, SYMPLECTIC_EULER)}
)

# Other spellings people use in configs, after lower-casing and '-' -> '_'.
_ALIASES: Mapping[str, str] = MappingProxyType(
    {
        "explicit_euler": "euler",
        "forward_euler": "euler",
        "rk": "rk4",
        "runge_kutta": "rk4",
        "verlet": "leapfrog",
        "stormer_verlet": "leapfrog",
        "velocity_verlet": "leapfrog",
        "semi_implicit_euler": "symplectic_euler",
    }
)


def available_integrators() -> tuple[str, ...]:
    """The canonical integrator names, in table order."""
    return tuple(INTEGRATORS)


def get_integrator(name: str) -> Integrator:
    """The integrator called ``name``: ``"euler"``, ``"rk4"``, ``"leapfrog"`` or
    ``"symplectic_euler"``.

    Case and ``-``/``_`` are ignored (``"symplectic-euler"`` works), and a few aliases such as
    ``"verlet"`` are accepted. Raises ``ValueError`` listing the valid names for anything else.
    """
    if not isinstance(name, str):
        raise TypeError(f"an integrator name must be a str, got {type(name).__name__}")
    key = name.strip().lower().replace("-", "_")
    key = _ALIASES.get(key, key)
    try:
        return INTEGRATORS[key]
    except KeyError:
        valid = ", ".join(repr(n) for n in INTEGRATORS)
        raise ValueError(f"unknown integrator {name!r}; valid names are {valid}") from None


def resolve_integrator(method: str | Integrator) -> Integrator:
    """``method`` itself if it is an :class:`Integrator`, else :func:`get_integrator` of it."""
    if isinstance(method, Integrator):
        return method
    return get_integrator(method)
