"""The benchmark framework: job keys, the registry, resume, results.json, report, backends."""

from __future__ import annotations

import json
import math
import sys
from collections.abc import Mapping
from pathlib import Path

import pytest

import physprior
from physprior import suites
from physprior.suites import (
    SUITES,
    Claim,
    Job,
    JobResult,
    PaperRow,
    Suite,
    _runner,
    get_suite,
    hnn_toy,
)
from physprior.training import TrainingDiverged

FAKE = "fake-suite"


def _fake_suite(calls: list[Job]) -> Suite:
    """Two rows on one env; run_job records its calls and returns seed-dependent numbers."""

    def jobs(scale: str, seeds: int) -> list[Job]:
        return [
            Job(FAKE, row, "physprior/MassSpring-v0", seed, {"scale": scale, "width": 3})
            for seed in range(seeds)
            for row in ("good", "bad")
        ]

    def run_job(job: Job) -> JobResult:
        calls.append(job)
        error = (1.0 if job.row == "good" else 5.0) + 0.5 * job.seed
        return JobResult(
            job=job,
            metrics={"error": error, "other": 2.0},
            data_hash="0123456789abcdef",
            seconds=0.01,
            curves={"error": [0.0, error / 2, error], "energy": [1.0, 1.1, 1.2]},
            trajectory={"true": [[0.0, 1.0], [1.0, 0.0]], "predicted": [[0.0, 1.0], [0.9, 0.1]]},
        )

    def good_beats_bad(means: Mapping[tuple[str, str], Mapping[str, float]]) -> bool | None:
        env = "physprior/MassSpring-v0"
        return means[("good", env)]["error"] < means[("bad", env)]["error"]

    def missing(means: Mapping[tuple[str, str], Mapping[str, float]]) -> bool | None:
        return means[("absent", "physprior/MassSpring-v0")]["error"] < 1

    return Suite(
        name=FAKE,
        title="A fake suite",
        metrics=("error", "other"),
        jobs=jobs,
        run_job=run_job,
        paper=(PaperRow("good", "physprior/MassSpring-v0", "error", 0.9, 0.1, "Fake Table 9"),),
        claims=(
            Claim("good beats bad", good_beats_bad),
            Claim("bad beats good", lambda m: not good_beats_bad(m)),
            Claim("an absent row is small", missing),
        ),
    )


@pytest.fixture
def fake(monkeypatch: pytest.MonkeyPatch) -> list[Job]:
    calls: list[Job] = []
    monkeypatch.setitem(SUITES, FAKE, _fake_suite(calls))
    return calls


def test_job_key_is_stable_and_covers_every_field() -> None:
    job = Job("s", "row", "env", 0, {"b": [1, 2], "a": 1.5})
    # Pinned: a key change would orphan every finished job of earlier runs.
    assert job.key() == "744ebd0b0474c335"
    assert Job("s", "row", "env", 0, {"a": 1.5, "b": (1, 2)}).key() == job.key()
    others = [
        Job("t", "row", "env", 0, {"b": [1, 2], "a": 1.5}),
        Job("s", "row2", "env", 0, {"b": [1, 2], "a": 1.5}),
        Job("s", "row", "env2", 0, {"b": [1, 2], "a": 1.5}),
        Job("s", "row", "env", 1, {"b": [1, 2], "a": 1.5}),
        Job("s", "row", "env", 0, {"b": [1, 2], "a": 2.5}),
        Job("s", "row", "env", 0, {"b": [1, 2], "a": 1.5}, cpus=2),
        Job("s", "row", "env", 0, {"b": [1, 2], "a": 1.5}, gpus=1),
    ]
    assert len({job.key(), *(o.key() for o in others)}) == 1 + len(others)
    assert Job.from_dict(job.to_dict()).key() == job.key()


def test_job_result_round_trips_through_json() -> None:
    job = Job("s", "row", "env", 3, {"a": 1})
    result = JobResult(job, {"m": math.inf}, "ab" * 8, 1.5, {"error": [0.0, 1.0]}, None)
    again = JobResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert again == result
    assert again.to_dict()["key"] == job.key()


def test_registry_finds_the_suites_in_a_stable_order() -> None:
    names = list(SUITES)
    assert {"hnn-toy", "srnn-threebody"} <= set(names)
    assert get_suite("hnn-toy") is hnn_toy.SUITE
    with pytest.raises(ValueError, match=r"unknown benchmark suite 'nope'.*hnn-toy"):
        get_suite("nope")


def test_run_bench_rejects_bad_arguments(fake: list[Job], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="scale"):
        suites.run_bench(FAKE, scale="huge", out=tmp_path)
    with pytest.raises(ValueError, match="backend"):
        suites.run_bench(FAKE, backend="dask", out=tmp_path)
    with pytest.raises(ValueError, match="seeds"):
        suites.run_bench(FAKE, seeds=0, out=tmp_path)
    assert fake == []


def test_results_report_and_resume(fake: list[Job], tmp_path: Path) -> None:
    report = suites.run_bench(FAKE, seeds=2, out=tmp_path, progress=False)
    assert len(fake) == 4
    assert report == tmp_path / "report.md"

    payload = json.loads((tmp_path / "results.json").read_text())
    assert payload["config"] == {
        "suite": FAKE,
        "title": "A fake suite",
        "scale": "smoke",
        "backend": "local",
        "seeds": 2,
        "physprior_version": physprior.__version__,
    }
    assert [(r["job"]["row"], r["job"]["seed"]) for r in payload["results"]] == [
        ("good", 0),
        ("bad", 0),
        ("good", 1),
        ("bad", 1),
    ]
    first = payload["results"][0]
    assert first["job"]["params"] == {"scale": "smoke", "width": 3}
    assert first["data_hash"] == "0123456789abcdef"
    assert first["metrics"] == {"error": 1.0, "other": 2.0}

    text = report.read_text()
    assert "| good | 1.25 (0.25) | 2 (0) | 0.9 (0.1) |" in text
    assert "- good beats bad: **holds**" in text
    assert "good on physprior/MassSpring-v0 error = 1.25" in text
    assert "- bad beats good: **does not hold**" in text
    assert "- an absent row is small: **cannot tell**" in text
    for plot in ("error", "energy", "trajectory"):
        assert (tmp_path / f"{plot}-massspring-v0.png").stat().st_size > 0

    # Resume: nothing runs again; a lost job file runs that job alone.
    suites.run_bench(FAKE, seeds=2, out=tmp_path, progress=False)
    assert len(fake) == 4
    lost = payload["results"][3]["key"]
    (tmp_path / "jobs" / f"{lost}.json").unlink()
    suites.run_bench(FAKE, seeds=2, out=tmp_path, progress=False)
    assert len(fake) == 5 and fake[-1].key() == lost
    # More seeds run only the new jobs.
    suites.run_bench(FAKE, seeds=3, out=tmp_path, progress=False)
    assert len(fake) == 7 and {j.seed for j in fake[5:]} == {2}

    # A damaged job file is named, not silently run again.
    damaged = tmp_path / "jobs" / f"{lost}.json"
    damaged.write_text("{not json")
    with pytest.raises(ValueError, match=r"is not a readable job result .*delete it") as caught:
        suites.run_bench(FAKE, seeds=3, out=tmp_path, progress=False)
    assert "\n" not in str(caught.value) and len(fake) == 7


def test_ray_backend_without_ray_names_the_extra(
    fake: list[Job], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "ray", None)  # import ray now raises ImportError
    with pytest.raises(ImportError, match=r"pip install 'physprior\[ray\]'"):
        suites.run_bench(FAKE, backend="ray", out=tmp_path, progress=False)
    assert fake == []


def _tiny_hnn_toy_grid(seeds: int) -> list[Job]:
    """hnn-toy's two rows on MassSpring at smoke scale, cut to a few training steps."""
    return [
        Job(j.suite, j.row, j.env_id, j.seed, {**j.params, "steps": 5})
        for j in hnn_toy.jobs("smoke", seeds)
        if j.env_id == hnn_toy.MASS_SPRING
    ]


# Ray's own modules warn on import and on shutdown (deprecations, unclosed sockets); those are
# Ray's, not ours, so this one test does not turn them into errors.
@pytest.mark.filterwarnings("ignore")
def test_local_and_ray_backends_give_the_same_numbers(tmp_path: Path) -> None:
    ray = pytest.importorskip(
        "ray", reason="the ray extra is not installed (pip install 'physprior[ray]')"
    )
    pytest.importorskip("ray.tune", reason="ray is installed without Tune: ray[tune] needed")
    # A tiny grid of a real suite: Ray workers look the suite up by name.
    tiny = _tiny_hnn_toy_grid(seeds=1)
    local = _runner.run_jobs(hnn_toy.SUITE, tiny, tmp_path / "local", progress=False)
    # A one-CPU cluster started here is quicker than the runner's default (all cores); the
    # runner joins it and leaves it running.
    ray.init(num_cpus=1, include_dashboard=False, log_to_driver=False)
    try:
        remote = _runner.run_jobs(
            hnn_toy.SUITE, tiny, tmp_path / "ray", backend="ray", progress=False
        )
    finally:
        ray.shutdown()
    assert [r.to_dict() | {"seconds": 0} for r in remote] == [
        r.to_dict() | {"seconds": 0} for r in local
    ]
    assert sorted(p.name for p in (tmp_path / "ray" / "jobs").iterdir()) == sorted(
        f"{j.key()}.json" for j in tiny
    )


def test_parallel_local_workers_give_the_sequential_numbers(tmp_path: Path) -> None:
    tiny = _tiny_hnn_toy_grid(seeds=2)
    sequential = _runner.run_jobs(hnn_toy.SUITE, tiny, tmp_path / "one", progress=False)
    parallel = _runner.run_jobs(hnn_toy.SUITE, tiny, tmp_path / "two", progress=False, workers=2)
    assert [r.to_dict() | {"seconds": 0} for r in parallel] == [
        r.to_dict() | {"seconds": 0} for r in sequential
    ]
    assert len({r.job.seed for r in parallel}) == 2  # the grid really has several jobs


def test_parallel_workers_are_checked(fake: list[Job], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="workers must be a positive integer"):
        suites.run_bench(FAKE, out=tmp_path, progress=False, workers=0)
    with pytest.raises(ValueError, match="workers is for backend='local'"):
        suites.run_bench(FAKE, backend="ray", out=tmp_path, progress=False, workers=2)
    # The fake suite lives only in this process's registry, not in a spawned worker's.
    fake_suite = SUITES[FAKE]
    jobs = fake_suite.jobs("smoke", 1)
    SUITES.pop(FAKE)
    with pytest.raises(ValueError, match=r"not registered in physprior\.suites"):
        _runner.run_jobs(fake_suite, jobs, tmp_path, progress=False, workers=2)
    assert fake == []  # nothing ran


def test_parallel_order_starts_every_env_and_seed_first() -> None:
    grid = [
        Job(FAKE, row, env, seed, {})
        for seed in range(2)
        for env in ("a", "b")
        for row in ("x", "y", "z")
    ]
    order = _runner.spread_by_env_and_seed(grid)
    assert sorted(order, key=grid.index) == grid  # a permutation
    assert [(j.env_id, j.seed, j.row) for j in order[:4]] == [
        ("a", 0, "x"),
        ("b", 0, "x"),
        ("a", 1, "x"),
        ("b", 1, "x"),
    ]
    assert [j.row for j in order] == ["x"] * 4 + ["y"] * 4 + ["z"] * 4


def test_report_cells_count_diverged_seeds_instead_of_hiding_the_rest() -> None:
    from physprior.suites._report import cell_text

    assert cell_text([0.5]) == "0.5"
    assert cell_text([1.0, 3.0]) == "2 (1)"
    assert cell_text([math.inf, 1.0, 3.0]) == "inf in 1/3 seeds; rest 2 (1)"
    assert cell_text([math.inf, 1.0]) == "inf in 1/2 seeds; rest 1"
    assert cell_text([math.nan, math.inf]) == "nan in 2/2 seeds"
    assert cell_text([math.inf]) == "inf"


def test_a_failing_parallel_job_stops_the_run_and_leaves_no_worker(tmp_path: Path) -> None:
    import multiprocessing

    good = _tiny_hnn_toy_grid(seeds=1)[0]
    broken = Job(good.suite, good.row, "physprior/NoSuchEnv-v0", good.seed, good.params)
    with pytest.raises(Exception, match="NoSuchEnv"):
        _runner.run_jobs(hnn_toy.SUITE, [broken, good], tmp_path, progress=False, workers=2)
    assert multiprocessing.active_children() == []


def test_plotted_curves_leave_out_diverged_seeds_and_say_so() -> None:
    from physprior.suites._report import curves_by_row

    def result(row: str, seed: int, curve: list[float]) -> JobResult:
        job = Job(FAKE, row, "physprior/MassSpring-v0", seed, {})
        return JobResult(job=job, metrics={}, data_hash="0", seconds=0.0, curves={"error": curve})

    curves = curves_by_row(
        [
            result("stable", 0, [0.0, 1.0, 2.0]),
            result("stable", 1, [0.0, 3.0, 4.0]),
            result("shaky", 0, [0.0, 1.0, 1.0]),
            result("shaky", 1, [0.0, 5.0, math.inf]),
            result("gone", 0, [0.0, math.nan, math.nan]),
        ],
        "error",
    )
    assert curves["stable"] == [0.0, 2.0, 3.0]
    assert curves["shaky (1/2 seeds diverged, not shown)"] == [0.0, 1.0, 1.0]
    assert list(curves)[2] == "gone (diverged)"


def test_cli_prints_the_verdicts(
    fake: list[Job], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from physprior.cli import main

    assert main(["bench", FAKE, "--seeds", "2", "--out", str(tmp_path), "--no-progress"]) == 0
    printed = capsys.readouterr().out.splitlines()
    assert printed[1:] == [
        "the paper's findings (numbers in the report):",
        "  holds          good beats bad",
        "  does not hold  bad beats good",
        "  cannot tell    an absent row is small",
    ]
    config, results = suites.read_results(tmp_path)
    assert config["suite"] == FAKE and len(results) == 4


def test_read_results_names_a_missing_or_foreign_file(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="run the suite first"):
        suites.read_results(tmp_path)
    (tmp_path / "results.json").write_text('{"something": "else"}')
    with pytest.raises(ValueError, match="is not a physprior results file"):
        suites.read_results(tmp_path)


def test_rows_run_a_part_of_the_grid_and_the_report_adds_them_up(
    fake: list[Job], tmp_path: Path
) -> None:
    suites.run_bench(FAKE, out=tmp_path, progress=False, rows=["bad"])
    assert [job.row for job in fake] == ["bad"]
    results = suites.read_results(tmp_path)[1]
    assert [r.job.row for r in results] == ["bad"]
    # A later run of the other row reports both, in grid order, and runs only the new one.
    suites.run_bench(FAKE, out=tmp_path, progress=False, rows=["good"])
    assert [job.row for job in fake] == ["bad", "good"]
    assert [r.job.row for r in suites.read_results(tmp_path)[1]] == ["good", "bad"]
    with pytest.raises(ValueError, match=r"has no row 'ugly'; its rows are: 'good'; 'bad'"):
        suites.run_bench(FAKE, out=tmp_path, progress=False, rows=["ugly"])
    with pytest.raises(TypeError, match="not the string"):
        suites.run_bench(FAKE, out=tmp_path, progress=False, rows="good")


def test_report_heads_std_columns_and_notes_the_scale(fake: list[Job], tmp_path: Path) -> None:
    from physprior.suites._report import column_title

    assert column_title("error_std", ["error", "error_std"]) == (
        "error: std over test trajectories"
    )
    assert column_title("error_std", ["error_std"]) == "error_std"  # no base metric beside it
    text = suites.run_bench(FAKE, out=tmp_path, progress=False).read_text()
    assert "**At scale `smoke`:** a check that every code path runs" in text


def test_a_published_row_we_did_not_run_appears_once(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    suite = _fake_suite([])
    env = "physprior/MassSpring-v0"
    published = tuple(
        PaperRow("published only", env, metric, 1.0, None, "Fake Table 9")
        for metric in ("error", "other")
    )
    monkeypatch.setitem(SUITES, FAKE, Suite(**{**vars(suite), "paper": suite.paper + published}))
    text = suites.run_bench(FAKE, out=tmp_path, progress=False).read_text()
    assert [line for line in text.splitlines() if line.startswith("| published only |")] == [
        "| published only |  |  | 1 | 1 |"
    ]


def test_a_diverged_training_is_a_result_not_a_crash(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    calls: list[Job] = []
    suite = _fake_suite(calls)
    honest = suite.run_job

    def run_job(job: Job) -> JobResult:
        if job.row == "good" and job.seed == 1:
            raise TrainingDiverged(math.nan, 3, 2, tmp_path / "gone")
        return honest(job)

    monkeypatch.setitem(SUITES, FAKE, Suite(**{**vars(suite), "run_job": run_job}))
    named = (
        r"'good' on physprior/MassSpring-v0 \(seed 1\): training diverged \(loss nan in epoch 3\)"
    )
    with pytest.warns(RuntimeWarning, match=named):
        report = suites.run_bench(FAKE, seeds=2, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    diverged = next(r for r in results if r["job"]["row"] == "good" and r["job"]["seed"] == 1)
    assert diverged["metrics"] == {"error": math.inf, "other": math.inf}
    text = report.read_text()
    assert "| good | inf in 1/2 seeds; rest 1 |" in text
    assert "- good beats bad: **does not hold**" in text  # a diverged seed counts against it
    # The diverged job is finished: a resume does not run it again.
    suites.run_bench(FAKE, seeds=2, out=tmp_path, progress=False)
    assert len(calls) == 3


def test_a_job_killed_in_training_resumes_from_its_last_epoch(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The runner keeps a job's training under OUT/work/<key>: killed in epoch 3, the next run
    trains from epoch 3 on (not from scratch) and the job's result equals an uninterrupted
    run's; the folder is gone once the result is saved."""
    from physprior.suites import get_suite
    from physprior.training import _trainer

    suite = get_suite("hnn-toy")
    job = suite.jobs("smoke", 1)[1]  # a trained row (the first is the oracle)
    whole = suites.run_bench("hnn-toy", out=tmp_path / "whole", rows=[job.row],
                                 progress=False)  # fmt: skip
    epochs: list[int] = []
    real_epoch = _trainer.Trainer._epoch

    def dies_in_epoch_three(self: _trainer.Trainer, epoch: int, *args: object) -> object:
        epochs.append(epoch)
        if epoch == 2 and len(epochs) < 10:
            raise KeyboardInterrupt  # killed mid-job
        return real_epoch(self, epoch, *args)

    monkeypatch.setattr(_trainer.Trainer, "_epoch", dies_in_epoch_three)
    out = tmp_path / "killed"
    with pytest.raises(KeyboardInterrupt):
        suites.run_bench("hnn-toy", out=out, rows=[job.row], progress=False)
    assert (out / "work" / job.key() / "train-1" / "checkpoint").is_dir()
    epochs.clear()
    epochs.extend([0] * 10)  # the second run is not killed
    suites.run_bench("hnn-toy", out=out, rows=[job.row], progress=False)
    assert epochs[10] == 2  # it went on from the checkpoint of epoch 2
    assert not (out / "work" / job.key()).exists()
    read = [json.loads((root / "jobs" / f"{job.key()}.json").read_text())["metrics"]
            for root in (tmp_path / "whole", out)]  # fmt: skip
    assert read[0] == read[1]
    assert whole.is_file()
