"""The command line against file-system faults: every one a one-line error, no data lost.

Folders where files belong and files where folders belong, read-only places, an existing
run without `--resume`, a damaged SAC state, a second writer, and a write that fails after
the results were computed (they are printed before the error).
"""

from __future__ import annotations

import json
import os
import stat
from pathlib import Path

import pytest

import physprior._io
from physprior._io import FILE_MODE, FOLDER_MODE, output_lock
from physprior.cli import main


def _run(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    code = main(argv)
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def _one_line_error(err: str, *needles: str) -> None:
    assert err.count("\n") == 1 and "Traceback" not in err, err
    for needle in needles:
        assert needle in err, err


@pytest.fixture(scope="module")
def data(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small Pendulum trajectory set (12 episodes of 12 states)."""
    path = tmp_path_factory.mktemp("data") / "d.npz"
    argv = ["generate", "physprior/Pendulum-v0", "--trajectories", "12", "--length", "12"]
    assert main([*argv, "--out", str(path)]) == 0
    return path


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory, data: Path) -> Path:
    """A finished one-epoch `mlp` training run on `data`."""
    out = tmp_path_factory.mktemp("run") / "mlp"
    argv = ["train", str(data), "--model", "mlp", "--epochs", "1", "--no-progress"]
    assert main([*argv, "--out", str(out)]) == 0
    return out


def _commands(data: Path, run: Path, target: Path) -> dict[str, list[str]]:
    """One command per output flag, writing to `target`."""
    gen = ["generate", "physprior/Pendulum-v0", "--trajectories", "2", "--length", "3"]
    return {
        "generate --out": [*gen, "--out", str(target)],
        "collect --out": ["collect", "physprior/Pendulum-v0", "--agent", "random", "--steps",
                          "5", "--out", str(target)],
        "envs --json": ["envs", "--json", str(target)],
        "eval --json": ["eval", str(run), str(data), "--horizon", "2", "--json", str(target)],
        "plan --json": ["plan", "physprior/Pendulum-v0", "--model", str(run), "--episodes", "1",
                        "--max-episode-steps", "2", "--set", "horizon=2", "population=4",
                        "iterations=1", "--json", str(target)],
        "train --out": ["train", str(data), "--model", "mlp", "--epochs", "1", "--no-progress",
                        "--out", str(target)],
        "bench --out": ["bench", "hnn-toy", "--no-progress", "--out", str(target)],
        "demo --out": ["demo", "--no-progress", "--out", str(target)],
    }  # fmt: skip


FILE_OUTPUTS = ["generate --out", "collect --out", "envs --json", "eval --json", "plan --json"]
FOLDER_OUTPUTS = ["train --out", "bench --out", "demo --out"]


@pytest.mark.parametrize("flag", FILE_OUTPUTS)
def test_a_folder_where_a_file_belongs_is_refused_before_any_work(
    flag: str, data: Path, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "taken"
    folder.mkdir()
    (folder / "keep.txt").write_text("mine")
    code, _, err = _run(_commands(data, run, folder)[flag], capsys)
    assert code == 2
    _one_line_error(err, flag.split()[1], "is a folder; give a file path")
    assert sorted(p.name for p in folder.iterdir()) == ["keep.txt"]  # nothing lost or added


@pytest.mark.parametrize("flag", FOLDER_OUTPUTS)
def test_a_file_where_a_folder_belongs_is_refused(
    flag: str, data: Path, run: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    file = tmp_path / "taken"
    file.write_text("mine")
    code, _, err = _run(_commands(data, run, file)[flag], capsys)
    assert code == 2
    _one_line_error(err, "--out", "is a file; give a folder")
    assert file.read_text() == "mine"


@pytest.mark.parametrize("flag", FILE_OUTPUTS + FOLDER_OUTPUTS)
def test_a_read_only_place_is_refused_before_any_work(
    flag: str,
    data: Path,
    run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    locked = tmp_path / "read-only"
    locked.mkdir()
    # chmod does not stop root (CI runs as root), so the permission check itself is denied.
    real_access = os.access

    def access(path: object, mode: int, **kwargs: object) -> bool:
        if Path(str(path)) == locked and mode & os.W_OK:
            return False
        return real_access(path, mode, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(physprior._io.os, "access", access)
    code, _, err = _run(_commands(data, run, locked / "out")[flag], capsys)
    assert code == 2
    _one_line_error(err, flag.split()[1], "is not writable")
    assert list(locked.iterdir()) == []


def test_a_failed_write_prints_the_computed_results_first(
    data: Path,
    run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    def denied(path: object, text: str) -> Path:
        raise PermissionError(13, "Permission denied", str(path))

    monkeypatch.setattr(physprior._io, "atomic_write_text", denied)
    target = tmp_path / "eval.json"
    code, out, err = _run(_commands(data, run, target)["eval --json"], capsys)
    assert code == 2
    _one_line_error(err, str(target), "Permission denied")
    printed = json.loads(out[out.index("{") :])  # the table, then the JSON
    assert printed["horizon"] == 2 and "rollout_error" in printed["metrics"]


def test_an_existing_run_without_resume_is_one_line(
    data: Path, run: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    before = (run / "log.jsonl").read_bytes()
    code, _, err = _run(_commands(data, run, run)["train --out"], capsys)
    assert code == 2
    _one_line_error(err, "already holds a training run", "--resume")
    assert (run / "log.jsonl").read_bytes() == before


@pytest.mark.parametrize(
    ("flag", "folder"),
    [("train --out", True), ("collect --out", False), ("bench --out", True)],
)
def test_a_second_writer_is_refused_and_writes_nothing(
    flag: str,
    folder: bool,
    data: Path,
    run: Path,
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    target = tmp_path / ("out" if folder else "out.npz")
    with output_lock(target, "out", folder=folder):  # the first writer, still running
        before = sorted(p.name for p in tmp_path.rglob("*"))
        code, _, err = _run(_commands(data, run, target)[flag], capsys)
        assert sorted(p.name for p in tmp_path.rglob("*")) == before
    assert code == 2
    _one_line_error(err, "is being written by another process", f"pid {os.getpid()}")
    # Once the first writer is done, the output is free again.
    if flag == "collect --out":
        assert main(_commands(data, run, target)[flag]) == 0


def test_damaged_sac_state_on_resume_is_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "sac.npz"
    argv = ["collect", "physprior/Pendulum-v0", "--agent", "sac", "--out", str(out)]
    assert main([*argv, "--steps", "30"]) == 0
    state = next(tmp_path.glob("*.safetensors"))
    state.write_bytes(b"\x10\x00\x00\x00\x00\x00\x00\x00{not json at all")
    before = out.read_bytes()
    code, _, err = _run([*argv, "--steps", "60", "--resume"], capsys)
    assert code == 2
    _one_line_error(err, str(state), "damaged")
    assert out.read_bytes() == before


def test_run_folders_get_the_usual_permissions(run: Path) -> None:
    """Another user can read a shared run: folders and files as `mkdir` and `open` make them."""
    for path in [run, *run.rglob("*")]:
        if path.name.endswith(".lock"):
            continue
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode == (FOLDER_MODE if path.is_dir() else FILE_MODE), path
