"""Minari, the standard format for offline-RL datasets: import one, export one.

Minari stores episodes (`observations (T + 1, D)`, `actions (T, A)`, `rewards`,
`terminations`, `truncations (T,)`); physprior stores transition rows with an episode id. The
two hold the same information when every episode's rows chain (`next_obs[t] == obs[t + 1]`),
which every dataset physprior collects or generates satisfies:

- `to_minari(dataset, dataset_id)` writes one Minari dataset (under `MINARI_DATASETS_PATH`,
  Minari's own setting) from a `TransitionDataset`; the env is recorded by its id, so
  `minari.load_dataset(id).recover_environment()` rebuilds it where physprior is installed.
  physprior's own fields (`dt`, `q_dim`, `state_layout`, agent, seed) go into the dataset's
  description as JSON, so a round trip keeps them.
- `from_minari(dataset_or_id, ...)` reads a Minari dataset into a `TransitionDataset`. `dt`,
  `q_dim` and `state_layout` come from a physprior export, or from the recovered env when it
  follows physprior's env contract, or from the arguments (a foreign dataset, e.g. D4RL's
  MuJoCo sets, whose envs do not expose them).

A step both terminated and truncated becomes `terminated` (as `from_replay_buffer`). Minari is
an optional dependency: `pip install 'physprior[minari]'`.
"""

from __future__ import annotations

import json
import warnings
from typing import Any

import numpy as np

from ._dataset import DatasetMeta, TransitionDataset

__all__ = ["from_minari", "to_minari"]

#: Marks the JSON block of physprior's fields in a Minari dataset's description.
_TAG = "physprior-meta: "


def _minari() -> Any:
    try:
        import minari
    except ImportError:
        raise ImportError(
            "Minari is not installed: pip install 'physprior[minari]' (minari[hdf5] 0.5)"
        ) from None
    return minari


def to_minari(
    dataset: TransitionDataset,
    dataset_id: str,
    *,
    author: str | None = None,
    author_email: str | None = None,
    code_permalink: str | None = None,
    description: str | None = None,
    data_format: str = "hdf5",
) -> Any:
    """Write `dataset` as the Minari dataset `dataset_id` (e.g. "physprior/pendulum/random-v0");
    returns the `minari.MinariDataset`. ValueError if an episode's rows do not chain.

    `author`, `author_email`, `code_permalink` go into Minari's metadata; Minari's warnings
    that recommend them are not repeated here (they are optional for a local dataset).
    """
    minari = _minari()
    from minari.data_collector import EpisodeBuffer

    buffers = []
    for i, episode in enumerate(dataset.episode_ids):
        rows = np.flatnonzero(dataset.episode == episode)
        obs, next_obs = dataset.obs[rows], dataset.next_obs[rows]
        if not np.array_equal(next_obs[:-1], obs[1:]):
            raise ValueError(
                f"episode {int(episode)}'s rows do not chain (next_obs[t] != obs[t + 1]): "
                "Minari stores whole trajectories"
            )
        buffers.append(
            EpisodeBuffer(
                id=i,
                observations=np.concatenate([obs, next_obs[-1:]]),
                actions=dataset.actions[rows],
                rewards=dataset.rewards[rows].tolist(),
                terminations=dataset.terminated[rows].tolist(),
                truncations=dataset.truncated[rows].tolist(),
            )
        )
    meta = dataset.meta
    fields = {
        "env_id": meta.env_id,
        "dt": meta.dt,
        "q_dim": meta.q_dim,
        "state_layout": meta.state_layout,
        "agent": meta.agent,
        "seed": meta.seed,
    }
    text = (description + "\n" if description else "") + _TAG + json.dumps(fields)
    import gymnasium as gym

    import physprior  # noqa: F401  (registers the env ids Minari records)

    env = meta.env_id if meta.env_id in gym.registry else None
    spaces: dict[str, Any] = {}
    if env is None:  # no env to read the spaces from: unbounded boxes of the data's shapes
        spaces = {
            "observation_space": gym.spaces.Box(-np.inf, np.inf, (dataset.obs_dim,), np.float64),
            "action_space": gym.spaces.Box(-np.inf, np.inf, (dataset.action_dim,), np.float64),
        }
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=r"`\w+` is set to None", category=UserWarning)
        return minari.create_dataset_from_buffers(
            dataset_id,
            buffers,
            env=env,
            algorithm_name=meta.agent,
            author=author,
            author_email=author_email,
            code_permalink=code_permalink,
            description=text,
            data_format=data_format,
            **spaces,
        )


def from_minari(
    dataset: Any,
    *,
    env_id: str | None = None,
    dt: float | None = None,
    q_dim: int | None = None,
    state_layout: str | None = None,
) -> TransitionDataset:
    """A `TransitionDataset` of a Minari dataset (a `MinariDataset` or a local dataset id).

    Keyword arguments override what the dataset says (see the module docstring for the
    order); ValueError naming what is missing when `dt`, `q_dim` or `state_layout` cannot be
    found, or when the observations or actions are not flat arrays.
    """
    minari = _minari()
    if isinstance(dataset, str):
        dataset = minari.load_dataset(dataset)
    known = _recorded_fields(dataset)
    found: dict[str, Any] = {
        "env_id": env_id or known.get("env_id") or _spec_id(dataset) or "unknown",
        "dt": dt if dt is not None else known.get("dt"),
        "q_dim": q_dim if q_dim is not None else known.get("q_dim"),
        "state_layout": state_layout or known.get("state_layout"),
    }
    if None in (found["dt"], found["q_dim"], found["state_layout"]):
        found.update({k: v for k, v in _contract(found["env_id"]).items() if found[k] is None})
    missing = [k for k in ("dt", "q_dim", "state_layout") if found[k] is None]
    if missing:
        raise ValueError(
            f"Minari dataset {dataset.spec.dataset_id!r} does not say its {', '.join(missing)} "
            f"and its env {found['env_id']!r} does not expose them: pass "
            f"{', '.join(f'{k}=...' for k in missing)}"
        )
    names = ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode")
    parts: dict[str, list[Any]] = {name: [] for name in names}
    for number, episode in enumerate(dataset.iterate_episodes()):
        observations = np.asarray(episode.observations, dtype=np.float64)
        actions = np.asarray(episode.actions, dtype=np.float64)
        if observations.ndim != 2 or actions.ndim not in (1, 2):
            raise ValueError(
                f"episode {number} has observations {observations.shape} and actions "
                f"{actions.shape}: physprior reads flat (Box) observations and actions"
            )
        steps = len(actions)
        terminated = np.asarray(episode.terminations, dtype=bool)
        parts["obs"].append(observations[:-1])
        parts["next_obs"].append(observations[1:])
        parts["actions"].append(actions.reshape(steps, -1))
        parts["rewards"].append(np.asarray(episode.rewards, dtype=np.float64))
        parts["terminated"].append(terminated)
        parts["truncated"].append(np.asarray(episode.truncations, dtype=bool) & ~terminated)
        parts["episode"].append(np.full(steps, number, dtype=np.int64))
    arrays = {k: np.concatenate(v) for k, v in parts.items()}
    meta = DatasetMeta(
        env_id=str(found["env_id"]),
        dt=float(found["dt"]),
        q_dim=int(found["q_dim"]),
        state_layout=str(found["state_layout"]),
        agent=str(known.get("agent") or "minari"),
        seed=known.get("seed"),
        steps=len(arrays["obs"]),
        extra={"minari_dataset_id": dataset.spec.dataset_id},
    )
    return TransitionDataset(**arrays, meta=meta)


def _recorded_fields(dataset: Any) -> dict[str, Any]:
    """physprior's fields from the description of a dataset `to_minari` wrote, else {}."""
    description = dataset.storage.metadata.get("description") or ""
    for line in description.splitlines():
        if line.startswith(_TAG):
            try:
                fields = json.loads(line[len(_TAG) :])
            except json.JSONDecodeError:
                return {}
            return fields if isinstance(fields, dict) else {}
    return {}


def _spec_id(dataset: Any) -> str | None:
    spec = getattr(dataset.spec, "env_spec", None)
    return getattr(spec, "id", None)


def _contract(env_id: str) -> dict[str, Any]:
    """`dt`, `q_dim`, `state_layout` of a registered env that follows physprior's contract."""
    import gymnasium as gym

    import physprior  # noqa: F401  (registers physprior's ids)

    if env_id not in gym.registry:
        return {}
    env = gym.make(env_id)
    try:
        core = env.unwrapped
        return {k: getattr(core, k, None) for k in ("dt", "q_dim", "state_layout")}
    finally:
        env.close()
