"""The trainer's resumable state without pickle: tensors in safetensors, the rest in JSON.

An optimiser `state_dict` is `{"state": {param_id: {key: tensor or number}}, "param_groups":
[...]}`. Its tensors are stored flat as `opt.state.{param_id}.{key}` in `trainer.safetensors`;
its numbers and `param_groups` go to `trainer.json` with the epoch counter, the scheduler state,
early-stopping bookkeeping and anything else the trainer records. Other tensors (the refined
initial states of ISO) sit in the same safetensors file under their own names.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from ._checkpoint import CheckpointError, file_sha256

STATE_TENSORS = "trainer.safetensors"
STATE_JSON = "trainer.json"
STATE_VERSION = 1

_OPT_PREFIX = "opt.state."


def flatten_optimizer(state_dict: dict[str, Any]) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Split an optimiser `state_dict` into named tensors and a JSON-ready remainder."""
    tensors: dict[str, torch.Tensor] = {}
    numbers: dict[str, dict[str, Any]] = {}
    for param_id, entries in state_dict["state"].items():
        for key, value in entries.items():
            if torch.is_tensor(value):
                tensors[f"{_OPT_PREFIX}{int(param_id)}.{key}"] = value
            else:
                numbers.setdefault(str(int(param_id)), {})[key] = value
    return tensors, {"param_groups": state_dict["param_groups"], "numbers": numbers}


def unflatten_optimizer(tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> dict[str, Any]:
    """Rebuild the optimiser `state_dict` that `flatten_optimizer` split."""
    state: dict[int, dict[str, Any]] = {}
    for name, value in tensors.items():
        if name.startswith(_OPT_PREFIX):
            param_id, key = name[len(_OPT_PREFIX) :].split(".", 1)
            state.setdefault(int(param_id), {})[key] = value
    for param_id, entries in info["numbers"].items():
        state.setdefault(int(param_id), {}).update(entries)
    return {"state": state, "param_groups": info["param_groups"]}


def write_state(folder: Path, tensors: dict[str, torch.Tensor], info: dict[str, Any]) -> None:
    """Write `trainer.safetensors` and `trainer.json` into `folder` (a temporary folder)."""
    cpu = {k: v.detach().to("cpu").contiguous().clone() for k, v in tensors.items()}
    save_file(cpu, str(folder / STATE_TENSORS), metadata={"format": "pt"})
    header = {"state_version": STATE_VERSION, "sha256": file_sha256(folder / STATE_TENSORS)}
    text = json.dumps({**header, **info}, indent=1, sort_keys=True)
    (folder / STATE_JSON).write_text(text + "\n", encoding="utf-8")


def read_state(folder: Path) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """Read what `write_state` wrote; CheckpointError names the file that is unusable."""
    for name in (STATE_TENSORS, STATE_JSON):
        if not (folder / name).is_file():
            raise FileNotFoundError(f"training checkpoint {folder} lacks {name}")
    try:
        info = json.loads((folder / STATE_JSON).read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise CheckpointError(f"{folder / STATE_JSON} is not valid JSON ({err})") from None
    if not isinstance(info, dict) or info.get("state_version") != STATE_VERSION:
        raise CheckpointError(
            f"{folder / STATE_JSON} is not a version-{STATE_VERSION} training state"
        )
    if file_sha256(folder / STATE_TENSORS) != info.get("sha256"):
        raise CheckpointError(
            f"{folder / STATE_TENSORS} does not match the checksum in {STATE_JSON} "
            "(truncated or corrupt)"
        )
    try:
        tensors = load_file(str(folder / STATE_TENSORS))
    except Exception as err:  # safetensors raises its own error types for malformed files
        raise CheckpointError(
            f"{folder / STATE_TENSORS} cannot be read (truncated or corrupt): {err}"
        ) from None
    return tensors, info
