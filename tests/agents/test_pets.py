"""The PETS loop: it runs, checkpoints every episode, resumes identically, refuses mistakes."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import physprior
from physprior.agents.pets import PETSConfig, run_pets
from physprior.agents.pets import _pets as pets
from physprior.cli import main

ENV = "physprior/InvertedPendulumFull-v0"
TINY = PETSConfig(
    model="mlp",
    model_kwargs={"hidden": 16},
    ensemble=2,
    initial_steps=30,
    model_epochs=2,
    max_episode_steps=25,
    planner_kwargs={"population": 16, "horizon": 4, "iterations": 1, "elites": 4, "particles": 2},
)


class _Killed(Exception):
    """Stands for a kill after a checkpoint."""


def test_a_run_writes_its_folder_and_learns_from_every_episode(tmp_path):
    results = run_pets(ENV, TINY, 90, tmp_path / "run", progress=False)
    folder = tmp_path / "run"
    assert results["steps"] == 90 and results["episodes"] == len(results["curve"]["steps"])
    # Finished episodes on the curve; the one the budget cut (if any) apart.
    cut = results["cut_episode"]
    assert results["curve"]["steps"][-1] + (cut["steps"] if cut else 0) == 90
    assert results["planner"]["propagation"] == "tsinf" and results["planner"]["particles"] == 2
    assert results["decision_ms_mean"] > 0 and results["fit_seconds"] > 0
    assert json.loads((folder / "results.json").read_text())["steps"] == 90
    assert (folder / "learning_curve.png").read_bytes().startswith(b"\x89PNG")
    ensemble = physprior.load_model(folder / "checkpoint" / "model")
    assert ensemble.name == "ensemble" and ensemble.size == 2
    assert ensemble.config.member_config["probabilistic"] is True  # PETS's mlp
    with np.load(folder / "checkpoint" / "data.npz") as data:
        assert data["obs"].shape == (90, 4) and data["actions"].shape == (90, 1)


def test_killed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch):
    full = run_pets(ENV, TINY, 90, tmp_path / "full", progress=False)
    honest = pets._Run.episode
    episodes = []

    def killed_after_three(self):
        honest(self)
        episodes.append(1)
        if len(episodes) == 3:
            raise _Killed

    monkeypatch.setattr(pets._Run, "episode", killed_after_three)
    with pytest.raises(_Killed):
        run_pets(ENV, TINY, 90, tmp_path / "part", progress=False)
    monkeypatch.setattr(pets._Run, "episode", honest)
    resumed = run_pets(ENV, TINY, 90, tmp_path / "part", resume=True, progress=False)
    assert resumed["curve"] == full["curve"]
    assert resumed["cut_episode"] == full["cut_episode"]
    a = physprior.load_model(tmp_path / "full" / "checkpoint" / "model").state_dict()
    b = physprior.load_model(tmp_path / "part" / "checkpoint" / "model").state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_mistakes_are_refused_before_anything_runs(tmp_path):
    run_pets(ENV, TINY, 40, tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="already holds a PETS run; resume it"):
        run_pets(ENV, TINY, 40, tmp_path / "run", progress=False)
    other = PETSConfig(**{**TINY.to_dict(), "ensemble": 3})
    with pytest.raises(ValueError, match="holds a PETS run of another env or config"):
        run_pets(ENV, other, 40, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ValueError, match=r"PETSConfig\.model_kwargs may not set dt"):
        PETSConfig(model_kwargs={"dt": 0.1})
    with pytest.raises(ValueError, match="unknown CEMConfig field"):
        PETSConfig(planner_kwargs={"pop": 3})
    with pytest.raises(ValueError, match=r"PETSConfig\.ensemble must be a positive integer"):
        PETSConfig(ensemble=0)


@pytest.mark.parametrize(
    ("fields", "match"),
    [
        ({"model_lr": 0.0}, r"PETSConfig\.model_lr must be a finite number > 0, got 0\.0"),
        ({"model_lr": float("nan")}, r"model_lr must be a finite number > 0, got nan"),
        ({"model_weight_decay": -1e-4}, r"model_weight_decay must be a finite number >= 0"),
        ({"model_weight_decay": True}, r"model_weight_decay must be a finite number >= 0"),
        ({"max_episode_steps": 0}, r"max_episode_steps must be a positive integer or None"),
        ({"model_epochs": 2.0}, r"PETSConfig\.model_epochs must be a positive integer, got 2\.0"),
        ({"seed": True}, r"PETSConfig\.seed must be an integer >= 0, got True"),
    ],
)
def test_pets_config_refuses_bad_numbers_in_one_line(fields, match):
    with pytest.raises(ValueError, match=match):
        PETSConfig(**fields)
    PETSConfig(model_weight_decay=0.0, max_episode_steps=None)  # the edges are allowed


def test_the_mbrl_command(tmp_path, capsys):
    out = tmp_path / "run"
    args = ["mbrl", ENV, "--steps", "60", "--out", str(out), "--ensemble", "2", "--no-progress"]
    args += ["--set", "hidden=16", "--loop", "initial_steps=30", "model_epochs=1"]
    args += ["max_episode_steps=20", "--plan", "population=12", "horizon=3", "iterations=1"]
    args += ["elites=3", "particles=2"]
    assert main(args) == 0
    assert "PETS with 2 mlp members on physprior/InvertedPendulumFull-v0: 60 real steps" in (
        capsys.readouterr().out
    )
    assert (out / "learning_curve.png").is_file()
    assert main([*args, "--resume"]) == 0  # finished: nothing more to run
    assert main([*args[:-2], "--loop", "seed=3"]) == 2
    assert "--loop seed: not a loop setting" in capsys.readouterr().err
