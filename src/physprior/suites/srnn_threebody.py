"""Suite `srnn-threebody`: SRNN Table 3, learned models against the true equations at dt = 1.

The SRNN paper's claim (section 5): at a large step (dt = 1) a Hamiltonian network trained
recurrently through leapfrog (SRNN) predicts the three-body problem better than the *true*
equations integrated by leapfrog at the same step, because it learns the integrator's
modified equation.

Rows (the paper's error, mean (std) over test trajectories), and one sanity row:

| row | paper |
|---|---|
| recurrent H-NET L-L (SRNN) | 0.26 (0.07) |
| single-step H-NET L-L | 0.35 (0.09) |
| recurrent O-NET L-L | 0.49 (0.10) |
| single-step O-NET E-E | 0.65 (0.16) |
| true equations, leapfrog dt = 1 | 0.47 (0.18) |
| predict no change (sanity row: the positions stay where they start) | |

Protocol, per parameter: the paper (section 5, appendix A.2), the authors' code
(github.com/zhengdao-chen/SRNN: `src/run_experiments.py`, `src/generate_data.py`,
`src/script_3body_new`, and the older `src/scripts_3body`, `src/train_and_predict_3body.py`
of commit 355c359) and this suite at the `paper` scale:

| parameter | paper | authors' code | ours |
|---|---|---|---|
| system | 3 bodies, 2-D, "as Greydanus" | m = G = 1 | m = G = 1 (`physprior/ThreeBody-v0`) |
| initial states | silent | radius U[0.9, 1.2], circular-orbit velocity x (1 + 0.2 U[-1, 1]), the factor drawn once per data set (train and test differ) | the same radius and orbit, the factor drawn per trajectory (the env's, and HNN's original code) |
| ground truth | RK45 | `solve_ivp` RK45, rtol 1e-4, atol 1e-7, float32 field | DOP853, rtol = atol = 1e-10 |
| dt | 1 | 1 (every 100th state at 0.01) | 1 |
| training data | 100 trajectories of 10 states; 900 pairs / 600 windows of 5 | the same (`--T_short 5`) | the same |
| networks | 3 x 512 tanh; H-NET: one for K(p), one for V(q) | the same | the same, on normalised inputs (each model's docstring); no action input |
| loss | squared state error | MSE of raw [p, q], t = 0 included | MSE in normalised state units, t >= 1 |
| optimiser | Adam, lr 3e-4 | Adam, lr 3e-4, no weight decay, batch 32, last partial batch dropped | AdamW with weight decay 0 (= Adam), lr 3e-4, batch 32, partial batch kept |
| schedule | ReduceLROnPlateau, patience 15, factor 0.7 | the same, stepped on the error of 32 windows re-drawn from the training set each epoch | the same, stepped on 32 training windows drawn once |
| epochs | 1000 | 1000 | 1000; the last epoch's weights are scored (as the authors') |
| precision | silent | float32 | float32 |
| ISO | not used | `script_3body_new` fits the first 3 states (5 L-BFGS-B iterations); the older script none | none |
| test set | silent | 32 trajectories of 10 states | 32 trajectories of 10 states, from their own seed |
| test horizon | silent | the older script logs 5 states (4 predicted steps, `--T_test_show 5`) | `position_error`: the first 4 predicted steps; `position_error_9`: all 9 |
| metric | L2 distance of the positions, mean (std) over test trajectories | MSE of every coordinate (the tables were computed outside the code) | L2 distance of the six positions per step, averaged over the steps, mean (std) over the 32 test trajectories |

The paper never states the test horizon. Over 9 steps at dt = 1 (more than an orbit) leapfrog
on the true equations reaches errors of 2 to 5 on trajectories with close encounters; over
the first 4 predicted steps it scores close to the paper's 0.47 (0.18), which is the horizon
this suite takes for its headline (`position_error`), keeping the 9-step figure as a second
metric. `position_error_std` is the std over test trajectories, the paper's bracket.

Scales: `paper` as above (about an hour of one core per seed: SRNN 30 min, single-step
H-NET 11, recurrent O-NET 14, single-step O-NET 3); `default` the same protocol with 300
epochs; `smoke` a tiny grid that runs every code path in seconds.
"""  # noqa: E501 (the protocol table's rows)

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from physprior.data import generate_trajectories, make_windows
from physprior.integrators import SplitField, get_integrator
from physprior.models import make
from physprior.training import TrainConfig

from ._common import data_hash, score_rollouts, train_model
from ._framework import Claim, Job, JobResult, Means, PaperRow, Scale, Suite, scale_settings

NAME = "srnn-threebody"
ENV_ID = "physprior/ThreeBody-v0"
SOURCE = "SRNN Table 3"
SRNN = "recurrent H-NET L-L (SRNN)"
SINGLE_HNET = "single-step H-NET L-L"
RECURRENT_ONET = "recurrent O-NET L-L"
SINGLE_ONET = "single-step O-NET E-E"
TRUE_EQUATIONS = "true equations, leapfrog dt = 1"
NO_CHANGE = "predict no change (sanity row)"
LEARNED = (SRNN, SINGLE_HNET, RECURRENT_ONET, SINGLE_ONET)
#: Predicted steps the headline error averages over (see the module docstring).
HEADLINE_STEPS = 4

# row -> (model name, model config, train mode, paper mean, paper std); None: no model.
_ROWS: dict[str, tuple[str | None, dict[str, Any], str, float | None, float | None]] = {
    SRNN: (
        "srnn",
        {"integrator": "leapfrog", "test_integrator": "leapfrog", "iso": False},
        "recurrent",
        0.26,
        0.07,
    ),
    SINGLE_HNET: (
        "srnn",
        {"integrator": "leapfrog", "test_integrator": "leapfrog", "iso": False},
        "single",
        0.35,
        0.09,
    ),
    RECURRENT_ONET: ("node", {"integrator": "leapfrog"}, "recurrent", 0.49, 0.10),
    SINGLE_ONET: ("node", {"integrator": "euler"}, "single", 0.65, 0.16),
    TRUE_EQUATIONS: (None, {}, "none", 0.47, 0.18),
    NO_CHANGE: (None, {}, "none", None, None),
}
_WINDOW = {"single": 2, "recurrent": 5}

_PAPER_SCALE: dict[str, Any] = {
    "trajectories": 100,
    "length": 10,
    "test_trajectories": 32,
    "hidden": 512,
    "layers": 3,
    "epochs": 1000,
    "batch_size": 32,
    "lr": 3e-4,
    "val_windows": 32,
    "dtype": "float32",
}
_SCALES: dict[str, dict[str, Any]] = {
    "paper": _PAPER_SCALE,
    "default": _PAPER_SCALE | {"epochs": 300},
    "smoke": _PAPER_SCALE
    | {
        "trajectories": 8,
        "test_trajectories": 4,
        "hidden": 16,
        "layers": 2,
        "epochs": 3,
        "batch_size": 16,
        "val_windows": 4,
    },
}


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: the five rows of Table 3 and the sanity row x seeds, on ThreeBody."""
    params = scale_settings(_SCALES, scale, seeds)
    return [
        Job(NAME, row, ENV_ID, seed, {"scale": scale, "dt": 1.0, **params})
        for seed in range(seeds)
        for row in _ROWS
    ]


def true_equations_rollout(states: Tensor, dt: float) -> Tensor:
    """Leapfrog at step `dt` on the exact three-body Hamiltonian (m = G = 1) from
    `states[:, 0]` of `states (B, T + 1, 12)` -> `(B, T + 1, 12)`."""

    def acceleration(q: Tensor) -> Tensor:
        pos = q.reshape(*q.shape[:-1], 3, 2)
        diff = pos[..., None, :, :] - pos[..., :, None, :]  # [i, j] = q_j - q_i
        dist3 = diff.square().sum(-1).pow(1.5) + torch.eye(3, dtype=q.dtype)  # no self-force
        return (diff / dist3[..., None]).sum(-2).reshape(q.shape)

    field = SplitField.from_separable(lambda p: p, acceleration)
    leapfrog = get_integrator("leapfrog")
    z = states[:, 0]
    out = [z]
    for _ in range(states.shape[1] - 1):
        z = leapfrog.step(field, z, dt)
        out.append(z)
    return torch.stack(out, dim=1)


def no_change_rollout(states: Tensor) -> Tensor:
    """Every state of `states (B, T + 1, 12)` replaced by the first: nothing moves."""
    return states[:, :1].expand_as(states).clone()


def run_job(job: Job) -> JobResult:
    """Generate the trajectories, train the row's model (if any), score the test rollouts."""
    start = time.perf_counter()
    if job.row not in _ROWS:
        raise ValueError(f"unknown {NAME} row {job.row!r}; expected one of {list(_ROWS)}")
    p = dict(job.params)
    name, model_config, train_mode, _, _ = _ROWS[job.row]
    length = int(p["length"])
    train_set = generate_trajectories(ENV_ID, int(p["trajectories"]), length, seed=job.seed)
    test_set = generate_trajectories(
        ENV_ID, int(p["test_trajectories"]), length, seed=job.seed + 1000
    )
    test_states = torch.tensor(make_windows(test_set, length).states, dtype=torch.float64)
    dt = train_set.meta.dt
    if name is None:
        digest = data_hash(test_states)
        if job.row == TRUE_EQUATIONS:
            predicted = true_equations_rollout(test_states, dt)
        else:
            predicted = no_change_rollout(test_states)
    else:
        # The autonomous system: windows without actions, models without an action input.
        windows = make_windows(train_set, _WINDOW[train_mode]).states
        digest = data_hash(windows, test_states)
        # The plateau schedule watches 32 training windows (the authors re-draw them from the
        # training set every epoch; drawn once here so the run is a pure function of the seed).
        rng = np.random.default_rng(np.random.SeedSequence([job.seed, 1]))
        watched = windows[np.sort(rng.choice(len(windows), int(p["val_windows"]), replace=False))]
        torch.manual_seed(job.seed)
        model = make(
            name,
            obs_dim=train_set.obs_dim,
            action_dim=0,
            q_dim=train_set.meta.q_dim,
            dt=dt,
            env_id=ENV_ID,
            train_mode=train_mode,
            hidden=int(p["hidden"]),
            layers=int(p["layers"]),
            activation="tanh",
            **model_config,
        )
        config = TrainConfig(
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            lr=float(p["lr"]),
            weight_decay=0.0,
            schedule="plateau",
            plateau_patience=15,
            plateau_factor=0.7,
            restore_best=False,
            seed=job.seed,
            dtype=p["dtype"],
            progress=False,
        )
        model = train_model(
            model, (torch.tensor(windows), None), (torch.tensor(watched), None), config
        )
        with torch.no_grad():
            predicted = model.rollout(test_states[:, 0].to(model.dtype), steps=length - 1)
        predicted = predicted.double()
    energy = gym.make(ENV_ID).unwrapped.energy  # type: ignore[attr-defined]
    no_actions = test_states.new_zeros(test_states.shape[0], length - 1, 0)
    # Headline: the first HEADLINE_STEPS predicted steps; then the whole 9-step rollout.
    head = HEADLINE_STEPS + 1
    metrics, _, _ = score_rollouts(
        None,
        test_states[:, :head],
        no_actions[:, : head - 1],
        energy=energy,
        predicted=predicted[:, :head],
    )
    full, curves, trajectory = score_rollouts(
        None, test_states, no_actions, energy=energy, predicted=predicted
    )
    metrics["position_error_9"] = full["position_error"]
    metrics["position_error_9_std"] = full["position_error_std"]
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=digest,
        seconds=time.perf_counter() - start,
        curves=curves,
        trajectory=trajectory,
    )


def _error(means: Means, row: str) -> float | None:
    value = means[(row, ENV_ID)]["position_error"]
    return None if value != value else value  # NaN: cannot compare


def _beats(row: str, other: str) -> Claim:
    def check(means: Means) -> bool | None:
        ours, theirs = _error(means, row), _error(means, other)
        return None if ours is None or theirs is None else ours < theirs

    return Claim(f"{row} has a lower error than {other}", check)


def _best_learned(means: Means) -> bool | None:
    errors = {}
    for row in LEARNED:
        value = _error(means, row)
        if value is None:
            return None
        errors[row] = value
    return min(errors, key=errors.__getitem__) == SRNN


def _true_equations_within_paper(means: Means) -> bool | None:
    """The protocol check: the true-equations row lies within the paper's 0.47 (0.18)."""
    ours = _error(means, TRUE_EQUATIONS)
    paper_mean, paper_std = _ROWS[TRUE_EQUATIONS][3:]
    assert paper_mean is not None and paper_std is not None
    return None if ours is None else abs(ours - paper_mean) <= paper_std


SUITE = Suite(
    name=NAME,
    title="SRNN Table 3: three-body at dt = 1, learned models against the true equations",
    metrics=(
        "position_error",
        "position_error_std",
        "position_error_9",
        "position_error_9_std",
        "rollout_error",
        "energy_violation",
    ),
    jobs=jobs,
    run_job=run_job,
    # The paper's std is over test trajectories: compare it with our position_error_std.
    paper=tuple(
        PaperRow(row, ENV_ID, "position_error", mean, std, SOURCE)
        for row, (_, _, _, mean, std) in _ROWS.items()
        if mean is not None
    ),
    claims=(
        Claim(
            "Protocol check: the true-equations row lies within the paper's 0.47 (0.18)",
            _true_equations_within_paper,
        ),
        Claim("SRNN beats the true equations at dt = 1", _beats(SRNN, TRUE_EQUATIONS).check),
        Claim("SRNN has the lowest error of the learned models", _best_learned),
        _beats(SINGLE_HNET, SINGLE_ONET),
    ),
    scale_notes={
        "default": "300 of the paper's 1,000 epochs: the single-step H-NET is not fully "
        "trained at this budget (its finding needs the paper scale; the README gives that run).",
    },
)
