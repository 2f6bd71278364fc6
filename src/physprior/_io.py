"""Output files and folders: atomic writes, checks before any work, one writer at a time.

- `atomic_write`, `atomic_write_text`: a temporary file in the target folder, then a rename.
- `check_output_file`, `check_output_folder`: refuse an output that cannot be written (a
  folder where a file belongs, a file where a folder belongs, a read-only place) with a
  one-line error naming the argument, before a command spends time computing its results.
- `output_lock`: one writer per output; a second process gets a one-line error, not a mix.
- `write_results_json`: write a JSON result atomically, or print it before failing, so a
  computed result is never lost.
"""

from __future__ import annotations

import errno
import fcntl
import json
import os
import sys
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

# mkstemp and mkdtemp create files and folders for their owner only; results should get the
# usual permissions (0o666 / 0o777 less the umask), as `open()` and `mkdir` would give them.
# The umask can only be read by setting it.
_UMASK = os.umask(0)
os.umask(_UMASK)
FILE_MODE = 0o666 & ~_UMASK
FOLDER_MODE = 0o777 & ~_UMASK
#: The lock file an output folder holds while a process writes into it.
FOLDER_LOCK = ".physprior.lock"


def atomic_write(path: str | os.PathLike[str], write: Callable[[BinaryIO], object]) -> Path:
    """Call `write(handle)` on a temporary file next to `path`, then rename it into place.

    Readers see either the old file or the whole new one; a failure leaves no temporary file.
    Raises `IsADirectoryError` (with the path) if `path` is a folder, before writing anything.
    """
    target = Path(path)
    if target.is_dir():
        raise IsADirectoryError(errno.EISDIR, "is a folder, not a file", str(target))
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            write(handle)
            handle.flush()
            os.fchmod(handle.fileno(), FILE_MODE)
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return target


def atomic_write_text(path: str | os.PathLike[str], text: str) -> Path:
    """Write `text` (UTF-8) to `path` atomically."""
    return atomic_write(path, lambda handle: handle.write(text.encode("utf-8")))


def write_results_json(path: str | os.PathLike[str], payload: Any) -> Path:
    """Write `payload` as indented JSON to `path` atomically.

    If the write fails (the folder became read-only, the disk is full), the JSON goes to
    stdout first and the `OSError` is raised after it, so the computed results survive.
    """
    text = json.dumps(payload, indent=2, allow_nan=True) + "\n"
    try:
        return atomic_write_text(path, text)
    except OSError:
        sys.stdout.write(text)
        sys.stdout.flush()
        raise


def _nearest_existing(path: Path) -> Path:
    """`path` itself or its closest ancestor that exists."""
    path = path.absolute()
    while not path.exists() and path != path.parent:
        path = path.parent
    return path


def _check_creatable(path: Path, argument: str, what: str) -> None:
    """The closest existing ancestor of `path` must be a writable folder."""
    base = _nearest_existing(path)
    if not base.is_dir():
        raise ValueError(f"{argument} {str(path)!r}: {base} is a file, not a folder for the {what}")
    if not os.access(base, os.W_OK | os.X_OK):
        raise ValueError(f"{argument} {str(path)!r}: the folder {base} is not writable")


def check_output_file(
    path: str | os.PathLike[str], argument: str, *, example: str = "results.json"
) -> Path:
    """`path` as a `Path` if a file can be written there; a one-line `ValueError` if not.

    `argument` names the flag or parameter in the message (e.g. `"--json"`); `example` is
    the file name the message suggests inside a folder given by mistake.
    """
    target = Path(path)
    if target.is_dir():
        raise ValueError(
            f"{argument} {str(path)!r} is a folder; give a file path, e.g. "
            f"{str(target / example)!r}"
        )
    _check_creatable(target.parent, argument, "file")
    return target


def check_output_folder(path: str | os.PathLike[str], argument: str) -> Path:
    """`path` as a `Path` if it is, or can become, a writable folder; a `ValueError` if not."""
    target = Path(path)
    if target.exists() and not target.is_dir():
        raise ValueError(f"{argument} {str(path)!r} is a file; give a folder")
    _check_creatable(target, argument, "folder")
    return target


def _lock_file(target: Path, folder: bool) -> Path:
    return target / FOLDER_LOCK if folder else target.with_name(f".{target.name}.lock")


@contextmanager
def output_lock(path: str | os.PathLike[str], argument: str, *, folder: bool) -> Iterator[Path]:
    """Hold the one-writer lock of the output `path` (a folder, or a file) while the body runs.

    The lock is an advisory `flock` on `path/.physprior.lock` (a folder, created if missing)
    or on `.NAME.lock` beside a file. The holder deletes it when done, and the kernel drops
    the lock of a process that is killed, so a stale file never blocks a later run. A second
    writer gets a one-line `ValueError` naming `argument` and the holder's process id, and
    nothing is written.
    """
    target = Path(path)
    (target if folder else target.parent).mkdir(parents=True, exist_ok=True)
    lock = _lock_file(target, folder)
    fd = _acquire(lock, argument, path)
    try:
        os.pwrite(fd, f"{os.getpid()}\n".encode("ascii"), 0)
        yield target
    finally:
        # Unlink before unlocking: a process that opened this file meanwhile sees, once it
        # gets the lock, that the name no longer points at it, and starts over.
        Path(lock).unlink(missing_ok=True)
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _acquire(lock: Path, argument: str, path: str | os.PathLike[str]) -> int:
    """An open descriptor of `lock` holding its exclusive `flock`; ValueError if taken."""
    while True:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, FILE_MODE)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = os.pread(fd, 32, 0).decode("ascii", "replace").strip() or "unknown"
            os.close(fd)
            raise ValueError(
                f"{argument} {str(path)!r} is being written by another process (pid {holder}); "
                "wait for it to finish or choose another output"
            ) from None
        try:
            same = os.stat(lock).st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            same = False
        if same:
            os.ftruncate(fd, 0)
            return fd
        os.close(fd)  # the previous holder deleted this file as we opened it: start over
