"""Model-predictive control over a learned model: CEM, iCEM and MPPI planners as SB3-style
agents.

A planner searches action sequences in the learned dynamics (`ModelDynamics`: a trained model
with the base env's reward, termination and action bounds) and acts with the first step of its
plan, re-planning at every step. Every candidate of every iteration is scored in one batched
model rollout. Planners have SB3's `predict(observation, state, episode_start, deterministic)`,
so `stable_baselines3.common.evaluation.evaluate_policy` scores them on the real env:

```python
from physprior.agents import CEMConfig, CEMPlanner, run_plan

# A checkpoint path (or a model) is enough: it plans on the env the model was trained on.
agent = CEMPlanner("runs/node-so", CEMConfig(horizon=15, population=200, iterations=3))
action, _ = agent.predict(obs)  # obs (D,) or (n, D) -> action (A,) or (n, A)
# The same through explicit dynamics (another env id, a divergence bound, a device):
# CEMPlanner(ModelDynamics("runs/node-so", "physprior/InvertedPendulumFull-v0", bound=100))
result = run_plan("physprior/InvertedPendulumFull-v0", "runs/node-so", "cem", episodes=5,
                  json_path="runs/plan.json", overrides={"horizon": 15})
```

Through an `ensemble` model, `propagation="tsinf"` (or `"ts1"`) with `particles=P` plans as
PETS does: every candidate is P particles, each carried by a member, scored by their mean.

Configs (`CEMConfig`, `ICEMConfig`, `MPPIConfig`) validate every field;
`planner_config(name, overrides)` builds one from a dict (the command line's `--set KEY=VALUE`).

>>> CEMConfig(population=100, elites=10).to_dict()["planner"]
'cem'
"""

from __future__ import annotations

from ._config import (
    PROPAGATIONS,
    CEMConfig,
    ICEMConfig,
    MPPIConfig,
    PlannerConfig,
    planner_config,
)
from ._planners import (
    BatchedDynamics,
    CEMPlanner,
    DynamicsLike,
    ICEMPlanner,
    MPPIPlanner,
    Planner,
    as_dynamics,
    coloured_noise,
)
from ._run import make_planner, run_plan

__all__ = [
    "PROPAGATIONS",
    "BatchedDynamics",
    "CEMConfig",
    "CEMPlanner",
    "DynamicsLike",
    "ICEMConfig",
    "ICEMPlanner",
    "MPPIConfig",
    "MPPIPlanner",
    "Planner",
    "PlannerConfig",
    "as_dynamics",
    "coloured_noise",
    "make_planner",
    "planner_config",
    "run_plan",
]
