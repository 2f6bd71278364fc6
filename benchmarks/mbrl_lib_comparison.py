"""physprior's learned vector env and CEM planner side by side with facebookresearch's mbrl-lib.

The same one-step model on both sides: an MLP of 2 hidden layers of 128 units (SiLU, as
mbrl-lib's PETS/MBPO example configs use; `--activation relu` for mbrl-lib's default)
predicting the state change, with HalfCheetah's dimensions (state 18, action 6) and random
weights (speed does not depend on training). Measured:

- env: transitions per second of a batch of `--batch` (4,096) copies, stepped `--steps` times
  with random actions. physprior: `LearnedVectorEnv(mlp, "physprior/HalfCheetahFull-v0",
  4096).step_tensor` (reward, termination, divergence check, episode counting and autoreset
  included). mbrl-lib: `ModelEnv.step` of `OneDTransitionRewardModel(GaussianMLP(...,
  deterministic=True, ensemble_size=1), normalize=True)` with its `reward_fns.halfcheetah`
  and `termination_fns.no_termination`, tensors out (`return_as_np=False`).
- CEM: milliseconds per decision, 5 iterations of 400 candidate sequences of 30 steps, 40
  elites, smoothing 0.1, warm start. physprior: `CEMPlanner(ModelDynamics(mlp, ...),
  CEMConfig(...)).predict(obs)`. mbrl-lib: `TrajectoryOptimizerAgent` with `CEMOptimizer`
  (`elite_ratio` 0.1, `return_mean_elites`), built from an omegaconf config by
  `create_trajectory_optim_agent_for_model` (one particle), `agent.act(obs)`.

mbrl 0.2.0 pins gymnasium 0.26.3 (physprior needs 1.x), so it runs in a separate venv, as a
subprocess (`benchmarks/_mbrl_lib_side.py`) that waits on its stdin while this process
measures: the two sides never run at once. They alternate A/B, B/A, ... in `--rounds` rounds
on the same cores with `--threads` torch threads each; the table gives medians and the speed
ratios physprior / mbrl-lib. Absolute figures swing by up to 3 times between runs on shared
machines; the alternating ratios are the result.

The mbrl-lib venv (`--setup` makes it at `--venv`, default /tmp/mbrl-venv; torch first, from
the CPU build on this machine's disk, so that mbrl's pins never pull a CUDA build; then
hydra-core and omegaconf over mbrl's pins of 1.0.3 / 2.0, which do not import on Python 3.11;
pip warns about the conflict, and mbrl 0.2.0's model, env and planner code works with them):

    python3.11 -m venv /tmp/mbrl-venv
    /tmp/mbrl-venv/bin/pip install torch==2.13.0
    /tmp/mbrl-venv/bin/pip install mbrl==0.2.0
    /tmp/mbrl-venv/bin/pip install hydra-core==1.3.2 omegaconf==2.3.0

Run:

    python benchmarks/mbrl_lib_comparison.py --setup        # once: makes the venv (~3 min)
    python benchmarks/mbrl_lib_comparison.py                # about a minute
    python benchmarks/mbrl_lib_comparison.py --rounds 3 --threads 1

Goal: physprior's `mlp` learned vector env and its CEM at least 1.5 times as fast as
mbrl-lib's `ModelEnv` and CEM agent. For scale, measured on these machines at 2 threads:
mbrl-lib's `ModelEnv` about 1.6 million transitions per second at batch 4,096, its CEM agent
about 46 ms per decision.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time
from pathlib import Path

import torch
from learned_env_throughput import ENV_ID, fitted_model, halfcheetah_states

import physprior
from physprior.agents.mpc import CEMConfig, CEMPlanner
from physprior.learned_env import ModelDynamics

HERE = Path(__file__).resolve().parent

GOAL = 1.5
SETUP = (
    ["python3.11", "-m", "venv", "{venv}"],
    ["{venv}/bin/pip", "install", "torch==2.13.0"],
    ["{venv}/bin/pip", "install", "mbrl==0.2.0"],
    ["{venv}/bin/pip", "install", "hydra-core==1.3.2", "omegaconf==2.3.0"],
)


def setup(venv: str) -> None:
    """Make the mbrl-lib venv at `venv` with the commands of the module docstring."""
    for command in SETUP:
        args = [part.format(venv=venv) for part in command]
        print("+", " ".join(args), flush=True)
        subprocess.run(args, check=True)


def mbrl_python(venv: str) -> Path:
    """The mbrl-lib venv's Python; exits with the set-up commands when there is none."""
    python = Path(venv) / "bin" / "python"
    if not python.exists():
        commands = "\n".join(" ".join(c).format(venv=venv) for c in SETUP)
        sys.exit(f"no mbrl-lib venv at {venv}; run with --setup, or:\n{commands}")
    return python


class MbrlSide:
    """An mbrl-lib side script run by the venv's `python` with `config` (JSON) as its
    argument, answering one JSON line per command line; this one's commands: `env(k)` ->
    transitions/s, `cem(k)` -> ms per decision."""

    def __init__(
        self, python: Path, config: dict[str, object], script: str = "_mbrl_lib_side.py"
    ) -> None:
        self.proc = subprocess.Popen(
            [str(python), str(HERE / script), json.dumps(config)],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.info = self.ask(None)

    def ask(self, command: str | None) -> dict[str, object]:
        """Send one command line (None: none) and return the side's JSON answer."""
        assert self.proc.stdin is not None and self.proc.stdout is not None
        if command is not None:
            self.proc.stdin.write(command + "\n")
            self.proc.stdin.flush()
        line = self.proc.stdout.readline()
        if not line:
            raise RuntimeError(f"the mbrl-lib side exited (code {self.proc.wait()})")
        answer: dict[str, object] = json.loads(line)
        if "error" in answer:
            raise RuntimeError(f"the mbrl-lib side: {answer['error']}")
        return answer

    def env(self, steps: int) -> float:
        return float(self.ask(f"env {steps}")["rate"])  # type: ignore[arg-type]

    def cem(self, decisions: int) -> float:
        return float(self.ask(f"cem {decisions}")["ms"])  # type: ignore[arg-type]

    def close(self, quit_line: str = "quit") -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.write(quit_line + "\n")
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--venv", default="/tmp/mbrl-venv", help="the mbrl-lib venv")
    parser.add_argument("--setup", action="store_true", help="make the venv, then exit")
    parser.add_argument("--batch", type=int, default=4096, help="env copies (4096)")
    parser.add_argument("--steps", type=int, default=20, help="env steps per timing (20)")
    parser.add_argument("--decisions", type=int, default=5, help="CEM decisions per timing (5)")
    parser.add_argument("--rounds", type=int, default=6, help="alternating rounds (6)")
    parser.add_argument("--threads", type=int, default=2, help="torch threads, each side (2)")
    parser.add_argument("--activation", choices=("silu", "relu"), default="silu")
    args = parser.parse_args()
    if args.setup:
        setup(args.venv)
        return
    python = mbrl_python(args.venv)
    torch.set_num_threads(args.threads)
    cem = CEMConfig(horizon=30, population=400, iterations=5, elites=40, alpha=0.1)

    data = halfcheetah_states(2000, 0)
    model = fitted_model("mlp", data, activation=args.activation)
    envs = physprior.LearnedVectorEnv(model, ENV_ID, args.batch, initial_states=data[0])
    envs.reset(seed=0)
    planner = CEMPlanner(ModelDynamics(model, ENV_ID), cem)
    observations = data[0][::10]
    gen = torch.Generator().manual_seed(0)
    cursor = 0

    def our_env(steps: int) -> float:
        actions = torch.rand(steps, args.batch, 6, generator=gen) * 2 - 1
        begin = time.perf_counter()
        for t in range(steps):
            envs.step_tensor(actions[t])
        return args.batch * steps / (time.perf_counter() - begin)

    def our_cem(decisions: int) -> float:
        nonlocal cursor
        begin = time.perf_counter()
        for _ in range(decisions):
            planner.predict(observations[cursor % len(observations)])
            cursor += 1
        return 1000 * (time.perf_counter() - begin) / decisions

    mbrl = MbrlSide(
        python,
        {
            "threads": args.threads,
            "batch": args.batch,
            "obs_dim": 18,
            "action_dim": 6,
            "hidden": 128,
            "layers": 2,
            "activation": {"silu": "SiLU", "relu": "ReLU"}[args.activation],
            "horizon": cem.horizon,
            "population": cem.population,
            "iterations": cem.iterations,
            "elites": cem.elites,
            "seed": 0,
        },
    )
    pairs = {
        "env": ((our_env, mbrl.env), args.steps),
        "cem": ((our_cem, mbrl.cem), args.decisions),
    }
    results: dict[str, tuple[list[float], list[float]]] = {k: ([], []) for k in pairs}
    for (ours, theirs), _ in pairs.values():  # warm-up
        ours(2)
        theirs(2)
    for r in range(args.rounds):
        for key, ((ours, theirs), count) in pairs.items():
            if r % 2 == 0:
                results[key][0].append(ours(count))
                results[key][1].append(theirs(count))
            else:
                results[key][1].append(theirs(count))
                results[key][0].append(ours(count))
    mbrl.close()

    print(
        f"2x128 {args.activation} MLP, HalfCheetah dims; {args.rounds} alternating rounds, "
        f"{args.threads} threads each; physprior {physprior.__version__}, mbrl-lib "
        f"{mbrl.info['mbrl']}, torch {torch.__version__} / {mbrl.info['torch']}"
    )
    print(f"{'':<34}{'physprior':>12}{'mbrl-lib':>12}{'speed ratio':>13}")
    env_ours, env_theirs = (statistics.median(x) for x in results["env"])
    cem_ours, cem_theirs = (statistics.median(x) for x in results["cem"])
    env_ratio, cem_ratio = env_ours / env_theirs, cem_theirs / cem_ours
    print(
        f"{f'env, transitions/s at {args.batch}':<34}{env_ours:>12,.0f}{env_theirs:>12,.0f}"
        f"{env_ratio:>13.2f}"
    )
    print(f"{'CEM, ms per decision':<34}{cem_ours:>12.1f}{cem_theirs:>12.1f}{cem_ratio:>13.2f}")
    per_round = [o / t for o, t in zip(*results["env"], strict=True)]
    print(f"env ratio per round: {', '.join(f'{x:.2f}' for x in per_round)}")
    per_round = [t / o for o, t in zip(*results["cem"], strict=True)]
    print(f"CEM ratio per round: {', '.join(f'{x:.2f}' for x in per_round)}")
    for name, ratio in (("env", env_ratio), ("CEM", cem_ratio)):
        verdict = "met" if ratio >= GOAL else "not met"
        print(f"goal: physprior {name} >= {GOAL}x mbrl-lib: {ratio:.2f}x ({verdict})")


if __name__ == "__main__":
    main()
