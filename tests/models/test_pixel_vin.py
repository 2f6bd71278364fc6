"""`pixel-vin`: the VIN pixel model (encoder, latent VIN or ResNet, Bernoulli decoder)."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import physprior
from physprior.data import frame_windows, generate_trajectories, make_windows, render_frames
from physprior.models import make
from physprior.training import TrainConfig, train

DYNAMICS = ("vv", "sv", "so2", "resnet")
SMALL = {"hidden": 16, "encoder_hidden": 24, "decoder_hidden": 24, "lstm_hidden": 8}


def _model(dynamics: str = "vv", **config):
    torch.manual_seed(0)
    return make("pixel-vin", dt=0.1, dynamics=dynamics, **(SMALL | config))


def _pendulum_frames(length: int = 24, windows: int = 12, width: int = 11):
    env = gym.make("physprior/Pendulum-v0", gravity=4.91, start="vin", dt=0.1)
    ds = generate_trajectories(
        "physprior/Pendulum-v0",
        1,
        length,
        seed=0,
        env_kwargs={"gravity": 4.91, "start": "vin", "dt": 0.1},
    )
    frames, _ = frame_windows(make_windows(ds, width, seed=0), env)
    return frames[:windows], None  # the autonomous system: no action input


@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_loss_trains_every_part(dynamics: str) -> None:
    model = _model(dynamics).train()
    frames = torch.rand(4, 11, 784).round()
    loss = model.training_loss(frames, torch.zeros(4, 10, 0))
    assert loss.ndim == 0 and math.isfinite(float(loss.detach()))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name


def test_shared_frames_are_encoded_once_with_the_same_result() -> None:
    model = _model("vv")
    trajectory = torch.rand(20, 784).round()
    frames = trajectory[torch.arange(8)[:, None] + torch.arange(10)]
    direct = model.frame_encoder(frames)
    assert torch.allclose(model._encode_frames(frames), direct, atol=1e-6)


def test_the_initial_state_reads_every_inference_frame() -> None:
    # The authors' Keras code read only the last frame (go_backwards outputs come reversed).
    model = _model("vv")
    frames = torch.rand(1, 10, 784).round().requires_grad_(True)
    z0, _ = model.infer_initial_state(frames)
    (grad,) = torch.autograd.grad(z0.sum(), frames)
    assert (grad[0].abs().sum(-1) > 0).all()


def test_kl_is_the_authors() -> None:
    from torch.distributions import Normal, kl_divergence

    model = _model("vv", step_size=0.5)
    mean, std = torch.randn(3, 10, 2), torch.rand(3, 10, 2) + 0.1
    prior = torch.tensor([1.0, 0.5]).expand(3, 10, 2)
    expected = kl_divergence(Normal(mean, std), Normal(0.0, prior)).sum(dim=(1, 2))
    assert torch.allclose(model._kl(mean, std), expected, atol=1e-5)
    so2 = _model("so2")  # h = 0.1: increments of the per-frame positions
    mean, std = torch.randn(3, 10, 1), torch.rand(3, 10, 1) + 0.1
    first = kl_divergence(Normal(mean[:, :2], std[:, :2]), Normal(0.0, 1.0)).sum(dim=(1, 2))
    steps = kl_divergence(
        Normal(mean[:, 2:] - mean[:, 1:-1], std[:, 2:] + std[:, 1:-1]), Normal(0.0, 0.1)
    ).sum(dim=(1, 2))
    assert torch.allclose(so2._kl(mean, std), first + steps, atol=1e-4)


def test_latent_steps_are_the_schemes() -> None:
    so2 = _model("so2").double()
    assert so2.h == 0.1 and _model("vv").h == 1.0  # the authors' pixel steps
    z = torch.randn(64, 2, dtype=torch.float64) * 3
    nxt = so2.step(z)
    assert torch.equal(nxt[:, 1], z[:, 0])  # (q_t, q_{t-1}) -> (q_{t+1}, q_t)
    assert (nxt[:, 0] - z[:, 0]).abs().max() < math.pi / 2
    expected = so2.dynamics.position_step(z[:, :1], z[:, 1:])
    assert torch.equal(nxt[:, :1], expected)
    # The so2 decoder reads (sin q, cos q): a turn later it draws the same frame.
    assert torch.allclose(
        so2.decode(z), so2.decode(z + torch.tensor([2 * math.pi, 0.0], dtype=torch.float64))
    )


def test_predicted_frames_line_up_with_the_input() -> None:
    for dynamics in DYNAMICS:
        model = _model(dynamics).eval()
        frames = torch.rand(2, 12, 784).round()
        probabilities = model.predict_frames(frames, steps=15)
        assert probabilities.shape == (2, 16, 784)
        assert ((probabilities > 0) & (probabilities < 1)).all()


def test_trainer_checkpoint_and_resume(tmp_path) -> None:
    frames, actions = _pendulum_frames()
    assert frames.shape == (12, 11, 784) and set(np.unique(frames)) == {0.0, 1.0}
    config = TrainConfig(epochs=4, batch_size=6, lr=3e-4, seed=0, progress=False)
    result = train(_model("so2"), (frames, actions), None, config, tmp_path / "run")
    first = result.history[0]["train_loss"]
    assert all(math.isfinite(r["train_loss"]) for r in result.history)
    loaded = physprior.load_model(tmp_path / "run").eval()
    check = torch.from_numpy(frames[:2])
    assert torch.equal(
        loaded.predict_frames(check, 5), result.model.eval().predict_frames(check, 5)
    )

    stop_after_two = lambda record: record["epoch"] == 2  # noqa: E731
    train(_model("so2"), (frames, actions), None, config, tmp_path / "cut", callback=stop_after_two)
    resumed = train(_model("so2"), (frames, actions), None, config, tmp_path / "cut", resume=True)
    for a, b in zip(resumed.model.parameters(), result.model.parameters(), strict=True):
        assert torch.equal(a, b)
    assert resumed.history[0]["train_loss"] == first


def test_a_short_fit_lowers_the_loss(tmp_path) -> None:
    frames, actions = _pendulum_frames()
    config = TrainConfig(epochs=60, batch_size=12, lr=3e-3, seed=0, progress=False)
    result = train(_model("vv"), (frames, actions), None, config, tmp_path / "run")
    losses = [r["train_loss"] for r in result.history]
    # From a coin flip per pixel (784 ln 2 = 543 nats a frame) to well below.
    assert losses[0] > 400 * 11 and losses[-1] < 0.4 * losses[0]


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"dynamics": "rk4"}, "dynamics must be one of vv, sv, so2, resnet"),
        ({"obs_dim": 3}, "obs_dim=3 needs q_dim=1"),
        ({"step_size": -1.0}, "step_size must be None or a number > 0"),
        ({"inference_frames": 1}, "inference_frames must be >= 2"),
    ],
)
def test_bad_configs_are_refused(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make("pixel-vin", dt=0.1, **config)


def test_bad_training_input_is_refused(tmp_path) -> None:
    frames, actions = _pendulum_frames()
    config = TrainConfig(epochs=1, progress=False)
    with pytest.raises(ValueError, match=r"frames with values in \[0, 1\]"):
        train(_model(), (frames * 2, actions), None, config, tmp_path / "a")
    with pytest.raises(ValueError, match="expects frame pixels 784 / action_dim 0, data has 2"):
        train(_model(), (np.zeros((3, 11, 2)), None), None, config, tmp_path / "b")
    with pytest.raises(ValueError, match=r"iso .* does not apply to 'pixel-vin'"):
        train(_model(), (frames, actions), None, TrainConfig(epochs=1, iso=True), tmp_path / "c")
    with pytest.raises(ValueError, match="leave the trainer's loss at 'l2'"):
        train(_model(), (frames, actions), None, TrainConfig(epochs=1, loss="l1"), tmp_path / "d")
    with pytest.raises(ValueError, match="frames hold NaN or infinite values"):
        _model().predict_frames(torch.full((1, 10, 784), float("nan")), 3)
    with pytest.raises(ValueError, match="the encoder needs at least inference_frames=10"):
        _model().predict_frames(torch.zeros(1, 5, 784), 3)
    with pytest.raises(TypeError, match="env must be a physprior physics env"):
        render_frames(object(), np.zeros((2, 2)))


def test_layers_start_as_keras_starts_them() -> None:
    model = _model("vv", encoder_hidden=1000)
    first = model.frame_encoder[0]
    limit = math.sqrt(6.0 / (784 + 1000))  # Glorot-uniform
    assert first.weight.abs().max() <= limit and first.weight.abs().max() > 0.9 * limit
    assert torch.equal(first.bias, torch.zeros_like(first.bias))
    lstm = model.lstm
    units = lstm.hidden_size
    assert torch.equal(lstm.bias_ih_l0[units : 2 * units], torch.ones(units))  # forget gate
    assert lstm.bias_ih_l0[:units].abs().sum() == 0 and lstm.bias_hh_l0.abs().sum() == 0
    recurrent = lstm.weight_hh_l0.detach()  # (4 units, units): orthonormal columns
    assert torch.allclose(recurrent.T @ recurrent, torch.eye(units), atol=1e-5)
