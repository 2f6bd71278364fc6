"""MBPO's two data pools behind one SB3 replay buffer: real transitions and model rollouts.

SAC (SB3) samples its training batches from `algorithm.replay_buffer.sample(batch_size)`.
`MixedReplayBuffer` is that buffer: SB3 fills it with the real env transitions as usual (it *is*
the real buffer, so `learning_starts`, time-limit handling and the terminal observation are SB3's
own), and it owns a `ModelBuffer` of branched model rollouts. `sample` draws
`round(batch_size * real_ratio)` rows from the real data and the rest from the model data (all
real while the model buffer is empty), as MBPO's `real_ratio` does (Janner et al. 2019, app. C).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
from gymnasium import spaces
from numpy.typing import NDArray
from stable_baselines3.common.buffers import ReplayBuffer
from stable_baselines3.common.type_aliases import ReplayBufferSamples
from stable_baselines3.common.vec_env import VecNormalize


class ModelBuffer:
    """A ring buffer of model transitions, oldest overwritten first.

    Rows: `obs (C, D)`, `actions (C, A)` scaled to [-1, 1] as SB3 stores them, `rewards (C,)`,
    `next_obs (C, D)`, `dones (C,)` (1.0 where the base env's termination function fired).
    """

    def __init__(self, capacity: int, obs_dim: int, action_dim: int, obs_dtype: Any) -> None:
        if capacity < 1:
            raise ValueError(f"model buffer capacity must be positive, got {capacity}")
        self.capacity = capacity
        self.obs = np.zeros((capacity, obs_dim), dtype=obs_dtype)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=obs_dtype)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float32)
        self.rewards = np.zeros(capacity, dtype=np.float32)
        self.dones = np.zeros(capacity, dtype=np.float32)
        self.pos = 0
        self.size = 0
        self.added = 0
        """Rows added over the buffer's life (including overwritten ones)."""

    def __len__(self) -> int:
        return self.size

    def add(
        self,
        obs: NDArray[Any],
        actions: NDArray[Any],
        rewards: NDArray[Any],
        next_obs: NDArray[Any],
        dones: NDArray[Any],
    ) -> None:
        """Append `n` rows: `obs (n, D)`, `actions (n, A)`, `rewards (n,)`, `next_obs (n, D)`,
        `dones (n,)`; beyond capacity only the newest `capacity` rows are kept."""
        n = int(obs.shape[0])
        if n == 0:
            return
        self.added += n
        if n > self.capacity:
            obs, actions, rewards, next_obs, dones = (
                x[-self.capacity :] for x in (obs, actions, rewards, next_obs, dones)
            )
            n = self.capacity
        index = (self.pos + np.arange(n)) % self.capacity
        self.obs[index] = obs
        self.actions[index] = actions
        self.rewards[index] = rewards
        self.next_obs[index] = next_obs
        self.dones[index] = dones
        self.pos = int((self.pos + n) % self.capacity)
        self.size = min(self.size + n, self.capacity)

    def sample(self, n: int, rng: np.random.Generator) -> tuple[NDArray[Any], ...]:
        """`n` rows drawn uniformly with repetition: `(obs, actions, next_obs, dones, rewards)`
        in SB3's `ReplayBufferSamples` order, `dones` and `rewards` as `(n, 1)`."""
        index = rng.integers(0, self.size, size=n)
        return (
            self.obs[index],
            self.actions[index],
            self.next_obs[index],
            self.dones[index, None],
            self.rewards[index, None],
        )


class MixedReplayBuffer(ReplayBuffer):
    """SB3 `ReplayBuffer` of the real transitions that mixes model rollouts into its samples.

    Extra constructor arguments (SB3 passes them from `replay_buffer_kwargs`):
    `real_ratio` in [0, 1], the fraction of each batch drawn from real data; `model_capacity`,
    the size of the model buffer; `seed`, for the generator that draws model rows (the real rows
    are drawn by SB3 from numpy's global generator, which SB3 seeds).
    """

    def __init__(
        self,
        buffer_size: int,
        observation_space: spaces.Space[Any],
        action_space: spaces.Space[Any],
        device: torch.device | str = "auto",
        n_envs: int = 1,
        optimize_memory_usage: bool = False,
        handle_timeout_termination: bool = True,
        *,
        real_ratio: float = 0.05,
        model_capacity: int = 100_000,
        seed: int = 0,
    ) -> None:
        super().__init__(
            buffer_size,
            observation_space,
            action_space,
            device=device,
            n_envs=n_envs,
            optimize_memory_usage=optimize_memory_usage,
            handle_timeout_termination=handle_timeout_termination,
        )
        if not 0.0 <= real_ratio <= 1.0:
            raise ValueError(f"real_ratio must be in [0, 1], got {real_ratio}")
        self.real_ratio = float(real_ratio)
        self.model = ModelBuffer(
            model_capacity, int(np.prod(self.obs_shape)), self.action_dim, observation_space.dtype
        )
        self.rng = np.random.default_rng(seed)

    def real_size(self) -> int:
        """Real transitions held (per env stream)."""
        return self.buffer_size if self.full else self.pos

    def sample(self, batch_size: int, env: VecNormalize | None = None) -> ReplayBufferSamples:
        """`batch_size` rows: `round(batch_size * real_ratio)` real, the rest model rows."""
        n_model = 0 if len(self.model) == 0 else batch_size - round(batch_size * self.real_ratio)
        if n_model == 0:
            return super().sample(batch_size, env=env)
        obs, actions, next_obs, dones, rewards = self.model.sample(n_model, self.rng)
        data = (
            self._normalize_obs(obs, env),
            actions,
            self._normalize_obs(next_obs, env),
            dones,
            self._normalize_reward(rewards, env),
        )
        fake = [self.to_torch(np.asarray(x)) for x in data]
        if n_model == batch_size:
            return ReplayBufferSamples(*fake)
        real = super().sample(batch_size - n_model, env=env)
        # Only the five core fields: MBPO's one-step targets carry no n-step discounts.
        return ReplayBufferSamples(
            *(torch.cat([r, f.to(r.dtype)]) for r, f in zip(real[:5], fake, strict=True))
        )
