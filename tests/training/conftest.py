"""A tiny model and exact oscillator windows, so the trainer is tested apart from real models."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
from torch import Tensor

from physprior.models import ModelConfig, TransitionModel
from physprior.models import _registry as registry
from physprior.models._parts import mlp

TINY = "_tiny-test-model"


class TinyModel(TransitionModel):
    """`z_next = z + delta_norm^-1(net([state_norm(z), action_norm(u)]))` (linear if layers=0)."""

    name = TINY

    def __init__(self, config: ModelConfig) -> None:
        super().__init__(config)
        c = config
        self.net = mlp(c.obs_dim + c.action_dim, c.obs_dim, c.hidden, c.layers, c.activation)

    def step_with_memory(self, z: Tensor, u: Tensor, memory: object = None) -> tuple[Tensor, None]:
        x = torch.cat([self.state_norm(z), self.action_norm(u)], dim=-1)
        return z + self.delta_norm.inverse(self.net(x)), None


def make_tiny(
    obs_dim: int = 2, action_dim: int = 1, *, seed: int = 0, **config: object
) -> TinyModel:
    """A seeded tiny model (one hidden layer of 16 unless told otherwise)."""
    config = {"hidden": 16, "layers": 1, "dt": 0.3, **config}
    torch.manual_seed(seed)
    return TinyModel(ModelConfig(obs_dim=obs_dim, action_dim=action_dim, **config))  # type: ignore[arg-type]


def oscillator_windows(
    n: int, steps: int, *, dt: float = 0.3, noise: float = 0.0, seed: int = 0
) -> tuple[Tensor, Tensor, Tensor]:
    """Windows of a forced harmonic oscillator `q'' = -q + u`, exact under held actions.

    Returns noisy states `(n, steps+1, 2)`, actions `(n, steps, 1)` and the clean states.
    """
    rng = np.random.default_rng(seed)
    generator = np.array([[0.0, 1.0, 0.0], [-1.0, 0.0, 1.0], [0.0, 0.0, 0.0]])
    flow = torch.linalg.matrix_exp(torch.from_numpy(generator * dt)).numpy()
    a, b = flow[:2, :2], flow[:2, 2:]
    z = rng.normal(size=(n, 2))
    u = 0.5 * rng.normal(size=(n, steps, 1))
    states = [z]
    for t in range(steps):
        z = z @ a.T + u[:, t] @ b.T
        states.append(z)
    clean = np.stack(states, axis=1)
    noisy = clean + noise * rng.normal(size=clean.shape)
    as_t = lambda x: torch.from_numpy(x).to(torch.float32)  # noqa: E731
    return as_t(noisy), as_t(u), as_t(clean)


@pytest.fixture(autouse=True, scope="module")
def one_thread() -> Iterator[None]:
    """Tiny models train fastest on one thread; on a shared, busy machine two threads that wait
    for each other make an epoch up to 50 times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def tiny() -> Callable[..., TinyModel]:
    return make_tiny


@pytest.fixture(scope="session")
def windows() -> Callable[..., tuple[Tensor, Tensor, Tensor]]:
    return oscillator_windows


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> Iterator[str]:
    """The tiny model in the model table for one test (load_model rebuilds by name)."""
    monkeypatch.setitem(registry._MODELS, TINY, TinyModel)
    yield TINY
