"""A quick look at every registered environment: its contract and a zero-action rollout.

This backs `physprior envs` and, for now, `physprior demo`: it checks that each environment
builds, reports its layout, and measures how well the ground truth conserves energy.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from typing import Any

import gymnasium as gym
import numpy as np


@dataclass(frozen=True)
class EnvInfo:
    """The contract attributes of one environment."""

    env_id: str
    state_layout: str
    q_dim: int
    obs_dim: int
    action_dim: int
    dt: float
    max_episode_steps: int | None
    has_energy: bool


@dataclass(frozen=True)
class RolloutSurvey:
    """One zero-action rollout of an environment."""

    env: EnvInfo
    steps: int
    episode_return: float
    #: max_t |H(z_t) - H(z_0)| / |H(z_0)|, or NaN for systems without a true energy.
    max_relative_energy_drift: float
    steps_per_second: float

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe(env_id: str) -> EnvInfo:
    """Build `env_id` and read its contract attributes."""
    env = gym.make(env_id)
    try:
        core = env.unwrapped
        return EnvInfo(
            env_id=env_id,
            state_layout=str(core.state_layout),  # type: ignore[attr-defined]
            q_dim=int(core.q_dim),  # type: ignore[attr-defined]
            obs_dim=int(env.observation_space.shape[0]),  # type: ignore[index]
            action_dim=int(env.action_space.shape[0]),  # type: ignore[index]
            dt=float(core.dt),  # type: ignore[attr-defined]
            max_episode_steps=env.spec.max_episode_steps if env.spec else None,
            has_energy=callable(getattr(core, "energy", None)),
        )
    finally:
        env.close()


def zero_action_rollout(env_id: str, steps: int, seed: int = 0) -> RolloutSurvey:
    """Run `steps` zero-action steps (fewer if the episode ends) and measure energy drift."""
    info = describe(env_id)
    env = gym.make(env_id)
    try:
        core = env.unwrapped
        obs, _ = env.reset(seed=seed)
        action = np.zeros(info.action_dim, dtype=np.float32)
        energy0 = float(core.energy(obs)) if info.has_energy else math.nan  # type: ignore[attr-defined]
        drift = 0.0 if info.has_energy else math.nan
        total = 0.0
        taken = 0
        start = time.perf_counter()
        for _ in range(steps):
            obs, reward, terminated, truncated, _ = env.step(action)
            total += float(reward)
            taken += 1
            if info.has_energy:
                energy = float(core.energy(obs))  # type: ignore[attr-defined]
                drift = max(drift, abs(energy - energy0) / abs(energy0))
            if terminated or truncated:
                break
        elapsed = time.perf_counter() - start
        return RolloutSurvey(
            env=info,
            steps=taken,
            episode_return=total,
            max_relative_energy_drift=drift,
            steps_per_second=taken / elapsed if elapsed > 0 else math.inf,
        )
    finally:
        env.close()
