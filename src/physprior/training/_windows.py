"""Turn what the caller passes as windows into checked tensors for the trainer."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
from torch import Tensor

from physprior.models import TransitionModel

from ._checkpoint import check_compatible

BatchTransform = Callable[[Tensor, Tensor], tuple[Tensor, Tensor]]
"""`(states, actions) -> (model inputs, actions)`, applied to every batch of windows."""


def window_tensors(
    data: Any,
    model: TransitionModel,
    *,
    what: str,
    dtype: torch.dtype,
    device: torch.device,
    transform: BatchTransform | None = None,
) -> tuple[Tensor, Tensor]:
    """`(states (N, T+1, D), actions (N, T, A))` from windows, checked for use with `model`.

    `data` is an object with `states` and `actions` (`physprior.data.Windows`) or a pair
    `(states, actions)` of tensors or arrays; `actions` may be `None` for a model without
    action input. `what` ("training", "validation") names the data in error messages. Refuses
    an empty set, shapes that do not fit `model`, and NaN or infinite values. With a
    `transform` (what the trainer applies to each batch, e.g. drawing states as frames), the
    model is checked against the transformed first window instead of the raw states.
    """
    if isinstance(data, (tuple, list)) and len(data) == 2:
        states, actions = data
    elif hasattr(data, "states") and hasattr(data, "actions"):
        states, actions = data.states, data.actions
    else:
        raise TypeError(
            f"{what} windows must have states and actions (e.g. physprior.data.Windows) or be a "
            f"pair (states, actions); got {type(data).__name__}"
        )
    states = _as_tensor(states, f"{what} states")
    if states.ndim != 3 or states.shape[1] < 2:
        raise ValueError(
            f"{what} states have shape {tuple(states.shape)}, expected (N, T+1, D) with T >= 1"
        )
    n, t1, d = states.shape
    if n == 0:
        raise ValueError(f"no {what} windows")
    if actions is None:
        actions = torch.zeros(n, t1 - 1, model.action_dim, dtype=states.dtype)
    actions = _as_tensor(actions, f"{what} actions")
    if actions.ndim != 3 or actions.shape[:2] != (n, t1 - 1):
        raise ValueError(
            f"{what} actions have shape {tuple(actions.shape)}, expected ({n}, {t1 - 1}, A) "
            f"for states {tuple(states.shape)}"
        )
    if transform is not None:
        seen, seen_actions = transform(states[:1].to(dtype), actions[:1].to(dtype))
        check_compatible(model, (int(seen.shape[-1]), int(seen_actions.shape[-1])))
    else:
        # Windows of a dataset carry its meta: then dt, layout and env are checked as well.
        check_compatible(model, data if hasattr(data, "meta") else (d, int(actions.shape[-1])))
    finite = torch.isfinite(states).flatten(1).all(1) & torch.isfinite(actions).flatten(1).all(1)
    bad = int((~finite).sum())
    if bad:
        raise ValueError(f"{what} windows contain NaN or infinite values in {bad} of {n} windows")
    return (
        states.to(device=device, dtype=dtype).contiguous(),
        actions.to(device=device, dtype=dtype).contiguous(),
    )


def _as_tensor(value: Any, name: str) -> Tensor:
    if isinstance(value, Tensor):
        tensor = value.detach()
    elif isinstance(value, np.ndarray):
        tensor = torch.from_numpy(np.ascontiguousarray(value))
    else:
        raise TypeError(f"{name} must be a torch tensor or numpy array, got {type(value).__name__}")
    if not (tensor.is_floating_point() or tensor.dtype in (torch.int32, torch.int64)):
        raise TypeError(f"{name} must hold numbers, got dtype {tensor.dtype}")
    return tensor
