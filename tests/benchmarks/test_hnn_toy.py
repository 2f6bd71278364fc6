"""Suite hnn-toy end to end at smoke scale."""

from __future__ import annotations

import json
import math
from pathlib import Path

from physprior.benchmarks import get_suite, hnn_toy, run_bench


def test_grid_covers_both_rows_on_every_env_per_seed() -> None:
    grid = hnn_toy.jobs("paper", 2)
    cells = {(j.row, j.env_id, j.seed) for j in grid}
    assert len(cells) == len(grid) == 2 * 3 * 2
    two_body = next(j for j in grid if j.env_id == hnn_toy.TWO_BODY)
    assert two_body.params["steps"] == 10_000 and two_body.params["batch_size"] == 200
    spring = next(j for j in grid if j.env_id == hnn_toy.MASS_SPRING)
    assert spring.params["trajectories"] == 25 and spring.params["length"] == 30
    assert get_suite("hnn-toy") is hnn_toy.SUITE


def test_smoke_run_writes_results_and_report(tmp_path: Path) -> None:
    report = run_bench("hnn-toy", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 6
    hashes: dict[str, set[str]] = {}
    for r in results:
        assert set(hnn_toy.SUITE.metrics) <= set(r["metrics"])
        assert math.isfinite(r["metrics"]["energy_mse"]) and r["metrics"]["energy_mse"] >= 0
        assert len(r["curves"]["error"]) == r["job"]["params"]["test_horizon"] + 1
        hashes.setdefault(r["job"]["env_id"], set()).add(r["data_hash"])
    # Both rows of an env and seed train and test on the same data.
    assert all(len(h) == 1 for h in hashes.values()) and len(hashes) == 3
    text = report.read_text()
    assert "| HNN |" in text and "| Baseline NN |" in text and "0.171" in text
    assert text.count("**holds**") + text.count("**does not hold**") == 3
    assert (tmp_path / "energy-twobody-v0.png").is_file()
