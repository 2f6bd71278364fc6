"""Agents that act on physprior's environments: SAC data collection, MPC planners, MBPO.

- `physprior.agents.collect`: `collect(CollectConfig(env_id, steps, out, agent="sac"|"random"))`
  records every transition a learning SAC agent (or a random one) experiences into a
  transitions dataset (`physprior collect`).
- `physprior.agents.planners`: `CEMPlanner` and `MPPIPlanner`, model-predictive control over a
  learned model's `ModelDynamics`, with SB3's `predict` signature; `run_plan` scores one on the
  real env (`physprior plan`).
- `physprior.agents.mbpo`: `MBPO`, SB3's SAC trained on real transitions mixed with short model
  rollouts branched from real states (Janner et al. 2019).

The submodules import SB3 and torch on first use; `import physprior.agents` alone is light.
"""

__all__: list[str] = []
