"""`normalize=False`: networks on raw coordinates, as the papers' original networks."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make


def _fitted(name: str, **config):
    torch.manual_seed(0)
    model = make(name, obs_dim=2, dt=0.25, hidden=8, normalize=False, **config).double()
    states = torch.randn(5, 3, 2, dtype=torch.float64) * 7 + 3
    model.fit_normalization(states, None)
    return model


def test_a_raw_node_field_is_its_network() -> None:
    model = _fitted("node")
    torch.testing.assert_close(model.state_norm.mean, torch.zeros(2, dtype=torch.float64))
    torch.testing.assert_close(model.delta_norm.std, torch.full((2,), 0.25, dtype=torch.float64))
    z = torch.randn(4, 2, dtype=torch.float64)
    torch.testing.assert_close(model.vector_field(z), model.net(z))


@pytest.mark.parametrize("form", ["general", "separable"])
def test_a_raw_hnn_energy_is_its_network(form: str) -> None:
    model = _fitted("hnn", form=form)
    z = torch.randn(4, 2, dtype=torch.float64)
    energy = model.system.energy
    if form == "general":
        expected = energy.net(z).squeeze(-1)
    else:
        expected = (energy.kinetic_net(z[:, 1:]) + energy.potential_net(z[:, :1])).squeeze(-1)
    torch.testing.assert_close(model.energy(z), expected)
