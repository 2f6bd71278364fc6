"""Replace a whole folder atomically: fill a temporary sibling, then rename it into place.

A folder cannot be renamed over a non-empty one, so the swap takes two renames: the current
folder moves aside to `.NAME.old`, then the new one takes its name. Every folder that ever
carries NAME or `.NAME.old` is complete (it was filled and flushed before its first rename),
so a kill at any moment leaves a complete folder: NAME, or `.NAME.old` between the two renames.
`current` finds it without changing anything; `recover` puts it back under NAME and removes
leftovers. One writer per folder at a time.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from physprior._io import FILE_MODE, FOLDER_MODE


def _old(target: Path) -> Path:
    return target.with_name(f".{target.name}.old")


def _tmp_prefix(target: Path) -> str:
    return f".{target.name}.tmp-"


def current(target: str | os.PathLike[str]) -> Path | None:
    """The complete folder holding `target`'s latest contents, or `None` if there is none."""
    target = Path(target)
    if target.is_dir():
        return target
    old = _old(target)
    return old if old.is_dir() else None


def recover(target: str | os.PathLike[str]) -> None:
    """Finish or undo a swap a kill interrupted, and delete unfinished temporary folders."""
    target = Path(target)
    old = _old(target)
    if old.is_dir():
        if target.is_dir():
            shutil.rmtree(old)  # the swap completed; only the clean-up was cut short
        else:
            os.replace(old, target)  # killed between the renames: the previous folder returns
    if target.parent.is_dir():
        for leftover in target.parent.glob(_tmp_prefix(target) + "*"):
            shutil.rmtree(leftover, ignore_errors=True)


def write_folder(target: str | os.PathLike[str], fill: Callable[[Path], None]) -> Path:
    """Make `target` a folder holding exactly what `fill(tmp)` writes into an empty folder.

    Readers see the old folder or the whole new one, never a mix; if `fill` raises, `target`
    is untouched and the temporary folder is removed.
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    recover(target)
    tmp = Path(tempfile.mkdtemp(prefix=_tmp_prefix(target), dir=target.parent))
    try:
        # mkdtemp makes the folder private (0o700); a checkpoint should be as readable as any
        # folder `mkdir` would make, so that others can evaluate a shared run.
        os.chmod(tmp, FOLDER_MODE)
        fill(tmp)
        for path in tmp.rglob("*"):
            if path.is_file():
                os.chmod(path, FILE_MODE)  # safetensors writes its files 0o600
                _fsync(path)
        _fsync(tmp)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = _old(target)
    if target.exists():
        os.replace(target, old)
    os.replace(tmp, target)
    _fsync(target.parent)
    shutil.rmtree(old, ignore_errors=True)
    return target


def _fsync(path: Path) -> None:
    """Flush a file or folder to disk, so a rename never publishes unwritten data."""
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if path.is_dir() else 0)
    try:
        fd = os.open(path, flags)
    except OSError:  # folders cannot be opened on some platforms (Windows); nothing to flush
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)
