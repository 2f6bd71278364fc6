"""Suite `hnn-toy`: HNN Table 1, a baseline network against an HNN on the toy systems.

The HNN paper's finding: trained on the same time derivatives, a Hamiltonian neural network
and a plain network that outputs `(dq/dt, dp/dt)` fit the data about equally well, but the
HNN's rollouts conserve energy, so its energy MSE along RK4 rollouts is orders of magnitude
lower (mass-spring 0.171 against 0.0004, two-body 5.9e-2 against 3.9e-5).

Rows: "Baseline NN" is `node` (an MLP vector field, integrated with RK4, fitted to one-step
transitions, which at these steps is fitting the derivative), "HNN" is `hnn` (general H,
`training="derivative"`: the field at each transition's midpoint fitted to the finite
difference, rolled out with RK4). Networks of 2 hidden layers of 200 tanh units (the paper's
"three layers"), Adam at lr 1e-3 without weight decay.

Protocol (paper section 3 and 4): MassSpring and Pendulum, 25 training trajectories of 30
states, full-batch steps (2000); TwoBody, 200 trajectories of 50 states split 80/20, 10,000
steps of batch 200. Metric: energy MSE, the mean squared gap between the true energy along the
predicted and along the true rollout, averaged over the rollout and over test trajectories
started from the test set's initial states; also the coordinate MSE (`state_mse`), decon-hnn's
rollout error and the relative energy violation.

Differences: the paper adds observation noise (std 0.1) to mass-spring and pendulum data but
trains on the exact time derivatives; our models fit finite differences of the observed
states, where that noise would be amplified by `1 / dt`, so the data are noiseless (`noise`
param to change). The paper does not state its rollout length; we roll out
`test_horizon` steps (200 at the paper and default scales: 20 time units on mass-spring and
two-body, one more than the authors' plots show). The baseline here fits one-step RK4
predictions rather than derivatives (`node` has no derivative loss). Three-body (in the
authors' README, not the paper's table) is not run: our ThreeBody is SRNN's dt = 1 system.
"""

from __future__ import annotations

import time
from typing import Any

import gymnasium as gym
import torch

from physprior.data import add_noise, generate_trajectories, make_windows
from physprior.models import make
from physprior.training import TrainConfig

from ._common import data_hash, score_rollouts, train_model
from ._framework import Claim, Job, JobResult, Means, PaperRow, Scale, Suite

NAME = "hnn-toy"
BASELINE = "Baseline NN"
HNN = "HNN"
MASS_SPRING = "physprior/MassSpring-v0"
PENDULUM = "physprior/Pendulum-v0"
TWO_BODY = "physprior/TwoBody-v0"
ENVS = (MASS_SPRING, PENDULUM, TWO_BODY)
SOURCE = "HNN Table 1"

# Per env, the paper's data and training protocol (paper scale).
_PAPER: dict[str, dict[str, Any]] = {
    MASS_SPRING: {"trajectories": 25, "test_trajectories": 25, "length": 30, "steps": 2000},
    PENDULUM: {"trajectories": 25, "test_trajectories": 25, "length": 30, "steps": 2000},
    TWO_BODY: {
        "trajectories": 160,
        "test_trajectories": 40,
        "length": 50,
        "steps": 10_000,
        "batch_size": 200,
    },
}
_NET = {"hidden": 200, "layers": 2}


def _protocol(scale: Scale, env_id: str) -> dict[str, Any]:
    """Everything a job of `env_id` needs at `scale` (the job's params, minus the row)."""
    env = gym.make(env_id)
    dt = float(env.unwrapped.dt)  # type: ignore[attr-defined]  # every physprior env has dt
    env.close()
    base: dict[str, Any] = {
        "dt": dt,
        "noise": 0.0,
        "test_horizon": 200,
        "batch_size": None,
        "lr": 1e-3,
        **_NET,
        **_PAPER[env_id],
    }
    if scale == "smoke":
        base |= {
            "trajectories": 6,
            "test_trajectories": 4,
            "length": 20,
            "steps": 30,
            "batch_size": None,
            "test_horizon": 40,
            "hidden": 32,
            "layers": 2,
        }
    elif scale == "default":
        # The paper's data and networks, fewer steps for the two-body problem.
        if env_id == TWO_BODY:
            base |= {"steps": 3000}
    return base


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: {Baseline NN, HNN} x {MassSpring, Pendulum, TwoBody} x seeds."""
    grid = []
    for env_id in ENVS:
        params = _protocol(scale, env_id)
        for seed in range(seeds):
            for row in (BASELINE, HNN):
                grid.append(Job(NAME, row, env_id, seed, {"scale": scale, **params}))
    return grid


def _model_config(row: str) -> dict[str, Any]:
    if row == BASELINE:
        return {"name": "node", "integrator": "rk4", "train_mode": "single"}
    if row == HNN:
        return {"name": "hnn", "form": "general", "training": "derivative", "integrator": "rk4"}
    raise ValueError(f"unknown {NAME} row {row!r}; expected {BASELINE!r} or {HNN!r}")


def run_job(job: Job) -> JobResult:
    """Generate the env's trajectories, train the row's model, score RK4 rollouts."""
    start = time.perf_counter()
    p = dict(job.params)
    model_config = _model_config(job.row)
    # Data depend on (env, seed) only, so both rows of a seed see the same trajectories.
    train_set = generate_trajectories(
        job.env_id, int(p["trajectories"]), int(p["length"]), seed=job.seed
    )
    if p["noise"]:
        train_set = add_noise(train_set, float(p["noise"]), seed=job.seed)
    # Test rollouts start from fresh initial states, noiseless, `test_horizon` steps long.
    test_set = generate_trajectories(
        job.env_id, int(p["test_trajectories"]), int(p["test_horizon"]) + 1, seed=10_000 + job.seed
    )
    windows = make_windows(train_set, 2)
    test_states, test_actions = make_windows(test_set, int(p["test_horizon"]) + 1).to_torch()

    torch.manual_seed(job.seed)
    name = model_config.pop("name")
    model = make(
        name,
        obs_dim=train_set.obs_dim,
        action_dim=train_set.action_dim,
        q_dim=train_set.meta.q_dim,
        state_layout=train_set.meta.state_layout,
        dt=train_set.meta.dt,
        env_id=job.env_id,
        hidden=int(p["hidden"]),
        layers=int(p["layers"]),
        activation="tanh",
        **model_config,
    )
    batch = int(p["batch_size"] or len(windows))  # None: full batch, as the paper
    per_epoch = -(-len(windows) // batch)
    config = TrainConfig(
        epochs=max(1, round(int(p["steps"]) / per_epoch)),
        batch_size=batch,
        lr=float(p["lr"]),
        weight_decay=0.0,
        schedule="constant",
        seed=job.seed,
        progress=False,
    )
    model = train_model(model, windows, None, config)
    energy = gym.make(job.env_id).unwrapped.energy  # type: ignore[attr-defined]
    metrics, curves, trajectory = score_rollouts(model, test_states, test_actions, energy=energy)
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=data_hash(windows.states, windows.actions, test_states, test_actions),
        seconds=time.perf_counter() - start,
        curves=curves,
        trajectory=trajectory,
    )


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


SUITE = Suite(
    name=NAME,
    title="HNN Table 1: baseline network against HNN on the toy systems (energy MSE)",
    metrics=("energy_mse", "state_mse", "rollout_error", "energy_violation"),
    jobs=jobs,
    run_job=run_job,
    paper=(
        PaperRow(BASELINE, MASS_SPRING, "energy_mse", 0.171, None, SOURCE),
        PaperRow(HNN, MASS_SPRING, "energy_mse", 0.0004, None, SOURCE),
        PaperRow(BASELINE, PENDULUM, "energy_mse", 0.041, None, SOURCE),
        PaperRow(HNN, PENDULUM, "energy_mse", 0.025, None, SOURCE),
        # Table 1 gives the two-body row x 10^3.
        PaperRow(BASELINE, TWO_BODY, "energy_mse", 59.33e-3, None, SOURCE),
        PaperRow(HNN, TWO_BODY, "energy_mse", 0.039e-3, None, SOURCE),
    ),
    claims=(
        _ratio_at_least(MASS_SPRING, 10),
        _ratio_at_least(TWO_BODY, 10),
        _ratio_at_least(PENDULUM, 1),
    ),
)
