"""The networks of the Hamiltonian Generative Network (Toth et al. 2020, appendix A.1).

Shapes follow PyTorch's convolutions: images `(B, C, H, W)`; the abstract state is a
`(B, 2 c, s, s)` map (`c` position and `c` momentum channels on an `s x s` grid, `s = 4` for
32-pixel frames) that the model flattens to `(B, 2 c s^2)` as `[q, p]`.

Where the paper gives a number it is used; where it is silent the choice is written here:
3x3 kernels with padding 1 (encoder, transformer, decoder), ReLU in the encoder and the
transformer, the transformer's three stride-2 layers doing the 32 -> 4 downsampling, and no
activation on the transformer's output (the reimplementation's ReLU there forces q, p >= 0).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn

from ._parts import ACTIVATIONS


class FrameEncoder(nn.Module):
    """`q_phi(z | x_0..x_{K-1})`: frames stacked along channels `(B, 3 K, S, S)` -> the mean
    and log-variance of `z`, each `(B, latent_channels, S, S)` (the log-variance is `None` for
    the deterministic variant).

    The paper's 8 layers: `filters // 2` on the first, `filters` on the next six, then the
    head (the paper's "48 filters on the last": a 48-channel mean and, separately, a
    48-channel log-variance, as in the reimplementation). Stride 1 throughout.
    """

    def __init__(
        self, in_channels: int, filters: int, latent_channels: int, *, variational: bool
    ) -> None:
        super().__init__()
        first = max(1, filters // 2)
        layers: list[nn.Module] = [nn.Conv2d(in_channels, first, 3, padding=1), nn.ReLU()]
        width = first
        for _ in range(6):
            layers += [nn.Conv2d(width, filters, 3, padding=1), nn.ReLU()]
            width = filters
        self.body = nn.Sequential(*layers)
        self.mean = nn.Conv2d(width, latent_channels, 3, padding=1)
        self.log_var = nn.Conv2d(width, latent_channels, 3, padding=1) if variational else None

    def forward(self, stacked: Tensor) -> tuple[Tensor, Tensor | None]:
        # Channels-last activations: oneDNN's convolutions with few channels run about 30%
        # faster on them than on PyTorch's default layout (benchmarks/hgn_step.py).
        features = self.body(stacked.contiguous(memory_format=torch.channels_last))
        log_var = None if self.log_var is None else self.log_var(features)
        return self.mean(features), log_var


class StateTransformer(nn.Module):
    """`f_psi`: `z (B, latent_channels, S, S)` -> the initial state `(B, 2 c, S / 8, S / 8)`.

    Three layers (the paper's "3 layers and 64 filters"), each 3x3 with stride 2; the last
    has `2 c` filters (the state's channels), ReLU between layers and none after the last.
    """

    def __init__(self, latent_channels: int, filters: int, state_channels: int) -> None:
        super().__init__()
        self.net = nn.Sequential(
            nn.Conv2d(latent_channels, filters, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(filters, filters, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(filters, 2 * state_channels, 3, stride=2, padding=1),
        )

    def forward(self, z: Tensor) -> Tensor:
        return self.net(z)


class ConvEnergy(nn.Module):
    """A scalar of a `(B, C, 4, 4)` map: the paper's convolutional Hamiltonian, "6 layers,
    each of 64 filters" (appendix A.1).

    Silent in the paper, chosen here: four 3x3 layers at 4x4 (padding 1), two 2x2 stride-2
    layers down to 1x1, the activation after each, then a linear read-out of the 64 channels
    to the scalar (no output activation: the reimplementation's softplus forces H > 0; no
    bias: a constant in H changes no motion, so nothing would train it).
    Softplus by default: the leapfrog differentiates H, and training differentiates that
    again, which a ReLU network's zero second derivative would starve.
    """

    def __init__(self, in_channels: int, filters: int, activation: str) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        layers: list[nn.Module] = []
        width = in_channels
        for _ in range(4):
            layers += [nn.Conv2d(width, filters, 3, padding=1), act()]
            width = filters
        for _ in range(2):
            layers += [nn.Conv2d(filters, filters, 2, stride=2), act()]
        self.body = nn.Sequential(*layers)
        self.readout = nn.Linear(filters, 1, bias=False)  # a constant moves nothing

    def forward(self, state_map: Tensor) -> Tensor:
        """`(B, C, 4, 4)` -> `(B,)`."""
        return self.readout(self.body(state_map).flatten(1)).squeeze(-1)


class MLPEnergy(nn.Module):
    """A scalar of a flattened map `(B, D)`: the reduced model's Hamiltonian (or its `T` or
    `V` half), `D -> hidden x layers -> 1` with no output activation."""

    def __init__(self, in_dim: int, hidden: int, layers: int, activation: str) -> None:
        super().__init__()
        act = ACTIVATIONS[activation]
        modules: list[nn.Module] = []
        width = in_dim
        for _ in range(layers):
            modules += [nn.Linear(width, hidden), act()]
            width = hidden
        modules.append(nn.Linear(width, 1, bias=False))  # a constant in H moves nothing
        self.net = nn.Sequential(*modules)

    def forward(self, flat: Tensor) -> Tensor:
        """`(B, D)` -> `(B,)`."""
        return self.net(flat).squeeze(-1)


class ResidualUpBlock(nn.Module):
    """One of the decoder's three blocks (appendix A.1): nearest-neighbour x2 upsampling, two
    3x3 convolutions with a leaky ReLU (slope 0.01, PyTorch's default), a residual from the
    upsampled input (a 1x1 convolution where the channel count changes), then a sigmoid."""

    def __init__(self, in_channels: int, filters: int) -> None:
        super().__init__()
        self.convs = nn.Sequential(
            nn.Conv2d(in_channels, filters, 3, padding=1),
            nn.LeakyReLU(),
            nn.Conv2d(filters, filters, 3, padding=1),
            nn.LeakyReLU(),
        )
        self.skip: nn.Module = (
            nn.Identity() if in_channels == filters else nn.Conv2d(in_channels, filters, 1)
        )

    def forward(self, x: Tensor) -> Tensor:
        up = nn.functional.interpolate(x, scale_factor=2.0, mode="nearest")
        return torch.sigmoid(self.convs(up) + self.skip(up))


class FrameDecoder(nn.Module):
    """`d_theta(q)`: positions `(B, c, s, s)` -> pixel values `(B, 3, 8 s, 8 s)` in (0, 1):
    three `ResidualUpBlock`s of `filters`, then a 3x3 convolution to the colour channels and
    a sigmoid (the output activation is silent in the paper; pixels lie in [0, 1])."""

    def __init__(self, state_channels: int, filters: int, colour_channels: int) -> None:
        super().__init__()
        self.blocks = nn.Sequential(
            ResidualUpBlock(state_channels, filters),
            ResidualUpBlock(filters, filters),
            ResidualUpBlock(filters, filters),
        )
        self.out = nn.Conv2d(filters, colour_channels, 3, padding=1)

    def forward(self, q: Tensor) -> Tensor:
        # Channels-last, as in the encoder: the decoder is most of a training step's work.
        return torch.sigmoid(self.out(self.blocks(q.contiguous(memory_format=torch.channels_last))))
