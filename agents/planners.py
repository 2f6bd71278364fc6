"""Model-predictive control over a learned model: CEM and MPPI planners as SB3-style agents.

A planner searches action sequences in the learned dynamics (`ModelDynamics`: a trained model
with the base env's reward, termination and action bounds) and acts with the first step of its
plan, re-planning at every step. Every candidate of every iteration is scored in one batched
model rollout. Planners have SB3's `predict(observation, state, episode_start, deterministic)`,
so `stable_baselines3.common.evaluation.evaluate_policy` scores them on the real env:

```python
from physprior.agents.planners import CEMConfig, CEMPlanner, run_plan
from physprior.learned_env import ModelDynamics

dynamics = ModelDynamics("runs/node-so", "physprior/InvertedPendulumFull-v0")
agent = CEMPlanner(dynamics, CEMConfig(horizon=15, population=200, iterations=3))
action, _ = agent.predict(obs)  # obs (D,) or (n, D) -> action (A,) or (n, A)
result = run_plan("physprior/InvertedPendulumFull-v0", "runs/node-so", "cem", episodes=5,
                  json_path="runs/plan.json", overrides={"horizon": 15})
```

Configs (`CEMConfig`, `MPPIConfig`) validate every field; `planner_config(name, overrides)`
builds one from a dict (the command line's `--set KEY=VALUE`).

>>> CEMConfig(population=100, elites=10).to_dict()["planner"]
'cem'
"""

from __future__ import annotations

from ._mpc import BatchedDynamics, CEMPlanner, MPPIPlanner, Planner
from ._mpc_config import CEMConfig, MPPIConfig, PlannerConfig, planner_config
from ._mpc_run import make_planner, run_plan

__all__ = [
    "BatchedDynamics",
    "CEMConfig",
    "CEMPlanner",
    "MPPIConfig",
    "MPPIPlanner",
    "Planner",
    "PlannerConfig",
    "make_planner",
    "planner_config",
    "run_plan",
]
