"""Suite srnn-threebody end to end at smoke scale, and its true-equations baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from physprior.benchmarks import run_bench, srnn_threebody
from physprior.data import generate_trajectories, make_windows


def test_grid_has_the_five_rows_of_table_3() -> None:
    grid = srnn_threebody.jobs("paper", 1)
    assert [j.row for j in grid] == [
        srnn_threebody.SRNN,
        srnn_threebody.SINGLE_HNET,
        srnn_threebody.RECURRENT_ONET,
        srnn_threebody.SINGLE_ONET,
        srnn_threebody.TRUE_EQUATIONS,
    ]
    assert grid[0].params["epochs"] == 1000 and grid[0].params["hidden"] == 512


def test_true_equations_at_a_small_step_follow_the_data() -> None:
    # Leapfrog on the exact equations: at a step of 0.001 it reproduces the env's adaptive
    # ground truth one observation (dt = 1) later; at dt = 1 it is what Table 3 compares with.
    data = generate_trajectories(srnn_threebody.ENV_ID, 2, 2, seed=0)
    states, _ = make_windows(data, 2).to_torch(torch.float64)
    fine = srnn_threebody.true_equations_rollout(states[:, :1].expand(-1, 1001, -1), 0.001)
    assert torch.allclose(fine[:, -1], states[:, 1], atol=1e-4)
    coarse = srnn_threebody.true_equations_rollout(states, 1.0)
    assert coarse.shape == states.shape and not torch.allclose(coarse, states, atol=1e-4)


def test_smoke_run_writes_results_and_report(tmp_path: Path) -> None:
    report = run_bench("srnn-threebody", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert [r["job"]["row"] for r in results] == [j.row for j in srnn_threebody.jobs("smoke", 1)]
    for r in results:
        assert math.isfinite(r["metrics"]["position_error"])
        assert len(r["trajectory"]["predicted"]) == r["job"]["params"]["length"]
    text = report.read_text()
    assert "SRNN beats the true equations at dt = 1: **" in text
    assert "0.26 (0.07)" in text
    assert (tmp_path / "trajectory-threebody-v0.png").is_file()
