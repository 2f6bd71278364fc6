"""Small building blocks shared by the models."""

from __future__ import annotations

import itertools
from collections.abc import Callable
from typing import Any

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


def checked_frames(
    frames: Any,
    name: str,
    *,
    values: int,
    described: str,
    like: Tensor,
    min_steps: int = 1,
) -> Tensor:
    """`frames` as a `(B, T, values)` tensor on `like`'s device and dtype, `T >= min_steps`;
    otherwise a one-line ValueError naming `name`. `described` says what one frame is (e.g.
    "784 pixels", "32 x 32 x 3"). Shared by the pixel models."""
    frames = torch.as_tensor(frames, device=like.device)
    if frames.ndim != 3 or frames.shape[-1] != values or frames.shape[1] < min_steps:
        steps = f" with T >= {min_steps}" if min_steps > 1 else ""
        raise ValueError(
            f"{name} have shape {tuple(frames.shape)}, expected (B, T, {values}) frames of "
            f"{described}{steps}"
        )
    if not torch.isfinite(frames).all():
        raise ValueError(f"{name} hold NaN or infinite values; frames are in [0, 1]")
    return frames.to(like.dtype)


def check_unit_range(frames: Tensor, model_name: str) -> None:
    """ValueError unless every value of `frames` lies in [0, 1] (what pixel models train on)."""
    low, high = float(frames.min()), float(frames.max())
    if low < 0.0 or high > 1.0:
        raise ValueError(
            f"{model_name} trains on frames with values in [0, 1], got values in "
            f"[{low:.3g}, {high:.3g}]"
        )


def refuse_trainer_options(name: str, own_loss: str, loss: str, initial_states: Any) -> None:
    """The trainer options a model with its own loss and an encoder cannot honour: a `loss`
    kind other than the default "l2" (its loss is `own_loss`), and initial-state
    optimisation (the encoder infers the initial state). One-line ValueErrors naming both."""
    if loss != "l2":
        raise ValueError(
            f"{name}'s loss is {own_loss}; leave the trainer's loss at 'l2', got {loss!r}"
        )
    if initial_states is not None:
        raise ValueError(
            f"{name} infers its initial states with its encoder; train it with iso=False"
        )
