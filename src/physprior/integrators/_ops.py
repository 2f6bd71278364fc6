"""The one arithmetic primitive of every step rule, fused to keep small-tensor loops fast."""

from __future__ import annotations

import torch
from torch import Tensor

from ._base import Step


def axpy(x: Tensor, a: Step, y: Tensor) -> Tensor:
    """``x + a * y`` as one out-of-place (autograd-safe) op instead of two.

    Rollouts loop over tiny tensors, where each torch call costs microseconds of overhead
    regardless of size; fusing the scale into the add roughly halves the calls of a step.
    ``a`` is a Python float or a tensor broadcastable against ``y``.
    """
    if isinstance(a, Tensor):
        return torch.addcmul(x, a, y)
    return torch.add(x, y, alpha=a)
