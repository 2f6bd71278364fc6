"""`test_substeps`: a finer integration step in evaluation mode, for every ODE model."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make


@pytest.mark.parametrize("name", ["node", "hnn", "srnn", "node-so"])
def test_test_substeps_refine_only_the_evaluation_rollout(name):
    def built(**config):
        torch.manual_seed(0)
        extra = {"form": "general"} if name == "hnn" else {}
        integrator = {"integrator": "rk4"} if name != "srnn" else {"iso": False}
        model = make(name, obs_dim=4, dt=0.1, hidden=8, **integrator, **extra, **config).double()
        model.fit_normalization(torch.randn(6, 3, 4, dtype=torch.float64), None)
        return model

    z0 = torch.randn(3, 4, dtype=torch.float64)
    refined = built(substeps=2, test_substeps=5)
    assert refined.active_substeps == 2
    trained = refined.rollout(z0, steps=3)
    torch.testing.assert_close(trained, built(substeps=2).rollout(z0, steps=3), rtol=0, atol=0)
    refined.eval()
    assert refined.active_substeps == 5
    tested = refined.rollout(z0, steps=3)
    torch.testing.assert_close(
        tested, built(substeps=5).eval().rollout(z0, steps=3), rtol=0, atol=0
    )
    with pytest.raises(ValueError, match="test_substeps must be None or >= 1, got 0"):
        built(test_substeps=0)
