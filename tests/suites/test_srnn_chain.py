"""The "srnn-chain" suite: its grids, and every smoke job run end to end."""

from __future__ import annotations

import math
import re

import pytest
import torch

from physprior.suites import JobResult, get_suite
from physprior.suites import srnn_chain as chain

SUITE = chain.SUITE
METRICS = set(SUITE.metrics)


@pytest.fixture(scope="module")
def smoke_results() -> list[JobResult]:
    """Every job of the smoke grid, run once for the module's tests."""
    return [SUITE.run_job(job) for job in SUITE.jobs("smoke", 1)]


def test_registered() -> None:
    assert get_suite("srnn-chain") is SUITE
    assert SUITE.metrics[0] == "position_error"
    assert set(SUITE.metrics) == METRICS


def test_smoke_runs_every_row(smoke_results: list[JobResult]) -> None:
    assert [r.job.row for r in smoke_results] == [row.label for row in chain.ROWS]
    hashes = {r.data_hash for r in smoke_results}
    assert len(hashes) == 1  # every row of a seed sees the same data
    assert re.fullmatch(r"[0-9a-f]{16}", hashes.pop())
    for result in smoke_results:
        assert set(result.metrics) == METRICS, result.job.row
        assert all(math.isfinite(v) and v >= 0 for v in result.metrics.values()), result.metrics
        # The authors' window: t = 0 .. H - 1.
        horizon = result.job.params["data"]["horizon"]
        assert set(result.curves) == {"error", "energy_violation", "position_error"}
        assert all(len(c) == horizon for c in result.curves.values())
        assert result.trajectory is not None
        for key in ("true", "predicted"):
            rows = result.trajectory[key]
            assert len(rows) == horizon and all(len(r) == 40 for r in rows)
        assert JobResult.from_dict(result.to_dict()) == result


def test_job_is_deterministic(smoke_results: list[JobResult]) -> None:
    jobs = SUITE.jobs("smoke", 1)
    index = [job.row for job in jobs].index(chain.SRNN_ISO)
    chain._make_data.cache_clear()  # regenerate the data too
    again = SUITE.run_job(jobs[index])
    first = smoke_results[index]
    assert again.metrics == first.metrics
    assert again.data_hash == first.data_hash
    assert again.curves == first.curves
    assert again.trajectory == first.trajectory


def test_seeds_change_the_data() -> None:
    jobs = SUITE.jobs("smoke", 2)
    assert len(jobs) == 2 * len(chain.ROWS)
    first = chain._make_data(0, chain._canonical(dict(jobs[0].params["data"])))
    second = chain._make_data(1, chain._canonical(dict(jobs[-1].params["data"])))
    assert first.digest() != second.digest()


@pytest.mark.parametrize(("scale", "seeds"), [("default", 2), ("paper", 1)])
def test_grids(scale: str, seeds: int) -> None:
    jobs = SUITE.jobs(scale, seeds)  # type: ignore[arg-type]
    assert len(jobs) == len(chain.ROWS) * seeds == 36 * seeds
    assert len({job.key() for job in jobs}) == len(jobs)
    assert {job.row for job in jobs} == {row.label for row in chain.ROWS}
    assert {job.seed for job in jobs} == set(range(seeds))
    by_row = {job.row: job.params for job in jobs}
    srnn_iso = by_row[chain.SRNN_ISO]
    assert srnn_iso["model"] == "srnn"
    assert srnn_iso["model_config"]["integrator"] == "leapfrog"
    assert srnn_iso["model_config"]["test_integrator"] == "leapfrog"
    assert srnn_iso["model_config"]["iso"] is True
    assert srnn_iso["train"]["iso"] is True and srnn_iso["test_fit_iterations"] > 0
    single = by_row["single-step O-NET E-L"]
    assert single["model"] == "node"
    assert single["model_config"]["train_mode"] == "single"
    assert (single["model_config"]["integrator"], single["model_config"]["test_integrator"]) == (
        "euler",
        "leapfrog",
    )
    assert single["train"]["iso"] is False
    assert by_row["LSTM + ISO"]["model"] == "lstm" and by_row["LSTM + ISO"]["train"]["iso"]
    assert by_row["vanilla RNN"]["model"] == "rnn"
    assert srnn_iso["data"]["noise_std"] == chain.NOISE_STD
    assert srnn_iso["data"]["env_kwargs"] == {"ends_at_rest": True}
    assert srnn_iso["train"]["restore_best"] is False  # the authors score the last epoch
    authors_rnn = by_row["vanilla RNN [authors' form]"]
    assert authors_rnn["model_config"]["readout"] == "state"
    assert authors_rnn["train"]["grad_clip"] == chain.AUTHORS_RNN_CLIP
    authors_lstm = by_row["LSTM + ISO [authors' form]"]
    assert authors_lstm["model_config"] == {
        "hidden": 40,
        "train_mode": "recurrent",
        "readout": "hidden",
    }
    assert by_row["vanilla RNN"]["train"]["grad_clip"] is None
    raw = by_row[f"{chain.SRNN} {chain.AUTHORS}"]["model_config"]
    assert raw["normalize"] is False and "normalize" not in srnn_iso["model_config"]
    assert by_row[chain.EXACT_MAP_ISO] == {"model": "exact", "iso": True, "data": srnn_iso["data"]}
    if scale == "paper":
        assert srnn_iso["model_config"]["hidden"] == 2048
        assert srnn_iso["train"]["epochs"] == 1000
        assert srnn_iso["train"]["iso_warmup_epochs"] == 100
        assert srnn_iso["train"]["iso_iterations"] == 1  # the authors' 2020 script
        assert srnn_iso["data"]["n_train"] == 1000
        assert srnn_iso["data"]["horizon"] == 200
        assert srnn_iso["data"]["observed"] == 10


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="unknown scale"):
        SUITE.jobs("huge", 1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="seeds"):
        SUITE.jobs("smoke", 0)


def test_paper_rows() -> None:
    rows = {p.row: p for p in SUITE.paper}
    assert len(rows) == 28  # Tables 1-2 and the authors' forms of the RNN, LSTM and SRNN
    assert set(rows) == {row.label for row in chain.ROWS if "sanity row" not in row.label}
    assert rows["LSTM [authors' form]"].mean == rows["LSTM"].mean == 5.95
    assert rows[chain.SRNN_ISO].mean == 1.45 and rows[chain.SRNN_ISO].std == 0.32
    assert rows[chain.SRNN].mean == 2.37
    assert rows["single-step O-NET E-E"].source == "SRNN Table 1"
    assert rows["LSTM + ISO"].source == "SRNN Table 2"
    assert all(p.metric == "position_error" and p.env_id == chain.ENV_ID for p in SUITE.paper)


def test_claims_on_the_paper_numbers() -> None:
    paper = {(p.row, p.env_id): {"position_error": p.mean} for p in SUITE.paper}
    paper[(chain.PREDICT_ZERO, chain.ENV_ID)] = {"position_error": 6.0}
    assert [claim.check(paper) for claim in SUITE.claims] == [True, True, True, True]
    assert all(claim.check({}) is None for claim in SUITE.claims)
    worse = dict(paper)
    worse[(chain.SRNN_ISO, chain.ENV_ID)] = {"position_error": 9.0}
    assert [claim.check(worse) for claim in SUITE.claims][:2] == [False, False]
    diverged = dict(paper)
    diverged[("LSTM", chain.ENV_ID)] = {"position_error": math.nan}
    assert SUITE.claims[0].check(diverged) is True


def test_sanity_rows_are_exact_arithmetic(smoke_results: list[JobResult]) -> None:
    by_row = {r.job.row: r.metrics for r in smoke_results}
    data = chain._make_data(0, chain._canonical(dict(SUITE.jobs("smoke", 1)[0].params["data"])))
    horizon = SUITE.jobs("smoke", 1)[0].params["data"]["horizon"]
    noisy = torch.tensor(data.test_noisy[:, :horizon])
    # Predicting zero scores the mean norm of the observed positions.
    zero = torch.linalg.vector_norm(noisy[..., :20], dim=-1).mean()
    assert math.isclose(by_row[chain.PREDICT_ZERO]["position_error"], zero.item(), rel_tol=1e-12)
    # The exact map from the noisy first state misses the truth only by the start's noise,
    # carried along; ISO averages the first K observations and does better.
    exact, with_iso = by_row[chain.EXACT_MAP], by_row[chain.EXACT_MAP_ISO]
    assert with_iso["position_error_clean"] < exact["position_error_clean"]
    assert exact["position_error"] < 0.5 * by_row[chain.PREDICT_ZERO]["position_error"]


def test_least_squares_initial_state_recovers_a_noiseless_start() -> None:
    torch.manual_seed(0)
    matrix = torch.linalg.matrix_exp(0.1 * torch.randn(6, 6, dtype=torch.float64))
    z0 = torch.randn(3, 6, dtype=torch.float64)
    observed = torch.stack([z0 @ torch.linalg.matrix_power(matrix, t).T for t in range(4)], 1)
    fitted = chain._least_squares_initial_state(matrix, observed)
    torch.testing.assert_close(fitted, z0)
    noisy = observed + 0.1 * torch.randn_like(observed)
    single = chain._least_squares_initial_state(matrix, noisy[:, :1])
    torch.testing.assert_close(single, noisy[:, 0])


def test_linear_fits_recover_a_noiseless_map_and_the_recurrent_one_undoes_the_noise_bias() -> None:
    torch.manual_seed(0)
    rotation = torch.linalg.matrix_exp(0.3 * _skew(6))  # eigenvalues on the unit circle
    starts = 2 * torch.randn(400, 6, dtype=torch.float64)
    clean = torch.stack([starts @ torch.linalg.matrix_power(rotation, t).T for t in range(8)], 1)
    torch.testing.assert_close(chain._one_step_least_squares(clean), rotation)
    noisy = clean + 0.5 * torch.randn_like(clean)
    one_step = chain._one_step_least_squares(noisy)
    recurrent = chain._recurrent_linear_fit(noisy, iso=True, iterations=1500)
    # Noise on the inputs shrinks the one-step fit's eigenvalues; fitting the initial states
    # with the map removes most of that bias.
    radius = {
        name: torch.linalg.eigvals(m).abs().min().item()
        for name, m in (("one_step", one_step), ("recurrent", recurrent))
    }
    assert radius["one_step"] < 0.97 and radius["recurrent"] > 0.98
    error = {
        name: (m - rotation).norm().item()
        for name, m in (("one_step", one_step), ("recurrent", recurrent))
    }
    assert error["recurrent"] < 0.5 * error["one_step"]


def _skew(n: int) -> torch.Tensor:
    generator = torch.randn(n, n, dtype=torch.float64)
    return generator - generator.T
