"""Suite "decon-chain": decon-hnn section 4, NODE vs NODE+SO vs HNN on chain and spring pendulums.

Gruver et al. (2022, "Deconstructing the inductive biases of Hamiltonian neural networks",
section 4, Figures 4-6) find that the second-order structure (`dq/dt = v`) explains most of
what HNNs gain over neural ODEs. The findings as the paper states them:

- Figure 4: a NODE with second-order structure (NODE+SO) predicts better than a plain NODE,
  and an HNN with it (a separable `H` with a mass matrix) better than one without (a general
  `H(q, p)`).
- Figure 5 and section 4.4: the HNN still beats NODE+SO on the chain pendulum, whose angular
  coordinates make the vector field far more complex than the Hamiltonian; on the spring
  pendulum, in Cartesian coordinates, "the gap between the NODE+SO and HNN vanishes (and
  even favors NODE+SO)".
- Figure 6 (drag): NODE+SO "matches the performance of a SymODEN" (an HNN with a free term),
  and "HNNs without forcing terms encode the wrong inductive biases and thus fit the data
  poorly".

Rows, for each system, number of links/bobs `k` and drag setting (labels like
`"NODE+SO (k=3, drag)"`); every network has 2 hidden layers of tanh units and reads angles as
`(cos, sin)` on the chain pendulum (`angle_embedding`), every model takes one RK4 step per
`dt`:

| row | physprior model | authors' model |
|---|---|---|
| NODE | `node`: `dz/dt = f(z)` | `NN` |
| NODE+SO | `node-so` on `[q, v]`: `dq/dt = v`, `dv/dt = a(q, v)` | `MechanicsNN` (the same structure written in `[q, M v]`) |
| HNN | `hnn`, `form="mechanical"`: `p^T M(q)^-1 p / 2 + V(q)`, `p = M(q) v` | `HNN` |
| HNN without SO (no drag only) | `hnn`, `form="general"`: `H(q, p)` one network, `p = M(q) v` by a separate learned mass matrix | `NonseparableHNN` |
| HNN+damping (drag only) | the same with a learned damping force `-D(q) dq/dt` (physprior's; keeps `dq/dt = v`) | none |
| SymODEN (drag only) | the same HNN plus a free neural ODE over all of `dz/dt` (`free_field=True`) | `MixtureHNN`, the "SymODEN" of Figure 6 |
| predict no change (sanity row) | every predicted state is the window's first | none |
| true field, one RK4 step per dt (sanity row) | the env's own vector field with the models' integrator: what one RK4 step of 0.03 costs alone | none |

Protocol, per parameter: the paper (section 4), the authors' code
(github.com/ngruver/decon-hnn: `toy_systems.py`, `src/train/trainer.py`, `src/datasets.py`,
`src/systems/*.py`, `src/models/*.py`, `bar_plots.ipynb`) and this suite at the `paper` scale:

| parameter | paper | authors' code | ours |
|---|---|---|---|
| systems | k-link chain pendulum, k-bob spring pendulum (3-D), with and without drag | the same; g = 9.81, masses and lengths 0.6 + 0.8 U[0, 1] (seed 0), springs k = 10 | the same (`ChainPendulum-v0`, `SpringPendulum-v0`) |
| k | 2-4 (Figure 4), 1-4 (Figures 5, 6) | the notebook keeps 2, 3, 4 for Figure 4 | 2, 3, 4 |
| drag | dp/dt = -dH/dq - lambda v | -lambda times the Cartesian momentum (`f_const = 0.4`); in angles `-lambda M(theta) theta_dot = -lambda p` | the authors' (`drag=0.4, drag_form="momentum"`) |
| initial states | silent | Cartesian: positions + 0.2 N, velocities 3 (0.5 v + 0.4 N), projected onto the rods (chain); zero-rest-length equilibrium + 0.8 N on z + 0.4 N, velocities 0.6 N (spring) | the authors' (`start="authors"`) |
| ground truth | silent | dopri5, rtol 1e-7, float32 | DOP853, rtol = atol = 1e-10 |
| coordinates | angles on the chain, Cartesian on the spring | the chain observed and scored in `[theta, theta_dot]` (angles unwrapped across the batch, a bug adding 2 pi k offsets), the spring in `[x, v]` | `[theta, theta_dot]` and `[x, v]` (the env's momenta converted) |
| angle embedding | silent | `(cos, sin)` of every angle in every network | the same (`angle_embedding=True` on the chain) |
| data | silent | 1000 trajectories of 10 s at dt = 0.03 (334 states), 800 train / 200 test | the same |
| training windows | silent | one random 5-state chunk per training trajectory, from anywhere in it | the same |
| test windows | silent | 100 states from the first or the second third of each test trajectory | the same |
| integrator | silent | one fixed RK4 step per dt, in training and test | the same |
| networks | 2 layers of 128 | hidden width 128 by default; the notebook keeps the width-256 runs for Figures 4 and 5 | 2 x 256, tanh |
| optimiser | silent | AdamW lr 5e-3, weight decay 1e-4, batch 200, gradient norm clipped at 1, cosine to 0 | the same (cosine per epoch, theirs per step) |
| budget | silent | 2000 epochs of 4 batches: 8,000 steps | the same |
| loss | silent | L2 of the rollout over the 5 states | mean squared error in state-std units over the 4 predicted states |
| metric (Figures 4, 6) | GeoMean of the relative error | `exp(mean over (trajectory, t) of log clamp(rel, 1e-7))`, rel = `|z_hat - z| / (|z_hat| + |z|)`, t = 0 included | `rollout_error_authors`, the same; also `rollout_error` (physprior's: the mean over trajectories of each one's geometric mean over t >= 1) |
| metric (Figure 5) | "log rollout error" | the notebook plots the unnormalised MSE, `test_mse` | both |

Data (one set per (system, k, drag, seed), shared by the rows and cached on disk under
`$PHYSPRIOR_CACHE/decon-chain/`, so parallel jobs generate it once). Metrics, over the test
windows: `rollout_error_authors` (headline) and `rollout_error_authors_std` (the std over test
windows of each window's geometric mean, t = 0 included), `rollout_error`, `test_mse`,
`energy_violation` (geometric mean over t >= 1 of the true energy's relative violation) and
`position_error`. Curves: `error` and `energy_violation` per step. The trajectory is the first
test window, true and predicted, in the models' coordinates.

Scales:

- `paper`: the protocol above: 54 jobs a seed, each an hour or more on one core.
- `default`: k = 2 only (18 jobs; k = 3 doubles the cost, past half an hour on 2 cores); 100
  training trajectories with 8 windows each (800 windows, the paper's batch count), 50 test
  trajectories, 2 x 128 networks, 500 epochs (2,000 steps, a quarter of the paper's).
- `smoke`: k = 2, a handful of short trajectories, 2 x 8 units, 2 epochs.

The paper's figures are bars without numbers in the text, so this suite has no `PaperRow`; its
claims are the paper's findings.
"""  # noqa: E501 (the tables' rows)

from __future__ import annotations

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

from physprior.data import make_windows
from physprior.evaluation import metrics, predict
from physprior.integrators import get_integrator
from physprior.models import make
from physprior.suites._common import data_hash, finite_or_inf, train_model
from physprior.suites._framework import Claim, Job, JobResult, Scale, Suite, scale_settings
from physprior.suites._trajectory_cache import cached_trajectories
from physprior.training import TrainConfig

__all__ = ["DRAG", "MODELS", "SUITE", "SYSTEMS", "row_label"]

NAME = "decon-chain"
#: Drag coefficient of the damped variants (the authors' `f_const`).
DRAG = 0.4
CHAIN = "ChainPendulum"
SPRING = "SpringPendulum"
#: (system name, env id, the env keyword that sets k).
SYSTEMS: tuple[tuple[str, str, str], ...] = (
    (CHAIN, "physprior/ChainPendulum-v0", "links"),
    (SPRING, "physprior/SpringPendulum-v0", "bobs"),
)
#: Row name -> (physprior model name, its settings). Every model reads `[q, v]` states and
#: takes one RK4 step per `dt`.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "NODE": ("node", {}),
    "NODE+SO": ("node-so", {}),
    "HNN": ("hnn", {"form": "mechanical"}),
    "HNN without SO": ("hnn", {"form": "general"}),
    "HNN+damping": ("hnn", {"form": "mechanical", "dissipation": True}),
    "SymODEN": ("hnn", {"form": "mechanical", "free_field": True}),
}
#: Sanity rows, nothing trained: the first state held, and the true field with the models'
#: integrator (one RK4 step per `dt`), which shows what that integrator alone costs.
NO_CHANGE = "predict no change (sanity row)"
TRUE_FIELD = "true field, one RK4 step per dt (sanity row)"
SANITY = (NO_CHANGE, TRUE_FIELD)
#: The rows run on the damped systems only, and on the undamped ones only.
DRAG_ONLY = ("HNN+damping", "SymODEN")
NO_DRAG_ONLY = ("HNN without SO",)

Means = Mapping[tuple[str, str], Mapping[str, float]]

_SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "ks": [2],
        "data": {
            "n_train": 4,
            "n_test": 2,
            "length": 40,
            "window": 5,
            "windows_per_trajectory": 2,
            "test_length": 10,
        },
        "hidden": 8,
        "train": {"epochs": 2, "batch_size": 200},
    },
    "default": {
        "ks": [2],
        "data": {
            "n_train": 100,
            "n_test": 50,
            "length": 334,
            "window": 5,
            "windows_per_trajectory": 8,
            "test_length": 100,
        },
        "hidden": 128,
        "train": {"epochs": 500, "batch_size": 200},
    },
    "paper": {
        "ks": [2, 3, 4],
        "data": {
            "n_train": 800,
            "n_test": 200,
            "length": 334,
            "window": 5,
            "windows_per_trajectory": 1,
            "test_length": 100,
        },
        "hidden": 256,
        "train": {"epochs": 2000, "batch_size": 200},
    },
}


def row_label(model: str, k: int, drag: bool) -> str:
    """The row label of `model` (a key of `MODELS`) with `k` links/bobs."""
    return f"{model} (k={k}, drag)" if drag else f"{model} (k={k})"


def _job_params(
    model: str, system: str, key: str, k: int, drag: bool, scale: Mapping[str, Any]
) -> dict[str, Any]:
    name, settings = MODELS[model]
    config: dict[str, Any] = {
        "hidden": scale["hidden"],
        "layers": 2,
        "activation": "tanh",
        "integrator": "rk4",
        "substeps": 1,
        "angle_embedding": system == CHAIN,
        **settings,
    }
    return {
        "model": name,
        "model_config": config,
        **_setting_params(key, k, drag, scale),
        "train": dict(
            scale["train"], lr=5e-3, lr_min=0.0, weight_decay=1e-4, schedule="cosine", grad_clip=1.0
        ),
    }


def _sanity_params(
    sanity: str, key: str, k: int, drag: bool, scale: Mapping[str, Any]
) -> dict[str, Any]:
    """A sanity row's job: the same env and data as the models', no network, no training."""
    return {"sanity": sanity, **_setting_params(key, k, drag, scale)}


def _setting_params(key: str, k: int, drag: bool, scale: Mapping[str, Any]) -> dict[str, Any]:
    """What every row of one (system, k, drag) shares: the env's settings, the data, `dt`."""
    return {
        "env_kwargs": {
            key: k,
            "drag": DRAG if drag else 0.0,
            "drag_form": "momentum",
            "start": "authors",
        },
        "data": dict(scale["data"]),
        "dt": 0.03,
    }


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: systems x k x drag (off, on) x models, for seeds `0 .. seeds - 1`."""
    settings = scale_settings(_SCALES, scale, seeds)
    grid = []
    for seed in range(seeds):
        for system, env_id, key in SYSTEMS:
            for k in settings["ks"]:
                for drag in (False, True):
                    for model in MODELS:
                        if (model in DRAG_ONLY and not drag) or (model in NO_DRAG_ONLY and drag):
                            continue
                        params = _job_params(model, system, key, k, drag, settings)
                        grid.append(Job(NAME, row_label(model, k, drag), env_id, seed, params))
                    for sanity in SANITY:
                        params = _sanity_params(sanity, key, k, drag, settings)
                        grid.append(Job(NAME, row_label(sanity, k, drag), env_id, seed, params))
    return grid


# ---------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class _Data:
    """One (system, k, drag, seed) data set in `[q, v]` coordinates, float64."""

    train: NDArray[np.float64]  # (N, window, D)
    test: NDArray[np.float64]  # (B, test_length, D)
    q_dim: int

    def digest(self) -> str:
        """sha256 (16 hex) of the arrays used, with their shapes."""
        return data_hash(self.train, self.test)


def _velocities(env: Any, states: NDArray[np.float64]) -> NDArray[np.float64]:
    """`[q, p]` states `(..., 2n)` of the env as `[q, v]`: `theta_dot = M(theta)^-1 p` on the
    chain, `v = p / m` on the spring."""
    n = env.q_dim
    q, p = states[..., :n], states[..., n:]
    if hasattr(env, "links"):
        v = np.linalg.solve(env.mass_matrix(q), p[..., None])[..., 0]
    else:
        v = p / np.repeat(env.masses, 3)
    return np.concatenate([q, v], axis=-1)


def _momenta(env: Any, states: Tensor) -> Tensor:
    """The inverse of `_velocities`, on torch tensors: `[q, v]` -> `[q, p]`."""
    n = env.q_dim
    q, v = states[..., :n], states[..., n:]
    if hasattr(env, "links"):
        p = (env.mass_matrix(q) @ v.unsqueeze(-1)).squeeze(-1)
    else:
        p = v * torch.as_tensor(np.repeat(env.masses, 3), dtype=v.dtype)
    return torch.cat((q, p), dim=-1)


def _make_data(
    env_id: str, env_kwargs: Mapping[str, Any], seed: int, spec: Mapping[str, Any]
) -> _Data:
    """The data set: cached trajectories, cut into training and test windows."""
    # Independent streams from the seed: training states, test states, window starts.
    streams = [int(s) for s in np.random.SeedSequence(seed).generate_state(3)]
    length, window = int(spec["length"]), int(spec["window"])
    per, test_length = int(spec["windows_per_trajectory"]), int(spec["test_length"])
    if not 2 <= window <= length or per > length - window + 1 or 2 * test_length > length:
        raise ValueError(
            f"cannot cut {per} windows of {window} states and a test window of {test_length} "
            f"from the first two thirds of {length}-state trajectories"
        )
    env: Any = gym.make(env_id, **env_kwargs).unwrapped
    sets = []
    for n, stream in ((int(spec["n_train"]), streams[0]), (int(spec["n_test"]), streams[1])):
        data = cached_trajectories(NAME, env_id, n, length, seed=stream, env_kwargs=env_kwargs)
        states = np.asarray(make_windows(data, length).states, dtype=np.float64)
        sets.append(_velocities(env, states))  # (n, length, D)
    train, test = sets
    rng = np.random.default_rng(streams[2])
    # Training: windows from anywhere in each trajectory (distinct starts when several).
    starts = np.stack([rng.choice(length - window + 1, per, replace=False) for _ in train])
    index = starts[:, :, None] + np.arange(window)  # (N, per, window)
    train_windows = train[np.arange(len(train))[:, None, None], index]
    # Test: the first or the second third of each trajectory, as the authors' (chunk_len 100).
    thirds = length // test_length
    test_starts = test_length * rng.integers(0, max(thirds - 1, 1), size=len(test))
    test_index = test_starts[:, None] + np.arange(test_length)
    return _Data(
        train=train_windows.reshape(-1, window, train.shape[-1]),
        test=test[np.arange(len(test))[:, None], test_index],
        q_dim=int(env.q_dim),
    )


# ---------------------------------------------------------------------------------- a job
def run_job(job: Job) -> JobResult:
    """Generate (or read) the data, train the row's model, roll it out on the test windows.

    Deterministic for `job.seed` on the CPU.
    """
    start = time.perf_counter()
    params = job.params
    env_kwargs = dict(params["env_kwargs"])
    data = _make_data(job.env_id, env_kwargs, int(job.seed), dict(params["data"]))
    env: Any = gym.make(job.env_id, **env_kwargs).unwrapped
    if "sanity" in params:
        true = torch.tensor(data.test, dtype=torch.float64)
        predicted = _sanity_prediction(str(params["sanity"]), env, true, float(params["dt"]))
    else:
        torch.manual_seed(job.seed)
        model = make(
            str(params["model"]),
            obs_dim=data.train.shape[-1],
            action_dim=0,
            q_dim=data.q_dim,
            state_layout="qv",
            dt=float(params["dt"]),
            env_id=job.env_id,
            **dict(params["model_config"]),
        )
        config = TrainConfig(**dict(params["train"]), seed=int(job.seed), progress=False)
        model = train_model(model, (torch.tensor(data.train), None), None, config)
        states = torch.tensor(data.test, dtype=model.dtype)
        actions = states.new_zeros(states.shape[0], states.shape[1] - 1, 0)
        predicted = predict(model, states, actions).double()
        true = states.double()
    violation = metrics.energy_violation(
        env.energy(_momenta(env, predicted)), env.energy(_momenta(env, true))
    )
    relative = metrics.relative_error(predicted, true)
    # The authors' metric: log of the clamped error averaged over (window, t), t = 0 included.
    logs = relative.clamp_min(1e-7).log()
    per_window = {
        "rollout_error_authors": logs.mean(dim=1).exp(),
        "rollout_error": metrics.geometric_mean_over_time(relative),
        "test_mse": (predicted - true).square().mean(dim=(1, 2)),
        "energy_violation": metrics.geometric_mean_over_time(violation),
        "position_error": metrics.position_error(predicted, true, data.q_dim),
    }
    values = {name: float(v.mean()) for name, v in per_window.items()}
    values["rollout_error_authors"] = float(logs.mean().exp())
    values["rollout_error_authors_std"] = float(
        per_window["rollout_error_authors"].std(unbiased=False)
    )
    return JobResult(
        job=job,
        metrics={name: finite_or_inf(value) for name, value in values.items()},
        data_hash=data.digest(),
        seconds=time.perf_counter() - start,
        curves={"error": _curve(relative), "energy_violation": _curve(violation)},
        trajectory={"true": _rows(true[0]), "predicted": _rows(predicted[0])},
    )


def _sanity_prediction(sanity: str, env: Any, true: Tensor, dt: float) -> Tensor:
    """A sanity row's rollouts `(B, T + 1, D)` in `[q, v]` from the test windows `true`."""
    if sanity == NO_CHANGE:
        return true[:, :1].expand_as(true).clone()
    if sanity != TRUE_FIELD:
        raise ValueError(f"unknown sanity row {sanity!r}; known: {SANITY}")
    rk4 = get_integrator("rk4")
    no_force = np.zeros(env.q_dim)

    def field(z: Tensor) -> Tensor:  # the env's (numpy, one state at a time)
        return torch.tensor(np.stack([env.vector_field(s, no_force) for s in z.numpy()]))

    z = _momenta(env, true[:, 0])  # the env's field is written in [q, p]
    out = [z]
    for _ in range(true.shape[1] - 1):
        z = rk4.advance(field, z, dt, 1)
        out.append(z)
    rolled = torch.stack(out, dim=1).numpy()
    return torch.tensor(_velocities(env, rolled), dtype=torch.float64)


def _curve(per_step: Tensor) -> list[float]:
    """Mean over trajectories of a `(B, T + 1)` series; non-finite steps become inf."""
    return [finite_or_inf(float(x)) for x in per_step.double().mean(dim=0).tolist()]


def _rows(states: Tensor) -> list[list[float]]:
    rows: list[list[float]] = states.nan_to_num(posinf=1e30, neginf=-1e30).tolist()
    return rows


# ---------------------------------------------------------------------------------- claims
_LABEL = re.compile(r"(?P<model>.+) \(k=(?P<k>\d+)(?P<drag>, drag)?\)")
_HEADLINE = "rollout_error_authors"


def _configurations(means: Means) -> list[tuple[str, int, bool]]:
    """(env id, k, drag) of every configuration with at least one measured row."""
    found = set()
    for row, env_id in means:
        match = _LABEL.fullmatch(row)
        if match is not None and match["model"] in MODELS:
            found.add((env_id, int(match["k"]), match["drag"] is not None))
    return sorted(found)


def _error(
    means: Means, model: str, env_id: str, k: int, drag: bool, metric: str = _HEADLINE
) -> float | None:
    value = means.get((row_label(model, k, drag), env_id), {}).get(metric)
    if value is None:
        return None
    return math.inf if math.isnan(value) else float(value)


def _compare(
    first: str,
    second: str,
    holds: Callable[[float, float], bool],
    *,
    system: str | None = None,
    drag: bool | None = None,
    metric: str = _HEADLINE,
) -> Callable[[Means], bool | None]:
    """A check that `holds(first's error, second's)` on `metric` in every configuration with
    both rows, of `system` and drag setting where given."""
    env_of = {name: env_id for name, env_id, _ in SYSTEMS}

    def check(means: Means) -> bool | None:
        verdicts = []
        for env_id, k, has_drag in _configurations(means):
            if system is not None and env_id != env_of[system]:
                continue
            if drag is not None and has_drag != drag:
                continue
            a = _error(means, first, env_id, k, has_drag, metric)
            b = _error(means, second, env_id, k, has_drag, metric)
            if a is not None and b is not None:
                verdicts.append(holds(a, b))
        return all(verdicts) if verdicts else None

    return check


def _lower(a: float, b: float) -> bool:
    """`a` below `b`; an infinite (diverged) error is the highest."""
    return math.isfinite(a) and (a < b or not math.isfinite(b))


def _within(factor: float) -> Callable[[float, float], bool]:
    def holds(a: float, b: float) -> bool:
        return math.isfinite(a) and (not math.isfinite(b) or a <= factor * b)

    return holds


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "Second-order structure helps: NODE+SO has a lower rollout error than NODE on every "
        "system, k and drag setting (Figures 4 and 6)",
        _compare("NODE+SO", "NODE", _lower),
    ),
    Claim(
        "Second-order structure helps HNNs too: the HNN (separable, with a mass matrix) has a "
        "lower rollout error than the HNN without it (a general H) on every system and k "
        "(Figure 4 right)",
        _compare("HNN", "HNN without SO", _lower, drag=False),
    ),
    Claim(
        "On the chain pendulum (angular coordinates) the HNN has a lower test MSE than "
        "NODE+SO, for every k (Figure 5 left, section 4.4)",
        _compare("HNN", "NODE+SO", _lower, system=CHAIN, drag=False, metric="test_mse"),
    ),
    Claim(
        "On the spring pendulum (Cartesian) the gap vanishes or favours NODE+SO: its test MSE "
        "is at most 1.1x the HNN's, for every k (Figure 5 right, section 4.4)",
        _compare("NODE+SO", "HNN", _within(1.1), system=SPRING, drag=False, metric="test_mse"),
    ),
    Claim(
        "With drag, NODE+SO matches SymODEN (the HNN with a free term): its error is at most "
        "1.25x SymODEN's on every damped system (Figure 6)",
        _compare("NODE+SO", "SymODEN", _within(1.25), drag=True),
    ),
    Claim(
        "With drag, the HNN without forcing terms fits poorly: its error is above NODE+SO's on "
        "every damped system (Figure 6)",
        _compare("NODE+SO", "HNN", _lower, drag=True),
    ),
)

SUITE = Suite(
    name=NAME,
    title="decon-hnn section 4: NODE, NODE+SO and HNNs on chain and spring pendulums, with drag",
    metrics=(
        "rollout_error_authors",
        "rollout_error_authors_std",
        "rollout_error",
        "test_mse",
        "energy_violation",
        "position_error",
    ),
    jobs=jobs,
    run_job=run_job,
    paper=(),
    claims=CLAIMS,
    scale_notes={
        "default": "k = 2 only, a quarter of the paper's training steps on an eighth of its "
        "trajectories with half its width; the findings' verdicts here are the default "
        "scale's, and the README says which were tested at the paper scale.",
    },
)
