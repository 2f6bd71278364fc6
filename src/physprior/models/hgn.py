"""`hgn`: the Hamiltonian Generative Network (Toth et al. 2020), dynamics learned from frames.

An encoder reads the first `inference_frames` frames of a sequence (stacked along channels)
and gives a Gaussian posterior over a latent `z`; a network `f_psi` maps `z` to the abstract
initial state `s_0 = (q, p)`, a `(2 c) x 4 x 4` map (`c = 16` position and 16 momentum
channels); a learned Hamiltonian `H(q, p)` moves it one leapfrog (or Euler) step of
`dt = 0.125` per frame; a decoder draws each frame from `q` alone. The loss is the ELBO with
a unit-variance Gaussian likelihood (a scaled L2), with GECO's Lagrange multiplier
(Rezende & Viola 2018) balancing the KL against a reconstruction target.

Two presets (`preset`), every field overridable:

| field | `paper` (appendix A.1) | `reduced` (the default: sized for CPU cores) |
|---|---|---|
| encoder | 8 conv layers: 32, 64 x 6, head 48 | 8 layers: 8, 16 x 6, head 16 |
| `f_psi` | 3 conv layers of 64, to 4 x 4 x 32 | 3 layers of 16, to 4 x 4 x 32 |
| Hamiltonian | conv, 6 layers of 64 (+ a linear read-out) | MLP on the flat state, 2 x 128 |
| decoder | 3 residual blocks of 64 | 3 residual blocks of 16 |
| frames the encoder reads | 31 (the whole 30-step sequence) | 31 |

Where ours differs from the paper, and why:

- `separable=True` (the default) learns `H = T(p) + V(q)`: the paper says it assumes a
  separable Hamiltonian and uses leapfrog (section 3.2), but its network reads `(q, p)`
  together. With `T` and `V` apart the leapfrog is the exact Stormer-Verlet map: symplectic
  (Jacobian determinant 1) and reversible (tested). `separable=False` is the paper's
  network on `(q, p)`; its leapfrog `p' = p - h/2 dH/dq(q, p)`, `q' = q + h dH/dp(q, p')`,
  `p'' = p' - h/2 dH/dq(q', p')` is explicit, so it is neither exactly symplectic nor
  reversible for a non-separable `H`.
- The paper's appendix writes the leapfrog's drift as `q' = q + h p` (its equation 25,
  derived for `dq/dt = p`); here the drift is `h dT/dp`, as Hamilton's equations demand for
  a learned `H` (the reimplementation's `q += h p` ignores `dH/dp`).
- No activation on `f_psi`'s output or on `H` (the reimplementation's ReLU forces
  `q, p >= 0` and its softplus `H > 0`).
- `variational=False`, "HGN determ": the encoder gives only a mean, which is `z`, and the
  loss is the pixel MSE (the paper does not say how its deterministic version was built;
  the reimplementation still samples `z`).
- GECO's constants are the reimplementation's (the paper gives none): a per-pixel tolerance
  0.033 (its square is the MSE target), a moving average of the constraint with rate 0.99
  whose value (not gradient) stands in for the constraint, and `lambda <- lambda exp(0.1
  C_ma)` after each step from `lambda = 1`, clamped to [1e-10, 1e10]. The KL is summed over
  the latent and divided by the pixels of the window (frames x 3 x 32 x 32), as theirs.
- With `action_dim > 0` a learned linear map adds a generalised force `F u` to `dp/dt` (an
  extension, so an agent can act in the latent world; the paper's systems are autonomous).

Shapes: frames `(B, T, P)` with `P = frame_size^2 x 3` (rows, columns, colour: the layout of
`physprior.data.render_frames(env, states, "hgn")`), values in [0, 1]; latent states
`(B, 2 n)` laid out `[q, p]` with `n = 16 x 4 x 4 = 256`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, final

import torch
from torch import Tensor, nn

from ._base import LossKind, Memory, ModelConfig, TransitionModel
from ._hgn_networks import ConvEnergy, FrameDecoder, FrameEncoder, MLPEnergy, StateTransformer
from ._parts import check_unit_range, checked_frames, gradient_of, refuse_trainer_options
from ._registry import register

__all__ = ["HGN", "HGNConfig"]

Preset = Literal["reduced", "paper"]
Scheme = Literal["leapfrog", "euler"]
#: preset -> the fields it fills where the caller left them at None
PRESETS: dict[str, dict[str, Any]] = {
    "paper": {
        "encoder_filters": 64,
        "latent_channels": 48,
        "transformer_filters": 64,
        "hamiltonian": "conv",
        "hamiltonian_filters": 64,
        "decoder_filters": 64,
        "inference_frames": 31,
    },
    "reduced": {
        "encoder_filters": 16,
        "latent_channels": 16,
        "transformer_filters": 16,
        "hamiltonian": "mlp",
        "hamiltonian_filters": 16,
        "decoder_filters": 16,
        "inference_frames": 31,
    },
}
#: Downsampling of `f_psi` (three stride-2 layers): the state map is frame_size / 8 wide.
STATE_DOWNSAMPLING = 8


@dataclass
class HGNConfig(ModelConfig):
    """Configuration of :class:`HGN`; see the module docstring for the presets.

    `obs_dim` is the width of the flattened abstract state, `2 state_channels (frame_size /
    8)^2` (512 for 32-pixel frames); `dt` the time between frames, also the integrator's step
    (0.125 in the paper). `hidden`, `layers` and `activation` size the MLP Hamiltonian. The
    normalisation and integrator fields of `ModelConfig` are unused (frames need no
    normalising; `scheme` picks the integrator).
    """

    obs_dim: int = 512
    activation: str = "softplus"
    preset: Preset = "reduced"
    """Which architecture fills the fields left at None: `reduced` or `paper`."""
    scheme: Scheme = "leapfrog"
    """`leapfrog` (the paper's HGN) or `euler` ("HGN (Euler)")."""
    separable: bool = True
    """`H = T(p) + V(q)` (exactly symplectic leapfrog) or one network on `(q, p)`."""
    variational: bool = True
    """`False`: "HGN (determ)", a deterministic encoder and a pixel-MSE loss."""
    frame_size: int = 32
    """Frames are `frame_size x frame_size` pixels; a multiple of 8."""
    colour_channels: int = 3
    state_channels: int = 16
    """Channels of `q` (and of `p`) in the abstract state map."""
    encoder_filters: int | None = None
    latent_channels: int | None = None
    """Channels of the posterior's `z` (the encoder's last layer)."""
    transformer_filters: int | None = None
    hamiltonian: Literal["conv", "mlp"] | None = None
    """`conv`: the paper's 6-layer convolutional H; `mlp`: an MLP on the flat state."""
    hamiltonian_filters: int | None = None
    decoder_filters: int | None = None
    inference_frames: int | None = None
    """Frames the encoder reads from the start of a sequence."""
    geco_tolerance: float = 0.033
    """GECO's reconstruction target, a per-pixel error (the MSE target is its square)."""
    geco_alpha: float = 0.99
    """Rate of GECO's moving average of the constraint."""
    geco_step: float = 0.1
    """GECO's multiplier update `lambda <- lambda exp(geco_step C_ma)`."""

    def __post_init__(self) -> None:
        if self.preset not in PRESETS:
            raise ValueError(f"preset must be one of {', '.join(PRESETS)}, got {self.preset!r}")
        for name, value in PRESETS[self.preset].items():
            if getattr(self, name) is None:
                setattr(self, name, value)
        super().__post_init__()
        if self.scheme not in ("leapfrog", "euler"):
            raise ValueError(f"scheme must be 'leapfrog' or 'euler', got {self.scheme!r}")
        if self.hamiltonian not in ("conv", "mlp"):
            raise ValueError(f"hamiltonian must be 'conv' or 'mlp', got {self.hamiltonian!r}")
        if self.frame_size < STATE_DOWNSAMPLING or self.frame_size % STATE_DOWNSAMPLING:
            raise ValueError(f"frame_size must be a multiple of 8, got {self.frame_size}")
        if self.hamiltonian == "conv" and self.frame_size != 4 * STATE_DOWNSAMPLING:
            raise ValueError(
                f"the convolutional Hamiltonian reads a 4 x 4 state map: frame_size=32, "
                f"got {self.frame_size}"
            )
        for name in (
            "colour_channels",
            "state_channels",
            "encoder_filters",
            "latent_channels",
            "transformer_filters",
            "hamiltonian_filters",
            "decoder_filters",
            "inference_frames",
        ):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        expected = 2 * self.state_channels * self.state_side**2
        if self.obs_dim != expected:
            raise ValueError(
                f"obs_dim must be 2 x state_channels x (frame_size / 8)^2 = {expected} for "
                f"state_channels={self.state_channels}, frame_size={self.frame_size}; "
                f"got {self.obs_dim}"
            )
        if self.q_dim != self.obs_dim // 2:
            raise ValueError(f"q_dim must be obs_dim / 2 = {self.obs_dim // 2}, got {self.q_dim}")
        for name in ("geco_tolerance", "geco_step"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value > 0):
                raise ValueError(f"{name} must be a number > 0, got {value!r}")
        if not 0.0 <= self.geco_alpha < 1.0:
            raise ValueError(f"geco_alpha must be in [0, 1), got {self.geco_alpha!r}")

    @property
    def state_side(self) -> int:
        """Width of the abstract state map (4 for 32-pixel frames)."""
        return self.frame_size // STATE_DOWNSAMPLING

    @property
    def frame_pixels(self) -> int:
        """Values per frame: `frame_size^2 x colour_channels`."""
        return self.frame_size * self.frame_size * self.colour_channels


@register
@final
class HGN(TransitionModel):
    """Encoder, `f_psi`, learned Hamiltonian and decoder, trained on sequences of frames.

    See the module docstring. The trainer passes windows of frames `(B, T + 1, P)` (values in
    [0, 1], `T + 1 >= inference_frames`); `training_loss` is GECO's form of the negative
    ELBO. `step` and `rollout` move abstract states `(B, 2 n)`; `infer_initial_state`,
    `decode_frames`, `latent_rollout` and `predict_frames` connect them to frames; `energy`
    is the learned Hamiltonian.

    >>> import torch, physprior.models as models
    >>> model = models.make("hgn", dt=0.125, frame_size=8, obs_dim=4, state_channels=2,
    ...                     inference_frames=3).eval()
    >>> frames = torch.rand(2, 3, 8 * 8 * 3)
    >>> model.predict_frames(frames, steps=5).shape
    torch.Size([2, 6, 192])
    """

    name: ClassVar[str] = "hgn"
    supports_probabilistic = False
    config_class: ClassVar[type[ModelConfig]] = HGNConfig
    supports_initial_states: ClassVar[bool] = False
    #: How the physics envs draw this model's frames (`physprior.data.render_frames`).
    frame_style: ClassVar[str] = "hgn"
    config: HGNConfig
    geco_lambda: Tensor
    geco_average: Tensor
    geco_started: Tensor

    def __init__(self, config: HGNConfig) -> None:
        if not isinstance(config, HGNConfig):
            raise TypeError(f"HGN needs an HGNConfig, got {type(config).__name__}")
        super().__init__(config)
        c = config
        assert c.encoder_filters and c.latent_channels and c.transformer_filters
        assert c.hamiltonian_filters and c.decoder_filters and c.inference_frames
        self.encoder = FrameEncoder(
            c.colour_channels * c.inference_frames,
            c.encoder_filters,
            c.latent_channels,
            variational=c.variational,
        )
        self.transformer = StateTransformer(
            c.latent_channels, c.transformer_filters, c.state_channels
        )
        n = self.q_dim
        self.kinetic: nn.Module | None = None
        self.potential: nn.Module | None = None
        self.joint: nn.Module | None = None
        if c.separable:
            self.kinetic = self._energy_net(c.state_channels, n)
            self.potential = self._energy_net(c.state_channels, n)
        else:
            self.joint = self._energy_net(2 * c.state_channels, 2 * n)
        self.decoder = FrameDecoder(c.state_channels, c.decoder_filters, c.colour_channels)
        self.force = nn.Linear(c.action_dim, n, bias=False) if c.action_dim else None
        # GECO's state: the multiplier, the constraint's moving average, and whether the
        # average has started. Buffers, so checkpoints carry them and a resume is exact.
        self.register_buffer("geco_lambda", torch.ones(()))
        self.register_buffer("geco_average", torch.zeros(()))
        self.register_buffer("geco_started", torch.zeros((), dtype=torch.bool))

    def _energy_net(self, channels: int, flat: int) -> nn.Module:
        c = self.config
        if c.hamiltonian == "conv":
            assert c.hamiltonian_filters is not None
            return ConvEnergy(channels, c.hamiltonian_filters, c.activation)
        return MLPEnergy(flat, c.hidden, c.layers, c.activation)

    # ------------------------------------------------------------------ dims
    @property
    def data_dim(self) -> int:
        """Values per frame: the trainer's windows are frames."""
        return self.config.frame_pixels

    @property
    def inference_frames(self) -> int:
        """Frames the encoder reads from the start of a sequence."""
        return int(self.config.inference_frames or 0)

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One frame's shape: `(frame_size, frame_size, colour_channels)`."""
        c = self.config
        return (c.frame_size, c.frame_size, c.colour_channels)

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Nothing to fit (frames are in [0, 1]); refuses windows that are not frames."""
        check_unit_range(self._check_frames(states, "training windows"), self.name)

    # ------------------------------------------------------------------ maps <-> flat states
    def _as_map(self, flat: Tensor) -> Tensor:
        """`(N, c s^2)` -> `(N, c, s, s)`."""
        side = self.config.state_side
        return flat.reshape(flat.shape[0], -1, side, side)

    def _energy_of(self, net: nn.Module, flat: Tensor) -> Tensor:
        return net(self._as_map(flat) if self.config.hamiltonian == "conv" else flat)

    def energy(self, z: Tensor) -> Tensor:
        """The learned Hamiltonian `H(q, p)` `(...,)` of abstract states `z` `(..., 2 n)`."""
        lead = z.shape[:-1]
        flat = z.reshape(-1, self.obs_dim)
        n = self.q_dim
        q, p = flat[:, :n], flat[:, n:]
        if self.joint is not None:
            value = self._energy_of(self.joint, self._interleave(q, p))
        else:
            assert self.kinetic is not None and self.potential is not None
            value = self._energy_of(self.kinetic, p) + self._energy_of(self.potential, q)
        return value.reshape(lead)

    def _interleave(self, q: Tensor, p: Tensor) -> Tensor:
        """The joint network's input: `q` and `p` as the channels of one map, flattened."""
        side, c = self.config.state_side, self.config.state_channels
        maps = torch.cat((q.reshape(-1, c, side, side), p.reshape(-1, c, side, side)), dim=1)
        return maps.flatten(1)

    # ------------------------------------------------------------------ Hamilton's equations
    def _dH_dq(self, q: Tensor, p: Tensor) -> Tensor:
        if self.joint is not None:
            return gradient_of(lambda x: self._energy_of(self.joint, self._interleave(x, p)), q)  # type: ignore[arg-type]
        assert self.potential is not None
        return gradient_of(lambda x: self._energy_of(self.potential, x), q)  # type: ignore[arg-type]

    def _dH_dp(self, q: Tensor, p: Tensor) -> Tensor:
        if self.joint is not None:
            return gradient_of(lambda x: self._energy_of(self.joint, self._interleave(q, x)), p)  # type: ignore[arg-type]
        assert self.kinetic is not None
        return gradient_of(lambda x: self._energy_of(self.kinetic, x), p)  # type: ignore[arg-type]

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """One integrator step of `dt` on abstract states `(B, 2 n) -> (B, 2 n)`."""
        return self.latent_step(z, u, self.dt), None

    def latent_step(self, z: Tensor, u: Tensor | None, h: float) -> Tensor:
        """One step of length `h` (negative: backwards in time) of the model's integrator on
        states `z` `(B, 2 n)` under actions `u` `(B, A)` (or None). With a separable `H` the
        leapfrog run with `-h` undoes the step with `h` exactly (up to rounding)."""
        n = self.q_dim
        q, p = z[:, :n], z[:, n:]
        force = self.force(u) if self.force is not None and u is not None else None

        def momentum_rate(q: Tensor, p: Tensor) -> Tensor:
            rate = -self._dH_dq(q, p)
            return rate if force is None else rate + force

        if self.config.scheme == "euler":
            return torch.cat((q + h * self._dH_dp(q, p), p + h * momentum_rate(q, p)), dim=-1)
        p_half = p + 0.5 * h * momentum_rate(q, p)
        q_next = q + h * self._dH_dp(q, p_half)
        return torch.cat((q_next, p_half + 0.5 * h * momentum_rate(q_next, p_half)), dim=-1)

    # ------------------------------------------------------------------ frames <-> latent
    def _stack(self, frames: Tensor) -> Tensor:
        """The first `inference_frames` frames `(B, K, P)` stacked along channels."""
        c = self.config
        k = self.inference_frames
        if frames.shape[1] < k:
            raise ValueError(
                f"frames have {frames.shape[1]} time steps; the encoder reads the first "
                f"inference_frames={k}"
            )
        b = frames.shape[0]
        images = frames[:, :k].reshape(b, k, c.frame_size, c.frame_size, c.colour_channels)
        return images.permute(0, 1, 4, 2, 3).reshape(
            b, k * c.colour_channels, c.frame_size, c.frame_size
        )

    def infer_initial_state(self, frames: Tensor, *, sample: bool = False) -> tuple[Tensor, Tensor]:
        """The abstract state at frame 0 `(B, 2 n)` and the KL `(B,)` from frames `(B, K, P)`
        (`K >= inference_frames`; the first `inference_frames` are read): `f_psi` of the
        posterior's mean or, with `sample`, of one reparameterised draw. The KL is 0 for the
        deterministic variant."""
        return self._infer_initial_state(self._check_frames(frames, "frames"), sample=sample)

    def _infer_initial_state(self, frames: Tensor, *, sample: bool) -> tuple[Tensor, Tensor]:
        mean, log_var = self.encoder(self._stack(frames))
        if log_var is None:
            z, kl = mean, mean.new_zeros(mean.shape[0])
        else:
            kl = 0.5 * (log_var.exp() + mean.square() - 1.0 - log_var).flatten(1).sum(-1)
            z = mean + (0.5 * log_var).exp() * torch.randn_like(mean) if sample else mean
        state = self.transformer(z)  # (B, 2c, s, s): q channels first
        c = self.config.state_channels
        return torch.cat((state[:, :c].flatten(1), state[:, c:].flatten(1)), dim=-1), kl

    def decode_frames(self, z: Tensor) -> Tensor:
        """Pixel values `(..., P)` in (0, 1) of abstract states `(..., 2 n)`, from `q` only."""
        lead = z.shape[:-1]
        q = z.reshape(-1, self.obs_dim)[:, : self.q_dim]
        images = self.decoder(self._as_map(q))  # (N, C, S, S)
        return images.permute(0, 2, 3, 1).reshape(*lead, self.data_dim)

    def latent_rollout(
        self, frames: Tensor, steps: int, actions: Tensor | None = None, *, sample: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Abstract states `(B, steps + 1, 2 n)` at frames `0..steps` and the KL `(B,)`, from
        the state inferred from the first frames of `frames` `(B, K, P)`; actions
        `(B, steps, A)` or none."""
        return self._latent_rollout(
            self._check_frames(frames, "frames"), steps, actions, sample=sample
        )

    def _latent_rollout(
        self, frames: Tensor, steps: int, actions: Tensor | None, *, sample: bool
    ) -> tuple[Tensor, Tensor]:
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        z0, kl = self._infer_initial_state(frames, sample=sample)
        if actions is None:
            actions = z0.new_zeros(z0.shape[0], steps, self.action_dim)
        return self.rollout(z0, self._check_actions(actions, z0.shape[0], steps)), kl

    @torch.no_grad()
    def predict_frames(self, frames: Tensor, steps: int, actions: Tensor | None = None) -> Tensor:
        """Predicted frames `(B, steps + 1, P)` at `0..steps` from the posterior mean of the
        state inferred from `frames` `(B, K, P)`."""
        z, _ = self.latent_rollout(frames, steps, actions, sample=False)
        return self.decode_frames(z)

    # ------------------------------------------------------------------ training
    def training_loss(
        self,
        states: Tensor,
        actions: Tensor,
        *,
        loss: LossKind = "l2",
        initial_states: Tensor | None = None,
    ) -> Tensor:
        """GECO's negative ELBO of windows of frames `states` `(B, T + 1, P)`: `KL / pixels
        + lambda (MSE - tolerance^2)`, or the pixel MSE for the deterministic variant.

        In training (with gradients on) each call also advances GECO's moving average and
        multiplier, as one optimiser step of the reimplementation does. The trainer's `loss`
        kind must stay `"l2"` (the likelihood is a unit-variance Gaussian); initial-state
        optimisation does not apply (the encoder infers the initial state).
        """
        refuse_trainer_options("hgn", "its Gaussian ELBO", loss, initial_states)
        frames = self._check_frames(states, "windows")
        steps = frames.shape[1] - 1
        z, kl = self._latent_rollout(frames, steps, actions, sample=self.training)
        mse = (self.decode_frames(z) - frames).square().mean()
        if not self.config.variational:
            return mse
        c = self.config
        kl_per_value = kl.mean() / (frames.shape[1] * frames.shape[2])
        constraint = mse - c.geco_tolerance**2
        if not (self.training and torch.is_grad_enabled()):
            return kl_per_value + self.geco_lambda * constraint
        with torch.no_grad():
            value = constraint.detach()
            if bool(self.geco_started):
                average = c.geco_alpha * self.geco_average + (1.0 - c.geco_alpha) * value
            else:
                average = value
            self.geco_average.copy_(average)
            self.geco_started.fill_(True)
            lam = self.geco_lambda.clone()
            self.geco_lambda.copy_((lam * torch.exp(c.geco_step * average)).clamp(1e-10, 1e10))
        # The constraint's value is its moving average; its gradient is this batch's.
        smoothed = constraint + (average - constraint).detach()
        return kl_per_value + lam * smoothed

    # ------------------------------------------------------------------ checks
    def _check_frames(self, frames: Tensor, name: str) -> Tensor:
        c = self.config
        described = f"{c.frame_size} x {c.frame_size} x {c.colour_channels}"
        return checked_frames(
            frames, name, values=self.data_dim, described=described, like=self.geco_lambda
        )

    def extra_repr(self) -> str:
        c = self.config
        return (
            f"preset={c.preset}, scheme={c.scheme}, separable={c.separable}, "
            f"variational={c.variational}, hamiltonian={c.hamiltonian}, latent={c.obs_dim}"
        )
