"""Model checkpoints: a folder with `model.safetensors` and `config.json`, never a pickle.

Layout (DESIGN.md):

- `model.safetensors`: the model's `state_dict` (weights and normalisation buffers), read with
  `safetensors.torch.load_file`, which parses a JSON header and raw tensor bytes and cannot run
  code. Nothing here calls `torch.load` or `pickle`.
- `config.json`: `format_version`, `model` (the registered name), `config` (the model's config
  dataclass: dims, layout, `dt`, `env_id`, architecture), `dtype`, and `sha256` of
  `model.safetensors`, so a truncated or altered weights file is caught before it is parsed.

A training run folder (see `train`) holds its exported model in `model/`; `load_model` accepts
the run folder too.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from physprior.models import TransitionModel, make

from ._folders import current, write_folder

FORMAT_VERSION = 1
"""Version of the checkpoint layout; bump on an incompatible change."""
MODEL_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
RUN_MODEL_DIR = "model"
"""Name of the exported (best) model folder inside a training run folder."""

_DTYPES = {"float32": torch.float32, "float64": torch.float64}
_REQUIRED = ("format_version", "model", "config")


class CheckpointError(ValueError):
    """A checkpoint folder or file that cannot be loaded (corrupt, incomplete or foreign)."""


# ---------------------------------------------------------------------------------- writing
def write_model_files(model: TransitionModel, folder: Path) -> None:
    """Write `model.safetensors` and `config.json` of `model` into the existing `folder`.

    Not atomic by itself: callers write into a temporary folder (`save_model`, the trainer).
    """
    if not isinstance(model, TransitionModel):
        raise TypeError(f"expected a physprior TransitionModel, got {type(model).__name__}")
    # Clones on the CPU: safetensors refuses tensors that share memory (tied weights) and
    # must read host memory.
    tensors = {k: v.detach().to("cpu").contiguous().clone() for k, v in model.state_dict().items()}
    weights = folder / MODEL_FILE
    save_file(tensors, str(weights), metadata={"format": "pt"})
    dtype = str(model.dtype).removeprefix("torch.")
    header = {
        "format_version": FORMAT_VERSION,
        "model": model.name,
        "config": model.config.to_dict(),
        "dtype": dtype,
        "sha256": file_sha256(weights),
    }
    (folder / CONFIG_FILE).write_text(json.dumps(header, indent=2, sort_keys=True) + "\n")


def save_model(model: TransitionModel, path: str | os.PathLike[str]) -> Path:
    """Save `model` as a checkpoint folder at `path`, atomically; returns the folder.

    An existing checkpoint at `path` is replaced (readers see the old or the new one, never a
    mix); any other existing folder is refused rather than overwritten.
    """
    target = Path(path)
    if target.exists():
        if not target.is_dir():
            raise FileExistsError(f"cannot save a checkpoint to {target}: it is a file")
        foreign = sorted(
            p.name for p in target.iterdir() if p.name not in (MODEL_FILE, CONFIG_FILE)
        )
        if foreign:
            raise FileExistsError(
                f"refusing to overwrite {target}: it is not a checkpoint folder "
                f"(holds {', '.join(foreign[:3])})"
            )
    return write_folder(target, lambda tmp: write_model_files(model, tmp))


# ---------------------------------------------------------------------------------- reading
def resolve_checkpoint(path: str | os.PathLike[str]) -> Path:
    """The checkpoint folder at `path` (or the exported model of a training run folder).

    Raises FileNotFoundError when it or one of its files is missing and CheckpointError when
    `path` is a file (a pickle from `torch.save`, say: such files are refused unread).
    """
    given = Path(path)
    if given.is_file():
        if given.name in (MODEL_FILE, CONFIG_FILE):
            given = given.parent
        else:
            raise CheckpointError(
                f"{given} is a file, not a checkpoint folder with {MODEL_FILE} and {CONFIG_FILE} "
                f"(pickle files such as torch.save output are never loaded)"
            )
    folder = current(given)
    if folder is None:
        raise FileNotFoundError(f"checkpoint folder {given} does not exist")
    if not (folder / CONFIG_FILE).exists():
        exported = current(folder / RUN_MODEL_DIR)
        if exported is not None and (exported / CONFIG_FILE).exists():
            folder = exported
    missing = [name for name in (MODEL_FILE, CONFIG_FILE) if not (folder / name).is_file()]
    if missing:
        raise FileNotFoundError(f"checkpoint folder {folder} lacks {' and '.join(missing)}")
    return folder


def read_checkpoint_config(folder: Path) -> dict[str, Any]:
    """The validated contents of `folder/config.json`."""
    file = folder / CONFIG_FILE
    try:
        header = json.loads(file.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{file} is not valid JSON ({err})") from None
    if not isinstance(header, dict):
        raise CheckpointError(f"{file} must hold a JSON object, got {type(header).__name__}")
    missing = [key for key in _REQUIRED if key not in header]
    if missing:
        raise CheckpointError(f"{file} lacks required field(s) {', '.join(missing)}")
    version = header["format_version"]
    if version != FORMAT_VERSION:
        raise CheckpointError(
            f"{file} has format_version {version!r}; this physprior reads version {FORMAT_VERSION}"
        )
    if not isinstance(header["model"], str):
        raise CheckpointError(f"{file}: 'model' must be a model name, got {header['model']!r}")
    if not isinstance(header["config"], dict):
        raise CheckpointError(f"{file}: 'config' must be a JSON object")
    if header.get("dtype", "float32") not in _DTYPES:
        raise CheckpointError(f"{file}: unsupported dtype {header.get('dtype')!r}")
    return header


def read_state_dict(folder: Path, header: dict[str, Any]) -> dict[str, torch.Tensor]:
    """The tensors of `folder/model.safetensors`, checked against the recorded checksum."""
    file = folder / MODEL_FILE
    expected = header.get("sha256")
    if expected is not None and file_sha256(file) != expected:
        raise CheckpointError(
            f"{file} does not match the checksum in {CONFIG_FILE} (truncated or corrupt)"
        )
    try:
        return load_file(str(file))
    except Exception as err:  # safetensors raises its own error types for malformed files
        raise CheckpointError(f"{file} cannot be read (truncated or corrupt): {err}") from None


def build_model(header: dict[str, Any], *, where: Path) -> TransitionModel:
    """An untrained model of the kind and config recorded in a checkpoint header."""
    try:
        model = make(header["model"], **header["config"])
    except (TypeError, ValueError) as err:
        raise CheckpointError(f"checkpoint {where}: {err}") from None
    return model.to(_DTYPES[header.get("dtype", "float32")])


def load_state_into(
    model: TransitionModel, tensors: dict[str, torch.Tensor], *, where: Path
) -> None:
    """Copy checkpoint tensors into `model` (same names and shapes, nothing left over)."""
    own = model.state_dict()
    missing = sorted(set(own) - set(tensors))
    unexpected = sorted(set(tensors) - set(own))
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing {', '.join(missing[:5])}")
        if unexpected:
            parts.append(f"unexpected {', '.join(unexpected[:5])}")
        raise CheckpointError(f"checkpoint {where} does not fit the model: {'; '.join(parts)}")
    for key, value in tensors.items():
        if value.shape != own[key].shape:
            raise CheckpointError(
                f"checkpoint {where}: tensor {key} has shape {tuple(value.shape)}, "
                f"the model expects {tuple(own[key].shape)}"
            )
    model.load_state_dict(tensors, strict=True)


def load_model(path: str | os.PathLike[str]) -> TransitionModel:
    """Rebuild the model saved at `path`, in evaluation mode, without unpickling anything.

    `path` is a checkpoint folder (`model.safetensors` + `config.json`) or a training run
    folder (its exported best model). The model is rebuilt with
    `physprior.models.make(name, **config)` and its tensors read with safetensors.

    Raises FileNotFoundError for a missing folder or file and CheckpointError (a ValueError)
    for a corrupt, truncated, foreign or incompatible checkpoint, each with a one-line message.
    """
    folder = resolve_checkpoint(path)
    header = read_checkpoint_config(folder)
    tensors = read_state_dict(folder, header)
    model = build_model(header, where=folder)
    load_state_into(model, tensors, where=folder)
    return model.eval()


# ---------------------------------------------------------------------------------- checks
def check_compatible(model: TransitionModel, data: Any) -> None:
    """Raise ValueError if `model` cannot be used on `data`.

    `data` is a pair `(obs_dim, action_dim)`, windows (`states (N, T+1, D)`,
    `actions (N, T, A)`) or a transitions dataset (`obs (N, D)`, `actions (N, A)`). Where
    `data` has a `meta` (a dataset), its `dt`, `state_layout`, `q_dim` and `env_id` must match
    the model's config too.
    """
    obs_dim, action_dim = data_dims(data)
    if (obs_dim, action_dim) != (model.data_dim, model.action_dim):
        what = "obs_dim" if model.data_dim == model.obs_dim else "frame pixels"
        raise ValueError(
            f"model expects {what} {model.data_dim} / action_dim {model.action_dim}, "
            f"data has {obs_dim} / {action_dim}"
        )
    meta = getattr(data, "meta", None)
    if meta is None:
        return
    config = model.config
    dt = getattr(meta, "dt", None)
    if dt is not None and not math.isclose(float(dt), model.dt, rel_tol=1e-9):
        raise ValueError(f"model was trained at dt {config.dt}, data has dt {dt}")
    layout = getattr(meta, "state_layout", None)
    if layout is not None and layout != config.state_layout:
        raise ValueError(f"model expects state layout {config.state_layout!r}, data has {layout!r}")
    q_dim = getattr(meta, "q_dim", None)
    if q_dim is not None and q_dim != config.q_dim:
        raise ValueError(f"model expects q_dim {config.q_dim}, data has {q_dim}")
    env_id = getattr(meta, "env_id", None)
    if env_id is not None and config.env_id is not None and env_id != config.env_id:
        raise ValueError(f"model was trained on {config.env_id}, data comes from {env_id}")


def data_dims(data: Any) -> tuple[int, int]:
    """`(obs_dim, action_dim)` of a dims pair, windows or a transitions dataset."""
    if isinstance(data, (tuple, list)) and len(data) == 2 and all(isinstance(d, int) for d in data):
        return int(data[0]), int(data[1])
    for states_name in ("states", "obs"):
        states = getattr(data, states_name, None)
        actions = getattr(data, "actions", None)
        if states is not None and actions is not None:
            return int(states.shape[-1]), int(actions.shape[-1])
    raise TypeError(
        "data must be (obs_dim, action_dim), windows with states/actions, or a dataset with "
        f"obs/actions; got {type(data).__name__}"
    )


def file_sha256(file: Path) -> str:
    """Hex SHA-256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(file, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
