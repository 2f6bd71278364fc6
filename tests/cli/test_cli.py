"""The `physprior` command line."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from physprior.cli import main
from physprior.envs import ENV_IDS


def test_envs_lists_every_id(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["envs", "--json", str(tmp_path / "envs.json")]) == 0
    out = capsys.readouterr().out
    for env_id in ENV_IDS:
        assert env_id in out
    rows = json.loads((tmp_path / "envs.json").read_text())
    assert {r["env_id"] for r in rows} == set(ENV_IDS)


def test_demo_writes_report(tmp_path: Path) -> None:
    ids = ["physprior/MassSpring-v0", "physprior/SwimmerFull-v0"]
    assert main(["demo", "--out", str(tmp_path), "--steps", "20", "--envs", *ids]) == 0
    results = json.loads((tmp_path / "demo.json").read_text())
    assert [r["env"]["env_id"] for r in results] == ids
    assert results[0]["max_relative_energy_drift"] < 1e-10
    assert "MassSpring" in (tmp_path / "report.md").read_text()


def test_demo_refuses_unknown_env(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--out", str(tmp_path), "--envs", "physprior/Nope-v0"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment id" in err and err.count("\n") == 1
