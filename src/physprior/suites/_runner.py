"""Run a suite's grid of jobs, locally or on Ray, resumably, and write results and report.

Output folder `out`:

- `jobs/<key>.json`: one finished job's `JobResult.to_dict()`, written atomically the moment it
  finishes. A re-run skips every job whose file exists (resume after a kill), and any backend
  reads the files of any other.
- `results.json`: the run's config (suite, scale, backend, seeds, physprior version) and every
  job's result (its row, env, seed, params, data hash, metrics, curves) in grid order.
- `report.md` and PNG plots (see `physprior.suites._report`).

Both backends run each job with torch limited to `int(job.cpus)` threads (at least 1), so a job
computes bitwise the same numbers whichever backend runs it. The local backend runs the jobs one
after the other in this process, or with `workers > 1` that many at a time, each in a fresh
process of its own (a multi-core machine without Ray).
"""

from __future__ import annotations

import json
import math
import os
import shutil
import time
import warnings
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, get_args

import torch

from physprior import __version__
from physprior._io import atomic_write_text, check_output_folder, output_lock
from physprior._progress import progress_bar
from physprior.training import TrainingDiverged

from ._common import job_folder
from ._framework import SCALES, Job, JobResult, Suite, check_seeds
from ._processes import run_in_fresh_processes

Backend = Literal["local", "ray"]
BACKENDS: tuple[Backend, ...] = get_args(Backend)
JOBS_DIR = "jobs"
RESULTS_FILE = "results.json"
#: Per unfinished job, its training runs (`OUT/work/<key>/train-<n>`), for resuming mid-job.
WORK_DIR = "work"
RAY_INSTALL_HINT = "the ray backend needs Ray: pip install 'physprior[ray]'"


def run_bench(
    suite: str,
    scale: str = "smoke",
    backend: str = "local",
    seeds: int = 1,
    out: str | os.PathLike[str] = "runs/bench",
    address: str | None = None,
    progress: bool = True,
    workers: int = 1,
    rows: Sequence[str] | None = None,
) -> Path:
    """Run suite `suite` at `scale` over `seeds` seeds with `backend`; return the report's path.

    `address`: the Ray cluster to join (`backend="ray"` only; None starts a local one).
    `workers`: jobs the local backend runs at once, each in its own process.
    `rows`: run only these rows of the grid (None: all). The results and the report cover
    every job of the grid that has finished in `out`, so rows run at different times add up.
    Jobs already finished in `out/jobs/` are not run again.
    """
    from physprior.suites import get_suite  # the registry imports this module

    chosen = get_suite(suite)
    if scale not in SCALES:
        raise ValueError(f"scale must be one of {list(SCALES)}, got {scale!r}")
    if backend not in BACKENDS:
        raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    check_seeds(seeds)
    if address is not None and backend != "ray":
        raise ValueError(f"address is for backend='ray', got backend={backend!r}")
    out_dir = check_output_folder(out, "out")
    grid = chosen.jobs(scale, seeds)
    selected = grid if rows is None else select_rows(chosen.name, grid, rows)
    # One run per folder: two would run the same jobs twice and race on the report.
    with output_lock(out_dir, "out", folder=True):
        run_jobs(
            chosen,
            selected,
            out_dir,
            backend=backend,
            address=address,
            progress=progress,
            workers=workers,
        )
        return _write_outputs(chosen, grid, out_dir, scale, backend, seeds)


def _write_outputs(
    chosen: Suite, grid: Sequence[Job], out_dir: Path, scale: str, backend: str, seeds: int
) -> Path:
    """`results.json` and the report of every finished job of `grid`; the report's path."""
    jobs_dir = out_dir / JOBS_DIR
    results = [r for job in grid if (r := load_job_result(jobs_dir, job.key())) is not None]
    config = {
        "suite": chosen.name,
        "title": chosen.title,
        "scale": scale,
        "backend": backend,
        "seeds": seeds,
        "physprior_version": __version__,
    }
    payload = {"config": config, "results": [r.to_dict() for r in results]}
    atomic_write_text(out_dir / RESULTS_FILE, json.dumps(payload, indent=1) + "\n")
    from ._report import write_report  # matplotlib is imported only when plotting

    return write_report(chosen, results, out_dir, config)


def select_rows(suite: str, grid: Sequence[Job], rows: Sequence[str]) -> list[Job]:
    """The jobs of `grid` whose row is one of `rows`; ValueError naming any unknown row."""
    if isinstance(rows, str):
        raise TypeError(f"rows must be a sequence of row labels, not the string {rows!r}")
    known = list(dict.fromkeys(job.row for job in grid))
    unknown = [row for row in rows if row not in known]
    if unknown or not rows:
        shown = ", ".join(repr(r) for r in unknown) if unknown else "(none given)"
        valid = "; ".join(repr(r) for r in known)
        raise ValueError(f"suite {suite!r} has no row {shown}; its rows are: {valid}")
    wanted = set(rows)
    return [job for job in grid if job.row in wanted]


def read_results(out: str | os.PathLike[str]) -> tuple[dict[str, Any], list[JobResult]]:
    """The config and the job results that `run_bench` wrote to `out/results.json`."""
    path = Path(out) / RESULTS_FILE
    try:
        payload = json.loads(path.read_text(encoding="utf-8"))
        return dict(payload["config"]), [JobResult.from_dict(r) for r in payload["results"]]
    except FileNotFoundError:
        raise FileNotFoundError(f"{path} does not exist: run the suite first") from None
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path} is not a physprior results file ({type(err).__name__}: {err})"
        ) from None


def run_jobs(
    suite: Suite,
    jobs: Sequence[Job],
    out: str | os.PathLike[str],
    *,
    backend: str = "local",
    address: str | None = None,
    progress: bool = True,
    workers: int = 1,
) -> list[JobResult]:
    """Run the jobs of `jobs` that have no file in `out/jobs/` yet; return all results in order.

    Each result is saved to `out/jobs/<key>.json` as soon as it is known. `workers > 1` (local
    backend only) runs that many jobs at once in separate processes, which look the suite up by
    name, so it must be registered in `physprior.suites`.
    """
    if isinstance(workers, bool) or not isinstance(workers, int) or workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    if workers > 1 and backend != "local":
        raise ValueError(f"workers is for backend='local' (Ray places its own), got {backend!r}")
    keys = [job.key() for job in jobs]
    if len(set(keys)) != len(keys):
        raise ValueError(f"suite {suite.name!r} has duplicate jobs in its grid")
    for job in jobs:
        if job.suite != suite.name:
            raise ValueError(f"job {job.key()} belongs to suite {job.suite!r}, not {suite.name!r}")
    jobs_dir = Path(out) / JOBS_DIR
    done = {key: r for key in keys if (r := load_job_result(jobs_dir, key)) is not None}
    pending = [job for job, key in zip(jobs, keys, strict=True) if key not in done]

    def save(result: JobResult) -> None:
        key = result.job.key()
        atomic_write_text(jobs_dir / f"{key}.json", json.dumps(result.to_dict()) + "\n")
        done[key] = result
        shutil.rmtree(_work_folder(out, result.job), ignore_errors=True)  # the result is kept

    if pending:
        if backend == "local" and workers > 1:
            _run_local_parallel(
                suite, pending, save, out, workers=workers, progress=progress, finished=len(done)
            )
        elif backend == "local":
            _run_local(suite, pending, save, out, progress=progress, finished=len(done))
        elif backend == "ray":
            storage = (Path(out) / "ray").resolve()
            _run_ray(suite, pending, save, address=address, progress=progress, storage=storage)
        else:
            raise ValueError(f"backend must be one of {list(BACKENDS)}, got {backend!r}")
    return [done[key] for key in keys]


def load_job_result(jobs_dir: Path, key: str) -> JobResult | None:
    """The saved result of job `key`, or None if it has not finished.

    Job files are written atomically, so an unreadable one was damaged or edited by hand:
    that raises ValueError naming the file rather than silently running the job again.
    """
    path = jobs_dir / f"{key}.json"
    if not path.is_file():
        return None
    try:
        result = JobResult.from_dict(json.loads(path.read_text(encoding="utf-8")))
    except (ValueError, KeyError, TypeError) as err:
        raise ValueError(
            f"{path} is not a readable job result ({type(err).__name__}: {err}); delete it to "
            "run the job again"
        ) from None
    if result.job.key() != key:
        raise ValueError(f"{path} holds the result of another job; delete it to run this one")
    return result


@contextmanager
def _torch_threads(cpus: float) -> Iterator[None]:
    """Run with torch limited to the job's CPU request, as a Ray trial is."""
    before = torch.get_num_threads()
    torch.set_num_threads(max(1, int(cpus)))
    try:
        yield
    finally:
        torch.set_num_threads(before)


#: Data hash of a job that ended before its data were scored (its training diverged).
NO_DATA_HASH = "0" * 16


def execute_job(suite: Suite, job: Job, work: str | os.PathLike[str] | None = None) -> JobResult:
    """Run one job of `suite` the same way on every backend and check what it returned.

    `work`: a folder for the job's training runs (`OUT/work/<key>`), so that a job killed in
    training resumes from its last epoch next time (`_common.job_folder`); deleted once the
    job has its result. None: temporary folders (Ray's trials, which may run elsewhere).

    A model whose training diverges (the trainer's `TrainingDiverged`: a non-finite loss) is
    a result, not a crash: the job scores +inf on every metric of the suite, which the report
    shows as "inf" and the claims rank last, and a warning names the job. Other errors stop
    the run.
    """
    start = time.perf_counter()
    try:
        with _torch_threads(job.cpus), job_folder(None if work is None else Path(work)):
            result = suite.run_job(job)
    except TrainingDiverged as err:
        warnings.warn(
            f"{suite.name}: {job.row!r} on {job.env_id} (seed {job.seed}): training diverged "
            f"(loss {err.loss} in epoch {err.epoch}); its metrics are recorded as inf",
            RuntimeWarning,
            stacklevel=2,
        )
        return JobResult(
            job=job,
            metrics=dict.fromkeys(suite.metrics, math.inf),
            data_hash=NO_DATA_HASH,
            seconds=time.perf_counter() - start,
        )
    if not isinstance(result, JobResult) or result.job.key() != job.key():
        raise TypeError(f"run_job must return the JobResult of job {job.key()} ({job.row!r})")
    return result


def _work_folder(out: str | os.PathLike[str], job: Job) -> Path:
    """Where job `job` of the run in `out` keeps its training runs until it finishes."""
    return Path(out) / WORK_DIR / job.key()


def _run_local(
    suite: Suite,
    pending: Sequence[Job],
    save: Callable[[JobResult], None],
    out: str | os.PathLike[str],
    *,
    progress: bool,
    finished: int,
) -> None:
    """Run the pending jobs one after the other in this process."""
    total = finished + len(pending)
    bar = progress_bar(total=total, initial=finished, desc=suite.name, unit="job", enabled=progress)
    with bar:
        for job in pending:
            bar.set_postfix_str(f"{job.row} | {job.env_id} | seed {job.seed}", refresh=True)
            save(execute_job(suite, job, _work_folder(out, job)))
            bar.update(1)


def _run_job_by_name(task: tuple[dict[str, Any], str]) -> dict[str, Any]:
    """Worker-process side of `_run_local_parallel`: run one job of a registered suite,
    `task = (job as a dict, its work folder)`."""
    from physprior.suites import get_suite

    job_dict, work = task
    job = Job.from_dict(job_dict)
    return execute_job(get_suite(job.suite), job, work).to_dict()


def _run_local_parallel(
    suite: Suite,
    pending: Sequence[Job],
    save: Callable[[JobResult], None],
    out: str | os.PathLike[str],
    *,
    workers: int,
    progress: bool,
    finished: int,
) -> None:
    """Run the pending jobs `workers` at a time, each in a fresh spawned process.

    A fresh process per job (as Ray's `reuse_actors=False`) leaves no state from one job to the
    next, so the numbers equal a sequential run's. Results are saved as they arrive. A failing
    job, a worker process that dies (`WorkerDied`, naming the job and the exit code), Ctrl-C
    or any other exception here stops the run at once: the running processes are
    terminated (the jobs they were running continue from their last training epoch on
    resume) and the error is raised; every job that finished before is already saved.
    """
    if _registered(suite.name) is not suite:
        raise ValueError(
            f"suite {suite.name!r} is not registered in physprior.suites, so worker "
            "processes cannot find it; run it with workers=1"
        )
    total = finished + len(pending)
    bar = progress_bar(total=total, initial=finished, desc=suite.name, unit="job", enabled=progress)
    ordered = [
        (job.to_dict(), str(_work_folder(out, job))) for job in spread_by_env_and_seed(pending)
    ]

    def on_result(task: tuple[dict[str, Any], str], payload: dict[str, Any]) -> None:
        result = JobResult.from_dict(payload)
        save(result)
        bar.set_postfix_str(f"{result.job.row} | {result.job.env_id}", refresh=False)
        bar.update(1)

    def describe(task: tuple[dict[str, Any], str]) -> str:
        job = Job.from_dict(task[0])
        return f"job {job.row!r} on {job.env_id} (seed {job.seed}, folder {task[1]})"

    with bar:
        run_in_fresh_processes(
            _run_job_by_name, ordered, workers=workers, on_result=on_result, describe=describe
        )


def spread_by_env_and_seed(jobs: Sequence[Job]) -> list[Job]:
    """`jobs` reordered so that consecutive jobs have different (env, seed) where possible.

    Suites share their expensive data per (env, seed) (a SAC collection, a generated data
    set), and the second job of a pair waits for the first's data, so a parallel run starts
    one job of every (env, seed) before the second of any. Stable: grid order within a rank.
    """
    rank: dict[tuple[str, int], int] = {}
    ranked = []
    for index, job in enumerate(jobs):
        group = (job.env_id, job.seed)
        ranked.append((rank.get(group, 0), index, job))
        rank[group] = rank.get(group, 0) + 1
    return [job for _, _, job in sorted(ranked, key=lambda item: item[:2])]


def _registered(name: str) -> Suite | None:
    """The suite registered as `name` in `physprior.suites`, or None."""
    from physprior.suites import SUITES

    return SUITES.get(name)


# ------------------------------------------------------------------------------------ Ray
_RESULT_KEY = "job_result_json"
"""The one metric a trial reports: its JobResult as JSON text (Tune flattens nested dicts)."""


def _ray_trial(config: dict[str, Any], jobs: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The function trainable: run the job `config["key"]` of suite `jobs[key]["suite"]`."""
    from physprior.suites import get_suite

    job = Job.from_dict(jobs[config["key"]])
    result = execute_job(get_suite(job.suite), job)
    return {_RESULT_KEY: json.dumps(result.to_dict()), "seconds": result.seconds}


def _run_ray(
    suite: Suite,
    pending: Sequence[Job],
    save: Callable[[JobResult], None],
    *,
    address: str | None,
    progress: bool,
    storage: Path,
) -> None:
    """Run the pending jobs as Ray Tune trials, one per job with the job's CPU/GPU request.

    Trials resolve the suite by name in the worker, so the suite must be registered in
    `physprior.suites` (which every worker imports). The driver saves each result as its
    trial reports it, so a kill loses only the trials still running.
    """
    try:
        import ray
        from ray import tune
    except ImportError:
        raise ImportError(RAY_INSTALL_HINT) from None

    jobs = {job.key(): job.to_dict() for job in pending}

    class _SaveResults(tune.Callback):
        """Write each job's file in the driver the moment its trial reports."""

        def on_trial_result(
            self, iteration: int, trials: Any, trial: Any, result: Any, **info: Any
        ) -> None:
            text = result.get(_RESULT_KEY)
            if text is not None:
                save(JobResult.from_dict(json.loads(text)))

    started_here = not ray.is_initialized()
    if started_here:
        init: dict[str, Any] = {"address": address, "include_dashboard": False}
        if address is None:
            # A local cluster with room for the largest job (Ray refuses unplaceable trials).
            init["num_cpus"] = max(os.cpu_count() or 1, *(int(-(-j.cpus // 1)) for j in pending))
            if any(j.gpus > 0 for j in pending) and torch.cuda.is_available():
                init["num_gpus"] = torch.cuda.device_count()
        ray.init(**init, log_to_driver=progress, configure_logging=False)
    try:
        trainables = {}
        for resources in sorted({(j.cpus, j.gpus) for j in pending}):
            trainables[resources] = tune.with_resources(
                tune.with_parameters(_ray_trial, jobs=jobs),
                {"cpu": resources[0], "gpu": resources[1]},
            )
        # One Tuner per resource request (usually one): with_resources fixes it per trainable.
        for (cpus, gpus), trainable in trainables.items():
            keys = [k for k, j in jobs.items() if (j["cpus"], j["gpus"]) == (cpus, gpus)]
            tuner = tune.Tuner(
                trainable,
                param_space={"key": tune.grid_search(keys)},
                tune_config=tune.TuneConfig(reuse_actors=False),  # a fresh worker per job
                run_config=tune.RunConfig(
                    name=f"{suite.name}-{keys[0]}",
                    storage_path=str(storage),
                    callbacks=[_SaveResults()],
                    verbose=1 if progress else 0,
                    failure_config=tune.FailureConfig(max_failures=0),
                ),
            )
            grid = tuner.fit()
            failed = []
            for index in range(len(grid)):
                trial_result = grid[index]
                text = (trial_result.metrics or {}).get(_RESULT_KEY)
                if trial_result.error is not None or text is None:
                    failed.append(str((trial_result.config or {}).get("key")))
                    continue
                save(JobResult.from_dict(json.loads(text)))
            if failed:
                raise RuntimeError(
                    f"{len(failed)} Ray trial(s) of suite {suite.name!r} failed: jobs "
                    f"{', '.join(sorted(failed))}; the finished jobs are saved"
                )
    finally:
        if started_here:
            ray.shutdown()
