"""`hgn`: the Hamiltonian Generative Network, and its PixelHNN baseline."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch

import physprior  # noqa: F401  (registers the environments)
from physprior.data import FrameRenderer, generate_trajectories, make_windows
from physprior.models import make
from physprior.training import TrainConfig, load_model, train

#: A small HGN on 8x8 frames: a 1x1 state map of 2 + 2 channels.
TINY = {
    "dt": 0.125,
    "frame_size": 8,
    "state_channels": 2,
    "obs_dim": 4,
    "inference_frames": 3,
    "hidden": 16,
}


def _hgn(**config):
    torch.manual_seed(0)
    return make("hgn", **(TINY | config))


def _strong(model):
    """`model` with its Hamiltonian's weights tripled: at initialisation H is nearly flat,
    and a step that barely moves would pass the structure checks trivially."""
    with torch.no_grad():
        for net in (model.kinetic, model.potential, model.joint):
            for parameter in [] if net is None else net.parameters():
                parameter.mul_(3.0)
    return model


def _frames(batch: int = 3, steps: int = 6, pixels: int = 8 * 8 * 3) -> torch.Tensor:
    return torch.rand(batch, steps, pixels, generator=torch.Generator().manual_seed(1))


# ---------------------------------------------------------------------------- structure
@pytest.mark.parametrize("preset", ["reduced", "paper"])
def test_leapfrog_is_reversible_in_float64(preset: str) -> None:
    # N steps forward, then N steps with -dt, return to the start: the Stormer-Verlet map of
    # a separable H is time-symmetric.
    torch.manual_seed(0)
    model = _strong(make("hgn", dt=0.125, preset=preset).double().eval())
    torch.manual_seed(2)
    start = torch.randn(4, model.obs_dim, dtype=torch.float64)
    with torch.no_grad():
        z = start
        for _ in range(20):
            z = model.step(z)
        assert float((z - start).abs().max()) > 0.1  # it went somewhere
        for _ in range(20):
            z = model.latent_step(z, None, -0.125)
    assert float((z - start).abs().max()) < 1e-10


def test_leapfrog_step_has_jacobian_determinant_one() -> None:
    model = _strong(_hgn(hidden=32).double().eval())
    z = torch.randn(model.obs_dim, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda x: model.step(x[None])[0], z)
    assert abs(float(torch.linalg.det(jacobian.detach())) - 1.0) < 1e-10
    # The same holds at the paper's size (512 latent dimensions): log |det| = 0.
    paper = _strong(make("hgn", dt=0.125, preset="paper").double().eval())
    big = torch.randn(paper.obs_dim, dtype=torch.float64) * 0.3
    jacobian = torch.autograd.functional.jacobian(lambda x: paper.step(x[None])[0], big)
    sign, log_det = torch.linalg.slogdet(jacobian.detach())
    assert float(sign) == 1.0 and abs(float(log_det)) < 1e-9


def test_euler_is_not_volume_preserving() -> None:
    # The check above can fail: Euler's map scales volume.
    model = _strong(_hgn(hidden=32, scheme="euler").double().eval())
    z = torch.randn(model.obs_dim, dtype=torch.float64)
    jacobian = torch.autograd.functional.jacobian(lambda x: model.step(x[None])[0], z)
    assert abs(float(torch.linalg.det(jacobian.detach())) - 1.0) > 1e-6


def test_decoder_does_not_depend_on_momentum() -> None:
    model = _hgn().eval()
    z = torch.randn(5, model.obs_dim)
    other = z.clone()
    other[:, model.q_dim :] = torch.randn(5, model.obs_dim - model.q_dim) * 10
    assert torch.equal(model.decode_frames(z), model.decode_frames(other))
    z.requires_grad_(True)
    model.decode_frames(z).sum().backward()
    assert z.grad is not None
    assert float(z.grad[:, model.q_dim :].abs().max()) == 0.0
    assert float(z.grad[:, : model.q_dim].abs().max()) > 0.0


def test_leapfrog_keeps_the_learned_energy_where_euler_drifts() -> None:
    model = _strong(_hgn(hidden=32).double().eval())
    euler = _hgn(hidden=32, scheme="euler").double().eval()
    euler.load_state_dict(model.state_dict())
    z0 = torch.randn(8, model.obs_dim, dtype=torch.float64)
    with torch.no_grad():
        path = model.rollout(z0, torch.zeros(8, 200, 0, dtype=torch.float64))
        drift = euler.rollout(z0, torch.zeros(8, 200, 0, dtype=torch.float64))
        spread = model.energy(path).var(dim=1).mean()
        euler_spread = euler.energy(drift).var(dim=1).mean()
    assert float(euler_spread) > 10 * float(spread)


def test_non_separable_hamiltonian_steps_and_trains() -> None:
    model = _hgn(separable=False).train()
    loss = model.training_loss(_frames(), torch.zeros(3, 5, 0))
    loss.backward()
    assert model.joint is not None
    assert all(p.grad is not None for p in model.joint.parameters())


def test_paper_preset_is_the_appendix_architecture() -> None:
    model = make("hgn", dt=0.125, preset="paper")
    c = model.config
    assert (c.encoder_filters, c.latent_channels, c.transformer_filters) == (64, 48, 64)
    assert (c.hamiltonian, c.hamiltonian_filters, c.decoder_filters) == ("conv", 64, 64)
    assert c.inference_frames == 31 and model.obs_dim == 512
    convs = [m for m in model.encoder.modules() if isinstance(m, torch.nn.Conv2d)]
    assert [m.out_channels for m in convs] == [32, 64, 64, 64, 64, 64, 64, 48, 48]
    assert len(model.transformer.net) == 5  # three convolutions, two ReLUs
    assert model.kinetic is not None
    energy_convs = [m for m in model.kinetic.modules() if isinstance(m, torch.nn.Conv2d)]
    assert len(energy_convs) == 6 and all(m.out_channels == 64 for m in energy_convs)
    frames = torch.rand(1, 31, 3072)
    assert model.predict_frames(frames, 3).shape == (1, 4, 3072)


# ---------------------------------------------------------------------------- training
def test_loss_trains_every_part_and_geco_moves() -> None:
    model = _hgn().train()
    loss = model.training_loss(_frames(), torch.zeros(3, 5, 0))
    assert loss.ndim == 0 and math.isfinite(float(loss.detach()))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # Random frames are far above the tolerance: the multiplier on the constraint grows.
    assert float(model.geco_lambda) > 1.0 and bool(model.geco_started)
    with torch.no_grad():  # validation leaves GECO alone
        before = float(model.geco_lambda)
        model.eval().training_loss(_frames(), torch.zeros(3, 5, 0))
    assert float(model.geco_lambda) == before


def test_deterministic_variant_has_no_kl_and_no_sampling() -> None:
    model = _hgn(variational=False).train()
    assert model.encoder.log_var is None
    frames = _frames()
    first = model.training_loss(frames, torch.zeros(3, 5, 0))
    second = model.training_loss(frames, torch.zeros(3, 5, 0))
    assert torch.equal(first, second)
    predicted = model.predict_frames(frames, 5)
    assert torch.allclose(first, (predicted - frames).square().mean(), atol=1e-6)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"obs_dim": 6}, "obs_dim must be 2 x state_channels"),
        ({"frame_size": 12}, "frame_size must be a multiple of 8"),
        ({"scheme": "rk4"}, "scheme must be"),
        ({"preset": "huge"}, "preset must be one of"),
        ({"geco_alpha": 1.0}, "geco_alpha must be in"),
        ({"hamiltonian": "conv"}, "convolutional Hamiltonian reads a 4 x 4"),
    ],
)
def test_bad_config_is_refused_in_one_line(config: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message) as info:
        _hgn(**config)
    assert "\n" not in str(info.value)


def test_bad_frames_are_refused_in_one_line() -> None:
    model = _hgn()
    with pytest.raises(ValueError, match=r"expected \(B, T, 192\) frames of 8 x 8 x 3"):
        model.predict_frames(torch.rand(2, 4, 100), 3)
    with pytest.raises(ValueError, match="the encoder reads the first inference_frames=3"):
        model.predict_frames(torch.rand(2, 2, 192), 3)
    bad = torch.rand(2, 4, 192)
    bad[0, 1, 5] = float("nan")
    with pytest.raises(ValueError, match="NaN or infinite"):
        model.predict_frames(bad, 3)
    with pytest.raises(ValueError, match="values in \\[0, 1\\]"):
        model.fit_normalization(torch.rand(2, 4, 192) * 3, torch.zeros(2, 3, 0))


def _spring_states(count: int = 24) -> tuple[gym.Env, np.ndarray]:
    kwargs = {"stiffness": 2.0, "mass": 0.5, "radius_range": (0.1, 1.0), "dt": 0.125}
    env = gym.make("physprior/MassSpring-v0", **kwargs)
    data = generate_trajectories(
        "physprior/MassSpring-v0", count, 6, seed=0, env_kwargs=kwargs, progress=False
    )
    return env, make_windows(data, 6).states


def test_trains_on_states_drawn_per_batch_and_resumes_exactly(tmp_path) -> None:
    env, states = _spring_states()
    renderer = FrameRenderer(env, "hgn")
    config = TrainConfig(
        epochs=2, batch_size=8, lr=1.5e-4, seed=0, progress=False, checkpoint_every=1
    )
    full = train(
        _hgn(frame_size=32, obs_dim=64),
        (states, None),
        None,
        config,
        tmp_path / "a",
        transform=renderer,
    )
    # Stop after one epoch, then resume: the same weights and GECO state as straight through.
    train(
        _hgn(frame_size=32, obs_dim=64),
        (states, None),
        None,
        config,
        tmp_path / "b",
        transform=renderer,
        callback=lambda record: record["epoch"] >= 1,
    )
    resumed = train(
        _hgn(frame_size=32, obs_dim=64),
        (states, None),
        None,
        config,
        tmp_path / "b",
        resume=True,
        transform=renderer,
    )
    for key, value in full.model.state_dict().items():
        assert torch.equal(value, resumed.model.state_dict()[key]), key
    loaded = load_model(tmp_path / "a" / "model")
    assert float(loaded.geco_lambda) == float(full.model.geco_lambda)


def test_a_transform_is_checked_against_the_model() -> None:
    env, states = _spring_states(4)
    config = TrainConfig(epochs=1, batch_size=4, progress=False)
    with pytest.raises(ValueError, match="frame pixels 192"):
        train(
            _hgn(),
            (states, None),
            None,
            config,
            "/tmp/never-written-hgn",
            transform=FrameRenderer(env, "hgn"),
        )


# ---------------------------------------------------------------------------- PixelHNN
def _pixel_hnn(**config):
    torch.manual_seed(0)
    return make(
        "pixel-hnn",
        **({"dt": 0.125, "frame_pixels": 48, "coder_hidden": 16, "hidden": 16} | config),
    )


def test_pixel_hnn_loss_has_its_four_terms_and_trains_every_part() -> None:
    model = _pixel_hnn().train()
    frames = torch.rand(4, 5, 48)
    loss = model.training_loss(frames, torch.zeros(4, 4, 0))
    loss.backward()
    for name, parameter in model.named_parameters():
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    # Only the autoencoder term left: the pair's reconstruction MSE.
    bare = _pixel_hnn(hnn_weight=0.0, consistency_weight=0.0, weight_decay=0.0)
    pairs = torch.cat((frames[:, :-1], frames[:, 1:]), dim=-1)
    expected = (bare.decoder(bare.encoder(pairs)) - pairs).square().mean()
    assert torch.allclose(bare.training_loss(frames, torch.zeros(4, 4, 0)), expected)


def test_pixel_hnn_rollout_conserves_its_energy() -> None:
    model = _pixel_hnn(obs_dim=4).double().eval()
    z0 = torch.randn(6, 4, dtype=torch.float64)
    with torch.no_grad():
        path = model.rollout(z0, torch.zeros(6, 100, 0, dtype=torch.float64))
        energy = model.energy(path)
    assert float((energy - energy[:, :1]).abs().max()) < 1e-6


def test_pixel_hnn_refuses_windows_too_short_for_a_difference() -> None:
    with pytest.raises(ValueError, match="T >= 3"):
        _pixel_hnn().training_loss(torch.rand(2, 2, 48), torch.zeros(2, 1, 0))


@pytest.mark.parametrize("name", ["hgn", "pixel-hnn"])
def test_trainer_options_they_cannot_honour_are_refused(name: str) -> None:
    model = _hgn() if name == "hgn" else _pixel_hnn()
    frames = torch.rand(2, 4, model.data_dim)
    actions = torch.zeros(2, 3, model.action_dim)
    with pytest.raises(ValueError, match=f"{name}'s loss is .*; leave the trainer's loss at 'l2'"):
        model.training_loss(frames, actions, loss="l1")
    with pytest.raises(ValueError, match="infers its initial states with its encoder"):
        model.training_loss(frames, actions, initial_states=torch.zeros(2, 4))
