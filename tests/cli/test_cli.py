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
    rows = json.loads((tmp_path / "envs.json").read_text())["envs"]
    assert {r["env_id"] for r in rows} == set(ENV_IDS)


def test_envs_rollout_reports_energy_drift(tmp_path: Path) -> None:
    assert main(["envs", "--rollout", "10", "--json", str(tmp_path / "envs.json")]) == 0
    rollouts = json.loads((tmp_path / "envs.json").read_text())["rollouts"]
    assert [r["env"]["env_id"] for r in rollouts] == list(ENV_IDS)
    by_id = {r["env"]["env_id"]: r for r in rollouts}
    assert by_id["physprior/MassSpring-v0"]["max_relative_energy_drift"] < 1e-10


def test_demo_runs_end_to_end_on_a_tiny_setting(tmp_path: Path) -> None:
    """Every stage of the main job, shrunk to seconds: InvertedPendulumFull episodes are short."""
    out = tmp_path / "demo"
    args = ["demo", "--out", str(out), "--env", "physprior/InvertedPendulumFull-v0"]
    args += ["--steps", "400", "--epochs", "1", "--horizon", "5", "--mpc-steps", "5"]
    args += ["--no-progress"]
    args += ["--models", "node-so", "mlp"]
    assert main(args) == 0
    report = (out / "report.md").read_text()
    for expected in ("node-so", "mlp", "random policy", "rollout_error.png", "returns.png"):
        assert expected in report
    assert "## What the paper says, and this run" in report
    assert "- Ranking in this run (rollout error, lowest first): " in report
    for plot in ("rollout_error.png", "trajectory.png", "returns.png"):
        assert (out / plot).read_bytes().startswith(b"\x89PNG")
    results = json.loads((out / "results.json").read_text())
    assert set(results["open_loop"]) == {"node-so", "mlp"}
    assert results["data"]["rows"] == 400
    # A second run over the same folder reuses every finished stage.
    assert main(args) == 0


def test_demo_refuses_unknown_env_and_model(
    capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    assert main(["demo", "--out", str(tmp_path), "--env", "physprior/Nope-v0"]) == 2
    err = capsys.readouterr().err
    assert "unknown environment id" in err and err.count("\n") == 1
    assert main(["demo", "--out", str(tmp_path), "--models", "node-so", "gpt"]) == 2
    err = capsys.readouterr().err
    assert "unknown demo model(s) ['gpt']" in err and err.count("\n") == 1


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
    # The defaults under which every model learns in a short run: 1e-3, clipped at norm 1.
    recorded = json.loads((run / "train_config.json").read_text())
    assert recorded["train_config"]["lr"] == 1e-3
    assert recorded["train_config"]["grad_clip"] == 1.0
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


def test_ctrl_c_says_how_to_resume(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import physprior.suites

    def interrupted(*args: object, **kwargs: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(physprior.suites, "run_bench", interrupted)
    assert main(["bench", "hnn-toy", "--out", str(tmp_path)]) == 130
    assert "interrupted; finished jobs are saved" in capsys.readouterr().err


def test_warnings_print_as_one_line_while_the_command_runs(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import warnings

    import physprior.cli as cli

    seen: list[str] = []

    def command(config: object) -> int:
        seen.append(
            warnings.formatwarning(RuntimeWarning("a job diverged"), RuntimeWarning, "f.py", 7)
        )
        return 0

    monkeypatch.setattr(cli, "_cmd_envs", command)
    before = warnings.formatwarning
    assert main(["envs"]) == 0
    assert seen == ["RuntimeWarning: a job diverged\n"]  # no file, line or source
    assert warnings.formatwarning is before  # restored for the caller


def test_python_dash_m_runs_the_command_and_draws_no_bar_into_a_pipe(tmp_path: Path) -> None:
    import subprocess
    import sys

    version = subprocess.run(
        [sys.executable, "-m", "physprior", "--version"], capture_output=True, text=True, check=True
    )
    assert version.stdout.startswith("physprior ")
    argv = [sys.executable, "-m", "physprior", "generate", "physprior/MassSpring-v0"]
    argv += ["--trajectories", "300", "--length", "30", "--out", str(tmp_path / "d.npz")]
    done = subprocess.run(argv, capture_output=True, text=True, check=True)  # stderr: a pipe
    assert done.stderr == "" and "wrote 8700 transitions" in done.stdout


def test_train_draws_frames_for_a_pixel_model(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    data = tmp_path / "pendulum.npz"
    generate = ["generate", "physprior/Pendulum-v0", "--trajectories", "4", "--length", "14"]
    assert main([*generate, "--out", str(data), "--seed", "0"]) == 0
    run = tmp_path / "run"
    args = ["train", str(data), "--model", "pixel-vin", "--epochs", "1", "--window", "11"]
    small = ["hidden=8", "encoder_hidden=16", "decoder_hidden=16", "lstm_hidden=4"]
    options = ["--val-fraction", "0.25", "--out", str(run), "--no-progress", "--set", *small]
    assert main([*args, *options]) == 0
    assert "windows of 11 binary frames" in capsys.readouterr().out
    import physprior

    assert physprior.load_model(run).config.frame_pixels == 784  # type: ignore[attr-defined]
    # HGN on the same data: 32x32 RGB frames drawn per batch; its latent width is its own.
    hgn_run = tmp_path / "hgn"
    hgn = ["train", str(data), "--model", "hgn", "--epochs", "1", "--window", "5"]
    tiny = ["inference_frames=3", "hidden=8", "decoder_filters=4", "encoder_filters=4"]
    hgn_options = ["--val-fraction", "0.25", "--out", str(hgn_run), "--no-progress"]
    assert main([*hgn, *hgn_options, "--set", *tiny]) == 0
    assert "windows of 5 hgn frames" in capsys.readouterr().out
    model = physprior.load_model(hgn_run)
    assert model.name == "hgn" and model.obs_dim == 512 and model.data_dim == 3072


def test_train_an_ensemble_then_eval_and_resume_it(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from physprior.training import load_model

    data = tmp_path / "spring.npz"
    generate = ["generate", "physprior/MassSpring-v0", "--trajectories", "12", "--length", "8"]
    assert main([*generate, "--out", str(data), "--seed", "1"]) == 0
    run = tmp_path / "run"
    args = ["train", str(data), "--model", "node-so", "--ensemble", "2", "--epochs", "2"]
    args += ["--out", str(run), "--no-progress", "--set", "hidden=16"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "training an ensemble of 2 node-so models, each on a bootstrap resample" in out
    assert "member 1: 2 epochs" in out
    ensemble = load_model(run)
    assert ensemble.name == "ensemble" and ensemble.size == 2
    assert ensemble.config.member == "node-so" and ensemble.config.member_config == {"hidden": 16}
    assert ensemble.config.env_id == "physprior/MassSpring-v0"
    report = tmp_path / "eval.json"
    assert main(["eval", str(run), str(data), "--horizon", "4", "--json", str(report)]) == 0
    assert json.loads(report.read_text())["horizon"] == 4
    assert main([*args, "--resume"]) == 0  # finished: nothing more to train
    assert main(args) == 2  # without --resume, the run is not overwritten
    assert "already holds an ensemble run" in capsys.readouterr().err
