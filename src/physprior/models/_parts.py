"""Small building blocks shared by the models."""

from __future__ import annotations

import itertools
from collections.abc import Callable

import torch
from torch import Tensor, nn

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


def gradient_of(function: Callable[[Tensor], Tensor], x: Tensor) -> Tensor:
    """`d function(x).sum() / dx`, shaped like `x`: kept in the autograd graph when gradients
    are on (so a loss on a rollout trains the network inside `function`), plain values under
    `torch.no_grad()` (an env stepping the model)."""
    outer = torch.is_grad_enabled()
    with torch.enable_grad():
        leaf = x if x.requires_grad else x.detach().requires_grad_(True)
        (grad,) = torch.autograd.grad(function(leaf).sum(), leaf, create_graph=outer)
    return grad
