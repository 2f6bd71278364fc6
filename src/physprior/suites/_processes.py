"""Run tasks at most `workers` at a time, each in a fresh spawned process of its own.

`multiprocessing.Pool` loses a task when its worker process dies (killed for memory, a signal,
a failed import of the task's function) and then waits for it forever; a
`ProcessPoolExecutor` notices a death but waits for every queued task before re-raising an
error, and gives a fresh process per task only from Python 3.11. Here each task owns a process
and a pipe whose only writer is that process, so a death reads as end-of-file at once and is
raised with the task's name and the exit code.
"""

from __future__ import annotations

import multiprocessing
import os
import pickle
import threading
import time
import traceback
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, TypeVar

Task = TypeVar("Task")


class WorkerDied(RuntimeError):
    """A task's process ended without returning a result or an error."""


class RemoteTraceback(Exception):
    """The traceback of an error raised in a task's process (the raised error's cause)."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else ""


def run_in_fresh_processes(
    function: Callable[[Task], Any],
    tasks: Sequence[Task],
    *,
    workers: int,
    on_result: Callable[[Task, Any], None],
    describe: Callable[[Task], str] = repr,
) -> None:
    """Call `function(task)` for every task, `workers` at a time, each in a new process.

    `function` must be importable by name in a spawned process (a module-level function of
    an installed module); tasks and results cross process boundaries by pickle.
    `on_result(task, result)` runs here, in this process, as each task finishes (in finishing
    order, not task order). The first error stops everything: a task's exception is raised
    here (its remote traceback as the cause), a process that ends without a result raises
    `WorkerDied` naming `describe(task)` and its exit code, and the processes still running
    are terminated before the error propagates (also on Ctrl-C, or when `on_result` raises).
    """
    if workers < 1:
        raise ValueError(f"workers must be a positive integer, got {workers!r}")
    context = multiprocessing.get_context("spawn")  # no fork of a process holding torch threads
    waiting = list(tasks)
    waiting.reverse()  # pop() from the end takes them in order
    running: dict[Connection, tuple[BaseProcess, Task]] = {}
    try:
        while waiting or running:
            while waiting and len(running) < workers:
                task = waiting.pop()
                receiver, sender = context.Pipe(duplex=False)
                process: BaseProcess = context.Process(
                    target=_run_one, args=(function, task, sender, os.getpid()), daemon=True
                )
                process.start()
                sender.close()  # the child now holds the only writer: its exit is EOF here
                running[receiver] = (process, task)
            for ready in wait(list(running)):
                assert isinstance(ready, Connection)
                process, task = running.pop(ready)
                try:
                    status, payload = ready.recv()
                except EOFError:
                    process.join()
                    raise WorkerDied(
                        f"the process running {describe(task)} ended with exit code "
                        f"{process.exitcode} before returning a result"
                    ) from None
                finally:
                    ready.close()
                process.join()
                if status == "error":
                    error, remote = payload
                    raise error from RemoteTraceback(remote)
                on_result(task, payload)
    finally:
        for receiver, (process, _) in running.items():
            process.terminate()
            process.join()
            receiver.close()


def _run_one(
    function: Callable[[Any], Any], task: Any, sender: Connection, parent: int | None = None
) -> None:
    """Child side: send `("ok", result)` or `("error", (exception, traceback text))`; end
    early if `parent` (the pid of the process that started this one) goes away."""
    parent = os.getppid() if parent is None else parent
    watchdog = threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True)
    watchdog.start()
    try:
        message: tuple[str, Any] = ("ok", function(task))
    except BaseException as err:  # everything goes back to the parent, which decides
        remote = traceback.format_exc()
        try:
            pickle.dumps(err)
        except Exception:  # an exception that cannot cross processes: keep its text
            err = RuntimeError(f"{type(err).__name__}: {err}")
        message = ("error", (err, remote))
    sender.send(message)
    sender.close()


#: How often a worker checks that the process that started it is still there (seconds).
PARENT_CHECK_SECONDS = 1.0


def _exit_with_parent(parent: int) -> None:
    """End this worker once its parent is gone. A parent killed by a signal (SIGTERM,
    SIGKILL) cannot terminate its workers, and a daemon process only dies with a parent that
    exits normally: without this the orphan kept training, on CPU the next run needed (a
    killed job resumes from its checkpoint, so nothing is lost by stopping it)."""
    while True:
        time.sleep(PARENT_CHECK_SECONDS)
        if os.getppid() != parent:
            os._exit(1)
