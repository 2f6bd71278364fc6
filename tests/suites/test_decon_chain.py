"""The "decon-chain" suite: the authors' protocol in its grids, every smoke job end to end,
and the findings' checks."""

from __future__ import annotations

import math
import re
from pathlib import Path

import pytest

from physprior.suites import JobResult, get_suite
from physprior.suites import decon_chain as decon

SUITE = decon.SUITE
METRICS = set(SUITE.metrics)
CHAIN, SPRING = (env_id for _, env_id, _ in decon.SYSTEMS)
ROWS_NO_DRAG = ("NODE", "NODE+SO", "HNN", "HNN without SO")
ROWS_DRAG = ("NODE", "NODE+SO", "HNN", "HNN+damping", "SymODEN")


@pytest.fixture(scope="module")
def smoke_results(tmp_path_factory: pytest.TempPathFactory) -> list[JobResult]:
    """Every job of the smoke grid, run once for the module's tests (a private cache)."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("PHYSPRIOR_CACHE", str(tmp_path_factory.mktemp("cache")))
        return [SUITE.run_job(job) for job in SUITE.jobs("smoke", 1)]


def test_registered() -> None:
    assert get_suite("decon-chain") is SUITE
    assert SUITE.metrics[0] == "rollout_error_authors"  # the metric of Figures 4 and 6
    assert SUITE.paper == ()  # the paper's numbers are figures only


def test_smoke_runs_every_row(smoke_results: list[JobResult]) -> None:
    cells = {(r.job.row, r.job.env_id) for r in smoke_results}
    expected = {
        (decon.row_label(model, 2, drag), env_id)
        for _, env_id, _ in decon.SYSTEMS
        for drag in (False, True)
        for model in (ROWS_DRAG if drag else ROWS_NO_DRAG) + decon.SANITY
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
        # The authors' metric counts t = 0, where the rollout starts exactly on the truth.
        assert result.metrics["rollout_error_authors"] < result.metrics["rollout_error"]
    # The rows of a configuration share its data; configurations differ.
    by_config: dict[tuple[str, bool], set[str]] = {}
    for r in smoke_results:
        drag = r.job.params["env_kwargs"]["drag"] > 0
        by_config.setdefault((r.job.env_id, drag), set()).add(r.data_hash)
    assert all(len(h) == 1 for h in by_config.values())
    assert len({h for hashes in by_config.values() for h in hashes}) == 4
    # The sanity rows bracket the skill: the true field with one RK4 step per dt is near exact,
    # holding the first state is not.
    by_cell = {(r.job.row, r.job.env_id): r.metrics for r in smoke_results}
    for _, env_id, _ in decon.SYSTEMS:
        for drag in (False, True):
            exact = by_cell[(decon.row_label(decon.TRUE_FIELD, 2, drag), env_id)]
            still = by_cell[(decon.row_label(decon.NO_CHANGE, 2, drag), env_id)]
            assert exact["rollout_error_authors"] < 1e-3 < still["rollout_error_authors"]
            assert exact["test_mse"] < 1e-3 * still["test_mse"]


def test_job_is_deterministic_and_reads_its_cached_data(
    smoke_results: list[JobResult], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PHYSPRIOR_CACHE", str(tmp_path))
    jobs = SUITE.jobs("smoke", 1)
    index = next(i for i, job in enumerate(jobs) if job.row == "SymODEN (k=2, drag)")
    again = SUITE.run_job(jobs[index])  # generates the data afresh into an empty cache
    assert len(list((tmp_path / "decon-chain").glob("*.npz"))) == 2  # train and test sets
    first = smoke_results[index]
    assert again.metrics == first.metrics and again.data_hash == first.data_hash
    assert again.trajectory == first.trajectory


@pytest.mark.parametrize(("scale", "seeds", "ks"), [("default", 2, (2,)), ("paper", 1, (2, 3, 4))])
def test_grids_follow_the_authors_protocol(scale: str, seeds: int, ks: tuple[int, ...]) -> None:
    jobs = SUITE.jobs(scale, seeds)  # type: ignore[arg-type]
    assert len(jobs) == 2 * len(ks) * (4 + 5 + 2 * len(decon.SANITY)) * seeds
    assert len({job.key() for job in jobs}) == len(jobs)
    cells = {(job.row, job.env_id): job.params for job in jobs}
    for k in ks:
        for env_id, key in ((CHAIN, "links"), (SPRING, "bobs")):
            damped = cells[(decon.row_label("SymODEN", k, True), env_id)]
            assert damped["env_kwargs"] == {
                key: k,
                "drag": decon.DRAG,
                "drag_form": "momentum",
                "start": "authors",
            }
            assert damped["model_config"]["free_field"] is True
            assert (
                cells[(decon.row_label("HNN without SO", k, False), env_id)]["model_config"]["form"]
                == "general"
            )
            for model in ROWS_NO_DRAG:
                config = cells[(decon.row_label(model, k, False), env_id)]["model_config"]
                assert (config["integrator"], config["substeps"]) == ("rk4", 1)
                assert config["angle_embedding"] is (env_id == CHAIN)
    train = next(iter(cells.values()))["train"]
    assert (train["lr"], train["weight_decay"], train["grad_clip"]) == (5e-3, 1e-4, 1.0)
    if scale == "paper":
        params = next(iter(cells.values()))
        assert params["model_config"]["hidden"] == 256
        assert params["train"]["epochs"] == 2000
        assert (params["data"]["n_train"], params["data"]["n_test"]) == (800, 200)
        assert (params["data"]["length"], params["data"]["test_length"]) == (334, 100)


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        SUITE.jobs("huge", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds"):
        SUITE.jobs("smoke", -1)


def _means(errors: dict[str, float], env_id: str = CHAIN) -> dict:
    """Both metrics the claims read (Figures 4 and 6's geomean, Figure 5's MSE) set to `e`."""
    return {(row, env_id): {"rollout_error_authors": e, "test_mse": e} for row, e in errors.items()}


def test_claims_read_the_papers_findings() -> None:
    so_helps, so_helps_hnn, hnn_on_chain, gap_on_spring, matches_symoden, plain_hnn_poor = (
        SUITE.claims
    )
    paper_like = _means(
        {"NODE (k=2)": 0.3, "NODE+SO (k=2)": 0.1, "HNN (k=2)": 0.05, "HNN without SO (k=2)": 0.2}
    )
    paper_like |= _means({"NODE (k=2)": 0.3, "NODE+SO (k=2)": 0.1, "HNN (k=2)": 0.105}, SPRING)
    paper_like |= _means(
        {
            "NODE (k=2, drag)": 0.3,
            "NODE+SO (k=2, drag)": 0.1,
            "HNN (k=2, drag)": 0.5,
            "SymODEN (k=2, drag)": 0.09,
        },
        SPRING,
    )
    assert [c.check(paper_like) for c in SUITE.claims] == [True] * 6
    assert so_helps_hnn.check(_means({"HNN (k=2)": 0.3, "HNN without SO (k=2)": 0.2})) is False
    # The spring gap counts the undamped systems only; the chain claim the chain only.
    assert gap_on_spring.check(_means({"NODE+SO (k=2)": 0.2, "HNN (k=2)": 0.1}, CHAIN)) is None
    assert hnn_on_chain.check(_means({"NODE+SO (k=2)": 0.2, "HNN (k=2)": 0.1}, SPRING)) is None
    assert gap_on_spring.check(_means({"NODE+SO (k=3)": 0.2, "HNN (k=3)": 0.1}, SPRING)) is False
    assert (
        matches_symoden.check(_means({"NODE+SO (k=2, drag)": 0.2, "SymODEN (k=2, drag)": 0.1}))
        is False
    )
    assert (
        plain_hnn_poor.check(_means({"NODE+SO (k=2, drag)": 0.2, "HNN (k=2, drag)": 0.1})) is False
    )
    # Figure 5 plots the test MSE: the chain and spring claims read it, not the geomean.
    mse_differs = _means({"NODE+SO (k=2)": 0.2, "HNN (k=2)": 0.1})
    mse_differs[("HNN (k=2)", CHAIN)]["test_mse"] = 0.3
    assert hnn_on_chain.check(mse_differs) is False
    assert all(c.check({}) is None for c in SUITE.claims)
    diverged = _means({"NODE (k=2)": math.inf, "NODE+SO (k=2)": 0.1, "HNN (k=2)": math.nan})
    assert so_helps.check(diverged) is True and hnn_on_chain.check(diverged) is False
