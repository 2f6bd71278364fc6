"""The main job, `physprior demo`: data, models, open-loop comparison and MPC, end to end.

On a full-state MuJoCo env (HalfCheetahFull by default) the demo

1. **collects** data with a Stable-Baselines3 SAC agent that learns as it acts
   (`DIR/data.npz`, every transition, episode ids);
2. **splits** the episodes into train, validation and test (never inside an episode) and
   **trains** `node`, `node-so`, `hnn` and `mlp` on 3-state windows, decon-hnn's protocol at
   reduced size (`DIR/models/<name>/`);
3. **compares** each model's open-loop rollouts with MuJoCo's on held-out test windows: the
   relative state error against the horizon;
4. **plans** with each model (CEM model-predictive control) for one episode of the real env,
   next to a random policy and the SAC agent that collected the data;
5. writes `DIR/report.md` with the tables and three PNG plots, and `DIR/results.json`.

Like `cli.py` it wires the library together (data, models, training, evaluation, the learned
env and the agents); nothing else imports it. Every stage writes its outputs atomically and a
re-run with the same `--out` picks up where a killed run stopped: the collection resumes from
its last flush, each model's training from its last epoch's checkpoint, and finished MPC
episodes are read back from their JSON files.
"""

from __future__ import annotations

import dataclasses
import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from physprior._io import atomic_write_text, check_output_folder, output_lock

__all__ = ["DEMO_MODELS", "DemoConfig", "run_demo"]

#: The models the demo compares, with decon-hnn's MuJoCo settings (2 x 128 tanh networks,
#: 8 Euler substeps per transition; HNN in the mechanical form with learned dissipation,
#: the only form defined on [q, v] data).
DEMO_MODELS: dict[str, dict[str, Any]] = {
    "node": {"integrator": "euler", "substeps": 8},
    "node-so": {},
    "hnn": {"form": "mechanical", "dissipation": True, "integrator": "euler", "substeps": 8},
    "mlp": {},
}


@dataclass(frozen=True)
class DemoConfig:
    """`physprior demo`: the main job. The defaults finish in about 10 minutes on 2 cores."""

    out: str = "runs/demo"
    """Output folder: data, models, plots, `report.md`, `results.json`."""
    env_id: str = "physprior/HalfCheetahFull-v0"
    """A full-state MuJoCo env (`[qpos, qvel]` observations)."""
    steps: int = 8_000
    """Env steps SAC takes (and that are recorded); HalfCheetah episodes are 1,000 steps."""
    models: tuple[str, ...] = tuple(DEMO_MODELS)
    """Models to train and compare (keys of `DEMO_MODELS`)."""
    epochs: int = 20
    """Training epochs per model (cosine schedule)."""
    train_windows: int = 6_000
    """3-state training windows sampled from the training episodes."""
    lr: float = 1e-3
    """Peak learning rate (decon-hnn's 2e-4 is for 256 epochs; this run is shorter)."""
    horizon: int = 50
    """Open-loop test horizon in steps."""
    test_windows: int = 40
    """Test windows of `horizon + 1` states from the test episodes."""
    mpc_steps: int = 100
    """Real-env steps of each MPC episode."""
    mpc: dict[str, Any] = field(
        default_factory=lambda: {"horizon": 15, "population": 100, "iterations": 3, "elites": 10}
    )
    """CEM settings (see `physprior.agents.mpc.CEMConfig`). Smaller than the issue's
    benchmark setting (population 400, horizon 30, 5 iterations) so that planning with the
    HNN, whose every substep differentiates its energy network, fits the demo's budget."""
    seed: int = 0
    """Seed of everything: SAC, splits, windows, weights, planners."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self) -> None:
        for name in ("steps", "epochs", "train_windows", "horizon", "test_windows", "mpc_steps"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        unknown = [m for m in self.models if m not in DEMO_MODELS]
        if unknown or not self.models:
            shown = unknown or "(none given)"
            raise ValueError(f"unknown demo model(s) {shown}; valid: {', '.join(DEMO_MODELS)}")


def run_demo(config: DemoConfig) -> Path:
    """Run every stage of the demo (module docstring); return the path of `report.md`."""
    import gymnasium as gym

    import physprior  # noqa: F401  (registers the environments)

    if config.env_id not in gym.registry:
        raise ValueError(f"unknown environment id {config.env_id!r}; `physprior envs` lists them")
    out = check_output_folder(config.out, "out")
    with output_lock(out, "out", folder=True):
        return _run_stages(config, out)


def _run_stages(config: DemoConfig, out: Path) -> Path:
    """`run_demo` once its output folder is checked and locked."""
    from physprior.data import make_windows

    atomic_write_text(out / "config.json", json.dumps(asdict(config), indent=2) + "\n")
    timings: dict[str, float] = {}

    started = time.perf_counter()
    dataset = _collect(config, out)
    timings["collect"] = time.perf_counter() - started

    started = time.perf_counter()
    splits = _split(dataset, config)
    run_dirs = {name: _train(name, splits, config, out) for name in config.models}
    timings["train"] = time.perf_counter() - started

    started = time.perf_counter()
    comparison = _compare(run_dirs, splits["test"], config)
    timings["compare"] = time.perf_counter() - started

    started = time.perf_counter()
    returns = _plan(run_dirs, config, out)
    timings["plan"] = time.perf_counter() - started

    results = {
        "config": asdict(config),
        "data": {
            "rows": len(dataset),
            "episodes": {k: len(v.episode_ids) for k, v in splits.items()},
            "train_windows": min(config.train_windows, len(make_windows(splits["train"], 3))),
        },
        "open_loop": comparison["metrics"],
        "error_curves": comparison["curves"],
        "returns": returns,
        "seconds": timings,
    }
    atomic_write_text(out / "results.json", json.dumps(results, indent=2) + "\n")
    plots = _plots(comparison, returns, config, out)
    return atomic_write_text(out / "report.md", _report(results, plots, config))


# --------------------------------------------------------------------------------- stages
def _collect(config: DemoConfig, out: Path) -> Any:
    from physprior.agents.collect import CollectConfig, collect

    path = out / "data.npz"
    result = collect(
        CollectConfig(
            config.env_id,
            config.steps,
            str(path),
            agent="sac",
            seed=config.seed,
            flush_every=1_000,
            resume=True,
            progress=config.progress,
        )
    )
    return result.dataset


def _split(dataset: Any, config: DemoConfig) -> dict[str, Any]:
    from physprior.data import split_episodes

    n = len(dataset.episode_ids)
    if n < 3:
        raise ValueError(
            f"the demo needs at least 3 episodes (train, validation, test); {n} were recorded "
            "in --steps; raise it"
        )
    # One episode each for validation and test at the default size, more for larger runs.
    held_out = max(1, round(n / 8)) / n
    train, val, test = split_episodes(
        dataset, fractions=(1 - 2 * held_out, held_out, held_out), seed=config.seed
    )
    return {"train": train, "val": val, "test": test}


def _train(name: str, splits: dict[str, Any], config: DemoConfig, out: Path) -> Path:
    import torch

    from physprior.data import make_windows
    from physprior.models import make
    from physprior.training import TrainConfig, train

    train_set = splits["train"]
    windows = make_windows(train_set, 3)
    if len(windows) > config.train_windows:  # a random subset, as decon-hnn samples them
        chosen = np.random.default_rng(config.seed).choice(
            len(windows), config.train_windows, replace=False
        )
        windows = windows.take(np.sort(chosen))
    val_windows = make_windows(splits["val"], 3)
    torch.manual_seed(config.seed)
    model = make(
        name,
        **train_set.model_fields(),
        hidden=128,
        layers=2,
        **DEMO_MODELS[name],
    )
    train_config = TrainConfig(
        epochs=config.epochs,
        batch_size=200,
        lr=config.lr,
        lr_min=1e-6,
        weight_decay=1e-4,
        schedule="cosine",
        # decon-hnn's authors clip at norm 1 too. Without it the HNN's first steps at this
        # rate overshoot (a loss of 7 after one epoch) and it settles at a poor fit (0.71
        # against 0.09 with clipping, in the demo's default run).
        grad_clip=1.0,
        seed=config.seed,
        progress=config.progress,
    )
    run_dir = out / "models" / name
    resume = (run_dir / "checkpoint").exists()
    result = train(model, windows, val_windows, train_config, run_dir, resume=resume)
    return Path(result.out_dir)


def _compare(run_dirs: dict[str, Path], test_set: Any, config: DemoConfig) -> dict[str, Any]:
    from physprior.data import make_windows
    from physprior.evaluation import evaluate, predict
    from physprior.training import load_model

    windows = make_windows(test_set, config.horizon + 1)
    if len(windows) == 0:
        raise ValueError(
            f"the test episodes have no window of {config.horizon + 1} states; lower --horizon"
        )
    rng = np.random.default_rng(config.seed)
    if len(windows) > config.test_windows:
        windows = windows.take(
            np.sort(rng.choice(len(windows), config.test_windows, replace=False))
        )
    metrics: dict[str, Any] = {}
    curves: dict[str, list[float]] = {}
    trajectories: dict[str, np.ndarray] = {}
    true = None
    for name, run_dir in run_dirs.items():
        model = load_model(run_dir)
        states, actions = windows.to_torch(model.dtype)
        result = evaluate(model, states, actions)
        metrics[name] = {k: asdict(v) for k, v in result.metrics.items()}
        curves[name] = result.error_curve
        trajectories[name] = predict(model, states[:1], actions[:1])[0].numpy()
        true = states[0].numpy()
    return {"metrics": metrics, "curves": curves, "trajectories": trajectories, "true": true}


def _plan(run_dirs: dict[str, Path], config: DemoConfig, out: Path) -> dict[str, Any]:
    from physprior.agents.mpc import run_plan

    returns: dict[str, Any] = {}
    for name, run_dir in run_dirs.items():
        path = out / "plan" / f"{name}.json"
        if path.is_file():  # finished in an earlier, interrupted run
            result = json.loads(path.read_text())
        else:
            result = run_plan(
                config.env_id,
                run_dir,
                "cem",
                episodes=1,
                seed=config.seed,
                json_path=path,
                overrides=config.mpc,
                max_episode_steps=config.mpc_steps,
                progress=config.progress,
            )
        returns[f"CEM + {name}"] = {
            "returns": result["episode_returns"],
            "decision_ms": result["decision_ms_mean"],
        }
    from physprior.agents.collect import load_sac

    sac = load_sac(out / "data.npz")
    returns["SAC (collector)"] = {
        "returns": [_episode_return(config, lambda obs: sac.predict(obs, deterministic=True)[0])],
        "decision_ms": None,
    }
    returns["random policy"] = {"returns": [_episode_return(config, None)], "decision_ms": None}
    return returns


def _episode_return(config: DemoConfig, policy: Any) -> float:
    """The return of `policy(obs) -> action` (None: uniform random actions) over one episode
    of the real env capped at `mpc_steps`, reset with the demo's seed like the MPC episodes."""
    import gymnasium as gym

    env = gym.make(config.env_id, max_episode_steps=config.mpc_steps)
    env.action_space.seed(config.seed)
    obs, _ = env.reset(seed=config.seed)
    total, done = 0.0, False
    while not done:
        action = env.action_space.sample() if policy is None else policy(obs)
        obs, reward, terminated, truncated, _ = env.step(action)
        total += float(reward)
        done = terminated or truncated
    env.close()
    return total


# --------------------------------------------------------------------------------- outputs
def _plots(
    comparison: dict[str, Any], returns: dict[str, Any], config: DemoConfig, out: Path
) -> dict[str, str]:
    import gymnasium as gym

    from physprior.evaluation.plots import plot_error_curves, plot_returns, plot_trajectories

    env: Any = gym.make(config.env_id).unwrapped
    dt, q_dim = float(env.dt), int(env.q_dim)
    env.close()
    # Height, pitch and forward velocity for HalfCheetah-like bodies; the first coordinates
    # for anything else.
    dims = [1, 2, q_dim] if q_dim >= 3 else list(range(min(4, 2 * q_dim)))
    labels = [f"q[{i}]" for i in range(q_dim)] + [f"v[{i}]" for i in range(q_dim)]
    paths = {
        "error": plot_error_curves(
            comparison["curves"],
            out / "rollout_error.png",
            dt=dt,
            title=f"Open-loop error against MuJoCo ({config.env_id})",
        ),
        "trajectory": plot_trajectories(
            comparison["true"],
            comparison["trajectories"],
            out / "trajectory.png",
            dims=dims,
            labels=labels,
            dt=dt,
            title="One test window: MuJoCo (black) and each model",
        ),
        "returns": plot_returns(
            {name: r["returns"] for name, r in returns.items()},
            out / "returns.png",
            title=f"Return over {config.mpc_steps} real steps",
        ),
    }
    return {k: p.name for k, p in paths.items()}


def _report(results: dict[str, Any], plots: dict[str, str], config: DemoConfig) -> str:
    data = results["data"]
    episodes = data["episodes"]
    lines = [
        "# physprior demo",
        "",
        f"Environment `{config.env_id}`; {data['rows']} transitions recorded from a SAC agent "
        f"learning as it acted (episodes: {episodes['train']} train, {episodes['val']} "
        f"validation, {episodes['test']} test). Each model (2 x 128 tanh, decon-hnn's MuJoCo "
        f"setup) trained {config.epochs} epochs on {data['train_windows']} windows of 3 states, "
        "gradients clipped at norm 1.",
        "",
        f"## Open-loop rollouts against MuJoCo ({config.horizon} steps)",
        "",
        "Relative state error `||z_hat - z|| / (||z_hat|| + ||z||)`: its geometric mean over the "
        "horizon (decon-hnn's rollout error) and at the last step; L2 position error averaged "
        f"over the horizon. Mean (std) over {config.test_windows} held-out test windows.",
        "",
        "| model | rollout error | error at last step | position error |",
        "|---|---|---|---|",
    ]
    for name, m in results["open_loop"].items():
        final = results["error_curves"][name][-1]
        lines.append(
            f"| {name} | {_ms(m['rollout_error'])} | {final:.3g} | {_ms(m['position_error'])} |"
        )
    lines += [
        "",
        f"![rollout error]({plots['error']})",
        "",
        f"![trajectory]({plots['trajectory']})",
        "",
        f"## Model-predictive control ({config.mpc_steps} real steps)",
        "",
        "CEM plans with each model (settings "
        + ", ".join(f"{k} {v}" for k, v in config.mpc.items())
        + ") and acts in the real env; one episode each.",
        "",
        "| agent | return | decision time (ms) |",
        "|---|---|---|",
    ]
    for name, r in results["returns"].items():
        ms = "" if r["decision_ms"] is None else f"{r['decision_ms']:.1f}"
        lines.append(f"| {name} | {np.mean(r['returns']):.1f} | {ms} |")
    lines += [
        "",
        f"![returns]({plots['returns']})",
        "",
        *_papers_section(results, config),
        "## Wall time",
        "",
        "| stage | seconds |",
        "|---|---|",
        *(f"| {k} | {v:.0f} |" for k, v in results["seconds"].items()),
        "",
    ]
    return "\n".join(lines)


def _papers_section(results: dict[str, Any], config: DemoConfig) -> list[str]:
    """What decon-hnn says about these models on MuJoCo, what this run shows, and what the
    demo's budget leaves out."""
    errors = {name: m["rollout_error"]["mean"] for name, m in results["open_loop"].items()}
    ranked = sorted(errors, key=errors.__getitem__)
    lines = [
        "## What the paper says, and this run",
        "",
        "decon-hnn (Figure 7) finds on MuJoCo bodies that second-order structure gives the "
        "lowest rollout error (NODE+SO), a plain NODE comes next and an HNN is worst. Its HNN "
        "is a mixture model whose position rate is the *standardised* velocity; physprior's "
        "`hnn` here is the mechanical form, which keeps `dq/dt = v` exactly, so it need not "
        "be worst (`physprior bench decon-mujoco` runs both).",
        "",
        "- Ranking in this run (rollout error, lowest first): " + ", ".join(ranked) + ".",
    ]
    if "node" in errors and "node-so" in errors:
        helps = errors["node-so"] < errors["node"]
        lines.append(
            f"- Second-order structure helps (NODE+SO below NODE): **{'yes' if helps else 'no'}** "
            f"({errors['node-so']:.3g} against {errors['node']:.3g})."
        )
    windows = results["data"]["train_windows"]
    steps_per_model = config.epochs * -(-windows // 200)
    lines += [
        f"- Budget: SAC ran {results['data']['rows']:,} steps (the paper's agents ran to "
        f"convergence), each model took {steps_per_model:,} Adam steps on {windows:,} windows "
        "(the paper: 51,200 steps on 40,000 windows), rollouts are "
        f"{config.horizon} steps (the paper: 200). At this budget the models are far from "
        "converged and the numbers vary between seeds; `physprior bench decon-mujoco --scale "
        "paper` runs the paper's protocol.",
        "",
    ]
    return lines


def _ms(summary: dict[str, float]) -> str:
    return f"{summary['mean']:.3g} ({summary['std']:.2g})"


def config_from_dict(raw: dict[str, Any]) -> DemoConfig:
    """A `DemoConfig` from a JSON-like dict (unknown keys refused with their names)."""
    names = {f.name for f in dataclasses.fields(DemoConfig)}
    unknown = sorted(set(raw) - names)
    if unknown:
        raise TypeError(f"unknown demo setting(s) {unknown}; valid: {sorted(names)}")
    if "models" in raw:
        raw = {**raw, "models": tuple(raw["models"])}
    return DemoConfig(**raw)
