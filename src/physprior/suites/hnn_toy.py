"""Suite `hnn-toy`: HNN Table 1, a baseline network against an HNN on the toy systems.

The HNN paper's finding (Greydanus et al. 2019, section 3-4, Table 1): trained on the same
time derivatives, a Hamiltonian neural network and a plain network that outputs
`(dq/dt, dp/dt)` fit the data about equally well (their train and test losses match), but
the HNN's rollouts conserve energy, so its energy MSE is orders of magnitude lower on the
mass-spring (0.171 against 3.8e-4) and the two-body problem (6.3e-2 against 3.9e-5); on the
ideal pendulum the gap is small (0.042 against 0.025).

Rows: "Baseline NN" is `node` (an MLP vector field), "HNN" is `hnn` (`form="general"`: one
MLP `H(q, p)`, the field its symplectic gradient), both of 2 hidden layers of 200 tanh units,
both fitted to exact time derivatives (`physprior.data.derivative_windows`: single-step
training with the Euler integrator on `[y, y + dt f(z)]` windows is regression of the field at
the noisy `y` on the true `f(z)`), both rolled out with RK4. Sanity row: the true field
integrated by the same RK4 ("true field, RK4"), the floor that integration error alone sets.

Protocol, per parameter: the paper (the version in the authors' repository,
`static/hnn-paper.pdf`, whose Table 1 matches their README), the authors' code
(github.com/greydanus/hamiltonian-nn: `experiment-{spring,pend,2body}/data.py`, `train.py`,
`analyze-*.ipynb`) and this suite at the `paper` scale:

| parameter | paper | authors' code | ours |
|---|---|---|---|
| mass-spring | H = k q^2/2 + p^2/2m, k = m = 1 | H = q^2 + p^2 | H = q^2 + p^2 (`stiffness=2, mass=0.5`) |
| pendulum | H = 2mgl(1 - cos q) + l^2 p^2/2m, m = l = 1, g = 3 | H = 3(1 - cos q) + p^2 | H = 3(1 - cos q) + p^2 (`mass=0.5`) |
| two-body | m = g = 1 | Newtonian gravity, m = G = 1 | the same |
| initial states | "energies" in [0.2, 1] / [1.3, 2.3]; two-body separation [0.5, 1.5] | phase-space radius U[0.1, 1] / U[1.3, 2.3]; two-body: body 1's coordinates each U[0.5, 1.5], circular orbit x (1 + 0.05 N) | the authors' |
| samples | 30 per trajectory | spring 30 points over 3 s, pendulum 45 over 3 s, two-body 50 over 20 | the same spacing (dt = 3/29, 3/44, 20/49) |
| trajectories | 25 train / 25 test; two-body 1000 (and "200 ... 80/20") | 25 / 25; two-body 800 / 200 | the same |
| noise | sigma^2 = 0.1 on every observation | std 0.1 on the q, p inputs only; none on two-body | std 0.1 on the inputs of spring and pendulum; none on two-body |
| targets | analytic time derivatives | exact derivatives at the clean states | the same (the env's `time_derivative`) |
| networks | 3 layers of 200 tanh | 2 hidden layers of 200 tanh on raw coordinates, no output bias, orthogonal init | 2 hidden layers of 200 tanh on raw coordinates (`normalize=False`), PyTorch's default init |
| optimiser | Adam lr 1e-3, weight decay 1e-4 | Adam lr 1e-3, coupled L2 1e-4 (spring, pendulum), 0 (two-body) | Adam lr 1e-3, coupled L2 1e-4 x dt^2 / 0 (our loss is dt^2 times theirs) |
| steps | 2000 full-batch; two-body 10,000 of 200 | the same | the same |
| loss | L2 of the field | MSE of the raw field | MSE of `dt (f_model - f)` in normalised state units |
| rollout integrator | RK4 (solve_ivp, tolerance 1e-9) | `solve_ivp` RK45, rtol 1e-12 (spring, pendulum), 1e-9 (two-body) | RK4 at the data's step with `eval_substeps` substeps |
| energy-MSE starts | "a random test point" | 15 fresh states: each coordinate in +-[0.2, 1] (spring, pendulum); the training sampler, seeds 0-14 (two-body) | the same samplers, from the job's seed |
| energy-MSE span | silent | spring, pendulum t in [0, 20] (spring's models run 1.09 x longer than the truth, a bug); two-body [0, 25] | [0, 20] and [0, 25], model and truth on the same times |
| energy | the true total energy | spring: q^2 + p^2 (its true H); pendulum: q^2 + p^2 (not its H); two-body: the true energy | `energy_mse`: the true H over the intended spans; `energy_mse_code`: as the notebooks compute it (spring: stretched spans; pendulum: q^2 + p^2) |
| test loss | derivative MSE on the test points | the same | `test_loss`, on the test trajectories' noisy inputs |

Metrics: `energy_mse` (headline; the mean over the rollout's steps and the 15 starts of the
squared gap between the true energy of the predicted and of the true state) and its std over
the 15 starts `energy_mse_std`; `energy_mse_code`, the energy MSE as the authors' notebooks
compute it (see the table and `_authors_energy_mse`); `test_loss`, the derivative MSE on the test set's inputs (the paper's test-loss
column); `state_mse` along the rollouts; decon-hnn's `rollout_error`; `energy_violation`.
Table 1's brackets are standard errors over groups of starts, not stds over trajectories: the
std over starts is printed, and the report's seed spread, for what they are.

Scales: `paper` as above; `default` the same protocol (it fits the 2-core budget); `smoke` a
tiny grid.
"""  # noqa: E501 (the protocol table's rows)

from __future__ import annotations

import math
import time
from collections.abc import Callable
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from physprior.data import derivative_windows, generate_trajectories
from physprior.evaluation import metrics as m
from physprior.integrators import get_integrator
from physprior.models import TransitionModel, make
from physprior.training import TrainConfig

from ._common import data_hash, finite_or_inf, train_model
from ._framework import Claim, Job, JobResult, Means, PaperRow, Scale, Suite, scale_settings

NAME = "hnn-toy"
BASELINE = "Baseline NN"
HNN = "HNN"
TRUE_FIELD = "true field, RK4 (sanity row)"
ROWS = (BASELINE, HNN, TRUE_FIELD)
MASS_SPRING = "physprior/MassSpring-v0"
PENDULUM = "physprior/Pendulum-v0"
TWO_BODY = "physprior/TwoBody-v0"
ENVS = (MASS_SPRING, PENDULUM, TWO_BODY)
SOURCE = "HNN Table 1"

# Per env, the authors' system, data and training protocol (the paper scale).
_PAPER: dict[str, dict[str, Any]] = {
    MASS_SPRING: {
        "env_kwargs": {"stiffness": 2.0, "mass": 0.5, "radius_range": [0.1, 1.0], "dt": 3 / 29},
        "trajectories": 25,
        "test_trajectories": 25,
        "length": 30,
        "noise": 0.1,
        "steps": 2000,
        "batch_size": None,
        "weight_decay": 1e-4,
        "eval_start": "box",
        "eval_time": 20.0,
        "eval_substeps": 1,
    },
    PENDULUM: {
        "env_kwargs": {"mass": 0.5, "radius_range": [1.3, 2.3], "dt": 3 / 44},
        "trajectories": 25,
        "test_trajectories": 25,
        "length": 45,
        "noise": 0.1,
        "steps": 2000,
        "batch_size": None,
        "weight_decay": 1e-4,
        "eval_start": "box",
        "eval_time": 20.0,
        "eval_substeps": 1,
    },
    TWO_BODY: {
        "env_kwargs": {"start": "authors", "dt": 20 / 49},
        "trajectories": 800,
        "test_trajectories": 200,
        "length": 50,
        "noise": 0.0,
        "steps": 10_000,
        "batch_size": 200,
        "weight_decay": 0.0,
        "eval_start": "env",
        "eval_time": 25.0,
        # 8 RK4 substeps of 0.05: the authors' 500 evaluation points on [0, 25] are 0.05 apart.
        "eval_substeps": 8,
    },
}
_COMMON = {"hidden": 200, "layers": 2, "lr": 1e-3, "eval_starts": 15}


def _protocol(scale: Scale, env_id: str) -> dict[str, Any]:
    """Everything a job of `env_id` needs at `scale` (the job's params)."""
    params: dict[str, Any] = {**_COMMON, **_PAPER[env_id]}
    params["dt"] = params["env_kwargs"]["dt"]
    if scale == "smoke":
        params |= {
            "trajectories": 6,
            "test_trajectories": 3,
            "length": 10,
            "steps": 30,
            "batch_size": None,
            "hidden": 16,
            "eval_starts": 3,
            "eval_time": 3.0,
        }
    return params


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: {Baseline NN, HNN, true field} x {MassSpring, Pendulum, TwoBody} x seeds."""
    scale_settings(dict.fromkeys(("smoke", "default", "paper")), scale, seeds)
    grid = []
    for env_id in ENVS:
        params = _protocol(scale, env_id)
        for seed in range(seeds):
            for row in ROWS:
                grid.append(Job(NAME, row, env_id, seed, {"scale": scale, **params}))
    return grid


# ---------------------------------------------------------------------------------- data
def _env(job: Job) -> Any:
    return gym.make(job.env_id, **dict(job.params["env_kwargs"])).unwrapped


def _eval_starts(job: Job, env: Any, count: int) -> np.ndarray:
    """The starts of the energy-MSE rollouts `(count, D)`, by the authors' samplers."""
    rng = np.random.default_rng(np.random.SeedSequence([job.seed, 3]))
    if job.params["eval_start"] == "box":
        # Each coordinate uniform in [-1, -0.2] or [0.2, 1] (analyze-spring/pend.ipynb).
        size = (count, env.obs_dim)
        return rng.choice([-1.0, 1.0], size=size) * rng.uniform(0.2, 1.0, size=size)
    # The training sampler (analyze-2body.ipynb draws random_config with seeds 0-14).
    env.reset(seed=int(rng.integers(2**31)))
    return np.stack([env.sample_initial_state(env.np_random) for _ in range(count)])


def _true_rollouts(env: Any, starts: np.ndarray, steps: int) -> np.ndarray:
    """The env's ground truth from each start, `(B, steps + 1, D)`, zero actions."""
    zero = np.zeros(env.action_dim)
    out = []
    for start in starts:
        env.reset(options={"state": start})
        states = [start]
        for _ in range(steps):
            states.append(env.step(zero)[0])
        out.append(np.stack(states))
    return np.stack(out)


# ---------------------------------------------------------------------------------- a job
def _model(job: Job, windows: Any) -> TransitionModel:
    """The row's model, trained on the derivative windows."""
    p = job.params
    config: dict[str, Any]
    if job.row == BASELINE:
        name, config = "node", {}
    elif job.row == HNN:
        name, config = "hnn", {"form": "general"}
    else:
        raise ValueError(f"unknown {NAME} row {job.row!r}; expected one of {list(ROWS)}")
    torch.manual_seed(job.seed)
    model = make(
        name,
        obs_dim=windows.states.shape[-1],
        action_dim=0,
        q_dim=windows.meta.q_dim,
        dt=windows.meta.dt,
        env_id=job.env_id,
        hidden=int(p["hidden"]),
        layers=int(p["layers"]),
        activation="tanh",
        # Euler on [y, y + dt f(z)] windows is derivative regression; RK4 to roll out.
        train_mode="single",
        integrator="euler",
        test_integrator="rk4",
        test_substeps=int(p["eval_substeps"]),
        # The authors' networks read raw coordinates; fitted to normalised ones, ours overfit
        # the 750 noisy points (mass-spring test loss 0.061 against their 0.036).
        normalize=False,
        **config,
    )
    batch = int(p["batch_size"] or len(windows))  # None: full batch, as the paper
    per_epoch = -(-len(windows) // batch)
    train_config = TrainConfig(
        epochs=max(1, round(int(p["steps"]) / per_epoch)),
        batch_size=batch,
        lr=float(p["lr"]),
        # Adam's coupled L2, as the authors'. Our loss is dt^2 times theirs (the field error
        # times dt, see derivative_windows), so the same pull relative to it is wd * dt^2.
        optimizer="adam",
        weight_decay=float(p["weight_decay"]) * float(p["dt"]) ** 2,
        schedule="constant",
        seed=job.seed,
        dtype="float32",
        progress=False,
    )
    return train_model(model, (torch.tensor(windows.states), None), None, train_config)


def _field(model: TransitionModel, z: Tensor) -> Tensor:
    """The model's learned `dz/dt` at states `z (N, D)` (an `hnn` or a `node`)."""
    from physprior.models.hnn import HNN
    from physprior.models.node import NODE

    if isinstance(model, HNN):
        return model.time_derivative(z)
    if isinstance(model, NODE):
        return model.vector_field(z)
    raise TypeError(f"no vector field to read from a {type(model).__name__}")


def _true_field_rollout(env: Any, starts: Tensor, steps: int, substeps: int) -> Tensor:
    """The true field integrated by RK4 at the data's step (with substeps), `(B, T + 1, D)`."""
    rk4 = get_integrator("rk4")
    h = env.dt / substeps
    z, out = starts, [starts]
    for _ in range(steps):
        z = rk4.advance(env.time_derivative, z, h, substeps)
        out.append(z)
    return torch.stack(out, dim=1)


def run_job(job: Job) -> JobResult:
    """Generate the env's data, train the row's model, score RK4 rollouts from the starts."""
    start = time.perf_counter()
    p = job.params
    env_kwargs = dict(p["env_kwargs"])
    # Data depend on (env, seed) only, so every row of a seed sees the same data.
    streams = [int(s) for s in np.random.SeedSequence([job.seed, 0]).generate_state(4)]
    train_set = generate_trajectories(
        job.env_id,
        int(p["trajectories"]),
        int(p["length"]) + 1,
        seed=streams[0],
        env_kwargs=env_kwargs,
        progress=False,
    )
    test_set = generate_trajectories(
        job.env_id,
        int(p["test_trajectories"]),
        int(p["length"]) + 1,
        seed=streams[1],
        env_kwargs=env_kwargs,
        progress=False,
    )
    noise = float(p["noise"])
    train_windows = derivative_windows(train_set, noise_std=noise, seed=streams[2])
    test_windows = derivative_windows(test_set, noise_std=noise, seed=streams[3])

    env = _env(job)
    steps = round(float(p["eval_time"]) / env.dt)
    starts = _eval_starts(job, env, int(p["eval_starts"]))
    true = torch.tensor(_true_rollouts(env, starts, steps))
    test_inputs = torch.tensor(test_windows.states[:, 0])
    test_rates = torch.tensor((test_windows.states[:, 1] - test_windows.states[:, 0]) / env.dt)
    roll: _Roll
    if job.row == TRUE_FIELD:
        substeps = int(p["eval_substeps"])

        def roll(starts: Tensor, n: int) -> Tensor:
            return _true_field_rollout(env, starts, n, substeps)

        test_loss = 0.0  # the true field has no fitting error
    else:
        model = _model(job, train_windows)

        def roll(starts: Tensor, n: int) -> Tensor:
            with torch.no_grad():
                return model.rollout(starts.to(model.dtype), steps=n).double()

        with torch.no_grad():
            fitted = _field(model, test_inputs.to(model.dtype)).double()
        test_loss = float((fitted - test_rates).square().mean())
    predicted = roll(true[:, 0], steps)
    metrics, curves, trajectory = _score(env, predicted, true)
    metrics["energy_mse_code"] = finite_or_inf(_authors_energy_mse(job, env, roll, predicted, true))
    metrics["test_loss"] = finite_or_inf(test_loss)
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=data_hash(train_windows.states, test_windows.states, true),
        seconds=time.perf_counter() - start,
        curves=curves,
        trajectory=trajectory,
    )


def _score(
    env: Any, predicted: Tensor, true: Tensor
) -> tuple[dict[str, float], dict[str, list[float]], dict[str, list[list[float]]]]:
    """Metrics, curves and the first rollout of `predicted` against `true` `(B, T + 1, D)`."""
    e_pred, e_true = env.energy(predicted), env.energy(true)
    per_start = {
        "energy_mse": m.energy_mse(e_pred, e_true),
        "rollout_error": m.rollout_error(predicted, true),
        "energy_violation": m.geometric_mean_over_time(m.energy_violation(e_pred, e_true)),
    }
    values = {k: float(v.mean()) for k, v in per_start.items()}
    values["energy_mse_std"] = float(per_start["energy_mse"].std(unbiased=False))
    values["state_mse"] = float((predicted - true).square()[:, 1:].mean())
    curves = {
        "error": [finite_or_inf(float(x)) for x in m.relative_error(predicted, true).mean(0)],
        "energy": [finite_or_inf(float(x)) for x in e_pred.mean(0)],
        "energy_true": [float(x) for x in e_true.mean(0)],
    }
    trajectory = {
        "true": true[0].tolist(),
        "predicted": predicted[0].nan_to_num(posinf=1e30, neginf=-1e30).tolist(),
    }
    return {k: finite_or_inf(v) for k, v in values.items()}, curves, trajectory


_Roll = Callable[[Tensor, int], Tensor]
"""`(starts (B, D), steps)` -> the row's rollout `(B, steps + 1, D)`, float64."""

#: The factor by which `analyze-spring.ipynb` stretches the span and the models' clock at
#: every start (`1 + 0.9 * noise_std`, applied in place, so it compounds).
_SPRING_STRETCH = 1.09


def _authors_energy_mse(job: Job, env: Any, roll: _Roll, predicted: Tensor, true: Tensor) -> float:
    """The energy MSE as the authors' notebooks compute it, over the same starts.

    Pendulum: the "energy" is `q^2 + p^2`, not the pendulum's H. Mass-spring: start `i`
    (from 0) is scored at 100 times spread over `[0, 20 * 1.09^(i + 2)]` of the model's
    rollout (from 23.8 to 86.5 time units), against the start's true energy: the notebook's
    in-place stretch of its time arrays (a bug we keep out of `energy_mse`). Two-body: the
    true energy over the rollout, as `energy_mse`.
    """
    if job.env_id == PENDULUM:
        return float(m.energy_mse(predicted.square().sum(-1), true.square().sum(-1)).mean())
    if job.env_id != MASS_SPRING:
        return float(m.energy_mse(env.energy(predicted), env.energy(true)).mean())
    starts = true[:, 0]
    spans = [20.0 * _SPRING_STRETCH ** (i + 2) for i in range(len(starts))]
    long = roll(starts, math.ceil(max(spans) / env.dt))
    energy0 = env.energy(starts)
    errors = []
    for i, span in enumerate(spans):
        index = torch.from_numpy(np.rint(np.linspace(0.0, span, 100) / env.dt).astype(np.int64))
        errors.append((env.energy(long[i, index]) - energy0[i]).square().mean())
    return float(torch.stack(errors).mean())


# ---------------------------------------------------------------------------------- claims
def _ratio_at_least(env_id: str, factor: float) -> Claim:
    def check(means: Means) -> bool | None:
        baseline = means[(BASELINE, env_id)]["energy_mse"]
        hnn = means[(HNN, env_id)]["energy_mse"]
        if hnn != hnn or baseline != baseline:  # NaN: cannot compare
            return None
        return hnn * factor <= baseline

    short = env_id.split("/")[-1].removesuffix("-v0")
    if factor == 1:
        text = f"HNN's energy MSE is below the baseline's on {short}"
    else:
        text = f"HNN's energy MSE is at least {factor:g}x below the baseline's on {short}"
    return Claim(text, check)


# Table 1 (the authors' repository's version of the paper; its README to more digits).
_TABLE_1 = {
    MASS_SPRING: {"test_loss": (3.6656e-2, 3.5928e-2), "energy_mse": (1.7077e-1, 3.8416e-4)},
    PENDULUM: {"test_loss": (3.5273e-2, 3.5586e-2), "energy_mse": (4.1519e-2, 2.4852e-2)},
    TWO_BODY: {"test_loss": (2.9575e-5, 2.8218e-6), "energy_mse": (6.3276e-2, 3.8751e-5)},
}

SUITE = Suite(
    name=NAME,
    title="HNN Table 1: baseline network against HNN on the toy systems (energy MSE)",
    metrics=(
        "energy_mse",
        "energy_mse_std",
        "energy_mse_code",
        "test_loss",
        "state_mse",
        "rollout_error",
        "energy_violation",
    ),
    jobs=jobs,
    run_job=run_job,
    paper=tuple(
        PaperRow(row, env_id, metric, value, None, SOURCE)
        for env_id, columns in _TABLE_1.items()
        for metric, pair in columns.items()
        for row, value in zip((BASELINE, HNN), pair, strict=True)
    ),
    claims=(
        _ratio_at_least(MASS_SPRING, 100),
        _ratio_at_least(TWO_BODY, 100),
        _ratio_at_least(PENDULUM, 1),
    ),
)
