"""Evaluation: rollout metrics of the papers and model-versus-truth comparisons."""

from __future__ import annotations

from . import metrics
from .rollouts import EnergyFn, EvalResult, Summary, evaluate, predict

__all__ = ["EnergyFn", "EvalResult", "Summary", "evaluate", "metrics", "predict"]
