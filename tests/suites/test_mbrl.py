"""Suite `mbrl`: the grid, and a smoke run through every row, plot and claim."""

from __future__ import annotations

import json
import math
from pathlib import Path

from physprior.suites import get_suite, mbrl, run_bench


def test_the_grid_has_every_row_on_every_env():
    assert get_suite("mbrl") is mbrl.SUITE
    grid = mbrl.jobs("default", 3)
    assert len(grid) == len(mbrl.ROWS) * len(mbrl.ENVS) * 3
    assert {job.row for job in grid} == set(mbrl.ROWS)
    paper = mbrl.jobs("paper", 1)[0].params
    assert paper["planner"] == {
        "population": 500, "horizon": 30, "iterations": 5, "elites": 50, "particles": 20,
    }  # fmt: skip
    assert paper["ensemble"] == 5


def test_smoke_run_reports_curves_calibration_and_claims(tmp_path: Path) -> None:
    out = tmp_path / "bench"
    report = run_bench("mbrl", scale="smoke", seeds=1, out=out, progress=False)
    results = json.loads((out / "results.json").read_text())["results"]
    assert {r["job"]["row"] for r in results} == set(mbrl.ROWS)
    for r in results:
        metrics, curves = r["metrics"], r["curves"]
        assert math.isfinite(metrics["final_return"]) and metrics["episodes"] >= 1
        assert curves["episode_steps"][-1] <= 60
        if r["job"]["row"] != mbrl.SAC_ROW:  # the ensembles' calibration on held-out data
            assert 0.0 <= metrics["within_2sigma"] <= 1.0
            assert len(curves["within_1sigma"]) == 3
    text = report.read_text()
    for picture in (
        "learning-invertedpendulumfull-v0.png",
        "calibration-invertedpendulumfull-v0.png",
    ):
        assert (out / picture).read_bytes().startswith(b"\x89PNG") and picture in text
    assert "PETS, NODE+SO ensemble: mean return at least the MLP ensemble's" in text
