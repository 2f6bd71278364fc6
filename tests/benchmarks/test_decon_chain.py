"""The "decon-chain" suite: its grids, and every smoke job run end to end."""

from __future__ import annotations

import math
import re

import pytest

from physprior.benchmarks import JobResult, get_suite
from physprior.benchmarks import decon_chain as decon

SUITE = decon.SUITE
METRICS = {"rollout_error", "energy_violation", "energy_mse", "position_error"}
CHAIN, SPRING = (env_id for _, env_id, _ in decon.SYSTEMS)


@pytest.fixture(scope="module")
def smoke_results() -> list[JobResult]:
    """Every job of the smoke grid, run once for the module's tests."""
    return [SUITE.run_job(job) for job in SUITE.jobs("smoke", 1)]


def test_registered() -> None:
    assert get_suite("decon-chain") is SUITE
    assert SUITE.metrics[0] == "rollout_error"
    assert set(SUITE.metrics) == METRICS
    assert SUITE.paper == ()  # the paper's numbers are figures only


def test_smoke_runs_every_row_type(smoke_results: list[JobResult]) -> None:
    cells = {(r.job.row, r.job.env_id) for r in smoke_results}
    expected = {
        (decon.row_label(model, 2, drag), env_id)
        for _, env_id, _ in decon.SYSTEMS
        for drag in (False, True)
        for model in ("NODE", "NODE+SO", "HNN")
    }
    assert cells == expected
    for result in smoke_results:
        assert set(result.metrics) == METRICS, result.job.row
        assert all(math.isfinite(v) and v >= 0 for v in result.metrics.values()), result.metrics
        assert re.fullmatch(r"[0-9a-f]{16}", result.data_hash)
        length = result.job.params["data"]["test_length"]
        assert set(result.curves) == {"error", "energy_violation"}
        assert all(len(c) == length for c in result.curves.values())
        assert result.trajectory is not None
        dim = 4 if result.job.env_id == CHAIN else 12  # k = 2 links / bobs
        for key in ("true", "predicted"):
            rows = result.trajectory[key]
            assert len(rows) == length and all(len(r) == dim for r in rows)
    # The three models of a configuration share its data; configurations differ.
    by_config: dict[tuple[str, bool], set[str]] = {}
    for r in smoke_results:
        drag = r.job.params["env_kwargs"]["drag"] > 0
        by_config.setdefault((r.job.env_id, drag), set()).add(r.data_hash)
    assert all(len(h) == 1 for h in by_config.values())
    assert len({h for hashes in by_config.values() for h in hashes}) == 4


def test_job_is_deterministic(smoke_results: list[JobResult]) -> None:
    jobs = SUITE.jobs("smoke", 1)
    index = next(i for i, job in enumerate(jobs) if job.row == "HNN (k=2, drag)")
    decon._make_data.cache_clear()  # regenerate the data too
    again = SUITE.run_job(jobs[index])
    first = smoke_results[index]
    assert again.metrics == first.metrics
    assert again.data_hash == first.data_hash
    assert again.curves == first.curves
    assert again.trajectory == first.trajectory


@pytest.mark.parametrize(
    ("scale", "seeds", "ks"), [("default", 2, (2, 3)), ("paper", 1, (2, 3, 4))]
)
def test_grids(scale: str, seeds: int, ks: tuple[int, ...]) -> None:
    jobs = SUITE.jobs(scale, seeds)  # type: ignore[arg-type]
    assert len(jobs) == 2 * len(ks) * 2 * 3 * seeds
    assert len({job.key() for job in jobs}) == len(jobs)
    assert {job.seed for job in jobs} == set(range(seeds))
    cells = {(job.row, job.env_id): job.params for job in jobs}
    for k in ks:
        for drag in (False, True):
            for env_id, key in ((CHAIN, "links"), (SPRING, "bobs")):
                hnn = cells[(decon.row_label("HNN", k, drag), env_id)]
                assert hnn["model"] == "hnn"
                assert hnn["model_config"]["form"] == "mechanical"
                assert hnn["model_config"]["dissipation"] is drag
                assert hnn["env_kwargs"] == {key: k, "drag": decon.DRAG if drag else 0.0}
                so = cells[(decon.row_label("NODE+SO", k, drag), env_id)]
                assert so["model"] == "node-so" and so["model_config"]["substeps"] == 8
                assert cells[(decon.row_label("NODE", k, drag), env_id)]["model"] == "node"
    if scale == "paper":
        params = next(iter(cells.values()))
        assert params["model_config"]["hidden"] == 128
        assert params["train"]["epochs"] == 2000
        assert params["data"]["n_train"] == 800 and params["data"]["n_test"] == 200
        assert params["data"]["test_length"] == 20 * params["data"]["window"]


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        SUITE.jobs("huge", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds"):
        SUITE.jobs("smoke", -1)


def _means(errors: dict[str, float], env_id: str = CHAIN) -> dict:
    return {(row, env_id): {"rollout_error": e} for row, e in errors.items()}


def test_claims() -> None:
    matches, node_worse = SUITE.claims
    good = _means({"NODE (k=2)": 0.3, "NODE+SO (k=2)": 0.1, "HNN (k=2)": 0.08})
    good.update(_means({"NODE (k=3, drag)": 0.5, "NODE+SO (k=3, drag)": 0.2}, SPRING))
    assert matches.check(good) is True
    assert node_worse.check(good) is True
    bad = _means({"NODE (k=2)": 0.05, "NODE+SO (k=2)": 0.3, "HNN (k=2)": 0.1})
    assert matches.check(bad) is False
    assert node_worse.check(bad) is False
    assert matches.check({}) is None and node_worse.check({}) is None
    assert matches.check(_means({"NODE (k=2)": 0.1, "HNN (k=3)": 0.1})) is None
    diverged = _means({"NODE (k=2)": math.inf, "NODE+SO (k=2)": 0.1, "HNN (k=2)": math.nan})
    assert matches.check(diverged) is True
    assert node_worse.check(diverged) is True
