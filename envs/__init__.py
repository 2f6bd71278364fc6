"""physprior's environments: Hamiltonian physics systems and full-state MuJoCo.

Importing this package (or `physprior`) registers every environment with Gymnasium under the
`physprior/` namespace, lazily (entry-point strings), each with a `TimeLimit`:

>>> import gymnasium as gym
>>> import physprior.envs
>>> env = gym.make("physprior/MassSpring-v0")
>>> obs, info = env.reset(seed=0)
>>> obs.shape
(2,)

This package depends only on numpy, scipy, gymnasium and mujoco, never on physprior's models,
so the ground truth stays independent of the code it judges.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvEntry:
    """One registered environment."""

    name: str
    entry_point: str
    max_episode_steps: int
    kwargs: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"physprior/{self.name}-v0"


PHYSICS_ENVS: tuple[EnvEntry, ...] = (
    EnvEntry("MassSpring", "physprior.envs.mass_spring:MassSpringEnv", 200),
    EnvEntry("Pendulum", "physprior.envs.pendulum:PendulumEnv", 200),
    EnvEntry("TwoBody", "physprior.envs.n_body:TwoBodyEnv", 200),
    EnvEntry("ThreeBody", "physprior.envs.n_body:ThreeBodyEnv", 200),
    EnvEntry("SpringChain", "physprior.envs.spring_chain:SpringChainEnv", 200),
    EnvEntry("HeavyBilliard", "physprior.envs.heavy_billiard:HeavyBilliardEnv", 200),
    EnvEntry("ChainPendulum", "physprior.envs.chain_pendulum:ChainPendulumEnv", 300),
    EnvEntry("SpringPendulum", "physprior.envs.spring_pendulum:SpringPendulumEnv", 300),
)

MUJOCO_FULL_ENVS: tuple[EnvEntry, ...] = tuple(
    EnvEntry(f"{name}Full", f"physprior.envs.mujoco_full:{name}FullEnv", 1000)
    for name in ("HalfCheetah", "Hopper", "Walker2d", "Swimmer", "Ant", "InvertedPendulum")
)

ALL_ENVS: tuple[EnvEntry, ...] = PHYSICS_ENVS + MUJOCO_FULL_ENVS

#: Every registered id, physics systems first.
ENV_IDS: tuple[str, ...] = tuple(entry.id for entry in ALL_ENVS)


def register_envs() -> None:
    """Register every environment with Gymnasium (idempotent)."""
    for entry in ALL_ENVS:
        if entry.id in gym.registry:
            continue
        gym.register(
            id=entry.id,
            entry_point=entry.entry_point,
            max_episode_steps=entry.max_episode_steps,
            kwargs=dict(entry.kwargs),
        )


register_envs()

__all__ = ["ALL_ENVS", "ENV_IDS", "MUJOCO_FULL_ENVS", "PHYSICS_ENVS", "EnvEntry", "register_envs"]
