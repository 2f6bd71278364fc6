"""physprior: physics priors for model-based reinforcement learning.

Importing physprior registers every environment (`physprior/<Name>-v0`) with Gymnasium, and
the learned-dynamics environment `physprior/Learned-v0` (`gym.make("physprior/Learned-v0",
model_path=..., base_env_id=...)`) and its pixel-model counterpart `physprior/PixelLearned-v0`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import gymnasium as gym

from physprior import envs as envs  # registers the environments
from physprior.envs import ENV_IDS

if TYPE_CHECKING:
    from physprior.learned_env import LearnedDynamicsEnv, LearnedVectorEnv
    from physprior.learned_env.pixels import PixelLearnedEnv
    from physprior.training import load_model

__version__ = "0.1.0"

__all__ = [
    "ENV_IDS",
    "LearnedDynamicsEnv",
    "LearnedVectorEnv",
    "PixelLearnedEnv",
    "__version__",
    "envs",
    "load_model",
]

# The learned env is registered by its entry-point strings, so that `import physprior` does
# not import torch; its episode length follows the base env, so the env truncates itself (no
# `max_episode_steps` here). `gym.make_vec("physprior/Learned-v0", num_envs=N,
# vectorization_mode="vector_entry_point", ...)` builds one `LearnedVectorEnv` of N copies.
if "physprior/Learned-v0" not in gym.registry:
    gym.register(
        id="physprior/Learned-v0",
        entry_point="physprior.learned_env:LearnedDynamicsEnv",
        vector_entry_point="physprior.learned_env:LearnedVectorEnv",
    )
# A pixel model's latent dynamics (`gym.make("physprior/PixelLearned-v0", model=...,
# base_env_id=..., base_env_kwargs=..., observation="frame"|"latent")`).
if "physprior/PixelLearned-v0" not in gym.registry:
    gym.register(
        id="physprior/PixelLearned-v0",
        entry_point="physprior.learned_env.pixels:PixelLearnedEnv",
    )

_LAZY = {
    "load_model": "physprior.training",
    "LearnedDynamicsEnv": "physprior.learned_env",
    "LearnedVectorEnv": "physprior.learned_env",
    "PixelLearnedEnv": "physprior.learned_env.pixels",
}


def __getattr__(name: str) -> Any:
    # These need torch and the models; importing them only on first use keeps
    # `import physprior` (and every `gym.make("physprior/...")`, which imports it) light.
    if name in _LAZY:
        import importlib

        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'physprior' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *_LAZY})
