"""Rows of one collection run in preallocated arrays, flushed atomically to a dataset file.

The recorder is the only place that knows how a run becomes a `TransitionDataset`: it keeps
`obs (N, D)`, `actions (N, A)`, `next_obs (N, D)`, `rewards (N,)` (float64, env units),
`terminated`, `truncated` and `episode` for up to `capacity` rows, and `flush()` writes the rows
so far with `TransitionDataset.save` (a temporary file, then a rename), so a reader, or a run
killed at any moment, sees either the previous flush or the new one, never half a file.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from physprior.data import DatasetMeta, TransitionDataset
from physprior.data._envinfo import EnvInfo


class Recorder:
    """Preallocated transition rows; `add` one step at a time, `flush` to `path`.

    Args:
        path: the dataset file (`.npz`) that `flush` writes.
        info: the env's id, `dt`, `q_dim` and `state_layout` (for `meta`).
        obs_dim, action_dim: D and A.
        capacity: the most rows the run will record (its target step count).
        agent, seed: recorded in `meta`.
        extra: `meta.extra` (JSON-serialisable); `complete` is added at each flush.
        start: rows of an earlier part of the run (resume); they are copied in first and the
            next episode gets the id after their last one.
        continue_episode: with `start`, continue the episode the earlier part left open (see
            below) under its id, rather than starting a new one; `open_steps` says how many
            of its steps are recorded already.

    The episode still running at a flush is written with its last row marked `truncated` (the
    in-memory row keeps its real flags) and `meta.extra["open_episode"]` set, so every episode
    of every file ends with a flag, and a resumed run can tell that flag from a real time limit.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        info: EnvInfo,
        obs_dim: int,
        action_dim: int,
        capacity: int,
        *,
        agent: str,
        seed: int,
        extra: dict[str, Any],
        start: TransitionDataset | None = None,
        continue_episode: bool = False,
    ) -> None:
        self.path = Path(path)
        self.info = info
        self.capacity = int(capacity)
        self.agent = agent
        self.seed = int(seed)
        self.extra = extra
        self.obs = np.zeros((capacity, obs_dim), dtype=np.float64)
        self.actions = np.zeros((capacity, action_dim), dtype=np.float64)
        self.next_obs = np.zeros((capacity, obs_dim), dtype=np.float64)
        self.rewards = np.zeros(capacity, dtype=np.float64)
        self.terminated = np.zeros(capacity, dtype=bool)
        self.truncated = np.zeros(capacity, dtype=bool)
        self.episode_ids = np.zeros(capacity, dtype=np.int64)
        #: Rows recorded so far (including those of `start`).
        self.rows = 0
        #: Id of the episode the next row belongs to.
        self.episode = 0
        #: Steps of episode `episode` recorded so far (non-zero when a resume continues one).
        self.open_steps = 0
        if start is not None and len(start):
            self._load(start, continue_episode)

    def _load(self, start: TransitionDataset, continue_episode: bool) -> None:
        n = len(start)
        if n > self.capacity:
            raise ValueError(f"the dataset holds {n} rows, more than the {self.capacity} asked for")
        for name in ("obs", "actions", "next_obs", "rewards", "terminated", "truncated"):
            getattr(self, name)[:n] = getattr(start, name)
        self.episode_ids[:n] = start.episode
        self.rows = n
        last = int(start.episode[-1])
        cut = bool(start.meta.extra.get("open_episode", False))
        if continue_episode and cut and not start.terminated[-1]:
            # The last row's truncation was the flush's, not the env's: the episode goes on.
            self.truncated[n - 1] = False
            self.episode = last
            self.open_steps = int(np.count_nonzero(start.episode == last))
        else:
            # An episode cut by an earlier flush or kill stays cut: the next row starts anew.
            if not start.terminated[-1]:
                self.truncated[n - 1] = True
            self.episode = int(start.episode.max()) + 1

    def add(
        self,
        obs: ArrayLike,
        action: ArrayLike,
        next_obs: ArrayLike,
        reward: float,
        terminated: bool,
        truncated: bool,
    ) -> None:
        """Record one transition `(D,), (A,), (D,)` and its flags; an end starts a new episode.

        A step both terminated and truncated is stored as `terminated` only (a true end wins
        over a time limit), so the two flags are exclusive, as in `from_replay_buffer`.
        """
        i = self.rows
        if i >= self.capacity:
            raise RuntimeError(f"the recorder is full ({self.capacity} rows)")
        self.open_steps = 0 if terminated or truncated else self.open_steps + 1
        self.obs[i] = obs
        self.actions[i] = action
        self.next_obs[i] = next_obs
        self.rewards[i] = reward
        self.terminated[i] = terminated
        self.truncated[i] = truncated and not terminated
        self.episode_ids[i] = self.episode
        self.rows = i + 1
        if terminated or truncated:
            self.episode += 1

    @property
    def full(self) -> bool:
        return self.rows >= self.capacity

    def dataset(self) -> TransitionDataset:
        """The rows so far as a dataset (copies); an unfinished episode ends `truncated`."""
        n = self.rows
        truncated = self.truncated[:n].copy()
        open_episode = bool(n) and not (self.terminated[n - 1] or truncated[n - 1])
        if open_episode:
            truncated[n - 1] = True
        return TransitionDataset(
            obs=self.obs[:n].copy(),
            actions=self.actions[:n].copy(),
            next_obs=self.next_obs[:n].copy(),
            rewards=self.rewards[:n].copy(),
            terminated=self.terminated[:n].copy(),
            truncated=truncated,
            episode=self.episode_ids[:n].copy(),
            meta=DatasetMeta(
                env_id=self.info.env_id,
                dt=self.info.dt,
                q_dim=self.info.q_dim,
                state_layout=self.info.state_layout,
                agent=self.agent,
                seed=self.seed,
                steps=n,
                extra={**self.extra, "complete": self.full, "open_episode": open_episode},
            ),
        )

    def flush(self) -> Path:
        """Write the rows so far to `path` atomically; returns the path."""
        return self.dataset().save(self.path)


def json_safe(value: Any) -> Any:
    """`value` as it reads back from JSON (anything JSON cannot hold becomes its repr)."""
    return json.loads(json.dumps(value, default=repr, sort_keys=True))
