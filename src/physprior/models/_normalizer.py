"""Per-dimension affine normalisation, fitted once on the training split and saved as buffers."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """`x_hat = (x - mean) / std` with statistics stored as buffers (saved in checkpoints).

    Until `fit` is called the normaliser is the identity. Dimensions whose standard deviation
    is below `min_std` (constant in the data, e.g. a coordinate that never moves) get `std = 1`
    rather than a division by ~0.
    """

    mean: Tensor
    std: Tensor

    def __init__(self, dim: int, min_std: float = 1e-6) -> None:
        super().__init__()
        self.min_std = float(min_std)
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def fit(self, data: Tensor) -> None:
        """Fit to samples `(..., dim)`; statistics are taken over all leading axes."""
        flat = data.reshape(-1, data.shape[-1]).to(self.mean.dtype)
        if flat.shape[0] == 0:
            raise ValueError("cannot fit a normaliser on an empty set")
        std = flat.std(dim=0, unbiased=False) if flat.shape[0] > 1 else torch.ones_like(self.std)
        self.mean.copy_(flat.mean(dim=0))
        self.std.copy_(torch.where(std < self.min_std, torch.ones_like(std), std))

    def forward(self, x: Tensor) -> Tensor:
        """Normalise `x` `(..., dim)`."""
        return (x - self.mean) / self.std

    def inverse(self, x_hat: Tensor) -> Tensor:
        """Undo `forward`."""
        return x_hat * self.std + self.mean
