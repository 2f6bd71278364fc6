"""Shared type aliases. Imports nothing else from physprior."""

from __future__ import annotations

from typing import Literal, TypeAlias

import numpy as np
import numpy.typing as npt
import torch

#: A batch of states or any float array, as numpy or torch.
Array: TypeAlias = npt.NDArray[np.floating] | torch.Tensor

#: How an observation is laid out: positions then momenta, or positions then velocities.
StateLayout: TypeAlias = Literal["qp", "qv"]

__all__ = ["Array", "StateLayout"]
