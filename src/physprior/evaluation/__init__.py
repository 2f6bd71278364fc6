"""Evaluation: rollout metrics of the papers, model-versus-truth comparisons, and the
calibration of a model's predicted spread (`rollout_calibration`)."""

from __future__ import annotations

from . import metrics
from .calibration import Calibration, rollout_calibration
from .rollouts import EnergyFn, EvalResult, Summary, evaluate, predict

__all__ = [
    "Calibration",
    "EnergyFn",
    "EvalResult",
    "Summary",
    "evaluate",
    "metrics",
    "predict",
    "rollout_calibration",
]
