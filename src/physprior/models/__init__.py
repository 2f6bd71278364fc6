"""Transition models with and without physics priors.

`make(name, **config)` builds one: `node`, `node-so`, `hnn`, `srnn`, `srnn-rebound`, `vin`, `mlp`,
`rnn`, `lstm`, the pixel models `pixel-vin`, `hgn`, `pixel-hnn`, and `ensemble` (K members of
any state model, for PETS and MBPO).
Every model is a `TransitionModel` (a `torch.nn.Module`) with `step(z, u)` and
`rollout(z0, actions)`.
"""

from __future__ import annotations

import importlib
import pkgutil

from ._base import LossKind, Memory, ModelConfig, TransitionModel, gaussian_nll, state_error
from ._normalizer import Normalizer
from ._registry import available_models, check_config_fields, make, make_config, model_class

# Each public module of this package defines one final model and registers it on import.
for _module in pkgutil.iter_modules(__path__):
    if not _module.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_module.name}")

__all__ = [
    "LossKind",
    "Memory",
    "ModelConfig",
    "Normalizer",
    "TransitionModel",
    "available_models",
    "check_config_fields",
    "gaussian_nll",
    "make",
    "make_config",
    "model_class",
    "state_error",
]
