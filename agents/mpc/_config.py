"""Configuration dataclasses of the MPC planners (one per planner, STYLE 13).

Action sequences are searched in normalised units: `u in [-1, 1]^A` maps to the env's action
`a = (high + low) / 2 + u * (high - low) / 2`, so standard deviations and the sampling noise
mean the same thing on every environment (0.5 = a quarter of the action range).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

__all__ = [
    "PROPAGATIONS",
    "CEMConfig",
    "ICEMConfig",
    "MPPIConfig",
    "PlannerConfig",
    "planner_config",
]

#: PETS's ways of carrying a candidate through an ensemble (`PlannerConfig.propagation`).
PROPAGATIONS = ("mean", "ts1", "tsinf")


@dataclass(frozen=True)
class PlannerConfig:
    """Fields shared by the planners. Build `CEMConfig` or `MPPIConfig`, not this."""

    name: ClassVar[str] = ""

    horizon: int = 30
    """Planning horizon H: actions per candidate sequence (model steps per rollout)."""
    population: int = 400
    """Candidate action sequences sampled per iteration (per observation)."""
    iterations: int = 5
    """Sampling-and-refitting iterations per decision."""
    alpha: float = 0.1
    """Smoothing (momentum) in [0, 1): each iteration sets `mean = alpha * mean + (1 - alpha)
    * fitted` (the same for the std in CEM). 0: take the fitted values as they are."""
    warm_start: bool = True
    """Start each decision from the previous plan shifted one step (the new last step is the
    action range's centre); `False`: start from the centre every time. The plan restarts
    whenever an episode starts."""
    discount: float = 1.0
    """Discount in (0, 1] of the model rewards along a candidate's rollout."""
    seed: int = 0
    """Seed of the planner's own `torch.Generator` (all its sampling noise)."""
    propagation: str = "mean"
    """How an ensemble's members carry a candidate (PETS's trajectory sampling): `"mean"` the
    members' mean model; `"tsinf"` each particle on one member for the whole rollout (TS-inf);
    `"ts1"` each particle on a member drawn again at every step (TS-1). Members are assigned
    at random, evenly across the particles of an iteration. `ts1` and `tsinf` need an
    ensemble; a single model plans with `"mean"`."""
    particles: int = 1
    """Particles per candidate under `ts1` / `tsinf`: the candidate's score is their mean
    return (PETS: 20)."""

    def __post_init__(self) -> None:
        cls = type(self).__name__
        if self.propagation not in PROPAGATIONS:
            raise ValueError(
                f"{cls}.propagation must be one of {', '.join(PROPAGATIONS)}, got "
                f"{self.propagation!r}"
            )
        if isinstance(self.particles, bool) or not isinstance(self.particles, int):
            raise ValueError(f"{cls}.particles must be a positive integer, got {self.particles!r}")
        if self.particles < 1 or (self.particles > 1 and self.propagation == "mean"):
            raise ValueError(
                f"{cls}.particles must be 1 with propagation 'mean' (the mean model is "
                f"deterministic) and >= 1 otherwise, got {self.particles!r}"
            )
        for field in ("horizon", "population", "iterations"):
            value = getattr(self, field)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{cls}.{field} must be a positive integer, got {value!r}")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ValueError(f"{cls}.seed must be an integer >= 0, got {self.seed!r}")
        if not isinstance(self.warm_start, bool):
            raise ValueError(f"{cls}.warm_start must be true or false, got {self.warm_start!r}")
        _check_real(cls, "alpha", self.alpha, 0.0, 1.0, "[0, 1)", low_open=False)
        _check_real(cls, "discount", self.discount, 0.0, 1.0, "(0, 1]", high_open=False)

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict, with the planner's name under `"planner"`."""
        return {"planner": self.name, **dataclasses.asdict(self)}


@dataclass(frozen=True)
class CEMConfig(PlannerConfig):
    """Cross-entropy method (PETS-style): sample sequences from a diagonal Gaussian over the
    horizon, refit the Gaussian to the `elites` best, act with the first step of the mean.

    Defaults: the decision-time benchmark setting (5 iterations of 400 sequences of 30 steps)
    and PETS' elite count, smoothing and initial std (a quarter of the action range).
    """

    name: ClassVar[str] = "cem"

    elites: int = 40
    """Best candidates the Gaussian is refitted to each iteration, in [2, population]."""
    init_std: float = 0.5
    """Std of the sampling Gaussian at the start of each decision, in normalised units."""
    min_std: float = 0.0
    """Floor on the refitted std (normalised units), so that the search never collapses
    completely; 0: no floor."""

    def __post_init__(self) -> None:
        super().__post_init__()
        if isinstance(self.elites, bool) or not isinstance(self.elites, int):
            raise ValueError(f"CEMConfig.elites must be an integer, got {self.elites!r}")
        if not 2 <= self.elites <= self.population:
            raise ValueError(
                f"CEMConfig.elites must be in [2, population={self.population}], got {self.elites}"
            )
        _check_real("CEMConfig", "init_std", self.init_std, 0.0, math.inf, "> 0")
        _check_real("CEMConfig", "min_std", self.min_std, 0.0, math.inf, ">= 0", low_open=False)
        if self.min_std > self.init_std:
            raise ValueError(
                f"CEMConfig.min_std ({self.min_std}) exceeds init_std ({self.init_std})"
            )


@dataclass(frozen=True)
class MPPIConfig(PlannerConfig):
    """Model-predictive path integral control: perturb the plan with Gaussian noise and move it
    to the average of the perturbed sequences weighted by `softmax(return / temperature)`.

    Defaults: one iteration per decision, as in classic MPPI (the warm start carries the
    optimisation from one step to the next), no smoothing.
    """

    name: ClassVar[str] = "mppi"

    iterations: int = 1
    """Sampling-and-reweighting iterations per decision."""
    temperature: float = 1.0
    """Temperature `lambda > 0` of the weights, in return units: small values follow the best
    candidates, large ones average all."""
    noise_std: float = 0.5
    """Std of the perturbations of the plan, in normalised units (fixed during a decision)."""
    alpha: float = 0.0
    """Smoothing in [0, 1): `mean = alpha * mean + (1 - alpha) * weighted average`."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("MPPIConfig", "temperature", self.temperature, 0.0, math.inf, "> 0")
        _check_real("MPPIConfig", "noise_std", self.noise_std, 0.0, math.inf, "> 0")


@dataclass(frozen=True)
class ICEMConfig(CEMConfig):
    """Improved CEM (Pinneri et al. 2020, "Sample-efficient cross-entropy method for real-time
    planning"): CEM whose samples are coloured noise (power spectrum `1 / f^noise_exponent`
    along the horizon: smooth action sequences), whose population shrinks by
    `population_decay` each iteration, which carries a fraction `keep_elites` of its elites
    into the next iteration and, shifted one step, into the next decision, adds the mean plan
    to the last iteration's candidates, and acts with the best sequence it scored.

    With `noise_exponent=0`, `keep_elites=0`, `population_decay=1`, `add_mean=False` and
    `execute="mean"` it is CEM, sample for sample. Defaults: the paper's (its exponent for
    locomotion, 2-2.5; decay 1.25; 30% of the elites kept; 3 iterations).
    """

    name: ClassVar[str] = "icem"

    iterations: int = 3
    """Iterations per decision (the paper's 3 to 4, with the population decaying)."""
    noise_exponent: float = 2.0
    """`beta >= 0` of the coloured noise: 0 white (CEM), 2 Brownian-like (smooth)."""
    population_decay: float = 1.25
    """`gamma >= 1`: iteration i samples `max(population * gamma^-i, 2 * elites)` sequences."""
    keep_elites: float = 0.3
    """Fraction in [0, 1] of the elites kept as candidates of the next iteration and, shifted
    one step, of the next decision."""
    add_mean: bool = True
    """Add the mean plan to the candidates of the last iteration."""
    execute: str = "best"
    """`"best"`: act with the first step of the best sequence scored in the decision (the
    paper's); `"mean"`: with the mean plan's, as CEM."""

    def __post_init__(self) -> None:
        super().__post_init__()
        _check_real("ICEMConfig", "noise_exponent", self.noise_exponent, 0.0, 10.0, "in [0, 10]",
                    low_open=False, high_open=False)  # fmt: skip
        _check_real("ICEMConfig", "population_decay", self.population_decay, 1.0, math.inf,
                    ">= 1", low_open=False)  # fmt: skip
        _check_real("ICEMConfig", "keep_elites", self.keep_elites, 0.0, 1.0, "in [0, 1]",
                    low_open=False, high_open=False)  # fmt: skip
        if not isinstance(self.add_mean, bool):
            raise ValueError(f"ICEMConfig.add_mean must be true or false, got {self.add_mean!r}")
        if self.execute not in ("best", "mean"):
            raise ValueError(f"ICEMConfig.execute must be 'best' or 'mean', got {self.execute!r}")


_CONFIGS: dict[str, type[PlannerConfig]] = {
    "cem": CEMConfig,
    "mppi": MPPIConfig,
    "icem": ICEMConfig,
}


def planner_config(planner: str, overrides: Mapping[str, Any] | None = None) -> PlannerConfig:
    """The config of planner `"cem"`, `"mppi"` or `"icem"` with `overrides` applied to its
    defaults.

    Unknown planners and unknown fields raise ValueError naming them and the valid choices.

    >>> planner_config("cem", {"horizon": 10}).horizon
    10
    """
    if planner not in _CONFIGS:
        raise ValueError(f"unknown planner {planner!r}; choose one of {', '.join(_CONFIGS)}")
    cls = _CONFIGS[planner]
    raw = dict(overrides or {})
    fields = [f.name for f in dataclasses.fields(cls)]
    unknown = sorted(set(raw) - set(fields))
    if unknown:
        raise ValueError(
            f"unknown {cls.__name__} field(s) {', '.join(unknown)}; valid: {', '.join(fields)}"
        )
    return cls(**raw)


def _check_real(
    cls: str,
    field: str,
    value: Any,
    low: float,
    high: float,
    expect: str,
    *,
    low_open: bool = True,
    high_open: bool = True,
) -> None:
    """Refuse a non-number, NaN, or a value outside the interval, naming `cls.field`."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and not math.isnan(value)
    if ok:
        above = value > low if low_open else value >= low
        below = value < high if high_open else value <= high
        ok = above and below
    if not ok:
        raise ValueError(f"{cls}.{field} must be a number {expect}, got {value!r}")
