"""The trainer on a tiny model: determinism, resume, atomic checkpoints, logs, refusals."""

from __future__ import annotations

import itertools
import json
import math
import sys

import pytest
import torch

import physprior
from physprior.training import CheckpointError, TrainConfig, train
from physprior.training import _folders as folders

FAST = {"epochs": 6, "batch_size": 16, "lr": 1e-2, "lr_min": 1e-4, "progress": False}


@pytest.fixture
def data(windows):
    train_s, train_a, _ = windows(40, 4, seed=1)
    val_s, val_a, _ = windows(12, 6, seed=2)
    return (train_s, train_a), (val_s, val_a)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def _assert_identical(a: dict, b: dict) -> None:
    assert a.keys() == b.keys()
    for key in a:
        assert torch.equal(a[key], b[key]), key


def _run_names(folder) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


def test_a_run_fits_and_writes_its_folder(tmp_path, tiny, data):
    model = tiny()
    result = train(model, *data, TrainConfig(**{**FAST, "epochs": 30}), tmp_path / "run")
    assert result.completed and result.epochs_done == 30 and not result.stopped_early
    assert _run_names(tmp_path / "run") == ["checkpoint", "log.jsonl", "model", "train_config.json"]
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[0] / 10
    saved = json.loads((tmp_path / "run" / "train_config.json").read_text())
    assert saved["train_config"]["seed"] == 0 and saved["model"] == model.name


def test_two_runs_with_one_seed_give_bitwise_identical_weights(tmp_path, tiny, data):
    results = [train(tiny(), *data, TrainConfig(**FAST), tmp_path / f"r{i}") for i in range(2)]
    _assert_identical(_weights(results[0].model), _weights(results[1].model))
    other = train(tiny(), *data, TrainConfig(**{**FAST, "seed": 1}), tmp_path / "other")
    assert not torch.equal(other.model.net[0].weight, results[0].model.net[0].weight)


@pytest.mark.parametrize(
    ("schedule", "iso_method"), [("cosine", "lbfgs"), ("plateau", "lbfgs"), ("cosine", "joint")]
)
def test_killed_and_resumed_equals_uninterrupted(tmp_path, tiny, data, schedule, iso_method):
    config = TrainConfig(
        **{
            **FAST,
            "schedule": schedule,
            "plateau_patience": 1,
            "iso": True,
            "iso_method": iso_method,
            "iso_warmup_epochs": 2,
            "iso_iterations": 3,
        }
    )
    full = train(tiny(), *data, config, tmp_path / "full")

    stop_at_3 = lambda record: record["epoch"] == 3  # noqa: E731
    part = train(tiny(), *data, config, tmp_path / "part", callback=stop_at_3)
    assert not part.completed and part.epochs_done == 3
    # A fresh process: a new, untrained model; everything else comes from the checkpoint.
    resumed = train(tiny(seed=99), *data, config, tmp_path / "part", resume=True)
    assert resumed.completed and resumed.epochs_done == FAST["epochs"]
    _assert_identical(_weights(full.model), _weights(resumed.model))
    assert [r["epoch"] for r in resumed.history] == list(range(1, FAST["epochs"] + 1))
    keys = ("train_loss", "val_loss", "lr")
    for a, b in zip(full.history, resumed.history, strict=True):
        assert [a[k] for k in keys] == [b[k] for k in keys]


class _Killed(Exception):
    """Stands for a kill: raised from a callback, it skips everything after the epoch."""


def test_checkpoint_every_n_epochs_resumes_from_the_last_one_identically(tmp_path, tiny, data):
    config = TrainConfig(**{**FAST, "epochs": 9, "checkpoint_every": 4})
    full = train(tiny(), *data, config, tmp_path / "full")

    def kill_after_7(record):
        if record["epoch"] == 7:
            raise _Killed

    with pytest.raises(_Killed):
        train(tiny(), *data, config, tmp_path / "part", callback=kill_after_7)
    state = json.loads((tmp_path / "part" / "checkpoint" / "trainer.json").read_text())
    assert state["progress"]["epochs_done"] == 4  # epochs 5-7 are lost and will be repeated
    # Checkpointing more often on resume changes no weight.
    again = TrainConfig(**{**FAST, "epochs": 9, "checkpoint_every": 1})
    resumed = train(tiny(seed=99), *data, again, tmp_path / "part", resume=True)
    _assert_identical(_weights(full.model), _weights(resumed.model))
    assert [r["epoch"] for r in resumed.history] == list(range(1, 10))
    stop_at_2 = lambda record: record["epoch"] == 2  # noqa: E731
    stopped = train(tiny(), *data, config, tmp_path / "stopped", callback=stop_at_2)
    assert stopped.epochs_done == 2
    state = json.loads((tmp_path / "stopped" / "checkpoint" / "trainer.json").read_text())
    assert state["progress"]["epochs_done"] == 2  # a stop writes its checkpoint
    with pytest.raises(ValueError, match="checkpoint_every must be a positive integer, got 0"):
        TrainConfig(checkpoint_every=0)


def test_a_kill_while_writing_a_checkpoint_keeps_the_previous_one(
    tmp_path, tiny, data, monkeypatch
):
    config = TrainConfig(**FAST)
    full = train(tiny(), *data, config, tmp_path / "full")

    real = folders.write_folder
    calls = {"n": 0}

    def dies_on_the_fourth_checkpoint(target, fill):
        if target.name == "checkpoint":
            calls["n"] += 1
            if calls["n"] == 4:

                def half(tmp):
                    fill(tmp)
                    raise KeyboardInterrupt  # killed after filling, before the rename

                return real(target, half)
        return real(target, fill)

    monkeypatch.setattr("physprior.training._trainer.write_folder", dies_on_the_fourth_checkpoint)
    with pytest.raises(KeyboardInterrupt):
        train(tiny(), *data, config, tmp_path / "part")
    monkeypatch.undo()
    state = json.loads((tmp_path / "part" / "checkpoint" / "trainer.json").read_text())
    assert state["progress"]["epochs_done"] == 3
    # The log line of epoch 4 was written before its checkpoint; resuming drops and redoes it.
    assert len((tmp_path / "part" / "log.jsonl").read_text().splitlines()) == 4
    resumed = train(tiny(), *data, config, tmp_path / "part", resume=True)
    _assert_identical(_weights(full.model), _weights(resumed.model))
    assert [r["epoch"] for r in resumed.history] == list(range(1, 7))  # epoch 4 logged once


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("epochs_done", -3, r"epochs_done \(-3\) and bad_epochs \(0\) must be >= 0"),
        ("epochs_done", 2.5, r"_Progress.epochs_done must be int, got 2.5"),
        ("best_epoch", 99, r"best_epoch must be in 1..epochs_done=3, got 99"),
        ("stopped_early", "no", r"_Progress.stopped_early must be bool"),
    ],
)
def test_a_tampered_trainer_json_is_refused_on_resume(tmp_path, tiny, data, field, value, message):
    """`trainer.json` is outside the weights' checksum: its bookkeeping is checked on load."""
    run = tmp_path / "run"
    config = TrainConfig(**{**FAST, "epochs": 6})
    train(tiny(), *data, config, run, callback=lambda record: record["epoch"] == 3)
    path = run / "checkpoint" / "trainer.json"
    state = json.loads(path.read_text())
    state["progress"][field] = value
    path.write_text(json.dumps(state))
    with pytest.raises(CheckpointError, match=message):
        train(tiny(), *data, config, run, resume=True)


def test_a_kill_between_the_two_renames_of_a_swap_resumes_from_the_previous_checkpoint(
    tmp_path, tiny, data
):
    config = TrainConfig(**FAST)
    full = train(tiny(), *data, config, tmp_path / "full")
    run = tmp_path / "part"
    train(tiny(), *data, config, run, callback=lambda record: record["epoch"] == 3)
    # The checkpoint of epoch 3 was moved aside and the filled epoch-4 folder never renamed.
    (run / "checkpoint").rename(run / ".checkpoint.old")
    (run / ".checkpoint.tmp-x").mkdir()
    (run / ".checkpoint.tmp-x" / "model.safetensors").write_bytes(b"half")
    resumed = train(tiny(), *data, config, run, resume=True)
    _assert_identical(_weights(full.model), _weights(resumed.model))
    assert _run_names(run) == ["checkpoint", "log.jsonl", "model", "train_config.json"]


def test_checkpoint_is_complete_after_every_epoch_and_no_temp_folders_remain(
    tmp_path, tiny, data, registered
):
    run = tmp_path / "run"
    seen = []

    def inspect(record):
        names = _run_names(run)
        # While a run trains, its folder holds the one-writer lock too.
        assert names == [".physprior.lock", "checkpoint", "log.jsonl", "model", "train_config.json"]
        assert _run_names(run / "checkpoint") == [
            "config.json",
            "model.safetensors",
            "trainer.json",
            "trainer.safetensors",
        ]
        state = json.loads((run / "checkpoint" / "trainer.json").read_text())
        assert state["progress"]["epochs_done"] == record["epoch"]
        physprior.load_model(run / "checkpoint")  # the checkpoint is itself a loadable model
        seen.append(record["epoch"])

    train(tiny(), *data, TrainConfig(**FAST), run, callback=inspect)
    assert seen == list(range(1, 7))


def test_best_model_is_exported_and_restored(tmp_path, tiny, data, registered):
    result = train(tiny(), *data, TrainConfig(**{**FAST, "lr": 0.3}), tmp_path / "run")
    vals = [r["val_loss"] for r in result.history]
    best = min(range(len(vals)), key=vals.__getitem__)
    assert result.best_epoch == best + 1 and result.best_val_loss == vals[best]
    exported = physprior.load_model(tmp_path / "run")  # a run folder loads its exported model
    _assert_identical(_weights(exported), _weights(result.model))
    val_s, val_a = data[1]
    with torch.no_grad():
        val_loss = float(exported.training_loss(val_s, val_a))  # load_model: evaluation mode
    assert math.isclose(val_loss, vals[best], rel_tol=1e-5)


def test_log_has_one_line_per_epoch_with_its_fields(tmp_path, tiny, data):
    train(tiny(), *data, TrainConfig(**FAST), tmp_path / "run")
    lines = (tmp_path / "run" / "log.jsonl").read_text().splitlines()
    records = [json.loads(line) for line in lines]
    assert [r["epoch"] for r in records] == list(range(1, 7))
    for r in records:
        assert set(r) == {"epoch", "train_loss", "val_loss", "lr", "seconds", "windows_per_second"}
        assert r["train_loss"] > 0 and r["val_loss"] > 0 and r["seconds"] > 0
        assert r["windows_per_second"] > 0


def test_schedules(tmp_path, tiny, data):
    runs = iter(range(100))

    def lrs(**config):
        result = train(tiny(), *data, TrainConfig(**{**FAST, **config}), tmp_path / str(next(runs)))
        return [r["lr"] for r in result.history]

    cosine = lrs(schedule="cosine", epochs=4, lr=2e-4, lr_min=1e-6)
    expected = [1e-6 + (2e-4 - 1e-6) * (1 + math.cos(math.pi * e / 4)) / 2 for e in range(4)]
    assert cosine == pytest.approx(expected, rel=1e-12)
    assert lrs(schedule="constant") == [FAST["lr"]] * 6
    # The SRNN billiard protocol: 5e-3 times 0.5 per epoch here, floored at 1e-3.
    exponential = lrs(schedule="exponential", lr=5e-3, lr_decay=0.5, lr_min=1e-3, epochs=5)
    assert exponential == pytest.approx([5e-3, 2.5e-3, 1.25e-3, 1e-3, 1e-3], rel=1e-12)
    # lr 0.5 overshoots: validation worsens and the plateau schedule cuts the rate by 0.7.
    plateau = lrs(schedule="plateau", lr=0.5, plateau_patience=1, plateau_factor=0.7, epochs=10)
    assert plateau[0] == 0.5 and min(plateau) < 0.5
    assert all(b in (a, pytest.approx(a * 0.7)) for a, b in itertools.pairwise(plateau))


def test_early_stopping(tmp_path, tiny, data):
    # A learning rate this large makes validation worse after the first epochs.
    config = TrainConfig(
        **{**FAST, "lr": 3.0, "epochs": 40, "early_stopping": 2, "schedule": "constant"}
    )
    result = train(tiny(), *data, config, tmp_path / "run")
    assert result.stopped_early and result.completed and result.epochs_done < 40
    assert result.epochs_done - result.best_epoch == 2
    again = train(tiny(), *data, config, tmp_path / "run", resume=True)  # a stopped run stays so
    assert again.epochs_done == result.epochs_done


def test_progress_bar_shows_or_stays_silent(tmp_path, tiny, data, capsys, monkeypatch):
    train(tiny(), *data, TrainConfig(**{**FAST, "progress": True}), tmp_path / "piped")
    assert capsys.readouterr().err == ""  # stderr is not a terminal: no bar in the log
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    train(tiny(), *data, TrainConfig(**FAST), tmp_path / "quiet")
    assert capsys.readouterr().err == ""
    train(tiny(), *data, TrainConfig(**{**FAST, "progress": True}), tmp_path / "loud")
    err = capsys.readouterr().err
    assert "6/6" in err and "train=" in err and "val=" in err


# ---------------------------------------------------------------------------------- refusals
def test_empty_split_is_refused(tmp_path, tiny, data):
    (s, a), val = data
    with pytest.raises(ValueError, match="no training windows"):
        train(tiny(), (s[:0], a[:0]), val, TrainConfig(**FAST), tmp_path / "run")
    with pytest.raises(ValueError, match="no validation windows"):
        train(tiny(), (s, a), (s[:0], a[:0]), TrainConfig(**FAST), tmp_path / "run")
    assert not (tmp_path / "run").exists()


def test_nan_windows_are_refused_with_their_count(tmp_path, tiny, data):
    (s, a), val = data
    s = s.clone()
    s[3, 2, 0] = float("nan")
    s[7, 0, 1] = float("inf")
    with pytest.raises(ValueError, match="NaN or infinite values in 2 of 40 windows"):
        train(tiny(), (s, a), val, TrainConfig(**FAST), tmp_path / "run")


def test_dims_that_do_not_fit_the_model_are_refused(tmp_path, tiny, data):
    s, a = data[0]
    with pytest.raises(ValueError, match="model expects obs_dim 4 / action_dim 1, data has 2 / 1"):
        train(tiny(obs_dim=4, dt=0.1), (s, a), None, TrainConfig(**FAST), tmp_path / "run")
    with pytest.raises(ValueError, match="actions have shape"):
        train(tiny(), (s, a[:, :2]), None, TrainConfig(**FAST), tmp_path / "run")


def test_validation_needed_for_plateau_and_early_stopping(tmp_path, tiny, data):
    with pytest.raises(ValueError, match="need validation windows"):
        train(tiny(), data[0], None, TrainConfig(**{**FAST, "early_stopping": 3}), tmp_path / "r")


def test_existing_run_is_not_overwritten_and_resume_checks_the_config(tmp_path, tiny, data):
    run = tmp_path / "run"
    train(tiny(), *data, TrainConfig(**FAST), run)
    before = (run / "checkpoint" / "trainer.json").read_text()
    with pytest.raises(FileExistsError, match="already holds a training run"):
        train(tiny(), *data, TrainConfig(**FAST), run)
    with pytest.raises(ValueError, match=r"config differs in lr \(0.01 -> 0.02\)"):
        train(tiny(), *data, TrainConfig(**{**FAST, "lr": 2e-2}), run, resume=True)
    (s, a), val = data
    with pytest.raises(ValueError, match="windows differ"):
        train(tiny(), (s[:-1], a[:-1]), val, TrainConfig(**FAST), run, resume=True)
    with pytest.raises(ValueError, match="another config"):
        train(tiny(hidden=8), *data, TrainConfig(**FAST), run, resume=True)
    assert (run / "checkpoint" / "trainer.json").read_text() == before
    relaxed = TrainConfig(**{**FAST, "progress": True, "restore_best": False})
    assert train(tiny(), *data, relaxed, run, resume=True).epochs_done == FAST["epochs"]


def test_resume_without_a_checkpoint_starts_fresh(tmp_path, tiny, data):
    a = train(tiny(), *data, TrainConfig(**FAST), tmp_path / "a", resume=True)
    b = train(tiny(), *data, TrainConfig(**FAST), tmp_path / "b")
    _assert_identical(_weights(a.model), _weights(b.model))


def test_float64_training_and_plain_numpy_windows(tmp_path, tiny, data):
    (s, a), _ = data
    model = tiny()
    result = train(
        model,
        (s.numpy(), a.numpy()),
        None,
        TrainConfig(**{**FAST, "dtype": "float64"}),
        tmp_path / "run",
    )
    assert result.model.dtype == torch.float64 and result.best_val_loss is None


def test_config_validation():
    with pytest.raises(ValueError, match="epochs must be a positive integer"):
        TrainConfig(epochs=0)
    with pytest.raises(ValueError, match="schedule must be"):
        TrainConfig(schedule="step")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="lr_min"):
        TrainConfig(lr=1e-4, lr_min=1e-3)
    for decay in (0.0, 1.5):
        with pytest.raises(ValueError, match=rf"lr_decay must be in \(0, 1\], got {decay}"):
            TrainConfig(schedule="exponential", lr_decay=decay)
    with pytest.raises(ValueError, match="unknown TrainConfig field"):
        TrainConfig.from_dict({"epochs": 3, "colour": "red"})
    config = TrainConfig(epochs=3, early_stopping=5)
    assert TrainConfig.from_dict(json.loads(json.dumps(config.to_dict()))) == config


def test_the_optimizer_is_chosen_by_name(tmp_path):
    # "adam": torch's Adam, whose weight decay is an L2 term in the gradient (the papers'
    # authors' choice); "adamw": decoupled decay (the default).
    from physprior.models import make
    from physprior.training._trainer import Trainer

    for name, expected in (("adam", torch.optim.Adam), ("adamw", torch.optim.AdamW)):
        config = TrainConfig(epochs=1, optimizer=name, progress=False)
        trainer = Trainer(make("mlp", obs_dim=2, dt=0.1, hidden=4), config, tmp_path / name)
        trainer.fit((torch.randn(8, 3, 2), None))
        assert type(trainer._optimizer) is expected
    with pytest.raises(ValueError, match="optimizer must be 'adamw' or 'adam', got 'sgd'"):
        TrainConfig(optimizer="sgd")


def test_a_run_saved_before_a_config_field_existed_resumes_at_its_default(tmp_path, tiny, data):
    # A field added to a config class later (here: simulated by deleting it from the saved
    # run) keeps the old behaviour at its default, so an older run resumes...
    run = tmp_path / "run"
    train(tiny(), *data, TrainConfig(**FAST), run, callback=lambda record: True)
    state, model = run / "checkpoint" / "trainer.json", run / "checkpoint" / "config.json"
    info, header = json.loads(state.read_text()), json.loads(model.read_text())
    del info["train_config"]["lr_decay"]
    del header["config"]["substeps"]
    state.write_text(json.dumps(info))
    model.write_text(json.dumps(header))
    assert train(tiny(), *data, TrainConfig(**FAST), run, resume=True).epochs_done == 6
    # ...but not where the run now asks for another value than the default.
    again = tmp_path / "again"
    train(tiny(), *data, TrainConfig(**FAST), again, callback=lambda record: True)
    state = again / "checkpoint" / "trainer.json"
    info = json.loads(state.read_text())
    del info["train_config"]["lr"]  # FAST's lr is not the default
    state.write_text(json.dumps(info))
    with pytest.raises(ValueError, match=r"config differs in lr \(0.0002 -> 0.01\)"):
        train(tiny(), *data, TrainConfig(**FAST), again, resume=True)


def test_joint_iso_steps_the_initial_states_with_the_model(tmp_path, tiny, data):
    from physprior.training._state_io import read_state

    config = TrainConfig(**{**FAST, "iso": True, "iso_method": "joint", "iso_warmup_epochs": 1})
    result = train(tiny(), *data, config, tmp_path / "run")
    tensors, _ = read_state(tmp_path / "run" / "checkpoint")
    observed = data[0][0][:, 0].to(tensors["iso.initial_states"])
    moved = (tensors["iso.initial_states"] - observed).abs().max()
    assert 0 < moved < 1  # stepped by Adam at lr 1e-2 for 5 epochs
    losses = [r["train_loss"] for r in result.history]
    assert losses[-1] < losses[1]
    with pytest.raises(ValueError, match="iso_method must be 'lbfgs' or 'joint', got 'adam'"):
        TrainConfig(iso_method="adam")
