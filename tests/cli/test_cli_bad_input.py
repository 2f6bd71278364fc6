"""Bad input on the command line, by kind: each case exits 2 with one line naming the
argument, the value and what is allowed, and writes nothing."""

# ruff: noqa: E501  (the table of cases reads best one case per line)

from __future__ import annotations

from pathlib import Path

import pytest

from physprior.cli import main

P = "physprior/Pendulum-v0"

# (argv with {data} {run} {bad} {dir} {tmp} placeholders, a part of the expected message)
CASES: list[tuple[str, str]] = [
    # files that are not what they should be
    ("train {bad} --model mlp --out {tmp}/t", "is not an .npz file (not a zip archive)"),
    ("train {dir} --model mlp --out {tmp}/t", "no dataset file at"),
    ("train {tmp}/missing.npz --model mlp --out {tmp}/t", "no dataset file at"),
    ("eval {dir} {data} --horizon 3", "lacks model.safetensors and config.json"),
    ("eval {run} {bad} --horizon 3", "is not an .npz file"),
    ("eval {data} {data} --horizon 3", "is a file, not a checkpoint folder"),
    (f"collect {P} --steps 10 --out {{bad}} --resume --agent random", "is not an .npz file"),
    # numbers out of range, or not numbers
    ("train {data} --model mlp --out {tmp}/t --windows 0", "argument --windows: must be an integer >= 1, got 0"),
    ("train {data} --model mlp --out {tmp}/t --windows -5", "argument --windows: must be an integer >= 1, got -5"),
    ("train {data} --model mlp --out {tmp}/t --seed -1", "argument --seed: must be an integer >= 0, got -1"),
    ("train {data} --model mlp --out {tmp}/t --epochs 2.5", "argument --epochs: must be an integer, got '2.5'"),
    ("train {data} --model mlp --out {tmp}/t --lr nan", "argument --lr: must be a finite number in (0, inf), got nan"),
    ("train {data} --model mlp --out {tmp}/t --lr abc", "argument --lr: must be a number, got 'abc'"),
    ("train {data} --model mlp --out {tmp}/t --val-fraction 0", "argument --val-fraction: must be a finite number in (0, 1]"),
    ("train {data} --model mlp --out {tmp}/t --val-fraction 0.01", "--val-fraction: test_fraction 0.01 gives an empty test split"),
    ("train {data} --model mlp --out {tmp}/t --window 1", "argument --window: must be an integer >= 2, got 1"),
    ("train {data} --model mlp --out {tmp}/t --grad-clip inf", "argument --grad-clip: must be a finite number"),
    ("eval {run} {data} --horizon 3 --windows 0", "argument --windows: must be an integer >= 1, got 0"),
    ("eval {run} {data} --horizon 0", "argument --horizon: must be an integer >= 1, got 0"),
    ("eval {run} {data} --horizon 50", "no window of 51 states fits"),
    (f"generate {P} --trajectories 2 --length 1 --out {{tmp}}/g.npz", "argument --length: must be an integer >= 2, got 1"),
    (f"plan {P} --model {{run}} --episodes 0", "argument --episodes: must be an integer >= 1, got 0"),
    (f"plan {P} --model {{run}} --episodes 1 --set horizon=-3", "CEMConfig.horizon must be a positive integer, got -3"),
    ("envs --rollout 0", "argument --rollout: must be an integer >= 1, got 0"),
    ("bench hnn-toy --out {tmp}/b --seeds 0", "argument --seeds: must be an integer >= 1, got 0"),
    ("bench hnn-toy --out {tmp}/b --workers 0", "argument --workers: must be an integer >= 1, got 0"),
    ("demo --out {tmp}/d --steps 0", "argument --steps: must be an integer >= 1, got 0"),
    # model config values of the wrong type, or that the dataset decides
    ("train {data} --model mlp --out {tmp}/t --set hidden=abc", "MLPDeltaConfig.hidden must be int, got 'abc' (str)"),
    ("train {data} --model mlp --out {tmp}/t --set hidden=3.5", "MLPDeltaConfig.hidden must be int, got 3.5 (float)"),
    ("train {data} --model mlp --out {tmp}/t --set hidden=true", "MLPDeltaConfig.hidden must be int, got True (bool)"),
    ("train {data} --model mlp --out {tmp}/t --set hidden=1000000000", "hidden must be at most 65536"),
    ("train {data} --model mlp --out {tmp}/t --set integrator=bogus", "unknown integrator 'bogus'"),
    ("train {data} --model hnn --out {tmp}/t --set dt=1 state_layout=qv", "--set dt, state_layout: these come from the dataset's meta"),
    ("train {data} --model mlp --out {tmp}/t --set =3", "model config must be given as KEY=VALUE, got '=3'"),
    # names that do not exist
    (f"plan {P} --model {{run}} --episodes 1 --set bogus=1", "unknown CEMConfig field(s) bogus; valid:"),
    ("plan physprior/Nope-v0 --model {run} --episodes 1", "unknown environment id 'physprior/Nope-v0'"),
    ("plan physprior/MassSpring-v0 --model {run} --episodes 1", "model has dt 0.0666"),
    ("collect physprior/Nope-v0 --steps 10 --out {tmp}/x.npz", "unknown environment id 'physprior/Nope-v0'"),
    ("bench nope --out {tmp}/b", "unknown benchmark suite 'nope'"),
    ("bench hnn-toy --out {tmp}/b --rows nothing", "suite 'hnn-toy' has no row 'nothing'; its rows are:"),
    ("generate HalfCheetah-v5 --trajectories 2 --length 5 --out {tmp}/g.npz", "unknown environment id 'HalfCheetah-v5'"),
    (f"generate {P} --trajectories 2 --length 5 --out {{tmp}}/g.npz --actions weird", "argument --actions: invalid choice: 'weird'"),
    ("demo --out {tmp}/d --models gpt", "unknown demo model(s) ['gpt']"),
    ("nonsense", "argument COMMAND: invalid choice: 'nonsense'"),
]  # fmt: skip


@pytest.fixture(scope="module")
def places(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("places")
    data, run = root / "d.npz", root / "run"
    gen = ["generate", P, "--trajectories", "12", "--length", "20", "--out", str(data)]
    assert main(gen) == 0
    assert main(["train", str(data), "--model", "mlp", "--epochs", "1", "--out", str(run)]) == 0
    (root / "bad.npz").write_text("garbage")
    (root / "folder").mkdir()
    return {"data": str(data), "run": str(run), "bad": str(root / "bad.npz"),
            "dir": str(root / "folder")}  # fmt: skip


@pytest.mark.parametrize(("argv", "message"), CASES, ids=[c[0].split(" {")[0] for c in CASES])
def test_bad_input_is_one_line_naming_what_is_wrong(
    argv: str,
    message: str,
    places: dict[str, str],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    args = [a.format(**places, tmp=tmp_path) for a in argv.split()]
    assert _exit_status(args) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert message in err, err
    assert list(tmp_path.iterdir()) == []  # nothing written


def _exit_status(args: list[str]) -> int | str | None:
    """`main`'s status; argparse's own errors leave through SystemExit, with the same 2."""
    try:
        return main(args)
    except SystemExit as exit:
        return exit.code
