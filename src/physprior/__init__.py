"""physprior: physics priors for model-based reinforcement learning.

Importing physprior registers every environment (`physprior/<Name>-v0`) with Gymnasium.
"""

from __future__ import annotations

from physprior import envs as envs  # registers the environments
from physprior.envs import ENV_IDS

__version__ = "0.1.0"

__all__ = ["ENV_IDS", "__version__", "envs"]
