"""Input checks shared by the models that override `TransitionModel.rollout` for speed."""

from __future__ import annotations

from torch import Tensor

from ._base import TransitionModel

__all__ = ["rollout_inputs"]


def rollout_inputs(
    model: TransitionModel, z0: Tensor, actions: Tensor | None, steps: int | None
) -> tuple[Tensor, Tensor]:
    """Checked `z0 (B, D)` and `actions (B, T, A)` in the model's dtype, as `rollout` takes them.

    Without actions (`action_dim == 0` systems) `steps=T` gives `T` empty actions `(B, T, 0)`;
    a model with an action input gets zero actions.
    """
    z = model._check_state(z0)
    if actions is None:
        if steps is None:
            raise ValueError("rollout needs actions (B, T, A) or, without actions, steps=T")
        if steps < 0:
            raise ValueError(f"steps must be >= 0, got {steps}")
        return z, z.new_zeros(z.shape[0], steps, model.action_dim)
    return z, model._check_actions(actions, z.shape[0], None)
