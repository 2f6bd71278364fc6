"""The "decon-mujoco" suite: its grids, its claims, and the smoke suite end to end."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import pytest

from physprior.benchmarks import decon_mujoco as decon
from physprior.benchmarks import get_suite, run_bench

SUITE = decon.SUITE
ROWS = {"NODE", "NODE+SO", "HNN", "MLP"}
CHEETAH = "physprior/HalfCheetahFull-v0"


def test_registered() -> None:
    assert get_suite("decon-mujoco") is SUITE
    assert SUITE.metrics[0] == "rollout_error"
    assert SUITE.paper == ()  # Figure 7 is bars only


def test_smoke_suite_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(decon.CACHE_ENV, str(tmp_path / "cache"))
    report = run_bench("decon-mujoco", scale="smoke", out=tmp_path / "run", progress=False)
    results = json.loads((tmp_path / "run" / "results.json").read_text())["results"]
    assert {r["job"]["row"] for r in results} == ROWS
    assert {r["job"]["env_id"] for r in results} == {CHEETAH}
    for r in results:
        assert set(SUITE.metrics) <= set(r["metrics"])
        assert all(math.isfinite(v) for v in r["metrics"].values()), r["metrics"]
        assert re.fullmatch(r"[0-9a-f]{16}", r["data_hash"])
        horizon = r["job"]["params"]["windows"]["horizon"]
        assert len(r["curves"]["error"]) == horizon + 1
        assert len(r["trajectory"]["true"]) == horizon + 1
        assert len(r["trajectory"]["true"][0]) == 18  # HalfCheetah [qpos (9), qvel (9)]
        assert r["job"]["params"]["dt"] == pytest.approx(0.05)
    # The four models share one collection: one cached file, one data hash.
    assert len({r["data_hash"] for r in results}) == 1
    assert len(list((tmp_path / "cache" / "decon-mujoco").glob("*.npz"))) == 1
    text = report.read_text()
    for claim in SUITE.claims:
        assert claim.text in text
    assert text.count("**holds**") + text.count("**does not hold**") <= len(SUITE.claims)


def test_cached_dataset_is_reused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(decon.CACHE_ENV, str(tmp_path))
    spec = {"steps": 40, "max_episode_steps": 20, "sac_kwargs": {"learning_starts": 10}}
    first = decon._dataset(CHEETAH, 0, spec)
    (path,) = (tmp_path / "decon-mujoco").glob("*.npz")
    stamp = path.stat().st_mtime_ns
    again = decon._dataset(CHEETAH, 0, spec)
    assert path.stat().st_mtime_ns == stamp  # read back, not collected again
    assert (again.obs == first.obs).all() and len(again) == 40


@pytest.mark.parametrize(("scale", "seeds"), [("default", 1), ("paper", 1), ("default", 2)])
def test_grids(scale: str, seeds: int) -> None:
    jobs = SUITE.jobs(scale, seeds)  # type: ignore[arg-type]
    assert len(jobs) == 4 * 4 * seeds
    assert len({job.key() for job in jobs}) == len(jobs)
    assert {(j.row, j.env_id) for j in jobs} == {(r, e) for r in ROWS for e in decon.ENVS}
    cells = {(j.row, j.env_id): j.params for j in jobs}
    hnn = cells[("HNN", CHEETAH)]
    assert hnn["model"] == "hnn" and hnn["model_config"]["form"] == "mechanical"
    assert hnn["model_config"]["dissipation"] is True
    assert hnn["model_config"]["integrator"] == "euler"
    assert hnn["model_config"]["substeps"] == 8
    node = cells[("NODE", CHEETAH)]["model_config"]
    assert node["integrator"] == "euler" and node["substeps"] == 8
    assert cells[("NODE+SO", CHEETAH)]["model"] == "node-so"
    assert cells[("MLP", CHEETAH)]["model"] == "mlp"
    assert all(p["model_config"]["hidden"] == 128 for p in cells.values())
    assert cells[("NODE", "physprior/HopperFull-v0")]["dt"] == pytest.approx(0.008)
    if scale == "paper":
        params = cells[("NODE", CHEETAH)]
        assert params["windows"] == {"train": 40_000, "test": 200, "horizon": 200}
        assert params["train"]["epochs"] == 256 and params["train"]["lr"] == 2e-4
        assert params["train"]["lr_min"] == 1e-6 and params["train"]["weight_decay"] == 1e-4
        assert params["collect"]["steps"] == 1_000_000


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        SUITE.jobs("huge", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds"):
        SUITE.jobs("smoke", 0)


def _means(errors: dict[str, float], env_id: str = CHEETAH) -> dict:
    return {(row, env_id): {"rollout_error": e} for row, e in errors.items()}


def test_claims() -> None:
    per_env, overall, hnn_worst = SUITE.claims
    good = _means({"NODE": 0.2, "NODE+SO": 0.1, "HNN": 0.5, "MLP": 0.3})
    good |= _means({"NODE": 0.3, "NODE+SO": 0.05, "HNN": math.inf, "MLP": 0.2}, "x/Hopper")
    assert per_env.check(good) is True
    assert overall.check(good) is True
    assert hnn_worst.check(good) is True
    bad = _means({"NODE": 0.2, "NODE+SO": 0.3, "HNN": 0.1, "MLP": 0.05})
    assert per_env.check(bad) is False
    assert overall.check(bad) is False
    assert hnn_worst.check(bad) is False
    # Best overall but not on every env.
    mixed = _means({"NODE": 0.2, "NODE+SO": 0.01, "HNN": 0.5, "MLP": 0.3})
    mixed |= _means({"NODE": 0.2, "NODE+SO": 0.21, "HNN": 0.5, "MLP": 0.3}, "x/Hopper")
    assert per_env.check(mixed) is False and overall.check(mixed) is True
    assert all(c.check({}) is None for c in SUITE.claims)
    assert overall.check(_means({"NODE+SO": 0.1})) is None
    assert per_env.check(_means({"NODE+SO": math.nan, "NODE": 0.1})) is False
