"""MBPO's model fit: a lean in-memory training loop over windows of the real transitions.

`physprior.training.Trainer` writes a run folder with a checkpoint after every epoch; MBPO
refits its model every few hundred env steps, so it trains in memory instead, with the same
pieces the trainer uses (the model's `fit_normalization` and `training_loss`, AdamW, the batch
order a pure function of the seed and the fit's index) and keeps one optimiser across refits,
as MBPO warm-starts its model from the previous fit.
"""

from __future__ import annotations

import hashlib
import math
from typing import Any

import torch
from torch import Tensor

from physprior.models import TransitionModel


def derive_seed(seed: int, index: int, stream: str) -> int:
    """A 63-bit seed that depends only on `(seed, index, stream)`."""
    digest = hashlib.sha256(f"physprior.mbpo:{stream}:{seed}:{index}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def fit_model(
    model: TransitionModel,
    optimizer: torch.optim.Optimizer,
    states: Tensor,
    actions: Tensor,
    *,
    epochs: int,
    batch_size: int,
    seed: int,
) -> float:
    """Fit `model` to windows `states (N, T+1, D)`, `actions (N, T, A)` (env units) in place.

    Refits the normalisers on these windows (the data grows between fits), then runs `epochs`
    passes of AdamW steps on the model's own `training_loss`. The batch order and any global
    torch randomness are drawn from `seed` only; the caller's torch random state is restored.
    Returns the mean training loss of the last epoch (normalised state units). Raises
    FloatingPointError on a non-finite loss.
    """
    states = states.to(model.dtype)
    actions = actions.to(model.dtype)
    model.fit_normalization(states, actions)
    model.train()
    n = states.shape[0]
    mean = math.nan
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        generator = torch.Generator().manual_seed(seed)
        for epoch in range(epochs):
            total = 0.0
            for batch in torch.randperm(n, generator=generator).split(batch_size):
                loss = model.training_loss(states[batch], actions[batch])
                value = float(loss.detach())
                if not math.isfinite(value):
                    raise FloatingPointError(
                        f"model fit diverged: loss is {value} in epoch {epoch + 1}"
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += value * len(batch)
            mean = total / n
    optimizer.zero_grad(set_to_none=True)
    model.eval()
    return mean


def fit_ensemble(
    ensemble: TransitionModel,
    states: Tensor,
    actions: Tensor,
    *,
    epochs: int,
    batch_size: int,
    lr: float,
    weight_decay: float,
    seed: int,
    index: int,
) -> list[float]:
    """Refit every member of `ensemble` on its own bootstrap resample of the windows
    `states (N, T+1, D)`, `actions (N, T, A)` (drawn afresh at each refit `index`, as
    mbrl-lib's bootstrap iterator does per training run), each with a fresh AdamW, warm-started
    from its current weights; the ensemble's own normalisers are refitted on all the windows.
    Returns each member's last-epoch loss. Deterministic in `(seed, index)`."""
    members: Any = getattr(ensemble, "members", None)
    if members is None:
        raise TypeError(f"fit_ensemble needs an ensemble, got {type(ensemble).__name__}")
    ensemble.fit_normalization(states.to(ensemble.dtype), actions.to(ensemble.dtype))
    n = states.shape[0]
    losses = []
    for k, member in enumerate(members):
        generator = torch.Generator().manual_seed(derive_seed(seed, index, f"bootstrap-{k}"))
        rows = torch.randint(n, (n,), generator=generator)
        optimizer = torch.optim.AdamW(member.parameters(), lr=lr, weight_decay=weight_decay)
        losses.append(
            fit_model(
                member,
                optimizer,
                states[rows],
                actions[rows],
                epochs=epochs,
                batch_size=batch_size,
                seed=derive_seed(seed, index, f"member-{k}"),
            )
        )
    ensemble.eval()
    return losses
