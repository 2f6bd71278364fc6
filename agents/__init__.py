"""Agents that act on physprior's environments: SAC data collection, MPC planners, MBPO.

- `physprior.agents.collect`: `collect(CollectConfig(env_id, steps, out, agent="sac"|"random"))`
  records every transition a learning SAC agent (or a random one) experiences into a
  transitions dataset (`physprior collect`).
- `physprior.agents.mpc`: `CEMPlanner`, `ICEMPlanner` and `MPPIPlanner`, model-predictive
  control over a learned model's `ModelDynamics` (an ensemble's with PETS's particles), with
  SB3's `predict` signature; `run_plan` scores one on the real env (`physprior plan`).
- `physprior.agents.mbpo`: `MBPO`, SB3's SAC trained on real transitions mixed with short model
  rollouts branched from real states (Janner et al. 2019); `run_mbpo` runs it in a resumable
  run folder.
- `physprior.agents.pets`: `run_pets`, PETS (Chua et al. 2018) with an ensemble of any
  physprior state model, in a resumable run folder.

The common names are importable from `physprior.agents` itself (`from physprior.agents import
CEMPlanner, CollectConfig, MBPO`; the function `collect` stays in `physprior.agents.collect`,
the subpackage of the same name); the subpackages import SB3 and torch on first use, so
`import physprior.agents` alone stays light. Each subpackage's `__init__` is its public
surface; its underscored modules are the parts.
"""

from __future__ import annotations

import importlib
from typing import Any

# name -> the submodule that defines it; loaded when the name is first used (PEP 562).
_LAZY = {
    "CollectConfig": "collect",
    "CollectResult": "collect",
    "CEMPlanner": "mpc",
    "MPPIPlanner": "mpc",
    "ICEMPlanner": "mpc",
    "ICEMConfig": "mpc",
    "CEMConfig": "mpc",
    "MPPIConfig": "mpc",
    "run_plan": "mpc",
    "MBPO": "mbpo",
    "MBPOConfig": "mbpo",
    "run_mbpo": "mbpo",
    "PETSConfig": "pets",
    "run_pets": "pets",
}

__all__ = sorted(_LAZY)


def __getattr__(name: str) -> Any:
    if name not in _LAZY:
        raise AttributeError(f"module 'physprior.agents' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))
