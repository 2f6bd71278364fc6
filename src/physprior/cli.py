"""The `physprior` command line. The only module that wires the library together.

Each subcommand has one config dataclass (STYLE 13) whose fields are the flags; the config
is saved next to the results.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

from tqdm import tqdm

from physprior import __version__
from physprior._io import atomic_write_text
from physprior.envs import ENV_IDS
from physprior.survey import RolloutSurvey, describe, zero_action_rollout


@dataclass(frozen=True)
class EnvsConfig:
    """`physprior envs`: list the registered environments."""

    json: str | None = None
    """Also write the table as JSON to this file."""


@dataclass(frozen=True)
class DemoConfig:
    """`physprior demo`: the main job on its small default.

    For now: every environment with a short zero-action rollout and its energy drift.
    """

    out: str = "runs/demo"
    """Folder for `demo.json`, `config.json` and `report.md`."""
    steps: int = 100
    """Zero-action steps per environment."""
    seed: int = 0
    """Seed of every environment's reset."""
    envs: tuple[str, ...] = ENV_IDS
    """Which environment ids to run."""


def _cmd_envs(config: EnvsConfig) -> int:
    rows = [describe(env_id) for env_id in ENV_IDS]
    header = f"{'id':<36} {'layout':>6} {'q_dim':>5} {'obs':>4} {'act':>4} {'dt':>8} {'steps':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.env_id:<36} {r.state_layout:>6} {r.q_dim:>5} {r.obs_dim:>4} {r.action_dim:>4} "
            f"{r.dt:>8.4g} {r.max_episode_steps!s:>6}"
        )
    if config.json:
        atomic_write_text(config.json, json.dumps([asdict(r) for r in rows], indent=2) + "\n")
    return 0


def _format_drift(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2e}"


def _demo_report(results: list[RolloutSurvey], config: DemoConfig) -> str:
    lines = [
        "# physprior demo",
        "",
        f"Zero-action rollouts of {config.steps} steps (seed {config.seed}). Energy drift is",
        "max_t |H(z_t) - H(z_0)| / |H(z_0)| with the true Hamiltonian; MuJoCo envs have none.",
        "",
        "| env | layout | q_dim | dt | steps | return | energy drift | steps/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in results:
        lines.append(
            f"| {r.env.env_id} | {r.env.state_layout} | {r.env.q_dim} | {r.env.dt:.4g} | "
            f"{r.steps} | {r.episode_return:.4g} | {_format_drift(r.max_relative_energy_drift)} "
            f"| {r.steps_per_second:.0f} |"
        )
    return "\n".join(lines) + "\n"


def _cmd_demo(config: DemoConfig) -> int:
    if config.steps < 1:
        raise ValueError(f"--steps must be at least 1, got {config.steps}")
    unknown = [e for e in config.envs if e not in ENV_IDS]
    if unknown:
        raise ValueError(f"unknown environment id(s) {unknown}; run `physprior envs` for the list")
    out = Path(config.out)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(out / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    results = []
    for env_id in tqdm(config.envs, desc="zero-action rollouts", unit="env"):
        result = zero_action_rollout(env_id, config.steps, seed=config.seed)
        results.append(result)
        tqdm.write(
            f"{env_id:<36} steps {result.steps:>4}  return {result.episode_return:>10.4g}  "
            f"energy drift {_format_drift(result.max_relative_energy_drift):>9}"
        )
    atomic_write_text(
        out / "demo.json", json.dumps([r.as_dict() for r in results], indent=2) + "\n"
    )
    report = atomic_write_text(out / "report.md", _demo_report(results, config))
    print(f"wrote {report}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="physprior", description="Physics priors for model-based reinforcement learning."
    )
    parser.add_argument("--version", action="version", version=f"physprior {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    envs = sub.add_parser("envs", help="list the registered environments and their layouts")
    envs.add_argument("--json", help="also write the table as JSON to this file")

    demo = sub.add_parser("demo", help="run the main job on its small default")
    demo.add_argument("--out", default=DemoConfig.out, help="output folder (default: %(default)s)")
    demo.add_argument("--steps", type=int, default=DemoConfig.steps, help="steps per env")
    demo.add_argument("--seed", type=int, default=DemoConfig.seed, help="reset seed")
    demo.add_argument(
        "--envs", nargs="+", default=list(DemoConfig.envs), metavar="ENV_ID", help="env ids"
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `physprior` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    try:
        if args.command == "envs":
            return _cmd_envs(EnvsConfig(json=args.json))
        if args.command == "demo":
            config = DemoConfig(
                out=args.out, steps=args.steps, seed=args.seed, envs=tuple(args.envs)
            )
            return _cmd_demo(config)
    except (ValueError, TypeError, FileNotFoundError, RuntimeError) as err:
        print(f"physprior {args.command}: error: {err}", file=sys.stderr)
        return 2
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse guarantees one


if __name__ == "__main__":
    sys.exit(main())
