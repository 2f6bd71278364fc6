"""Suite `vin-noisy`: the grid, the authors' protocol, the noisy windows, the sanity rows."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from physprior.suites import run_bench, vin_noisy
from physprior.suites._framework import Job


def test_grid_has_every_row_in_both_regimes_and_the_authors_protocol() -> None:
    grid = vin_noisy.jobs("paper", 3)
    assert len(grid) == len(vin_noisy.ROWS) * 2 * 3
    rows = {job.row for job in grid}
    for model in vin_noisy.LEARNED:
        assert {f"{model}, 5 trajectories", f"{model}, 25 trajectories"} <= rows
    params = grid[0].params
    assert params["epochs"] == 3000 and params["batch_size"] == 200 and params["lr"] == 1e-3
    assert params["noise"] == 0.33 and params["length"] == 30 and params["window"] == 21
    assert params["test_trajectories"] == 3 and params["test_length"] == 100
    assert {job.env_id for job in grid} == {vin_noisy.PENDULUM, vin_noisy.MASS_SPRING}
    assert vin_noisy.jobs("default", 1)[0].params["epochs"] == 1000


def test_noisy_windows_share_each_points_noise() -> None:
    clean = np.zeros((2, 30, 2))
    windows = vin_noisy.noisy_windows(clean, 21, 0.33, np.random.default_rng(0))
    assert windows.shape == (20, 21, 2)
    # Window s + 1 of a trajectory is window s shifted by one point, noise included.
    np.testing.assert_array_equal(windows[1, :-1], windows[0, 1:])
    assert not np.array_equal(windows[10, :-1], windows[9, 1:])  # another trajectory
    assert abs(windows.std() - 0.33) < 0.05


def test_the_authors_systems_and_starts_feed_the_data() -> None:
    job = Job(
        vin_noisy.NAME,
        vin_noisy.NO_CHANGE,
        vin_noisy.PENDULUM,
        0,
        vin_noisy.jobs("smoke", 1)[0].params,
    )
    data = vin_noisy._trajectories(job, 25, 30, 0)
    assert data.shape == (25, 30, 2)
    q0 = np.abs(data[:, 0, 0])
    assert ((q0 >= np.pi / 2) & (q0 <= np.pi - 0.1)).all() and (np.abs(data[:, 0, 1]) <= 1).all()
    # The pendulum's motion: q'' = -9.82 sin q (finite differences of the noise-free data).
    accel = (data[:, 2:, 0] - 2 * data[:, 1:-1, 0] + data[:, :-2, 0]) / 0.1**2
    np.testing.assert_allclose(accel, -9.82 * np.sin(data[:, 1:-1, 0]), atol=0.5)


def test_true_potential_in_velocity_verlet_follows_the_true_motion() -> None:
    env = gym.make(vin_noisy.PENDULUM, **vin_noisy.ENV_KWARGS[vin_noisy.PENDULUM]).unwrapped
    start = np.array([2.5, 0.3])
    env.reset(options={"state": start})
    true = np.stack([start] + [env.step(np.zeros(1))[0] for _ in range(20)])
    predicted = vin_noisy.true_velocity_verlet(env, torch.tensor(start)[None], 20)[0].numpy()
    error = np.abs(predicted - true).max()
    assert 1e-6 < error < 0.1  # leapfrog at h = 0.1: second order, not exact


def test_smoke_run_reports_every_row_and_the_papers_findings(tmp_path: Path) -> None:
    report = run_bench("vin-noisy", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 2 * len(vin_noisy.ROWS)
    for result in results:
        assert math.isfinite(result["metrics"]["rmse"]), result["job"]["row"]
    by_row = {(r["job"]["row"], r["job"]["env_id"]): r["metrics"]["rmse"] for r in results}
    assert by_row[(vin_noisy.TRUE_VV, vin_noisy.PENDULUM)] < 0.1
    text = report.read_text()
    assert "Pendulum-v0, 5 trajectories: VIN-VV has the lowest RMSE of the learned rows: **" in text
