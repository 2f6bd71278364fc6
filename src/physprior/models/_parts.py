"""Small building blocks shared by the models."""

from __future__ import annotations

import itertools

from torch import nn

ACTIVATIONS: dict[str, type[nn.Module]] = {
    "tanh": nn.Tanh,
    "softplus": nn.Softplus,
    "relu": nn.ReLU,
    "silu": nn.SiLU,
    "elu": nn.ELU,
}


def mlp(in_dim: int, out_dim: int, hidden: int, layers: int, activation: str) -> nn.Sequential:
    """An MLP `in_dim -> [hidden] * layers -> out_dim` with `activation` between layers."""
    try:
        act = ACTIVATIONS[activation]
    except KeyError:
        raise ValueError(
            f"unknown activation {activation!r}; valid: {', '.join(ACTIVATIONS)}"
        ) from None
    widths = [in_dim] + [hidden] * layers + [out_dim]
    modules: list[nn.Module] = []
    for i, (a, b) in enumerate(itertools.pairwise(widths)):
        modules.append(nn.Linear(a, b))
        if i < len(widths) - 2:
            modules.append(act())
    return nn.Sequential(*modules)
