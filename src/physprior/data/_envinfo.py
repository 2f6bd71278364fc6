"""What a dataset's `meta` needs to know about the environment its rows came from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import gymnasium as gym


@dataclass(frozen=True)
class EnvInfo:
    """The env's registered id, observation interval `dt`, `q_dim` and `state_layout`."""

    env_id: str
    dt: float
    q_dim: int
    state_layout: str


def env_info(env: gym.Env[Any, Any]) -> EnvInfo:
    """Read the DESIGN.md env contract (`dt`, `q_dim`, `state_layout`) off `env.unwrapped`.

    Raises TypeError for an env without it (physprior's envs all have it) or without an id.
    """
    base: Any = env.unwrapped  # the contract's attributes are not on gym.Env
    missing = [name for name in ("dt", "q_dim", "state_layout") if not hasattr(base, name)]
    if missing:
        raise TypeError(
            f"{type(base).__name__} lacks {', '.join(missing)}: a transitions dataset needs a "
            "physprior env (physprior/<Name>-v0)"
        )
    spec = env.spec if env.spec is not None else base.spec
    if spec is None:
        raise TypeError(f"{type(base).__name__} has no spec: build it with gym.make(env_id)")
    return EnvInfo(
        env_id=spec.id,
        dt=float(base.dt),
        q_dim=int(base.q_dim),
        state_layout=str(base.state_layout),
    )
