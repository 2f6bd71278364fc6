"""The trainer: fits any transition model to windows of states, resumably and reproducibly.

A run folder `out_dir` holds:

- `train_config.json`: the `TrainConfig` (with its seed), the model name and model config.
- `log.jsonl`: one JSON object per finished epoch: `epoch` (from 1), `train_loss`,
  `val_loss` (`null` without validation), `lr`, `seconds` (optimiser steps, ISO, validation),
  `windows_per_second` (training windows over the time spent in optimiser steps).
- `model/`: the exported checkpoint (`model.safetensors`, `config.json`) of the epoch with the
  lowest validation loss (of the latest epoch without validation windows);
  `physprior.load_model(out_dir)` loads it.
- `checkpoint/`: the state after the latest epoch: the model checkpoint plus
  `trainer.safetensors` / `trainer.json` (optimiser, schedule, epoch counter, early stopping,
  ISO initial states, data fingerprint). It is replaced atomically after every epoch.

Reproducibility: the batch order of epoch `e` and any randomness inside it are pure functions
of `(seed, e)`, so no random stream needs saving, and a resumed run ends with bitwise the same
weights as an uninterrupted one on the CPU. Model initialisation is the caller's (seed before
building the model).

Each epoch persists in this order: the exported best model (if it improved), the log line, the
checkpoint. A kill at any point leaves the previous complete checkpoint; resuming repeats the
interrupted epoch exactly and rewrites whatever of it was already written.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from physprior._io import atomic_write_text, check_output_folder, output_lock
from physprior._progress import progress_bar
from physprior._validate import check_field_types
from physprior.models import TransitionModel

from ._checkpoint import (
    RUN_MODEL_DIR,
    CheckpointError,
    load_state_into,
    read_checkpoint_config,
    read_state_dict,
    write_model_files,
)
from ._config import TrainConfig
from ._folders import current, recover, write_folder
from ._iso import initial_state_loss, optimize_initial_states
from ._log import LOG_FILE, EpochLog
from ._state_io import flatten_optimizer, read_state, unflatten_optimizer, write_state
from ._windows import BatchTransform, window_tensors


class TrainingDiverged(FloatingPointError):
    """The training loss became non-finite: `loss` in epoch `epoch` (1-based); the checkpoint
    of epoch `kept_epoch` stays in `out_dir`."""

    def __init__(self, loss: float, epoch: int, kept_epoch: int, out_dir: Path) -> None:
        self.loss, self.epoch, self.kept_epoch, self.out_dir = loss, epoch, kept_epoch, out_dir
        super().__init__(
            f"training diverged: loss is {loss} in epoch {epoch}; the checkpoint of epoch "
            f"{kept_epoch} in {out_dir} is kept"
        )


CONFIG_FILE = "train_config.json"
CHECKPOINT_DIR = "checkpoint"
_ISO_KEY = "iso.initial_states"
_FREE_ON_RESUME = {"progress", "restore_best", "checkpoint_every"}
"""Config fields a resumed run may change: they do not affect the weights."""

EpochCallback = Callable[[dict[str, Any]], "bool | None"]
"""Called after each epoch (and its checkpoint, where one is due) with its log record;
returning True stops the run there, after writing its checkpoint (resumable later, unlike
early stopping)."""


@dataclass(frozen=True)
class TrainResult:
    """What a call to `train` / `Trainer.fit` ended with."""

    model: TransitionModel
    """The trained model: with the best validation weights if `restore_best` and the run
    completed, else with the latest epoch's weights."""
    out_dir: Path
    """The run folder; `physprior.load_model(out_dir)` loads the exported model."""
    epochs_done: int
    """Epochs finished so far, over all resumed parts of the run."""
    best_epoch: int | None
    """Epoch (from 1) of the exported model."""
    best_val_loss: float | None
    """Its validation loss (`None` without validation windows)."""
    stopped_early: bool
    """Whether early stopping ended the run."""
    completed: bool
    """False when a callback interrupted the run before its end (resume to continue)."""
    history: list[dict[str, Any]]
    """The records of `log.jsonl`, one per finished epoch."""


@dataclass
class _Progress:
    """The run's bookkeeping, saved in every checkpoint."""

    epochs_done: int = 0
    best_val_loss: float | None = None
    best_epoch: int | None = None
    bad_epochs: int = 0
    stopped_early: bool = False

    def __post_init__(self) -> None:
        # Read back from `trainer.json`, which the weights' checksum does not cover.
        check_field_types(self)
        if self.epochs_done < 0 or self.bad_epochs < 0:
            raise ValueError(
                f"epochs_done ({self.epochs_done}) and bad_epochs ({self.bad_epochs}) must be >= 0"
            )
        if self.best_epoch is not None and not 1 <= self.best_epoch <= self.epochs_done:
            raise ValueError(
                f"best_epoch must be in 1..epochs_done={self.epochs_done}, got {self.best_epoch}"
            )


class Trainer:
    """Trains one model with one `TrainConfig` into one run folder.

    Model-agnostic: it calls `model.fit_normalization(train_states, train_actions)` once (with
    a `transform`, on the transformed first 256 windows) and
    `model.training_loss(states, actions, loss=..., initial_states=...)` per batch, nothing
    else of the model's own. Validation runs in evaluation mode (the model's test integrator)
    under `torch.no_grad()`, from the observed initial states, on the held-out windows the
    caller passes; models that need autograd inside their forward pass enable it themselves.
    """

    def __init__(
        self, model: TransitionModel, config: TrainConfig, out_dir: str | os.PathLike[str]
    ) -> None:
        if not isinstance(model, TransitionModel):
            raise TypeError(f"expected a physprior TransitionModel, got {type(model).__name__}")
        if not isinstance(config, TrainConfig):
            raise TypeError(f"config must be a TrainConfig, got {type(config).__name__}")
        if not model.trained_as_one:
            raise TypeError(
                f"a {model.name!r} model is not trained as one model: use "
                "physprior.training.train_ensemble (physprior train ... --ensemble K)"
            )
        self.model = model
        self.config = config
        self.out_dir = Path(out_dir)

    # ------------------------------------------------------------------------------ public
    def fit(
        self,
        train_windows: Any,
        val_windows: Any = None,
        *,
        resume: bool = False,
        callback: EpochCallback | None = None,
        transform: BatchTransform | None = None,
    ) -> TrainResult:
        """Train on `train_windows`, validate on `val_windows`, write the run folder.

        Windows are `physprior.data.Windows` or pairs `(states (N, T+1, D), actions (N, T, A))`
        (validation windows may have another T). `resume=True` continues from the run's last
        checkpoint (from scratch if there is none yet); `resume=False` refuses a folder that
        already holds a run. The model is moved to the config's device and dtype in place.
        One process trains into a folder at a time: a second gets a `ValueError` and writes
        nothing.

        `transform(states, actions) -> (inputs, actions)` turns each batch of windows into
        what the model reads, for training and validation alike (e.g.
        `physprior.data.FrameRenderer(env, "hgn")` draws states as frames, so a pixel dataset
        is held as states). It must be deterministic for a resumed run to match.
        """
        check_output_folder(self.out_dir, "out_dir")
        cfg, model = self.config, self.model
        device, dtype = torch.device(cfg.device), cfg.torch_dtype
        model.to(device=device, dtype=dtype)
        if transform is not None and not callable(transform):
            raise TypeError(f"transform must be callable or None, got {type(transform).__name__}")
        self._transform = transform
        train_s, train_a = window_tensors(
            train_windows, model, what="training", dtype=dtype, device=device, transform=transform
        )
        val = None
        if val_windows is not None:
            val = window_tensors(
                val_windows,
                model,
                what="validation",
                dtype=dtype,
                device=device,
                transform=transform,
            )
        if cfg.needs_validation and val is None:
            raise ValueError(
                "schedule 'plateau' and early_stopping need validation windows; none were given"
            )
        if cfg.iso and transform is not None:
            raise ValueError("iso (initial-state optimisation) does not apply with a transform")
        if cfg.iso and not model.supports_initial_states:
            raise ValueError(
                f"iso (initial-state optimisation) does not apply to {model.name!r}, which "
                "infers its initial states itself; train it with iso=False"
            )
        params = [p for p in model.parameters() if p.requires_grad]
        if not params:
            raise ValueError(f"model {model.name!r} has no trainable parameters")

        self._fingerprint = _fingerprint(train_s, train_a, val)
        self._iso_states = train_s[:, 0].clone() if cfg.iso else None
        groups: list[dict[str, Any]] = [{"params": params}]
        if self._iso_states is not None and cfg.iso_method == "joint":
            # The initial states are parameters of the loss, stepped by the same optimiser.
            self._iso_states.requires_grad_(True)
            groups.append({"params": [self._iso_states], "weight_decay": 0.0})
        optimizer = torch.optim.AdamW if cfg.optimizer == "adamw" else torch.optim.Adam
        self._optimizer = optimizer(groups, lr=cfg.lr, weight_decay=cfg.weight_decay)
        self._plateau = None
        if cfg.schedule == "plateau":
            self._plateau = torch.optim.lr_scheduler.ReduceLROnPlateau(
                self._optimizer,
                mode="min",
                factor=cfg.plateau_factor,
                patience=cfg.plateau_patience,
            )
        self._progress = _Progress()
        self._improved = False
        self._validating = val is not None

        with output_lock(self.out_dir, "out_dir", folder=True):
            checkpoint = self.out_dir / CHECKPOINT_DIR
            if resume and current(checkpoint) is not None:
                recover(checkpoint)
                recover(self.out_dir / RUN_MODEL_DIR)
                self._restore(checkpoint)
            else:
                self._start_fresh(resume, train_s, train_a)
            self._checkpointed_epoch = self._progress.epochs_done
            log = EpochLog(self.out_dir / LOG_FILE, self._progress.epochs_done)

            completed = self._loop(train_s, train_a, val, log, callback)
            self._optimizer.zero_grad(set_to_none=True)  # frees the last batch's gradients
            if completed and cfg.restore_best:
                self._load_exported()
            p = self._progress
            return TrainResult(
                model=model,
                out_dir=self.out_dir,
                epochs_done=p.epochs_done,
                best_epoch=p.best_epoch,
                best_val_loss=p.best_val_loss,
                stopped_early=p.stopped_early,
                completed=completed,
                history=log.records(),
            )

    # ------------------------------------------------------------------------------ loop
    def _loop(
        self,
        train_s: Tensor,
        train_a: Tensor,
        val: tuple[Tensor, Tensor] | None,
        log: EpochLog,
        callback: EpochCallback | None,
    ) -> bool:
        cfg, p = self.config, self._progress
        bar = progress_bar(
            total=cfg.epochs,
            initial=p.epochs_done,
            desc=f"train {self.model.name}",
            unit="epoch",
            enabled=cfg.progress,
            dynamic_ncols=True,
        )
        device = torch.device(cfg.device)
        rng_devices = [device.index or 0] if device.type == "cuda" else []
        try:
            while p.epochs_done < cfg.epochs and not p.stopped_early:
                epoch = p.epochs_done
                # Any global randomness a model draws inside the epoch is a function of
                # (seed, epoch) too; the caller's random state is restored afterwards.
                with torch.random.fork_rng(devices=rng_devices):
                    torch.manual_seed(_derive_seed(cfg.seed, epoch, "torch"))
                    record = self._epoch(epoch, train_s, train_a, val)
                due = p.epochs_done % cfg.checkpoint_every == 0
                done = p.epochs_done >= cfg.epochs or p.stopped_early
                self._persist(record, log, checkpoint=due or done)
                bar.set_postfix(
                    train=f"{record['train_loss']:.3e}",
                    val="-" if record["val_loss"] is None else f"{record['val_loss']:.3e}",
                    refresh=False,
                )
                bar.update(1)
                if callback is not None and callback(record):
                    if self._checkpointed_epoch != p.epochs_done:
                        self._save()
                    return p.stopped_early or p.epochs_done >= cfg.epochs
        finally:
            bar.close()
        return True

    def _epoch(
        self, epoch: int, train_s: Tensor, train_a: Tensor, val: tuple[Tensor, Tensor] | None
    ) -> dict[str, Any]:
        cfg, model, optimizer, p = self.config, self.model, self._optimizer, self._progress
        start = time.perf_counter()
        if cfg.schedule in ("cosine", "exponential"):
            rate = _cosine(cfg, epoch) if cfg.schedule == "cosine" else _exponential(cfg, epoch)
            for group in optimizer.param_groups:
                group["lr"] = rate
        lr = float(optimizer.param_groups[0]["lr"])
        model.train()

        iso = self._iso_states is not None and epoch >= cfg.iso_warmup_epochs
        joint = iso and cfg.iso_method == "joint"
        if iso and not joint:
            assert self._iso_states is not None
            self._iso_states = optimize_initial_states(
                model,
                train_s,
                train_a,
                self._iso_states,
                iterations=cfg.iso_iterations,
                loss=cfg.loss,
                batch_size=cfg.iso_batch_size,
            )

        n = train_s.shape[0]
        generator = torch.Generator().manual_seed(_derive_seed(cfg.seed, epoch, "batches"))
        order = torch.randperm(n, generator=generator).to(train_s.device)
        params = optimizer.param_groups[0]["params"]  # the model's: clipping leaves z0 alone
        total = 0.0
        steps_start = time.perf_counter()
        for batch in order.split(cfg.batch_size):
            initial = self._iso_states[batch] if iso and self._iso_states is not None else None
            if joint:
                assert initial is not None
                # The initial states are fitted with the model, on ISO's own objective.
                loss = initial_state_loss(model, train_s[batch], train_a[batch], initial, cfg.loss)
            else:
                states, actions = self._inputs(train_s[batch], train_a[batch])
                loss = model.training_loss(states, actions, loss=cfg.loss, initial_states=initial)
            value = float(loss.detach())
            if not math.isfinite(value):
                raise TrainingDiverged(value, epoch + 1, self._checkpointed_epoch, self.out_dir)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if cfg.grad_clip is not None:
                torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
            optimizer.step()
            total += value * len(batch)
        steps_seconds = time.perf_counter() - steps_start

        val_loss = self._validate(*val) if val is not None else None
        if val_loss is None:
            improved = True
        else:
            best = p.best_val_loss
            improved = math.isfinite(val_loss) and (best is None or val_loss < best)
        if improved:
            p.best_val_loss, p.best_epoch, p.bad_epochs = val_loss, epoch + 1, 0
        else:
            p.bad_epochs += 1
        if self._plateau is not None and val_loss is not None:
            self._plateau.step(val_loss)
        if cfg.early_stopping is not None and p.bad_epochs >= cfg.early_stopping:
            p.stopped_early = True
        p.epochs_done = epoch + 1
        self._improved = improved
        return {
            "epoch": epoch + 1,
            "train_loss": total / n,
            "val_loss": val_loss if val_loss is None or math.isfinite(val_loss) else None,
            "lr": lr,
            "seconds": time.perf_counter() - start,
            "windows_per_second": n / max(steps_seconds, 1e-12),
        }

    def _inputs(self, states: Tensor, actions: Tensor) -> tuple[Tensor, Tensor]:
        """A batch as the model reads it: through the caller's transform, if any."""
        return (states, actions) if self._transform is None else self._transform(states, actions)

    def _validate(self, states: Tensor, actions: Tensor) -> float:
        """Mean validation loss over windows, from the observed initial states."""
        model, size = self.model, self.config.batch_size
        model.eval()
        total = 0.0
        with torch.no_grad():
            for i in range(0, states.shape[0], size):
                inputs, acts = self._inputs(states[i : i + size], actions[i : i + size])
                batch_loss = model.training_loss(inputs, acts, loss=self.config.loss)
                total += float(batch_loss.detach()) * states[i : i + size].shape[0]
        model.train()
        return total / states.shape[0]

    # ------------------------------------------------------------------------------ state
    def _persist(self, record: dict[str, Any], log: EpochLog, *, checkpoint: bool) -> None:
        # With validation the best weights are exported whenever they improve, checkpoint or
        # not: a resumed run repeats the epochs since its checkpoint and exports the same
        # weights again. Without, every epoch counts as improved and the last is the best: it
        # is exported with each checkpoint (`_save`).
        if self._improved and self._validating:
            self._export()
        log.append(record)
        if checkpoint:
            self._save()

    def _export(self) -> None:
        write_folder(self.out_dir / RUN_MODEL_DIR, lambda tmp: write_model_files(self.model, tmp))

    def _save(self) -> None:
        """Write the checkpoint of the epochs done (and, without validation, export them)."""
        if not self._validating:
            self._export()
        write_folder(self.out_dir / CHECKPOINT_DIR, self._write_checkpoint)
        self._checkpointed_epoch = self._progress.epochs_done

    def _write_checkpoint(self, folder: Path) -> None:
        write_model_files(self.model, folder)
        tensors, optimizer_info = flatten_optimizer(self._optimizer.state_dict())
        if self._iso_states is not None:
            tensors[_ISO_KEY] = self._iso_states.detach()
        info = {
            "train_config": self.config.to_dict(),
            "progress": dataclasses.asdict(self._progress),
            "optimizer": optimizer_info,
            "plateau": None if self._plateau is None else self._plateau.state_dict(),
            "data_sha256": self._fingerprint,
        }
        write_state(folder, tensors, info)

    def _restore(self, checkpoint: Path) -> None:
        model, where = self.model, self.out_dir
        header = read_checkpoint_config(checkpoint)
        own = {"model": model.name, "config": _json_roundtrip(model.config.to_dict())}
        saved_config = _with_new_defaults(header["config"], model.config)
        if header["model"] != own["model"] or saved_config != own["config"]:
            raise ValueError(
                f"cannot resume {where}: it trained model {header['model']!r} with another "
                "config than the model given"
            )
        load_state_into(model, read_state_dict(checkpoint, header), where=checkpoint)
        tensors, info = read_state(checkpoint)
        saved = _with_new_defaults(info.get("train_config", {}), self.config)
        now = _json_roundtrip(self.config.to_dict())
        changed = sorted(
            k for k in (now.keys() | saved.keys()) - _FREE_ON_RESUME if now.get(k) != saved.get(k)
        )
        if changed:
            shown = ", ".join(f"{k} ({saved.get(k)!r} -> {now.get(k)!r})" for k in changed)
            raise ValueError(f"cannot resume {where}: the config differs in {shown}")
        if info.get("data_sha256") != self._fingerprint:
            raise ValueError(f"cannot resume {where}: the training or validation windows differ")
        try:
            self._optimizer.load_state_dict(unflatten_optimizer(tensors, info["optimizer"]))
            if self._plateau is not None:
                self._plateau.load_state_dict(info["plateau"])
            if self._iso_states is not None:
                with torch.no_grad():  # in place: the optimiser may hold this tensor
                    self._iso_states.copy_(tensors[_ISO_KEY])
            self._progress = _Progress(**info["progress"])
        except (KeyError, TypeError, ValueError) as err:
            raise CheckpointError(f"training checkpoint {checkpoint} is unusable: {err}") from None

    def _start_fresh(self, resume: bool, train_s: Tensor, train_a: Tensor) -> None:
        out = self.out_dir
        if not resume and (current(out / CHECKPOINT_DIR) is not None or (out / LOG_FILE).exists()):
            raise FileExistsError(
                f"{out} already holds a training run; resume it (resume=True, --resume) or choose "
                "another folder"
            )
        if self._transform is None:
            self.model.fit_normalization(train_s, train_a)
        else:  # a sample: transforming every window at once is what the transform avoids
            self.model.fit_normalization(*self._inputs(train_s[:256], train_a[:256]))
        run = {
            "train_config": self.config.to_dict(),
            "model": self.model.name,
            "model_config": self.model.config.to_dict(),
        }
        atomic_write_text(out / CONFIG_FILE, json.dumps(run, indent=2, sort_keys=True) + "\n")

    def _load_exported(self) -> None:
        folder = self.out_dir / RUN_MODEL_DIR
        header = read_checkpoint_config(folder)
        load_state_into(self.model, read_state_dict(folder, header), where=folder)


def train(
    model: TransitionModel,
    train_windows: Any,
    val_windows: Any,
    config: TrainConfig,
    out_dir: str | os.PathLike[str],
    *,
    resume: bool = False,
    callback: EpochCallback | None = None,
    transform: BatchTransform | None = None,
) -> TrainResult:
    """Train `model` on windows and write the run to `out_dir`; see `Trainer.fit`.

    `val_windows` may be `None` (no validation: no plateau schedule or early stopping, and
    the exported model is the latest).
    """
    return Trainer(model, config, out_dir).fit(
        train_windows, val_windows, resume=resume, callback=callback, transform=transform
    )


# ---------------------------------------------------------------------------------- helpers
def _cosine(cfg: TrainConfig, epoch: int) -> float:
    """Cosine annealing from `lr` at epoch 0 towards `lr_min` at epoch `epochs`."""
    return cfg.lr_min + (cfg.lr - cfg.lr_min) * (1 + math.cos(math.pi * epoch / cfg.epochs)) / 2


def _exponential(cfg: TrainConfig, epoch: int) -> float:
    """`lr * lr_decay**epoch`, not below `lr_min`."""
    return max(cfg.lr_min, cfg.lr * cfg.lr_decay**epoch)


def _derive_seed(seed: int, epoch: int, stream: str) -> int:
    """A 63-bit seed that depends only on `(seed, epoch, stream)`."""
    digest = hashlib.sha256(f"physprior:{stream}:{seed}:{epoch}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


def _fingerprint(train_s: Tensor, train_a: Tensor, val: tuple[Tensor, Tensor] | None) -> str:
    """SHA-256 of the windows, so a run never resumes on other data."""
    digest = hashlib.sha256()
    for tensor in (train_s, train_a, *(val or ())):
        digest.update(str(tuple(tensor.shape)).encode())
        digest.update(tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _with_new_defaults(saved: dict[str, Any], config: Any) -> dict[str, Any]:
    """`saved` (a config as a checkpoint recorded it) with the fields added to `config`'s
    class since then filled with their defaults: a field added later keeps the old behaviour
    at its default, so a run started before it resumes while it is left at the default."""
    filled = dict(saved)
    for field in dataclasses.fields(config):
        if field.name not in filled and field.default is not dataclasses.MISSING:
            filled[field.name] = _json_roundtrip(field.default)
    return filled


def _json_roundtrip(value: Any) -> Any:
    """`value` as it reads back from JSON (tuples become lists), for comparisons."""
    return json.loads(json.dumps(value))
