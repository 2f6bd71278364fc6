"""Train an ensemble: each member on its own bootstrap resample of the windows (PETS, MBPO).

A run folder holds one ordinary training run per member and the ensemble's checkpoint:

```
OUT/member-0/ ... OUT/member-<K-1>/   each a `Trainer` run folder (resumable on its own)
OUT/initial/                          the members' initial weights (what a resume starts from)
OUT/model/                            the ensemble (model.safetensors + config.json)
```

so `load_model(OUT)` returns the ensemble, and a killed run resumes member by member with
the same result as an uninterrupted one.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physprior._io import check_output_folder, output_lock
from physprior.models import TransitionModel

from ._checkpoint import (
    RUN_MODEL_DIR,
    load_state_into,
    read_checkpoint_config,
    read_state_dict,
    save_model,
)
from ._config import TrainConfig
from ._folders import current, recover
from ._trainer import EpochCallback, Trainer, TrainResult
from ._windows import window_tensors

__all__ = ["EnsembleTrainResult", "bootstrap_indices", "member_seed", "train_ensemble"]

#: The untrained ensemble, written when a run starts (see `train_ensemble`).
INITIAL_DIR = "initial"


@dataclass
class EnsembleTrainResult:
    """What `train_ensemble` returns: the trained ensemble (in evaluation mode), its run
    folder and each member's `TrainResult`."""

    model: TransitionModel
    out_dir: Path
    members: tuple[TrainResult, ...]

    @property
    def completed(self) -> bool:
        """Whether every member finished its epochs (a callback may stop one early)."""
        return all(member.completed for member in self.members)


def member_seed(seed: int, member: int) -> int:
    """The training seed (batch order, noise) of member `member` of a run seeded `seed`."""
    return int(np.random.SeedSequence([seed, member]).generate_state(1)[0])


def bootstrap_indices(count: int, seed: int, member: int) -> np.ndarray:
    """Member `member`'s bootstrap resample `(count,)`: `count` window indices drawn with
    replacement (about 63% of the windows appear, some several times), sorted."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, member, 1]))
    return np.sort(rng.integers(0, count, size=count))


def train_ensemble(
    ensemble: TransitionModel,
    train_windows: Any,
    val_windows: Any,
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    bootstrap: bool = True,
    callback: EpochCallback | None = None,
) -> EnsembleTrainResult:
    """Train every member of `ensemble` (a `physprior.models.make("ensemble", ...)`) with the
    trainer, each into `out_dir/member-<k>`, then save the ensemble to `out_dir/model`.

    With `bootstrap` (the default, as PETS), member k trains on `bootstrap_indices(N, seed, k)`
    of the N training windows; without, on all of them (members then differ by their
    initialisation and batch order only). Every member validates on all of `val_windows` and
    trains with `config` under its own seed `member_seed(config.seed, k)`. `resume=True`
    continues a killed run (finished members are read back, not retrained); `resume=False`
    refuses a folder that already holds a run. One writer at a time per folder.

    The ensemble's own normalisers are fitted to all the training windows (the statistics a
    learned env's divergence bound reads); each member's to its resample.
    """
    members = getattr(ensemble, "members", None)
    if getattr(ensemble, "name", None) != "ensemble" or members is None:
        raise TypeError(
            "train_ensemble trains a physprior ensemble (physprior.models.make('ensemble', "
            f"member=..., size=K, ...)); got {type(ensemble).__name__}"
        )
    if not isinstance(config, TrainConfig):
        raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
    out = check_output_folder(out_dir, "out_dir")
    states, actions = window_tensors(
        train_windows,
        members[0],
        what="training",
        dtype=config.torch_dtype,
        device=torch.device("cpu"),
    )
    with output_lock(out, "out_dir", folder=True):
        started = [out / INITIAL_DIR, *(_member_dir(out, k) for k in range(len(members)))]
        if not resume and any(folder.exists() for folder in started):
            raise FileExistsError(
                f"{out} already holds an ensemble run; resume it (resume=True, --resume) or "
                "choose another folder"
            )
        # The members' initial weights: a resumed run starts a member it had not reached
        # from these, not from whatever the caller's fresh ensemble holds.
        initial = out / INITIAL_DIR
        if resume and current(initial) is not None:
            recover(initial)
            header = read_checkpoint_config(initial)
            load_state_into(ensemble, read_state_dict(initial, header), where=initial)
        else:
            # The ensemble's own normalisers hold the whole training set's statistics (what a
            # learned env's divergence bound reads); each member fits its own as it trains.
            ensemble.to(dtype=config.torch_dtype).fit_normalization(states, actions)
            save_model(ensemble, initial)
        results = []
        for k, member in enumerate(members):
            rows = (
                torch.from_numpy(bootstrap_indices(len(states), config.seed, k))
                if bootstrap
                else torch.arange(len(states))
            )
            member_config = dataclasses.replace(config, seed=member_seed(config.seed, k))
            trainer = Trainer(member, member_config, _member_dir(out, k))
            results.append(
                trainer.fit(
                    (states[rows], actions[rows]),
                    val_windows,
                    resume=resume,
                    callback=callback,
                )
            )
        ensemble.to(device=config.device, dtype=config.torch_dtype)
        if all(result.completed for result in results):  # a stopped member resumes later
            save_model(ensemble, out / RUN_MODEL_DIR)
    return EnsembleTrainResult(model=ensemble.eval(), out_dir=out, members=tuple(results))


def _member_dir(out: Path, member: int) -> Path:
    return out / f"member-{member}"
