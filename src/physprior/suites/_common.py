"""Pieces the suites share: data hashes, training that resumes with its job, rollout scoring."""

from __future__ import annotations

import hashlib
import math
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor

from physprior.evaluation import metrics as m
from physprior.evaluation import predict
from physprior.models import TransitionModel
from physprior.training import TrainConfig, train


def data_hash(*arrays: Any) -> str:
    """sha256 (first 16 hex) of the arrays' shapes, dtypes and bytes, in order."""
    digest = hashlib.sha256()
    for array in arrays:
        values = np.ascontiguousarray(
            array.detach().cpu().numpy() if isinstance(array, Tensor) else array
        )
        digest.update(f"{values.dtype}{values.shape}".encode())
        digest.update(values.tobytes())
    return digest.hexdigest()[:16]


def _scratch_root() -> str | None:
    """A RAM-backed folder where there is one: the trainer writes (and fsyncs) a checkpoint
    every epoch, which the suites do not keep."""
    shm = Path("/dev/shm")
    return str(shm) if shm.is_dir() and shm.stat().st_mode & 0o002 else None


@dataclass
class _JobFolder:
    """Where the job being run keeps its training runs, and how many it has started."""

    path: Path
    trainings: int = 0


_JOB_FOLDER: ContextVar[_JobFolder | None] = ContextVar("physprior_job_folder", default=None)


@contextmanager
def job_folder(path: Path | None) -> Iterator[None]:
    """Run a job with its training runs kept under `path` (None: temporary folders).

    The bench runner gives every job `OUT/work/<job key>/`: a job killed during training
    resumes from its last epoch when the run is started again (the trainer's resume is bit
    for bit, so the result equals an uninterrupted job's), and the runner deletes the folder
    once the job's result is saved.
    """
    token = _JOB_FOLDER.set(None if path is None else _JobFolder(Path(path)))
    try:
        yield
    finally:
        _JOB_FOLDER.reset(token)


def train_model(
    model: TransitionModel,
    train_windows: Any,
    val_windows: Any,
    config: TrainConfig,
    *,
    transform: Any = None,
) -> TransitionModel:
    """Train `model` and return it in eval mode (`transform`: the trainer's per-batch one).

    Inside `job_folder(path)` the n-th training of the job runs in `path/train-<n>` and
    resumes from its checkpoint if one is there; otherwise in a temporary folder, deleted
    after.
    """
    folder = _JOB_FOLDER.get()
    if folder is not None:
        folder.trainings += 1
        run = folder.path / f"train-{folder.trainings}"
        result = train(
            model, train_windows, val_windows, config, run, resume=True, transform=transform
        )
        return result.model.eval()
    with tempfile.TemporaryDirectory(prefix="physprior-bench-", dir=_scratch_root()) as scratch:
        result = train(model, train_windows, val_windows, config, scratch, transform=transform)
    return result.model.eval()


def finite_or_inf(value: float) -> float:
    """A diverged rollout scores +inf rather than NaN, so it still ranks (last)."""
    return value if math.isfinite(value) else math.inf


def score_rollouts(
    model: TransitionModel | None,
    states: Tensor,
    actions: Tensor,
    *,
    energy: Callable[[Tensor], Tensor] | None = None,
    predicted: Tensor | None = None,
    q_dim: int | None = None,
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, list[list[float]]]]:
    """Score open-loop rollouts along true windows `states (B, T + 1, D)`, `actions (B, T, A)`.

    Either `model` predicts the rollouts or `predicted (B, T + 1, D)` is given (e.g. the true
    equations at a coarse step). `q_dim`: the positions' share of `D` (None: the model's, or
    `D // 2` without one). Returns metrics (the means over the B windows of the metrics
    `physprior.evaluation.evaluate` reports, `<name>_std` their std over windows, and
    `state_mse`, HNN's coordinate MSE), curves
    (`"error"`: mean relative error per step; with `energy`, `"energy"` and `"energy_true"`:
    mean true energy along the predicted and true rollouts) and the first window's trajectory.
    """
    if predicted is None:
        if model is None:
            raise ValueError("score_rollouts needs a model or predicted rollouts")
        predicted = predict(model, states, actions)
    true = states.to(predicted.dtype)
    # The metrics of physprior.evaluation.evaluate, per window, on the given rollouts.
    if q_dim is None:
        q_dim = model.q_dim if model is not None else states.shape[-1] // 2
    per_window = {
        "rollout_error": m.rollout_error(predicted, true),
        "position_error": m.position_error(predicted, true, q_dim),
    }
    if energy is not None:
        e_pred, e_true = energy(predicted), energy(true)
        per_window["energy_violation"] = m.geometric_mean_over_time(
            m.energy_violation(e_pred, e_true)
        )
        per_window["energy_mse"] = m.energy_mse(e_pred, e_true)
    values = {k: v.double().mean().item() for k, v in per_window.items()}
    values |= {f"{k}_std": v.double().std(unbiased=False).item() for k, v in per_window.items()}
    error_curve = m.relative_error(predicted, true).mean(dim=0).tolist()
    values["state_mse"] = (predicted - true).square()[:, 1:].mean().item()
    metrics = {k: finite_or_inf(float(v)) for k, v in values.items()}
    curves = {"error": [finite_or_inf(float(x)) for x in error_curve]}
    if energy is not None:
        with torch.no_grad():
            curves["energy"] = [finite_or_inf(float(x)) for x in energy(predicted).mean(0)]
            curves["energy_true"] = [float(x) for x in energy(true).mean(0)]
    trajectory = {
        "true": true[0].double().tolist(),
        "predicted": predicted[0].double().nan_to_num(posinf=1e30, neginf=-1e30).tolist(),
    }
    return metrics, curves, trajectory
