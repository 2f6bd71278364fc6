"""The one configuration dataclass of a training run (STYLE 13), saved with the run."""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from typing import Any, Literal

import torch

from physprior._validate import check_field_types

Schedule = Literal["cosine", "plateau", "constant", "exponential"]

_DTYPES: dict[str, torch.dtype] = {"float32": torch.float32, "float64": torch.float64}


@dataclass(frozen=True)
class TrainConfig:
    """How to train a transition model. Every field is saved with the run (`train_config.json`
    and each checkpoint), next to the seed, so a run can be repeated or resumed exactly.

    The defaults follow decon-hnn (AdamW, weight decay 1e-4, batch 200, cosine from 2e-4 to
    1e-6); the SRNN protocol is `lr=1e-3, schedule="plateau"` with patience 15, factor 0.7.
    """

    epochs: int = 256
    """Number of passes over the training windows."""
    batch_size: int = 200
    """Windows per optimiser step (the last batch of an epoch may be smaller)."""
    lr: float = 2e-4
    """Initial learning rate."""
    lr_min: float = 1e-6
    """Final learning rate of the cosine schedule and floor of the exponential one (unused by
    the others)."""
    weight_decay: float = 1e-4
    """Weight decay: decoupled for `optimizer="adamw"`, an L2 term added to the gradient
    (coupled) for `optimizer="adam"`."""
    optimizer: Literal["adamw", "adam"] = "adamw"
    """`"adamw"` (the default) or `"adam"`, whose weight decay is coupled L2 as in
    `torch.optim.Adam` (the decon-hnn and HNN authors' choice). Without weight decay the two
    are the same algorithm."""
    schedule: Schedule = "cosine"
    """`"cosine"`: epoch `e` (from 0) uses `lr_min + (lr - lr_min) (1 + cos(pi e / epochs)) / 2`;
    `"plateau"`: multiply the rate by `plateau_factor` when the validation loss has not improved
    for `plateau_patience` epochs (needs validation windows); `"constant"`: always `lr`;
    `"exponential"`: epoch `e` uses `max(lr_min, lr * lr_decay**e)` (PyTorch's `ExponentialLR`
    stepped once per epoch, stopped at a floor: the SRNN billiard protocol)."""
    lr_decay: float = 0.99
    """Factor per epoch of the exponential schedule, in (0, 1]."""
    plateau_patience: int = 15
    """Epochs without validation improvement before the plateau schedule lowers the rate."""
    plateau_factor: float = 0.7
    """Factor the plateau schedule multiplies the rate by, in (0, 1)."""
    grad_clip: float | None = None
    """Clip the global gradient norm to this value before each step; `None`: no clipping."""
    loss: Literal["l2", "l1"] = "l2"
    """Rollout loss in normalised state units: mean squared (`"l2"`) or absolute (`"l1"`)."""
    early_stopping: int | None = None
    """Stop when the validation loss has not improved for this many epochs (needs validation
    windows); `None`: train all `epochs`."""
    restore_best: bool = True
    """At the end, load the weights with the lowest validation loss into the model (they are
    also the exported checkpoint `model/`); `False` keeps the last epoch's weights."""
    seed: int = 0
    """Seeds the batch order and any randomness inside an epoch. Model initialisation is the
    caller's: call `torch.manual_seed(seed)` before building the model."""
    device: str = "cpu"
    """Torch device to train on. Runs are bitwise reproducible on the CPU."""
    dtype: Literal["float32", "float64"] = "float32"
    """Floating-point type of the model and data during training."""
    progress: bool = True
    """Show a progress bar (epoch, train and validation loss) on stderr."""
    checkpoint_every: int = 1
    """Write the resumable checkpoint every this many epochs (and after the last one, or when
    the run stops). A kill loses at most the epochs since it; resuming repeats them with the
    same result. Runs of many short epochs (a full-batch step each) spend most of their time
    writing checkpoints at 1."""
    iso: bool = False
    """Initial-state optimisation (SRNN section 4.3): after `iso_warmup_epochs`, every epoch
    first refines the initial state of every training window by L-BFGS with the model frozen,
    and the loss then rolls out from the refined states."""
    iso_method: Literal["lbfgs", "joint"] = "lbfgs"
    """`lbfgs` (SRNN's ISO): every epoch refines the initial states by L-BFGS with the model
    frozen. `joint` (VIN's free initial state): the initial states are parameters stepped by
    the same optimiser as the model, batch by batch, on the loss with the observed first
    state counted as one more step (ISO's objective); `iso_iterations` is then unused."""
    iso_warmup_epochs: int = 100
    """Epochs trained from the observed initial states before ISO starts (SRNN: 100)."""
    iso_iterations: int = 20
    """L-BFGS iterations per ISO refinement."""
    iso_batch_size: int | None = None
    """Windows per L-BFGS problem during ISO; `None`: all training windows in one problem.
    Smaller problems bound memory; each window's objective is independent of the others."""

    def __post_init__(self) -> None:
        check_field_types(self)

        def positive_int(name: str, allow_none: bool = False) -> None:
            value = getattr(self, name)
            if allow_none and value is None:
                return
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"TrainConfig.{name} must be a positive integer, got {value!r}")

        for name in (
            "epochs",
            "batch_size",
            "plateau_patience",
            "iso_iterations",
            "checkpoint_every",
        ):
            positive_int(name)
        for name in ("early_stopping", "iso_batch_size"):
            positive_int(name, allow_none=True)
        if self.iso_method not in ("lbfgs", "joint"):
            raise ValueError(
                f"TrainConfig.iso_method must be 'lbfgs' or 'joint', got {self.iso_method!r}"
            )
        if not isinstance(self.iso_warmup_epochs, int) or self.iso_warmup_epochs < 0:
            raise ValueError(
                f"TrainConfig.iso_warmup_epochs must be >= 0, got {self.iso_warmup_epochs!r}"
            )
        for name in ("lr", "lr_min", "weight_decay"):
            value = getattr(self, name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise ValueError(f"TrainConfig.{name} must be a finite number >= 0, got {value!r}")
        if self.lr <= 0:
            raise ValueError(f"TrainConfig.lr must be positive, got {self.lr!r}")
        if self.lr_min > self.lr:
            raise ValueError(f"TrainConfig.lr_min ({self.lr_min}) exceeds lr ({self.lr})")
        if self.schedule not in ("cosine", "plateau", "constant", "exponential"):
            raise ValueError(
                f"TrainConfig.schedule must be 'cosine', 'plateau', 'constant' or "
                f"'exponential', got {self.schedule!r}"
            )
        if not 0 < self.lr_decay <= 1:
            raise ValueError(f"TrainConfig.lr_decay must be in (0, 1], got {self.lr_decay!r}")
        if not 0 < self.plateau_factor < 1:
            raise ValueError(
                f"TrainConfig.plateau_factor must be in (0, 1), got {self.plateau_factor!r}"
            )
        if self.grad_clip is not None and not self.grad_clip > 0:
            raise ValueError(f"TrainConfig.grad_clip must be positive, got {self.grad_clip!r}")
        if self.optimizer not in ("adamw", "adam"):
            raise ValueError(
                f"TrainConfig.optimizer must be 'adamw' or 'adam', got {self.optimizer!r}"
            )
        if self.loss not in ("l2", "l1"):
            raise ValueError(f"TrainConfig.loss must be 'l2' or 'l1', got {self.loss!r}")
        if self.dtype not in _DTYPES:
            raise ValueError(
                f"TrainConfig.dtype must be 'float32' or 'float64', got {self.dtype!r}"
            )
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"TrainConfig.device {self.device!r} is not a torch device") from None
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"TrainConfig.seed must be an integer >= 0, got {self.seed!r}")

    @property
    def torch_dtype(self) -> torch.dtype:
        """`dtype` as a `torch.dtype`."""
        return _DTYPES[self.dtype]

    @property
    def needs_validation(self) -> bool:
        """Whether this config cannot run without validation windows."""
        return self.schedule == "plateau" or self.early_stopping is not None

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> TrainConfig:
        """The config from `to_dict`'s output; unknown fields are refused by name."""
        fields = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - fields)
        if unknown:
            raise ValueError(f"unknown TrainConfig field(s): {', '.join(unknown)}")
        return cls(**raw)
