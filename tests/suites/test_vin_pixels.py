"""Suite `vin-pixels`: the grid, the authors' pixel protocol, the metrics, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import pytest
import torch

from physprior.suites import run_bench, vin_pixels
from physprior.suites._framework import Job


def test_grid_is_table_1_with_the_authors_protocol() -> None:
    grid = vin_pixels.jobs("paper", 10)
    per_seed = len(vin_pixels.ROWS_OF[vin_pixels.PENDULUM]) + len(
        vin_pixels.ROWS_OF[vin_pixels.MASS_SPRING]
    )
    assert len(grid) == 10 * per_seed
    rows = {(job.env_id, job.row) for job in grid}
    assert set(vin_pixels.TABLE_1) <= rows
    assert (vin_pixels.MASS_SPRING, vin_pixels.SO2) not in rows
    params = grid[0].params
    assert params["epochs"] == 8000 and params["lr"] == 3e-4 and params["batch_size"] == 200
    assert params["length"] == 60 and params["window"] == 11 and params["forecast"] == 50
    assert params["coder_hidden"] == 1000 and params["lstm_hidden"] == 50
    assert vin_pixels.jobs("default", 1)[0].params["epochs"] == 2000


def _job(row: str, env_id: str = vin_pixels.PENDULUM) -> Job:
    return Job(vin_pixels.NAME, row, env_id, 0, vin_pixels.jobs("smoke", 1)[0].params)


def test_training_frames_are_one_rendered_trajectory_in_50_windows() -> None:
    job = _job(vin_pixels.BLANK)
    env = gym.make(job.env_id, **job.params["env_kwargs"]).unwrapped
    frames = vin_pixels.trajectory_frames(job, env)
    assert frames.shape == (61, 784) and set(frames.unique().tolist()) == {0.0, 1.0}
    windows = vin_pixels.frame_windows_of(frames[:60], 11)
    assert windows.shape == (50, 11, 784)
    assert torch.equal(windows[1, :-1], windows[0, 1:])


def test_sanity_rows_measure_what_they_say() -> None:
    blank = vin_pixels.run_job(_job(vin_pixels.BLANK))
    env = gym.make(vin_pixels.PENDULUM, **blank.job.params["env_kwargs"]).unwrapped
    frames = vin_pixels.trajectory_frames(blank.job, env)
    # Drawing nothing misses every dark pixel: the error is the root of their count.
    expected = frames[1:51].double().sum(-1).sqrt().mean()
    assert math.isclose(blank.metrics["rmse"], float(expected), rel_tol=1e-9)
    still = vin_pixels.run_job(_job(vin_pixels.NO_CHANGE))
    assert 0 < still.metrics["rmse"] and still.curves["frame_rmse"][0] == 0.0
    assert still.metrics["log_likelihood"] < 0


def test_metrics_are_per_frame_roots_of_summed_squares() -> None:
    true = torch.zeros(3, 784)
    predicted = torch.zeros(3, 784)
    predicted[1, :16] = 1.0
    predicted[2, :4] = 0.5
    assert vin_pixels.frame_errors(predicted, true).tolist() == [0.0, 4.0, 1.0]
    likelihood = vin_pixels.bernoulli_log_likelihood(predicted, true)
    assert likelihood[0] > -1e-3 and likelihood[2] == pytest.approx(4 * math.log(0.5), abs=1e-3)


def test_unknown_rows_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown vin-pixels row 'VIN-SO\\(2\\)' for"):
        vin_pixels.run_job(_job(vin_pixels.SO2, vin_pixels.MASS_SPRING))


def test_smoke_run_reports_rows_ratios_and_frames(tmp_path: Path) -> None:
    report = run_bench("vin-pixels", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 9
    for result in results:
        assert math.isfinite(result["metrics"]["rmse"]), result["job"]["row"]
    text = report.read_text()
    assert "| VIN-SO(2) |" in text and "| 0.56 |" in text  # our ratio next to the paper's
    assert "Pendulum-v0: VIN-SO(2) has a lower 5 s forecast RMSE than the ResRNN: **" in text
    for name in ("frames-pendulum-v0.png", "frame-error-massspring-v0.png"):
        assert (tmp_path / name).stat().st_size > 0
