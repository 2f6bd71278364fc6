"""The `physprior` command line. The only module that wires the library together.

Each subcommand has one config dataclass (STYLE 13) whose fields are the flags; the config
is saved next to the results.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import math
import sys
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal, NoReturn

from tqdm import tqdm

from physprior import __version__
from physprior._io import check_output_file, check_output_folder, write_results_json
from physprior._progress import progress_bar
from physprior.envs import ENV_IDS
from physprior.survey import RolloutSurvey, describe, zero_action_rollout


@dataclass(frozen=True)
class EnvsConfig:
    """`physprior envs`: list the registered environments."""

    json: str | None = None
    """Also write the table as JSON to this file."""
    rollout: int | None = None
    """Also run this many zero-action steps of each env and report its energy drift."""
    seed: int = 0
    """Seed of every environment's reset (with `rollout`)."""
    progress: bool = True
    """Show a progress bar over the rollouts."""


@dataclass(frozen=True)
class CollectCommandConfig:
    """`physprior collect`: record the transitions of an agent acting in an env."""

    env_id: str
    """Registered environment id."""
    out: str
    """The dataset file (`.npz`); SAC's files go next to it."""
    steps: int
    """Env steps to record."""
    agent: Literal["sac", "random"] = "sac"
    """`sac`: a Stable-Baselines3 SAC agent learning as it acts; `random`: uniform actions."""
    seed: int = 0
    """Seed of the env, the actions and SAC."""
    flush_every: int = 10_000
    """Rewrite the file every this many steps (a kill loses at most this many)."""
    resume: bool = False
    """Continue the collection in `out`."""
    progress: bool = True
    """Show a progress bar."""


@dataclass(frozen=True)
class PlanCommandConfig:
    """`physprior plan`: model-predictive control with a trained model on the real env."""

    env_id: str
    """The real environment to act in."""
    model_dir: str
    """A checkpoint or training run folder of a model trained on `env_id` data."""
    planner: Literal["cem", "mppi", "icem"] = "cem"
    """Planner: cross-entropy method or model-predictive path integral control."""
    episodes: int = 10
    """Real episodes to score."""
    json: str | None = None
    """Write the results to this JSON file."""
    seed: int = 0
    """Seed of the env and the planner's sampling."""
    max_episode_steps: int | None = None
    """Cap episodes at this many steps (default: the env's own limit)."""
    planner_config: tuple[tuple[str, object], ...] = ()
    """Planner settings as (name, value) pairs, e.g. horizon=30 population=400."""
    progress: bool = True
    """Show a progress bar over the episodes."""


@dataclass(frozen=True)
class MBRLCommandConfig:
    """`physprior mbrl`: a model-based RL loop on the real env, learning as it goes."""

    env_id: str
    """The real environment to learn in."""
    out: str
    """Run folder: `checkpoint/` (data, ensemble, state), `results.json`, the curve PNG."""
    steps: int
    """Real env steps."""
    algo: Literal["pets", "mbpo"] = "pets"
    """The loop: PETS (plan through the ensemble, refit it every episode) or MBPO (SAC on
    real transitions and short rollouts branched through the ensemble)."""
    model: str = "mlp"
    """Member model name."""
    ensemble: int = 5
    """Members K."""
    planner: Literal["cem", "mppi", "icem"] | None = None
    """Planner of a PETS loop (None: CEM); MBPO plans nothing."""
    seed: int = 0
    """Seed of everything in the run."""
    model_config: tuple[tuple[str, object], ...] = ()
    """Member config fields as (name, value) pairs."""
    planner_config: tuple[tuple[str, object], ...] = ()
    """Planner settings as (name, value) pairs over PETS's."""
    loop_config: tuple[tuple[str, object], ...] = ()
    """Loop settings (`PETSConfig` fields) as (name, value) pairs."""
    resume: bool = False
    """Continue the run in `out`."""
    progress: bool = True
    """Show a progress bar."""


@dataclass(frozen=True)
class TrainCommandConfig:
    """`physprior train`: fit a model to a transitions dataset."""

    data: str
    """The transitions dataset (`.npz`)."""
    model: str
    """Model name: node, node-so, hnn, srnn, mlp, rnn or lstm."""
    out: str
    """Run folder: checkpoints, `log.jsonl`, the exported model."""
    window: int = 3
    """States per training window (T + 1); 3 is decon-hnn's two-transition window."""
    windows: int | None = None
    """Sample this many training windows at random; `None`: every window."""
    val_fraction: float = 0.1
    """Fraction of episodes held out for validation (split by episode)."""
    model_config: tuple[tuple[str, object], ...] = ()
    """Model config fields as (name, value) pairs, e.g. hidden=128 substeps=8."""
    resume: bool = False
    """Continue the run in `out` from its last checkpoint."""
    ensemble: int | None = None
    """Train an ensemble of this many members, each on a bootstrap resample; `None`: one
    model."""


@dataclass(frozen=True)
class EvalCommandConfig:
    """`physprior eval`: open-loop rollouts of a trained model against a dataset."""

    model_dir: str
    """A checkpoint folder or a training run folder."""
    data: str
    """The transitions dataset (`.npz`) to evaluate on (e.g. held-out episodes)."""
    horizon: int
    """Rollout length H in steps."""
    json: str | None = None
    """Write the results to this JSON file."""
    windows: int = 200
    """At most this many test windows of H + 1 states (decon-hnn: 200)."""
    observed_steps: int | None = None
    """Fit the initial state to this many observed steps first (SRNN ISO: 10); 1: no fit;
    `None`: the model's `iso_test_steps` if it has initial-state optimisation on, else 1."""
    seed: int = 0
    """Seed of the window draw."""


@dataclass(frozen=True)
class GenerateConfig:
    """`physprior generate`: a papers'-style trajectory set from a physics environment."""

    env_id: str
    """Registered environment id."""
    trajectories: int
    """Number of trajectories (episodes)."""
    length: int
    """States per trajectory (length - 1 transitions)."""
    out: str
    """Output dataset (`.npz`)."""
    actions: Literal["zero", "random"] = "zero"
    """`zero` (the autonomous system of the papers) or `random` actions."""
    seed: int = 0
    """Seed of the initial states and actions."""
    progress: bool = True
    """Show a progress bar over the trajectories."""


def _cmd_generate(config: GenerateConfig) -> int:
    from physprior.data import generate_trajectories

    if config.env_id not in ENV_IDS:
        raise ValueError(f"unknown environment id {config.env_id!r}; run `physprior envs`")
    check_output_file(config.out, "--out", example="data.npz")
    dataset = generate_trajectories(
        config.env_id,
        config.trajectories,
        config.length,
        actions=config.actions,
        seed=config.seed,
        progress=config.progress,
    )
    path = dataset.save(config.out)
    print(f"wrote {len(dataset)} transitions of {config.trajectories} trajectories to {path}")
    return 0


def _cmd_envs(config: EnvsConfig) -> int:
    if config.json:
        check_output_file(config.json, "--json")
    rows = [describe(env_id) for env_id in ENV_IDS]
    header = f"{'id':<36} {'layout':>6} {'q_dim':>5} {'obs':>4} {'act':>4} {'dt':>8} {'steps':>6}"
    print(header)
    print("-" * len(header))
    for r in rows:
        print(
            f"{r.env_id:<36} {r.state_layout:>6} {r.q_dim:>5} {r.obs_dim:>4} {r.action_dim:>4} "
            f"{r.dt:>8.4g} {r.max_episode_steps!s:>6}"
        )
    payload: dict[str, Any] = {"envs": [asdict(r) for r in rows]}
    if config.rollout is not None:
        rollouts = _survey(config.rollout, config.seed, config.progress)
        payload["rollouts"] = [r.as_dict() for r in rollouts]
    if config.json:
        write_results_json(config.json, payload)
    return 0


def _format_drift(value: float) -> str:
    return "n/a" if math.isnan(value) else f"{value:.2e}"


def _survey(steps: int, seed: int, progress: bool) -> list[RolloutSurvey]:
    """Zero-action rollouts of every env, with the relative drift of the true energy."""
    if steps < 1:
        raise ValueError(f"--rollout must be at least 1 step, got {steps}")
    print(f"\nzero-action rollouts of {steps} steps (energy drift: max_t |H_t - H_0| / |H_0|)")
    results = []
    for env_id in progress_bar(ENV_IDS, desc="zero-action rollouts", unit="env", enabled=progress):
        result = zero_action_rollout(env_id, steps, seed=seed)
        results.append(result)
        tqdm.write(
            f"{env_id:<36} steps {result.steps:>4}  return {result.episode_return:>10.4g}  "
            f"energy drift {_format_drift(result.max_relative_energy_drift):>9}"
        )
    return results


def _cmd_demo(config: Any) -> int:
    from physprior.demo import run_demo

    check_output_folder(config.out, "--out")
    report = run_demo(config)
    print(f"wrote {report}")
    return 0


def _cmd_collect(config: CollectCommandConfig) -> int:
    from physprior.agents.collect import CollectConfig, collect

    check_output_file(config.out, "--out", example="data.npz")
    result = collect(
        CollectConfig(
            config.env_id,
            config.steps,
            config.out,
            agent=config.agent,
            seed=config.seed,
            flush_every=config.flush_every,
            resume=config.resume,
            progress=config.progress,
        )
    )
    episodes = len(result.dataset.episode_ids)
    print(
        f"wrote {len(result.dataset)} transitions ({episodes} episodes; {result.new_rows} new "
        f"in {result.seconds:.0f} s) to {result.path}"
    )
    if result.policy_path is not None:
        print(f"SAC agent: {result.policy_path}")
    return 0


def _cmd_plan(config: PlanCommandConfig) -> int:
    from physprior.agents.mpc import run_plan

    if config.json:
        check_output_file(config.json, "--json")
    result = run_plan(
        config.env_id,
        config.model_dir,
        config.planner,
        episodes=config.episodes,
        seed=config.seed,
        json_path=config.json,
        overrides=dict(config.planner_config),
        max_episode_steps=config.max_episode_steps,
        progress=config.progress,
    )
    print(
        f"{config.planner} with {config.model_dir} on {config.env_id}: return "
        f"{result['mean_return']:.4g} +- {result['std_return']:.3g} over {config.episodes} "
        f"episodes, {result['decision_ms_mean']:.1f} ms per action"
    )
    return 0


def _cmd_mbrl(config: MBRLCommandConfig) -> int:
    if config.algo == "mbpo":
        return _cmd_mbpo(config)
    from physprior.agents.pets import PETSConfig, run_pets

    # The loop's own settings; the model, ensemble, planner and seed have their own flags.
    flagged = {"model", "model_kwargs", "ensemble", "planner", "planner_kwargs", "seed"}
    pets = PETSConfig(
        **{
            **_loop_settings(PETSConfig, config.loop_config, flagged),
            "model": config.model,
            "model_kwargs": dict(config.model_config),
            "ensemble": config.ensemble,
            "planner": config.planner or "cem",
            "planner_kwargs": dict(config.planner_config),
            "seed": config.seed,
        }
    )
    result = run_pets(
        config.env_id,
        pets,
        config.steps,
        config.out,
        resume=config.resume,
        progress=config.progress,
    )
    print(
        f"PETS with {config.ensemble} {config.model} members on {config.env_id}: "
        f"{result['steps']} real steps, {result['episodes']} finished episodes, "
        f"{_recent_returns(result)}, {result['decision_ms_mean']:.1f} ms per action; results "
        f"in {config.out}"
    )
    return 0


def _cmd_mbpo(config: MBRLCommandConfig) -> int:
    from physprior.agents.mbpo import MBPOConfig, run_mbpo

    if config.planner is not None or config.planner_config:
        raise ValueError("--planner and --plan apply to --algo pets; MBPO acts with SAC")
    flagged = {"model", "model_kwargs", "ensemble", "seed"}
    mbpo = MBPOConfig(
        **{
            **_loop_settings(MBPOConfig, config.loop_config, flagged),
            "model": config.model,
            "model_kwargs": dict(config.model_config),
            "ensemble": config.ensemble,
            "seed": config.seed,
        }
    )
    result = run_mbpo(
        config.env_id, mbpo, config.steps, config.out, resume=config.resume,
        progress=config.progress,
    )  # fmt: skip
    print(
        f"MBPO with {config.ensemble} {config.model} members on {config.env_id}: "
        f"{result['steps']} real steps, {result['episodes']} finished episodes, "
        f"{_recent_returns(result)}, {result['model_fits']} model fits; results in {config.out}"
    )
    return 0


def _loop_settings(
    config_class: type, pairs: tuple[tuple[str, object], ...], flagged: set[str]
) -> dict[str, Any]:
    """`--loop` pairs as config fields of `config_class`, refusing unknown ones and those
    with a flag of their own."""
    import dataclasses as dc

    fields = {f.name for f in dc.fields(config_class)} - flagged
    loop: dict[str, Any] = dict(pairs)
    unknown = sorted(set(loop) - fields)
    if unknown:
        valid = ", ".join(sorted(fields))
        raise ValueError(f"--loop {', '.join(unknown)}: not a loop setting; valid: {valid}")
    return loop


def _recent_returns(result: dict[str, Any]) -> str:
    last = result["curve"]["returns"][-5:]
    if not last:
        return "no finished episode"
    return f"mean return of the last {len(last)} {sum(last) / len(last):.4g}"


@dataclass(frozen=True)
class BenchCommandConfig:
    """`physprior bench`: run a benchmark suite that reproduces a paper's results."""

    suite: str
    """Suite name (`physprior.suites.SUITES`)."""
    out: str
    """Output folder: `jobs/`, `results.json`, `report.md`, plots. Finished jobs are kept and
    not run again."""
    scale: Literal["smoke", "default", "paper"] = "smoke"
    """`smoke`: minutes; `default`: about 30 minutes on 2 cores; `paper`: the full protocol."""
    backend: Literal["local", "ray"] = "local"
    """`local`: jobs in this machine's processes (see `workers`); `ray`: Ray Tune trials."""
    seeds: int = 1
    """Seeds 0..N-1 of every (model, env) job."""
    address: str | None = None
    """Ray cluster to join (default: start a local one)."""
    progress: bool = True
    """Show progress bars."""
    workers: int = 1
    """Jobs the local backend runs at once, each in its own process."""
    rows: tuple[str, ...] | None = None
    """Run only these rows of the suite's grid (None: every row)."""


def _cmd_bench(config: BenchCommandConfig) -> int:
    from physprior.suites import findings, get_suite, read_results, run_bench

    check_output_folder(config.out, "--out")
    try:
        report = run_bench(
            config.suite,
            scale=config.scale,
            backend=config.backend,
            seeds=config.seeds,
            out=config.out,
            address=config.address,
            progress=config.progress,
            workers=config.workers,
            rows=config.rows,
        )
    except ImportError as err:  # the ray extra is missing
        raise RuntimeError(str(err)) from None
    print(f"wrote {report}")
    settings, results = read_results(config.out)
    verdicts = findings(get_suite(settings["suite"]), results)
    if verdicts:
        print("the paper's findings (numbers in the report):")
    for text, verdict in verdicts:
        print(f"  {verdict:<13}  {text}")
    return 0


def _parse_model_config(items: Sequence[str]) -> tuple[tuple[str, object], ...]:
    """`["hidden=128", "integrator=leapfrog"]` -> pairs with JSON-parsed values."""
    pairs = []
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key:
            raise ValueError(f"model config must be given as KEY=VALUE, got {item!r}")
        try:
            value: object = json.loads(raw)
        except json.JSONDecodeError:
            value = raw
        pairs.append((key, value))
    return tuple(pairs)


#: Model config fields `physprior train` takes from the dataset, never from `--set`.
_DATA_FIELDS = ("obs_dim", "action_dim", "q_dim", "state_layout", "dt", "env_id")  # model_fields()
_PIXEL_DATA_FIELDS = ("action_dim", "dt", "env_id")


def _cmd_train(config: TrainCommandConfig, train_config: Any) -> int:
    import torch

    from physprior.data import TransitionDataset, make_windows, split_episodes
    from physprior.models import check_config_fields, make, model_class
    from physprior.training import train

    # Refuse a bad model name, config field or output folder before reading any data.
    check_config_fields(config.model, dict(config.model_config))
    # A pixel model's state is a latent of its own width: only dt, env and actions come
    # from the data.
    frame_style = getattr(model_class(config.model), "frame_style", None)
    data_fields = _PIXEL_DATA_FIELDS if frame_style else _DATA_FIELDS
    from_data = sorted(set(dict(config.model_config)) & set(data_fields))
    if from_data:
        raise ValueError(
            f"--set {', '.join(from_data)}: these come from the dataset's meta "
            f"({', '.join(data_fields)}) and cannot be set"
        )
    check_output_folder(config.out, "--out")
    dataset = TransitionDataset.load(config.data)
    try:
        train_set, val_set = split_episodes(
            dataset, test_fraction=config.val_fraction, seed=train_config.seed
        )
    except ValueError as err:  # the library names its own parameter, test_fraction
        raise ValueError(f"--val-fraction: {err}") from None
    seed = train_config.seed
    train_windows = make_windows(train_set, config.window, count=config.windows, seed=seed)
    val_windows = make_windows(val_set, config.window)
    torch.manual_seed(seed)
    try:
        fields = {k: v for k, v in dataset.model_fields().items() if k in data_fields}
        model = make(config.model, **fields, **dict(config.model_config))
        if config.ensemble is not None:
            if frame_style:
                raise ValueError(
                    f"--ensemble: {config.model} is a pixel model; ensembles hold state models"
                )
            torch.manual_seed(seed)  # member 0 is the model a plain run would train
            ensemble = make(
                "ensemble",
                member=config.model,
                size=config.ensemble,
                member_config=dict(config.model_config),
                **fields,
            )
    except (TypeError, ValueError) as err:  # most often a --set value
        raise type(err)(f"model config (--set or the dataset's dims): {err}") from None
    if getattr(model.config, "iso", False) and not train_config.iso:
        # SRNN carries its initial-state optimisation settings; the trainer runs them.
        train_config = dataclasses.replace(
            train_config,
            iso=True,
            iso_warmup_epochs=model.config.iso_warmup_epochs,  # type: ignore[attr-defined]
            iso_iterations=model.config.iso_iterations,  # type: ignore[attr-defined]
        )
    what, transform = "states", None
    if frame_style:
        # A pixel model learns from frames: each batch of windows is drawn with the
        # dataset's env as the model's frames (nothing is stored as images).
        import gymnasium as gym

        from physprior.data import FrameRenderer

        meta = dataset.meta
        if meta.env_id is None:
            raise ValueError(
                f"{config.data} records no env id; {config.model} draws its frames with the "
                "dataset's env"
            )
        env = gym.make(meta.env_id, **dict(meta.extra.get("env_kwargs") or {}))
        transform = FrameRenderer(env, frame_style)
        what = f"{frame_style} frames"
    if config.ensemble is not None:
        return _train_ensemble(config, ensemble, train_windows, val_windows, train_config)
    print(
        f"training {config.model} on {len(train_windows)} windows of {config.window} {what} "
        f"({len(val_windows)} validation windows) from {config.data}"
    )
    result = train(
        model,
        train_windows,
        val_windows,
        train_config,
        config.out,
        resume=config.resume,
        transform=transform,
    )
    best = f"{result.best_val_loss:.4g}" if result.best_val_loss is not None else "n/a"
    print(
        f"done: {result.epochs_done} epochs, best validation loss {best} "
        f"(epoch {result.best_epoch}); model in {result.out_dir}"
    )
    return 0


def _train_ensemble(
    config: TrainCommandConfig,
    ensemble: Any,
    train_windows: Any,
    val_windows: Any,
    train_config: Any,
) -> int:
    """`physprior train --ensemble K`: every member on its own bootstrap resample."""
    from physprior.training import train_ensemble

    print(
        f"training an ensemble of {config.ensemble} {config.model} models, each on a bootstrap "
        f"resample of {len(train_windows)} windows of {config.window} states "
        f"({len(val_windows)} validation windows) from {config.data}"
    )
    result = train_ensemble(
        ensemble, train_windows, val_windows, train_config, config.out, resume=config.resume
    )
    for k, member in enumerate(result.members):
        best = f"{member.best_val_loss:.4g}" if member.best_val_loss is not None else "n/a"
        print(f"  member {k}: {member.epochs_done} epochs, best validation loss {best}")
    print(f"done: the ensemble is in {result.out_dir}")
    return 0


def _cmd_eval(config: EvalCommandConfig) -> int:
    import gymnasium as gym
    import numpy as np

    from physprior.data import TransitionDataset, make_windows
    from physprior.evaluation import evaluate
    from physprior.training import check_compatible, fit_initial_state, load_model

    if config.horizon < 1:
        raise ValueError(f"--horizon must be at least 1, got {config.horizon}")
    if config.json:
        check_output_file(config.json, "--json")
    model = load_model(config.model_dir)
    dataset = TransitionDataset.load(config.data)
    check_compatible(model, dataset)
    observed = config.observed_steps
    if observed is None:
        observed = model.config.iso_test_steps if getattr(model.config, "iso", False) else 1  # type: ignore[attr-defined]
    windows = make_windows(dataset, config.horizon + observed)
    if len(windows) > config.windows:
        rng = np.random.default_rng(config.seed)
        windows = windows.take(np.sort(rng.choice(len(windows), config.windows, replace=False)))
    states, actions = windows.to_torch(model.dtype)
    energy = None
    env_id = dataset.meta.env_id
    if env_id in gym.registry:
        energy = getattr(gym.make(env_id).unwrapped, "energy", None)
    result = evaluate(
        model,
        states,
        actions,
        energy=energy,
        observed_steps=observed,
        fit_initial_state=fit_initial_state,
    )
    print(f"{len(windows)} windows, horizon {result.horizon} ({env_id})")
    for name, summary in result.metrics.items():
        print(f"  {name:<18} {summary.mean:.4g} +- {summary.std:.3g}")
    if config.json:
        payload = {"config": asdict(config), "model": str(config.model_dir), **result.to_dict()}
        write_results_json(config.json, payload)
    return 0


class _Parser(argparse.ArgumentParser):
    """argparse with its errors on one line ("physprior train: error: argument --windows:
    ...; see --help"), like every other error of the command, instead of usage + message."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}; see `{self.prog} --help`\n")


def _int_at_least(least: int) -> Callable[[str], int]:
    """An argparse type: an integer >= `least`, or an error naming the bound and the value."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be an integer, got {text!r}") from None
        if value < least:
            raise argparse.ArgumentTypeError(f"must be an integer >= {least}, got {value}")
        return value

    parse.__name__ = f"integer >= {least}"  # what argparse names in its own messages
    return parse


def _finite_float(
    low: float, high: float = math.inf, *, open_low: bool = False
) -> Callable[[str], float]:
    """An argparse type: a finite number in [low, high] (or (low, high] when `open_low`)."""

    def parse(text: str) -> float:
        try:
            value = float(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"must be a number, got {text!r}") from None
        inside = (value > low if open_low else value >= low) and value <= high
        if not math.isfinite(value) or not inside:
            bracket = "(" if open_low else "["
            upper = "inf)" if high == math.inf else f"{high:g}]"
            raise argparse.ArgumentTypeError(
                f"must be a finite number in {bracket}{low:g}, {upper}, got {text}"
            )
        return value

    parse.__name__ = "number"
    return parse


_COUNT = _int_at_least(1)
_SEED = _int_at_least(0)
_SEED_HELP = "random seed, an integer >= 0 (default: %(default)s)"
_NO_PROGRESS = "no progress bars (also: TQDM_DISABLE=1; bars are never drawn into a pipe)"


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="physprior", description="Physics priors for model-based reinforcement learning."
    )
    parser.add_argument("--version", action="version", version=f"physprior {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    envs = sub.add_parser("envs", help="list the registered environments and their layouts")
    envs.add_argument("--json", help="also write the table as JSON to this file")
    envs.add_argument(
        "--rollout",
        type=_COUNT,
        metavar="STEPS",
        help="also run a zero-action rollout of each env and report its energy drift",
    )
    envs.add_argument("--seed", type=_SEED, default=0, help="reset seed of the rollouts")
    envs.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)

    from physprior.demo import DemoConfig

    demo = sub.add_parser(
        "demo", help="the main job: SAC data, four models, comparison with MuJoCo, MPC, report"
    )
    demo.add_argument("--out", default=DemoConfig.out, help="output folder (default: %(default)s)")
    demo.add_argument(
        "--env", default=DemoConfig.env_id, help="full-state MuJoCo env id (default: %(default)s)"
    )
    demo.add_argument(
        "--steps",
        type=_COUNT,
        default=DemoConfig.steps,
        help="SAC env steps (default: %(default)s)",
    )
    demo.add_argument(
        "--epochs",
        type=_COUNT,
        default=DemoConfig.epochs,
        help="epochs per model (default: %(default)s)",
    )
    demo.add_argument(
        "--models",
        nargs="+",
        default=list(DemoConfig.models),
        help="models to compare (default: %(default)s)",
    )
    demo.add_argument(
        "--horizon",
        type=_COUNT,
        default=DemoConfig.horizon,
        help="open-loop test horizon in steps (default: %(default)s)",
    )
    demo.add_argument(
        "--mpc-steps",
        type=_COUNT,
        default=DemoConfig.mpc_steps,
        help="MPC steps per episode (default: %(default)s)",
    )
    demo.add_argument("--seed", type=_SEED, default=DemoConfig.seed, help=_SEED_HELP)
    demo.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)

    col = sub.add_parser("collect", help="record an agent's transitions in an env (.npz)")
    col.add_argument("env_id", help="registered environment id")
    col.add_argument(
        "--agent",
        choices=["sac", "random"],
        default="sac",
        help="sac: a Stable-Baselines3 SAC agent learning as it acts; random: uniform actions",
    )
    col.add_argument("--steps", type=_COUNT, required=True, help="env steps to record")
    col.add_argument("--seed", type=_SEED, default=0, help=_SEED_HELP)
    col.add_argument("--out", required=True, help="output dataset (.npz); SAC's files go beside it")
    col.add_argument(
        "--flush-every",
        type=_COUNT,
        default=10_000,
        help="steps between file writes (default: %(default)s)",
    )
    col.add_argument("--resume", action="store_true", help="continue the collection in --out")
    col.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)

    plan = sub.add_parser("plan", help="MPC with a trained model on the real env")
    plan.add_argument("env_id", help="the real environment")
    plan.add_argument("--model", required=True, help="checkpoint or training run folder")
    plan.add_argument(
        "--planner",
        choices=["cem", "mppi", "icem"],
        default="cem",
        help="cross-entropy method, MPPI or iCEM (Pinneri et al. 2020)",
    )
    plan.add_argument(
        "--episodes", type=_COUNT, default=10, help="real episodes to score (default: %(default)s)"
    )
    plan.add_argument("--json", help="write the results to this file")
    plan.add_argument("--seed", type=_SEED, default=0, help=_SEED_HELP)
    plan.add_argument(
        "--max-episode-steps", type=_COUNT, help="cap each episode at this many steps"
    )
    plan.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="planner settings, e.g. --set horizon=30 population=400 iterations=5",
    )
    plan.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)

    mbrl = sub.add_parser(
        "mbrl", help="a model-based RL loop (PETS or MBPO) learning on the real env"
    )
    mbrl.add_argument("env_id", help="the real environment")
    mbrl.add_argument(
        "--algo",
        choices=["pets", "mbpo"],
        default="pets",
        help="pets: plan through the ensemble; mbpo: SAC on branched model rollouts (default: "
        "pets)",
    )
    mbrl.add_argument("--model", default="mlp", help="member model (default: %(default)s)")
    mbrl.add_argument(
        "--ensemble", type=_int_at_least(1), default=5, metavar="K", help="members (default: 5)"
    )
    mbrl.add_argument("--steps", type=_COUNT, required=True, help="real env steps")
    mbrl.add_argument("--out", required=True, help="run folder")
    mbrl.add_argument(
        "--planner", choices=["cem", "mppi", "icem"], default=None, help="PETS's (default: cem)"
    )
    mbrl.add_argument("--seed", type=_SEED, default=0, help=_SEED_HELP)
    mbrl.add_argument("--resume", action="store_true", help="continue the run in --out")
    mbrl.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    mbrl.add_argument(
        "--set", nargs="+", default=[], metavar="KEY=VALUE", help="member config fields"
    )
    mbrl.add_argument(
        "--plan",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="planner settings over PETS's, e.g. --plan population=100 particles=5",
    )
    mbrl.add_argument(
        "--loop",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="loop settings (PETSConfig or MBPOConfig fields), e.g. --loop initial_steps=500 "
        "model_epochs=10 (pets) or --loop learning_starts=1000 rollout_length=5 (mbpo)",
    )

    bench = sub.add_parser("bench", help="run a benchmark suite that reproduces a paper's results")
    bench.add_argument("suite", help="suite name, e.g. srnn-threebody or hnn-toy")
    bench.add_argument(
        "--scale",
        choices=["smoke", "default", "paper"],
        default="smoke",
        help="smoke: minutes; default: about 30 minutes on 2 cores; paper: the full protocol",
    )
    bench.add_argument(
        "--backend",
        choices=["local", "ray"],
        default="local",
        help="where jobs run (default: local processes)",
    )
    bench.add_argument("--seeds", type=_COUNT, default=1, help="seeds 0..N-1 per (model, env)")
    bench.add_argument("--out", required=True, help="output folder (finished jobs are kept)")
    bench.add_argument("--address", help="Ray cluster to join (default: start a local one)")
    bench.add_argument(
        "--workers", type=_COUNT, default=1, help="local backend: jobs run at once (default: 1)"
    )
    bench.add_argument(
        "--rows",
        nargs="+",
        metavar="ROW",
        help="run only these rows (labels as in the report, quoted); the report shows every "
        "finished row",
    )
    bench.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)

    gen = sub.add_parser("generate", help="generate trajectories of a physics env (.npz)")
    gen.add_argument("env_id", help="registered environment id")
    gen.add_argument("--trajectories", type=_COUNT, required=True, help="number of trajectories")
    gen.add_argument(
        "--length", type=_int_at_least(2), required=True, help="states per trajectory (>= 2)"
    )
    gen.add_argument("--out", required=True, help="output dataset (.npz)")
    gen.add_argument(
        "--actions",
        choices=["zero", "random"],
        default="zero",
        help="zero: the autonomous system of the papers; random: uniform actions",
    )
    gen.add_argument("--seed", type=_SEED, default=0, help=_SEED_HELP)
    gen.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)

    tr = sub.add_parser("train", help="train a model on a transitions dataset")
    tr.add_argument("data", help="transitions dataset (.npz)")
    tr.add_argument("--model", required=True, help="node, node-so, hnn, srnn, mlp, rnn or lstm")
    tr.add_argument("--out", required=True, help="run folder")
    tr.add_argument("--epochs", type=_COUNT, default=256, help="epochs (default: %(default)s)")
    tr.add_argument("--resume", action="store_true", help="continue the run in --out")
    tr.add_argument(
        "--ensemble",
        type=_int_at_least(1),
        metavar="K",
        help="train K members, each on a bootstrap resample of the windows (PETS's "
        "ensemble), into --out/member-<k>; the ensemble is saved as one model",
    )
    tr.add_argument(
        "--window", type=_int_at_least(2), default=3, help="states per window (default: 3)"
    )
    tr.add_argument(
        "--windows", type=_COUNT, help="sample this many training windows (default: all)"
    )
    tr.add_argument(
        "--val-fraction",
        type=_finite_float(0, 1, open_low=True),
        default=0.1,
        help="fraction of episodes held out for validation, in (0, 1] (default: %(default)s)",
    )
    tr.add_argument(
        "--batch-size",
        type=_COUNT,
        default=200,
        help="windows per Adam step (default: %(default)s)",
    )
    # 1e-3 and clipping at 1: at these defaults every model learns within a short run (20
    # epochs on 3,000 SpringChain transitions; at 2e-4 without clipping the HNN and the SRNN
    # did worse than predicting no change). decon-hnn's 2e-4 is for its 51,200-step protocol.
    tr.add_argument(
        "--lr",
        type=_finite_float(0, open_low=True),
        default=1e-3,
        help="peak learning rate (default: 1e-3)",
    )
    tr.add_argument(
        "--lr-min",
        type=_finite_float(0),
        default=1e-6,
        help="final learning rate of the cosine schedule, floor of the exponential one "
        "(default: %(default)s)",
    )
    tr.add_argument(
        "--weight-decay",
        type=_finite_float(0),
        default=1e-4,
        help="AdamW weight decay (default: %(default)s)",
    )
    tr.add_argument(
        "--schedule",
        choices=["cosine", "plateau", "constant", "exponential"],
        default="cosine",
        help="learning-rate schedule (plateau: ReduceLROnPlateau on the validation loss; "
        "exponential: times --lr-decay each epoch, down to --lr-min)",
    )
    tr.add_argument(
        "--lr-decay",
        type=_finite_float(0, 1, open_low=True),
        default=0.99,
        help="factor per epoch of the exponential schedule, in (0, 1] (default: %(default)s)",
    )
    tr.add_argument(
        "--loss", choices=["l2", "l1"], default="l2", help="state error norm (default: l2)"
    )
    tr.add_argument(
        "--grad-clip",
        type=_finite_float(0),
        default=1.0,
        help="clip the gradient norm to this (default: 1, as decon-hnn's authors; 0: never)",
    )
    tr.add_argument(
        "--early-stopping",
        type=_COUNT,
        metavar="EPOCHS",
        help="stop after this many epochs without a better validation loss",
    )
    tr.add_argument(
        "--checkpoint-every",
        type=_COUNT,
        default=1,
        metavar="EPOCHS",
        help="write the resumable checkpoint every this many epochs (default: %(default)s; "
        "a kill repeats at most the epochs since it)",
    )
    tr.add_argument("--iso", action="store_true", help="initial-state optimisation (SRNN)")
    tr.add_argument(
        "--iso-method",
        choices=["lbfgs", "joint"],
        default="lbfgs",
        help="lbfgs: SRNN's L-BFGS rounds with the model frozen; joint: the initial states "
        "are parameters stepped with the model's (VIN) (default: %(default)s)",
    )
    tr.add_argument(
        "--iso-warmup-epochs",
        type=_int_at_least(0),
        default=100,
        help="epochs before ISO starts (default: %(default)s)",
    )
    tr.add_argument(
        "--dtype",
        choices=["float32", "float64"],
        default="float32",
        help="floating-point type of the model (default: float32)",
    )
    tr.add_argument("--seed", type=_SEED, default=0, help=_SEED_HELP)
    tr.add_argument("--no-progress", action="store_true", help=_NO_PROGRESS)
    tr.add_argument(
        "--set",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="model config fields, e.g. --set hidden=128 substeps=8 integrator=leapfrog",
    )

    ev = sub.add_parser("eval", help="score a trained model's rollouts on a dataset")
    ev.add_argument("model_dir", help="checkpoint or training run folder")
    ev.add_argument("data", help="transitions dataset (.npz)")
    ev.add_argument("--horizon", type=_COUNT, required=True, help="rollout length in steps")
    ev.add_argument("--json", help="write the results to this file")
    ev.add_argument(
        "--windows",
        type=_COUNT,
        default=200,
        help="at most this many test windows (default: %(default)s)",
    )
    ev.add_argument(
        "--observed-steps", type=_COUNT, help="fit z0 to K observed steps first (default: SRNN 10)"
    )
    ev.add_argument("--seed", type=_SEED, default=0, help="seed of the window draw (default: 0)")
    return parser


# How each long command continues after Ctrl-C (each saves its progress atomically as it goes).
_RESUME_HINTS = {
    "bench": "; finished jobs are saved, the same command resumes",
    "demo": "; finished stages are saved, the same command resumes",
    "train": "; add --resume to the same command to continue from the last checkpoint",
    "collect": "; add --resume to the same command to continue from the last flush",
    "mbrl": "; add --resume to the same command to continue from the last checkpoint",
}


def _one_line_warning(
    message: Warning | str, category: type[Warning], *_: object, **__: object
) -> str:
    """Warnings on the command line as one line each ("RuntimeWarning: ..."), without the
    source file and line Python prints by default."""
    return f"{category.__name__}: {message}\n"


def _describe_os_error(err: OSError) -> str:
    """One line for a file-system error: the path(s) and the reason, or the message itself."""
    if err.filename is None:
        return str(err)
    where = repr(str(err.filename))
    if err.filename2 is not None:
        where += f" -> {str(err.filename2)!r}"
    return f"{where}: {err.strerror or err}"


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `physprior` command; returns the exit status."""
    args = build_parser().parse_args(argv)
    before = warnings.formatwarning
    warnings.formatwarning = _one_line_warning
    try:
        return _dispatch(args)
    finally:
        warnings.formatwarning = before


def _dispatch(args: argparse.Namespace) -> int:
    """Run the parsed command; a mistake or an interrupt becomes one line and an exit status."""
    try:
        if args.command == "envs":
            return _cmd_envs(
                EnvsConfig(
                    json=args.json,
                    rollout=args.rollout,
                    seed=args.seed,
                    progress=not args.no_progress,
                )
            )
        if args.command == "demo":
            from physprior.demo import DemoConfig

            return _cmd_demo(
                DemoConfig(
                    out=args.out,
                    env_id=args.env,
                    steps=args.steps,
                    epochs=args.epochs,
                    models=tuple(args.models),
                    horizon=args.horizon,
                    mpc_steps=args.mpc_steps,
                    seed=args.seed,
                    progress=not args.no_progress,
                )
            )
        if args.command == "collect":
            return _cmd_collect(
                CollectCommandConfig(
                    env_id=args.env_id,
                    out=args.out,
                    steps=args.steps,
                    agent=args.agent,
                    seed=args.seed,
                    flush_every=args.flush_every,
                    resume=args.resume,
                    progress=not args.no_progress,
                )
            )
        if args.command == "plan":
            return _cmd_plan(
                PlanCommandConfig(
                    env_id=args.env_id,
                    model_dir=args.model,
                    planner=args.planner,
                    episodes=args.episodes,
                    json=args.json,
                    seed=args.seed,
                    max_episode_steps=args.max_episode_steps,
                    planner_config=_parse_model_config(args.set),
                    progress=not args.no_progress,
                )
            )
        if args.command == "mbrl":
            return _cmd_mbrl(
                MBRLCommandConfig(
                    env_id=args.env_id,
                    out=args.out,
                    steps=args.steps,
                    algo=args.algo,
                    model=args.model,
                    ensemble=args.ensemble,
                    planner=args.planner,
                    seed=args.seed,
                    model_config=_parse_model_config(args.set),
                    planner_config=_parse_model_config(args.plan),
                    loop_config=_parse_model_config(args.loop),
                    resume=args.resume,
                    progress=not args.no_progress,
                )
            )
        if args.command == "bench":
            return _cmd_bench(
                BenchCommandConfig(
                    suite=args.suite,
                    out=args.out,
                    scale=args.scale,
                    backend=args.backend,
                    seeds=args.seeds,
                    address=args.address,
                    progress=not args.no_progress,
                    workers=args.workers,
                    rows=None if args.rows is None else tuple(args.rows),
                )
            )
        if args.command == "generate":
            return _cmd_generate(
                GenerateConfig(
                    env_id=args.env_id,
                    trajectories=args.trajectories,
                    length=args.length,
                    out=args.out,
                    actions=args.actions,
                    seed=args.seed,
                    progress=not args.no_progress,
                )
            )
        if args.command == "train":
            from physprior.training import TrainConfig

            train_config = TrainConfig(
                epochs=args.epochs,
                batch_size=args.batch_size,
                lr=args.lr,
                lr_min=min(args.lr_min, args.lr),
                weight_decay=args.weight_decay,
                schedule=args.schedule,
                lr_decay=args.lr_decay,
                loss=args.loss,
                grad_clip=args.grad_clip or None,
                early_stopping=args.early_stopping,
                checkpoint_every=args.checkpoint_every,
                iso=args.iso,
                iso_method=args.iso_method,
                iso_warmup_epochs=args.iso_warmup_epochs,
                dtype=args.dtype,
                seed=args.seed,
                progress=not args.no_progress,
            )
            command = TrainCommandConfig(
                data=args.data,
                model=args.model,
                out=args.out,
                window=args.window,
                windows=args.windows,
                val_fraction=args.val_fraction,
                model_config=_parse_model_config(args.set),
                resume=args.resume,
                ensemble=args.ensemble,
            )
            return _cmd_train(command, train_config)
        if args.command == "eval":
            return _cmd_eval(
                EvalCommandConfig(
                    model_dir=args.model_dir,
                    data=args.data,
                    horizon=args.horizon,
                    json=args.json,
                    windows=args.windows,
                    observed_steps=args.observed_steps,
                    seed=args.seed,
                )
            )
    except (ValueError, TypeError, RuntimeError) as err:
        print(f"physprior {args.command}: error: {err}", file=sys.stderr)
        return 2
    except OSError as err:  # the file system: a missing input, a read-only folder, a full disk
        print(f"physprior {args.command}: error: {_describe_os_error(err)}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        hint = _RESUME_HINTS.get(args.command, "")
        print(f"physprior {args.command}: interrupted{hint}", file=sys.stderr)
        return 130
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse guarantees one


if __name__ == "__main__":
    sys.exit(main())
