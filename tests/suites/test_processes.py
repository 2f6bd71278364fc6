"""The local parallel backend's process runner: results, errors and dead workers."""

from __future__ import annotations

import math
import multiprocessing
import signal

import pytest

from physprior.suites._processes import RemoteTraceback, WorkerDied, run_in_fresh_processes


def test_every_task_runs_once_in_its_own_process() -> None:
    results: dict[float, float] = {}
    run_in_fresh_processes(math.sqrt, [4.0, 9.0, 16.0], workers=2, on_result=results.__setitem__)
    assert results == {4.0: 2.0, 9.0: 3.0, 16.0: 4.0}
    assert multiprocessing.active_children() == []


def test_a_task_error_is_raised_here_with_its_remote_traceback() -> None:
    with pytest.raises(ValueError, match="math domain error") as info:
        run_in_fresh_processes(math.sqrt, [-1.0, 4.0], workers=1, on_result=lambda *_: None)
    assert isinstance(info.value.__cause__, RemoteTraceback)
    assert "Traceback" in str(info.value.__cause__)
    assert multiprocessing.active_children() == []


def test_a_killed_worker_is_an_error_naming_the_task_not_a_hang() -> None:
    # signal.raise_signal(SIGKILL) in the child: the death of a process killed for memory.
    seen: list[int] = []
    with pytest.raises(WorkerDied, match=r"running task 9 ended with exit code -9"):
        run_in_fresh_processes(
            signal.raise_signal,
            [signal.SIGKILL],
            workers=2,
            on_result=lambda task, _: seen.append(task),
            describe=lambda task: f"task {int(task)}",
        )
    assert seen == []
    assert multiprocessing.active_children() == []


def test_an_error_in_on_result_terminates_the_running_processes() -> None:
    import time

    def fail(task: float, result: object) -> None:
        raise KeyError("saving failed")

    started = time.monotonic()
    with pytest.raises(KeyError, match="saving failed"):
        # The first task ends at once; the second would sleep for a minute.
        run_in_fresh_processes(time.sleep, [0.0, 60.0], workers=2, on_result=fail)
    assert time.monotonic() - started < 30
    assert multiprocessing.active_children() == []


def test_workers_must_be_positive() -> None:
    with pytest.raises(ValueError, match="workers must be a positive integer, got 0"):
        run_in_fresh_processes(math.sqrt, [1.0], workers=0, on_result=lambda *_: None)


def _children(pid: int) -> list[int]:
    """Pids of the live processes whose parent is `pid` (Linux /proc)."""
    from pathlib import Path

    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid and fields[0] != "Z":
            found.append(int(stat.parent.name))
    return found


def _alive(pid: int) -> bool:
    from pathlib import Path

    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not __import__("sys").platform.startswith("linux"), reason="reads /proc")
def test_workers_end_when_their_parent_is_killed() -> None:
    # `physprior bench` killed with SIGKILL (or SIGTERM) cannot stop its workers itself.
    import subprocess
    import sys
    import time

    parent = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import time; from physprior.suites._processes import run_in_fresh_processes; "
            "run_in_fresh_processes(time.sleep, [120.0], workers=1, on_result=print)",
        ]
    )
    try:
        deadline = time.monotonic() + 60
        workers: list[int] = []
        while not workers and time.monotonic() < deadline:
            time.sleep(0.2)
            workers = [p for p in _children(parent.pid) if "spawn_main" in _cmdline(p)]
        assert workers, "the worker never started"
        parent.kill()
        parent.wait()
        deadline = time.monotonic() + 15
        while any(_alive(p) for p in workers) and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers)
    finally:
        parent.kill()


def _cmdline(pid: int) -> str:
    from pathlib import Path

    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().decode(errors="replace")
    except OSError:
        return ""
