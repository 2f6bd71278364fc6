"""The folded networks are kept between inference calls and rebuilt whenever a weight changes."""

from __future__ import annotations

import torch

from physprior.models import make


def _model(name: str = "mlp"):
    torch.manual_seed(0)
    model = make(name, obs_dim=4, action_dim=2, q_dim=2, dt=0.1, hidden=16)
    states = torch.randn(32, 2, 4)
    model.fit_normalization(states, torch.randn(32, 1, 2))
    return model.eval()


def _fresh_step(model, z, u):
    """The step with the cache emptied: what the current weights give."""
    model.clear_inference_cache()
    with torch.no_grad():
        return model.step(z, u)


def test_kept_while_the_weights_stay_and_rebuilt_after_every_kind_of_change():
    model = _model()
    z, u = torch.randn(5, 4), torch.randn(5, 2)
    with torch.no_grad():
        first = model._folded()
        assert model._folded() is first  # kept
        before = model.step(z, u)
    # An optimiser step (in place, under no_grad) ...
    optimizer = torch.optim.SGD(model.parameters(), lr=0.1)
    model.train()
    model.step(z, u).square().sum().backward()
    optimizer.step()
    model.eval()
    with torch.no_grad():
        after = model.step(z, u)
    assert not torch.allclose(after, before)
    torch.testing.assert_close(after, _fresh_step(model, z, u), rtol=0, atol=0)
    # ... a normaliser fit, a load and a dtype change are all seen.
    with torch.no_grad():
        model.step(z, u)
    model.fit_normalization(3.0 * torch.randn(32, 2, 4), torch.randn(32, 1, 2))
    with torch.no_grad():
        refitted = model.step(z, u)
    torch.testing.assert_close(refitted, _fresh_step(model, z, u), rtol=0, atol=0)
    other = _model()
    with torch.no_grad():
        model.step(z, u)
    model.load_state_dict(other.state_dict())
    with torch.no_grad():
        torch.testing.assert_close(model.step(z, u), other.step(z, u), rtol=0, atol=0)
    assert model.double()._folded().in_weight.dtype == torch.float64


def test_not_kept_with_gradients_on_so_training_reaches_the_weights():
    model = _model("node-so")
    assert model._folded() is not model._folded()
    z, u = torch.randn(5, 4), torch.randn(5, 2)
    model.train()
    model.step(z, u).sum().backward()
    assert all(p.grad is not None for p in model.net.parameters())
