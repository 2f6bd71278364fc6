"""`angle_embedding`: networks that read angles as (cos, sin), and the HNN's free field."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make

CASES = [
    ("node", {"integrator": "rk4"}),
    ("node-so", {"state_layout": "qv", "integrator": "rk4", "substeps": 1}),
    ("node-so", {"state_layout": "qp"}),
    ("hnn", {"form": "mechanical", "state_layout": "qv", "dissipation": True}),
    ("hnn", {"form": "general", "action_dim": 2}),
    ("hnn", {"form": "separable", "integrator": "leapfrog"}),
    ("hnn", {"form": "mechanical", "state_layout": "qv", "free_field": True}),
]


def _model(name: str, **config):
    torch.manual_seed(0)
    config = {"integrator": "rk4", **config}
    model = make(name, obs_dim=4, dt=0.1, hidden=8, angle_embedding=True, **config).double()
    actions = torch.randn(5, 2, config.get("action_dim", 0), dtype=torch.float64)
    model.fit_normalization(torch.randn(5, 3, 4, dtype=torch.float64), actions)
    for parameter in model.parameters():  # zero-initialised last layers would hide a bug
        torch.nn.init.normal_(parameter, std=0.3)
    return model


@pytest.mark.parametrize(("name", "config"), CASES)
def test_a_whole_turn_changes_nothing(name: str, config: dict) -> None:
    model = _model(name, **config)
    z = torch.randn(3, 4, dtype=torch.float64)
    turned = z.clone()
    turned[:, :2] += 2 * torch.pi
    actions = torch.randn(3, 4, config.get("action_dim", 0), dtype=torch.float64)
    first, second = model.rollout(z, actions), model.rollout(turned, actions)
    torch.testing.assert_close(second[..., 2:], first[..., 2:])
    torch.testing.assert_close(second[..., :2], first[..., :2] + 2 * torch.pi)
    assert (first[:, 1:] - first[:, :1]).abs().max() > 1e-3  # it does move


@pytest.mark.parametrize("form", ["general", "mechanical"])
def test_hnn_gradients_through_the_embedding_match_autograd(form: str) -> None:
    model = _model("hnn", form=form)
    q = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    p = torch.randn(6, 2, dtype=torch.float64, requires_grad=True)
    dq, dp = torch.autograd.grad(model.system.hamiltonian(q, p).sum(), (q, p))
    written = model.system.energy.gradient(q.detach(), p.detach(), model.system.scales)
    torch.testing.assert_close(written[0], dq)
    torch.testing.assert_close(written[1], dp)


def test_free_field_adds_to_both_rates_and_starts_at_zero() -> None:
    torch.manual_seed(0)
    plain = make("hnn", obs_dim=4, dt=0.1, hidden=8, form="separable").double()
    mixed = make("hnn", obs_dim=4, dt=0.1, hidden=8, form="separable", free_field=True).double()
    mixed.load_state_dict(plain.state_dict(), strict=False)
    z = torch.randn(3, 4, dtype=torch.float64)
    torch.testing.assert_close(mixed.time_derivative(z), plain.time_derivative(z))
    torch.nn.init.normal_(mixed.system.free_field.net[-1].weight)
    difference = mixed.time_derivative(z) - plain.time_derivative(z)
    assert difference[:, :2].abs().min() > 0 and difference[:, 2:].abs().min() > 0
    with pytest.raises(ValueError, match="free_field=True adds a free one"):
        make("hnn", obs_dim=4, dt=0.1, form="separable", integrator="leapfrog", free_field=True)


def test_models_without_the_embedding_say_so() -> None:
    for name in ("mlp", "srnn", "rnn"):
        with pytest.raises(ValueError, match="angle_embedding is available for node"):
            make(name, obs_dim=4, dt=0.1, angle_embedding=True)
    with pytest.raises(ValueError, match="averaged-velocity Euler rule"):
        make("node-so", obs_dim=4, dt=0.1, state_layout="qv", angle_embedding=True)
