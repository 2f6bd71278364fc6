"""CEM and MPPI model-predictive control over batched learned dynamics, as SB3-style agents.

Each decision samples `population` action sequences of `horizon` steps per observation and
scores all of them (for every observation of the batch) in one `rollout_returns` call per
iteration; nothing loops over candidates in Python. Sequences live in normalised units
`u in [-1, 1]` (see `_config`); samples are clipped to that box, so every planned action
lies within the env's bounds.
"""

from __future__ import annotations

import abc
import math
import os
import time
from typing import TYPE_CHECKING, Any, ClassVar, Protocol, Union, final

import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from ._config import CEMConfig, ICEMConfig, MPPIConfig, PlannerConfig

if TYPE_CHECKING:
    from physprior.models import TransitionModel

__all__ = [
    "BatchedDynamics",
    "CEMPlanner",
    "DynamicsLike",
    "ICEMPlanner",
    "MPPIPlanner",
    "Planner",
    "as_dynamics",
    "coloured_noise",
]

# Stand-in for a non-finite candidate return: far below any real return, yet finite, so that
# sorting and softmax weights stay well defined.
_WORST = -1e30


class BatchedDynamics(Protocol):
    """What a planner needs of the dynamics: `physprior.learned_env.ModelDynamics` has it."""

    obs_dim: int
    action_dim: int
    action_low: Tensor
    action_high: Tensor

    def rollout_returns(self, obs: Tensor, actions: Tensor, discount: float = 1.0) -> Tensor:
        """`obs (N, D)`, `actions (N, H, A)` in env units -> `(N,)` returns."""
        ...


DynamicsLike = Union[BatchedDynamics, "TransitionModel", str, "os.PathLike[str]"]
"""What a planner plans with: batched dynamics (`ModelDynamics`), a trained model, or the
path of its checkpoint or training run folder."""


def as_dynamics(
    dynamics: DynamicsLike, env_id: str | None = None, device: str | torch.device = "cpu"
) -> BatchedDynamics:
    """`dynamics` itself if it has `rollout_returns`, else a `ModelDynamics` over the model
    (or the model saved at the path) and the env `env_id` (default: the one it was trained
    on), with the env's reward, termination and action bounds."""
    if hasattr(dynamics, "rollout_returns"):
        if env_id is not None:
            raise TypeError("env_id is for a model or a path; these dynamics carry their env")
        return dynamics  # type: ignore[return-value]
    from physprior.learned_env import ModelDynamics, resolve_model

    model = resolve_model(dynamics)
    base = env_id if env_id is not None else model.config.env_id
    if base is None:
        raise TypeError("env_id is required: the model does not record the env it was trained on")
    return ModelDynamics(model, base, device=device)


class Planner(abc.ABC):
    """Base of the MPC agents: plan bookkeeping, input checks and SB3's `predict`.

    A planner keeps one plan (`(H, A)` mean in normalised units) per row of the observation
    batch, so it can serve a vector env with several copies. Subclasses implement `_optimise`.
    """

    config: PlannerConfig
    #: The config class this planner takes; `config=None` means its defaults.
    config_class: ClassVar[type[PlannerConfig]]

    def __init__(
        self,
        dynamics: DynamicsLike,
        config: PlannerConfig | None = None,
        *,
        env_id: str | None = None,
        device: str | torch.device = "cpu",
    ) -> None:
        config_class = type(self).config_class
        config = config_class() if config is None else config
        if type(config) is not config_class:  # an ICEMConfig is a CEMConfig, not CEM's
            article = "an" if config_class.__name__[0] in "AEIMOU" else "a"
            raise TypeError(
                f"{type(self).__name__} needs {article} {config_class.__name__}, "
                f"got {type(config).__name__}"
            )
        dynamics = as_dynamics(dynamics, env_id, device)
        low = torch.as_tensor(dynamics.action_low).reshape(-1)
        high = torch.as_tensor(dynamics.action_high).reshape(-1)
        if low.shape != (dynamics.action_dim,) or high.shape != (dynamics.action_dim,):
            raise ValueError(
                f"action bounds have shapes {tuple(low.shape)} and {tuple(high.shape)}, "
                f"expected ({dynamics.action_dim},)"
            )
        if dynamics.action_dim < 1:
            raise ValueError("planners need an action input, but action_dim is 0")
        if not bool(torch.isfinite(low).all() & torch.isfinite(high).all() & (low < high).all()):
            raise ValueError(
                f"planners need finite action bounds with low < high, got low {low.tolist()} "
                f"and high {high.tolist()}"
            )
        #: Members of the ensemble planned through (None: a single model).
        self.ensemble_size: int | None = getattr(dynamics, "ensemble_size", None)
        if config.propagation != "mean" and self.ensemble_size is None:
            raise ValueError(
                f"propagation {config.propagation!r} carries particles through an ensemble's "
                "members; these dynamics hold a single model (use propagation 'mean')"
            )
        self.dynamics = dynamics
        self.config = config
        self.obs_dim = int(dynamics.obs_dim)
        self.action_dim = int(dynamics.action_dim)
        # Plans are sampled in the dtype and on the device of the bounds (the model's).
        self._dtype = low.dtype if low.is_floating_point() else torch.float32
        self._device = low.device
        self._center = ((high + low) / 2).to(self._dtype)
        self._half = ((high - low) / 2).to(self._dtype)
        self._generator = torch.Generator(device=self._device)
        self._rows = 0
        self._mean = torch.empty(0)
        self._noise = torch.empty(0)
        self._samples = torch.empty(0)
        self._actions = torch.empty(0)
        self.decision_seconds = 0.0
        """Wall-clock seconds spent in `predict` since construction or `reset`."""
        self.decisions = 0
        """Number of `predict` calls since construction or `reset`."""
        self.reset()

    # ------------------------------------------------------------------ public
    def reset(self) -> None:
        """Forget every plan, re-seed the generator and clear the timing counters."""
        self._generator.manual_seed(self.config.seed)
        self._rows = 0
        self.decision_seconds = 0.0
        self.decisions = 0

    @property
    def mean_decision_ms(self) -> float:
        """Mean wall-clock milliseconds per `predict` call (NaN before the first one)."""
        return 1000.0 * self.decision_seconds / self.decisions if self.decisions else float("nan")

    def predict(
        self,
        observation: NDArray[Any] | dict[str, NDArray[Any]] | Tensor,
        state: Any = None,
        episode_start: NDArray[Any] | bool | None = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[np.float32], None]:
        """Plan from `observation` and return the first planned action (SB3's signature).

        `observation` is `(D,)` or a batch `(n, D)` (a vector env's); the action is `(A,)` or
        `(n, A)` in env units, within the action bounds. `episode_start` (`(n,)` bools, SB3's
        flags) restarts the plan of each row that begins a new episode. `state` is returned
        unchanged as `None` (planners keep their plans themselves); `deterministic` is
        accepted for SB3 and ignored: sampling is seeded by `config.seed`, so a fresh or
        `reset` planner repeats its actions for the same observations.
        """
        start = time.perf_counter()
        obs, single = self._check_obs(observation)
        n = obs.shape[0]
        if n != self._rows:
            self._allocate(n)
        elif episode_start is not None:
            starts = np.asarray(episode_start, dtype=bool).reshape(-1)
            if starts.shape != (n,):
                raise ValueError(
                    f"episode_start has {starts.size} entries, expected {n} (one per observation)"
                )
            if starts.any():
                self._restart(torch.from_numpy(starts).to(self._device))
        with torch.no_grad():
            plan = self._optimise(obs, self._mean)
            first = torch.addcmul(self._center, self._half, plan[:, 0])
            if self.config.warm_start:
                self._mean[:, :-1] = plan[:, 1:]
                self._mean[:, -1] = 0.0
            else:
                self._mean.zero_()
        action = first.to("cpu", torch.float32).numpy()
        self.decision_seconds += time.perf_counter() - start
        self.decisions += 1
        return (action[0] if single else action), None

    # ------------------------------------------------------------------ for subclasses
    def _restart(self, rows: Tensor) -> None:
        """Forget the plans of the rows (a bool mask `(n,)`) whose episode starts anew."""
        self._mean[rows] = 0.0

    @abc.abstractmethod
    def _optimise(self, obs: Tensor, mean: Tensor) -> Tensor:
        """Improve the plans `mean (n, H, A)` (normalised) for `obs (n, D)`; return the final
        plans `(n, H, A)` (a new tensor or `mean` itself)."""

    def _sample(self, mean: Tensor, std: Tensor | float) -> Tensor:
        """`population` clipped Gaussian sequences around each plan: `(n, P, H, A)`.

        Reuses preallocated buffers; the result is overwritten by the next call.
        """
        torch.randn(self._noise.shape, generator=self._generator, out=self._noise)
        if isinstance(std, Tensor):
            torch.addcmul(mean.unsqueeze(1), std.unsqueeze(1), self._noise, out=self._samples)
        else:
            torch.add(mean.unsqueeze(1), self._noise, alpha=std, out=self._samples)
        return self._samples.clamp_(-1.0, 1.0)

    def _returns(self, obs_rep: Tensor, samples: Tensor) -> Tensor:
        """Model returns `(n, P)` of `samples (n, P, H, A)` from `obs_rep (n * P, D)`, in one
        batched rollout; non-finite returns count as the worst possible.

        Under `ts1` / `tsinf` every candidate is rolled out as `particles` particles, each on
        members drawn by `_draw_members`, and scores their mean return."""
        n, p, h, a = samples.shape
        c = self.config
        actions = self._actions if self._actions.shape == samples.shape else None
        actions = torch.addcmul(self._center, self._half, samples, out=actions)
        flat = actions.view(n * p, h, a)
        if c.propagation == "mean":
            returns = self.dynamics.rollout_returns(obs_rep, flat, c.discount)
        else:
            rows = n * p * c.particles
            returns = self.dynamics.rollout_returns(  # type: ignore[call-arg]
                obs_rep.repeat_interleave(c.particles, dim=0),
                flat.repeat_interleave(c.particles, dim=0),
                c.discount,
                members=self._draw_members(rows, h),
            )
            returns = returns.view(n * p, c.particles).mean(dim=1)
        returns = returns.reshape(n, p).to(self._dtype)
        return torch.nan_to_num(returns, nan=_WORST, posinf=_WORST, neginf=_WORST)

    def _draw_members(self, rows: int, horizon: int) -> Tensor:
        """Members of `rows` particles: `(rows,)` for TS-inf (one member for the whole rollout),
        `(rows, horizon)` for TS-1 (drawn again at every step). Each draw is a random
        permutation of the rows taken modulo K, so the members share the particles evenly."""
        assert self.ensemble_size is not None
        k, g, device = self.ensemble_size, self._generator, self._device
        if self.config.propagation == "tsinf":
            return torch.randperm(rows, generator=g, device=device) % k
        keys = torch.rand(horizon, rows, generator=g, device=device)
        return (torch.argsort(keys, dim=1) % k).T.contiguous()

    def _repeat(self, obs: Tensor) -> Tensor:
        """`obs (n, D)` -> `(n * P, D)`, row `i * P + j` holding `obs[i]` (candidate j of i)."""
        return obs.repeat_interleave(self.config.population, dim=0)

    # ------------------------------------------------------------------ internals
    def _allocate(self, n: int) -> None:
        """Fresh plans (the centre of the action box) and sampling buffers for `n` rows."""
        c = self.config
        kw: dict[str, Any] = {"dtype": self._dtype, "device": self._device}
        self._mean = torch.zeros(n, c.horizon, self.action_dim, **kw)
        shape = (n, c.population, c.horizon, self.action_dim)
        self._noise = torch.empty(shape, **kw)
        self._samples = torch.empty(shape, **kw)
        self._actions = torch.empty(shape, **kw)
        self._rows = n

    def _check_obs(self, observation: Any) -> tuple[Tensor, bool]:
        """`(D,)` or `(n, D)` finite observations -> `(n, D)` tensor, and whether unbatched."""
        if isinstance(observation, dict):
            raise TypeError("planners take array observations, got a dict")
        obs = torch.as_tensor(
            np.asarray(observation) if not isinstance(observation, Tensor) else observation
        )
        single = obs.ndim == 1
        if single:
            obs = obs.unsqueeze(0)
        if obs.ndim != 2 or obs.shape[1] != self.obs_dim or obs.shape[0] < 1:
            raise ValueError(
                f"observation has shape {tuple(obs.shape) if not single else (obs.shape[1],)}, "
                f"expected ({self.obs_dim},) or (n, {self.obs_dim})"
            )
        obs = obs.to(self._device, self._dtype)
        if not bool(torch.isfinite(obs).all()):
            raise ValueError("observation contains NaN or infinite values")
        return obs, single


@final
class CEMPlanner(Planner):
    """Cross-entropy method MPC (`CEMConfig`): refit a diagonal Gaussian over action sequences
    to the elite candidates for `iterations` rounds, then act with the mean's first step.

    `dynamics`: a `physprior.learned_env.ModelDynamics` (or anything with its `obs_dim`,
    `action_dim`, `action_low`, `action_high` and `rollout_returns`), or a trained model or
    the path of its checkpoint, planned with on the env `env_id` (default: the env the model
    was trained on) through `ModelDynamics` on `device`.
    """

    config: CEMConfig
    config_class = CEMConfig

    def _optimise(self, obs: Tensor, mean: Tensor) -> Tensor:
        c = self.config
        n, h, a = mean.shape
        obs_rep = self._repeat(obs)
        mean = mean.clone()
        std = torch.full_like(mean, c.init_std)
        for _ in range(c.iterations):
            samples = self._sample(mean, std)
            returns = self._returns(obs_rep, samples)
            index = returns.topk(c.elites, dim=1, sorted=False).indices  # (n, K)
            elites = samples.gather(1, index[:, :, None, None].expand(n, c.elites, h, a))
            fit_std, fit_mean = torch.std_mean(elites, dim=1, correction=0)
            mean.mul_(c.alpha).add_(fit_mean, alpha=1.0 - c.alpha)
            std.mul_(c.alpha).add_(fit_std, alpha=1.0 - c.alpha)
            if c.min_std > 0:
                std.clamp_(min=c.min_std)
        return mean


@final
class MPPIPlanner(Planner):
    """Model-predictive path integral control (`MPPIConfig`): move the plan to the
    `softmax(return / temperature)`-weighted average of its Gaussian perturbations.

    `dynamics`: as for `CEMPlanner`.
    """

    config: MPPIConfig
    config_class = MPPIConfig

    def _optimise(self, obs: Tensor, mean: Tensor) -> Tensor:
        c = self.config
        obs_rep = self._repeat(obs)
        mean = mean.clone()
        for _ in range(c.iterations):
            samples = self._sample(mean, c.noise_std)
            returns = self._returns(obs_rep, samples)
            # Shifting by the best return keeps the exponentials in range for any temperature.
            best = returns.amax(dim=1, keepdim=True)
            weights = torch.softmax((returns - best) / c.temperature, dim=1)  # (n, P)
            fitted = torch.einsum("np,npha->nha", weights, samples)
            mean.mul_(c.alpha).add_(fitted, alpha=1.0 - c.alpha)
        return mean


@final
class ICEMPlanner(Planner):
    """iCEM (`ICEMConfig`; Pinneri et al. 2020): CEM with coloured-noise samples, a decaying
    population, elites kept across iterations and decisions, the mean plan among the last
    iteration's candidates, and the best sequence executed.

    `dynamics`: as for `CEMPlanner`.
    """

    config: ICEMConfig
    config_class = ICEMConfig

    def reset(self) -> None:
        super().reset()
        self._kept: Tensor | None = None  # elites carried into the next decision

    def _allocate(self, n: int) -> None:
        super()._allocate(n)
        self._kept = None

    def _restart(self, rows: Tensor) -> None:
        super()._restart(rows)
        if self._kept is not None:
            self._kept[rows] = 0.0  # the box centre: no elites from the last episode

    def _optimise(self, obs: Tensor, mean: Tensor) -> Tensor:
        c = self.config
        n, h, a = mean.shape
        mean = mean.clone()
        std = torch.full_like(mean, c.init_std)
        keep = round(c.keep_elites * c.elites)
        kept = self._kept if keep else None
        best = mean.clone()
        best_return = torch.full((n,), -math.inf, dtype=self._dtype, device=self._device)
        for i in range(c.iterations):
            size = min(
                c.population, max(round(c.population * c.population_decay**-i), 2 * c.elites)
            )
            samples = self._coloured_samples(mean, std, size)
            extra = [samples]
            if kept is not None:
                extra.append(kept)
            if c.add_mean and i == c.iterations - 1:
                extra.append(mean.unsqueeze(1))
            if len(extra) > 1:
                samples = torch.cat(extra, dim=1)
            count = samples.shape[1]
            returns = self._returns(obs.repeat_interleave(count, dim=0), samples)
            top = returns.topk(min(c.elites, count), dim=1, sorted=True)
            elites = samples.gather(1, top.indices[:, :, None, None].expand(n, -1, h, a))
            fit_std, fit_mean = torch.std_mean(elites, dim=1, correction=0)
            mean.mul_(c.alpha).add_(fit_mean, alpha=1.0 - c.alpha)
            std.mul_(c.alpha).add_(fit_std, alpha=1.0 - c.alpha)
            if c.min_std > 0:
                std.clamp_(min=c.min_std)
            improved = top.values[:, 0] > best_return
            best = torch.where(improved[:, None, None], elites[:, 0], best)
            best_return = torch.where(improved, top.values[:, 0], best_return)
            kept = elites[:, :keep] if keep else None
        if kept is not None and c.warm_start:
            # Shifted one step for the next decision; the new last step is the box centre.
            self._kept = torch.cat((kept[:, :, 1:], torch.zeros_like(kept[:, :, :1])), dim=2)
        return best if c.execute == "best" else mean

    def _coloured_samples(self, mean: Tensor, std: Tensor, size: int) -> Tensor:
        """`size` clipped sequences `(n, size, H, A)` around each plan, with noise of power
        spectrum `1 / f^noise_exponent` along the horizon (white noise at 0: CEM's samples)."""
        n, h, a = mean.shape
        noise = coloured_noise(
            (n, size, a, h), self.config.noise_exponent, self._generator, self._dtype, self._device
        ).transpose(2, 3)
        return torch.addcmul(mean.unsqueeze(1), std.unsqueeze(1), noise).clamp_(-1.0, 1.0)


def coloured_noise(
    shape: tuple[int, ...],
    exponent: float,
    generator: torch.Generator,
    dtype: torch.dtype = torch.float32,
    device: torch.device | str = "cpu",
) -> Tensor:
    """Gaussian noise `shape` whose power spectrum along the last axis goes as `1 / f^exponent`
    (Timmer and Koenig 1995, as the `colorednoise` package that iCEM's authors use): random
    Fourier coefficients of amplitude `f^(-exponent / 2)` transformed back to time, scaled as
    that package scales them, so that the non-zero frequencies carry unit variance; the zero
    frequency (a constant offset per sequence, at the amplitude of the lowest resolved
    frequency) adds to it (total variance 1.16 at exponent 1, 1.32 at 2, over 30 steps). At
    exponent 0 it is `torch.randn(shape)` itself (the same numbers from the same generator).
    """
    if exponent == 0:
        return torch.randn(shape, generator=generator, dtype=dtype, device=device)
    steps = shape[-1]
    freqs = torch.fft.rfftfreq(steps, dtype=torch.float64)
    freqs[0] = 1.0 / steps  # the lowest frequency resolved by the horizon stands in for 0
    scale = freqs ** (-exponent / 2.0)
    # The standard deviation of the series these amplitudes give, to rescale it to 1.
    weights = scale[1:].clone()
    weights[-1] *= (1 + steps % 2) / 2.0
    sigma = 2.0 * torch.sqrt((weights**2).sum()) / steps
    coefficients = (*shape[:-1], freqs.numel())
    real = torch.randn(coefficients, generator=generator, dtype=torch.float64, device=device)
    imag = torch.randn(coefficients, generator=generator, dtype=torch.float64, device=device)
    scale = scale.to(device)
    real, imag = real * scale, imag * scale
    imag[..., 0] = 0.0  # a real series has real coefficients at f = 0 ...
    real[..., 0] *= math.sqrt(2.0)
    if steps % 2 == 0:  # ... and at the Nyquist frequency
        imag[..., -1] = 0.0
        real[..., -1] *= math.sqrt(2.0)
    series = torch.fft.irfft(torch.complex(real, imag), n=steps, dim=-1) / sigma.to(device)
    return series.to(dtype)
