"""`pixel-vin`: VIN (or its ResRNN baseline) in the latent space of a frame autoencoder.

The VIN paper's pixel model (Saemundsson et al. 2020, section 4; the authors' `PixelLDDN` in
steindoringi/Variational_Integrator_Networks, `models.py`, with `config/pixels*.gin`):

- an encoder reads the first `inference_frames` (10) frames of a window, each through an MLP
  `pixels -> 1000 -> 1000` (ReLU) to a Gaussian's mean and softplus standard deviation;
  `vv` and `resnet` run those per-frame outputs through a backward LSTM (50 units) and a
  linear head to get `(q_0, v_0)` (one position cannot give a velocity); `sv` and `so2`
  take `q_0` and `q_1` from the first two frames' posteriors;
- the latent dynamics step `h` (`step_size`: 1 for `vv`, `sv` and `resnet`, 0.1 for `so2`,
  the authors' `pixels.gin` and `pixels_SO2.gin`) is the latent time unit; the frames are
  `dt` apart in the data;
- every layer starts as Keras starts it (Glorot-uniform kernels, zero biases, the LSTM's
  orthogonal recurrent kernel and forget bias 1), the authors' framework's defaults;
- a decoder `q -> 1000 -> 1000 -> pixels` (ReLU) gives Bernoulli logits; it reads the
  position only (`vv`, `sv`), `(sin q, cos q)` (`so2`), or the whole 2-D latent (`resnet`,
  whose latent has no position/velocity split);
- the loss is the negative ELBO: the Bernoulli log-likelihood summed over pixels and frames,
  plus the KL of the encoder's posteriors from the authors' priors, averaged over windows;
  training uses one reparameterised sample of the initial state, evaluation the mean.

The KL is the authors', which covers more than the paper's `KL(q(x_1) || N(0, I))`: for `vv`
all 10 LSTM outputs against `N(0, diag(1, h^2))` (standard deviations 1 for `q`, `h` for
`v`), for `resnet` all 10 against `N(0, I)`; for `sv` and `so2` the first two positions
against `N(0, 1)` and each later difference `q_t - q_{t-1}` (mean difference, standard
deviations added, as theirs) against `N(0, h^2)`.

One difference from the authors' code, and why: their backward LSTM is Keras's
`go_backwards=True` with `return_sequences=True`, whose first output has read only the
*last* inference frame, and they take that output as `(q_0, v_0)`. Here the LSTM reads the
frames last to first and its outputs are put back in time order, so the initial state is
inferred from all 10 frames, as the paper describes ("estimated from y_{1:T}").

The latent state, what `step` and `rollout` move: `(q, v)` for `vv`, the 2-D latent for
`resnet`, and `(q_t, q_{t-1})` for `sv` and `so2` (their two-step maps need both).
Shapes: frames `(B, T, P)` with `P = frame_pixels` (784 for 28x28), latent states
`(B, 2n)` with `n = q_dim` latent positions (1 in the paper).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, final

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ._base import LossKind, Memory, ModelConfig, TransitionModel
from ._parts import check_unit_range, checked_frames, mlp, refuse_trainer_options
from ._registry import register
from .mlp import MLPDelta, MLPDeltaConfig
from .vin import VIN, VINConfig

__all__ = ["PixelVIN", "PixelVINConfig"]

Dynamics = Literal["vv", "sv", "so2", "resnet"]
DYNAMICS: tuple[str, ...] = ("vv", "sv", "so2", "resnet")
#: The authors' latent step per scheme (pixels.gin: 1.0; pixels_SO2.gin: 0.1).
DEFAULT_STEP_SIZE = {"vv": 1.0, "sv": 1.0, "resnet": 1.0, "so2": 0.1}


@dataclass
class PixelVINConfig(ModelConfig):
    """Configuration of :class:`PixelVIN`; defaults are the authors' pixel configuration.

    `obs_dim` is the width of the *latent* state (2 for the paper's one latent position),
    `dt` the time between frames in the data. `hidden` and `layers` size the potential
    (`vv`, `sv`, `so2`) or the residual network (`resnet`). The integrator and
    normalisation fields of `ModelConfig` are unused: each scheme is its own integrator, and
    frames need no normalising.
    """

    obs_dim: int = 2
    """Width of the latent state: `2 n` for `n` latent positions."""
    dynamics: Dynamics = "vv"
    """`vv`, `sv`, `so2` (VIN schemes) or `resnet` (the ResRNN baseline `x + h MLP(x)`)."""
    frame_pixels: int = 784
    """Pixels per frame (28 x 28 in the paper)."""
    step_size: float | None = None
    """Latent step `h`; `None`: the authors' 1 (0.1 for `so2`)."""
    hidden: int = 1000
    layers: int = 1
    encoder_hidden: int = 1000
    """Width of the encoder's two hidden ReLU layers."""
    decoder_hidden: int = 1000
    """Width of the decoder's two hidden ReLU layers."""
    lstm_hidden: int = 50
    """Units of the backward LSTM that infers `(q_0, v_0)` (`vv`, `resnet`)."""
    inference_frames: int = 10
    """Frames the encoder reads to infer the initial state."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if self.dynamics not in DYNAMICS:
            raise ValueError(
                f"dynamics must be one of {', '.join(DYNAMICS)}, got {self.dynamics!r}"
            )
        if self.obs_dim != 2 * self.v_dim:
            raise ValueError(
                f"pixel-vin's latent state is (positions, velocities or previous positions): "
                f"obs_dim={self.obs_dim} needs q_dim={self.obs_dim // 2}, got {self.q_dim}"
            )
        if self.step_size is not None and not (
            math.isfinite(self.step_size) and self.step_size > 0
        ):
            raise ValueError(f"step_size must be None or a number > 0, got {self.step_size!r}")
        for name in ("frame_pixels", "encoder_hidden", "decoder_hidden", "lstm_hidden"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.inference_frames < 2:
            raise ValueError(
                f"inference_frames must be >= 2 (a velocity needs two frames), "
                f"got {self.inference_frames}"
            )

    @property
    def latent_step(self) -> float:
        """The latent step `h`: `step_size`, or the authors' value for the scheme."""
        return DEFAULT_STEP_SIZE[self.dynamics] if self.step_size is None else self.step_size


@register
@final
class PixelVIN(TransitionModel):
    """Encoder, latent VIN (or ResNet) dynamics and Bernoulli decoder, trained on frames.

    See the module docstring. The trainer passes windows of frames `(B, T + 1, P)` (values
    in [0, 1]); `training_loss` is the negative ELBO. `step` and `rollout` move latent states;
    `infer_initial_state`, `decode` and `predict_frames` connect them to frames.

    >>> import torch, physprior.models as models
    >>> model = models.make("pixel-vin", dt=0.1, dynamics="so2", frame_pixels=16,
    ...                     hidden=8, encoder_hidden=8, decoder_hidden=8).eval()
    >>> frames = torch.rand(3, 10, 16).round()
    >>> model.predict_frames(frames, steps=4).shape
    torch.Size([3, 5, 16])
    """

    name: ClassVar[str] = "pixel-vin"
    supports_probabilistic = False
    config_class: ClassVar[type[ModelConfig]] = PixelVINConfig
    supports_initial_states: ClassVar[bool] = False
    #: How the physics envs draw this model's frames (`physprior.data.render_frames`).
    frame_style: ClassVar[str] = "binary"
    config: PixelVINConfig

    def __init__(self, config: PixelVINConfig) -> None:
        if not isinstance(config, PixelVINConfig):
            raise TypeError(f"PixelVIN needs a PixelVINConfig, got {type(config).__name__}")
        super().__init__(config)
        n, scheme = self.q_dim, config.dynamics
        common: dict[str, Any] = {
            "obs_dim": 2 * n,
            "action_dim": config.action_dim,
            "dt": config.latent_step,
            "hidden": config.hidden,
            "layers": config.layers,
            "activation": config.activation,
            "normalize": False,
        }
        self.dynamics: VIN | MLPDelta
        if scheme == "resnet":
            # MLPDelta on raw coordinates is x + h net(x): the authors' ResNet step.
            self.dynamics = MLPDelta(MLPDeltaConfig(**common, train_mode="recurrent"))
        else:
            self.dynamics = VIN(VINConfig(**common, scheme=scheme))
        self._infers_velocity = scheme in ("vv", "resnet")
        width = 2 * n if self._infers_velocity else n  # the posterior's dimension
        self.frame_encoder = mlp(config.frame_pixels, 2 * width, config.encoder_hidden, 2, "relu")
        self.lstm: nn.LSTM | None = None
        self.lstm_head: nn.Linear | None = None
        if self._infers_velocity:
            self.lstm = nn.LSTM(2 * width, config.lstm_hidden, batch_first=True)
            self.lstm_head = nn.Linear(config.lstm_hidden, 2 * width)
        decoder_in = {"vv": n, "sv": n, "so2": 2 * n, "resnet": 2 * n}[scheme]
        self.decoder = mlp(decoder_in, config.frame_pixels, config.decoder_hidden, 2, "relu")
        keras_initialisation(self)

    # ------------------------------------------------------------------ dims
    @property
    def data_dim(self) -> int:
        """Pixels per frame: the trainer's windows are frames."""
        return self.config.frame_pixels

    @property
    def inference_frames(self) -> int:
        """Frames the encoder reads from the start of a sequence."""
        return self.config.inference_frames

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One frame's shape, `(side, side)` (28 x 28 in the paper)."""
        side = math.isqrt(self.config.frame_pixels)
        return (side, side) if side * side == self.config.frame_pixels else (self.data_dim,)

    @property
    def h(self) -> float:
        """The latent step."""
        return self.config.latent_step

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Nothing to fit (frames are already in [0, 1]); refuses windows that are not frames."""
        check_unit_range(self._check_frames(states, "training windows"), self.name)

    # ------------------------------------------------------------------ frames <-> latent
    def infer_initial_state(self, frames: Tensor, *, sample: bool = False) -> tuple[Tensor, Tensor]:
        """The latent state and the KL term from the first frames of windows.

        `frames` `(B, K, P)` with `K >= inference_frames` (only the first `inference_frames`
        are read). Returns `z0` `(B, 2n)`, the state at frame 0 (`vv`, `resnet`) or at frame 1
        (`sv`, `so2`: `(q_1, q_0)`), the posterior's mean or, with `sample`, one
        reparameterised draw; and `kl` `(B,)`, the KL of the posteriors from the priors.
        """
        return self._infer_initial_state(self._check_frames(frames, "frames"), sample=sample)

    def _infer_initial_state(self, frames: Tensor, *, sample: bool) -> tuple[Tensor, Tensor]:
        """`infer_initial_state` on frames already checked."""
        k = self.config.inference_frames
        if frames.shape[1] < k:
            raise ValueError(
                f"frames have {frames.shape[1]} time steps; the encoder needs at least "
                f"inference_frames={k}"
            )
        params = self._encode_frames(frames[:, :k])
        if self.lstm is not None and self.lstm_head is not None:
            # Read the frames last to first; output t then summarises frames t..K-1.
            backward, _ = self.lstm(params.flip(1))
            params = self.lstm_head(backward).flip(1)
        mean, raw_std = params.chunk(2, dim=-1)
        std = F.softplus(raw_std)
        kl = self._kl(mean, std)
        x = mean + std * torch.randn_like(std) if sample else mean
        if self._infers_velocity:
            return x[:, 0], kl
        return torch.cat((x[:, 1], x[:, 0]), dim=-1), kl

    def _encode_frames(self, frames: Tensor) -> Tensor:
        """The per-frame encoder on `(B, K, P)` -> `(B, K, 2 width)`. Overlapping windows
        share most of their frames (50 windows of one 60-frame trajectory hold 60 distinct
        frames, not 500): each distinct frame goes through the network once, which gives the
        same outputs and gradients at a fraction of the cost."""
        b, k, p = frames.shape
        flat = frames.reshape(b * k, p)
        _, index = torch.unique(flat.detach(), dim=0, return_inverse=True)
        # One row per distinct frame, gathered from `flat` so gradients reach the frames.
        rows = torch.arange(b * k, device=flat.device)
        first = torch.full((int(index.max()) + 1,), b * k, device=flat.device, dtype=rows.dtype)
        first = first.scatter_reduce(0, index, rows, reduce="amin")
        return self.frame_encoder(flat[first])[index].reshape(b, k, -1)

    def _kl(self, mean: Tensor, std: Tensor) -> Tensor:
        """The authors' KL terms `(B,)` for posteriors `mean, std` `(B, K, width)`."""
        n, h = self.q_dim, self.h
        if self._infers_velocity:
            prior = torch.ones_like(std)
            if self.config.dynamics == "vv":
                prior[..., n:] = h  # the velocity's prior std is the step
            return _normal_kl(mean, std, prior).sum(dim=(1, 2))
        first = _normal_kl(mean[:, :2], std[:, :2], torch.ones_like(std[:, :2]))
        step_mean = mean[:, 2:] - mean[:, 1:-1]
        step_std = std[:, 2:] + std[:, 1:-1]
        steps = _normal_kl(step_mean, step_std, torch.full_like(step_std, h))
        return first.sum(dim=(1, 2)) + steps.sum(dim=(1, 2))

    def decode(self, z: Tensor) -> Tensor:
        """Bernoulli logits `(..., P)` of the frames of latent states `z` `(..., 2n)`."""
        n, scheme = self.q_dim, self.config.dynamics
        q = z[..., :n]
        if scheme == "resnet":
            inputs = z
        elif scheme == "so2":
            inputs = torch.cat((q.sin(), q.cos()), dim=-1)
        else:
            inputs = q
        return self.decoder(inputs)

    def decode_frames(self, z: Tensor) -> Tensor:
        """Pixel probabilities `(..., P)` of latent states `z` `(..., 2n)`."""
        return torch.sigmoid(self.decode(z))

    def latent_rollout(
        self, frames: Tensor, steps: int, actions: Tensor | None = None, *, sample: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Latent states `(B, steps + 1, 2n)` at frames `0..steps`, and the KL `(B,)`.

        The initial state is inferred from the first frames of `frames` `(B, K, P)`; actions
        `(B, steps, A)` (or none without an action input). For `sv` and `so2` the state at
        frame 0 is `(q_0, q_0)`: only its position is meaningful (it is decoded, never
        stepped).
        """
        frames = self._check_frames(frames, "frames")
        return self._latent_rollout(frames, steps, actions, sample=sample)

    def _latent_rollout(
        self, frames: Tensor, steps: int, actions: Tensor | None, *, sample: bool
    ) -> tuple[Tensor, Tensor]:
        """`latent_rollout` on frames already checked."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        z0, kl = self._infer_initial_state(frames, sample=sample)
        b = z0.shape[0]
        if actions is None:
            actions = z0.new_zeros(b, steps, self.action_dim)
        actions = self._check_actions(actions, b, steps)
        if self._infers_velocity:
            return self.rollout(z0, actions), kl
        n = self.q_dim
        q0 = z0[:, n:]
        later = self.rollout(z0, actions[:, 1:])
        return torch.cat((torch.cat((q0, q0), dim=-1)[:, None], later), dim=1), kl

    @torch.no_grad()
    def predict_frames(self, frames: Tensor, steps: int, actions: Tensor | None = None) -> Tensor:
        """Predicted pixel probabilities `(B, steps + 1, P)` at frames `0..steps`, from the
        posterior mean of the initial state inferred from `frames` `(B, K, P)`."""
        z, _ = self.latent_rollout(frames, steps, actions, sample=False)
        return torch.sigmoid(self.decode(z))

    # ------------------------------------------------------------------ steps
    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """One latent step `(B, 2n) -> (B, 2n)` of length `h`."""
        if self._infers_velocity:
            return self.dynamics.step_with_memory(z, u)[0], None
        assert isinstance(self.dynamics, VIN)
        n = self.q_dim
        q, previous = z[:, :n], z[:, n:]
        q_next = self.dynamics.position_step(q, previous, u if self.action_dim else None)
        return torch.cat((q_next, q), dim=-1), None

    # ------------------------------------------------------------------ training
    def training_loss(
        self,
        states: Tensor,
        actions: Tensor,
        *,
        loss: LossKind = "l2",
        initial_states: Tensor | None = None,
    ) -> Tensor:
        """The negative ELBO of windows of frames `states` `(B, T + 1, P)`, per window.

        The trainer's `loss` kind does not apply (the likelihood is Bernoulli); `"l2"`, its
        default, is accepted and `"l1"` refused. Initial-state optimisation does not apply
        either: the encoder infers the initial state.
        """
        refuse_trainer_options("pixel-vin", "its negative ELBO", loss, initial_states)
        frames = self._check_frames(states, "windows")
        steps = frames.shape[1] - 1
        z, kl = self._latent_rollout(frames, steps, actions, sample=self.training)
        logits = self.decode(z)
        nll = F.binary_cross_entropy_with_logits(logits, frames, reduction="none")
        return (nll.sum(dim=(1, 2)) + kl).mean()

    # ------------------------------------------------------------------ checks
    def _check_frames(self, frames: Tensor, name: str) -> Tensor:
        p = self.config.frame_pixels
        like = self.state_norm.mean
        return checked_frames(frames, name, values=p, described=f"{p} pixels", like=like)

    def extra_repr(self) -> str:
        c = self.config
        return f"dynamics={c.dynamics}, latent={c.obs_dim}, pixels={c.frame_pixels}, h={self.h}"


def keras_initialisation(module: nn.Module) -> None:
    """Re-initialise every layer as Keras (the authors' TensorFlow 2.1) does by default:
    dense kernels Glorot-uniform with zero biases; LSTM input kernels Glorot-uniform,
    recurrent kernels orthogonal, biases zero but the forget gate's 1 (`unit_forget_bias`).
    PyTorch's defaults are narrower uniform draws with random biases; which start an
    autoencoder gets decides which of its local optima it reaches."""
    for layer in module.modules():
        if isinstance(layer, nn.Linear):
            nn.init.xavier_uniform_(layer.weight)
            if layer.bias is not None:
                nn.init.zeros_(layer.bias)
        elif isinstance(layer, nn.LSTM):
            units = layer.hidden_size
            for name, weight in layer.named_parameters():
                if name.startswith("weight_ih"):
                    nn.init.xavier_uniform_(weight)
                elif name.startswith("weight_hh"):
                    nn.init.orthogonal_(weight)
                else:
                    nn.init.zeros_(weight)
                    if name.startswith("bias_ih"):
                        with torch.no_grad():  # gates (input, forget, cell, output)
                            weight[units : 2 * units] = 1.0


def _normal_kl(mean: Tensor, std: Tensor, prior_std: Tensor) -> Tensor:
    """`KL(N(mean, std^2) || N(0, prior_std^2))`, elementwise."""
    ratio = (std / prior_std).square()
    return 0.5 * (ratio + (mean / prior_std).square() - 1.0 - ratio.log())
