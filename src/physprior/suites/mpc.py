"""Suite `mpc`: real-env return of CEM planning with each learned model, on the SAC data.

For each full-state MuJoCo env a SAC agent (Stable-Baselines3, learning as it acts, as in
`physprior demo` and decon-hnn's data protocol) records every transition; each model
(`node`, `node-so`, `hnn`, `mlp`, the demo's `DEMO_MODELS` settings: 2 x 128 tanh networks,
8 Euler substeps) is trained on 3-state windows of those data, then a CEM planner
(`physprior.agents.mpc.CEMPlanner` over `physprior.learned_env.ModelDynamics`) acts with
it in the real env. Next to the four "CEM + model" rows, "SAC (collector)" acts with the
collecting agent (deterministic actions) and "Random policy" with uniform actions, on the same
seeded episodes. Metrics: `return` (mean over the evaluated real episodes; the headline),
`return_std` (their std), `decision_ms` (mean wall-clock milliseconds per action, model
rollouts included) and `episode_length`.

No paper publishes a table for this setting (it is the MPC use of decon-hnn's MuJoCo models
that this library adds), so the suite has no `PaperRow`s; its claims are the expectations
that motivate it: every model-based CEM agent beats the random policy, and NODE+SO, the
physics-structured model, gives the highest CEM return among the models.

Data: one SAC run per (env, seed, collection settings), shared by every row of that env and
seed and cached on disk (`<cache>/mpc-sac/`, `<cache>` from the `PHYSPRIOR_CACHE` environment
variable or `~/.cache/physprior`), written atomically under a lock file, so a re-run or a
sibling job (also one running in parallel) reads it back instead of collecting again. The
data hash covers the recorded arrays (the random policy's, which uses no data, its seed).

Scales:

- paper: decon-hnn's protocol (PROTOCOLS.md) for the data and training (40,000 windows,
  256 epochs, cosine 2e-4 to 1e-6, batch 200, weight decay 1e-4; SAC for 100,000 steps,
  our reading of "trained to convergence") and the issue's CEM (5 iterations, population
  400, horizon 30, 40 elites), 10 episodes with the envs' own time limits.
- default (24 jobs, about 30 minutes on 2 cores): reductions of every stage. SAC for 5,000
  steps (not 100,000), 4,000 windows (not 40,000), 8 epochs, cosine from 1e-3
  (not 256 from 2e-4), CEM with 3 iterations of 100 sequences of 15 steps and 10 elites (the
  demo's setting, not 5 x 400 x 30), 2 episodes of at most 100 steps (not 10 of 1,000).
  Measured on HalfCheetahFull on a busy 2-core machine, one thread: SAC collection 127 s
  (once per env and seed, then cached), CEM + HNN 360 s (1.5 s per decision: every substep
  differentiates its energy network), the other model rows 4-17 s each, SAC and random
  rows under a second: 9 minutes of one core (HopperFull: 5.4), so about 30 core-minutes for
  the four envs. Measured: one seed in 23 minutes one job at a time on a 2-core machine
  (one core, another suite on the other); 3 seeds in 5 minutes with `--workers 14` on 16
  cores.
- smoke: InvertedPendulumFull only, SAC for 400 steps (learning after 100, 2 x 32 networks),
  300 windows, 1 epoch of 2 x 32 networks, CEM with 2 iterations of 30 sequences of 5 steps,
  2 episodes of at most 20 steps.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import _sac_cache
from ._common import data_hash, train_model
from ._framework import Claim, Job, JobResult, Means, Scale, Suite

NAME = "mpc"
SAC_ROW = "SAC (collector)"
RANDOM_ROW = "Random policy"
#: Row label -> model name (a key of `physprior.demo.DEMO_MODELS`).
MODEL_ROWS: dict[str, str] = {
    "CEM + NODE": "node",
    "CEM + NODE+SO": "node-so",
    "CEM + HNN": "hnn",
    "CEM + MLP": "mlp",
}
ROWS = (*MODEL_ROWS, SAC_ROW, RANDOM_ROW)
ENVS = (
    "physprior/HalfCheetahFull-v0",
    "physprior/HopperFull-v0",
    "physprior/Walker2dFull-v0",
    "physprior/SwimmerFull-v0",
)
SMOKE_ENV = "physprior/InvertedPendulumFull-v0"
CACHE_ENV_VAR = _sac_cache.CACHE_ENV
# Real-env evaluation episodes reset with seeds from here on (the collection uses the job's
# seed itself), so the agents are scored on starts SAC never trained from.
_EVAL_SEED = 10_000
#: An agent: `act(observation (D,), episode_start) -> action (A,)` in env units.
Act = Callable[[Any, bool], Any]

_PAPER: dict[str, Any] = {
    "sac_steps": 100_000,
    "sac_kwargs": {},
    "train_windows": 40_000,
    "epochs": 256,
    "lr": 2e-4,
    "hidden": 128,
    "layers": 2,
    "cem": {"horizon": 30, "population": 400, "iterations": 5, "elites": 40},
    "episodes": 10,
    "episode_steps": None,  # None: the env's registered time limit
}
_DEFAULT: dict[str, Any] = _PAPER | {
    "sac_steps": 5_000,
    "train_windows": 4_000,
    "epochs": 8,
    "lr": 1e-3,
    "cem": {"horizon": 15, "population": 100, "iterations": 3, "elites": 10},
    "episodes": 2,
    "episode_steps": 100,
}
_SMOKE: dict[str, Any] = _PAPER | {
    "sac_steps": 400,
    "sac_kwargs": {
        "learning_starts": 100,
        "batch_size": 64,
        "policy_kwargs": {"net_arch": [32, 32]},
    },
    "train_windows": 300,
    "epochs": 1,
    "lr": 1e-3,
    "hidden": 32,
    "cem": {"horizon": 5, "population": 30, "iterations": 2, "elites": 5},
    "episodes": 2,
    "episode_steps": 20,
}
_SCALES: dict[str, dict[str, Any]] = {"smoke": _SMOKE, "default": _DEFAULT, "paper": _PAPER}


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: the six rows x the envs (smoke: InvertedPendulumFull only) x seeds."""
    envs = (SMOKE_ENV,) if scale == "smoke" else ENVS
    params = {"scale": scale, **_SCALES[scale]}
    return [
        Job(NAME, row, env_id, seed, copy.deepcopy(params))
        for env_id in envs
        for seed in range(seeds)
        for row in ROWS
    ]


# ------------------------------------------------------------------------------ data


def sac_dataset(env_id: str, seed: int, steps: int, sac_kwargs: dict[str, Any]) -> Path:
    """The cached SAC dataset of these settings (`_sac_cache`), collected first if missing."""
    return _sac_cache.sac_dataset("mpc-sac", env_id, seed, steps, sac_kwargs=sac_kwargs)


# ------------------------------------------------------------------------------ agents


def _train(dataset: Any, model_name: str, p: dict[str, Any], seed: int) -> Any:
    """Train `model_name` (the demo's settings) on 3-state windows of every SAC episode."""
    import torch

    from physprior.data import make_windows
    from physprior.demo import DEMO_MODELS
    from physprior.models import make
    from physprior.training import TrainConfig

    windows = make_windows(dataset, 3)
    if len(windows) > int(p["train_windows"]):  # a random subset, as decon-hnn samples them
        windows = make_windows(dataset, 3, count=int(p["train_windows"]), seed=seed)
    torch.manual_seed(seed)
    model = make(
        model_name,
        **dataset.model_fields(),
        hidden=int(p["hidden"]),
        layers=int(p["layers"]),
        **DEMO_MODELS[model_name],
    )
    config = TrainConfig(
        epochs=int(p["epochs"]),
        batch_size=200,
        lr=float(p["lr"]),
        lr_min=1e-6,
        weight_decay=1e-4,
        schedule="cosine",
        seed=seed,
        progress=False,
    )
    return train_model(model, windows, None, config)


def _episodes(
    env_id: str, act: Act | None, p: dict[str, Any], seed: int
) -> tuple[list[float], list[int], float]:
    """Run `act(obs, episode_start) -> action` (None: uniform random actions from the action
    space seeded with `seed`) for the job's real episodes.

    Episode `e` resets with seed `_EVAL_SEED + 1000 * seed + e` (the same starts for every
    row of a seed). Returns the returns, the lengths and the mean milliseconds per action.
    """
    import gymnasium as gym

    kwargs: dict[str, Any] = {}
    if p["episode_steps"] is not None:
        kwargs["max_episode_steps"] = int(p["episode_steps"])
    env = gym.make(env_id, **kwargs)
    env.action_space.seed(seed)
    returns, lengths, seconds = [], [], 0.0
    try:
        for episode in range(int(p["episodes"])):
            obs, _ = env.reset(seed=_EVAL_SEED + 1000 * seed + episode)
            total, steps, done, start = 0.0, 0, False, True
            while not done:
                tic = time.perf_counter()
                action = env.action_space.sample() if act is None else act(obs, start)
                seconds += time.perf_counter() - tic
                obs, reward, terminated, truncated, _ = env.step(action)
                total, steps, start = total + float(reward), steps + 1, False
                done = terminated or truncated
            returns.append(total)
            lengths.append(steps)
    finally:
        env.close()
    return returns, lengths, 1000.0 * seconds / max(1, sum(lengths))


def _policy(job: Job, p: dict[str, Any]) -> tuple[Act | None, str, Callable[[], None]]:
    """The row's `act(obs, episode_start)` (None: random), its data hash and a cleanup."""
    if job.row == RANDOM_ROW:
        # Needs no data: it acts with the env's seeded action space (see `_episodes`).
        return None, data_hash(np.asarray([job.seed])), lambda: None
    from physprior.agents.collect import load_sac
    from physprior.data import TransitionDataset

    path = sac_dataset(job.env_id, job.seed, int(p["sac_steps"]), dict(p["sac_kwargs"]))
    dataset = TransitionDataset.load(path)
    digest = data_hash(
        dataset.obs, dataset.actions, dataset.next_obs, dataset.rewards, dataset.episode
    )
    if job.row == SAC_ROW:
        sac = load_sac(path)
        return (lambda obs, start: sac.predict(obs, deterministic=True)[0]), digest, lambda: None
    if job.row not in MODEL_ROWS:
        raise ValueError(f"unknown {NAME} row {job.row!r}; expected one of {list(ROWS)}")
    from physprior.agents.mpc import CEMConfig, CEMPlanner
    from physprior.learned_env import ModelDynamics

    model = _train(dataset, MODEL_ROWS[job.row], p, job.seed)
    dynamics = ModelDynamics(model, job.env_id)
    planner = CEMPlanner(dynamics, CEMConfig(**dict(p["cem"]), seed=job.seed))

    def act(obs: Any, start: bool) -> Any:
        return planner.predict(obs, episode_start=np.asarray([start]))[0]

    return act, digest, dynamics.close


def run_job(job: Job) -> JobResult:
    """Get the env's SAC data, build the row's agent and score it on the real episodes."""
    started = time.perf_counter()
    # A deep copy: SB3 writes into the policy_kwargs it is given, and the job must not change.
    p = copy.deepcopy(dict(job.params))
    act, digest, close = _policy(job, p)
    try:
        returns, lengths, ms = _episodes(job.env_id, act, p, job.seed)
    finally:
        close()
    metrics = {
        "return": float(np.mean(returns)),
        "return_std": float(np.std(returns)),
        "decision_ms": ms,
        "episode_length": float(np.mean(lengths)),
    }
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=digest,
        seconds=time.perf_counter() - started,
        curves={"returns": returns},
    )


# ------------------------------------------------------------------------------ report
def plots(results: Sequence[JobResult], out_dir: Path) -> list[str]:
    """One env's picture: every row's real-episode returns (all seeds' episodes), as bars
    with their spread, planners, SAC and the random policy side by side."""
    from physprior.evaluation.plots import plot_returns

    if not results:
        return []
    env_id = results[0].job.env_id
    returns: dict[str, list[float]] = {}
    for row in ROWS:  # the suite's order, not the order the jobs finished in
        for result in results:
            if result.job.row == row:
                returns.setdefault(row, []).extend(result.curves.get("returns", []))
    if not returns:
        return []
    slug = env_id.split("/")[-1].lower()
    path = plot_returns(
        returns, out_dir / f"returns-{slug}.png", title=f"Real-episode return, {env_id}"
    )
    return [f"![real-episode returns per row]({path.name})", ""]


# ------------------------------------------------------------------------------ claims


def _envs(means: Means) -> list[str]:
    return sorted({env_id for _, env_id in means})


def _beats_random(means: Means) -> bool | None:
    verdicts = []
    for env_id in _envs(means):
        if (RANDOM_ROW, env_id) not in means:
            continue
        floor = means[(RANDOM_ROW, env_id)]["return"]
        verdicts += [
            means[(row, env_id)]["return"] > floor for row in MODEL_ROWS if (row, env_id) in means
        ]
    return all(verdicts) if verdicts else None


def _node_so_best(means: Means) -> bool | None:
    verdicts = []
    for env_id in _envs(means):
        key = ("CEM + NODE+SO", env_id)
        others = [(row, env_id) for row in MODEL_ROWS if (row, env_id) in means and row != key[0]]
        if key not in means or not others:
            continue
        best = means[key]["return"]
        verdicts.append(all(best >= means[o]["return"] for o in others))
    return all(verdicts) if verdicts else None


SUITE = Suite(
    name=NAME,
    title="CEM model-predictive control with each learned model on the real MuJoCo envs",
    metrics=("return", "return_std", "decision_ms", "episode_length"),
    jobs=jobs,
    run_job=run_job,
    paper=(),
    claims=(
        Claim(
            "Every model-based CEM agent beats the random policy (on every env run)", _beats_random
        ),
        Claim(
            "NODE+SO gives the highest CEM return among the models (on every env run)",
            _node_so_best,
        ),
    ),
    plots=plots,
)

__all__ = ["ENVS", "MODEL_ROWS", "NAME", "ROWS", "SUITE", "jobs", "run_job"]
