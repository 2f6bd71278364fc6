"""`run_plan`: score a planner over a learned model on the real environment (`physprior plan`)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any, cast

import gymnasium as gym
import numpy as np

from ._config import CEMConfig, ICEMConfig, MPPIConfig, PlannerConfig, planner_config
from ._planners import CEMPlanner, ICEMPlanner, MPPIPlanner, Planner

__all__ = ["make_planner", "run_plan"]


def make_planner(dynamics: Any, config: PlannerConfig) -> Planner:
    """The planner that `config` configures (`CEMConfig` -> `CEMPlanner`, ...) over `dynamics`."""
    if isinstance(config, ICEMConfig):  # before CEMConfig: an ICEMConfig is one
        return ICEMPlanner(dynamics, config)
    if isinstance(config, CEMConfig):
        return CEMPlanner(dynamics, config)
    if isinstance(config, MPPIConfig):
        return MPPIPlanner(dynamics, config)
    raise TypeError(
        f"config must be a CEMConfig, ICEMConfig or MPPIConfig, got {type(config).__name__}"
    )


def run_plan(
    env_id: str,
    model_dir: str | os.PathLike[str],
    planner: str = "cem",
    episodes: int = 10,
    seed: int = 0,
    json_path: str | os.PathLike[str] | None = None,
    overrides: Mapping[str, Any] | None = None,
    *,
    max_episode_steps: int | None = None,
    device: str = "cpu",
    progress: bool = True,
) -> dict[str, Any]:
    """Evaluate MPC with the model in `model_dir` on the real env `env_id`; return the results.

    The planner (`"cem"` or `"mppi"`, its config the defaults with `overrides` applied; the
    planner's `seed` defaults to `seed`) plans over `ModelDynamics(model_dir, env_id)` and acts
    in `gym.make(env_id)` (optionally capped at `max_episode_steps`), wrapped in SB3's
    `Monitor` and `DummyVecEnv` and seeded with `seed`; SB3's `evaluate_policy` runs
    `episodes` episodes. If `json_path` is given the results are written there atomically.

    Returns a JSON-ready dict: `env_id`, `model_dir`, `planner`, `config` (every planner
    field), `episodes`, `seed`, `max_episode_steps`, `mean_return`, `std_return`,
    `episode_returns`, `episode_lengths`, `decisions` (planner calls) and `decision_ms_mean`
    (mean wall-clock milliseconds per action, model rollouts included).

    Bad arguments (unknown planner or config field, bad values, a model whose dims or
    recorded env do not match `env_id`) raise ValueError or TypeError with a one-line message
    before any episode runs.
    """
    from stable_baselines3.common.evaluation import evaluate_policy
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    import physprior  # noqa: F401  (registers the environments)
    from physprior._io import check_output_file, write_results_json
    from physprior._progress import progress_bar
    from physprior.learned_env import ModelDynamics

    _check_count("episodes", episodes, least=1)
    if json_path is not None:
        check_output_file(json_path, "json_path")
    _check_count("seed", seed, least=0)
    if max_episode_steps is not None:
        _check_count("max_episode_steps", max_episode_steps, least=1)
    raw = dict(overrides or {})
    raw.setdefault("seed", seed)
    config = planner_config(planner, raw)
    if env_id not in gym.registry:
        raise ValueError(f"unknown environment id {env_id!r}; `physprior envs` lists them")

    # ModelDynamics refuses a model whose dims, dt or recorded env do not fit env_id.
    dynamics = ModelDynamics(model_dir, env_id, device=device)
    agent = make_planner(dynamics, config)

    make_kwargs: dict[str, Any] = {}
    if max_episode_steps is not None:
        make_kwargs["max_episode_steps"] = max_episode_steps
    env = DummyVecEnv([lambda: Monitor(gym.make(env_id, **make_kwargs))])
    env.seed(seed)
    bar = progress_bar(
        total=episodes, desc=f"{planner} on {env_id}", unit="episode", enabled=progress
    )

    def tick(local: dict[str, Any], _globals: dict[str, Any]) -> None:
        if local.get("done"):
            bar.update(1)

    try:
        returns, lengths = cast(
            tuple[list[float], list[int]],
            evaluate_policy(
                agent,
                env,
                n_eval_episodes=episodes,
                deterministic=True,
                callback=tick,
                return_episode_rewards=True,
            ),
        )
    finally:
        bar.close()
        env.close()
        dynamics.close()

    episode_returns = [float(r) for r in returns]
    result: dict[str, Any] = {
        "env_id": env_id,
        "model_dir": str(Path(model_dir)),
        "planner": config.name,
        "config": config.to_dict(),
        "episodes": episodes,
        "seed": seed,
        "max_episode_steps": max_episode_steps,
        "device": device,
        "mean_return": float(np.mean(episode_returns)),
        "std_return": float(np.std(episode_returns)),
        "episode_returns": episode_returns,
        "episode_lengths": [int(n) for n in lengths],
        "decisions": agent.decisions,
        "decision_ms_mean": agent.mean_decision_ms,
    }
    if json_path is not None:
        write_results_json(json_path, result)
    return result


def _check_count(name: str, value: Any, *, least: int) -> None:
    """Refuse anything but an int (not a bool) >= `least`, naming the argument."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < least:
        raise ValueError(f"{name} must be an integer >= {least}, got {value!r}")
