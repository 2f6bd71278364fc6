"""Suite `vin-pixels`: VIN section 5.2, table 1: forecasting frames from pixel observations.

The paper's claim: trained on one 6 s trajectory of 28x28 binary frames, a VIN in the latent
space of a frame autoencoder forecasts the frames better than a residual RNN of the same
depth: table 1's RMSE over a 5 s forecast, 10 trials, pendulum ResRNN 6.1 (0.2), VIN-VV
4.3 (0.6), VIN-SO(2) 3.4 (0.6); mass-spring ResRNN 6.1 (0.1), VIN-SV 3.2 (0.2) (brackets:
standard errors over the trials). Ratios VIN / ResRNN: 0.70, 0.56 and 0.52.

Rows (every learned row is `physprior.models.make("pixel-vin", dynamics=...)`; the same
encoder, decoder, data and optimiser, only the latent dynamics differ):

| row | systems | model |
|---|---|---|
| ResRNN | both | `dynamics="resnet"`: `x + h MLP(x)` on a 2-D latent |
| VIN-VV | pendulum | `dynamics="vv"` |
| VIN-SO(2) | pendulum | `dynamics="so2"` |
| VIN-SV | mass-spring | `dynamics="sv"` |
| predict no change (sanity row) | both | the first frame forever |
| blank frames (sanity row) | both | every pixel 0: the error of a forecast that draws nothing |

Protocol, per parameter: the paper (section 5.2 and table 1), the authors' code
(steindoringi/Variational_Integrator_Networks: `systems.py`, `models.py`, `build_utils.py`,
`run_exp.py`, `config/{base,pixels,pixels_SO2,pendulum,springmass}.gin`) and ours at the
`paper` scale:

| parameter | paper | authors' code | ours |
|---|---|---|---|
| systems | ideal pendulum and mass-spring | `q'' = -9.82 sin q`; `q'' = -2 q` | the same (`vin-noisy`'s env settings) |
| initial state | silent | the noisy experiment's draws | the same (`start="vin"`) |
| frames | 28x28, binarised; drawing silent | matplotlib, 1 inch at 28 dpi, pure-black pixels only: a 12 pt rod on axes +-1.2; a disc `s=400` at `(q, 0)` on axes +-2.5 | the env's `binary_frames`, the same drawing (the disc identical to matplotlib's, the rod within about 1 pixel) |
| data | one trajectory, 6 s at 10 Hz (60 frames) | 1 x 60 (their README; their script ran 50 frames) at `linspace(0, 6, 60)` | 60 frames 0.1 s apart |
| windows | overlapping, 1 s (10 observations), depth 10 | every 11-frame window: 50 | the same |
| encoder | `q(x_1)` from the frames | per frame 784-1000-1000 (ReLU) to a mean and softplus std; `vv` and `resnet`: then a backward LSTM(50) and a linear head; 10 inference frames | the same; the backward LSTM's outputs in time order (theirs used the output that read only frame 10, see `physprior.models.pixel_vin`) |
| latent, decoder | decoder depends on `q` only | `vv`: `(q, v)`, decoder reads `q`; `sv`/`so2`: `(q_t, q_{t-1})`, decoder reads `q_t` (`so2`: `(sin q, cos q)`); ResNet: 2-D latent, decoder reads both; decoder 1000-1000 (ReLU) to 784 Bernoulli logits | the same |
| latent step `h` | 0.1 s (figures 7-8) | 1.0 (`vv`, `sv`, ResNet), 0.1 (`so2`) | the same |
| networks | single layer | `U`: 1,000 tanh (no output bias; `so2`: a sine on the output, with bias); ResNet: 1,000 tanh | the same |
| loss | the ELBO with `KL(q(x_1) || N(0, I))` | Bernoulli log-likelihood summed over pixels and frames, plus the KL of every inference output from their priors, weight 1 | the same |
| optimiser, epochs | silent | Adam 3e-4, batch 200 (one full batch of the 50 windows per epoch), 8,000 epochs | the same |
| trials | 10 randomised | one seed in their scripts | `--seeds 10` (the report's std is over seeds; the paper's brackets are standard errors, the std / 3.2) |
| test | initial condition inferred on the training trajectory, 5 s forecast | frames 0-9 to the encoder's mean, a 99-step forecast of the training trajectories re-simulated and of 3 new ones | the encoder's mean from frames 0-9 of the training trajectory, forecast to 20 s; `rmse` over frames 1-50 (5 s), `rmse_20s` over frames 1-200 (the trajectory continued, figures 6-8) |
| metric | "RMSE", undefined | per frame the squared error of the decoder's *logits* against the binary frame, summed over pixels, no root (a bug) | per frame the root of the summed squared error of the predicted pixel probabilities (the per-pixel RMSE is this / 28), mean over frames |

`log_likelihood`: the Bernoulli log-likelihood of the true frames under the predicted pixel
probabilities (clipped to [1e-6, 1 - 1e-6]), summed over pixels, mean over frames 1-50 (nats
per frame; the paper's "log p(y|x) x 10^2" is undefined and not compared).

Scales: `paper` as above (10 seeds, 8,000 epochs: a learned job took 17-23 minutes of one
core here); `default` 2,000 epochs (4.2-4.7 minutes a job; one seed's 5 learned jobs 23
minutes of one core); `smoke` every code path in seconds.
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

from physprior.data import generate_trajectories, make_windows, render_frames
from physprior.models import make
from physprior.models.pixel_vin import PixelVIN

from ._common import data_hash, finite_or_inf, train_model
from ._framework import Claim, Job, JobResult, Means, PaperRow, Scale, Suite, scale_settings
from .vin_noisy import ENV_KWARGS, MASS_SPRING, PENDULUM, authors_train_config

NAME = "vin-pixels"
ENVS = (PENDULUM, MASS_SPRING)
RESRNN, VV, SO2, SV = "ResRNN", "VIN-VV", "VIN-SO(2)", "VIN-SV"
NO_CHANGE = "predict no change (sanity row)"
BLANK = "blank frames (sanity row)"
#: learned row -> pixel-vin's `dynamics`
DYNAMICS = {RESRNN: "resnet", VV: "vv", SO2: "so2", SV: "sv"}
ROWS_OF: dict[str, tuple[str, ...]] = {
    PENDULUM: (RESRNN, VV, SO2, NO_CHANGE, BLANK),
    MASS_SPRING: (RESRNN, SV, NO_CHANGE, BLANK),
}
#: Table 1's RMSE (standard error over 10 trials).
TABLE_1 = {
    (PENDULUM, RESRNN): (6.1, 0.2),
    (PENDULUM, VV): (4.3, 0.6),
    (PENDULUM, SO2): (3.4, 0.6),
    (MASS_SPRING, RESRNN): (6.1, 0.1),
    (MASS_SPRING, SV): (3.2, 0.2),
}
#: Frames kept for the plot of predicted against true frames (indices at 10 Hz).
SHOWN_FRAMES = (0, 5, 10, 20, 30, 40, 50, 100, 150, 200)

_PAPER_SCALE: dict[str, Any] = {
    "length": 60,
    "window": 11,
    "forecast": 50,
    "long_forecast": 200,
    "hidden": 1000,
    "coder_hidden": 1000,
    "lstm_hidden": 50,
    "inference_frames": 10,
    "epochs": 8000,
    "batch_size": 200,
    "lr": 3e-4,
    "dt": 0.1,
}
_SCALES: dict[str, dict[str, Any]] = {
    "paper": _PAPER_SCALE,
    "default": _PAPER_SCALE | {"epochs": 2000},
    "smoke": _PAPER_SCALE
    | {"epochs": 3, "hidden": 16, "coder_hidden": 32, "lstm_hidden": 8, "long_forecast": 60},
}


def jobs(scale: Scale, seeds: int) -> list[Job]:
    """The grid: each system's rows x seeds."""
    params = scale_settings(_SCALES, scale, seeds)
    return [
        Job(NAME, row, env_id, seed, {"scale": scale, "env_kwargs": ENV_KWARGS[env_id], **params})
        for seed in range(seeds)
        for env_id in ENVS
        for row in ROWS_OF[env_id]
    ]


# ---------------------------------------------------------------------------- data
def trajectory_frames(job: Job, env: Any) -> Tensor:
    """The job's trajectory as flattened frames `(L, 784)`, `L = max(length, long + 1)`:
    the first `length` are the training data; the rest continue the same motion."""
    p = job.params
    count = max(int(p["length"]), int(p["long_forecast"]) + 1)
    seed = int(np.random.SeedSequence([job.seed, 0]).generate_state(1)[0])
    data = generate_trajectories(
        job.env_id, 1, count, seed=seed, env_kwargs=dict(p["env_kwargs"]), progress=False
    )
    states = make_windows(data, count).states[0]
    return torch.from_numpy(render_frames(env, states))


def frame_windows_of(frames: Tensor, window: int) -> Tensor:
    """Every window of `window` consecutive frames of `frames (L, P)`: `(L - window + 1,
    window, P)`."""
    starts = torch.arange(frames.shape[0] - window + 1)
    return frames[starts[:, None] + torch.arange(window)]


# ---------------------------------------------------------------------------- a job
def _forecast(job: Job, training: Tensor, steps: int, dt: float) -> Tensor:
    """Train the row's pixel model on `training (length, P)`; forecast `steps` frames from
    its first frames: pixel probabilities `(steps + 1, P)`."""
    p = job.params
    coder = int(p["coder_hidden"])
    torch.manual_seed(job.seed)
    model = make(
        "pixel-vin",
        dt=dt,
        env_id=job.env_id,
        dynamics=DYNAMICS[job.row],
        frame_pixels=int(training.shape[-1]),
        hidden=int(p["hidden"]),
        layers=1,
        activation="tanh",
        encoder_hidden=coder,
        decoder_hidden=coder,
        lstm_hidden=int(p["lstm_hidden"]),
        inference_frames=int(p["inference_frames"]),
    )
    config = authors_train_config(job)
    windows = frame_windows_of(training, int(p["window"]))
    trained = train_model(model, (windows, None), None, config)
    assert isinstance(trained, PixelVIN)
    return trained.predict_frames(training[None], steps)[0].double()


def frame_errors(predicted: Tensor, true: Tensor) -> Tensor:
    """Per frame, the root of the summed squared error of pixel probabilities `(T,)`."""
    return (predicted - true).square().sum(-1).sqrt()


def bernoulli_log_likelihood(predicted: Tensor, true: Tensor) -> Tensor:
    """Per frame, `sum_pixels log p(y | p_hat)` `(T,)` with `p_hat` clipped to 1e-6."""
    p = predicted.clamp(1e-6, 1.0 - 1e-6)
    return (true * p.log() + (1.0 - true) * (1.0 - p).log()).sum(-1)


def run_job(job: Job) -> JobResult:
    """Render the job's trajectory, train the row's model on its first `length` frames, and
    score the forecast from its first frames against the true frames."""
    start = time.perf_counter()
    if job.row not in ROWS_OF.get(job.env_id, ()):
        raise ValueError(
            f"unknown {NAME} row {job.row!r} for {job.env_id}; expected one of "
            f"{list(ROWS_OF.get(job.env_id, ()))}"
        )
    p = job.params
    env: Any = gym.make(job.env_id, **dict(p["env_kwargs"])).unwrapped
    frames = trajectory_frames(job, env).double()
    training = frames[: int(p["length"])]
    long = int(p["long_forecast"])
    forecast = int(p["forecast"])
    if job.row == NO_CHANGE:
        predicted = frames[:1].expand(long + 1, -1)
    elif job.row == BLANK:
        predicted = torch.zeros_like(frames[: long + 1])
    else:
        predicted = _forecast(job, training.float(), long, env.dt)
    true = frames[: long + 1]
    errors = frame_errors(predicted, true)
    metrics = {
        "rmse": finite_or_inf(float(errors[1 : forecast + 1].mean())),
        "rmse_20s": finite_or_inf(float(errors[1:].mean())),
        "log_likelihood": float(bernoulli_log_likelihood(predicted, true)[1 : forecast + 1].mean()),
    }
    shown = [t for t in SHOWN_FRAMES if t <= long]
    trajectory = {
        "frames_true": true[shown].tolist(),
        "frames_predicted": predicted[shown].round(decimals=3).tolist(),
        "frame_index": [[float(t)] for t in shown],
    }
    return JobResult(
        job=job,
        metrics=metrics,
        data_hash=data_hash(training),
        seconds=time.perf_counter() - start,
        curves={"frame_rmse": [finite_or_inf(float(e)) for e in errors]},
        trajectory=trajectory,
    )


# ---------------------------------------------------------------------------- report
def _rmse(results: Sequence[JobResult], row: str) -> list[float]:
    return [r.metrics["rmse"] for r in results if r.job.row == row]


def plot_and_ratios(results: Sequence[JobResult], out_dir: Path) -> list[str]:
    """One system's extra report: table 1's ratios VIN / ResRNN next to the paper's, the
    per-frame error against time, and predicted frames against true ones (smallest seed)."""
    from physprior.evaluation.plots import plot_error_curves

    from ._report import curves_by_row, plot_job_frames

    if not results:
        return []
    env_id = results[0].job.env_id
    slug = env_id.split("/")[-1].lower()
    lines: list[str] = []
    baseline = _rmse(results, RESRNN)
    vins = [row for row in ROWS_OF[env_id] if row in (VV, SO2, SV)]
    if baseline and any(_rmse(results, row) for row in vins):
        lines += [
            "| row | RMSE / ResRNN's RMSE (means over seeds) | paper (table 1) |",
            "|---|---|---|",
        ]
        for row in vins:
            ours = _rmse(results, row)
            if not ours:
                continue
            paper = TABLE_1[(env_id, row)][0] / TABLE_1[(env_id, RESRNN)][0]
            ratio = float(np.mean(ours)) / float(np.mean(baseline))
            lines.append(f"| {row} | {ratio:.2f} | {paper:.2f} |")
        lines.append("")
    errors = curves_by_row(results, "frame_rmse")
    if errors:
        dt = float(results[0].job.params["dt"])
        path = plot_error_curves(
            errors,
            out_dir / f"frame-error-{slug}.png",
            dt=dt,
            title=f"Per-frame pixel error of the forecast, {env_id}",
            ylabel="root of summed squared pixel error",
        )
        lines.append(f"![per-frame error against time]({path.name})")
    kept = [r.trajectory for r in results if r.trajectory and "frames_true" in r.trajectory]
    if kept:
        side = round(len(kept[0]["frames_true"][0]) ** 0.5)
        frames = plot_job_frames(
            results,
            out_dir / f"frames-{slug}.png",
            frame_shape=(side, side),
            dt=float(results[0].job.params["dt"]),
            title=f"Forecast frames from the first 10 training frames, {env_id} (seed {{seed}})",
            skip=(BLANK,),
        )
        if frames is not None:
            lines.append(f"![predicted frames against true ones]({frames.name})")
    return [*lines, ""]


def _value(means: Means, row: str, env_id: str) -> float | None:
    value = means.get((row, env_id), {}).get("rmse", float("nan"))
    return None if value != value else value


def _beats(env_id: str, row: str) -> Claim:
    def check(means: Means) -> bool | None:
        ours, baseline = _value(means, row, env_id), _value(means, RESRNN, env_id)
        return None if ours is None or baseline is None else ours < baseline

    system = env_id.split("/")[-1]
    return Claim(f"{system}: {row} has a lower 5 s forecast RMSE than the ResRNN", check)


SUITE = Suite(
    name=NAME,
    title="VIN section 5.2, table 1: forecasting frames of the pendulum and mass-spring",
    metrics=("rmse", "rmse_20s", "log_likelihood"),
    jobs=jobs,
    run_job=run_job,
    paper=tuple(
        PaperRow(row, env_id, "rmse", mean, se, "VIN table 1 (standard error over 10 trials)")
        for (env_id, row), (mean, se) in TABLE_1.items()
    ),
    claims=(_beats(PENDULUM, VV), _beats(PENDULUM, SO2), _beats(MASS_SPRING, SV)),
    plots=plot_and_ratios,
    scale_notes={
        "default": "2,000 of the authors' 8,000 epochs (one full-batch Adam step each).",
        "smoke": "Small networks, 3 epochs: checks the code paths, not the paper.",
    },
)
