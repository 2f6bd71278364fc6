"""physprior: physics priors for model-based reinforcement learning.

Importing physprior registers every environment (`physprior/<Name>-v0`) with Gymnasium.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from physprior import envs as envs  # registers the environments
from physprior.envs import ENV_IDS

if TYPE_CHECKING:
    from physprior.training import load_model

__version__ = "0.1.0"

__all__ = ["ENV_IDS", "__version__", "envs", "load_model"]


def __getattr__(name: str) -> Any:
    # `load_model` needs torch and the models; importing them only on first use keeps
    # `import physprior` (and every `gym.make("physprior/...")`, which imports it) light.
    if name == "load_model":
        from physprior.training import load_model

        return load_model
    raise AttributeError(f"module 'physprior' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), "load_model"})
