"""Tiny-data fixtures shared by the model tests. Each fixture hands out a plain function:

* `make_windows(n_windows=64, n_states=5, *, n_masses=20, seed=0, actions="zero", layout="qp",
  force_scale=1.0)`: windows of the real `physprior/SpringChain-v0` physics (the unwrapped
  env, so no time limit), each rolled from its own initial state, in `[q, p]` or (converted
  with the chain's masses) `[q, v]`; cached, float64.
* `fit_model(model, windows, *, steps=300, lr=3e-3)`: fits the normalisers, runs full-batch
  Adam on `training_loss`, and reports the loss of predicting no change (`z_{t+1} = z_t`) in
  the same units.
* `shapes_ok(name, dtype, **config)`: `step`/`rollout` shapes and dtype over `SHAPE_CASES`.
* `bad_inputs_refused(name, **config)`: wrong shapes and unknown config fields get clear
  one-line errors.
"""

from __future__ import annotations

import dataclasses
import functools
from collections.abc import Callable
from typing import Any, Literal

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor

import physprior  # noqa: F401  (registers the environments)
from physprior.models import TransitionModel, state_error


@dataclasses.dataclass(frozen=True)
class Windows:
    """`states (N, T+1, D)` and `actions (N, T, A)` (float64) with the data's dims."""

    states: Tensor
    actions: Tensor
    dt: float
    q_dim: int
    state_layout: str

    def dims(self, *, actions: bool = True) -> dict[str, Any]:
        """Model config fields describing this data (`action_dim=0` if `actions` is false)."""
        return {
            "obs_dim": self.states.shape[-1],
            "action_dim": self.actions.shape[-1] if actions else 0,
            "q_dim": self.q_dim,
            "state_layout": self.state_layout,
            "dt": self.dt,
        }

    def float(self) -> Windows:
        """The same windows in float32."""
        return dataclasses.replace(self, states=self.states.float(), actions=self.actions.float())


@functools.lru_cache(maxsize=16)
def _spring_windows(
    n_windows: int,
    n_states: int,
    n_masses: int,
    seed: int,
    actions: str,
    layout: str,
    force_scale: float,
) -> Windows:
    env = gym.make("physprior/SpringChain-v0", n_masses=n_masses, force_scale=force_scale).unwrapped
    rng = np.random.default_rng(seed)
    states = np.empty((n_windows, n_states, 2 * n_masses))
    controls = np.zeros((n_windows, n_states - 1, n_masses))
    if actions == "random":
        controls[:] = rng.uniform(-1.0, 1.0, controls.shape)
    for i in range(n_windows):
        states[i, 0], _ = env.reset(seed=int(rng.integers(2**31)))
        for t in range(n_states - 1):
            states[i, t + 1] = env.step(controls[i, t])[0]
    if layout == "qv":
        states[..., n_masses:] /= env.masses  # p = m v for a diagonal mass matrix
    return Windows(
        torch.from_numpy(states),
        torch.from_numpy(controls),
        float(env.dt),
        n_masses,
        layout,
    )


def spring_windows(
    n_windows: int = 64,
    n_states: int = 5,
    *,
    n_masses: int = 20,
    seed: int = 0,
    actions: Literal["zero", "random"] = "zero",
    layout: Literal["qp", "qv"] = "qp",
    force_scale: float = 1.0,
) -> Windows:
    """`n_windows` SpringChain windows of `n_states` states, each from its own initial state.

    `actions="random"` drives the chain with uniform forces in `[-1, 1]` (env units);
    `layout="qv"` returns velocities `p / m` instead of momenta; `force_scale` is the env's
    (force per unit action).
    """
    return _spring_windows(n_windows, n_states, n_masses, seed, actions, layout, force_scale)


@dataclasses.dataclass(frozen=True)
class FitResult:
    """Losses of a fit, all with the model's own `training_loss` settings."""

    no_change: float
    """Loss of predicting `z_{t+1} = z_t` for every step of every window."""
    initial: float
    final: float


def no_change_loss(model: TransitionModel, states: Tensor) -> float:
    """`state_error` of the prediction `z_{t+1} = z_t` on windows `(N, T+1, D)`."""
    states = states.to(model.dtype)
    return float(state_error(states[:, :-1], states[:, 1:], model.state_norm.std, "l2"))


def fit(
    model: TransitionModel, windows: Windows, *, steps: int = 300, lr: float = 3e-3
) -> FitResult:
    """Fit the normalisers, then `steps` full-batch Adam steps on `training_loss`.

    Runs on one thread: tiny networks gain nothing from more, and the test machines are shared.
    """
    states = windows.states.to(model.dtype)
    actions = windows.actions[..., : model.action_dim].to(model.dtype)
    model.fit_normalization(states, actions)
    optimizer = torch.optim.Adam(model.parameters(), lr=lr)
    model.train()
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with torch.no_grad():
            initial = float(model.training_loss(states, actions))
        for _ in range(steps):
            optimizer.zero_grad()
            loss = model.training_loss(states, actions)
            loss.backward()
            optimizer.step()
        with torch.no_grad():
            final = float(model.training_loss(states, actions))
    finally:
        torch.set_num_threads(threads)
    return FitResult(no_change_loss(model, states), initial, final)


@pytest.fixture(scope="session")
def make_windows() -> Callable[..., Windows]:
    """The `spring_windows` factory (cached: equal arguments give the same windows)."""
    return spring_windows


@pytest.fixture(scope="session")
def fit_model() -> Callable[..., FitResult]:
    """The `fit` helper."""
    return fit


#: `(B, T, D, A)` combinations every model's rollout must handle: one sample, no steps (with
#: and without actions), no actions, more actions than states.
SHAPE_CASES: tuple[tuple[int, int, int, int], ...] = (
    (1, 0, 2, 0),
    (2, 0, 4, 3),
    (3, 1, 4, 2),
    (2, 4, 6, 0),
    (5, 3, 2, 3),
)


def check_shapes(name: str, dtype: torch.dtype, **config: Any) -> None:
    """`step` and `rollout` of model `name` give the documented shapes and `dtype`."""
    from physprior.models import make

    for b, t, d, a in SHAPE_CASES:
        torch.manual_seed(0)
        model = make(name, obs_dim=d, action_dim=a, dt=0.1, **config).to(dtype)
        z0 = torch.randn(b, d, dtype=dtype)
        actions = torch.randn(b, t, a, dtype=dtype)
        for mode in (model.train, model.eval):
            mode()
            states = model.rollout(z0, actions)
            assert states.shape == (b, t + 1, d) and states.dtype == dtype, (b, t, d, a)
            assert torch.equal(states[:, 0], z0)
            assert torch.isfinite(states).all()
            assert model.step(z0, torch.randn(b, a, dtype=dtype)).shape == (b, d)
            if a == 0:
                assert model.rollout(z0, steps=t).shape == (b, t + 1, d)
                assert model.step(z0).shape == (b, d)


@pytest.fixture(scope="session")
def shapes_ok() -> Callable[..., None]:
    """The `check_shapes` helper."""
    return check_shapes


def check_bad_inputs(name: str, **config: Any) -> None:
    """Wrong shapes and unknown config fields get a clear one-line error naming the problem."""
    from physprior.models import make

    model = make(name, obs_dim=4, action_dim=2, dt=0.1, **config)
    z, u = torch.zeros(3, 4), torch.zeros(3, 2)
    cases: list[tuple[Callable[[], object], type[Exception], str]] = [
        (
            lambda: model.step(torch.zeros(3, 5), u),
            ValueError,
            r"state has shape \(3, 5\), expected \(B, 4\)",
        ),
        (
            lambda: model.rollout(torch.zeros(4), torch.zeros(1, 2, 2)),
            ValueError,
            r"state has shape \(4,\)",
        ),
        (
            lambda: model.step(z, torch.zeros(3, 1)),
            ValueError,
            r"action has shape \(3, 1\), expected \(3, 2\)",
        ),
        (
            lambda: model.rollout(z, torch.zeros(3, 2, 1)),
            ValueError,
            r"actions have shape \(3, 2, 1\), expected \(3, T, 2\)",
        ),
        (
            lambda: model.rollout(z, torch.zeros(2, 2, 2)),
            ValueError,
            r"actions have shape \(2, 2, 2\), expected \(3, T, 2\)",
        ),
        (lambda: model.rollout(z, u), ValueError, r"actions have shape \(3, 2\)"),
        (lambda: model.rollout(z), ValueError, "steps=T"),
        (
            lambda: make(name, obs_dim=4, dt=0.1, nope=1, **config),
            TypeError,
            r"unknown config field\(s\) 'nope'; valid fields are: obs_dim, ",
        ),
    ]
    for call, error, pattern in cases:
        with pytest.raises(error, match=pattern) as caught:
            call()
        assert "\n" not in str(caught.value)


@pytest.fixture(scope="session")
def bad_inputs_refused() -> Callable[..., None]:
    """The `check_bad_inputs` helper."""
    return check_bad_inputs
