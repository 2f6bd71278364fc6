"""The benchmark-suite interface: jobs, their results, published numbers and published claims.

A suite is a grid of independent jobs, one per (row, env, seed); each job generates its own data,
trains one model and evaluates it, deterministically for its seed. The runner
(`physprior.suites._runner`) runs the grid, locally or on Ray, and the report compares the
means over seeds with the paper's numbers (`PaperRow`) and findings (`Claim`).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, TypeVar

Scale = Literal["smoke", "default", "paper"]
SCALES: tuple[Scale, ...] = ("smoke", "default", "paper")

# {(row, env_id): {metric: mean over seeds}}, what a Claim's check reads.
T = TypeVar("T")

Means = Mapping[tuple[str, str], Mapping[str, float]]


def _canonical(value: Any) -> str:
    """JSON with sorted keys and no spaces: equal values give equal text (and equal hashes)."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), allow_nan=True)


def _plain(value: Any) -> Any:
    """A JSON-able deep copy: mappings become dicts, tuples become lists."""
    if isinstance(value, Mapping):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


@dataclass(frozen=True)
class Job:
    """One (row, env, seed) cell of a suite's grid.

    params holds everything the job needs besides its seed and env (JSON-able: numbers, strings,
    lists, dicts); cpus/gpus are the resources the Ray backend requests for it.
    """

    suite: str
    row: str
    env_id: str
    seed: int
    params: Mapping[str, Any]
    cpus: float = 1.0
    gpus: float = 0.0

    def to_dict(self) -> dict[str, Any]:
        """The job as a JSON-able dict (params deep-copied)."""
        return {
            "suite": self.suite,
            "row": self.row,
            "env_id": self.env_id,
            "seed": int(self.seed),
            "params": _plain(self.params),
            "cpus": float(self.cpus),
            "gpus": float(self.gpus),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Job:
        """Inverse of to_dict."""
        return cls(
            suite=str(data["suite"]),
            row=str(data["row"]),
            env_id=str(data["env_id"]),
            seed=int(data["seed"]),
            params=dict(data["params"]),
            cpus=float(data.get("cpus", 1.0)),
            gpus=float(data.get("gpus", 0.0)),
        )

    def key(self) -> str:
        """First 16 hex digits of the sha256 of the canonical JSON of all fields.

        Stable across runs and processes (no Python hash()), so finished jobs are found again.
        """
        return hashlib.sha256(_canonical(self.to_dict()).encode("utf-8")).hexdigest()[:16]


@dataclass(frozen=True)
class JobResult:
    """What one job measured.

    metrics: scalar results by name; data_hash: sha256 (16 hex) of the train+test arrays used;
    seconds: wall time of the job; curves: per-step series by name, e.g. {"error": [...]};
    trajectory: {"true": (T+1, D), "predicted": (T+1, D)} nested lists, one test rollout.
    """

    job: Job
    metrics: dict[str, float]
    data_hash: str
    seconds: float
    curves: dict[str, list[float]] = field(default_factory=dict)
    trajectory: dict[str, list[list[float]]] | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as a JSON-able dict (non-finite floats are written as NaN/Infinity)."""
        return {
            "key": self.job.key(),
            "job": self.job.to_dict(),
            "metrics": {k: float(v) for k, v in self.metrics.items()},
            "data_hash": self.data_hash,
            "seconds": float(self.seconds),
            "curves": {k: [float(x) for x in v] for k, v in self.curves.items()},
            "trajectory": (
                None
                if self.trajectory is None
                else {k: [[float(x) for x in r] for r in v] for k, v in self.trajectory.items()}
            ),
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> JobResult:
        """Inverse of to_dict."""
        trajectory = data.get("trajectory")
        return cls(
            job=Job.from_dict(data["job"]),
            metrics={str(k): float(v) for k, v in data["metrics"].items()},
            data_hash=str(data["data_hash"]),
            seconds=float(data["seconds"]),
            curves={str(k): [float(x) for x in v] for k, v in data.get("curves", {}).items()},
            trajectory=(
                None
                if trajectory is None
                else {str(k): [[float(x) for x in r] for r in v] for k, v in trajectory.items()}
            ),
        )


@dataclass(frozen=True)
class PaperRow:
    """One published number: `metric` of `row` on `env_id` (std None where not published)."""

    row: str
    env_id: str
    metric: str
    mean: float
    std: float | None
    source: str


@dataclass(frozen=True)
class Claim:
    """One published finding; check reads {(row, env_id): {metric: mean over seeds}}.

    check returns True (holds), False (does not hold) or None (cannot tell, e.g. rows missing).
    """

    text: str
    check: Callable[[Means], bool | None]


@dataclass(frozen=True)
class Suite:
    """A named benchmark: its grid of jobs per scale, how to run one, and what the paper says.

    metrics: metric names, the first being the headline; jobs(scale, seeds) -> the grid;
    run_job(job) -> its result, deterministic given job.seed, in-process on CPU;
    scale_notes: per scale, what a reader of its report must know (e.g. that the scale is too
    small to test the paper's findings).
    """

    name: str
    title: str
    metrics: tuple[str, ...]
    jobs: Callable[[Scale, int], list[Job]]
    run_job: Callable[[Job], JobResult]
    paper: tuple[PaperRow, ...] = ()
    claims: tuple[Claim, ...] = ()
    scale_notes: Mapping[str, str] = field(default_factory=dict)
    #: Plots of the suite's own, drawn after the common ones: `(results, folder) -> report
    #: lines` (markdown) for the results of one env.
    plots: Callable[[Sequence[JobResult], Path], list[str]] | None = None


def scale_settings(scales: Mapping[str, T], scale: str, seeds: object) -> T:
    """`scales[scale]`, after checking that `scale` is one of them and `seeds` a positive int.

    The shared argument check of every suite's `jobs(scale, seeds)`.
    """
    if scale not in scales:
        raise ValueError(f"unknown scale {scale!r}; expected one of {sorted(scales)}")
    check_seeds(seeds)
    return scales[scale]


def check_seeds(seeds: object) -> None:
    """Raise ValueError unless `seeds` (a number of seeds) is a positive integer."""
    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise ValueError(f"seeds must be a positive integer, got {seeds!r}")
