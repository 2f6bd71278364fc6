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


def test_generate_train_eval_round_trip(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    data = tmp_path / "chain.npz"
    assert (
        main(
            [
                "generate",
                "physprior/MassSpring-v0",
                "--trajectories",
                "12",
                "--length",
                "8",
                "--out",
                str(data),
                "--seed",
                "1",
            ]
        )
        == 0
    )
    run = tmp_path / "run"
    args = [
        "train",
        str(data),
        "--model",
        "mlp",
        "--epochs",
        "2",
        "--out",
        str(run),
        "--no-progress",
        "--set",
        "hidden=16",
        "layers=1",
    ]
    assert main(args) == 0
    assert (run / "model" / "model.safetensors").is_file()
    report = tmp_path / "eval.json"
    assert main(["eval", str(run), str(data), "--horizon", "4", "--json", str(report)]) == 0
    result = json.loads(report.read_text())
    assert result["horizon"] == 4
    assert {"rollout_error", "position_error", "energy_violation"} <= set(result["metrics"])
    # Resuming a finished run trains nothing more and succeeds.
    assert main([*args, "--resume"]) == 0


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (
            ["train", "{data}", "--model", "nope", "--epochs", "1", "--out", "{tmp}/r"],
            "unknown model 'nope'",
        ),
        (
            [
                "train",
                "{data}",
                "--model",
                "mlp",
                "--epochs",
                "1",
                "--out",
                "{tmp}/r",
                "--set",
                "hiden=3",
            ],
            "unknown config field(s) 'hiden'",
        ),
        (["eval", "{data}", "{data}", "--horizon", "3"], "not a checkpoint folder"),
        (["eval", "{tmp}", "{tmp}/missing.npz", "--horizon", "3"], "lacks model.safetensors"),
        (
            [
                "generate",
                "physprior/Nope-v0",
                "--trajectories",
                "1",
                "--length",
                "2",
                "--out",
                "{tmp}/x.npz",
            ],
            "unknown environment id",
        ),
    ],
)
def test_bad_input_gives_one_line_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    data = tmp_path / "d.npz"
    main(
        [
            "generate",
            "physprior/MassSpring-v0",
            "--trajectories",
            "3",
            "--length",
            "4",
            "--out",
            str(data),
        ]
    )
    capsys.readouterr()
    argv = [a.format(data=data, tmp=tmp_path) for a in argv]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert message in err and err.count("\n") == 1, err
