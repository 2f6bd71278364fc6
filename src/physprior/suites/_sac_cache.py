"""The SAC data sets of the MuJoCo suites: collected once per setting, then read from disk.

Collecting is the expensive part of `decon-mujoco` and `mpc`, and every model row of an
(env, seed) uses the same data, so `sac_dataset` keeps one file per collection setting under
`$PHYSPRIOR_CACHE/<folder>/` (default `~/.cache/physprior/<folder>/`), named by a hash of the
setting. A run collects into a private scratch folder beside the cache and moves the SAC state
file in first and the dataset last, so a dataset in the cache is always complete and has its
agent (`physprior.agents.collect.load_sac`); a killed collection leaves nothing in the cache
and the next job starts it afresh (a resumed SAC run would differ from an uninterrupted one).
A lock file serialises collectors of one setting (parallel jobs), so the second waits and
reads the first's file.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

__all__ = ["CACHE_ENV", "cache_root", "sac_dataset"]

CACHE_ENV = "PHYSPRIOR_CACHE"


def cache_root() -> Path:
    """`$PHYSPRIOR_CACHE`, or `~/.cache/physprior` without it."""
    root = os.environ.get(CACHE_ENV)
    return Path(root).expanduser() if root else Path.home() / ".cache" / "physprior"


def sac_dataset(
    folder: str,
    env_id: str,
    seed: int,
    steps: int,
    *,
    sac_kwargs: Mapping[str, Any] | None = None,
    max_episode_steps: int | None = None,
) -> Path:
    """The cached dataset of a SAC run of `steps` steps on `env_id`, collected if missing.

    `sac_kwargs` override `default_sac_kwargs`; `max_episode_steps` caps episodes (None: the
    env's limit). The file is `cache_root()/folder/<env>-s<seed>-<steps>-<hash>.npz`.
    """
    settings = {
        "env_id": env_id,
        "seed": int(seed),
        "steps": int(steps),
        "max_episode_steps": max_episode_steps,
        "sac_kwargs": dict(sac_kwargs or {}),
    }
    text = json.dumps(settings, sort_keys=True, separators=(",", ":"))
    key = hashlib.sha256(text.encode()).hexdigest()[:16]
    short = env_id.split("/")[-1].removesuffix("-v0")
    path = cache_root() / folder / f"{short}-s{seed}-{steps}-{key}.npz"
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with _locked(path.with_name(path.name + ".lock")):
        if not path.is_file():
            _collect_into(path, settings)
    return path


@contextlib.contextmanager
def _locked(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on `path` for the `with` body (none where fcntl is missing:
    at worst two jobs then collect the same data)."""
    with open(path, "a") as handle:
        try:
            import fcntl
        except ImportError:  # not POSIX
            yield
            return
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _collect_into(path: Path, settings: dict[str, Any]) -> None:
    from physprior.agents.collect import CollectConfig, collect, sac_paths

    scratch = Path(tempfile.mkdtemp(prefix=".collect-", dir=path.parent))
    try:
        out = scratch / "data.npz"
        steps = settings["steps"]
        collect(
            CollectConfig(
                settings["env_id"],
                steps,
                str(out),
                agent="sac",
                seed=settings["seed"],
                flush_every=min(steps, 50_000),
                progress=False,
                max_episode_steps=settings["max_episode_steps"],
                # SB3 writes into the dicts it is given (policy_kwargs): hand it a copy.
                sac_kwargs=copy.deepcopy(settings["sac_kwargs"]),
            )
        )
        os.replace(sac_paths(out)[1], sac_paths(path)[1])
        os.replace(out, path)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
