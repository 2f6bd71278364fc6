"""Suite "srnn-chain": SRNN Tables 1 and 2, learning the noisy spring chain.

The SRNN paper (Chen et al. 2020, section 4, Tables 1-2) trains O-NETs (a neural ODE) and
H-NETs (a separable learned Hamiltonian `K(p) + V(q)`) single-step or recurrently, with Euler
or leapfrog in training and in testing (the "E-E", "E-L", "L-L" labels: train - test
integrator), with and without initial-state optimisation (ISO), against a vanilla RNN and an
LSTM, on noisy observations of a chain of 20 masses and 21 springs between two walls. Every
row of both tables is a row of this suite:

| rows | physprior model |
|---|---|
| O-NET, single-step or recurrent, E-E / E-L / L-L | `node`, 1 hidden layer, tanh |
| H-NET, single-step or recurrent, E-E / E-L / L-L | `srnn` (its separable H-NET), `iso` off |
| SRNN = recurrent H-NET L-L | `srnn`, leapfrog-leapfrog |
| vanilla RNN, LSTM | `rnn`, `lstm`, recurrent |
| "+ ISO" (Table 2, recurrent models) | the same model, trained and tested with ISO |

`train_mode` is `single` or `recurrent`; `integrator` and `test_integrator` are `euler` (E) or
`leapfrog` (L). ISO is `TrainConfig(iso=True, iso_warmup_epochs, iso_iterations)` in training
and `fit_initial_state` before the test rollout.

Data (one set per seed, shared by all rows): `physprior/SpringChain-v0` (the paper's chain,
`chain_seed` 0), zero actions, i.i.d. Gaussian noise of std 0.3 on every observed `q` and `p`
of the training, validation and test trajectories (`physprior.data.add_noise`). Training
trajectories have 10 states (recurrent T = 9; single-step models train on the 9 one-step pieces
of each). Test trajectories have `K + H` states: ISO rows fit the initial state to the first
K = 10 noisy states (`physprior.training.fit_initial_state`, L-BFGS) and predict the next
H = 200; rows without ISO start from the noisy observation at step K - 1 and predict the same
200 states.

Metrics (per job, means over the test trajectories):

- `position_error` (headline): the paper's error, the L2 distance between predicted and
  observed (noisy) positions of the 20 masses as one vector, averaged over the H predicted
  steps (`physprior.evaluation.metrics.position_error`).
- `position_error_clean`: the same against the noiseless trajectory.
- `rollout_error`: decon-hnn's geometric-mean relative state error, against the noiseless
  trajectory.
- `energy_violation`: geometric mean over time of `|H(z_hat) - H(z)| / (|H(z_hat)| + |H(z)|)`,
  true `H`, noiseless trajectory.

Curves: `error` (mean relative state error per step against the noiseless trajectory),
`energy_violation` (mean energy violation per step) and `position_error` (mean L2 position error per
step against the observations, the paper's Figure 2). The trajectory is the first test
trajectory from step K - 1 on: noiseless truth and prediction.

Scales:

- `paper`: the paper's protocol (section 4, appendix A.1): 1000 training trajectories, 32
  test trajectories (and 32 validation trajectories for the plateau schedule, as the authors'
  `scripts_chain` does), `K = 10`, `H = 200`; O-NET one hidden layer of 2048, H-NET `K` and
  `V` one hidden layer of 2048 each, RNN/LSTM hidden state 2048; Adam at lr 1e-3 (AdamW with
  weight decay 0 here), ReduceLROnPlateau patience 15 factor 0.7, 1000 epochs, batch 32
  (authors' `scripts_chain`); ISO from epoch 101, 20 L-BFGS iterations a round. The paper does
  not state the noise level; 0.3 is the `--train_noise_level`/`--test_noise_level` of the
  authors' `scripts_chain` (github.com/zhengdao-chen/SRNN).
- `default`: the same protocol, smaller: 256 training trajectories, 32 test, hidden 128,
  100 epochs at lr 1e-2 (at lr 1e-3 a 100-epoch run barely leaves its initial loss), ISO
  from epoch 50 with 10 L-BFGS iterations. 22 jobs a seed; about 15-20 minutes for 2 seeds on
  2 cores (single jobs on a shared machine: about 25 s without ISO, 30-100 s with it).
- `smoke`: every row on a tiny grid (16 trajectories, hidden 8, 2 epochs, K = 3, H = 10), to
  exercise every code path in seconds.

Differences from the paper: AdamW with weight decay 0 (the paper: Adam); the networks see
normalised inputs (see each model's docstring); our ISO objective also counts the first
observation (`physprior.training._iso`); the test-time fit uses `torch.optim.LBFGS`
(unbounded), not SciPy's L-BFGS-B.
"""

from __future__ import annotations

import functools
import json
import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from torch import Tensor

from physprior.benchmarks._common import data_hash, train_model
from physprior.benchmarks._framework import (
    Claim,
    Job,
    JobResult,
    PaperRow,
    Scale,
    Suite,
    scale_settings,
)
from physprior.data import add_noise, generate_trajectories, make_windows
from physprior.evaluation import metrics, predict
from physprior.models import make
from physprior.training import TrainConfig, fit_initial_state

__all__ = ["ENV_ID", "NOISE_STD", "ROWS", "SUITE"]

ENV_ID = "physprior/SpringChain-v0"
NAME = "srnn-chain"
#: Observation noise std (the authors' `scripts_chain`; the paper gives no value).
NOISE_STD = 0.3


@dataclass(frozen=True)
class _Row:
    """One row of SRNN Table 1 or 2 and how physprior builds it."""

    label: str
    model: str  # "node", "srnn", "rnn", "lstm"
    train_mode: str  # "single" or "recurrent"
    integrators: tuple[str, str] | None  # (train, test); None for RNN / LSTM
    iso: bool
    paper_mean: float
    paper_std: float

    @property
    def table(self) -> str:
        return "SRNN Table 2" if self.iso else "SRNN Table 1"


_E, _L = "euler", "leapfrog"
_PAIRS = {"E-E": (_E, _E), "E-L": (_E, _L), "L-L": (_L, _L)}


def _build_rows() -> tuple[_Row, ...]:
    """The 22 rows of Tables 1 and 2, in the paper's order."""
    table1 = {  # (mode, net): {pair: (mean, std)}
        ("single", "O-NET"): {"E-E": (6.93, 1.22), "E-L": (5.87, 1.04), "L-L": (7.28, 1.48)},
        ("single", "H-NET"): {"E-E": (7.24, 0.64), "E-L": (3.32, 0.89), "L-L": (3.36, 0.67)},
        ("recurrent", "O-NET"): {"E-E": (2.88, 0.45), "E-L": (4.12, 0.41), "L-L": (3.34, 0.86)},
        ("recurrent", "H-NET"): {"E-E": (7.58, 0.63), "E-L": (5.26, 0.63), "L-L": (2.37, 0.87)},
    }
    table2 = {
        "O-NET": {"E-E": (2.13, 0.37), "E-L": (3.59, 0.50), "L-L": (2.27, 0.60)},
        "H-NET": {"E-E": (6.26, 0.60), "E-L": (3.00, 0.63), "L-L": (1.45, 0.32)},
    }
    model_of = {"O-NET": "node", "H-NET": "srnn"}
    mode_name = {"single": "single-step", "recurrent": "recurrent"}
    rows: list[_Row] = []
    for (mode, net), numbers in table1.items():
        for pair, (mean, std) in numbers.items():
            label = f"{mode_name[mode]} {net} {pair}"
            if (mode, net, pair) == ("recurrent", "H-NET", "L-L"):
                label = "SRNN (recurrent H-NET L-L)"
            rows.append(_Row(label, model_of[net], mode, _PAIRS[pair], False, mean, std))
    rows.append(_Row("vanilla RNN", "rnn", "recurrent", None, False, 4.80, 0.82))
    rows.append(_Row("LSTM", "lstm", "recurrent", None, False, 5.95, 1.05))
    for net, numbers in table2.items():
        for pair, (mean, std) in numbers.items():
            label = f"recurrent {net} {pair} + ISO"
            if (net, pair) == ("H-NET", "L-L"):
                label = "SRNN-ISO (recurrent H-NET L-L + ISO)"
            rows.append(_Row(label, model_of[net], "recurrent", _PAIRS[pair], True, mean, std))
    rows.append(_Row("vanilla RNN + ISO", "rnn", "recurrent", None, True, 4.72, 0.94))
    rows.append(_Row("LSTM + ISO", "lstm", "recurrent", None, True, 5.81, 0.98))
    return tuple(rows)


ROWS: tuple[_Row, ...] = _build_rows()
SRNN_ISO = "SRNN-ISO (recurrent H-NET L-L + ISO)"
SRNN = "SRNN (recurrent H-NET L-L)"
SINGLE_LL_HNET = "single-step H-NET L-L"

# Per scale: data sizes, network size and training budget (see the module docstring).
_SCALES: dict[str, dict[str, Any]] = {
    "smoke": {
        "data": {
            "n_train": 16,
            "n_val": 4,
            "n_test": 4,
            "train_length": 10,
            "observed": 3,
            "horizon": 10,
        },
        "hidden": 8,
        "train": {
            "epochs": 2,
            "batch_size": 16,
            "lr": 1e-3,
            "iso_warmup_epochs": 1,
            "iso_iterations": 2,
        },
        "test_fit_iterations": 3,
    },
    "default": {
        "data": {
            "n_train": 256,
            "n_val": 32,
            "n_test": 32,
            "train_length": 10,
            "observed": 10,
            "horizon": 200,
        },
        "hidden": 128,
        "train": {
            "epochs": 100,
            "batch_size": 32,
            "lr": 1e-2,
            "iso_warmup_epochs": 50,
            "iso_iterations": 10,
        },
        "test_fit_iterations": 50,
    },
    "paper": {
        "data": {
            "n_train": 1000,
            "n_val": 32,
            "n_test": 32,
            "train_length": 10,
            "observed": 10,
            "horizon": 200,
        },
        "hidden": 2048,
        "train": {
            "epochs": 1000,
            "batch_size": 32,
            "lr": 1e-3,
            "iso_warmup_epochs": 100,
            "iso_iterations": 20,
        },
        "test_fit_iterations": 50,
    },
}


def _job_params(row: _Row, scale: Mapping[str, Any]) -> dict[str, Any]:
    """Everything one job needs besides its seed: JSON-able."""
    model_config: dict[str, Any] = {"hidden": scale["hidden"], "train_mode": row.train_mode}
    if row.integrators is not None:
        model_config["layers"] = 1
        model_config["activation"] = "tanh"
        model_config["integrator"], model_config["test_integrator"] = row.integrators
    train = dict(scale["train"])
    iso_warmup = train.pop("iso_warmup_epochs")
    iso_iterations = train.pop("iso_iterations")
    if row.model == "srnn":
        # The model carries its ISO settings too (as `physprior train` reads them).
        model_config.update(
            iso=row.iso,
            iso_warmup_epochs=iso_warmup,
            iso_iterations=iso_iterations,
            iso_test_steps=scale["data"]["observed"],
        )
    train.update(
        weight_decay=0.0,
        schedule="plateau",
        plateau_patience=15,
        plateau_factor=0.7,
        iso=row.iso,
        iso_warmup_epochs=iso_warmup,
        iso_iterations=iso_iterations,
    )
    return {
        "model": row.model,
        "model_config": model_config,
        "train": train,
        "data": dict(scale["data"], noise_std=NOISE_STD),
        "test_fit_iterations": scale["test_fit_iterations"] if row.iso else 0,
    }


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: every row of Tables 1 and 2 for seeds `0 .. seeds - 1` (seed-major)."""
    settings = scale_settings(_SCALES, scale, seeds)
    return [
        Job(NAME, row.label, ENV_ID, seed, _job_params(row, settings))
        for seed in range(seeds)
        for row in ROWS
    ]


# ---------------------------------------------------------------------------------- data
@dataclass(frozen=True)
class _Data:
    """One seed's noisy spring-chain data, float64, `D = 40`."""

    train: NDArray[np.float64]  # (N, L, D) noisy
    val: NDArray[np.float64]  # (V, L, D) noisy
    test_noisy: NDArray[np.float64]  # (B, K + H, D)
    test_clean: NDArray[np.float64]  # (B, K + H, D)
    q_dim: int
    dt: float

    def digest(self) -> str:
        """sha256 (16 hex) of every array used, with its shape."""
        return data_hash(self.train, self.val, self.test_noisy, self.test_clean)


def _trajectories(env_id: str, n: int, length: int, seed: int) -> tuple[Any, Any]:
    """`n` noiseless zero-action trajectories of `length` states as windows, and the meta."""
    dataset = generate_trajectories(env_id, n, length, seed=seed, progress=False)
    return make_windows(dataset, length), dataset.meta


@functools.lru_cache(maxsize=2)
def _make_data(env_id: str, seed: int, spec_json: str) -> _Data:
    """The data of one seed; cached because every row of a seed uses the same data."""
    spec = json.loads(spec_json)
    # Six independent streams from the job's seed: three initial-state draws, three noises.
    streams = [int(s) for s in np.random.SeedSequence(seed).generate_state(6)]
    std = float(spec["noise_std"])
    length = int(spec["train_length"])
    test_length = int(spec["observed"]) + int(spec["horizon"])
    train, meta = _trajectories(env_id, int(spec["n_train"]), length, streams[0])
    val, _ = _trajectories(env_id, int(spec["n_val"]), length, streams[1])
    test, _ = _trajectories(env_id, int(spec["n_test"]), test_length, streams[2])
    return _Data(
        train=np.asarray(add_noise(train, std, seed=streams[3]).states, np.float64),
        val=np.asarray(add_noise(val, std, seed=streams[4]).states, np.float64),
        test_noisy=np.asarray(add_noise(test, std, seed=streams[5]).states, np.float64),
        test_clean=np.asarray(test.states, np.float64),
        q_dim=int(meta.q_dim),
        dt=float(meta.dt),
    )


# ---------------------------------------------------------------------------------- a job
def run_job(job: Job) -> JobResult:
    """Generate the seed's data, train the row's model, predict the test trajectories, score.

    Deterministic for `job.seed` on the CPU.
    """
    start = time.perf_counter()
    params = job.params
    spec = dict(params["data"])
    data = _make_data(job.env_id, int(job.seed), _canonical(spec))
    n_states = data.train.shape[-1]

    torch.manual_seed(job.seed)
    model = make(
        str(params["model"]),
        obs_dim=n_states,
        action_dim=0,
        q_dim=data.q_dim,
        state_layout="qp",
        dt=data.dt,
        env_id=job.env_id,
        **dict(params["model_config"]),
    )
    config = TrainConfig(**dict(params["train"]), seed=int(job.seed), progress=False)
    model = train_model(
        model, (torch.tensor(data.train), None), (torch.tensor(data.val), None), config
    )

    k = int(spec["observed"])
    noisy = torch.tensor(data.test_noisy, dtype=model.dtype)
    clean = torch.tensor(data.test_clean, dtype=model.dtype)
    no_actions = noisy.new_zeros(noisy.shape[0], noisy.shape[1] - 1, 0)
    if bool(params["train"]["iso"]):
        fit = functools.partial(fit_initial_state, iterations=int(params["test_fit_iterations"]))
        predicted = predict(model, noisy, no_actions, observed_steps=k, fit_initial_state=fit)
        predicted = predicted[:, k - 1 :]
    else:
        predicted = predict(model, noisy[:, k - 1 :], no_actions[:, k - 1 :])
    observed, truth = noisy[:, k - 1 :], clean[:, k - 1 :]

    energy = gym.make(job.env_id).unwrapped.energy  # type: ignore[attr-defined]
    predicted64, truth64 = predicted.double(), truth.double()
    violation = metrics.energy_violation(energy(predicted64), energy(truth64))
    q = data.q_dim
    position_curve = torch.linalg.vector_norm(predicted[..., :q] - observed[..., :q], dim=-1)
    values = {
        "position_error": metrics.position_error(predicted, observed, q),
        "position_error_clean": metrics.position_error(predicted, truth, q),
        "rollout_error": metrics.rollout_error(predicted, truth),
        "energy_violation": metrics.geometric_mean_over_time(violation),
    }
    return JobResult(
        job=job,
        metrics={name: float(v.double().mean()) for name, v in values.items()},
        data_hash=data.digest(),
        seconds=time.perf_counter() - start,
        curves={
            "error": _curve(metrics.relative_error(predicted, truth)),
            "energy_violation": _curve(violation),
            "position_error": _curve(position_curve),
        },
        trajectory={"true": _rows(truth[0]), "predicted": _rows(predicted[0])},
    )


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def _curve(per_step: Tensor) -> list[float]:
    """Mean over trajectories of a `(B, T + 1)` series; non-finite steps become inf."""
    out = []
    for x in per_step.double().mean(dim=0).tolist():
        out.append(float(x) if math.isfinite(x) else math.inf)
    return out


def _rows(states: Tensor) -> list[list[float]]:
    return [[float(x) for x in row] for row in states.double().tolist()]


# ---------------------------------------------------------------------------------- claims
def _lowest(means: Mapping[tuple[str, str], Mapping[str, float]]) -> bool | None:
    """SRNN-ISO has the lowest `position_error` of all rows measured on the spring chain."""
    errors = {
        row: m["position_error"]
        for (row, env), m in means.items()
        if env == ENV_ID and "position_error" in m
    }
    if SRNN_ISO not in errors or len(errors) < 2:
        return None
    best = errors[SRNN_ISO]
    if not math.isfinite(best):
        return False
    return all(best <= v or not math.isfinite(v) or row == SRNN_ISO for row, v in errors.items())


def _lower(
    better: str, worse: str
) -> Callable[[Mapping[tuple[str, str], Mapping[str, float]]], bool | None]:
    """A check that row `better` has a lower `position_error` than row `worse`."""

    def check(means: Mapping[tuple[str, str], Mapping[str, float]]) -> bool | None:
        a = means.get((better, ENV_ID), {}).get("position_error")
        b = means.get((worse, ENV_ID), {}).get("position_error")
        if a is None or b is None:
            return None
        return bool(a < b or (math.isfinite(a) and not math.isfinite(b)))

    return check


PAPER: tuple[PaperRow, ...] = tuple(
    PaperRow(row.label, ENV_ID, "position_error", row.paper_mean, row.paper_std, row.table)
    for row in ROWS
)

CLAIMS: tuple[Claim, ...] = (
    Claim(
        "SRNN with initial-state optimisation has the lowest error on the noisy SpringChain",
        _lowest,
    ),
    Claim("ISO lowers the SRNN's error (SRNN Tables 1-2: 2.37 -> 1.45)", _lower(SRNN_ISO, SRNN)),
    Claim(
        "Recurrent training lowers the leapfrog H-NET's error (SRNN Table 1: 3.36 -> 2.37)",
        _lower(SRNN, SINGLE_LL_HNET),
    ),
)

SUITE = Suite(
    name=NAME,
    title="SRNN Tables 1-2: O-NET, H-NET, SRNN, RNN and LSTM on the noisy spring chain",
    metrics=("position_error", "position_error_clean", "rollout_error", "energy_violation"),
    jobs=jobs,
    run_job=run_job,
    paper=PAPER,
    claims=CLAIMS,
)
