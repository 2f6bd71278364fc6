"""Suite mpc end to end at smoke scale, and its grids at the other scales."""

from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from physprior.suites import get_suite, mpc, run_bench


@pytest.mark.parametrize("scale", ["default", "paper"])
def test_grid_has_every_row_on_every_full_env(scale: str) -> None:
    grid = mpc.jobs(scale, 1)  # type: ignore[arg-type]
    cells = {(j.row, j.env_id) for j in grid}
    assert len(cells) == len(grid) == len(mpc.ROWS) * len(mpc.ENVS)
    assert {j.env_id for j in grid} == set(mpc.ENVS)
    assert {j.row for j in grid} == {*mpc.MODEL_ROWS, "SAC (collector)", "Random policy"}
    if scale == "paper":
        cem = grid[0].params["cem"]
        assert cem == {"horizon": 30, "population": 400, "iterations": 5, "elites": 40}
        assert grid[0].params["episode_steps"] is None and grid[0].params["epochs"] == 256
    assert get_suite("mpc") is mpc.SUITE


def test_smoke_run_writes_results_and_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(mpc.CACHE_ENV_VAR, str(tmp_path / "cache"))
    out = tmp_path / "bench"
    report = run_bench("mpc", scale="smoke", seeds=1, out=out, progress=False)
    results = json.loads((out / "results.json").read_text())["results"]
    assert {r["job"]["row"] for r in results} == set(mpc.ROWS)
    for r in results:
        assert set(mpc.SUITE.metrics) <= set(r["metrics"])
        assert all(math.isfinite(v) for v in r["metrics"].values())
        assert len(r["curves"]["returns"]) == r["job"]["params"]["episodes"]
    # Every row but the random one acts on (or with the agent of) the same SAC data.
    hashes = {r["data_hash"] for r in results if r["job"]["row"] != mpc.RANDOM_ROW}
    assert len(hashes) == 1
    assert list((tmp_path / "cache" / "mpc-sac").glob("*.npz"))
    text = report.read_text()
    assert "| CEM + NODE+SO |" in text and "| SAC (collector) |" in text
    assert (
        text.count("**holds**") + text.count("**does not hold**") + text.count("cannot tell") >= 2
    )
    # The returns picture, one per env, shown in the report.
    picture = out / "returns-invertedpendulumfull-v0.png"
    assert picture.read_bytes().startswith(b"\x89PNG")
    assert f"]({picture.name})" in text
