"""Every registered model through the trainer, checkpoints and ISO on a small MassSpring set
(the heavy billiard for `srnn-rebound`, which needs a wall image)."""

from __future__ import annotations

import pytest
import torch

import physprior
from physprior.models import available_models, make, model_class
from physprior.training import TrainConfig, fit_initial_state, train

CONFIG = TrainConfig(epochs=2, batch_size=16, lr=1e-3, progress=False)


#: The env whose data a model trains on here, where it is not MassSpring.
ENV_OF = {"srnn-rebound": "physprior/HeavyBilliard-v0"}


def _windows(env_id: str):
    from physprior.data import generate_trajectories, make_windows, split_episodes

    ds = generate_trajectories(env_id, 8, 12, seed=0)
    train_ds, val_ds = split_episodes(ds, 0.25, seed=0)
    return make_windows(train_ds, 4, count=32, seed=0), make_windows(val_ds, 4, count=8, seed=0)


@pytest.fixture(scope="module")
def windows():
    return _windows("physprior/MassSpring-v0")


def _model(name: str, dt: float, env_id: str | None = None, obs_dim: int = 2, action_dim: int = 1):
    torch.manual_seed(0)
    extra = {"env_id": env_id} if env_id is not None else {}
    return make(name, obs_dim=obs_dim, action_dim=action_dim, dt=dt, hidden=8, layers=1, **extra)


#: Models that learn from states (pixel-vin learns from frames: tests/models/test_pixel_vin.py).
#: (`ensemble` trains member by member: tests/training/test_ensemble_training.py.)
STATE_MODELS = [
    name
    for name in available_models()
    if model_class(name).supports_initial_states and model_class(name).trained_as_one
]


@pytest.mark.parametrize("name", STATE_MODELS)
def test_train_resume_save_load_predict(tmp_path, windows, name):
    if name in ENV_OF:
        windows = _windows(ENV_OF[name])
    train_w, val_w = windows
    dt = train_w.meta.dt
    dims = {"obs_dim": train_w.states.shape[-1], "action_dim": train_w.actions.shape[-1]}
    if name in ENV_OF:
        dims["env_id"] = ENV_OF[name]
    full = train(_model(name, dt, **dims), train_w, val_w, CONFIG, tmp_path / "full")
    stop = lambda record: True  # noqa: E731 - interrupted after epoch 1
    train(_model(name, dt, **dims), train_w, val_w, CONFIG, tmp_path / "part", callback=stop)
    resumed = train(
        _model(name, dt, **dims), train_w, val_w, CONFIG, tmp_path / "part", resume=True
    )
    for (key, a), b in zip(
        full.model.state_dict().items(), resumed.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), key

    loaded = physprior.load_model(tmp_path / "full")
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, loaded.state_dict()[key]), key
    states, actions = val_w.to_torch(torch.float32)
    full.model.eval()
    with torch.no_grad():
        expected = full.model.rollout(states[:, 0], actions)
        assert torch.equal(expected, loaded.rollout(states[:, 0], actions))
    z0 = fit_initial_state(loaded, states, actions, iterations=2)
    assert z0.shape == states[:, 0].shape and torch.isfinite(z0).all()


def test_model_with_another_dt_is_refused(tmp_path, windows):
    train_w, val_w = windows
    with pytest.raises(ValueError, match="dt"):
        train(_model("mlp", 0.5), train_w, val_w, CONFIG, tmp_path / "run")
