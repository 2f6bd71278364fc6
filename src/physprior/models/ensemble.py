"""`ensemble`: K models of one kind, evaluated together in one batched call.

PETS (Chua et al. 2018) and MBPO (Janner et al. 2019) plan and branch through an ensemble of
networks trained on bootstrap resamples of the data; the spread of the members' predictions is
what the model does not know. Here the members may be any registered state model (`mlp`, `node`,
`node-so`, `hnn`, `srnn`, `vin`, `rnn`, `lstm`, ...), so a physics prior gets an ensemble too.

Evaluation is one call for all members: their parameters and buffers are stacked along a new
first dimension and one member's `step_with_memory` is mapped over it with `torch.func.vmap`
and `torch.func.functional_call` (no Python loop over members). The members themselves stay
ordinary modules (`ensemble.members[k]`), so each trains with the existing trainer on its own
bootstrap resample (`physprior.training.train_ensemble`), and the whole ensemble saves and loads
as one checkpoint (`members.<k>.<name>` tensors, the member kind and config in `config.json`).

As a `TransitionModel`, `step` and `rollout` predict the members' mean next state; `members_step`
and `members_rollout` give every member's prediction, `(K, B, D)` and `(K, B, T + 1, D)`.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from typing import Any, cast, final

import torch
from torch import Tensor, nn
from torch.func import functional_call, vmap

from ._base import LossKind, Memory, ModelConfig, StackedRollout, TransitionModel
from ._cache import inference_cached
from ._registry import available_models, make, model_class, register

__all__ = ["Ensemble", "EnsembleConfig"]

#: Config fields every member shares with the ensemble: they describe the data, not a member.
DATA_FIELDS = ("obs_dim", "action_dim", "q_dim", "state_layout", "dt", "env_id")
#: The most members an ensemble holds (PETS uses 5, MBPO 7; memory grows linearly).
MAX_SIZE = 64


@dataclass
class EnsembleConfig(ModelConfig):
    """Configuration of `ensemble`: `size` members of model `member`, each built as
    `make(member, **data fields, **member_config)`.

    The data fields (`obs_dim`, `action_dim`, `q_dim`, `state_layout`, `dt`, `env_id`) are the
    ensemble's own and shared by every member; the architecture lives in `member_config` (the
    member's own fields, e.g. `{"hidden": 200, "substeps": 8}`). The base architecture fields
    of `ModelConfig` (`hidden`, `layers`, ...) are not used by the ensemble itself.
    """

    member: str = "mlp"
    """The registered name of every member's model."""
    size: int = 5
    """Number of members K."""
    member_config: dict[str, Any] = field(default_factory=dict)
    """The members' own config fields, without the data fields."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.member == "ensemble" or self.member not in available_models():
            valid = ", ".join(m for m in available_models() if m != "ensemble")
            raise ValueError(f"member must be a model name ({valid}), got {self.member!r}")
        if getattr(model_class(self.member), "frame_style", None) is not None:
            raise ValueError(
                f"member {self.member!r} is a pixel model: ensembles hold state models (their "
                "steps are batched with torch.func.vmap, which a pixel model's frames and "
                "autograd-based fields do not support)"
            )
        if not 1 <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be in [1, {MAX_SIZE}], got {self.size}")
        if self.probabilistic:
            raise ValueError(
                "probabilistic is a member's field: pass member_config={'probabilistic': True}"
            )
        shared = sorted(set(self.member_config) & set(DATA_FIELDS))
        if shared:
            raise ValueError(
                f"member_config holds data field(s) {', '.join(shared)}: they are the "
                "ensemble's own and shared by every member"
            )

    def member_kwargs(self) -> dict[str, Any]:
        """The keyword arguments of `make(member, ...)` for one member."""
        data = {name: getattr(self, name) for name in DATA_FIELDS}
        return data | dict(self.member_config)


@final
@register
class Ensemble(TransitionModel):
    """K members of one model kind, evaluated in one batched call.

    Build with `make("ensemble", member="node-so", size=5, obs_dim=..., action_dim=...,
    dt=..., member_config={"hidden": 200})`, or `Ensemble.of("node-so", 5, obs_dim=..., ...)`.

    Shapes: `members_step(z (B, D) or (K, B, D), u (B, A) or (K, B, A)) -> (K, B, D)`;
    `members_rollout(z0 (B, D) or (K, B, D), actions (B, T, A)) -> (K, B, T + 1, D)` (each
    member follows its own trajectory: PETS's TS-inf propagation); `step` and `rollout` are the
    members' mean at each step. `disagreement(z, u)` `(B,)` is the members' standard deviation,
    averaged over the state's coordinates, in the units of the state.

    Training: `physprior.training.train_ensemble` fits each member on its own bootstrap
    resample of the windows; `training_loss` refuses to train the ensemble as one model.

    Example:
        >>> import torch
        >>> from physprior.models import make
        >>> ensemble = make("ensemble", member="mlp", size=3, obs_dim=4, dt=0.1)
        >>> ensemble.members_step(torch.zeros(8, 4)).shape
        torch.Size([3, 8, 4])
        >>> ensemble.step(torch.zeros(8, 4)).shape
        torch.Size([8, 4])
    """

    name = "ensemble"
    supports_probabilistic = False
    config_class = EnsembleConfig
    config: EnsembleConfig
    trained_as_one = False

    def __init__(self, config: EnsembleConfig) -> None:
        super().__init__(config)
        kwargs = config.member_kwargs()
        self.members = nn.ModuleList(make(config.member, **kwargs) for _ in range(config.size))
        # The member module the stacked parameters are mapped through (not saved or trained).
        self._template: dict[tuple[torch.dtype, torch.device], nn.Module] = {}

    @classmethod
    def of(cls, member: str, size: int, **config: Any) -> Ensemble:
        """`size` fresh members of model `member`; `config` holds the data fields and the
        member's own fields (split between the two here)."""
        data = {k: v for k, v in config.items() if k in DATA_FIELDS}
        own = {k: v for k, v in config.items() if k not in DATA_FIELDS}
        return cls(EnsembleConfig(member=member, size=size, member_config=own, **data))

    @property
    def size(self) -> int:
        """Number of members K."""
        return self.config.size

    @property
    def dtype(self) -> torch.dtype:
        return self._models()[0].dtype

    def _models(self) -> list[TransitionModel]:
        """The members, typed (`nn.ModuleList` yields plain modules)."""
        return cast(list[TransitionModel], list(self.members))

    # ------------------------------------------------------------------ batched members
    @inference_cached
    def _stacked_state(self) -> tuple[dict[str, Tensor], dict[str, Tensor]]:
        """Every member's parameters and buffers stacked along a first dimension of size K.

        With gradients on, the stack is rebuilt on every call, so a loss on the result trains
        the members. Without, it is cached until any member tensor changes (tracked by each
        tensor's identity and in-place version counter: `inference_cached`)."""
        members = self._models()
        return (
            _stack([dict(m.named_parameters()) for m in members]),
            _stack([dict(m.named_buffers()) for m in members]),
        )

    def _member_template(self) -> nn.Module:
        """A copy of member 0 whose tensors `functional_call` replaces by a member's; kept
        outside the module tree (not saved, not trained)."""
        first = self._models()[0]
        reference = first.state_norm.mean
        key = (reference.dtype, reference.device)
        if key not in self._template:
            template = copy.deepcopy(first)
            # functional_call calls `forward`: one entry point for the two member methods.
            template.forward = _MemberCall(template)
            self._template[key] = template
        chosen = self._template[key]
        chosen.train(self.training)  # ODE members pick their integrator by mode
        return chosen

    def _checked_member_inputs(self, z: Tensor, u: Tensor | None) -> tuple[Tensor, Tensor]:
        """`(K, B, D)` states and `(K, B, A)` actions from shared or per-member inputs."""
        z = self._member_batch(z, self.obs_dim, "state")
        if u is None:
            u = z.new_zeros(self.size, z.shape[1], self.action_dim)
        u = self._member_batch(u, self.action_dim, "action")
        if u.shape[1] != z.shape[1]:
            raise ValueError(f"action has batch {u.shape[1]}, the state has {z.shape[1]}")
        return z, u

    def members_step_with_memory(
        self, z: Tensor, u: Tensor | None = None, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """Every member's next state `(K, B, D)` from `z` `(B, D)` (shared) or `(K, B, D)`
        (one state per member), under `u` `(B, A)` or `(K, B, A)`, with each member's
        recurrent memory (stacked along K; `None` at the start)."""
        z, u = self._checked_member_inputs(z, u)
        params, buffers = self._stacked_state()
        template = self._member_template()

        def one_member(
            p: dict[str, Tensor], b: dict[str, Tensor], z: Tensor, u: Tensor, m: Memory
        ) -> tuple[Tensor, Any]:
            z_next, m_next = functional_call(template, (p, b), ("step", z, u, m), tie_weights=False)
            return z_next, () if m_next is None else m_next  # vmap maps tensors, not None

        memory_dims = None if memory is None else 0
        predicted, memory = vmap(one_member, in_dims=(0, 0, 0, 0, memory_dims))(
            params, buffers, z, u, memory
        )
        return predicted, None if isinstance(memory, tuple) and not memory else memory

    def members_step(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """Every member's next state `(K, B, D)`; see `members_step_with_memory`."""
        return self.members_step_with_memory(z, u)[0]

    @property
    def predicts_variance(self) -> bool:
        """Whether the members are probabilistic (the ensemble itself never is)."""
        return bool(self.config.member_config.get("probabilistic", False))

    def members_distribution(self, z: Tensor, u: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """Every probabilistic member's Gaussian over the next state: `(mean, log_var)`, each
        `(K, B, D)` in state units, from shared `(B, D)` or per-member `(K, B, D)` states."""
        if not self.predicts_variance:
            raise ValueError("the members were built with probabilistic=False: no variance")
        z, u = self._checked_member_inputs(z, u)
        params, buffers = self._stacked_state()
        template = self._member_template()

        def one_member(
            p: dict[str, Tensor], b: dict[str, Tensor], z: Tensor, u: Tensor
        ) -> tuple[Tensor, Tensor]:
            out: tuple[Tensor, Tensor] = functional_call(
                template, (p, b), ("distribution", z, u, None), tie_weights=False
            )
            return out

        return vmap(one_member)(params, buffers, z, u)

    def members_rollout(
        self,
        z0: Tensor,
        actions: Tensor | None = None,
        *,
        steps: int | None = None,
        noise: Tensor | None = None,
    ) -> Tensor:
        """Each member's own rollout `(K, B, T + 1, D)` from `z0` `(B, D)` or `(K, B, D)` under
        `actions` `(B, T, A)` or `(K, B, T, A)` (or, without actions, `steps=T`).

        `noise` `(K, B, T, D)`, standard normal draws, makes it each probabilistic member's
        sampled rollout: every step `z' = mean + exp(log_var / 2) * noise` (PETS's TS-inf
        particles; `noisy_rollout` of each member). Memoryless members roll out in one call
        for the whole horizon (the member class's `stacked_rollout` where it has one, else its
        `noisy_rollout` mapped with vmap); recurrent ones step by step with their memory."""
        z = self._member_batch(z0, self.obs_dim, "state")
        k, b = z.shape[:2]
        if actions is None:
            if steps is None:
                raise ValueError("members_rollout needs actions (B, T, A) or steps=T")
            actions = z.new_zeros(b, steps, self.action_dim)
        actions = torch.as_tensor(actions, device=z.device).to(z.dtype)
        if actions.ndim == 3:
            actions = actions.expand(k, *actions.shape)
        if actions.ndim != 4 or actions.shape[:2] != (k, b) or actions.shape[3] != self.action_dim:
            raise ValueError(
                f"actions have shape {tuple(actions.shape)}, expected ({b}, T, "
                f"{self.action_dim}) or ({k}, {b}, T, {self.action_dim})"
            )
        if noise is not None:
            if not self.predicts_variance:
                raise ValueError("noise needs probabilistic members (probabilistic=True)")
            noise = torch.as_tensor(noise, device=z.device).to(z.dtype)
            expected = (k, b, actions.shape[2], self.obs_dim)
            if tuple(noise.shape) != expected:
                raise ValueError(f"noise has shape {tuple(noise.shape)}, expected {expected}")
        if not type(self._models()[0]).memoryless:
            states, memory = [z], None
            for t in range(actions.shape[2]):
                z, memory = self.members_step_with_memory(z, actions[:, :, t], memory)
                states.append(z)
            return torch.stack(states, dim=2)
        stacked = self._stacked_rollout_fn()
        if stacked is not None:
            return stacked(z, actions, noise)
        params, buffers = self._stacked_state()
        template = self._member_template()

        def one_member(
            p: dict[str, Tensor], b: dict[str, Tensor], z: Tensor, u: Tensor, e: Tensor | None
        ) -> Tensor:
            out: Tensor = functional_call(template, (p, b), ("rollout", z, u, e), tie_weights=False)
            return out

        noise_dims = None if noise is None else 0
        mapped = vmap(one_member, in_dims=(0, 0, 0, 0, noise_dims))
        return mapped(params, buffers, z, actions, noise)

    @inference_cached
    def _stacked_rollout_fn(self) -> StackedRollout | None:
        """The member class's `stacked_rollout` of the members, kept (without gradients)
        until a member tensor changes (`inference_cached`)."""
        members = self._models()
        return type(members[0]).stacked_rollout(members)

    def disagreement(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """The members' spread `(B,)` about the next state of `z` `(B, D)` under `u` `(B, A)`:
        their standard deviation per coordinate, averaged over the coordinates (state units;
        0 for a single member)."""
        predicted = self.members_step(z, u)
        if self.size == 1:
            return predicted.new_zeros(predicted.shape[1])
        return predicted.std(dim=0).mean(dim=-1)

    # ------------------------------------------------------------------ TransitionModel
    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """The members' mean next state `(B, D)` (memory: the members' own, stacked)."""
        predicted, memory = self.members_step_with_memory(z, u, memory)
        return predicted.mean(dim=0), memory

    # fit_normalization (inherited) fits the ensemble's own normalisers: the statistics of
    # the whole training set, which the learned envs' divergence bound reads
    # (`model.state_norm`); each member fits its own on its resample as it trains.

    def training_loss(
        self,
        states: Tensor,
        actions: Tensor,
        *,
        loss: LossKind = "l2",
        initial_states: Tensor | None = None,
    ) -> Tensor:
        raise TypeError(
            "an ensemble is not trained as one model: physprior.training.train_ensemble fits "
            "each member on its own bootstrap resample (physprior train ... --ensemble K)"
        )

    # ------------------------------------------------------------------ helpers
    def _member_batch(self, x: Any, width: int, what: str) -> Tensor:
        """`x` `(B, W)` broadcast to `(K, B, W)`, or `(K, B, W)` as given, in the model's dtype."""
        x = torch.as_tensor(x, device=self.state_norm.mean.device)
        if x.ndim == 2 and x.shape[-1] == width:
            x = x.expand(self.size, *x.shape)
        if x.ndim != 3 or x.shape[0] != self.size or x.shape[-1] != width:
            raise ValueError(
                f"{what} has shape {tuple(x.shape)}, expected (B, {width}) or "
                f"({self.size}, B, {width})"
            )
        return x.to(self.dtype)

    def extra_repr(self) -> str:
        return f"member={self.config.member}, size={self.size}, {super().extra_repr()}"


def _stack(tensors: list[dict[str, Tensor]]) -> dict[str, Tensor]:
    """`{name: (K, ...)}` from K members' `{name: (...)}`."""
    return {name: torch.stack([t[name] for t in tensors]) for name in tensors[0]}


class _MemberCall:
    """A member's `forward` for `functional_call`: `("step", z, u, memory)` is its
    `step_with_memory`, `("distribution", z, u, None)` its Gaussian `_distribution`,
    `("rollout", z0, actions, noise)` its `noisy_rollout`."""

    def __init__(self, member: nn.Module) -> None:
        self.member: Any = member

    def __call__(self, method: str, z: Tensor, u: Tensor, extra: Any) -> Any:
        if method == "step":
            return self.member.step_with_memory(z, u, extra)
        if method == "rollout":  # extra: the noise or None
            return self.member.noisy_rollout(z, u, extra)
        return self.member._distribution(z, u)
