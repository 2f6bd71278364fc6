"""`train_ensemble`: bootstrap resamples per member, one run folder, resume, one checkpoint."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physprior.models import make
from physprior.training import TrainConfig, load_model, save_model, train, train_ensemble
from physprior.training._ensemble import bootstrap_indices, member_seed

FAST = {"epochs": 4, "batch_size": 16, "lr": 1e-2, "lr_min": 1e-4, "progress": False}


def _ensemble(size: int = 3, seed: int = 0):
    torch.manual_seed(seed)
    return make(
        "ensemble", member="mlp", size=size, obs_dim=2, action_dim=1, dt=0.3,
        member_config={"hidden": 16, "layers": 1},
    )  # fmt: skip


@pytest.fixture
def data(windows):
    train_s, train_a, _ = windows(40, 3, seed=1, noise=0.01)
    val_s, val_a, _ = windows(12, 3, seed=2)
    return (train_s, train_a), (val_s, val_a)


def _weights(model) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in model.state_dict().items()}


def test_bootstrap_resamples_differ_per_member_and_repeat_per_seed():
    draws = [bootstrap_indices(1000, seed=0, member=k) for k in range(3)]
    assert all(len(d) == 1000 and d.min() >= 0 and d.max() < 1000 for d in draws)
    assert not np.array_equal(draws[0], draws[1])
    assert np.array_equal(draws[0], bootstrap_indices(1000, seed=0, member=0))
    # With replacement: about 1 - 1/e of the windows appear.
    assert 0.60 < len(np.unique(draws[0])) / 1000 < 0.66
    assert member_seed(0, 0) != member_seed(0, 1) != member_seed(1, 0)


def test_members_train_on_their_own_resample_and_the_run_saves_one_checkpoint(tmp_path, data):
    result = train_ensemble(_ensemble(), *data, TrainConfig(**FAST), tmp_path / "run")
    assert result.completed and len(result.members) == 3
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == [
        "initial", "member-0", "member-1", "member-2", "model",
    ]  # fmt: skip
    # Each member's normalisers were fitted on its own resample.
    means = [m.state_norm.mean for m in result.model.members]
    assert not torch.equal(means[0], means[1])
    # The ensemble's own: the whole training set's (what a learned env's bound reads).
    states = data[0][0]
    torch.testing.assert_close(result.model.state_norm.mean, states.reshape(-1, 2).mean(0))
    loaded = load_model(tmp_path / "run")
    assert loaded.name == "ensemble" and loaded.size == 3
    z, u = data[1][0][:, 0], data[1][1][:, 0]
    with torch.no_grad():
        assert torch.equal(loaded.members_step(z, u), result.model.members_step(z, u))
    # Each member learned: its validation loss is below its first epoch's.
    for member in result.members:
        assert member.history[-1]["val_loss"] < member.history[0]["val_loss"]


def test_without_bootstrap_members_see_every_window(tmp_path, data):
    result = train_ensemble(
        _ensemble(2), *data, TrainConfig(**FAST), tmp_path / "run", bootstrap=False
    )
    means = [m.state_norm.mean for m in result.model.members]
    assert torch.equal(means[0], means[1])  # the same windows, so the same normalisers
    assert not torch.equal(*(next(m.parameters()) for m in result.model.members))


def test_save_and_load_give_identical_predictions(tmp_path):
    ensemble = make("ensemble", member="node-so", size=2, obs_dim=4, action_dim=1, dt=0.1)
    save_model(ensemble, tmp_path / "ckpt")
    loaded = load_model(tmp_path / "ckpt")
    z, u = torch.randn(7, 4), torch.randn(7, 1)
    with torch.no_grad():
        assert torch.equal(loaded.members_step(z, u), ensemble.eval().members_step(z, u))
    assert loaded.config == ensemble.config


class _Killed(Exception):
    """Stands for a kill mid-run."""


def test_killed_and_resumed_equals_uninterrupted(tmp_path, data):
    config = TrainConfig(**FAST)
    full = train_ensemble(_ensemble(), *data, config, tmp_path / "full")
    epochs_seen = []

    def kill_in_the_second_member(record):
        epochs_seen.append(record["epoch"])
        if len(epochs_seen) == FAST["epochs"] + 2:
            raise _Killed

    with pytest.raises(_Killed):
        train_ensemble(
            _ensemble(), *data, config, tmp_path / "part", callback=kill_in_the_second_member
        )
    assert not (tmp_path / "part" / "model").exists()
    # A fresh process: untrained members with other weights; the folder holds the rest.
    resumed = train_ensemble(_ensemble(seed=7), *data, config, tmp_path / "part", resume=True)
    full_weights, resumed_weights = _weights(full.model), _weights(resumed.model)
    assert full_weights.keys() == resumed_weights.keys()
    for key, value in full_weights.items():
        assert torch.equal(value, resumed_weights[key]), key


def test_an_existing_run_and_a_plain_model_are_refused(tmp_path, data, tiny):
    train_ensemble(_ensemble(2), *data, TrainConfig(**FAST), tmp_path / "run")
    with pytest.raises(FileExistsError, match="already holds an ensemble run; resume it"):
        train_ensemble(_ensemble(2), *data, TrainConfig(**FAST), tmp_path / "run")
    with pytest.raises(TypeError, match="train_ensemble trains a physprior ensemble"):
        train_ensemble(tiny(), *data, TrainConfig(**FAST), tmp_path / "other")
    with pytest.raises(TypeError, match="'ensemble' model is not trained as one model"):
        train(_ensemble(2), *data, TrainConfig(**FAST), tmp_path / "plain")
    assert not (tmp_path / "plain").exists()
