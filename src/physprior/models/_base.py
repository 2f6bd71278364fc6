"""The abstract base of every transition model, and the configuration fields they share.

Concrete models are final: they compose parts (vector fields, integrators, normalisers)
rather than subclass one another (STYLE 9). The trainer only ever talks to this interface.
"""

from __future__ import annotations

import abc
import dataclasses
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import torch
from torch import Tensor, nn

from physprior._validate import check_field_types
from physprior.integrators import Integrator, get_integrator
from physprior.types import StateLayout

from ._cache import TensorVersions
from ._normalizer import Normalizer

Memory = Any
"""Recurrent state a model carries between steps (`None` for memoryless models)."""

StackedRollout = Callable[[Tensor, Tensor, "Tensor | None"], Tensor]
"""K members' rollouts at once: `(z (K, B, D), actions (K, B, T, A), noise (K, B, T, D) or
None) -> (K, B, T + 1, D)`; see `TransitionModel.stacked_rollout`."""

NumpyRowStep = Callable[[Any, Any], Any]
"""One transition on one row in numpy: `(z (D,), u (A,)) -> next z (D,)`; see
`TransitionModel.numpy_row_step`."""

LossKind = Literal["l2", "l1"]

#: The widest hidden layer a config accepts: far above the papers' 2,048, and well below
#: a size whose weight matrices would not fit in memory.
MAX_HIDDEN = 65_536


@dataclass
class ModelConfig:
    """Fields shared by every model. Each model extends this with its own dataclass.

    Dimensions describe the data: the state `z` is `(obs_dim,)`, laid out `[q, p]` or
    `[q, v]` with `q_dim` positions first; actions are `(action_dim,)` (0: no action input).
    """

    obs_dim: int
    """Dimension D of the state."""
    action_dim: int = 0
    """Dimension A of the action (0 for autonomous systems)."""
    q_dim: int | None = None
    """Number of position coordinates; `None` means `obs_dim // 2`."""
    state_layout: StateLayout = "qp"
    """`"qp"`: positions then canonical momenta; `"qv"`: positions then velocities."""
    dt: float | None = None
    """Time between observations, in the data's time unit (e.g. `env.unwrapped.dt`).
    Required: an ODE model integrates over it, every checkpoint records it, and a learned env
    refuses a model whose `dt` is not its base env's. `None` (the default) is an error."""
    hidden: int = 128
    """Width of every hidden layer."""
    layers: int = 2
    """Number of hidden layers."""
    activation: str = "tanh"
    """Hidden activation: tanh, softplus, relu, silu or elu."""
    train_mode: Literal["single", "recurrent"] = "recurrent"
    """`single`: fit one-step predictions from observed states; `recurrent`: roll out
    through the whole window from its first state (multi-step training)."""
    integrator: str = "rk4"
    """Integrator used while training (ODE models)."""
    test_integrator: str | None = None
    """Integrator used for evaluation and rollouts; `None` means the training one."""
    substeps: int = 1
    """Integrator steps per observation interval (step size `dt / substeps`)."""
    test_substeps: int | None = None
    """Integrator steps per interval in evaluation mode; `None` means `substeps`. A finer
    test step integrates the learned field more accurately than it was trained (the HNN
    paper trains on derivatives and rolls out with an accurate solver)."""
    env_id: str | None = None
    """The environment the data came from (recorded in checkpoints)."""
    normalize: bool = True
    """Fit the normalisers to the training data (the default). `False` keeps the networks on
    raw coordinates, as the papers' original networks are: inputs unscaled, and an output of
    1 read as a rate of 1 state unit per time unit (`delta_norm` fixed to mean 0, std `dt`),
    so a `node` field is `net(z)` and an `hnn` energy `net(q, p)`."""
    angle_embedding: bool = False
    """Every position coordinate is an angle: the networks read `(cos q, sin q)` in place of
    `q` (decon-hnn's embedding of angular coordinates), so they are periodic in `q` whatever
    the turn an angle is on. Positions are then not normalised. `node`, `node-so` and `hnn`."""

    probabilistic: bool = False
    """Predict a Gaussian over the next state and train on its negative log-likelihood (PETS's
    probabilistic networks). `mlp` predicts a mean and a bounded log-variance per coordinate
    (heteroscedastic, PETS's head); every other state model keeps its deterministic step as
    the mean and learns one noise scale per coordinate of the one-step state change
    (homoscedastic), `log_noise`, in units of the training state change's std. Not for the
    recurrent or pixel models."""

    #: Whether the model reads its positions through `angle_embedding` when asked to.
    supports_angle_embedding: ClassVar[bool] = False

    def __post_init__(self) -> None:
        check_field_types(self)  # JSON and `--set` can carry any type; refuse it by name
        if self.hidden > MAX_HIDDEN:
            raise ValueError(f"hidden must be at most {MAX_HIDDEN}, got {self.hidden}")
        if self.angle_embedding and not self.supports_angle_embedding:
            raise ValueError(
                f"angle_embedding is available for node, node-so and hnn, not with "
                f"{type(self).__name__}"
            )
        if self.obs_dim < 1:
            raise ValueError(f"obs_dim must be positive, got {self.obs_dim}")
        if self.action_dim < 0:
            raise ValueError(f"action_dim must be >= 0, got {self.action_dim}")
        if self.q_dim is None:
            self.q_dim = self.obs_dim // 2
        if not 0 < self.q_dim < self.obs_dim:
            raise ValueError(f"q_dim must be in (0, obs_dim={self.obs_dim}), got {self.q_dim}")
        if self.state_layout not in ("qp", "qv"):
            raise ValueError(f"state_layout must be 'qp' or 'qv', got {self.state_layout!r}")
        if self.dt is None:
            raise TypeError(
                "dt is required: the time between observations in the data (e.g. "
                "env.unwrapped.dt, or the dataset's meta.dt)"
            )
        if self.dt <= 0:
            raise ValueError(f"dt must be positive, got {self.dt}")
        if self.hidden < 1 or self.layers < 0 or self.substeps < 1:
            raise ValueError("hidden and substeps must be >= 1 and layers >= 0")
        if self.test_substeps is not None and (
            isinstance(self.test_substeps, bool)
            or not isinstance(self.test_substeps, int)
            or self.test_substeps < 1
        ):
            raise ValueError(f"test_substeps must be None or >= 1, got {self.test_substeps!r}")
        if self.train_mode not in ("single", "recurrent"):
            raise ValueError(f"train_mode must be 'single' or 'recurrent', got {self.train_mode!r}")
        get_integrator(self.integrator)  # fail early on an unknown name
        if self.test_integrator is not None:
            get_integrator(self.test_integrator)

    @property
    def v_dim(self) -> int:
        """Number of momentum or velocity coordinates."""
        assert self.q_dim is not None
        return self.obs_dim - self.q_dim

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


class TransitionModel(nn.Module, abc.ABC):
    """A learned transition `z_{t+1} = F(z_t, u_t)` over one observation interval `dt`.

    Shapes: `z` `(B, D)`, `u` `(B, A)`, `rollout(z0 (B, D), actions (B, T, A)) -> (B, T+1, D)`
    with `z0` as the first state. Models are built by `physprior.models.make(name, ...)`.

    Inputs may be tensors or numpy arrays; they are cast to the model's dtype and device, and
    results come back as tensors in the model's dtype (a float32 model returns float32 for
    float64 input, with gradients flowing through the cast; `model.double()` computes in
    float64), as the learned envs and the trainer use them.

    In training mode (`model.train()`) ODE models integrate with `config.integrator`; in
    evaluation mode (`model.eval()`) with `config.test_integrator` (the papers' E-E, E-L and
    L-L labels name the two).
    """

    name: ClassVar[str]
    config_class: ClassVar[type[ModelConfig]] = ModelConfig
    #: Whether `training_loss` accepts `initial_states` (initial-state optimisation); a model
    #: that infers its initial state (an encoder) does not.
    supports_initial_states: ClassVar[bool] = True
    #: Whether the trainer fits the model as one (an `ensemble` trains member by member with
    #: `physprior.training.train_ensemble` instead).
    trained_as_one: ClassVar[bool] = True
    #: Whether `probabilistic=True` is available (memoryless state models).
    supports_probabilistic: ClassVar[bool] = True
    #: Whether the model predicts its own variance (else a learned `log_noise` is its scale).
    heteroscedastic: ClassVar[bool] = False
    #: Whether a step reads the state alone (no recurrent memory), so that a rollout is a
    #: function of its first state and actions.
    memoryless: ClassVar[bool] = True

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        # Values built from the weights (`_cache.inference_cached`) and the submodules'
        # parameter and buffer dicts the cache's checks read; both dropped when the model
        # moves (`_apply`).
        self._inference_cache: dict[tuple[Any, ...], tuple[TensorVersions, Any]] = {}
        self._tensor_dicts: list[dict[str, Any]] | None = None
        self.state_norm = Normalizer(config.obs_dim)
        self.action_norm = Normalizer(config.action_dim)
        self.delta_norm = Normalizer(config.obs_dim)
        self.log_noise: nn.Parameter | None = None
        if config.probabilistic:
            if not type(self).supports_probabilistic:
                raise ValueError(
                    f"probabilistic=True is for the memoryless state models (mlp, node, "
                    f"node-so, hnn, srnn, vin, ...), not {type(self).name!r}"
                )
            if not type(self).heteroscedastic:
                # log std of the one-step state change, in units of its training std: 0 starts
                # the noise as large as a typical step, and the likelihood shrinks it.
                self.log_noise = nn.Parameter(torch.zeros(config.obs_dim))

    # ------------------------------------------------------------------ dims
    @property
    def obs_dim(self) -> int:
        return self.config.obs_dim

    @property
    def action_dim(self) -> int:
        return self.config.action_dim

    @property
    def q_dim(self) -> int:
        assert self.config.q_dim is not None
        return self.config.q_dim

    @property
    def data_dim(self) -> int:
        """Width of one row of the windows `training_loss` reads: `obs_dim` for every model
        that learns from states; a pixel model learns from frames and reads their pixels."""
        return self.obs_dim

    @property
    def dt(self) -> float:
        assert self.config.dt is not None  # required: the config refuses None
        return self.config.dt

    @property
    def dtype(self) -> torch.dtype:
        return self.state_norm.mean.dtype

    @property
    def active_integrator(self) -> Integrator:
        """The integrator for the current mode (training or evaluation)."""
        name = self.config.integrator
        if not self.training and self.config.test_integrator is not None:
            name = self.config.test_integrator
        return get_integrator(name)

    @property
    def active_substeps(self) -> int:
        """Integrator steps per interval for the current mode (training or evaluation)."""
        if not self.training and self.config.test_substeps is not None:
            return self.config.test_substeps
        return self.config.substeps

    # ------------------------------------------------------------------ normalisation
    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Fit the normalisers on training windows `states (N, T+1, D)`, `actions (N, T, A)`."""
        states = self._check_states(states)
        if not self.config.normalize:
            # Raw coordinates: identity normalisers, a unit output is a unit rate.
            self.delta_norm.std.fill_(self.dt)
            return
        self.state_norm.fit(states)
        self.delta_norm.fit(states[:, 1:] - states[:, :-1])
        if self.action_dim:
            self.action_norm.fit(self._check_actions(actions, states.shape[0], states.shape[1] - 1))

    # ------------------------------------------------------------------ transitions
    @abc.abstractmethod
    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """One transition `(B, D), (B, A) -> (B, D)`, carrying recurrent memory if any."""

    def numpy_row_step(self) -> NumpyRowStep | None:
        """`step` on one row in numpy, for environments that step one row at a time: a
        function `(z (D,), u (A,)) -> next z (D,)` of numpy arrays, computing in the model's
        dtype, the same as `step` to rounding; None where the model has none (the default).

        It holds a copy of the weights: ask again after they change (under
        `torch.no_grad()` the models that have one cache it until then)."""
        return None

    def step(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """The state one interval `dt` after `z` `(B, D)` under action `u` `(B, A)`."""
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        return self.step_with_memory(z, u)[0]

    def rollout(
        self, z0: Tensor, actions: Tensor | None = None, *, steps: int | None = None
    ) -> Tensor:
        """Roll out from `z0` `(B, D)` under `actions` `(B, T, A)`; returns `(B, T + 1, D)`.

        Without actions (autonomous systems, `action_dim == 0`) pass `steps=T`.
        """
        z = self._check_state(z0)
        if actions is None:
            if steps is None:
                raise ValueError("rollout needs actions (B, T, A) or, without actions, steps=T")
            actions = z.new_zeros(z.shape[0], steps, self.action_dim)
        actions = self._check_actions(actions, z.shape[0], None)
        states = [z]
        memory: Memory = None
        for t in range(actions.shape[1]):
            z, memory = self.step_with_memory(z, actions[:, t], memory)
            states.append(z)
        return torch.stack(states, dim=1)

    # ------------------------------------------------------------------ inference cache
    def _weight_tensors(self) -> list[Tensor]:
        """Every parameter and buffer of the model, read from its submodules' (cached)
        parameter and buffer dicts: a few microseconds, where walking the module tree takes
        tens."""
        if self._tensor_dicts is None:
            modules = list(self.modules())
            self._tensor_dicts = [m._parameters for m in modules] + [m._buffers for m in modules]
        return [t for group in self._tensor_dicts for t in group.values() if t is not None]

    def clear_inference_cache(self) -> None:
        """Forget the values built from the weights (needed only after writing weights
        through `.data`, which the cache cannot see)."""
        self._inference_cache.clear()
        self._tensor_dicts = None

    def _apply(self, fn: Any, recurse: bool = True) -> Any:
        # Another dtype or device: the cached values no longer fit.
        self.clear_inference_cache()
        return super()._apply(fn, recurse)

    @classmethod
    def stacked_rollout(cls, members: Sequence[TransitionModel]) -> StackedRollout | None:
        """K members of this class rolled out together in fewer, larger calls than K
        rollouts (an ensemble's planning hot path): a function `(z (K, B, D), actions
        (K, B, T, A), noise (K, B, T, D) or None) -> (K, B, T + 1, D)`, member k on its own
        rows; with `noise` (standard normal draws, probabilistic members) each step is drawn,
        `z' = mean + exp(log_var / 2) * noise`, else it is the mean step. Valid while the
        members' weights are unchanged (the ensemble caches it). None, the default: the
        ensemble maps each member's own rollout with `torch.func.vmap` instead."""
        return None

    def noisy_rollout(self, z0: Tensor, actions: Tensor, noise: Tensor | None) -> Tensor:
        """`rollout(z0, actions)` `(B, T + 1, D)`; with `noise` `(B, T, D)` (standard normal
        draws) every step is drawn from `step_distribution` instead:
        `z' = mean + exp(log_var / 2) * noise` (a probabilistic model's sampled rollout)."""
        if noise is None:
            return self.rollout(z0, actions)
        z = self._check_state(z0)
        actions = self._check_actions(actions, z.shape[0], None)
        states = [z]
        for t in range(actions.shape[1]):
            mean, log_var = self._distribution(z, actions[:, t])
            z = torch.addcmul(mean, (0.5 * log_var).exp(), noise[:, t])
            states.append(z)
        return torch.stack(states, dim=1)

    # ------------------------------------------------------------------ probabilistic
    @property
    def predicts_variance(self) -> bool:
        """Whether the model predicts a Gaussian over the next state (`probabilistic`)."""
        return bool(self.config.probabilistic)

    def step_distribution(self, z: Tensor, u: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """`(mean (B, D), log_var (B, D))` of the next state's Gaussian, in state units, for a
        `probabilistic` model at `z` `(B, D)` under `u` `(B, A)`."""
        if not self.config.probabilistic:
            raise ValueError(f"{self.name!r} was built with probabilistic=False: no variance")
        z = self._check_state(z)
        return self._distribution(z, self._check_action(u, z.shape[0]))

    def sample_step(
        self, z: Tensor, u: Tensor | None = None, *, generator: torch.Generator | None = None
    ) -> Tensor:
        """A next state `(B, D)` drawn from `step_distribution(z, u)`."""
        mean, log_var = self.step_distribution(z, u)
        noise = torch.randn(mean.shape, generator=generator, dtype=mean.dtype, device=mean.device)
        return torch.addcmul(mean, (0.5 * log_var).exp(), noise)

    def _distribution(self, z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """`(mean, log_var)` of checked inputs: the deterministic step and the learned
        homoscedastic noise (heteroscedastic models override this)."""
        mean = self.step_with_memory(z, u)[0]
        assert self.log_noise is not None
        log_var = 2.0 * (self.log_noise + self.delta_norm.std.log())
        return mean, log_var.expand_as(mean)

    def _variance_penalty(self) -> Tensor | float:
        """A term the likelihood loss adds (PETS's penalty on its log-variance bounds)."""
        return 0.0

    def _likelihood_loss(
        self, states: Tensor, actions: Tensor, initial_states: Tensor | None
    ) -> Tensor:
        """The Gaussian negative log-likelihood (without its constant) of windows: one-step
        predictions from observed states (`single`) or along the mean rollout
        (`recurrent`), errors and variances in units of the training state change."""
        b, t1, d = states.shape
        if self.config.train_mode == "single" and initial_states is None:
            u = actions.reshape(b * (t1 - 1), actions.shape[-1])
            mean, log_var = self._distribution(states[:, :-1].reshape(-1, d), u)
            mean, log_var = mean.reshape(b, t1 - 1, d), log_var.reshape(b, t1 - 1, d)
        else:
            z = states[:, 0] if initial_states is None else initial_states
            means, log_vars = [], []
            for t in range(t1 - 1):
                z, step_log_var = self._distribution(z, actions[:, t])
                means.append(z)
                log_vars.append(step_log_var)
            mean, log_var = torch.stack(means, 1), torch.stack(log_vars, 1)
        scale = self.delta_norm.std
        nll = gaussian_nll((mean - states[:, 1:]) / scale, log_var - 2.0 * scale.log())
        return nll + self._variance_penalty()

    # ------------------------------------------------------------------ training
    def training_loss(
        self,
        states: Tensor,
        actions: Tensor,
        *,
        loss: LossKind = "l2",
        initial_states: Tensor | None = None,
    ) -> Tensor:
        """The loss on a batch of windows `states (B, T+1, D)`, `actions (B, T, A)`.

        `single` mode predicts each `z_{t+1}` from the observed `z_t`; `recurrent` mode rolls
        out from the first state (or from `initial_states (B, D)`, the refined initial states
        of initial-state optimisation) and compares every predicted state. Errors are measured
        in normalised state units so that no coordinate dominates. A `probabilistic` model
        trains on the Gaussian negative log-likelihood instead (its `loss` must be "l2").
        """
        if self.config.probabilistic:
            if loss != "l2":
                raise ValueError(
                    f"a probabilistic model trains on the Gaussian likelihood; loss must be "
                    f"'l2', got {loss!r}"
                )
            return self._likelihood_loss(states, actions, initial_states)
        b, t1, d = states.shape
        if self.config.train_mode == "single" and initial_states is None:
            z = states[:, :-1].reshape(-1, d)
            u = actions.reshape(b * (t1 - 1), actions.shape[-1])  # -1 is ambiguous when A = 0
            predicted = self.step_with_memory(z, u)[0].reshape(b, t1 - 1, d)
        else:
            z0 = states[:, 0] if initial_states is None else initial_states
            predicted = self.rollout(z0, actions)[:, 1:]
        return state_error(predicted, states[:, 1:], self.state_norm.std, loss)

    # ------------------------------------------------------------------ checks
    def _check_states(self, states: Tensor) -> Tensor:
        if states.ndim != 3 or states.shape[-1] != self.obs_dim:
            raise ValueError(
                f"states have shape {tuple(states.shape)}, expected (N, T+1, {self.obs_dim})"
            )
        return states.to(self.dtype)

    def _check_state(self, z: Tensor) -> Tensor:
        z = torch.as_tensor(z, device=self.state_norm.mean.device)  # numpy arrays too
        if z.ndim != 2 or z.shape[-1] != self.obs_dim:
            raise ValueError(f"state has shape {tuple(z.shape)}, expected (B, {self.obs_dim})")
        return z.to(self.dtype)

    def _check_action(self, u: Tensor | None, batch: int) -> Tensor:
        if u is None:
            return self.state_norm.mean.new_zeros(batch, self.action_dim)
        u = torch.as_tensor(u, device=self.state_norm.mean.device)
        if u.shape != (batch, self.action_dim):
            raise ValueError(
                f"action has shape {tuple(u.shape)}, expected ({batch}, {self.action_dim})"
            )
        return u.to(self.dtype)

    def _check_actions(self, actions: Tensor, batch: int, steps: int | None) -> Tensor:
        actions = torch.as_tensor(actions, device=self.state_norm.mean.device)
        expected = (batch, steps if steps is not None else actions.shape[1], self.action_dim)
        if actions.ndim != 3 or tuple(actions.shape) != expected:
            shown = "T" if steps is None else steps
            raise ValueError(
                f"actions have shape {tuple(actions.shape)}, "
                f"expected ({batch}, {shown}, {self.action_dim})"
            )
        return actions.to(self.dtype)

    def extra_repr(self) -> str:
        c = self.config
        return f"obs_dim={c.obs_dim}, action_dim={c.action_dim}, layout={c.state_layout}, dt={c.dt}"


def gaussian_nll(diff: Tensor, log_var: Tensor) -> Tensor:
    """The mean Gaussian negative log-likelihood, without its constant and factor 1/2, of
    errors `diff` under log-variances `log_var` (broadcastable, the same units):
    `mean(diff^2 exp(-log_var) + log_var)` (PETS's loss)."""
    return (diff.square() * torch.exp(-log_var) + log_var).mean()


def state_error(predicted: Tensor, target: Tensor, scale: Tensor, loss: LossKind) -> Tensor:
    """Mean L2 (squared) or L1 error of `predicted` vs `target` `(..., D)` in units of `scale`."""
    diff = (predicted - target) / scale
    if loss == "l2":
        return diff.square().mean()
    if loss == "l1":
        return diff.abs().mean()
    raise ValueError(f"loss must be 'l2' or 'l1', got {loss!r}")
