"""Suite "decon-chain": decon-hnn section 4, NODE vs NODE+SO vs HNN on chain and spring pendulums.

Gruver et al. (2022, "Deconstructing the inductive biases of Hamiltonian neural networks",
section 4, Figures 4-6) find that the second-order structure (`dq/dt` given by the state's
velocity part) explains most of what HNNs gain over neural ODEs: a NODE with that structure
(NODE+SO) matches the HNN on the k-link chain pendulum and the k-bob spring pendulum, with and
without drag, and a plain NODE is worse. Rows, for each system, number of links/bobs `k` and
drag setting (labels like `"NODE+SO (k=3, drag)"`):

| row | physprior model |
|---|---|
| NODE | `node`: MLP field `dz/dt = f(z)`, RK4 |
| NODE+SO | `node-so`: learned force and mass matrix, `dq/dt = M^-1(q) p`, RK4, 8 substeps |
| HNN | `hnn`, `form="mechanical"`: `p^T M^-1(q) p / 2 + V(q)` (the authors' HNN), RK4 |

The HNN gets `dissipation=True` (a learned damping force) on the systems with drag.

Every model: 2 hidden layers, tanh, no action input (the autonomous systems). Environments:
`physprior/ChainPendulum-v0` (`links=k`) and `physprior/SpringPendulum-v0` (`bobs=k`), drag
0 or 0.4 (`drag=` keyword; PROTOCOLS.md's value, the authors' code used 0.5), zero actions.

Data (one set per (system, k, drag, seed), shared by the three models): training trajectories
from the env's initial-state distribution, and from each, `windows_per_trajectory` windows of
5 states (4 transitions) at random starts; separate test trajectories of 100 states, 20 times
the training window, as decon-hnn evaluates rollouts 20 times longer than training.

Metrics (`physprior.evaluation.evaluate` with the env's true energy; means over the test
trajectories): `rollout_error` (headline; decon-hnn's geometric mean over the rollout of
`|z_hat - z| / (|z_hat| + |z|)`), `energy_violation` (its geometric mean over time of
`|H(z_hat) - H(z)| / (|H(z_hat)| + |H(z)|)`, true `H`), `energy_mse` (HNN's) and
`position_error` (SRNN's, the mean L2 error of the positions). Curves: `error`
(mean relative state error per step) and `energy_violation` (its mean per step). The
trajectory is the first test trajectory, true and predicted.

Scales:

- `paper`: the authors' code (github.com/ngruver/decon-hnn, `toy_systems.py` and
  `src/train/trainer.py`; the paper's text gives no protocol): 1000 trajectories split 800
  train / 200 test, training trajectories of 10 s (334 states at dt = 0.03) with one window
  of 5 states from each, test rollouts of 100 states; 2 hidden layers of 128; AdamW lr 5e-3,
  weight decay 1e-4, batch 200, cosine schedule to 0, gradient norm clipped at 1, 2000
  epochs; k = 2, 3, 4 (as asked for this suite; the authors' sweeps used 1-3 and 4-5); 5 seeds
  in the paper (the `seeds` argument here).
- `default`: 100 training trajectories of 40 states with 4 windows each, 50 test
  trajectories, 2 x 64 hidden units, 80 epochs, k = 2, 3: 24 jobs a seed. Measured: one
  seed in 10 minutes on one core of a 2-core machine (one job at a time); 3 seeds in 6 minutes
  with `--workers 10` on 16 cores.
- `smoke`: k = 2 only, a handful of short trajectories, 2 x 8 units, 2 epochs, NODE+SO with
  2 substeps.

Published numbers: Figures 4-6 show bars and curves, with no number stated in the text, so
this suite has no `PaperRow`; its claims are the paper's findings.

Differences from the paper: the chain pendulum is observed in angular coordinates with
canonical momenta `[theta, p]` (the authors feed `[theta, theta_dot]` and their models map to
momenta inside); fixed-step RK4 in training (the authors: adaptive dopri5 at tol 1e-4);
the authors embed angles as `(cos, sin)` inside their networks, our networks do not.
"""

from __future__ import annotations

import functools
import json
import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from physprior.benchmarks._common import data_hash, train_model
from physprior.benchmarks._framework import Claim, Job, JobResult, Scale, Suite, scale_settings
from physprior.data import generate_trajectories, make_windows
from physprior.evaluation import evaluate, metrics, predict
from physprior.models import make
from physprior.training import TrainConfig

__all__ = ["DRAG", "MODELS", "SUITE", "SYSTEMS", "row_label"]

NAME = "decon-chain"
#: Drag coefficient of the damped variants (PROTOCOLS.md).
DRAG = 0.4
#: (system name, env id, the env keyword that sets k).
SYSTEMS: tuple[tuple[str, str, str], ...] = (
    ("ChainPendulum", "physprior/ChainPendulum-v0", "links"),
    ("SpringPendulum", "physprior/SpringPendulum-v0", "bobs"),
)
#: Row name -> physprior model name.
MODELS: dict[str, str] = {"NODE": "node", "NODE+SO": "node-so", "HNN": "hnn"}

Means = Mapping[tuple[str, str], Mapping[str, float]]

_SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "ks": [2],
        "data": {
            "n_train": 4,
            "train_length": 8,
            "windows_per_trajectory": 2,
            "window": 5,
            "n_test": 2,
            "test_length": 10,
        },
        "hidden": 8,
        # NODE+SO's 8 RK4 substeps make its backward pass the slowest part of a tiny job.
        "node_so_substeps": 2,
        "train": {"epochs": 2, "batch_size": 200},
    },
    "default": {
        "ks": [2, 3],
        "data": {
            "n_train": 100,
            "train_length": 40,
            "windows_per_trajectory": 4,
            "window": 5,
            "n_test": 50,
            "test_length": 100,
        },
        "hidden": 64,
        "train": {"epochs": 80, "batch_size": 200},
    },
    "paper": {
        "ks": [2, 3, 4],
        "data": {
            "n_train": 800,
            "train_length": 334,
            "windows_per_trajectory": 1,
            "window": 5,
            "n_test": 200,
            "test_length": 100,
        },
        "hidden": 128,
        "train": {"epochs": 2000, "batch_size": 200},
    },
}


def row_label(model: str, k: int, drag: bool) -> str:
    """The row label of `model` ("NODE", "NODE+SO", "HNN") with `k` links/bobs."""
    return f"{model} (k={k}, drag)" if drag else f"{model} (k={k})"


def _job_params(model: str, key: str, k: int, drag: bool, scale: Mapping[str, Any]) -> dict:
    name = MODELS[model]
    config: dict[str, Any] = {"hidden": scale["hidden"], "layers": 2, "activation": "tanh"}
    if name == "node":
        config["integrator"] = "rk4"
    elif name == "node-so":
        config["substeps"] = scale.get("node_so_substeps", 8)
    elif name == "hnn":
        config.update(form="mechanical", integrator="rk4", dissipation=drag)
    return {
        "model": name,
        "model_config": config,
        "env_kwargs": {key: k, "drag": DRAG if drag else 0.0},
        "data": dict(scale["data"]),
        "train": dict(
            scale["train"],
            lr=5e-3,
            lr_min=0.0,
            weight_decay=1e-4,
            schedule="cosine",
            grad_clip=1.0,
        ),
    }


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: systems x k x drag (off, on) x models, for seeds `0 .. seeds - 1`."""
    settings = scale_settings(_SCALES, scale, seeds)
    grid = []
    for seed in range(seeds):
        for _, env_id, key in SYSTEMS:
            for k in settings["ks"]:
                for drag in (False, True):
                    for model in MODELS:
                        params = _job_params(model, key, k, drag, settings)
                        grid.append(Job(NAME, row_label(model, k, drag), env_id, seed, params))
    return grid


# ---------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class _Data:
    """One (system, k, drag, seed) data set, float64."""

    train: NDArray[np.float64]  # (N, window, D)
    test: NDArray[np.float64]  # (B, test_length, D)
    q_dim: int
    dt: float

    def digest(self) -> str:
        """sha256 (16 hex) of the arrays used, with their shapes."""
        return data_hash(self.train, self.test)


@functools.lru_cache(maxsize=2)
def _make_data(env_id: str, env_kwargs_json: str, seed: int, spec_json: str) -> _Data:
    """The data set; cached because the three models of a configuration share it."""
    env_kwargs = json.loads(env_kwargs_json)
    spec = json.loads(spec_json)
    # Independent streams from the seed: training states, test states, window starts.
    streams = [int(s) for s in np.random.SeedSequence(seed).generate_state(3)]
    length, window = int(spec["train_length"]), int(spec["window"])
    per = int(spec["windows_per_trajectory"])
    if not 2 <= window <= length or per > length - window + 1:
        raise ValueError(
            f"cannot cut {per} distinct windows of {window} states from {length}-state trajectories"
        )
    train_set = generate_trajectories(
        env_id, int(spec["n_train"]), length, seed=streams[0], env_kwargs=env_kwargs
    )
    test_set = generate_trajectories(
        env_id,
        int(spec["n_test"]),
        int(spec["test_length"]),
        seed=streams[1],
        env_kwargs=env_kwargs,
    )
    trajectories = make_windows(train_set, length).states  # one per trajectory
    rng = np.random.default_rng(streams[2])
    # Distinct random starts within each trajectory (the authors: one random chunk each).
    starts = np.stack(
        [rng.choice(length - window + 1, per, replace=False) for _ in range(len(trajectories))]
    )
    index = starts[:, :, None] + np.arange(window)  # (N, per, window)
    train_windows = trajectories[np.arange(len(trajectories))[:, None, None], index]
    return _Data(
        train=train_windows.reshape(-1, window, trajectories.shape[-1]),
        test=np.asarray(make_windows(test_set, int(spec["test_length"])).states, np.float64),
        q_dim=int(train_set.meta.q_dim),
        dt=float(train_set.meta.dt),
    )


# ---------------------------------------------------------------------------------- a job
def run_job(job: Job) -> JobResult:
    """Generate the data, train the row's model, roll it out on the test set, score it.

    Deterministic for `job.seed` on the CPU.
    """
    start = time.perf_counter()
    params = job.params
    env_kwargs = dict(params["env_kwargs"])
    data = _make_data(
        job.env_id, _canonical(env_kwargs), int(job.seed), _canonical(dict(params["data"]))
    )
    torch.manual_seed(job.seed)
    model = make(
        str(params["model"]),
        obs_dim=data.train.shape[-1],
        action_dim=0,
        q_dim=data.q_dim,
        state_layout="qp",
        dt=data.dt,
        env_id=job.env_id,
        **dict(params["model_config"]),
    )
    config = TrainConfig(**dict(params["train"]), seed=int(job.seed), progress=False)
    model = train_model(model, (torch.tensor(data.train), None), None, config)

    env = gym.make(job.env_id, **env_kwargs)
    energy = env.unwrapped.energy  # type: ignore[attr-defined]
    env.close()
    states = torch.tensor(data.test, dtype=model.dtype)
    actions = states.new_zeros(states.shape[0], states.shape[1] - 1, 0)
    result = evaluate(model, states, actions, energy=energy)
    # The per-step energy curve and the plotted trajectory need the rollout itself.
    predicted = predict(model, states, actions)
    violation = metrics.energy_violation(energy(predicted.double()), energy(states.double()))
    return JobResult(
        job=job,
        metrics={name: float(s.mean) for name, s in result.metrics.items()},
        data_hash=data.digest(),
        seconds=time.perf_counter() - start,
        curves={"error": _finite(result.error_curve), "energy_violation": _curve(violation)},
        trajectory={"true": _rows(states[0]), "predicted": _rows(predicted[0])},
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _finite(values: list[float]) -> list[float]:
    return [float(x) if math.isfinite(x) else math.inf for x in values]


def _curve(per_step: Tensor) -> list[float]:
    """Mean over trajectories of a `(B, T + 1)` series; non-finite steps become inf."""
    return _finite([float(x) for x in per_step.double().mean(dim=0).tolist()])


def _rows(states: Tensor) -> list[list[float]]:
    return [[float(x) for x in row] for row in states.double().tolist()]


# ---------------------------------------------------------------------------------- claims
_LABEL = re.compile(r"(?P<model>.+) \(k=(?P<k>\d+)(?P<drag>, drag)?\)")


def _configurations(means: Means) -> list[tuple[str, int, bool]]:
    """(env id, k, drag) of every configuration with at least one measured row."""
    found = set()
    for row, env_id in means:
        match = _LABEL.fullmatch(row)
        if match is not None and match["model"] in MODELS:
            found.add((env_id, int(match["k"]), match["drag"] is not None))
    return sorted(found)


def _pairwise(
    first: str, second: str, holds: Callable[[float, float], bool]
) -> Callable[[Means], bool | None]:
    """A check that `holds(first's rollout_error, second's)` in every configuration with both."""

    def check(means: Means) -> bool | None:
        verdicts = []
        for env_id, k, drag in _configurations(means):
            a = means.get((row_label(first, k, drag), env_id), {}).get("rollout_error")
            b = means.get((row_label(second, k, drag), env_id), {}).get("rollout_error")
            if a is not None and b is not None:
                verdicts.append(holds(a, b))
        return all(verdicts) if verdicts else None

    return check


def _within_twice(so: float, hnn: float) -> bool:
    """NODE+SO's error at most twice the HNN's (a non-finite HNN error counts as matched)."""
    if not math.isfinite(hnn):
        return True
    return math.isfinite(so) and so <= 2.0 * hnn


def _worse(node: float, so: float) -> bool:
    """NODE's error above NODE+SO's (non-finite counts as worst)."""
    if not math.isfinite(so):
        return False
    return not math.isfinite(node) or node > so


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "NODE+SO matches HNN (within 2x rollout error) on chain and spring pendulums, "
        "with and without drag (decon-hnn Figures 5-6)",
        _pairwise("NODE+SO", "HNN", _within_twice),
    ),
    Claim(
        "NODE is worse than NODE+SO (higher rollout error) on chain and spring pendulums "
        "(decon-hnn Figures 4 and 6)",
        _pairwise("NODE", "NODE+SO", _worse),
    ),
)

SUITE = Suite(
    name=NAME,
    title="decon-hnn section 4: NODE, NODE+SO and HNN on chain and spring pendulums, with drag",
    metrics=("rollout_error", "energy_violation", "energy_mse", "position_error"),
    jobs=jobs,
    run_job=run_job,
    paper=(),
    claims=CLAIMS,
)
