"""Suite srnn-threebody end to end at smoke scale, and its true-equations baseline."""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch

from physprior.data import generate_trajectories, make_windows
from physprior.suites import run_bench, srnn_threebody


def test_grid_has_the_five_rows_of_table_3() -> None:
    grid = srnn_threebody.jobs("paper", 1)
    assert [j.row for j in grid] == [
        srnn_threebody.SRNN,
        srnn_threebody.SINGLE_HNET,
        srnn_threebody.RECURRENT_ONET,
        srnn_threebody.SINGLE_ONET,
        srnn_threebody.TRUE_EQUATIONS,
        srnn_threebody.NO_CHANGE,
    ]
    params = grid[0].params
    assert (params["epochs"], params["hidden"], params["batch_size"]) == (1000, 512, 32)
    assert params["dtype"] == "float32"  # the authors' precision


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
        metrics = r["metrics"]
        assert math.isfinite(metrics["position_error"])
        assert math.isfinite(metrics["position_error_9"])
        assert len(r["trajectory"]["predicted"]) == r["job"]["params"]["length"]
    by_row = {r["job"]["row"]: r["metrics"] for r in results}
    # Nothing moves in the sanity row, so its energy is exactly conserved.
    assert by_row[srnn_threebody.NO_CHANGE]["energy_violation"] < 1e-8
    text = report.read_text()
    assert "SRNN beats the true equations at dt = 1: **" in text
    assert "0.26 (0.07)" in text
    assert "Protocol check: the true-equations row lies within the paper's 0.47 (0.18): **" in text
    assert (tmp_path / "trajectory-threebody-v0.png").is_file()


def test_headline_error_covers_the_first_four_predicted_steps() -> None:
    # The true-equations row is pure arithmetic: its two errors are the per-step L2 position
    # errors of the rollout averaged over steps 1-4 and 1-9, then over the test trajectories.
    job = next(j for j in srnn_threebody.jobs("smoke", 1) if j.row == srnn_threebody.TRUE_EQUATIONS)
    metrics = srnn_threebody.run_job(job).metrics
    p = job.params
    test = generate_trajectories(srnn_threebody.ENV_ID, p["test_trajectories"], 10, seed=1000)
    states, _ = make_windows(test, 10).to_torch(torch.float64)
    predicted = srnn_threebody.true_equations_rollout(states, 1.0)
    per_step = torch.linalg.vector_norm(predicted[..., :6] - states[..., :6], dim=-1)
    assert srnn_threebody.HEADLINE_STEPS == 4
    headline = per_step[:, 1:5].mean(dim=1)
    assert math.isclose(metrics["position_error"], headline.mean().item(), rel_tol=1e-12)
    assert math.isclose(
        metrics["position_error_std"], headline.std(unbiased=False).item(), rel_tol=1e-12
    )
    assert math.isclose(metrics["position_error_9"], per_step[:, 1:].mean().item(), rel_tol=1e-12)
