"""The table of model names, and `make`."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable
from typing import Any

from ._base import ModelConfig, TransitionModel

_MODELS: dict[str, type[TransitionModel]] = {}


def register(cls: type[TransitionModel]) -> type[TransitionModel]:
    """Class decorator: add a final model class to the table under `cls.name`."""
    if cls.name in _MODELS:
        raise ValueError(f"model name {cls.name!r} registered twice")
    _MODELS[cls.name] = cls
    return cls


def available_models() -> tuple[str, ...]:
    """Every registered model name."""
    return tuple(_MODELS)


def model_class(name: str) -> type[TransitionModel]:
    """The class registered as `name`; ValueError listing valid names otherwise."""
    try:
        return _MODELS[name]
    except KeyError:
        raise ValueError(
            f"unknown model {name!r}; valid models are: {', '.join(available_models())}"
        ) from None


def check_config_fields(name: str, fields: Iterable[str]) -> None:
    """Raise TypeError, listing the valid fields, if model `name` has no field of these names."""
    valid = [f.name for f in dataclasses.fields(model_class(name).config_class)]
    unknown = sorted(set(fields) - set(valid))
    if unknown:
        raise TypeError(
            f"model {name!r} got unknown config field(s) {', '.join(map(repr, unknown))}; "
            f"valid fields are: {', '.join(valid)}"
        )


def make_config(name: str, **config: Any) -> ModelConfig:
    """The config dataclass of model `name` filled from keyword arguments.

    Unknown fields are refused with the list of valid ones.
    """
    check_config_fields(name, config)
    return model_class(name).config_class(**config)


def make(name: str, **config: Any) -> TransitionModel:
    """Build the model `name` (`node`, `node-so`, `hnn`, `srnn`, `srnn-rebound`, `vin`,
    `pixel-vin`, `hgn`, `pixel-hnn`, `mlp`, `rnn`, `lstm`, or `ensemble` of any state model).

    `config` holds the dimensions (`obs_dim`, `action_dim`, `q_dim`, `state_layout`, `dt`) and
    the model's own fields; see each model's config class.
    """
    return model_class(name)(make_config(name, **config))
