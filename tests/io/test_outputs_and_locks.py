"""`physprior._io`: output checks, the one-writer lock, results that survive a failed write."""

from __future__ import annotations

import json
import multiprocessing
import os
from pathlib import Path

import pytest

import physprior._io as io
from physprior._io import (
    FOLDER_LOCK,
    atomic_write_text,
    check_output_file,
    check_output_folder,
    output_lock,
    write_results_json,
)


def test_output_checks_name_the_argument_and_the_problem(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    (tmp_path / "folder").mkdir()
    with pytest.raises(ValueError, match=r"^--json '.*folder' is a folder; give a file path"):
        check_output_file(tmp_path / "folder", "--json")
    with pytest.raises(ValueError, match=r"^--out '.*file' is a file; give a folder$"):
        check_output_folder(tmp_path / "file", "--out")
    with pytest.raises(ValueError, match=r"file, not a folder for the file"):
        check_output_file(tmp_path / "file" / "x.json", "--json")
    # Missing parents are fine: they are created on write.
    assert check_output_file(tmp_path / "a" / "b" / "c.json", "--json").name == "c.json"
    assert check_output_folder(tmp_path / "new" / "run", "--out").name == "run"
    assert not (tmp_path / "a").exists() and not (tmp_path / "new").exists()


def test_atomic_write_refuses_a_folder_before_writing(tmp_path: Path) -> None:
    with pytest.raises(IsADirectoryError, match="is a folder, not a file"):
        atomic_write_text(tmp_path, "x")
    assert list(tmp_path.iterdir()) == []  # no temporary file left behind


def test_a_failed_results_write_prints_the_results(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    def full_disk(path: object, text: str) -> Path:
        raise OSError(28, "No space left on device", str(path))

    monkeypatch.setattr(io, "atomic_write_text", full_disk)
    with pytest.raises(OSError, match="No space left"):
        write_results_json(tmp_path / "r.json", {"return": 1.5})
    assert json.loads(capsys.readouterr().out) == {"return": 1.5}


@pytest.mark.parametrize("folder", [True, False])
def test_the_lock_admits_one_writer_and_leaves_nothing_behind(tmp_path: Path, folder: bool) -> None:
    target = tmp_path / ("run" if folder else "data.npz")
    with output_lock(target, "out", folder=folder):
        lock = target / FOLDER_LOCK if folder else tmp_path / ".data.npz.lock"
        assert lock.read_text() == f"{os.getpid()}\n"
        taken = rf"out '.*' is being written by another process \(pid {os.getpid()}\)"
        with pytest.raises(ValueError, match=taken), output_lock(target, "out", folder=folder):
            pass
    assert not lock.exists()
    with output_lock(target, "out", folder=folder):  # free again
        pass


def _hold_and_die(target: str, ready: multiprocessing.synchronize.Event) -> None:
    with output_lock(target, "out", folder=True):
        ready.set()
        os._exit(1)  # killed while holding the lock: no clean-up runs


def test_a_killed_holder_never_blocks_the_next_run(tmp_path: Path) -> None:
    context = multiprocessing.get_context("spawn")
    ready = context.Event()
    process = context.Process(target=_hold_and_die, args=(str(tmp_path / "run"), ready))
    process.start()
    process.join(60)
    assert ready.is_set() and process.exitcode == 1
    assert (tmp_path / "run" / FOLDER_LOCK).exists()  # the stale file is still there
    with output_lock(tmp_path / "run", "out", folder=True):
        pass
