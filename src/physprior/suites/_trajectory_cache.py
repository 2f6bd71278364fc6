"""Generated trajectory sets of the suites: made once per setting, then read from disk.

A suite whose rows share an expensive generated data set (thousands of adaptive-step
trajectories) keeps one file per setting under `$PHYSPRIOR_CACHE/<folder>/`, named by a hash
of the setting, so that jobs run in separate processes (`--workers`, Ray) generate it once.
`generate_trajectories` depends only on its arguments, so a cached file equals a fresh one;
the file is written atomically, under the same lock as the SAC data sets (`_sac_cache`), so a
second job of the same setting waits and reads the first's file.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from physprior.data import TransitionDataset, generate_trajectories

from ._sac_cache import _locked, cache_root

__all__ = ["cached_trajectories"]


def cached_trajectories(
    folder: str,
    env_id: str,
    n_trajectories: int,
    length: int,
    *,
    seed: int,
    env_kwargs: Mapping[str, Any] | None = None,
) -> TransitionDataset:
    """`generate_trajectories(env_id, n_trajectories, length, seed=, env_kwargs=)`, read from
    `cache_root()/folder/` when an earlier job made it."""
    settings = {
        "env_id": env_id,
        "n": int(n_trajectories),
        "length": int(length),
        "seed": int(seed),
        "env_kwargs": dict(env_kwargs or {}),
    }
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    short = env_id.split("/")[-1].removesuffix("-v0")
    path: Path = cache_root() / folder / f"{short}-{key}.npz"
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        with _locked(path.with_name(path.name + ".lock")):
            if not path.is_file():
                data = generate_trajectories(
                    env_id,
                    int(n_trajectories),
                    int(length),
                    seed=int(seed),
                    env_kwargs=dict(env_kwargs or {}),
                    progress=False,
                )
                data.save(path)
    return TransitionDataset.load(path)
