"""Training: the trainer, initial-state optimisation and safe model checkpoints.

- `train(model, train_windows, val_windows, config, out_dir)` (or `Trainer`) fits any
  `TransitionModel` to windows `states (N, T+1, D)`, `actions (N, T, A)` under a
  `TrainConfig`, writing a resumable, reproducible run folder.
- `train_ensemble(ensemble, train_windows, val_windows, config, out_dir)` trains each member of
  an `ensemble` model on its own bootstrap resample, one trainer run per member.
- `save_model(model, path)` / `load_model(path)`: checkpoint folders of `model.safetensors` and
  `config.json`; nothing is ever unpickled. `check_compatible(model, data)` checks dims.
- `optimize_initial_states` / `fit_initial_state`: initial-state optimisation (SRNN 4.3).
"""

from __future__ import annotations

from ._checkpoint import CheckpointError, check_compatible, load_model, save_model
from ._config import TrainConfig
from ._ensemble import EnsembleTrainResult, train_ensemble
from ._iso import fit_initial_state, optimize_initial_states
from ._trainer import EpochCallback, Trainer, TrainingDiverged, TrainResult, train

__all__ = [
    "CheckpointError",
    "EnsembleTrainResult",
    "EpochCallback",
    "TrainConfig",
    "TrainResult",
    "Trainer",
    "TrainingDiverged",
    "check_compatible",
    "fit_initial_state",
    "load_model",
    "optimize_initial_states",
    "save_model",
    "train",
    "train_ensemble",
]
