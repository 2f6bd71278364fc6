"""`pixel-hnn`: the PixelHNN baseline of the HGN paper (appendix A.3; Greydanus et al. 2019).

An MLP autoencoder embeds a pair of consecutive frames `X_t = (x_t, x_{t+1})` (flattened and
concatenated) as `z_t = (q_t, p_t)`, a vector the size of the true phase space (2 for the
mass-spring and pendulum, 8 for two bodies, 12 for three); an HNN, `H(z)`, learns the
embedding's dynamics from finite differences. The loss, the paper's equation (15):

    L_AE + L_CC + 0.1 L_HNN + 1e-5 L_WD

- `L_AE`: the pixel MSE of the reconstructed pair (over colour channels too);
- `L_CC`: `(p_t - (q_{t+1} - q_t))^2`, "momentum is the change of position";
- `L_HNN`: `1/2 [(dH/dp - (q_{t+1} - q_t))^2 + (dH/dq + (p_{t+1} - p_t))^2]`, the HNN loss on
  the embedding's finite differences (time in frames);
- `L_WD`: the squared weights, summed.

Networks (appendix A.3): encoder and decoder 4 layers, 200 hidden units, ReLU (three hidden
layers and a linear output); HNN tanh, two hidden layers of 200, one output. Training in the
paper: minibatches of 64, about 15,000 steps, Adam 1e-3.

Rollouts integrate the HNN's field in frame units (one frame = time 1, as its finite
differences define it) with RK4 at `rollout_substeps` steps per frame (default 10). The paper
says RK4 and also scipy's `solve_ivp`; the substeps make RK4's error small next to the
model's, as an adaptive solver's would be. A frame is predicted as the first half of the
decoded pair.

Shapes: frames `(B, T, P)` with `P = frame_pixels` (3072 for 32x32 RGB); latent states
`(B, 2 n)` laid out `[q, p]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar, final

import torch
from torch import Tensor

from ._base import LossKind, Memory, ModelConfig, TransitionModel
from ._parts import (
    check_unit_range,
    checked_frames,
    gradient_of,
    mlp,
    refuse_trainer_options,
)
from ._registry import register

__all__ = ["PixelHNN", "PixelHNNConfig"]


@dataclass
class PixelHNNConfig(ModelConfig):
    """Configuration of :class:`PixelHNN`; defaults are the HGN paper's appendix A.3.

    `obs_dim` is the embedding's size (2 n); `dt` the time between frames in the data (the
    model's own time unit is one frame). `hidden` sizes the HNN (tanh), `coder_hidden` the
    autoencoder (ReLU).
    """

    obs_dim: int = 2
    hidden: int = 200
    layers: int = 2
    activation: str = "tanh"
    frame_pixels: int = 3072
    """Values per frame (32 x 32 x 3 in the HGN paper)."""
    coder_hidden: int = 200
    coder_layers: int = 3
    """Hidden layers of the encoder and of the decoder (the paper's "4 layers")."""
    hnn_weight: float = 0.1
    consistency_weight: float = 1.0
    weight_decay: float = 1e-5
    rollout_substeps: int = 10
    """RK4 steps per frame in rollouts and training's field."""

    def __post_init__(self) -> None:
        super().__post_init__()
        for name in ("frame_pixels", "coder_hidden", "rollout_substeps"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        if self.coder_layers < 0:
            raise ValueError(f"coder_layers must be >= 0, got {self.coder_layers}")
        for name in ("hnn_weight", "consistency_weight", "weight_decay"):
            if not getattr(self, name) >= 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)!r}")
        if self.obs_dim % 2:
            raise ValueError(f"obs_dim must be even (q and p), got {self.obs_dim}")


@register
@final
class PixelHNN(TransitionModel):
    """An MLP autoencoder of frame pairs and an HNN on its embedding (HGN's baseline).

    The trainer passes windows of frames `(B, T + 1, P)` with `T + 1 >= 3`: each window
    gives `T` pairs, embedded, reconstructed and differenced. `step` and `rollout` move
    embeddings one frame; `infer_initial_state`, `decode_frames`, `latent_rollout` and
    `predict_frames` connect them to frames; `energy` is the learned Hamiltonian.

    >>> import torch, physprior.models as models
    >>> model = models.make("pixel-hnn", dt=0.125, frame_pixels=12, coder_hidden=8).eval()
    >>> model.predict_frames(torch.rand(3, 2, 12), steps=4).shape
    torch.Size([3, 5, 12])
    """

    name: ClassVar[str] = "pixel-hnn"
    supports_probabilistic = False
    config_class: ClassVar[type[ModelConfig]] = PixelHNNConfig
    supports_initial_states: ClassVar[bool] = False
    frame_style: ClassVar[str] = "hgn"
    #: Frames the encoder reads: one pair.
    inference_frames: ClassVar[int] = 2
    config: PixelHNNConfig

    def __init__(self, config: PixelHNNConfig) -> None:
        if not isinstance(config, PixelHNNConfig):
            raise TypeError(f"PixelHNN needs a PixelHNNConfig, got {type(config).__name__}")
        if config.action_dim:
            raise ValueError("pixel-hnn is autonomous (as the paper's); action_dim must be 0")
        super().__init__(config)
        c, pair = config, 2 * config.frame_pixels
        self.encoder = mlp(pair, c.obs_dim, c.coder_hidden, c.coder_layers, "relu")
        self.decoder = mlp(c.obs_dim, pair, c.coder_hidden, c.coder_layers, "relu")
        self.hamiltonian = mlp(c.obs_dim, 1, c.hidden, c.layers, c.activation)

    @property
    def data_dim(self) -> int:
        return self.config.frame_pixels

    @property
    def frame_shape(self) -> tuple[int, ...]:
        """One frame's shape: `(side, side, 3)` where `frame_pixels = 3 side^2`, else flat."""
        side = math.isqrt(self.config.frame_pixels // 3)
        return (side, side, 3) if 3 * side * side == self.config.frame_pixels else (self.data_dim,)

    @torch.no_grad()
    def fit_normalization(self, states: Tensor, actions: Tensor) -> None:
        """Nothing to fit; refuses windows that are not frames of at least 3 time steps."""
        check_unit_range(self._check_frames(states, "training windows", minimum=3), self.name)

    # ------------------------------------------------------------------ the HNN
    def energy(self, z: Tensor) -> Tensor:
        """The learned Hamiltonian `(...,)` of embeddings `z` `(..., 2 n)`."""
        return self.hamiltonian(z).squeeze(-1)

    def field(self, z: Tensor) -> Tensor:
        """`dz/dt = (dH/dp, -dH/dq)` `(B, 2 n)`, time in frames."""
        grad = gradient_of(self.energy, z)
        n = self.q_dim
        return torch.cat((grad[:, n:], -grad[:, :n]), dim=-1)

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        """One frame `(B, 2 n) -> (B, 2 n)`: RK4 over time 1 in `rollout_substeps` steps."""
        h = 1.0 / self.config.rollout_substeps
        for _ in range(self.config.rollout_substeps):
            k1 = self.field(z)
            k2 = self.field(z + 0.5 * h * k1)
            k3 = self.field(z + 0.5 * h * k2)
            k4 = self.field(z + h * k3)
            z = z + h / 6.0 * (k1 + 2.0 * k2 + 2.0 * k3 + k4)
        return z, None

    # ------------------------------------------------------------------ frames <-> latent
    def _pairs(self, frames: Tensor) -> Tensor:
        """`(B, T, P)` -> the `T - 1` pairs `(B, T - 1, 2 P)`."""
        return torch.cat((frames[:, :-1], frames[:, 1:]), dim=-1)

    def infer_initial_state(self, frames: Tensor, *, sample: bool = False) -> tuple[Tensor, Tensor]:
        """The embedding `(B, 2 n)` of the first two frames of `frames` `(B, K, P)`, and a
        zero KL `(B,)` (the autoencoder is deterministic; `sample` changes nothing)."""
        frames = self._check_frames(frames, "frames", minimum=2)
        z = self.encoder(self._pairs(frames[:, :2])[:, 0])
        return z, z.new_zeros(z.shape[0])

    def decode_frames(self, z: Tensor) -> Tensor:
        """The predicted frame `(..., P)` of embeddings `(..., 2 n)`: the decoded pair's first
        half (unclipped: the autoencoder's output is linear)."""
        return self.decoder(z)[..., : self.config.frame_pixels]

    def latent_rollout(
        self, frames: Tensor, steps: int, actions: Tensor | None = None, *, sample: bool = False
    ) -> tuple[Tensor, Tensor]:
        """Embeddings `(B, steps + 1, 2 n)` at frames `0..steps` from the first pair of
        `frames` `(B, K, P)`, and a zero KL `(B,)`."""
        if steps < 1:
            raise ValueError(f"steps must be >= 1, got {steps}")
        z0, kl = self.infer_initial_state(frames)
        if actions is None:
            actions = z0.new_zeros(z0.shape[0], steps, 0)
        return self.rollout(z0, self._check_actions(actions, z0.shape[0], steps)), kl

    @torch.no_grad()
    def predict_frames(self, frames: Tensor, steps: int, actions: Tensor | None = None) -> Tensor:
        """Predicted frames `(B, steps + 1, P)` at `0..steps` from the first pair."""
        z, _ = self.latent_rollout(frames, steps, actions)
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
        """Equation (15) on windows of frames `states` `(B, T + 1, P)`, `T + 1 >= 3`."""
        refuse_trainer_options(
            "pixel-hnn", "its squared errors (AE + CC + HNN)", loss, initial_states
        )
        c = self.config
        frames = self._check_frames(states, "windows", minimum=3)
        pairs = self._pairs(frames)  # (B, T, 2P)
        z = self.encoder(pairs)  # (B, T, 2n)
        autoencoding = (self.decoder(z) - pairs).square().mean()
        n = self.q_dim
        change = z[:, 1:] - z[:, :-1]  # finite differences, time in frames
        consistency = (z[:, :-1, n:] - change[..., :n]).square().sum(-1).mean()
        now = z[:, :-1].reshape(-1, c.obs_dim)
        field = self.field(now)
        hnn = 0.5 * (field - change.reshape(-1, c.obs_dim)).square().sum(-1).mean()
        decay = sum(p.square().sum() for p in self.parameters())
        return (
            autoencoding
            + c.consistency_weight * consistency
            + c.hnn_weight * hnn
            + c.weight_decay * decay
        )

    def _check_frames(self, frames: Tensor, name: str, *, minimum: int) -> Tensor:
        p = self.config.frame_pixels
        return checked_frames(
            frames,
            name,
            values=p,
            described=f"{p} values",
            like=self.state_norm.mean,
            min_steps=minimum,
        )

    def extra_repr(self) -> str:
        c = self.config
        return f"embedding={c.obs_dim}, pixels={c.frame_pixels}, substeps={c.rollout_substeps}"
