"""The transitions dataset: one `.npz` file of rows `(obs, action, reward, next_obs, ...)`.

Format (DESIGN.md): arrays `obs (N, D)`, `actions (N, A)`, `next_obs (N, D)`, `rewards (N,)`,
`terminated (N,)`, `truncated (N,)`, `episode (N,)` (an id per row), and `meta`, a JSON string
with the env id, dt, q_dim, state_layout, agent, seed, steps and format version. Actions are in
the env's own units. Rows of one episode are stored in time order, so `next_obs[i] == obs[i+1]`
inside an episode.

Loading never unpickles (`allow_pickle=False`) and validates everything it reads.
"""

from __future__ import annotations

import json
import os
import zipfile
import zlib
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from physprior._io import atomic_write

#: Version of the file format; bump on an incompatible change.
FORMAT_VERSION = 1

#: The first bytes of a zip archive's first local file header (every .npz starts with them).
_ZIP_MAGIC = b"PK\x03\x04"

_ARRAYS = ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode")


class DatasetError(ValueError):
    """A dataset file or array that does not follow the format."""


@dataclass(frozen=True)
class DatasetMeta:
    """What a dataset is: where it came from and how its states are laid out."""

    env_id: str
    dt: float
    q_dim: int
    state_layout: str
    agent: str = "unknown"
    seed: int | None = None
    steps: int = 0
    format_version: int = FORMAT_VERSION
    extra: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> DatasetMeta:
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise DatasetError(f"meta is not valid JSON: {err}") from None
        if not isinstance(raw, dict):
            raise DatasetError("meta must be a JSON object")
        missing = [k for k in ("env_id", "dt", "q_dim", "state_layout") if k not in raw]
        if missing:
            raise DatasetError(f"meta lacks required field(s) {', '.join(missing)}")
        known = {f for f in cls.__dataclass_fields__}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise DatasetError(f"meta has unknown field(s) {', '.join(unknown)}")
        version = raw.get("format_version", FORMAT_VERSION)
        if version != FORMAT_VERSION:
            raise DatasetError(
                f"dataset format version {version} is not supported (this physprior reads "
                f"version {FORMAT_VERSION})"
            )
        return cls(**raw)


@dataclass(frozen=True)
class TransitionDataset:
    """Transitions of one environment, row-aligned arrays plus `meta`.

    Shapes: `obs`, `next_obs` `(N, D)` float; `actions` `(N, A)` float (A may be 0);
    `rewards` `(N,)` float; `terminated`, `truncated` `(N,)` bool; `episode` `(N,)` int64.
    Construction validates shapes, dtypes, finiteness and episode contiguity.
    """

    obs: NDArray[np.floating]
    actions: NDArray[np.floating]
    next_obs: NDArray[np.floating]
    rewards: NDArray[np.floating]
    terminated: NDArray[np.bool_]
    truncated: NDArray[np.bool_]
    episode: NDArray[np.int64]
    meta: DatasetMeta

    def __post_init__(self) -> None:
        _validate(self)

    # ------------------------------------------------------------------ shape
    def __len__(self) -> int:
        return int(self.obs.shape[0])

    @property
    def obs_dim(self) -> int:
        return int(self.obs.shape[1])

    @property
    def action_dim(self) -> int:
        return int(self.actions.shape[1])

    def model_fields(self) -> dict[str, Any]:
        """The model config fields this data decides, for `physprior.models.make(name, **...)`.

        `obs_dim`, `action_dim`, `q_dim`, `state_layout`, `dt` (seconds per step) and `env_id`:
        a model trained on the data must agree with it on each.
        """
        return {
            "obs_dim": self.obs_dim,
            "action_dim": self.action_dim,
            "q_dim": self.meta.q_dim,
            "state_layout": self.meta.state_layout,
            "dt": self.meta.dt,
            "env_id": self.meta.env_id,
        }

    @property
    def episode_ids(self) -> NDArray[np.int64]:
        """The distinct episode ids, in order of first appearance."""
        ids, first = np.unique(self.episode, return_index=True)
        return ids[np.argsort(first)]

    def select_episodes(self, ids: NDArray[np.int64] | list[int]) -> TransitionDataset:
        """The rows of the given episodes (file order kept)."""
        mask = np.isin(self.episode, np.asarray(ids))
        return self.take(mask)

    def take(self, index: NDArray[Any]) -> TransitionDataset:
        """A dataset of the rows selected by a boolean mask or an index array."""
        return replace(
            self,
            obs=self.obs[index],
            actions=self.actions[index],
            next_obs=self.next_obs[index],
            rewards=self.rewards[index],
            terminated=self.terminated[index],
            truncated=self.truncated[index],
            episode=self.episode[index],
        )

    # ------------------------------------------------------------------ files
    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the dataset to `path` (`.npz`) atomically: a temporary file, then a rename."""
        arrays = {name: getattr(self, name) for name in _ARRAYS}
        meta = np.array(self.meta.to_json())
        return atomic_write(path, lambda handle: np.savez(handle, meta=meta, **arrays))

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> TransitionDataset:
        """Read and validate a dataset file; DatasetError (a ValueError) names what is wrong."""
        source = Path(path)
        if not source.is_file():
            raise FileNotFoundError(f"no dataset file at {source}")
        try:
            # Opened here, not by np.load: np.load leaks its file when the zip is corrupt.
            with open(source, "rb") as handle:
                # np.load would try unpickling anything that is neither zip nor .npy (refused
                # with allow_pickle=False, but with a misleading message): check the zip magic.
                if handle.read(4) != _ZIP_MAGIC:
                    raise DatasetError(f"{source} is not an .npz file (not a zip archive)")
                handle.seek(0)
                with np.load(handle, allow_pickle=False) as archive:
                    missing = [k for k in (*_ARRAYS, "meta") if k not in archive.files]
                    if missing:
                        raise DatasetError(
                            f"{source} is not a physprior dataset: missing array(s) "
                            f"{', '.join(missing)}"
                        )
                    arrays = {name: archive[name] for name in _ARRAYS}
                    meta_raw = archive["meta"]
        except DatasetError:
            raise
        except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as err:
            raise DatasetError(
                f"{source} is not a readable .npz file (truncated or corrupt): {_line(err)}"
            ) from None
        except ValueError as err:
            if "allow_pickle" in str(err):
                # np.load refuses object (pickled) arrays with allow_pickle=False.
                raise DatasetError(
                    f"{source} holds object arrays, which would need unpickling: refused"
                ) from None
            raise DatasetError(
                f"{source} is not a readable .npz file (truncated or corrupt): {_line(err)}"
            ) from None
        if meta_raw.shape != () or meta_raw.dtype.kind != "U":
            raise DatasetError(f"{source}: meta must be a JSON string")
        try:
            return cls(meta=DatasetMeta.from_json(str(meta_raw)), **arrays)
        except DatasetError as err:
            raise DatasetError(f"{source}: {err}") from None


def _line(err: BaseException) -> str:
    """The first line of an exception's message (errors here are one-liners)."""
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def _validate(ds: TransitionDataset) -> None:
    n = ds.obs.shape[0] if ds.obs.ndim >= 1 else -1
    if ds.obs.ndim != 2:
        raise DatasetError(f"obs must be (N, D), got shape {ds.obs.shape}")
    d = ds.obs.shape[1]
    expected = {
        "obs": (n, d),
        "next_obs": (n, d),
        "actions": (n, ds.actions.shape[1] if ds.actions.ndim == 2 else -1),
        "rewards": (n,),
        "terminated": (n,),
        "truncated": (n,),
        "episode": (n,),
    }
    for name, shape in expected.items():
        got = getattr(ds, name).shape
        if got != shape:
            raise DatasetError(f"{name} has shape {got}, expected {shape}")
    for name in ("obs", "actions", "next_obs", "rewards"):
        if getattr(ds, name).dtype.kind != "f":
            raise DatasetError(f"{name} must be a float array, got dtype {getattr(ds, name).dtype}")
    for name in ("terminated", "truncated"):
        if getattr(ds, name).dtype != np.bool_:
            raise DatasetError(f"{name} must be a bool array, got dtype {getattr(ds, name).dtype}")
    if ds.episode.dtype.kind not in "iu":
        raise DatasetError(f"episode must be an integer array, got dtype {ds.episode.dtype}")
    bad_rows = ~(
        np.isfinite(ds.obs).all(axis=1)
        & np.isfinite(ds.next_obs).all(axis=1)
        & np.isfinite(ds.actions).all(axis=1)
        & np.isfinite(ds.rewards)
    )
    if bad_rows.any():
        first = int(np.flatnonzero(bad_rows)[0])
        raise DatasetError(
            f"{int(bad_rows.sum())} of {n} rows contain NaN or inf (first at row {first})"
        )
    meta = ds.meta
    # meta may come from JSON: check types before comparing values.
    if not isinstance(meta.env_id, str):
        raise DatasetError(f"meta.env_id must be a string, got {meta.env_id!r}")
    if isinstance(meta.dt, bool) or not isinstance(meta.dt, (int, float)):
        raise DatasetError(f"meta.dt must be a number, got {meta.dt!r}")
    if isinstance(meta.q_dim, bool) or not isinstance(meta.q_dim, int):
        raise DatasetError(f"meta.q_dim must be an integer, got {meta.q_dim!r}")
    if meta.state_layout not in ("qp", "qv"):
        raise DatasetError(f"meta.state_layout must be 'qp' or 'qv', got {meta.state_layout!r}")
    if not 0 < meta.q_dim < d:
        raise DatasetError(f"meta.q_dim={meta.q_dim} does not fit states of dimension {d}")
    if not meta.dt > 0:
        raise DatasetError(f"meta.dt must be positive, got {meta.dt}")
    # Episodes are contiguous runs of rows: an id that reappears after another episode
    # started would make windows cross episode ends.
    if n > 1:
        starts = np.flatnonzero(np.diff(ds.episode) != 0) + 1
        run_ids = ds.episode[np.concatenate([[0], starts])]
        if len(np.unique(run_ids)) != len(run_ids):
            raise DatasetError("episode ids must form contiguous runs of rows")
