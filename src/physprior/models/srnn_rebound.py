"""`srnn-rebound`: SRNN with the learned rebound module of Chen et al. (2020), section 6.

A leapfrog flow cannot represent a perfect rebound (a jump of the momentum at a wall). The
module adds one per step. From `(q_t, p_t)` over a step `dt`:

1. a tentative step of the flow over `dt` gives `(q~, p~)`;
2. a flow over `alpha dt`;
3. the momentum is reflected, `p <- p - 2 (p . n) n`, with `n = gamma n_bar`;
4. a flow over `(1 - alpha) dt`.

`n_bar` (a unit vector) and `alpha` (>= 0) come from two 10 x 10 neighbourhoods of the wall
image centred on `q_t` and on `q~` (200 inputs) through a shared tanh layer of 128, then
`32 -> 2` (normalised) for `n_bar` and `32 -> 1` (ReLU) for `alpha`; `gamma` in [0, 1] is the
sigmoid of an MLP `4 -> 16 -> 16 -> 1` on a 2 x 2 neighbourhood at `q~`, trained with an L1
penalty. The flow is an H-NET (`K(p) + V(q)`, each `2 -> 32 -> 1`) or an O-NET (`4 -> 32 -> 4`)
stepped by leapfrog. The authors published no code for this experiment; what the paper leaves
open is decided in `SRNNReboundConfig` and below, and said there.

Where ours differs from the paper's equations (6)-(8), and why: the paper returns the flow
over `(1 - alpha) dt` of the reflected state. With `n = 0` that is two leapfrog legs where the
plain SRNN takes one, which differ by leapfrog's local error. The paper states that the
final state "is equal to the tentative state when no rebound occurs, that is, when n = 0"; we
make that exact by returning `tentative + [F(reflected) - F(unreflected)]`, with `F` the flow
over `(1 - alpha) dt` from the state at `alpha dt`. For an exact flow (the billiard's true H,
whose leapfrog is exact under constant gravity) both forms are the same step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar, Literal, NamedTuple, final

import torch
from torch import Tensor, nn

from ._base import LossKind, Memory, ModelConfig, TransitionModel
from ._hamiltonian import SMOOTH_ACTIVATIONS, Forcing, HamiltonianSystem, NetSize, SeparableEnergy
from ._registry import register
from ._wall_image import WallImage, env_wall_image
from .node import NODE, NODEConfig, _NetField, _SplitNetField

__all__ = ["ReboundTerms", "SRNNRebound", "SRNNReboundConfig", "rebound_step"]

#: Side of the image neighbourhoods `n_bar` and `alpha` read (the paper's 10 x 10), in pixels.
WIDE = 10
#: Side of the neighbourhood `gamma` reads (the paper's 2 x 2), in pixels.
NARROW = 2

Flow = Callable[[Tensor, "float | Tensor"], Tensor]
"""`flow(z (B, D), duration) -> (B, D)`: the state `duration` (a float, or `(B, 1)`) later."""


def reflect(p: Tensor, n: Tensor) -> Tensor:
    """`p - 2 (p . n) n` `(B, k)`: a mirror of `p` in the plane normal to `n` when `|n| = 1`,
    nothing when `n = 0`, and a partial reversal in between."""
    return p - 2.0 * (p * n).sum(-1, keepdim=True) * n


def rebound_step(
    flow: Flow, z: Tensor, tentative: Tensor, n: Tensor, alpha: Tensor | None, dt: float
) -> Tensor:
    """One augmented step from `z` `(B, 2k)` (`[q, p]`) given the flow's `tentative` step over
    `dt` `(B, 2k)`, the rebound vector `n` `(B, k)` and its time fraction `alpha` `(B,)`.

    `alpha=None` is the module without timing: the rebound at the end of the step
    (`alpha = 1`), the reflected tentative state. See the module docstring for the form.
    """
    k = n.shape[-1]
    if alpha is None:
        q, p = tentative[:, :k], tentative[:, k:]
        return torch.cat((q, reflect(p, n)), dim=-1)
    at_bounce = flow(z, (alpha * dt)[:, None])
    q, p = at_bounce[:, :k], at_bounce[:, k:]
    reflected = torch.cat((q, reflect(p, n)), dim=-1)
    rest = ((1.0 - alpha) * dt)[:, None]
    legs = flow(torch.cat((reflected, at_bounce)), torch.cat((rest, rest)))
    with_rebound, without = legs.chunk(2)
    # Rows with n = 0 are the tentative step exactly: the two legs then had equal inputs, but
    # rows of one stacked batch may round differently in their last bit.
    change = torch.where((n == 0).all(-1, keepdim=True), 0.0, with_rebound - without)
    return tentative + change


class ReboundTerms(NamedTuple):
    """What the module decides for a batch of steps: `tentative` `(B, D)`, the direction
    `normal` (`n_bar`, unit) `(B, 2)`, `alpha` `(B,)` (ones without timing) and `gamma` `(B,)`."""

    tentative: Tensor
    normal: Tensor
    alpha: Tensor
    gamma: Tensor


@dataclass
class SRNNReboundConfig(ModelConfig):
    """Configuration of :class:`SRNNRebound`, with the paper's sizes (appendix A.3).

    Decided here where the paper is silent: the weight of the L1 penalty on `gamma`
    (`gamma_l1`, added to the loss as `gamma_l1 * mean(gamma)` over the steps of a batch), the
    initialisation (PyTorch's default: `gamma` starts near 0.5, so that the reflection, whose
    derivative in `n` vanishes at `n = 0`, can learn at all), and `alpha` unbounded above (the
    paper's ReLU; `alpha > 1` extrapolates the second leg backwards).
    """

    hidden: int = 32
    """Width of the hidden layer of `K(p)` and `V(q)` (H-NET) or of the O-NET."""
    layers: int = 1
    """Hidden layers of the flow's networks."""
    integrator: str = "leapfrog"
    """Integrator of the flow in training."""
    test_integrator: str | None = "leapfrog"
    """Integrator of the flow in evaluation."""
    dynamics: Literal["hnet", "onet"] = "hnet"
    """`"hnet"`: SRNN's separable H-NET; `"onet"`: an O-NET (the paper's "L-L O-NET with the
    rebound module" baseline), both stepped by the integrator."""
    alpha_output: Literal["relu", "sigmoid"] = "relu"
    """The activation of alpha's output: `"relu"` (appendix A.3, alpha >= 0) or `"sigmoid"`
    (section 6's "alpha in [0, 1]"). A ReLU output can die: once its input is negative for
    every state, alpha is 0 everywhere and gets no gradient (seen in a paper-scale run)."""
    learn_alpha: bool = True
    """`False`: the paper's baseline "rebound module that does not learn alpha", which
    effectively treats `alpha = 1` (the reflection at the end of the step)."""
    gamma_l1: float = 1e-3
    """Weight of the L1 penalty on `gamma` (silent in the paper)."""
    module_hidden: int = 128
    """Width of the shared first layer of `n_bar` and `alpha`."""
    head_hidden: int = 32
    """Width of the second layers of the `n_bar` and `alpha` heads."""
    gamma_hidden: int = 16
    """Width of the two hidden layers of the `gamma` MLP."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.state_layout != "qp" or self.obs_dim != 4 or self.q_dim != 2:
            raise ValueError(
                "srnn-rebound models a point in the plane: [x, y, px, py] states "
                f"(obs_dim=4, q_dim=2, state_layout='qp'), got obs_dim={self.obs_dim}, "
                f"q_dim={self.q_dim}, state_layout={self.state_layout!r}"
            )
        if self.alpha_output not in ("relu", "sigmoid"):
            raise ValueError(f"alpha_output must be 'relu' or 'sigmoid', got {self.alpha_output!r}")
        if self.dynamics not in ("hnet", "onet"):
            raise ValueError(f"dynamics must be 'hnet' or 'onet', got {self.dynamics!r}")
        if self.activation not in SMOOTH_ACTIVATIONS:
            raise ValueError(
                f"srnn-rebound needs a smooth activation, got {self.activation!r}; valid: "
                f"{', '.join(SMOOTH_ACTIVATIONS)}"
            )
        if not self.gamma_l1 >= 0:
            raise ValueError(f"gamma_l1 must be >= 0, got {self.gamma_l1!r}")
        for name in ("module_hidden", "head_hidden", "gamma_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)!r}")
        if self.env_id is None:
            raise TypeError(
                "srnn-rebound reads the wall image of its env: env_id is required (an env "
                "with background_image() and image_coordinates(q), e.g. "
                "'physprior/HeavyBilliard-v0')"
            )


class ReboundModule(nn.Module):
    """The networks of `n_bar`, `alpha` and `gamma` over a :class:`WallImage`."""

    def __init__(self, walls: WallImage, config: SRNNReboundConfig) -> None:
        super().__init__()
        self.walls = walls
        self.learn_alpha = config.learn_alpha
        self.shared = nn.Sequential(nn.Linear(2 * WIDE * WIDE, config.module_hidden), nn.Tanh())
        self.normal_head = nn.Sequential(
            nn.Linear(config.module_hidden, config.head_hidden),
            nn.Tanh(),
            nn.Linear(config.head_hidden, 2),
        )
        self.alpha_head = nn.Sequential(
            nn.Linear(config.module_hidden, config.head_hidden),
            nn.Tanh(),
            nn.Linear(config.head_hidden, 1),
            nn.ReLU() if config.alpha_output == "relu" else nn.Sigmoid(),
        )
        g = config.gamma_hidden
        self.gamma_net = nn.Sequential(
            nn.Linear(NARROW * NARROW, g), nn.Tanh(), nn.Linear(g, g), nn.Tanh(), nn.Linear(g, 1)
        )

    def forward(self, q: Tensor, q_tentative: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        """`(n_bar (B, 2), alpha (B,), gamma (B,))` from positions `q`, `q_tentative` `(B, 2)`."""
        wide = self.walls.neighbourhoods(torch.stack((q, q_tentative), dim=1), WIDE)
        features = self.shared(wide.flatten(1))
        raw = self.normal_head(features)
        normal = raw / raw.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        if self.learn_alpha:
            alpha = self.alpha_head(features).squeeze(-1)
        else:
            alpha = torch.ones_like(raw[:, 0])
        gamma = torch.sigmoid(self.gamma_net(self.walls.neighbourhood(q_tentative, NARROW)))
        return normal, alpha, gamma.squeeze(-1)


@register
@final
class SRNNRebound(TransitionModel):
    """A learned flow (H-NET or O-NET, leapfrog) with SRNN's learned rebound module.

    States `(B, 4)` are `[x, y, px, py]`; actions `(B, A)` enter the H-NET as a learned
    generalised force (as in `srnn`) or the O-NET as an input. The wall image comes from the
    env `config.env_id` when the model is built (it is not part of a checkpoint).

    `terms(z, u)` gives the module's decisions (`ReboundTerms`); `step(z, u)` the augmented
    step. Training adds `gamma_l1 * mean(gamma)` to the state loss.
    """

    name: ClassVar[str] = "srnn-rebound"
    config_class: ClassVar[type[ModelConfig]] = SRNNReboundConfig
    config: SRNNReboundConfig

    def __init__(self, config: SRNNReboundConfig) -> None:
        if not isinstance(config, SRNNReboundConfig):
            raise TypeError(f"SRNNRebound needs an SRNNReboundConfig, got {type(config).__name__}")
        super().__init__(config)
        assert config.env_id is not None
        size = NetSize(config.hidden, config.layers, config.activation)
        self.system: HamiltonianSystem | None = None
        self.onet: NODE | None = None
        if config.dynamics == "hnet":
            self.system = HamiltonianSystem(
                SeparableEnergy(2, size),
                forcing=Forcing(2, config.action_dim, size) if config.action_dim else None,
            )
        else:
            self.onet = NODE(
                NODEConfig(
                    obs_dim=4,
                    action_dim=config.action_dim,
                    q_dim=2,
                    dt=config.dt,
                    hidden=config.hidden,
                    layers=config.layers,
                    activation=config.activation,
                    integrator=config.integrator,
                    test_integrator=config.test_integrator,
                    env_id=config.env_id,
                )
            )
        self.rebound = ReboundModule(WallImage(*env_wall_image(config.env_id)), config)
        self._gammas: list[Tensor] | None = None

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Fit the normalisers, then the flow's units from them."""
        super().fit_normalization(states, actions)
        if self.system is not None:
            self.system.scales.fit(
                self.state_norm.mean, self.state_norm.std, self.delta_norm.std, self.dt, "qp"
            )
        else:
            assert self.onet is not None
            self.onet.fit_normalization(states, actions)

    # ------------------------------------------------------------------ the flow
    def _flow(self, u: Tensor) -> Flow:
        """The flow under the action `u` `(B, A)`, for B states or a stack of several B."""
        integrator, substeps = self.active_integrator, self.active_substeps
        if self.system is not None:
            system = self.system
            control = u / self.action_norm.std if self.action_dim else None

            def hnet(z: Tensor, duration: float | Tensor) -> Tensor:
                return system.advance(z, _tiled(control, z), integrator, duration, substeps)

            return hnet
        assert self.onet is not None
        net = self.onet._folded()
        bias = net.input_bias(u)

        def onet(z: Tensor, duration: float | Tensor) -> Tensor:
            h, b = duration / substeps, _tiled(bias, z)
            assert b is not None
            if integrator.requires_split:
                return integrator.advance(_SplitNetField(net, b, 2), z, h, substeps)
            return integrator.advance(_NetField(net, b), z, h, substeps)

        return onet

    # ------------------------------------------------------------------ steps
    def terms(self, z: Tensor, u: Tensor | None = None) -> ReboundTerms:
        """The tentative step and the module's `n_bar`, `alpha`, `gamma` for states `z`
        `(B, 4)` under actions `u` `(B, A)`."""
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        return self._terms(z, self._flow(u))

    def _terms(self, z: Tensor, flow: Flow) -> ReboundTerms:
        tentative = flow(z, self.dt)  # a float, as SRNN's own step: bitwise the same
        normal, alpha, gamma = self.rebound(z[:, :2], tentative[:, :2])
        return ReboundTerms(tentative, normal, alpha, gamma)

    def _step(self, z: Tensor, u: Tensor) -> tuple[Tensor, Tensor]:
        """The augmented step `(B, 4)` and `gamma` `(B,)`."""
        flow = self._flow(u)
        t = self._terms(z, flow)
        alpha = t.alpha if self.config.learn_alpha else None
        n = t.gamma[:, None] * t.normal
        return rebound_step(flow, z, t.tentative, n, alpha, self.dt), t.gamma

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        stepped, gamma = self._step(z, u)
        if self._gammas is not None:  # inside training_loss: the penalty needs every gamma
            self._gammas.append(gamma)
        return stepped, None

    def training_loss(
        self,
        states: Tensor,
        actions: Tensor,
        *,
        loss: LossKind = "l2",
        initial_states: Tensor | None = None,
    ) -> Tensor:
        """The state loss of `TransitionModel.training_loss` plus `gamma_l1 * mean(gamma)`
        over every predicted step (windows `states (B, T+1, D)`, `actions (B, T, A)`)."""
        self._gammas = []
        try:
            error = super().training_loss(states, actions, loss=loss, initial_states=initial_states)
            gammas = torch.cat(self._gammas)
        finally:
            self._gammas = None
        return error + self.config.gamma_l1 * gammas.mean()


def _tiled(per_sample: Tensor | None, z: Tensor) -> Tensor | None:
    """`per_sample` `(B, H)` repeated to the rows of a stack `z` `(k B, D)`; a tensor without
    a batch dimension (or None) as it is."""
    if per_sample is None or per_sample.ndim < 2 or per_sample.shape[0] == z.shape[0]:
        return per_sample
    return per_sample.repeat(z.shape[0] // per_sample.shape[0], 1)
