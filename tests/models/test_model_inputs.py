"""What a model accepts and returns: numpy or torch in, tensors in the model's dtype out."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physprior.models import make


@pytest.mark.parametrize("name", ["node", "node-so", "hnn", "mlp", "rnn", "lstm"])
def test_numpy_inputs_and_the_model_dtype(name: str) -> None:
    model = make(name, obs_dim=4, action_dim=1, dt=0.1, hidden=8)
    states = model.rollout(np.zeros((3, 4)), np.zeros((3, 5, 1)))
    assert isinstance(states, torch.Tensor) and states.shape == (3, 6, 4)
    assert states.dtype == torch.float32
    assert model.step(np.ones((2, 4)), np.ones((2, 1))).shape == (2, 4)
    # float64 input to a float32 model: computed and returned in float32, gradients reach it.
    z0 = torch.zeros(2, 4, dtype=torch.float64, requires_grad=True)
    model.rollout(z0, torch.zeros(2, 3, 1)).sum().backward()
    assert z0.grad is not None and z0.grad.dtype == torch.float64
    assert model.double().rollout(z0, torch.zeros(2, 3, 1)).dtype == torch.float64
