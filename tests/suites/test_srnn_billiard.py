"""Suite srnn-billiard: its grid, its bounce bookkeeping, and a smoke run end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

import physprior  # noqa: F401  (registers the envs)
from physprior.data import generate_trajectories, make_windows
from physprior.suites import run_bench, srnn_billiard


def _true_states(count: int = 8, length: int = 31) -> np.ndarray:
    data = generate_trajectories(srnn_billiard.ENV_ID, count, length, seed=3)
    return make_windows(data, length).states


def test_grid_has_the_papers_rows_and_protocol() -> None:
    grid = srnn_billiard.jobs("paper", 1)
    assert [j.row for j in grid] == [
        srnn_billiard.FULL,
        srnn_billiard.NO_ALPHA,
        srnn_billiard.SRNN_ALONE,
        srnn_billiard.ONET,
        srnn_billiard.RNN,
        srnn_billiard.RNN_AUTHORS,
        srnn_billiard.SIGMOID_ALPHA,
        srnn_billiard.FREE_FLIGHT,
        srnn_billiard.NO_CHANGE,
    ]
    p = grid[0].params
    assert (p["trajectories"], p["length"], p["test_trajectories"], p["test_length"]) == (
        5000,
        11,
        32,
        61,
    )
    assert (p["epochs"], p["lr"], p["lr_decay"], p["lr_min"], p["hidden"]) == (
        1500,
        5e-3,
        0.99,
        1e-4,
        32,
    )


def test_the_true_trajectories_time_every_single_bounce_and_no_change_none() -> None:
    env = gym.make(srnn_billiard.ENV_ID).unwrapped
    states = _true_states()
    bounces = srnn_billiard.single_bounces(env, states)
    assert len(bounces) > 5
    for b, k, fraction, normal in bounces:
        assert 0.0 <= fraction <= 1.0
        assert k in srnn_billiard.predicted_bounces(states[b], normal)
    assert srnn_billiard.bounce_timing(states, bounces) == 1.0
    still = np.repeat(states[:, :1], states.shape[1], axis=1)
    assert srnn_billiard.bounce_timing(still, bounces) == 0.0
    assert math.isnan(srnn_billiard.bounce_timing(states, []))

    class Exact:  # the env's own step as a model: every bounce caught, no error
        dtype = torch.float64

        def step(self, z: torch.Tensor) -> torch.Tensor:
            return torch.tensor(np.stack([env._advance(s.numpy(), np.zeros(2)) for s in z]))

    exact = srnn_billiard.one_step_metrics(Exact(), torch.tensor(states), bounces)
    assert exact["bounce_one_step"] == 1.0 and exact["bounce_step_error"] < 1e-12
    free = srnn_billiard.free_steps(env, states)
    assert free and all(not env.wall_events(states[b, k]) for b, k in free)


def test_free_flight_is_the_exact_motion_until_a_wall() -> None:
    env = gym.make(srnn_billiard.ENV_ID).unwrapped
    start = np.array([0.5, 0.6, 0.2, 0.1])  # three steps from any wall
    states = [start]
    for _ in range(3):
        states.append(env._advance(states[-1], np.zeros(2)))
    true = torch.tensor(np.stack(states)[None])
    flight = srnn_billiard.free_flight_rollout(true, env.g, env.dt)
    torch.testing.assert_close(flight, true, rtol=0, atol=1e-14)


def test_smoke_run_writes_results_report_and_paths(tmp_path: Path) -> None:
    report = run_bench("srnn-billiard", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    by_row = {r["job"]["row"]: r["metrics"] for r in results}
    assert list(by_row) == [j.row for j in srnn_billiard.jobs("smoke", 1)]
    for row, metrics in by_row.items():
        assert math.isfinite(metrics["position_error"]), row
        assert 0.0 <= metrics["position_error_10"] < math.inf, row
        assert 0.0 <= metrics["bounce_timing"] <= 1.0, row
        learned = row not in (srnn_billiard.FREE_FLIGHT, srnn_billiard.NO_CHANGE)
        assert ("bounce_one_step" in metrics) == learned, row
        has_module = row in srnn_billiard.MODULE_ROWS
        assert ("gamma_bounce" in metrics) == has_module, row
    for row in srnn_billiard.MODULE_ROWS:
        assert 0.0 <= by_row[row]["normal_cosine"] <= 1.0
        assert 0.0 <= by_row[row]["gamma_free"] <= 1.0
    text = report.read_text()
    assert "gamma below 0.1 away from walls: **" in text
    assert "over the first 10 steps (the training length) than vanilla RNN: **" in text
    assert (tmp_path / "paths-heavy-billiard.png").is_file()
    assert "paths-heavy-billiard.png" in text
