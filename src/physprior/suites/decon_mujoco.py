"""Suite "decon-mujoco": decon-hnn section 5, NODE vs NODE+SO vs HNN (and an MLP) on MuJoCo.

Gruver et al. (2022, "Deconstructing the inductive biases of Hamiltonian neural networks",
section 5, Figure 7, appendix C) train transition models on data a SAC agent collected in
MuJoCo bodies observed as `[qpos, qvel]`, and find on HalfCheetah, Hopper and Swimmer that the
second-order structure (NODE+SO) gives the lowest open-loop rollout error, a plain NODE comes
next, and the HNN is worst (it cannot even fit the training data well). Rows:

| row | physprior model |
|---|---|
| NODE | `node`: `dz/dt = f(z, u)`, Euler, 8 substeps of `dt / 8` |
| NODE+SO | `node-so`: learned acceleration, averaged-velocity Euler rule, 8 substeps |
| HNN [authors' form] | the model behind the paper's HNN bars (`_decon_mixture.DeconMixtureHNN`): mass matrix off, `H` on the standardised `[q, v]` (so `dq/dt` is the standardised velocity), a free force network on `dp/dt`, one Euler step per `dt` |
| HNN | physprior's `hnn`: `form="mechanical"` (`p = M(q) v` with a learned mass matrix, so `dq/dt = v` exactly), learned damping and control forcing; Euler, 8 substeps |
| MLP | `mlp`: the usual MBRL model, an MLP predicting the state change (not in the paper) |
| predict no change (sanity row) | nothing trained: every predicted state is the window's first |

The paper's findings are about its three models (NODE, NODE+SO, the authors' HNN) on its three
bodies (HalfCheetah, Hopper, Swimmer) and are judged on that set; physprior's HNN, the MLP and
Walker2d are extra rows. Every network has 2 hidden layers of 128 units (tanh; the MLP keeps
its default SiLU).

Protocol, per parameter: the paper (section 5, appendix C), the authors' code
(github.com/ngruver/decon-hnn: `mujoco.py`, `src/models/dynamics_models.py`,
`bar_plots.ipynb`) and this suite at the `paper` scale:

| parameter | paper | authors' code | ours |
|---|---|---|---|
| envs | HalfCheetah, Hopper, Swimmer (Figure 7) | the same (`*Full-v0`) | the same, and Walker2d |
| data | SAC to convergence, every transition, episodes split at random | data files not published | SB3 SAC for 1,000,000 steps, every transition, 20% of the episodes for testing |
| training windows | 40,000 of 3 states | 3-state windows (`train_seq_len=3`) | 40,000 of 3 states |
| test windows | 200 of 200 steps | the length of the published episode files | 200 of 200 steps |
| optimiser | Adam, weight decay 1e-4 | Adam, coupled L2 1e-4 | the same (`optimizer="adam"`) |
| learning rate | cosine from 2e-4 to 1e-6 | cosine from 5e-3 (hard-coded; the config's 2e-4 is unused) to 1e-6, per epoch | cosine from 5e-3 to 1e-6, per epoch |
| gradient clipping | silent | global norm 1 | 1 |
| batch, epochs | 200, 256 | the same (about 51,200 steps) | the same |
| loss | silent | `((z_hat - z) / z_std)^2` over the window, t = 0 included | the same in state-std units, t >= 1 |
| NODE, NODE+SO | Euler, 8 substeps | the same | the same |
| HNN | "Euler, 8 steps" | `MixtureHNN`, one Euler step (see the row table) | both forms, as rows |
| metric | "rollout error" | `test_mse`: mean over windows, steps (t = 0 included) and dimensions of `((z_hat - z) / z_std_train)^2` | `test_mse` (headline, the paper's), and decon-hnn's geometric-mean `rollout_error` |

Data: a Stable-Baselines3 SAC agent learns in the env and every transition it takes is
recorded (`physprior.agents.collect`); the episodes are split at random into train and test
(whole episodes, `split_episodes`); training uses windows of 3 states drawn from the training
episodes, testing open-loop rollouts along windows drawn from the test episodes, driven by the
recorded actions. Collecting is the expensive part and the models of an (env, seed, scale)
share one data set: each job calls `_dataset`, which collects into a cache file the first time
and reads it afterwards (see "Cache" below).

Metrics (means over the test windows): `test_mse` (headline, the authors' Figure 7 metric,
`z_std_train` the per-dimension std of the training states); `rollout_error` (decon-hnn's
geometric mean over the rollout of the relative state error `|z_hat - z| / (|z_hat| + |z|)`),
`position_error` (mean L2 error of `qpos`) and `state_mse`, with `<metric>_std` their std over
windows. Curves: `error`, the mean relative state error per step; the trajectory is the first
test window, true and predicted.

Scales:

- `paper`: the protocol above.
- `default`: 4 envs, SAC for 10,000 steps each (episodes of at most 500 steps, so that even
  the learning agent's short early episodes and a few longer later ones make several test
  episodes), 10,000 training windows, 50 test windows of 50 steps, 20 epochs (1,000 Adam
  steps against the paper's 51,200). What it reduces: the SAC agent is far from converged (so
  the states cover less of the space and episodes are shorter), a quarter of the training
  windows, a fifth of the epochs and quarter-length rollouts.
- `smoke`: HalfCheetahFull only, 300 SAC steps in episodes of 100 (3 episodes, learning
  from step 100), 2 x 8 networks, 1 epoch, 4 test windows of 10 steps.

Cache: `$PHYSPRIOR_CACHE/decon-mujoco/` (default `~/.cache/physprior/decon-mujoco/`), one
`.npz` per collection setting (env, seed, steps, episode length, SAC overrides), named by a
hash of them and managed by `_sac_cache` (shared with the `mpc` suite): concurrent jobs of one
env collect once, a cached file is always complete, and a killed collection is started afresh
rather than resumed, because a resumed SAC run differs from an uninterrupted one and jobs must
be deterministic for their seed.

Published numbers: Figure 7 shows bars only, so there is no `PaperRow`; the claims are the
paper's findings.
"""  # noqa: E501 (the protocol table's rows)

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from physprior.data import TransitionDataset, make_windows, split_episodes
from physprior.evaluation import predict
from physprior.models import ModelConfig, TransitionModel, make
from physprior.training import TrainConfig

from . import _sac_cache
from ._common import data_hash, finite_or_inf, score_rollouts, train_model
from ._decon_mixture import DeconMixtureHNN
from ._framework import Claim, Job, JobResult, Means, Scale, Suite, scale_settings

__all__ = ["ENVS", "MODELS", "SUITE", "cache_dir"]

NAME = "decon-mujoco"
#: The full-state MuJoCo bodies of decon-hnn Figure 7, then Walker2d (an extra env).
ENVS: tuple[str, ...] = (
    "physprior/HalfCheetahFull-v0",
    "physprior/HopperFull-v0",
    "physprior/SwimmerFull-v0",
    "physprior/Walker2dFull-v0",
)
#: The envs the paper's findings are about.
PAPER_ENVS = ENVS[:3]
#: The row of the model behind the paper's HNN bars (`_decon_mixture`).
AUTHORS_HNN = "HNN [authors' form]"
#: The rows the paper's findings are about.
PAPER_MODELS = ("NODE", "NODE+SO", AUTHORS_HNN)
#: Row label -> (model name, its settings besides width and depth); `AUTHORS_HNN` is built
#: by this suite, the others by `physprior.models.make`.
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "NODE": ("node", {"integrator": "euler", "substeps": 8, "activation": "tanh"}),
    "NODE+SO": ("node-so", {"substeps": 8, "activation": "tanh"}),
    AUTHORS_HNN: (DeconMixtureHNN.name, {"activation": "tanh"}),
    "HNN": (
        "hnn",
        {
            "form": "mechanical",
            "dissipation": True,
            "integrator": "euler",
            "substeps": 8,
            "activation": "tanh",
        },
    ),
    "MLP": ("mlp", {}),  # its default SiLU activation
}
#: Sanity row, nothing trained: every predicted state is the window's first.
NO_CHANGE = "predict no change (sanity row)"
#: Environment variable naming the cache root (the suite uses `<root>/decon-mujoco/`).
CACHE_ENV = _sac_cache.CACHE_ENV

_SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "envs": ENVS[:1],
        "collect": {"steps": 300, "max_episode_steps": 100, "sac_kwargs": {"learning_starts": 100}},
        "split": {"test_fraction": 1 / 3},
        "windows": {"train": 200, "test": 4, "horizon": 10},
        "net": {"hidden": 8, "layers": 2},
        "train": {"epochs": 1, "batch_size": 200},
    },
    "default": {
        "envs": ENVS,
        "collect": {"steps": 10_000, "max_episode_steps": 500, "sac_kwargs": {}},
        "split": {"test_fraction": 0.2},
        "windows": {"train": 10_000, "test": 50, "horizon": 50},
        "net": {"hidden": 128, "layers": 2},
        "train": {"epochs": 20, "batch_size": 200},
    },
    "paper": {
        "envs": ENVS,
        "collect": {"steps": 1_000_000, "max_episode_steps": None, "sac_kwargs": {}},
        "split": {"test_fraction": 0.2},
        "windows": {"train": 40_000, "test": 200, "horizon": 200},
        "net": {"hidden": 128, "layers": 2},
        "train": {"epochs": 256, "batch_size": 200},
    },
}


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: envs x rows (NODE, NODE+SO, HNN, MLP) for seeds `0 .. seeds - 1`."""
    settings = scale_settings(_SCALES, scale, seeds)
    grid = []
    for seed in range(seeds):
        for env_id in settings["envs"]:
            dt = _env_dt(env_id)
            for row, (model, config) in MODELS.items():
                params = {
                    "model": model,
                    "model_config": {**settings["net"], **config},
                    "dt": dt,
                    "collect": dict(settings["collect"]),
                    "split": dict(settings["split"]),
                    "windows": dict(settings["windows"]),
                    # The authors' optimiser (mujoco.py): Adam with coupled L2 1e-4, cosine
                    # from 5e-3 to 1e-6 per epoch, gradients clipped at norm 1.
                    "train": dict(
                        settings["train"],
                        lr=5e-3,
                        lr_min=1e-6,
                        optimizer="adam",
                        weight_decay=1e-4,
                        schedule="cosine",
                        grad_clip=1.0,
                    ),
                }
                grid.append(Job(NAME, row, env_id, seed, params))
            sanity = {key: params[key] for key in ("dt", "collect", "split", "windows")}
            grid.append(Job(NAME, NO_CHANGE, env_id, seed, {"sanity": NO_CHANGE, **sanity}))
    return grid


def _env_dt(env_id: str) -> float:
    """The time between the env's observations, in seconds."""
    import physprior  # noqa: F401  (registers the environments)

    env = gym.make(env_id)
    dt = float(env.unwrapped.dt)  # type: ignore[attr-defined]  # every physprior env has dt
    env.close()
    return dt


# ---------------------------------------------------------------------------------- data
def cache_dir() -> Path:
    """`$PHYSPRIOR_CACHE/decon-mujoco`, or `~/.cache/physprior/decon-mujoco` without it."""
    return _sac_cache.cache_root() / NAME


def _dataset(env_id: str, seed: int, collect_spec: Mapping[str, Any]) -> TransitionDataset:
    """The SAC data set of (env, seed, collection settings), collected once and cached.

    `collect_spec`: `steps`, `max_episode_steps` (None: the env's limit) and `sac_kwargs`
    (overrides of `default_sac_kwargs`); the file lies in `cache_dir()` (see `_sac_cache`).
    """
    path = _sac_cache.sac_dataset(
        NAME,
        env_id,
        int(seed),
        int(collect_spec["steps"]),
        sac_kwargs=collect_spec.get("sac_kwargs"),
        max_episode_steps=collect_spec.get("max_episode_steps"),
    )
    return TransitionDataset.load(path)


def _windows(job: Job) -> tuple[Any, Any]:
    """(train windows of 3 states, test windows of `horizon + 1` states), numpy `Windows`."""
    params = job.params
    dataset = _dataset(job.env_id, job.seed, params["collect"])
    train_set, test_set = split_episodes(
        dataset, float(params["split"]["test_fraction"]), seed=job.seed
    )
    spec = params["windows"]
    # Independent draws for the training and the test windows.
    train_seed, test_seed = (int(s) for s in np.random.SeedSequence(job.seed).generate_state(2))
    return (
        _sample(train_set, 3, int(spec["train"]), train_seed),
        _sample(test_set, int(spec["horizon"]) + 1, int(spec["test"]), test_seed),
    )


def _sample(dataset: TransitionDataset, length: int, count: int, seed: int) -> Any:
    """`count` distinct random windows of `length` states, or all there are when fewer."""
    every = make_windows(dataset, length)  # raises, naming the longest episode, if none fits
    if len(every) <= count:
        return every
    chosen = np.random.default_rng(seed).choice(len(every), count, replace=False)
    return every.take(np.sort(chosen))


# ---------------------------------------------------------------------------------- a job
def run_job(job: Job) -> JobResult:
    """Collect (or read) the data, train the row's model, roll it out on the test windows.

    Deterministic for `job.seed` on the CPU.
    """
    start = time.perf_counter()
    params = job.params
    train_windows, test_windows = _windows(job)
    meta = train_windows.meta
    if "sanity" in params:
        states, actions = test_windows.to_torch(torch.float64)
        predicted = states[:, :1].expand_as(states).clone()
        metrics, curves, trajectory = score_rollouts(
            None, states, actions, predicted=predicted, q_dim=meta.q_dim
        )
        return _result(
            job, metrics, train_windows, test_windows, states, predicted, start, curves, trajectory
        )
    torch.manual_seed(job.seed)
    dims: dict[str, Any] = {
        "obs_dim": int(train_windows.states.shape[-1]),
        "action_dim": int(train_windows.actions.shape[-1]),
        "q_dim": meta.q_dim,
        "state_layout": meta.state_layout,
        "dt": float(params["dt"]),
        "env_id": job.env_id,
        **dict(params["model_config"]),
    }
    model: TransitionModel
    if params["model"] == DeconMixtureHNN.name:
        model = DeconMixtureHNN(ModelConfig(**dims))
    else:
        model = make(str(params["model"]), **dims)
    config = TrainConfig(**dict(params["train"]), seed=int(job.seed), progress=False)
    model = train_model(model, train_windows, None, config)
    states, actions = test_windows.to_torch(model.dtype)
    predicted = predict(model, states, actions)
    metrics, curves, trajectory = score_rollouts(model, states, actions, predicted=predicted)
    return _result(
        job, metrics, train_windows, test_windows, states, predicted, start, curves, trajectory
    )


def _result(
    job: Job,
    metrics: dict[str, float],
    train_windows: Any,
    test_windows: Any,
    states: Tensor,
    predicted: Tensor,
    start: float,
    curves: dict[str, list[float]],
    trajectory: dict[str, list[list[float]]],
) -> JobResult:
    """The job's result, with the authors' Figure 7 metric of `predicted` against the true
    test windows `states` (both `(B, T + 1, D)`) added to `metrics`."""
    # In units of the training states' std, over every step (t = 0 included).
    z_std = np.clip(train_windows.states.reshape(-1, states.shape[-1]).std(0), 1e-6, None)
    scaled = (predicted.double() - states.double()) / torch.from_numpy(z_std)
    per_window = scaled.square().mean(dim=(1, 2))
    metrics["test_mse"] = finite_or_inf(float(per_window.mean()))
    metrics["test_mse_std"] = finite_or_inf(float(per_window.std(unbiased=False)))
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=data_hash(
            train_windows.states, train_windows.actions, test_windows.states, test_windows.actions
        ),
        seconds=time.perf_counter() - start,
        curves=curves,
        trajectory=trajectory,
    )


# ---------------------------------------------------------------------------------- claims
def _value(means: Means, row: str, env_id: str, metric: str) -> float | None:
    """The row's mean `metric` on the env (NaN counts as diverged: +inf), None if absent."""
    value = means.get((row, env_id), {}).get(metric)
    if value is None:
        return None
    return math.inf if math.isnan(value) else float(value)


def _ordered(rows: tuple[str, ...], metric: str = "test_mse") -> Callable[[Means], bool | None]:
    """A check that `metric` is strictly increasing along `rows` on every paper env with all
    of them (an infinite error ranks last)."""

    def check(means: Means) -> bool | None:
        verdicts = []
        for env_id in PAPER_ENVS:
            values = [_value(means, row, env_id, metric) for row in rows]
            if all(v is not None for v in values):
                verdicts.append(all(a < b for a, b in itertools.pairwise(values)))  # type: ignore[operator]
        return all(verdicts) if verdicts else None

    return check


def _lowest(
    row: str, others: tuple[str, ...], metric: str = "test_mse"
) -> Callable[[Means], bool | None]:
    """A check that `row` has the lowest `metric` of `(row, *others)` on every paper env."""

    def check(means: Means) -> bool | None:
        verdicts = []
        for env_id in PAPER_ENVS:
            mine = _value(means, row, env_id, metric)
            theirs = [_value(means, other, env_id, metric) for other in others]
            if mine is not None and all(v is not None for v in theirs):
                verdicts.append(math.isfinite(mine) and all(mine < v for v in theirs))  # type: ignore[operator]
        return all(verdicts) if verdicts else None

    return check


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "NODE+SO has the lowest rollout error (test_mse) of NODE, NODE+SO and the HNN on each "
        "of HalfCheetah, Hopper and Swimmer (decon-hnn Figure 7)",
        _lowest("NODE+SO", ("NODE", AUTHORS_HNN)),
    ),
    Claim(
        "NODE comes next and the HNN is worst: test_mse rises from NODE+SO to NODE to the HNN "
        "on each of the three (Figure 7, section 5)",
        _ordered(("NODE+SO", "NODE", AUTHORS_HNN)),
    ),
    Claim(
        "Extra, not the paper's: with physprior's mechanical HNN in place of the authors' "
        "form, NODE+SO still has the lowest test_mse on each of the three",
        _lowest("NODE+SO", ("NODE", "HNN")),
    ),
    Claim(
        "Extra, not the paper's: physprior's mechanical HNN has a lower test_mse than the "
        "authors' form on each of the three",
        _lowest("HNN", (AUTHORS_HNN,)),
    ),
)

SUITE = Suite(
    name=NAME,
    title="decon-hnn section 5: NODE, NODE+SO, HNN and MLP on SAC data from full-state MuJoCo",
    metrics=("test_mse", "test_mse_std", "rollout_error", "position_error", "state_mse"),
    jobs=jobs,
    run_job=run_job,
    paper=(),
    claims=CLAIMS,
    scale_notes={
        "default": "SAC for 10,000 steps per env (far from converged), 1,000 Adam steps of "
        "the paper's 51,200 and 50-step rollouts of its 200; the findings' verdicts here are "
        "the default scale's.",
    },
)
