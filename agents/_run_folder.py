"""The run folder of a resumable model-based RL loop (`run_pets`, `run_mbpo`).

`OUT/checkpoint/` holds everything the loop needs to go on, replaced as a whole at every
checkpoint (`physprior.training._folders.write_folder`: a kill leaves the previous checkpoint
or the new one, never a mix); its `state.json` records the env, the config and the steps the
run was asked for, which a resume must repeat. `results.json` and the learning-curve PNG are
written beside it at the end.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

from physprior.training._folders import current, recover

__all__ = ["CHECKPOINT_DIR", "CURVE_FILE", "RESULTS_FILE", "STATE_FILE", "load_arrays", "run_state"]

CHECKPOINT_DIR = "checkpoint"
STATE_FILE = "state.json"
RESULTS_FILE = "results.json"
CURVE_FILE = "learning_curve.png"


def run_state(
    folder: Path,
    algo: str,
    env_id: str,
    config: Mapping[str, Any],
    steps: int,
    *,
    resume: bool,
    article: str = "a",
) -> dict[str, Any] | None:
    """The state a run of `algo` in `folder` starts from: None for a fresh run, else the
    saved `state.json` (`resume=True`), checked to be this run's: the same env and config, no
    more steps done than `steps`; a swap a kill interrupted is finished first. A folder that
    holds a run is refused without `resume` (FileExistsError), a foreign or damaged one with
    ValueError, naming the folder."""
    checkpoint = folder / CHECKPOINT_DIR
    if not resume:
        if current(checkpoint) is not None:
            raise FileExistsError(
                f"{folder} already holds {article} {algo} run; resume it (resume=True, "
                "--resume) or choose another folder"
            )
        return None
    recover(checkpoint)
    if current(checkpoint) is None:
        return None
    file = checkpoint / STATE_FILE
    try:
        state: Mapping[str, Any] = json.loads(file.read_text(encoding="utf-8"))
        saved_config = state["config"]
    except (OSError, ValueError, KeyError, TypeError) as err:
        raise ValueError(f"{file} is not a {algo} state file ({err})") from None
    if state.get("env_id") != env_id or saved_config != json.loads(json.dumps(dict(config))):
        raise ValueError(
            f"{folder} holds a {algo} run of another env or config; resume it with the same "
            "settings or choose another folder"
        )
    if int(state.get("steps", 0)) > steps:
        raise ValueError(f"{folder} already holds {state['steps']} steps, more than {steps}")
    return dict(state)


def load_arrays(file: Path, names: tuple[str, ...]) -> dict[str, np.ndarray]:
    """The arrays `names` of a checkpoint's `.npz` (never unpickled); ValueError naming the
    file when it is damaged, foreign or lacks one of them."""
    try:
        # Our own handle: np.load leaves the file it opened unclosed when it refuses it.
        with open(file, "rb") as handle, np.load(handle, allow_pickle=False) as saved:
            return {name: saved[name] for name in names}
    except (OSError, ValueError, KeyError, TypeError, zipfile.BadZipFile) as err:
        # Not numpy's message: it suggests unpickling, which a run folder never needs.
        raise ValueError(
            f"{file} is damaged or foreign: not the .npz of arrays this run writes "
            f"({type(err).__name__})"
        ) from None
