"""Rollout metrics against hand-computed values."""

from __future__ import annotations

import math

import pytest
import torch

from physprior.evaluation import metrics


def _pair() -> tuple[torch.Tensor, torch.Tensor]:
    true = torch.tensor([[[1.0, 0.0], [1.0, 0.0], [0.0, 2.0]]], dtype=torch.float64)
    predicted = torch.tensor([[[1.0, 0.0], [3.0, 0.0], [0.0, 2.0 + 1e-3]]], dtype=torch.float64)
    return predicted, true


def test_relative_error_matches_definition() -> None:
    predicted, true = _pair()
    e = metrics.relative_error(predicted, true)
    assert e.shape == (1, 3)
    assert e[0, 0] == 0.0
    assert e[0, 1].item() == pytest.approx(2.0 / 4.0)
    assert e[0, 2].item() == pytest.approx(1e-3 / (4.0 + 1e-3))


def test_rollout_error_is_geometric_mean_after_the_initial_state() -> None:
    predicted, true = _pair()
    expected = math.sqrt(0.5 * 1e-3 / (4.0 + 1e-3))
    assert metrics.rollout_error(predicted, true).item() == pytest.approx(expected)


def test_position_error_uses_only_positions() -> None:
    predicted, true = _pair()
    # q_dim = 1: positions are the first coordinate; steps 1 and 2 have gaps 2 and 0.
    assert metrics.position_error(predicted, true, q_dim=1).item() == pytest.approx(1.0)
    assert metrics.position_error(predicted, true, q_dim=1, steps=1).item() == pytest.approx(2.0)


def test_energy_metrics() -> None:
    h_true = torch.tensor([[1.0, 1.0, 1.0]])
    h_pred = torch.tensor([[1.0, 3.0, 1.0]])
    assert metrics.energy_violation(h_pred, h_true)[0, 1].item() == pytest.approx(0.5)
    assert metrics.energy_mse(h_pred, h_true).item() == pytest.approx(2.0)


def test_shape_mismatch_is_refused() -> None:
    with pytest.raises(ValueError, match=r"must both be \(B, T \+ 1, D\)"):
        metrics.relative_error(torch.zeros(2, 3, 4), torch.zeros(2, 3, 5))
