"""Argument checks shared by every environment: clear one-line errors on bad input."""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray

F = TypeVar("F", bound=Callable[..., Any])


def strict_kwargs(valid: Iterable[str] | None = None) -> Callable[[F], F]:
    """Decorate an `__init__` so unknown keyword arguments are refused with the valid ones listed.

    Python's own TypeError ("unexpected keyword argument") does not say what *is* accepted;
    users mistyping an env kwarg in `gym.make` deserve that list. The message starts with
    Python's own wording, because tools match it: TorchRL's `GymEnv` passes `frameskip` and
    drops it only when the error says "unexpected keyword argument 'frameskip'". `valid`
    defaults to the keyword parameters of the decorated function.
    """

    def decorate(init: F) -> F:
        if valid is None:
            params = inspect.signature(init).parameters.values()
            names = [
                p.name
                for p in params
                if p.name != "self"
                and p.kind
                in (inspect.Parameter.KEYWORD_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
            ]
        else:
            names = list(valid)

        @functools.wraps(init)
        def wrapper(self: Any, *args: Any, **kwargs: Any) -> None:
            unknown = [k for k in kwargs if k not in names]
            if unknown:
                also = f" (and {', '.join(map(repr, unknown[1:]))})" if unknown[1:] else ""
                raise TypeError(
                    f"{type(self).__name__}.__init__() got an unexpected keyword argument "
                    f"{unknown[0]!r}{also}; valid arguments are: {', '.join(names)}"
                )
            init(self, *args, **kwargs)

        wrapper.valid_kwargs = tuple(names)  # type: ignore[attr-defined]
        return wrapper  # type: ignore[return-value]

    return decorate


def check_render_mode(render_mode: str | None, metadata: dict[str, Any]) -> None:
    """Refuse a `render_mode` that the env's `metadata["render_modes"]` does not list."""
    if render_mode is not None and render_mode not in metadata["render_modes"]:
        raise ValueError(
            f"render_mode={render_mode!r} is not supported; use one of "
            f"{metadata['render_modes']} or None"
        )


def check_action(action: Any, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """`action` as a float64 array of `shape`; ValueError naming the expected shape otherwise."""
    try:
        a = np.asarray(action, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"action must be a float array of shape {shape}: {err}") from None
    if a.shape != shape:
        raise ValueError(f"action has shape {a.shape}, expected shape {shape}")
    if not np.all(np.isfinite(a)):
        raise ValueError(f"action contains NaN or inf; expected finite values of shape {shape}")
    return a


def check_state(state: Any, shape: tuple[int, ...]) -> NDArray[np.float64]:
    """Validate a state given through `reset(options={"state": ...})`."""
    s = np.asarray(state, dtype=np.float64)
    if s.shape != shape:
        raise ValueError(f"options['state'] has shape {s.shape}, expected shape {shape}")
    if not np.all(np.isfinite(s)):
        raise ValueError("options['state'] contains NaN or inf")
    return s.copy()
