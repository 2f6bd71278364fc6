"""Suite "decon-mujoco": decon-hnn section 5, NODE vs NODE+SO vs HNN vs MLP on full-state MuJoCo.

Gruver et al. (2022, "Deconstructing the inductive biases of Hamiltonian neural networks",
section 5, Figure 7, appendix C) train transition models on data a SAC agent collected in
MuJoCo bodies observed as `[qpos, qvel]`, and find that the second-order structure (NODE+SO)
gives the lowest open-loop rollout error, a plain NODE comes next, and the HNN is worst (it
cannot even fit the training data well). Rows:

| row | physprior model |
|---|---|
| NODE | `node`: `dz/dt = f(z, u)`, Euler, 8 substeps of `dt / 8` |
| NODE+SO | `node-so`: learned acceleration, averaged-velocity Euler rule, 8 substeps |
| HNN | `hnn`: `form="mechanical"`, `dissipation=True`, control forcing; Euler, 8 substeps |
| MLP | `mlp`: the usual MBRL model, an MLP predicting the state change (not in the paper) |

Every network has 2 hidden layers of 128 units (the paper's); tanh for NODE, NODE+SO and HNN,
the MLP keeps its default SiLU (it is our extra row, not the paper's). These are the settings
of `physprior.demo.DEMO_MODELS`.

Environments: `physprior/HalfCheetahFull-v0`, `HopperFull-v0`, `SwimmerFull-v0` and
`Walker2dFull-v0` (the v5 bodies, observations `[qpos, qvel]` unclipped; the paper's Figure 7
also has Ant and InvertedPendulum).

Data (appendix C): a Stable-Baselines3 SAC agent learns in the env and every transition it
takes is recorded (`physprior.agents.collect`); the episodes are split at random into train and
test (whole episodes, `split_episodes`); training uses windows of 3 states (two transitions)
drawn from the training episodes, testing open-loop rollouts along windows drawn from the test
episodes, driven by the recorded actions. Collecting is the expensive part and the four models
of an (env, seed, scale) share one data set: each job calls `_dataset`, which collects into a
cache file the first time and reads it afterwards (see "Cache" below).

Metrics (`physprior.evaluation` through `_common.score_rollouts`, means over the test windows):
`rollout_error` (headline; decon-hnn's geometric mean over the rollout of the relative state
error `|z_hat - z| / (|z_hat| + |z|)`), `position_error` (mean L2 error of `qpos`) and
`state_mse`, with `<metric>_std` their std over windows. Curves: `error`, the mean relative state
error per step; the trajectory is the first test window, true and predicted.

Scales:

- `paper`: appendix C: SAC for 1,000,000 steps per env (the paper trains SAC "to
  convergence" without a step count; a million is the usual SAC budget on these bodies),
  test fraction 0.2 of the episodes, 40,000 training windows, 200 test windows of 200 steps,
  256 epochs of Adam (weight decay 1e-4, batch 200, cosine 2e-4 -> 1e-6).
- `default`: 4 envs, SAC for 10,000 steps each (episodes of at most 500 steps, so that even
  the learning agent's short early episodes and a few longer later ones make several test
  episodes), 10,000 training windows, 50 test windows of 50 steps, 20 epochs at a peak learning
  rate of 1e-3 (the demo's: 2e-4 is tuned for 256 epochs). What it reduces: the SAC agent is
  far from converged (so the states cover less of the space and episodes are shorter), a
  quarter of the training windows, a tenth of the epochs and quarter-length rollouts. Budget on
  2 shared cores: collection about 4 x 4.5 minutes (single-threaded SAC; HopperFull's
  10,000 steps took 268 s on a busy machine and gave 164 episodes, HalfCheetahFull ran
  2,500 steps in 36 s); training 1-3 minutes a model (HopperFull HNN, the slowest: 192 s).
  Measured: one seed in 22 minutes one job at a time on a 2-core machine (one core, another
  suite on the other); 3 seeds in 5.4 minutes with `--workers 12` on 16 cores.
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
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from physprior.data import TransitionDataset, make_windows, split_episodes
from physprior.models import make
from physprior.training import TrainConfig

from . import _sac_cache
from ._common import data_hash, score_rollouts, train_model
from ._framework import Claim, Job, JobResult, Means, Scale, Suite, scale_settings

__all__ = ["ENVS", "MODELS", "SUITE", "cache_dir"]

NAME = "decon-mujoco"
#: Full-state MuJoCo bodies of decon-hnn Figure 7 that physprior provides.
ENVS: tuple[str, ...] = (
    "physprior/HalfCheetahFull-v0",
    "physprior/HopperFull-v0",
    "physprior/SwimmerFull-v0",
    "physprior/Walker2dFull-v0",
)
#: Row label -> (physprior model name, its settings besides width and depth).
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "NODE": ("node", {"integrator": "euler", "substeps": 8, "activation": "tanh"}),
    "NODE+SO": ("node-so", {"substeps": 8, "activation": "tanh"}),
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
#: Environment variable naming the cache root (the suite uses `<root>/decon-mujoco/`).
CACHE_ENV = _sac_cache.CACHE_ENV

_SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "envs": ENVS[:1],
        "collect": {"steps": 300, "max_episode_steps": 100, "sac_kwargs": {"learning_starts": 100}},
        "split": {"test_fraction": 1 / 3},
        "windows": {"train": 200, "test": 4, "horizon": 10},
        "net": {"hidden": 8, "layers": 2},
        "train": {"epochs": 1, "batch_size": 200, "lr": 1e-3},
    },
    "default": {
        "envs": ENVS,
        "collect": {"steps": 10_000, "max_episode_steps": 500, "sac_kwargs": {}},
        "split": {"test_fraction": 0.2},
        "windows": {"train": 10_000, "test": 50, "horizon": 50},
        "net": {"hidden": 128, "layers": 2},
        "train": {"epochs": 20, "batch_size": 200, "lr": 1e-3},
    },
    "paper": {
        "envs": ENVS,
        "collect": {"steps": 1_000_000, "max_episode_steps": None, "sac_kwargs": {}},
        "split": {"test_fraction": 0.2},
        "windows": {"train": 40_000, "test": 200, "horizon": 200},
        "net": {"hidden": 128, "layers": 2},
        "train": {"epochs": 256, "batch_size": 200, "lr": 2e-4},
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
                    "train": dict(
                        settings["train"], lr_min=1e-6, weight_decay=1e-4, schedule="cosine"
                    ),
                }
                grid.append(Job(NAME, row, env_id, seed, params))
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
    torch.manual_seed(job.seed)
    model = make(
        str(params["model"]),
        obs_dim=int(train_windows.states.shape[-1]),
        action_dim=int(train_windows.actions.shape[-1]),
        q_dim=meta.q_dim,
        state_layout=meta.state_layout,
        dt=float(params["dt"]),
        env_id=job.env_id,
        **dict(params["model_config"]),
    )
    config = TrainConfig(**dict(params["train"]), seed=int(job.seed), progress=False)
    model = train_model(model, train_windows, None, config)
    states, actions = test_windows.to_torch(model.dtype)
    metrics, curves, trajectory = score_rollouts(model, states, actions)
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
def _error(means: Means, row: str, env_id: str) -> float | None:
    """The row's mean rollout error on the env (NaN counts as diverged: +inf), None if absent."""
    value = means.get((row, env_id), {}).get("rollout_error")
    if value is None:
        return None
    return math.inf if math.isnan(value) else float(value)


def _envs(means: Means) -> list[str]:
    return sorted({env_id for row, env_id in means if row in MODELS})


def _so_best_per_env(means: Means) -> bool | None:
    """NODE+SO's error is below every other measured row's, on every env with NODE+SO."""
    verdicts = []
    for env_id in _envs(means):
        so = _error(means, "NODE+SO", env_id)
        others = [_error(means, row, env_id) for row in MODELS if row != "NODE+SO"]
        measured = [e for e in others if e is not None]
        if so is not None and measured:
            verdicts.append(math.isfinite(so) and all(so < e for e in measured))
    return all(verdicts) if verdicts else None


def _log_mean(values: list[float | None]) -> float:
    """The log of the geometric mean of `values` (+inf when any is missing or infinite)."""
    if any(v is None or not math.isfinite(v) for v in values):
        return math.inf
    return sum(math.log(max(float(v), 1e-300)) for v in values if v is not None) / len(values)


def _so_best_overall(means: Means) -> bool | None:
    """NODE+SO has the lowest geometric mean error over the envs where every row was run."""
    envs = [e for e in _envs(means) if all(_error(means, r, e) is not None for r in MODELS)]
    if not envs:
        return None
    overall = {r: _log_mean([_error(means, r, e) for e in envs]) for r in MODELS}
    so = overall.pop("NODE+SO")
    return math.isfinite(so) and all(so < v for v in overall.values())


def _hnn_worst(means: Means) -> bool | None:
    """HNN's error is above NODE's and NODE+SO's on every env with all three."""
    verdicts = []
    for env_id in _envs(means):
        hnn = _error(means, "HNN", env_id)
        node = _error(means, "NODE", env_id)
        so = _error(means, "NODE+SO", env_id)
        if hnn is not None and node is not None and so is not None:
            verdicts.append(not math.isfinite(hnn) or (hnn > node and hnn > so))
    return all(verdicts) if verdicts else None


CLAIMS: tuple[Claim, ...] = (
    Claim(
        "NODE+SO has the lowest rollout error on every Full MuJoCo env (decon-hnn Figure 7)",
        _so_best_per_env,
    ),
    Claim(
        "NODE+SO has the lowest rollout error on the Full MuJoCo envs overall (geometric mean "
        "over the envs; decon-hnn Figure 7)",
        _so_best_overall,
    ),
    Claim(
        "HNN is worst: its rollout error is above NODE's and NODE+SO's on every Full MuJoCo "
        "env (decon-hnn Figure 7, section 5)",
        _hnn_worst,
    ),
)

SUITE = Suite(
    name=NAME,
    title="decon-hnn section 5: NODE, NODE+SO, HNN and MLP on SAC data from full-state MuJoCo",
    metrics=("rollout_error", "position_error", "state_mse"),
    jobs=jobs,
    run_job=run_job,
    paper=(),
    claims=CLAIMS,
)
