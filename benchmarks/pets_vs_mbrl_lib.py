"""PETS on HalfCheetahFull: physprior's loop against facebookresearch's mbrl-lib, same budget.

Both sides learn from scratch in the same real env, `physprior/HalfCheetahFull-v0` (state
[qpos, qvel], 18 numbers; 6 motors), for the same number of real steps, with the same
ensemble (K probabilistic MLPs, SiLU, the same hidden layers and width), the same planner
(CEM: population, horizon, iterations, elites, smoothing; warm-started plans; trajectory
sampling TS-inf with the same number of particles) and the same random first episodes
(identical actions and env seeds). Per seed it reports the learning curve's returns and the
wall time per decision (the planner's call alone), and writes `results.json` and
`learning_curves.png` to `--out`.

- physprior: `physprior.agents.pets.run_pets` (the loop of `physprior mbrl --algo pets`),
  reward from the env's own `reward_fn` (forward progress over the step).
- mbrl-lib 0.2.0: its PETS as `mbrl.algorithms.pets.train` builds it (`_mbrl_lib_pets_side.py`,
  in its own venv since mbrl pins gymnasium 0.26): `GaussianMLP` ensemble
  (`propagation_method="fixed_model"`, TS-inf), `OneDTransitionRewardModel` (deltas,
  normalised inputs), `ModelTrainer` and `train_model_and_save_model_and_data` before each
  planned episode with its HalfCheetah PETS config's training settings (lr 2.8e-4, weight
  decay 1e-4, batch 32, 12 epochs, no validation split), `TrajectoryOptimizerAgent` +
  `CEMOptimizer` (truncated normal, mean of the elites). Its reward function sees only the
  predicted next state, as mbrl-lib's reward functions do: `qvel_x' - 0.1 |a|^2`.

What differs by design, each side keeping its own: the model fit (physprior: 5 epochs of
AdamW at lr 1e-3, batch 256, learned log-variance bounds with PETS's penalty; mbrl-lib: the
settings above, fixed bounds), CEM's sampling (clipped against truncated normal) and the
reward's velocity (mean over the step against the step's end). Timing: the sides run one
after the other, never at once, with `--threads` torch threads each; the order alternates by
seed.

The default settings are the `mbrl` suite's default scale on HalfCheetahFull (1,000 real
steps, 200 of them random, episodes capped at 200 steps, ensembles of 5 members of 2 x 64,
CEM 2 x 60 x 10 with 6 elites and 5 particles); `--paper` sets PETS's planner (population
500, horizon 30, 5 iterations, 50 elites, 20 particles) and members of 4 x 200.

    python benchmarks/mbrl_lib_comparison.py --setup          # once: the mbrl-lib venv
    python benchmarks/pets_vs_mbrl_lib.py --seeds 3 --out /tmp/pets-vs-mbrl-lib

Goal (issue 15): physprior's return at least mbrl-lib's, its wall time per decision at
least 3 times lower. Before and after the runs it also times the eager floor of one decision
(`_pets_floor.py`: the decision's kernels alone, the same sizes and threads) and reports
mbrl-lib's decision over it: the largest speed-up any implementation on eager torch kernels
could show here.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from _pets_floor import floor_decisions
from mbrl_lib_comparison import MbrlSide, mbrl_python, setup

import physprior
from physprior.agents._fit import derive_seed
from physprior.agents.pets import PETSConfig, run_pets
from physprior.evaluation.plots import plot_learning_curves
from physprior.suites.mbrl import curve_metrics

ENV_ID = "physprior/HalfCheetahFull-v0"
VELOCITY_INDEX = 9  # qvel[0], the root's x velocity, in [qpos (9), qvel (9)]
CTRL_COST_WEIGHT = 0.1
DECISION_GOAL = 3.0
OURS, THEIRS = "physprior", "mbrl-lib"


@dataclass(frozen=True)
class Budget:
    """What both sides get."""

    steps: int
    initial_steps: int
    max_episode_steps: int
    ensemble: int
    hidden: int
    layers: int
    population: int
    horizon: int
    iterations: int
    elites: int
    alpha: float
    particles: int


@dataclass
class Run:
    """One side's run of one seed."""

    steps: list[int]
    returns: list[float]
    decision_ms: float
    fit_seconds: float
    seconds: float


def run_ours(budget: Budget, seed: int, out: Path) -> Run:
    config = PETSConfig(
        model="mlp",
        model_kwargs={"hidden": budget.hidden, "layers": budget.layers},
        ensemble=budget.ensemble,
        planner="cem",
        planner_kwargs={
            "population": budget.population,
            "horizon": budget.horizon,
            "iterations": budget.iterations,
            "elites": budget.elites,
            "alpha": budget.alpha,
            "particles": budget.particles,
        },
        initial_steps=budget.initial_steps,
        max_episode_steps=budget.max_episode_steps,
        seed=seed,
    )
    begin = time.perf_counter()
    results = run_pets(ENV_ID, config, budget.steps, out, progress=False)
    curve = results["curve"]
    return Run(
        [int(s) for s in curve["steps"]],
        [float(r) for r in curve["returns"]],
        float(results["decision_ms_mean"]),
        float(results["fit_seconds"]),
        time.perf_counter() - begin,
    )


def run_theirs(budget: Budget, seed: int, python: Path, threads: int) -> Run:
    """mbrl-lib's PETS against the real env hosted here: the same episodes as `run_pets`
    (env seeds, random first episodes, step budget, cut last episode left off the curve)."""
    env = gym.make(ENV_ID, max_episode_steps=budget.max_episode_steps)
    side = MbrlSide(
        python,
        {
            "seed": seed,
            "threads": threads,
            "obs_dim": int(env.observation_space.shape[0]),
            "action_dim": int(env.action_space.shape[0]),
            "capacity": budget.steps,
            "trial_length": budget.max_episode_steps,
            "ensemble": budget.ensemble,
            "hidden": budget.hidden,
            "layers": budget.layers,
            "propagation": "fixed_model",
            "particles": budget.particles,
            "horizon": budget.horizon,
            "population": budget.population,
            "iterations": budget.iterations,
            "elite_ratio": budget.elites / budget.population,
            "alpha": budget.alpha,
            "model_lr": 2.8e-4,
            "model_wd": 1e-4,
            "model_batch_size": 32,
            "epochs": 12,
            "patience": 12,
            "validation_ratio": 0.0,
            "velocity_index": VELOCITY_INDEX,
            "ctrl_cost_weight": CTRL_COST_WEIGHT,
        },
        script="_mbrl_lib_pets_side.py",
    )

    def ask(**msg: Any) -> dict[str, Any]:
        return side.ask(json.dumps(msg))

    begin = time.perf_counter()
    low, high = env.action_space.low, env.action_space.high
    steps, index, act_seconds, decisions, fit_seconds = 0, 0, 0.0, 0, 0.0
    curve: list[tuple[int, float]] = []
    while steps < budget.steps:
        random_phase = steps < budget.initial_steps
        obs, _ = env.reset(seed=derive_seed(seed, index, "env") % 2**31)
        rng = np.random.default_rng(derive_seed(seed, index, "random-actions"))
        if not random_phase:
            fit_seconds += float(ask(cmd="train")["seconds"])
            ask(cmd="reset")
        rows: dict[str, list[Any]] = {k: [] for k in
                                      ("obs", "action", "next_obs", "reward", "terminated",
                                       "truncated")}  # fmt: skip
        total, done = 0.0, False
        while not done and steps + len(rows["obs"]) < budget.steps:
            if random_phase:
                action = rng.uniform(low, high).astype(np.float32)
            else:
                answer = ask(cmd="act", obs=np.asarray(obs, float).tolist())
                action = np.asarray(answer["action"], np.float32)
                act_seconds += float(answer["seconds"])
                decisions += 1
            next_obs, reward, terminated, truncated, _ = env.step(action)
            for key, value in (("obs", obs), ("action", action), ("next_obs", next_obs)):
                rows[key].append(np.asarray(value, float).tolist())
            rows["reward"].append(float(reward))
            rows["terminated"].append(bool(terminated))
            rows["truncated"].append(bool(truncated))
            total += float(reward)
            done = bool(terminated or truncated)
            obs = next_obs
        ask(cmd="add", **rows)
        steps += len(rows["obs"])
        if done:
            curve.append((steps, total))
        index += 1
    side.close('{"cmd": "quit"}')
    env.close()
    return Run(
        [s for s, _ in curve],
        [r for _, r in curve],
        1000 * act_seconds / max(decisions, 1),
        fit_seconds,
        time.perf_counter() - begin,
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", default="/tmp/mbrl-venv", help="the mbrl-lib venv")
    parser.add_argument("--setup", action="store_true", help="make the venv, then exit")
    parser.add_argument("--seeds", type=int, default=1, help="seeds 0..N-1 (1)")
    parser.add_argument("--steps", type=int, default=1000, help="real steps per run (1000)")
    parser.add_argument("--paper", action="store_true", help="PETS's planner and 4x200 members")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, each side (2)")
    parser.add_argument("--out", type=Path, required=True, help="folder for the results")
    args = parser.parse_args()
    if args.setup:
        setup(args.venv)
        return
    python = mbrl_python(args.venv)
    torch.set_num_threads(args.threads)
    planner = (500, 30, 5, 50, 20) if args.paper else (60, 10, 2, 6, 5)
    budget = Budget(
        steps=args.steps,
        initial_steps=200,
        max_episode_steps=200,
        ensemble=5,
        hidden=200 if args.paper else 64,
        layers=4 if args.paper else 2,
        population=planner[0],
        horizon=planner[1],
        iterations=planner[2],
        elites=planner[3],
        alpha=0.1,
        particles=planner[4],
    )
    args.out.mkdir(parents=True, exist_ok=True)
    floor_ms = [eager_floor_ms(budget)]
    runs: dict[str, list[Run]] = {OURS: [], THEIRS: []}
    for seed in range(args.seeds):
        order = (OURS, THEIRS) if seed % 2 == 0 else (THEIRS, OURS)
        for side in order:
            if side == OURS:
                with tempfile.TemporaryDirectory(prefix="pets-ours-") as folder:
                    run = run_ours(budget, seed, Path(folder))
            else:
                run = run_theirs(budget, seed, python, args.threads)
            runs[side].append(run)
            metrics = curve_metrics(run.steps, run.returns, budget.steps)
            print(
                f"seed {seed} {side:<10} final {metrics['final_return']:8.1f}  mean "
                f"{metrics['mean_return']:8.1f}  {run.decision_ms:7.1f} ms/decision  fit "
                f"{run.fit_seconds:6.1f} s  run {run.seconds:6.1f} s",
                flush=True,
            )
    floor_ms.append(eager_floor_ms(budget))
    report(budget, runs, min(floor_ms), args)


def eager_floor_ms(budget: Budget) -> float:
    """The decision's kernels alone (`_pets_floor.py`), at the runs' thread setting."""
    sizes = ("ensemble", "hidden", "layers", "population", "horizon", "iterations", "elites")
    floor = floor_decisions(
        **{name: getattr(budget, name) for name in (*sizes, "alpha", "particles")}
    )(10 if budget.population * budget.horizon > 10_000 else 200)
    print(f"eager floor of one decision (_pets_floor.py): {floor:.1f} ms", flush=True)
    return floor


def difference(ours: list[float], theirs: list[float]) -> tuple[float, float]:
    """Mean of `ours` minus mean of `theirs`, and the standard error of that difference
    (seeds independent; nan with a single seed)."""
    gap = statistics.fmean(ours) - statistics.fmean(theirs)
    if min(len(ours), len(theirs)) < 2:
        return gap, float("nan")
    variance = statistics.variance(ours) / len(ours) + statistics.variance(theirs) / len(theirs)
    return gap, variance**0.5


def report(
    budget: Budget, runs: dict[str, list[Run]], floor_ms: float, args: argparse.Namespace
) -> None:
    table: dict[str, dict[str, list[float]]] = {}
    for side, side_runs in runs.items():
        rows = [curve_metrics(r.steps, r.returns, budget.steps) for r in side_runs]
        table[side] = {
            "final_return": [m["final_return"] for m in rows],
            "mean_return": [m["mean_return"] for m in rows],
            "decision_ms": [r.decision_ms for r in side_runs],
            "fit_seconds": [r.fit_seconds for r in side_runs],
            "run_seconds": [r.seconds for r in side_runs],
        }

    def summary(values: list[float]) -> str:
        spread = statistics.stdev(values) if len(values) > 1 else 0.0
        return f"{statistics.fmean(values):.1f} ({spread:.1f})"

    print(
        f"\nPETS on {ENV_ID}, {budget.steps} real steps, {args.seeds} seed(s), "
        f"{args.threads} threads; physprior {physprior.__version__}; mean (sample std over seeds)"
    )
    metrics = ("final_return", "mean_return", "decision_ms", "fit_seconds", "run_seconds")
    print(f"{'':<11}" + "".join(f"{m:>17}" for m in metrics))
    for side in (OURS, THEIRS):
        print(f"{side:<11}" + "".join(f"{summary(table[side][m]):>17}" for m in metrics))
    ours, theirs = table[OURS], table[THEIRS]
    speed = statistics.fmean(theirs["decision_ms"]) / statistics.fmean(ours["decision_ms"])
    print(f"goal: decision time >= {DECISION_GOAL}x lower: {speed:.2f}x "
          f"({'met' if speed >= DECISION_GOAL else 'not met'})")  # fmt: skip
    bound = statistics.fmean(theirs["decision_ms"]) / floor_ms
    above = statistics.fmean(ours["decision_ms"]) / floor_ms
    print(f"eager floor of a decision {floor_ms:.1f} ms (the lower of two measurements): "
          f"mbrl-lib / floor = {bound:.2f}x, the most any eager-torch decision can gain; "
          f"physprior / floor = {above:.2f}")  # fmt: skip
    for metric in ("final_return", "mean_return"):
        gap, error = difference(ours[metric], theirs[metric])
        verdict = "met" if gap >= 0 else "within noise" if -gap < 2 * error else "not met"
        print(f"goal: {metric} >= mbrl-lib's: physprior - mbrl-lib = {gap:+.1f} "
              f"(standard error {error:.1f}): {verdict}")  # fmt: skip
    results = {"budget": asdict(budget), "threads": args.threads, "sides": table,
               "curves": {s: [(r.steps, r.returns) for r in rs] for s, rs in runs.items()},
               "decision_speed_ratio": speed, "eager_floor_decision_ms": floor_ms}  # fmt: skip
    (args.out / "results.json").write_text(json.dumps(results, indent=2) + "\n")
    curves = {f"PETS, {side}": [(r.steps, r.returns) for r in rs] for side, rs in runs.items()}
    plot_learning_curves(
        curves,
        args.out / "learning_curves.png",
        title=f"PETS on {ENV_ID}: physprior and mbrl-lib, same budget",
    )
    print(f"wrote {args.out / 'results.json'} and {args.out / 'learning_curves.png'}")


if __name__ == "__main__":
    main()
