"""`run_mbpo`: an MBPO run folder that checkpoints, resumes identically and refuses mistakes."""

from __future__ import annotations

import json

import pytest
from safetensors.torch import load_file

from physprior.agents import mbpo as mbpo_module
from physprior.agents.mbpo import MBPOConfig, run_mbpo
from physprior.cli import main

ENV = "physprior/InvertedPendulumFull-v0"


def tiny(**overrides) -> MBPOConfig:
    """Every part of MBPO (random start, fits, branched rollouts, SAC updates, episode ends
    and a time limit) within 120 real steps."""
    fields = dict(
        learning_starts=30,
        model_train_every=30,
        model_epochs=1,
        model_batch_size=32,
        model_kwargs={"hidden": 16},
        rollout_every=10,
        rollouts_per_step=2,
        rollout_length=2,
        model_retain_steps=50,
        gradient_steps=1,
        batch_size=16,
        buffer_size=500,
        max_episode_steps=25,
        sac_kwargs={"policy_kwargs": {"net_arch": [16]}},
        seed=2,
    )
    fields.update(overrides)
    return MBPOConfig(**fields)


class _Killed(Exception):
    """Stands for a kill after a checkpoint."""


@pytest.mark.parametrize("ensemble", [None, 2])
def test_killed_and_resumed_equals_uninterrupted(tmp_path, monkeypatch, ensemble):
    config = tiny(ensemble=ensemble)
    full = run_mbpo(ENV, config, 120, tmp_path / "full", progress=False, checkpoint_every=35)
    assert full["model_fits"] == 4 and full["episodes"] >= 3 and full["cut_episode"] is not None
    assert config == tiny(ensemble=ensemble)  # SB3 got a copy of sac_kwargs to add keys to

    honest = mbpo_module.MBPO.learn
    calls = []

    def killed_after_two(self, total_steps, progress=True):
        if len(calls) == 2:  # two chunks learnt and checkpointed (70 steps): mid-episode
            raise _Killed
        calls.append(total_steps)
        return honest(self, total_steps, progress)

    monkeypatch.setattr(mbpo_module.MBPO, "learn", killed_after_two)
    with pytest.raises(_Killed):
        run_mbpo(ENV, config, 120, tmp_path / "part", progress=False, checkpoint_every=35)
    monkeypatch.setattr(mbpo_module.MBPO, "learn", honest)
    resumed = run_mbpo(
        ENV, config, 120, tmp_path / "part", resume=True, progress=False, checkpoint_every=35
    )
    for key in ("curve", "cut_episode", "history", "model_transitions", "gradient_steps"):
        assert resumed[key] == full[key], key
    # The same final weights and optimiser states, bit for bit.
    ours = load_file(str(tmp_path / "part" / "checkpoint" / "sac.safetensors"))
    theirs = load_file(str(tmp_path / "full" / "checkpoint" / "sac.safetensors"))
    assert ours.keys() == theirs.keys()
    assert all(bool((ours[k] == theirs[k]).all()) for k in ours)
    assert (tmp_path / "part" / "learning_curve.png").stat().st_size > 0


def test_mistakes_are_refused(tmp_path):
    run_mbpo(ENV, tiny(), 40, tmp_path / "run", progress=False)
    with pytest.raises(FileExistsError, match="already holds an MBPO run; resume it"):
        run_mbpo(ENV, tiny(), 40, tmp_path / "run", progress=False)
    with pytest.raises(ValueError, match="holds a MBPO run of another env or config"):
        run_mbpo(ENV, tiny(seed=3), 40, tmp_path / "run", resume=True, progress=False)
    with pytest.raises(ValueError, match="already holds 40 steps, more than 30"):
        run_mbpo(ENV, tiny(), 30, tmp_path / "run", resume=True, progress=False)
    buffers = tmp_path / "run" / "checkpoint" / "buffers.npz"
    intact = buffers.read_bytes()
    for damaged in (b"junk", intact[:300]):  # not a zip; a truncated zip
        buffers.write_bytes(damaged)
        with pytest.raises(ValueError, match=r"buffers.npz is damaged or foreign: not the \.npz"):
            run_mbpo(ENV, tiny(), 50, tmp_path / "run", resume=True, progress=False)
    buffers.write_bytes(intact)
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer"):
        run_mbpo(ENV, tiny(), 40, tmp_path / "other", checkpoint_every=0)
    odd = tiny(sac_kwargs={"policy_kwargs": {"activation_fn": object}})
    with pytest.raises(ValueError, match="needs a config of JSON values"):
        run_mbpo(ENV, odd, 40, tmp_path / "other")


def test_the_mbrl_command_runs_mbpo(tmp_path, capsys):
    args = [
        "mbrl", ENV, "--algo", "mbpo", "--model", "mlp", "--ensemble", "2", "--steps", "40",
        "--out", str(tmp_path / "run"), "--no-progress", "--set", "hidden=16",
        "--loop", "learning_starts=20", "model_train_every=20", "rollouts_per_step=2",
        "gradient_steps=1", "batch_size=16", "buffer_size=200", "model_retain_steps=20",
    ]  # fmt: skip
    assert main(args) == 0
    results = json.loads((tmp_path / "run" / "results.json").read_text())
    assert results["algo"] == "mbpo" and results["steps"] == 40 and results["model_fits"] == 2
    assert results["config"]["ensemble"] == 2
    assert "MBPO" in capsys.readouterr().out
    assert main([*args, "--resume"]) == 0  # finished: nothing more to run
