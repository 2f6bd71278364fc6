"""The PETS loop: `run_pets` and `PETSConfig`, in a resumable run folder."""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch

from physprior._io import atomic_write_text, check_output_folder, output_lock
from physprior._progress import progress_bar
from physprior._validate import check_finite_rates, check_positive_ints, check_seed
from physprior.learned_env import ModelDynamics
from physprior.models import check_config_fields, make, model_class
from physprior.training import load_model, save_model
from physprior.training._folders import write_folder

from .._fit import derive_seed, fit_ensemble
from .._run_folder import (
    CHECKPOINT_DIR,
    CURVE_FILE,
    RESULTS_FILE,
    STATE_FILE,
    load_arrays,
    run_state,
)
from ..mpc._config import planner_config
from ..mpc._run import make_planner

__all__ = ["PETSConfig", "run_pets"]

_DIM_FIELDS = ("obs_dim", "action_dim", "q_dim", "state_layout", "dt", "env_id")
DATA_FILE = "data.npz"
MODEL_DIR = "model"


@dataclass(frozen=True)
class PETSConfig:
    """How PETS runs. The planner defaults are PETS's (CEM, population 500, horizon 30, 5
    iterations, 50 elites, TS-inf with 20 particles); the ensemble's 5 members are PETS's
    probabilistic MLPs unless `model` says otherwise (`model_kwargs["probabilistic"]`
    defaults to True for `mlp`, False for the physics models, whose noise scale is optional).
    """

    model: str = "mlp"
    """Member model name (`physprior.models.make`)."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Member config fields, e.g. `{"hidden": 200, "layers": 4}`; dims come from the env."""
    ensemble: int = 5
    """Members K."""
    planner: str = "cem"
    """`cem`, `icem` or `mppi`."""
    planner_kwargs: dict[str, Any] = field(default_factory=dict)
    """Planner fields over PETS's defaults (`planner_config`)."""
    initial_steps: int = 200
    """Real steps of uniform random actions (whole episodes) before the first fit."""
    model_epochs: int = 5
    """Passes over each member's resample per refit."""
    model_batch_size: int = 256
    """Windows per model optimiser step."""
    model_lr: float = 1e-3
    """AdamW learning rate of each refit."""
    model_weight_decay: float = 5e-5
    """AdamW weight decay (mbrl-lib's PETS value)."""
    max_episode_steps: int | None = None
    """Cap on a real episode's length; None: the env's own."""
    seed: int = 0
    """Seeds the members' initialisation, every episode's env reset, planner and fit."""

    def __post_init__(self) -> None:
        check_positive_ints(self, "ensemble", "initial_steps", "model_epochs", "model_batch_size")
        check_finite_rates(self, positive=("model_lr",), non_negative=("model_weight_decay",))
        check_positive_ints(self, "max_episode_steps", optional=True)
        check_seed(self)
        model_class(self.model)
        if not isinstance(self.model_kwargs, dict) or not isinstance(self.planner_kwargs, dict):
            raise TypeError("PETSConfig.model_kwargs and planner_kwargs must be dicts")
        fixed = sorted(set(self.model_kwargs) & set(_DIM_FIELDS))
        if fixed:
            raise ValueError(
                f"PETSConfig.model_kwargs may not set {', '.join(fixed)}: they come from the env"
            )
        check_config_fields(self.model, self.model_kwargs)
        self.planner_settings()  # unknown planner or field: ValueError now

    def member_config(self) -> dict[str, Any]:
        """The members' own fields: `model_kwargs`, probabilistic by default for `mlp`."""
        return {"probabilistic": self.model == "mlp"} | dict(self.model_kwargs)

    def planner_settings(self) -> Any:
        """The planner config: PETS's settings under `planner_kwargs`."""
        pets = {"population": 500, "horizon": 30, "iterations": 5, "propagation": "tsinf"}
        pets["particles"] = 20
        if self.planner in ("cem", "icem"):
            pets["elites"] = 50
        return planner_config(self.planner, pets | dict(self.planner_kwargs))

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def run_pets(
    env_id: str,
    config: PETSConfig,
    steps: int,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
) -> dict[str, Any]:
    """Run PETS on the real env `env_id` for `steps` real steps, writing the run folder `out`
    (module docstring); returns the results (`curve`: env steps and return of every episode,
    `decision_ms_mean`, `fit_seconds`, the config). `resume=True` continues a killed run;
    without it a folder that holds a run is refused."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive integer, got {steps!r}")
    if not isinstance(config, PETSConfig):
        raise TypeError(f"config must be a PETSConfig, got {type(config).__name__}")
    folder = check_output_folder(out, "out")
    env = gym.make(env_id, max_episode_steps=config.max_episode_steps)
    with output_lock(folder, "out", folder=True):
        state = run_state(folder, "PETS", env_id, config.to_dict(), steps, resume=resume)
        run = _Run(env, env_id, config, steps, folder, state)
        bar = progress_bar(total=steps, initial=run.steps, enabled=progress, unit="step",
                           desc=f"PETS {config.model} x{config.ensemble}")  # fmt: skip
        with bar:
            while run.steps < steps:
                before = run.steps
                run.episode()
                bar.update(run.steps - before)
                if run.curve:
                    bar.set_postfix(episode=len(run.curve), ret=f"{run.curve[-1][1]:.1f}")
        results = run.results()
        atomic_write_text(folder / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
        from physprior.evaluation.plots import plot_learning_curves

        label = f"PETS, {config.model} ensemble of {config.ensemble}"
        plot_learning_curves(
            {label: [([s for s, _ in run.curve], [r for _, r in run.curve])]},
            folder / CURVE_FILE,
            title=f"PETS on {env_id}",
        )
    env.close()
    return results


class _Run:
    """One PETS run's state: data, ensemble, curve; `episode()` advances it by one episode
    and checkpoints it."""

    def __init__(
        self,
        env: Any,
        env_id: str,
        config: PETSConfig,
        steps: int,
        folder: Path,
        state: dict[str, Any] | None,
    ) -> None:
        self.env, self.env_id, self.config, self.total, self.folder = (
            env,
            env_id,
            config,
            steps,
            folder,
        )
        base = env.unwrapped
        obs_dim = int(env.observation_space.shape[0])
        action_dim = int(env.action_space.shape[0])
        if state is None:
            torch.manual_seed(derive_seed(config.seed, 0, "init"))
            self.ensemble: Any = make(
                "ensemble",
                member=config.model,
                size=config.ensemble,
                obs_dim=obs_dim,
                action_dim=action_dim,
                q_dim=int(base.q_dim),
                state_layout=str(base.state_layout),
                dt=float(base.dt),
                env_id=env_id,
                member_config=config.member_config(),
            )
            self.data = {
                "obs": np.zeros((0, obs_dim)),
                "actions": np.zeros((0, action_dim)),
                "next_obs": np.zeros((0, obs_dim)),
            }
            self.curve: list[tuple[int, float]] = []
            self.cut_episode: tuple[int, float] | None = None
            self.decision_seconds, self.decisions, self.fit_seconds = 0.0, 0, 0.0
            self.fits = 0
        else:
            checkpoint = folder / CHECKPOINT_DIR
            self.ensemble = load_model(checkpoint / MODEL_DIR)
            self.data = load_arrays(checkpoint / DATA_FILE, ("obs", "actions", "next_obs"))
            self.curve = [(int(s), float(r)) for s, r in state["curve"]]
            cut = state.get("cut_episode")
            self.cut_episode = None if cut is None else (int(cut[0]), float(cut[1]))
            self.decision_seconds = float(state["decision_seconds"])
            self.decisions = int(state["decisions"])
            self.fit_seconds = float(state["fit_seconds"])
            self.fits = int(state["fits"])
        probabilistic = bool(config.member_config().get("probabilistic", False))
        self.dynamics = ModelDynamics(self.ensemble, env_id, sample=probabilistic)
        self.planner_config = config.planner_settings()

    @property
    def steps(self) -> int:
        return int(self.data["obs"].shape[0])

    def episode(self) -> None:
        """One real episode (random until `initial_steps`, else planned), then a refit and a
        checkpoint."""
        c, index = self.config, len(self.curve) + (self.cut_episode is not None)
        random_phase = self.steps < c.initial_steps
        obs, _ = self.env.reset(seed=derive_seed(c.seed, index, "env") % 2**31)
        rng = np.random.default_rng(derive_seed(c.seed, index, "random-actions"))
        planner = None
        if not random_phase:
            seeded = dataclasses.replace(
                self.planner_config, seed=derive_seed(c.seed, index, "planner") % 2**31
            )
            self.dynamics.seed(derive_seed(c.seed, index, "particles"))
            planner = make_planner(self.dynamics, seeded)
        rows: dict[str, list[np.ndarray]] = {"obs": [], "actions": [], "next_obs": []}
        total, done = 0.0, False
        low, high = self.env.action_space.low, self.env.action_space.high
        while not done and self.steps + len(rows["obs"]) < self.total:
            if planner is None:
                action = rng.uniform(low, high).astype(np.float32)
            else:
                start = time.perf_counter()
                action = planner.predict(obs)[0]
                self.decision_seconds += time.perf_counter() - start
                self.decisions += 1
            next_obs, reward, terminated, truncated, _ = self.env.step(action)
            rows["obs"].append(np.asarray(obs, float))
            rows["actions"].append(np.asarray(action, float))
            rows["next_obs"].append(np.asarray(next_obs, float))
            total += float(reward)
            done = bool(terminated or truncated)
            obs = next_obs
        for key, values in rows.items():
            self.data[key] = np.concatenate((self.data[key], np.asarray(values)))
        if done:
            self.curve.append((self.steps, total))
        else:  # the step budget cut it: not a finished episode, so not on the curve
            self.cut_episode = (len(rows["obs"]), total)
        if self.steps >= c.initial_steps:
            self._fit()
        self._checkpoint()

    def _fit(self) -> None:
        c = self.config
        start = time.perf_counter()
        states = torch.from_numpy(np.stack((self.data["obs"], self.data["next_obs"]), axis=1))
        actions = torch.from_numpy(self.data["actions"][:, None, :])
        fit_ensemble(
            self.ensemble,
            states,
            actions,
            epochs=c.model_epochs,
            batch_size=c.model_batch_size,
            lr=c.model_lr,
            weight_decay=c.model_weight_decay,
            seed=c.seed,
            index=self.fits,
        )
        self.fits += 1
        self.fit_seconds += time.perf_counter() - start

    def _checkpoint(self) -> None:
        """Data, ensemble and state as one folder swap: a kill leaves the previous episode's
        checkpoint or this one, never a mix."""
        state = {
            "env_id": self.env_id,
            "config": self.config.to_dict(),
            "total_steps": self.total,
            "curve": self.curve,
            "cut_episode": self.cut_episode,
            "steps": self.steps,
            "fits": self.fits,
            "decision_seconds": self.decision_seconds,
            "decisions": self.decisions,
            "fit_seconds": self.fit_seconds,
        }

        def fill(tmp: Path) -> None:
            data = self.data
            np.savez(
                tmp / DATA_FILE, obs=data["obs"], actions=data["actions"], next_obs=data["next_obs"]
            )
            save_model(self.ensemble, tmp / MODEL_DIR)
            (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

        write_folder(self.folder / CHECKPOINT_DIR, fill)

    def results(self) -> dict[str, Any]:
        return {
            "algo": "pets",
            "env_id": self.env_id,
            "config": self.config.to_dict(),
            "planner": self.planner_config.to_dict(),
            "steps": self.steps,
            "episodes": len(self.curve),
            "curve": {"steps": [s for s, _ in self.curve], "returns": [r for _, r in self.curve]},
            "cut_episode": None
            if self.cut_episode is None
            else {"steps": self.cut_episode[0], "return": self.cut_episode[1]},
            "decision_ms_mean": 1000 * self.decision_seconds / self.decisions
            if self.decisions
            else math.nan,
            "fit_seconds": self.fit_seconds,
        }
