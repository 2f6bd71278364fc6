"""Suite `srnn-billiard`: SRNN section 6, the heavy billiard and the learned rebound module.

The paper's claim: a leapfrog SRNN cannot represent a perfect rebound, and SRNN augmented with
a learned rebound module (`srnn-rebound`) predicts the bouncing billiard, better than every
baseline of its appendix F. The paper shows figures only (predicted against true test
trajectories), no table; this suite measures what the figures show.

Rows:

| row | model |
|---|---|
| SRNN + rebound module | `srnn-rebound` (H-NET K, V each 2-32-1; module 200-128-32-2 / -32-1, gamma 4-16-16-1) |
| SRNN + rebound module without alpha | `srnn-rebound`, `learn_alpha=False` (the paper's alpha = 1) |
| SRNN without the module | `srnn`, hidden 32, leapfrog, no ISO |
| O-NET L-L + rebound module | `srnn-rebound`, `dynamics="onet"` (O-NET 4-32-4, leapfrog) |
| vanilla RNN | `rnn`, 32 hidden units (physprior's `delta` readout: normalised inputs, the state change read out) |
| vanilla RNN [authors' form] | `rnn`, 32 hidden units, `readout="state"`, `normalize=False`: the SRNN authors' RNN of their public chain and three-body code (raw inputs, the next state read out directly); their billiard code is not public |
| SRNN + rebound module, sigmoid alpha (variant) | `srnn-rebound`, `alpha_output="sigmoid"`: not a row of the paper; its section 6 says alpha lies in [0, 1], its appendix puts a ReLU on alpha's output, which can die (alpha 0 for every state) |
| true H, no rebound (sanity row) | the exact free flight under gravity, through the walls |
| predict no change (sanity row) | every position stays where it starts |

Protocol, per parameter: the paper (section 6, appendix A.3), the authors' code (none: the
public repository github.com/zhengdao-chen/SRNN has no billiard experiment) and this suite
at the `paper` scale:

| parameter | paper | authors' code | ours |
|---|---|---|---|
| system | point mass, gravity down, square box, perfect rebound | none | `physprior/HeavyBilliard-v0`: unit box, g = 1, m = 1, exact event-driven steps |
| image | 128 x 128, walls 12 px, free space 104 x 104, billiard 3 x 3 px | none | the same (`background_image()`); the billiard is a point mass (the collision is for its centre) |
| dt | 0.1 | none | 0.1 |
| initial states | "randomly-sampled initial positions and velocities" | none | position uniform in the box, velocity uniform in [-1, 1]^2 (the env's) |
| training data | 5,000 trajectories of 10 steps | none | the same (11 states each), zero action |
| test data | 32 trajectories of 60 steps | none | the same, from their own seed |
| networks | as in the table of rows; tanh, ReLU on alpha's output | none | the same, on normalised states for the flows |
| crops | two 10 x 10 at q_t and q~ for n_bar and alpha, 2 x 2 at q~ for gamma | none | the same, bilinear in unclamped image coordinates, wall value outside (`physprior.models.srnn_rebound`) |
| L1 on gamma | "an additional regularization term" | none | `gamma_l1 = 1e-3` times the mean gamma over the steps of a batch (silent) |
| loss | silent | none | squared state error in normalised units over the 10 steps, recurrent |
| optimiser | Adam, lr 5e-3 | none | Adam (weight decay 0), lr 5e-3 |
| gradient clipping | silent | none | global norm 1 (`physprior train`'s default): without it, a first default-scale run of the full module rose from a loss of 0.41 to 1.58 at epoch 31 and stayed above 1; with it the loss fell steadily (0.155 at epoch 55) |
| schedule | ExponentialLR 0.99 until 1e-4 | none | the same, per epoch (`schedule="exponential"`) |
| epochs | 1,500 | none | 1,500; the last epoch's weights are scored |
| batch size | silent | none | 100 |
| precision | silent | none | float32 |
| metric | figures | none | see below |

Metrics (over the 32 test trajectories of 60 steps; the learned models roll out from the
true first state):

- `position_error`: L2 distance of the positions, averaged over the 60 steps, mean over
  test trajectories (`position_error_std` the std over them).
- `position_error_10`: the same over the first 10 steps only, the length of the training
  trajectories (`position_error_10_std` its std). The billiard is chaotic: by about 20 steps
  every learned row's rollout has lost the true one's phase, and the 60-step mean mostly
  measures how its error saturates; the 10-step mean shows the skill before that.
- `bounce_timing`: of the test steps with exactly one bounce (the env's `wall_events`), the
  fraction the rollout reproduces within one step: its momentum component along that wall's
  normal turns from into the wall to out of it between two states within one step of the true
  one, with the predicted position within 0.1 (about a step's travel) of that wall.
- `bounce_one_step` and `bounce_step_error` (learned rows): the same bounces one step at a
  time, each predicted from the true state before it: the fraction whose predicted momentum
  along the wall's normal points out of the wall after the step, and the mean L2 position
  error of those steps. They measure the rebound itself, without the drift of a rollout
  (after one mistimed bounce a rollout meets the later ones out of phase).
- `normal_cosine`, `gamma_bounce`, `alpha_error` (module rows): at those single-bounce steps,
  from the true state, `|cos(n_bar, true normal)|` (a reflection does not see the sign of n),
  the mean gamma, and `|alpha - true time / dt|`.
- `gamma_free` (module rows): the mean gamma at steps with no bounce whose true positions at
  both ends lie at least 0.1 from every wall.

Scales: `paper` as above (the full module takes about 4.5 s an epoch on one core, about
1.9 hours); `default` 2,000 training trajectories and 400 epochs (the learning rate reaches
its floor of 1e-4 after 390): the module rows 12-13 minutes of one core each, SRNN without
the module 2 and the RNN 1; `smoke` every code path in seconds.
"""  # noqa: E501 (the protocol table's rows)

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from physprior.data import generate_trajectories, make_windows
from physprior.evaluation.metrics import position_error
from physprior.models import make
from physprior.training import TrainConfig

from ._common import data_hash, finite_or_inf, score_rollouts, train_model
from ._framework import Claim, Job, JobResult, Means, Scale, Suite, scale_settings

NAME = "srnn-billiard"
ENV_ID = "physprior/HeavyBilliard-v0"
FULL = "SRNN + rebound module"
NO_ALPHA = "SRNN + rebound module without alpha"
SRNN_ALONE = "SRNN without the module"
ONET = "O-NET L-L + rebound module"
RNN = "vanilla RNN"
RNN_AUTHORS = "vanilla RNN [authors' form]"
SIGMOID_ALPHA = "SRNN + rebound module, sigmoid alpha (variant)"
FREE_FLIGHT = "true H, no rebound (sanity row)"
NO_CHANGE = "predict no change (sanity row)"
MODULE_ROWS = (FULL, NO_ALPHA, ONET, SIGMOID_ALPHA)
BASELINES = (NO_ALPHA, SRNN_ALONE, ONET, RNN, RNN_AUTHORS)
#: Distance to a wall (box units, about one step's travel) within which a turn of the
#: momentum counts as a bounce on it, and beyond which a position is "away from walls".
NEAR = 0.1
#: Steps of a training trajectory: the horizon of `position_error_10`.
TRAIN_STEPS = 10

# row -> (model name, model config); None: no model.
_ROWS: dict[str, tuple[str | None, dict[str, Any]]] = {
    FULL: ("srnn-rebound", {}),
    NO_ALPHA: ("srnn-rebound", {"learn_alpha": False}),
    SRNN_ALONE: ("srnn", {"iso": False}),
    ONET: ("srnn-rebound", {"dynamics": "onet"}),
    RNN: ("rnn", {}),
    RNN_AUTHORS: ("rnn", {"readout": "state", "normalize": False}),
    SIGMOID_ALPHA: ("srnn-rebound", {"alpha_output": "sigmoid"}),
    FREE_FLIGHT: (None, {}),
    NO_CHANGE: (None, {}),
}

_PAPER_SCALE: dict[str, Any] = {
    "trajectories": 5000,
    "length": 11,
    "test_trajectories": 32,
    "test_length": 61,
    "hidden": 32,
    "epochs": 1500,
    "batch_size": 100,
    "lr": 5e-3,
    "lr_decay": 0.99,
    "lr_min": 1e-4,
    "gamma_l1": 1e-3,
    "grad_clip": 1.0,
    "dtype": "float32",
    "plotted": 4,
}
_SCALES: dict[str, dict[str, Any]] = {
    "paper": _PAPER_SCALE,
    "default": _PAPER_SCALE | {"trajectories": 2000, "epochs": 400},
    "smoke": _PAPER_SCALE
    | {
        "trajectories": 16,
        "test_trajectories": 4,
        "test_length": 21,
        "epochs": 2,
        "batch_size": 8,
        "plotted": 2,
    },
}


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: the five learned rows of the paper (the RNN in two forms), the sigmoid-alpha
    variant and the two sanity rows x seeds, on HeavyBilliard."""
    params = scale_settings(_SCALES, scale, seeds)
    return [
        Job(NAME, row, ENV_ID, seed, {"scale": scale, "dt": 0.1, **params})
        for seed in range(seeds)
        for row in _ROWS
    ]


# ---------------------------------------------------------------------------- sanity rows
def free_flight_rollout(states: Tensor, gravity: float, dt: float) -> Tensor:
    """The exact motion under gravity alone (no walls) from `states[:, 0]` of `states
    (B, T + 1, 4)` -> `(B, T + 1, 4)`: what a flow without a rebound would predict at best."""
    z0 = states[:, 0]
    t = torch.arange(states.shape[1], dtype=states.dtype) * dt  # (T + 1,)
    accel = torch.tensor([0.0, -gravity], dtype=states.dtype)
    q = z0[:, None, :2] + z0[:, None, 2:] * t[:, None] + 0.5 * accel * t[:, None] ** 2
    p = z0[:, None, 2:] + accel * t[:, None]
    return torch.cat((q, p.expand_as(q)), dim=-1)


def no_change_rollout(states: Tensor) -> Tensor:
    """Every state of `states (B, T + 1, 4)` replaced by the first."""
    return states[:, :1].expand_as(states).clone()


# ---------------------------------------------------------------------------- bounces
def single_bounces(env: Any, states: np.ndarray) -> list[tuple[int, int, float, np.ndarray]]:
    """The steps of true trajectories `states (B, T + 1, 4)` with exactly one bounce:
    `(trajectory, step, time / dt, inward normal (2,))`."""
    found = []
    for b in range(states.shape[0]):
        for k in range(states.shape[1] - 1):
            events = env.wall_events(states[b, k])
            if len(events) == 1:
                found.append((b, k, events[0][0] / env.dt, events[0][1]))
    return found


def free_steps(env: Any, states: np.ndarray) -> list[tuple[int, int]]:
    """The steps without a bounce whose true positions at both ends lie at least `NEAR`
    from every wall."""
    q = states[..., :2]
    clear = (np.minimum(q, 1.0 - q) >= NEAR).all(-1)  # (B, T + 1)
    found = []
    for b in range(states.shape[0]):
        for k in range(states.shape[1] - 1):
            if clear[b, k] and clear[b, k + 1] and not env.wall_events(states[b, k]):
                found.append((b, k))
    return found


def predicted_bounces(rollout: np.ndarray, normal: np.ndarray) -> np.ndarray:
    """Steps `k` `(K,)` of one predicted rollout `(T + 1, 4)` that bounce on the wall with
    inward `normal`: the momentum along it turns from into the wall to out of it between
    states `k` and `k + 1`, with one of the two positions within `NEAR` of that wall."""
    axis = int(np.argmax(np.abs(normal)))
    wall = 0.0 if normal[axis] > 0 else 1.0
    along = rollout[:, 2:] @ normal
    distance = (rollout[:, axis] - wall) * normal[axis]  # negative beyond the wall
    turn = (along[:-1] < 0) & (along[1:] > 0)
    near = (distance[:-1] < NEAR) | (distance[1:] < NEAR)
    return np.flatnonzero(turn & near)


def bounce_timing(predicted: np.ndarray, bounces: Sequence[tuple[int, int, float, Any]]) -> float:
    """The fraction of true single bounces a rollout `predicted (B, T + 1, 4)` reproduces
    within one step (NaN without any)."""
    if not bounces:
        return float("nan")
    hits = 0
    for b, k, _, normal in bounces:
        steps = predicted_bounces(predicted[b], np.asarray(normal))
        hits += bool(np.any(np.abs(steps - k) <= 1))
    return hits / len(bounces)


def one_step_metrics(
    model: Any, states: Tensor, bounces: Sequence[tuple[int, int, float, np.ndarray]]
) -> dict[str, float]:
    """`bounce_one_step` and `bounce_step_error` over the single bounces, each step
    predicted from the true state `states (B, T + 1, 4)` before it."""
    if not bounces:
        return {"bounce_one_step": float("nan"), "bounce_step_error": float("nan")}
    with torch.no_grad():
        z = torch.stack([states[b, k] for b, k, _, _ in bounces])
        after = torch.stack([states[b, k + 1] for b, k, _, _ in bounces])
        stepped = model.step(z.to(model.dtype)).double()
    normals = torch.tensor(np.stack([n for *_, n in bounces]), dtype=torch.float64)
    out_of_wall = (stepped[:, 2:] * normals).sum(-1) > 0
    error = (stepped[:, :2] - after[:, :2]).norm(dim=-1)
    return {
        "bounce_one_step": float(out_of_wall.double().mean()),
        "bounce_step_error": float(error.mean()),
    }


def module_metrics(
    model: Any,
    states: Tensor,
    bounces: Sequence[tuple[int, int, float, np.ndarray]],
    free: Sequence[tuple[int, int]],
) -> dict[str, float]:
    """`normal_cosine`, `gamma_bounce`, `alpha_error` at single bounces and `gamma_free`
    away from walls, from the true states `states (B, T + 1, 4)`."""
    nan = float("nan")
    out = {"normal_cosine": nan, "gamma_bounce": nan, "alpha_error": nan, "gamma_free": nan}
    with torch.no_grad():
        if bounces:
            z = torch.stack([states[b, k] for b, k, _, _ in bounces]).to(model.dtype)
            terms = model.terms(z)
            normals = torch.tensor(np.stack([n for *_, n in bounces]), dtype=model.dtype)
            fractions = torch.tensor([f for _, _, f, _ in bounces], dtype=model.dtype)
            out["normal_cosine"] = float((terms.normal * normals).sum(-1).abs().mean())
            out["gamma_bounce"] = float(terms.gamma.mean())
            out["alpha_error"] = float((terms.alpha - fractions).abs().mean())
        if free:
            z = torch.stack([states[b, k] for b, k in free]).to(model.dtype)
            out["gamma_free"] = float(model.terms(z).gamma.mean())
    return out


# ---------------------------------------------------------------------------- a job
def run_job(job: Job) -> JobResult:
    """Generate the trajectories, train the row's model (if any), score the test rollouts."""
    start = time.perf_counter()
    if job.row not in _ROWS:
        raise ValueError(f"unknown {NAME} row {job.row!r}; expected one of {list(_ROWS)}")
    p = dict(job.params)
    name, model_config = _ROWS[job.row]
    env: Any = gym.make(ENV_ID).unwrapped
    test_length = int(p["test_length"])
    test_set = generate_trajectories(
        ENV_ID, int(p["test_trajectories"]), test_length, seed=job.seed + 1000
    )
    test_states = torch.tensor(make_windows(test_set, test_length).states, dtype=torch.float64)
    model = None
    if name is None:
        digest = data_hash(test_states)
        if job.row == FREE_FLIGHT:
            predicted = free_flight_rollout(test_states, env.g, env.dt)
        else:
            predicted = no_change_rollout(test_states)
    else:
        length = int(p["length"])
        train_set = generate_trajectories(ENV_ID, int(p["trajectories"]), length, seed=job.seed)
        windows = make_windows(train_set, length).states
        digest = data_hash(windows, test_states)
        torch.manual_seed(job.seed)
        extra = {"gamma_l1": float(p["gamma_l1"])} if name == "srnn-rebound" else {}
        model = make(
            name,
            obs_dim=4,
            action_dim=0,
            q_dim=2,
            dt=env.dt,
            env_id=ENV_ID,
            hidden=int(p["hidden"]),
            layers=1,
            activation="tanh",
            **extra,
            **model_config,
        )
        config = TrainConfig(
            epochs=int(p["epochs"]),
            batch_size=int(p["batch_size"]),
            lr=float(p["lr"]),
            lr_min=float(p["lr_min"]),
            lr_decay=float(p["lr_decay"]),
            schedule="exponential",
            optimizer="adam",
            weight_decay=0.0,
            grad_clip=float(p["grad_clip"]),
            restore_best=False,
            seed=job.seed,
            dtype=p["dtype"],
            progress=False,
        )
        model = train_model(model, (torch.tensor(windows), None), None, config)
        with torch.no_grad():
            predicted = model.rollout(test_states[:, 0].to(model.dtype), steps=test_length - 1)
        predicted = predicted.double()
    no_actions = test_states.new_zeros(test_states.shape[0], test_length - 1, 0)
    metrics, curves, trajectory = score_rollouts(
        None, test_states, no_actions, energy=env.energy, predicted=predicted, q_dim=2
    )
    within_training_length = position_error(predicted, test_states, q_dim=2, steps=TRAIN_STEPS)
    metrics["position_error_10"] = finite_or_inf(within_training_length.mean().item())
    metrics["position_error_10_std"] = finite_or_inf(
        within_training_length.std(unbiased=False).item()
    )
    true_np, predicted_np = test_states.numpy(), predicted.nan_to_num(1e6, 1e6, -1e6).numpy()
    bounces = single_bounces(env, true_np)
    metrics["bounce_timing"] = bounce_timing(predicted_np, bounces)
    metrics["single_bounces"] = float(len(bounces))
    if model is not None:
        metrics |= one_step_metrics(model, test_states, bounces)
    if model is not None and job.row in MODULE_ROWS:
        metrics |= module_metrics(model, test_states, bounces, free_steps(env, true_np))
    for i in range(min(int(p["plotted"]), test_states.shape[0])):
        trajectory[f"true_{i}"] = true_np[i, :, :2].tolist()
        trajectory[f"predicted_{i}"] = predicted_np[i, :, :2].tolist()
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=digest,
        seconds=time.perf_counter() - start,
        curves=curves,
        trajectory=trajectory,
    )


# ---------------------------------------------------------------------------- report
def plot_paths(results: Sequence[JobResult], out_dir: Path) -> list[str]:
    """Predicted against true test paths over the wall image, one panel per row (the
    smallest seed); returns the report line that shows the plot."""
    from physprior.envs.heavy_billiard import FREE_PX, IMAGE_PX, WALL_PX
    from physprior.evaluation.plots import plot_paths_over_image

    with_paths = [r for r in results if r.trajectory is not None and "true_0" in r.trajectory]
    if not with_paths:
        return []
    seed = min(r.job.seed for r in with_paths)
    panels: dict[str, list[tuple[Any, Any]]] = {}
    for r in sorted(with_paths, key=lambda r: list(_ROWS).index(r.job.row)):
        if r.job.seed != seed or r.job.row == NO_CHANGE or r.job.row in panels:
            continue
        assert r.trajectory is not None
        count = sum(1 for key in r.trajectory if key.startswith("true_"))
        panels[r.job.row] = [
            (r.trajectory[f"true_{i}"], r.trajectory[f"predicted_{i}"]) for i in range(count)
        ]
    first = next(iter(panels.values()))
    image = gym.make(ENV_ID).unwrapped.background_image() / 255.0  # type: ignore[attr-defined]
    low, high = -WALL_PX / FREE_PX, (IMAGE_PX - WALL_PX) / FREE_PX
    path = plot_paths_over_image(
        image,
        (low, high, low, high),
        panels,
        out_dir / "paths-heavy-billiard.png",
        title=f"Test paths of the heavy billiard: {len(first)} trajectories of "
        f"{(len(first[0][0]) - 1) * float(with_paths[0].job.params['dt']):g} s (seed {seed})",
    )
    return [f"![predicted against true paths over the walls]({path.name})", ""]


def _metric(means: Means, row: str, metric: str) -> float | None:
    value = means.get((row, ENV_ID), {}).get(metric, float("nan"))
    return None if value != value else value  # NaN: cannot tell


def _beats(row: str, other: str, metric: str = "position_error") -> Claim:
    def check(means: Means) -> bool | None:
        ours, theirs = _metric(means, row, metric), _metric(means, other, metric)
        return None if ours is None or theirs is None else ours < theirs

    if metric == "position_error":
        return Claim(f"{row} has a lower position error over 60 steps than {other}", check)
    return Claim(
        f"Not a claim of the paper: {row} has a lower position error over the first "
        f"{TRAIN_STEPS} steps (the training length) than {other}",
        check,
    )


def _threshold(metric: str, bound: float, above: bool, text: str) -> Claim:
    def check(means: Means) -> bool | None:
        value = _metric(means, FULL, metric)
        if value is None:
            return None
        return value > bound if above else value < bound

    return Claim(text, check)


SUITE = Suite(
    name=NAME,
    title="SRNN section 6: the heavy billiard, SRNN with the learned rebound module",
    metrics=(
        "position_error",
        "position_error_std",
        "position_error_10",
        "position_error_10_std",
        "bounce_timing",
        "bounce_one_step",
        "bounce_step_error",
        "normal_cosine",
        "gamma_bounce",
        "gamma_free",
        "alpha_error",
        "single_bounces",
        "energy_violation",
    ),
    jobs=jobs,
    run_job=run_job,
    claims=(
        *(_beats(FULL, other) for other in BASELINES),
        *(_beats(FULL, other, "position_error_10") for other in BASELINES),
        _threshold(
            "bounce_timing",
            0.9,
            True,
            "Module check: the full module times over 90% of single bounces within one step",
        ),
        _threshold(
            "normal_cosine",
            0.95,
            True,
            "Module check: |cos(n_bar, true normal)| above 0.95 at bounces",
        ),
        _threshold("gamma_bounce", 0.5, True, "Module check: gamma above 0.5 at bounces"),
        _threshold("gamma_free", 0.1, False, "Module check: gamma below 0.1 away from walls"),
    ),
    plots=plot_paths,
    scale_notes={
        "default": "2,000 of the paper's 5,000 training trajectories and 400 of its 1,500 "
        "epochs (the learning rate reaches its floor after 390).",
    },
)
