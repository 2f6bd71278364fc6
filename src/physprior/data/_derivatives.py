"""Training on exact time derivatives (the HNN protocol), as windows any model can fit.

Greydanus et al. train their baseline and their HNN on pairs `(y, f(z))`: a noisy observation
`y = z + noise` of a state `z` and the exact time derivative `f(z)` of the true system at the
clean state. `derivative_windows` turns a noiseless trajectory set into such pairs, written as
2-state windows `[y, y + dt f(z)]`: the one-step forward-Euler window of the true field. A
model trained single-step with the Euler integrator (`train_mode="single"`,
`integrator="euler"`, one substep) then predicts `y + dt f_model(y)` and its loss is
`dt^2 |f_model(y) - f(z)|^2` in state units: derivative regression, with no finite difference
and no `1 / dt` amplification of the observation noise. Evaluate it with any integrator
(`test_integrator="rk4"`, as the HNN paper does).
"""

from __future__ import annotations

import dataclasses

import gymnasium as gym
import numpy as np

from ._dataset import TransitionDataset
from ._windows import Windows, make_windows


def derivative_windows(data: TransitionDataset, *, noise_std: float = 0.0, seed: int) -> Windows:
    """One window `[y, y + dt f(z)]` `(N, 2, D)` per transition row of `data`.

    Args:
        data: noiseless trajectories of a physics env with a closed-form field
            (`env.unwrapped.time_derivative`), e.g. from `generate_trajectories`; `z` is each
            row's `obs` and `f(z)` the true `dz/dt` under the row's action.
        noise_std: standard deviation of the Gaussian noise added to every `z` (the inputs);
            the targets `f(z)` stay exact, as in the HNN authors' code.
        seed: seeds the noise (`numpy.random.default_rng`).

    The windows carry the rows' actions `(N, 1, A)`, episodes and indices, and the dataset's
    meta with `noise_std` recorded in `meta.extra`.
    """
    if not isinstance(data, TransitionDataset):
        raise TypeError(f"data must be a TransitionDataset, got {type(data).__name__}")
    if not (np.isfinite(noise_std) and noise_std >= 0):
        raise ValueError(f"noise_std must be a finite number >= 0, got {noise_std!r}")
    meta = data.meta
    import physprior.envs  # noqa: F401  (registers the environments)

    env = gym.make(meta.env_id, **dict(meta.extra.get("env_kwargs") or {})).unwrapped
    field = getattr(env, "time_derivative", None)
    if field is None:
        raise ValueError(f"{meta.env_id} has no time_derivative: it is not a physics env")
    # One transition window per row: its first state is the row's obs, its action the row's.
    pairs = make_windows(data, 2)
    clean = np.asarray(pairs.states[:, 0], dtype=np.float64)
    actions = np.asarray(pairs.actions, dtype=np.float64)
    rates = np.asarray(field(clean, actions[:, 0]), dtype=np.float64)
    noisy = clean + noise_std * np.random.default_rng(seed).standard_normal(clean.shape)
    extra = dict(meta.extra, noise_std=float(noise_std), targets="exact time derivatives")
    return dataclasses.replace(
        pairs,
        states=np.stack([noisy, noisy + meta.dt * rates], axis=1),
        actions=actions,
        meta=dataclasses.replace(meta, extra=extra),
    )
