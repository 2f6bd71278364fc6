"""Values built from a model's weights, kept while the weights stay as they are.

A single learned env steps one row at a time, and each step used to rebuild the folded
networks from the parameters and normalisers (about 0.3 ms for a 2 x 128 `mlp`, longer
than the step itself). `inference_cached` keeps such a value while gradients are off and
none of the model's tensors has changed: `TensorVersions` compares them by identity and by
their in-place version counter, which every optimiser step, `load_state_dict` and
normaliser fit bumps. It holds the tensors it compares, so that a freed tensor's id can never
come back as a false match. (Writes through `.data` bypass the version counter; code that
does that must call `model.clear_inference_cache()`.)
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable, Sequence
from typing import Any, TypeVar

import torch
from torch import Tensor

__all__ = ["TensorVersions", "inference_cached"]

T = TypeVar("T")


class TensorVersions:
    """The tensors of a model at one moment: which objects, at which in-place version."""

    __slots__ = ("tensors", "versions")

    def __init__(self, tensors: Sequence[Tensor]) -> None:
        self.tensors = tuple(tensors)
        self.versions = [t._version for t in self.tensors]

    def matches(self, tensors: Sequence[Tensor]) -> bool:
        """Whether `tensors` are the same objects, none modified in place since."""
        # `map` and a list comprehension rather than generators: a single env checks this
        # on every one-row step.
        return (
            len(tensors) == len(self.tensors)
            and all(map(operator.is_, tensors, self.tensors))
            and [t._version for t in tensors] == self.versions
        )


def inference_cached(method: Callable[..., T]) -> Callable[..., T]:
    """Cache `method(self, *args, **kwargs)` (hashable arguments) while gradients are off,
    until one of the model's parameters or buffers changes (`TensorVersions`). With gradients
    on it is built afresh every call, so that a loss reaches the parameters through it; under
    `vmap` (an ensemble's members) too."""
    name = method.__name__

    @functools.wraps(method)
    def cached(self: Any, *args: Any, **kwargs: Any) -> T:
        if torch.is_grad_enabled():
            return method(self, *args, **kwargs)
        tensors = self._weight_tensors()
        if tensors and torch._C._functorch.is_batchedtensor(tensors[0]):
            return method(self, *args, **kwargs)
        key = (name, args, tuple(sorted(kwargs.items())))
        entry = self._inference_cache.get(key)
        if entry is not None and entry[0].matches(tensors):
            return entry[1]
        value = method(self, *args, **kwargs)
        self._inference_cache[key] = (TensorVersions(tensors), value)
        return value

    return cached
