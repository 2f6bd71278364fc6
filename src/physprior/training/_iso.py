"""Initial-state optimisation (ISO, SRNN paper section 4.3), for any transition model.

With noisy observations, a rollout that starts from the observed first state inherits its
noise for the whole window. ISO treats the initial state of each window as a free parameter
and fits it by L-BFGS to the rest of the window, with the model's parameters frozen: the
maximum-likelihood estimate of the initial state under Gaussian noise (SRNN appendix B).
The objective is the model's own `training_loss(..., initial_states=z0)` (the rollout error at
steps 1..T, in normalised state units) plus the error of `z0` itself against the observed
first state, weighted as one more step of the window. The paper leaves that last term out;
it is the same likelihood with the first observation counted too, and it keeps `z0` tied to
the data in directions the rollout barely constrains.

Used twice: during training the trainer refines the stored initial state of every training
window after each epoch past the warm-up; at test time `fit_initial_state` fits the initial
state to the first K observed steps before the model predicts the rest.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor

from physprior.models import LossKind, TransitionModel, state_error


def optimize_initial_states(
    model: TransitionModel,
    states: Tensor,
    actions: Tensor,
    init: Tensor,
    *,
    iterations: int = 20,
    loss: LossKind = "l2",
    batch_size: int | None = None,
) -> Tensor:
    """Initial states `(N, D)` whose rollouts best match the observed windows.

    Args:
        model: a transition model, used in its current mode (training or evaluation decides
            the integrator); its parameters are not changed and get no gradients.
        states: observed windows `(N, T+1, D)`: the rollout targets (steps `1..T`) and the
            observed first states `z0` is tied to (step 0).
        actions: actions `(N, T, A)` taken in the windows.
        init: starting guesses `(N, D)`, e.g. the observed `states[:, 0]` or earlier estimates.
        iterations: L-BFGS iterations per problem.
        loss: `"l2"` or `"l1"`, as in training.
        batch_size: windows per L-BFGS problem (`None`: all at once). Windows are independent;
            smaller problems bound the memory of the rollout graph.

    Returns the refined initial states `(N, D)`, detached. A problem whose L-BFGS run ends
    non-finite or worse than its start (possible with the L1 loss) keeps its `init` rows.
    """
    if states.ndim != 3 or states.shape[-1] != model.obs_dim or states.shape[1] < 2:
        raise ValueError(
            f"states have shape {tuple(states.shape)}, expected (N, T+1, {model.obs_dim}) "
            "with T >= 1"
        )
    n, t1, d = states.shape
    if init.shape != (n, d):
        raise ValueError(f"init has shape {tuple(init.shape)}, expected ({n}, {d})")
    if actions.ndim != 3 or actions.shape[:2] != (n, t1 - 1):
        raise ValueError(f"actions have shape {tuple(actions.shape)}, expected ({n}, {t1 - 1}, A)")
    if iterations < 1:
        raise ValueError(f"iterations must be >= 1, got {iterations}")
    if batch_size is not None and batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    dtype = model.dtype
    states, actions, init = states.to(dtype), actions.to(dtype), init.to(dtype)
    step = n if batch_size is None else batch_size
    refined = [
        _lbfgs(
            model, states[i : i + step], actions[i : i + step], init[i : i + step], iterations, loss
        )
        for i in range(0, n, step)
    ]
    return torch.cat(refined) if refined else init.detach().clone()


def fit_initial_state(
    model: TransitionModel,
    observed: Tensor,
    actions: Tensor | None = None,
    *,
    iterations: int = 50,
    loss: LossKind = "l2",
) -> Tensor:
    """The initial state `(B, D)` that best explains the first K observed steps.

    The test-time half of ISO: `observed (B, K, D)` (K >= 2) are the noisy first steps and
    `actions (B, K-1, A)` the actions between them (`None`: no action input). The model runs
    in evaluation mode (its test integrator) and is left in the mode it was in. Predict the
    rest with `model.rollout(z0, future_actions)`, starting from the returned `z0` at the
    time of `observed[:, 0]`.
    """
    if observed.ndim != 3 or observed.shape[1] < 2:
        raise ValueError(
            f"observed has shape {tuple(observed.shape)}, expected (B, K, D) with K >= 2 steps"
        )
    b, k, _ = observed.shape
    if actions is None:
        actions = observed.new_zeros(b, k - 1, model.action_dim)
    was_training = model.training
    model.eval()
    try:
        return optimize_initial_states(
            model, observed, actions, observed[:, 0], iterations=iterations, loss=loss
        )
    finally:
        model.train(was_training)


def initial_state_loss(
    model: TransitionModel, states: Tensor, actions: Tensor, z0: Tensor, loss: LossKind
) -> Tensor:
    """ISO's objective for windows `states (N, T+1, D)`, `actions (N, T, A)` rolled out from
    initial states `z0 (N, D)`: the rollout error at steps `1..T` and the error of `z0` against
    the observed first state (one more noisy measurement of it), as a mean over the `T + 1`
    states; differentiable in `z0` and in the model's parameters."""
    steps = states.shape[1] - 1
    rollout = model.training_loss(states, actions, loss=loss, initial_states=z0)
    anchor = state_error(z0, states[:, 0], model.state_norm.std, loss)
    return (rollout * steps + anchor) / (steps + 1)


def _lbfgs(
    model: TransitionModel,
    states: Tensor,
    actions: Tensor,
    init: Tensor,
    iterations: int,
    loss: LossKind,
) -> Tensor:
    """One L-BFGS problem over the initial states `init (n, D)` of `n` windows."""
    z = init.detach().clone().requires_grad_(True)
    n = z.shape[0]

    def objective() -> Tensor:
        # The per-window mean summed over windows: each window's gradient keeps its size
        # whatever n is, so L-BFGS's absolute tolerances mean the same for any batch.
        return initial_state_loss(model, states, actions, z, loss) * n

    def closure() -> Tensor:
        value = objective()
        # Gradients for z only: the model's parameters stay frozen and their .grad untouched.
        (z.grad,) = torch.autograd.grad(value, z)
        return value.detach()

    optimizer = torch.optim.LBFGS(
        [z], lr=1.0, max_iter=iterations, history_size=10, line_search_fn="strong_wolfe"
    )
    # enable_grad: ISO may be called under no_grad (evaluation code), yet needs gradients.
    with torch.enable_grad():
        start = float(optimizer.step(closure))
        end = float(objective().detach())
    if not math.isfinite(end) or end > start:
        return init.detach().clone()
    return z.detach()
