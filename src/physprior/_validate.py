"""Check a config dataclass's field values against their annotations, with one-line errors.

Configs are filled from JSON (`--set hidden=3.5`, a hand-edited `config.json`), where any
type can arrive: `check_field_types(config)` refuses a value whose type the annotation does
not allow (a float or a bool for an `int`, a string for a number, a number for a `Literal`
of strings, a NaN anywhere, an infinity unless the field allows one), naming the field, the
value and what is allowed. It understands the annotations configs use: `int`, `float`,
`bool`, `str`, `None`, `Literal[...]` (the type of its values: each config checks the values
themselves, with its own message), unions of these, and `tuple[...]` / `dict[...]` (checked
as containers only).
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any, Literal, Union

__all__ = ["check_field_types", "check_finite_rates", "check_positive_ints", "check_seed"]


def _describe(annotation: Any) -> str:
    origin = typing.get_origin(annotation)
    if origin is Literal:
        return " or ".join(sorted({type(a).__name__ for a in typing.get_args(annotation)}))
    if origin in (Union, types.UnionType):
        return " or ".join(_describe(a) for a in typing.get_args(annotation))
    if annotation is type(None):
        return "None"
    if origin is not None:
        return getattr(origin, "__name__", str(origin))
    return getattr(annotation, "__name__", str(annotation))


def _allows(annotation: Any, value: Any, infinite_ok: bool) -> bool:
    origin = typing.get_origin(annotation)
    if annotation is Any:
        return True
    if origin is Literal:
        # The type only: each config names its allowed values in its own message.
        return any(type(value) is type(a) for a in typing.get_args(annotation))
    if origin in (Union, types.UnionType):
        return any(_allows(a, value, infinite_ok) for a in typing.get_args(annotation))
    if annotation is type(None):
        return value is None
    if annotation is bool:
        return isinstance(value, bool)
    if annotation is int:
        return isinstance(value, numbers.Integral) and not isinstance(value, bool)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            return False
        return not math.isnan(value) and (infinite_ok or math.isfinite(value))
    if annotation is str:
        return isinstance(value, str)
    if origin in (tuple, list):
        return isinstance(value, (tuple, list))
    if origin is dict or annotation is dict:
        return isinstance(value, dict)
    return True  # an annotation this checker does not model: the config's own checks apply


def check_field_types(config: Any, *, infinite_ok: typing.Iterable[str] = ()) -> None:
    """Raise `TypeError` for the first field of dataclass `config` whose value its
    annotation does not allow; `infinite_ok` names float fields that may be +-inf."""
    hints = typing.get_type_hints(type(config))
    allowed_inf = set(infinite_ok)
    for field in dataclasses.fields(config):
        value = getattr(config, field.name)
        annotation = hints.get(field.name, Any)
        if not _allows(annotation, value, field.name in allowed_inf):
            raise TypeError(
                f"{type(config).__name__}.{field.name} must be {_describe(annotation)}, "
                f"got {value!r} ({type(value).__name__})"
            )


def check_positive_ints(config: Any, *names: str, optional: bool = False) -> None:
    """Raise `ValueError` for the first of `names` (fields of `config`) that is not an int
    >= 1 (bools refused); with `optional`, None is allowed too."""
    for name in names:
        value = getattr(config, name)
        if optional and value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            allowed = "a positive integer or None" if optional else "a positive integer"
            raise ValueError(f"{type(config).__name__}.{name} must be {allowed}, got {value!r}")


def check_finite_rates(
    config: Any, *, positive: typing.Iterable[str] = (), non_negative: typing.Iterable[str] = ()
) -> None:
    """Raise `ValueError` for the first field of `config` that is not a finite real number
    `> 0` (those in `positive`) or `>= 0` (those in `non_negative`); bools refused."""
    bounds = [(name, "> 0") for name in positive] + [(name, ">= 0") for name in non_negative]
    for name, bound in bounds:
        value = getattr(config, name)
        ok = isinstance(value, numbers.Real) and not isinstance(value, bool)
        if ok and math.isfinite(value) and (value > 0 if bound == "> 0" else value >= 0):
            continue
        raise ValueError(
            f"{type(config).__name__}.{name} must be a finite number {bound}, got {value!r}"
        )


def check_seed(config: Any) -> None:
    """Raise `ValueError` unless `config.seed` is an int >= 0 (bools refused)."""
    seed = config.seed
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(f"{type(config).__name__}.seed must be an integer >= 0, got {seed!r}")
