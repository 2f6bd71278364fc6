"""Array-namespace helpers so reward, termination and energy functions accept numpy or torch.

`physprior.envs` must not depend on torch (the ground truth stays independent of the models),
so torch is only touched when the caller already passed a torch tensor.
"""

from __future__ import annotations

from types import ModuleType
from typing import Any

import numpy as np


def is_torch(x: Any) -> bool:
    """True if `x` is a torch tensor (checked without importing torch)."""
    # numpy arrays first: one-row env steps call this several times per step.
    return type(x) is not np.ndarray and type(x).__module__.startswith("torch")


def namespace(x: Any) -> ModuleType:
    """The array module (numpy or torch) that operates on `x`.

    Both modules accept the numpy-style names used in this package (`sum(..., axis=)`,
    `sqrt`, `sin`, `cos`, `clip`, `where`, `isfinite`, `all`, `any`, `abs`, `arctan2`).
    """
    if is_torch(x):
        import torch

        return torch
    return np


def constant_like(value: Any, like: Any) -> Any:
    """`value` (a python scalar or numpy array) as an array of `like`'s kind, dtype and device."""
    if is_torch(like):
        import torch

        # A copy: torch warns when wrapping a read-only array (env parameters are read-only).
        return torch.tensor(np.array(value), dtype=like.dtype, device=like.device)
    # float64 rows (the envs' own and the single learned env's) skip `result_type`'s cost.
    dtype = np.float64 if like.dtype == np.float64 else np.result_type(like.dtype, np.float64)
    return np.asarray(value, dtype=dtype)


def as_batch(x: Any, dim: int, name: str) -> tuple[Any, bool]:
    """View `x` as a batch `(N, dim)`; returns the batch and whether the input was unbatched.

    Raises ValueError naming `name` and the expected trailing dimension on a mismatch.
    """
    if not is_torch(x):
        x = np.asarray(x, dtype=np.float64)
    if x.ndim == 0 or x.shape[-1] != dim:
        raise ValueError(f"{name} has shape {tuple(x.shape)}, expected (..., {dim})")
    if x.ndim == 1:
        return x[None], True
    return x, False


def unbatch(y: Any, was_single: bool) -> Any:
    """Undo `as_batch` on a per-row result: a scalar (numpy float/bool or 0-d tensor) if single."""
    if not was_single:
        return y
    return y[0] if is_torch(y) else y[0].item()
