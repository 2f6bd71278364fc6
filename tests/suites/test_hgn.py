"""Suite `hgn`: the grid, the paper's systems and noise, the metrics, the report."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch

from physprior.suites import hgn, run_bench
from physprior.suites._framework import Job


def test_grid_is_table_1_at_the_papers_sizes() -> None:
    grid = hgn.jobs("paper", 2)
    assert len(grid) == 2 * len(hgn.ENVS) * len(hgn.ROWS)
    assert {(job.row, job.env_id) for job in grid} >= set(hgn.TABLE_1)
    params = grid[0].params
    assert (params["n_train"], params["n_test"], params["length"]) == (50_000, 10_000, 31)
    assert params["preset"] == "paper" and params["inference_frames"] == 31
    assert params["lr"] == 1.5e-4 and params["batch_size"] == 16 and params["dt"] == 0.125
    assert (params["hnn_steps"], params["hnn_batch_size"], params["hnn_lr"]) == (15_000, 64, 1e-3)
    noise = {job.env_id: job.params["noise_std"] for job in grid}
    assert noise == {
        hgn.MASS_SPRING: 0.1,
        hgn.PENDULUM: 0.1,
        hgn.TWO_BODY: 0.05,
        hgn.THREE_BODY: 0.2,
    }
    assert hgn.jobs("default", 1)[0].params["preset"] == "reduced"


def _job(row: str, env_id: str = hgn.MASS_SPRING) -> Job:
    job = next(j for j in hgn.jobs("smoke", 1) if j.env_id == env_id)
    return Job(hgn.NAME, row, env_id, 0, job.params)


def test_systems_are_the_papers() -> None:
    spring = gym.make(hgn.MASS_SPRING, **hgn.ENV_KWARGS[hgn.MASS_SPRING]).unwrapped
    assert (spring.k, spring.m, spring.dt) == (2.0, 0.5, 0.125)
    pendulum = gym.make(hgn.PENDULUM, **hgn.ENV_KWARGS[hgn.PENDULUM]).unwrapped
    assert (pendulum.g, pendulum.m, pendulum.l) == (3.0, 0.5, 1.0)
    # H = 2 m g l (1 - cos q) + p^2 / (2 m l^2), the paper's pendulum.
    assert pendulum.energy(np.array([np.pi / 2, 1.0])) == pytest.approx(3.0 + 1.0)


def test_sequences_are_noisy_copies_of_true_rollouts() -> None:
    job = _job(hgn.NO_CHANGE)
    noisy, clean = hgn.sequences(job)
    assert noisy.shape == clean.shape == (20, 31, 2)
    spread = (noisy - clean).std()
    assert 0.08 < spread < 0.12  # std 0.1 on every coordinate of every state
    env = gym.make(job.env_id, **job.params["env_kwargs"]).unwrapped
    step = env.step  # the clean sequences follow the true dynamics
    env.reset(options={"state": clean[3, 0]})
    np.testing.assert_allclose(step(np.zeros(1))[0], clean[3, 1], atol=1e-9)
    again, _ = hgn.sequences(job)
    assert np.array_equal(noisy, again)


def test_sanity_rows_measure_what_they_say() -> None:
    still = hgn.run_job(_job(hgn.NO_CHANGE))
    assert still.curves["frame_mse"][0] == 0.0 and still.metrics["mse"] > 0
    oracle = hgn.run_job(_job(hgn.ORACLE))
    # Noise-free frames differ from noisy ones only by the noise: far below no change.
    assert 0 < oracle.metrics["mse"] < still.metrics["mse"]
    assert "energy_variance" not in oracle.metrics
    # The mean frame is one picture shown at every time: a blur of the bodies' positions.
    mean = hgn.run_job(_job(hgn.MEAN_FRAME))
    assert oracle.metrics["mse"] < mean.metrics["mse"]
    shown = np.asarray(mean.trajectory["frames_predicted"])
    assert np.array_equal(shown, np.broadcast_to(shown[:1], shown.shape))
    assert 0.0 < shown.std() and shown.max() < 0.9  # no sharp disc


def test_metric_is_pixel_mse_times_1e4_per_sequence() -> None:
    true = torch.zeros(2, 3, 4, dtype=torch.float64)
    predicted = true.clone()
    predicted[1, 0, 0] = 0.1
    errors = hgn._per_sequence_mse(predicted, true)
    assert errors.tolist() == pytest.approx([0.0, 1e4 * 0.01 / 12])


def test_unknown_cells_are_refused() -> None:
    with pytest.raises(ValueError, match="unknown hgn cell"):
        hgn.run_job(_job("HGN (RK4)"))


def test_smoke_run_reports_rows_energy_and_frames(tmp_path: Path) -> None:
    report = run_bench("hgn", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == len(hgn.ENVS) * len(hgn.ROWS)
    for result in results:
        assert math.isfinite(result["metrics"]["mse"]), result["job"]["row"]
        learned = result["job"]["row"] in (*hgn.HGN_OPTIONS, hgn.PIXEL_HNN)
        assert ("energy_variance" in result["metrics"]) == learned
    text = report.read_text()
    assert "| HGN (leapfrog) |" in text and "| 6.23 (2.03) |" in text  # paper's test MSE
    assert "MassSpring: HGN (leapfrog)'s test MSE is below PixelHNN's: **" in text
    for name in (
        "frames-pendulum-v0.png",
        "learned-energy-threebody-v0.png",
        "frame-mse-twobody-v0.png",
    ):
        assert (tmp_path / name).stat().st_size > 0
