"""Learned-dynamics environments: a trained transition model inside the base env's task.

A learned environment replaces only the transition of a real one (STYLE 5, after mbrl-lib's
`ModelEnv`): the observation and action spaces, `reward_fn`, `termination_fn`, initial states
and episode length all come from the base environment (`physprior/<Name>-v0`), the next state
from `model.step`. One module per layer:

- `dynamics`: `ModelDynamics`, the batched torch core, `step(obs (N, D), action (N, A))` and
  `rollout_returns(obs (N, D), actions (N, H, A))`, for planners (CEM, MPPI) and MBPO; what
  counts as divergence (its docstring).
- `single`: `LearnedDynamicsEnv`, a `gymnasium.Env`, also `gym.make("physprior/Learned-v0",
  model_path=..., base_env_id=...)`; passes Gymnasium's and SB3's `check_env`.
- `vector`: `LearnedVectorEnv`, a `gymnasium.vector.VectorEnv` of N copies stepped in one
  model call, autoreset `SAME_STEP` or `NEXT_STEP`, numpy in and out, and `step_tensor` as the
  torch fast path; `sb3`: its Stable-Baselines3 `VecEnv` adapter (`as_sb3()`).
- `pixels`: `PixelLearnedEnv` (`physprior/PixelLearned-v0`), a pixel model's latent dynamics
  with frames as observations.

The public names are importable from here.
"""

from __future__ import annotations

from .dynamics import (
    DEFAULT_BOUND,
    LEARNED_ENV_ID,
    ModelDynamics,
    ModelLike,
    make_base_env,
    resolve_model,
)
from .single import LearnedDynamicsEnv
from .vector import LearnedVectorEnv

__all__ = [
    "DEFAULT_BOUND",
    "LEARNED_ENV_ID",
    "LearnedDynamicsEnv",
    "LearnedVectorEnv",
    "ModelDynamics",
    "ModelLike",
    "make_base_env",
    "resolve_model",
]
