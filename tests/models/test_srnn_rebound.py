"""`srnn-rebound`: the reflection, the exact augmented step, the wall image and the model."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import physprior  # noqa: F401  (registers the envs)
from physprior.integrators import SplitField, get_integrator
from physprior.models import make
from physprior.models._wall_image import WallImage, env_wall_image
from physprior.models.srnn_rebound import rebound_step, reflect

BILLIARD = "physprior/HeavyBilliard-v0"
F64 = torch.float64


def _model(**config):
    torch.manual_seed(0)
    return make("srnn-rebound", obs_dim=4, dt=0.1, env_id=BILLIARD, **config).double()


def _true_flow(gravity: float):
    """Leapfrog on the billiard's true H = |p|^2 / 2 + g y: exact under constant gravity."""
    field = SplitField.from_separable(
        lambda p: p, lambda q: torch.stack([torch.zeros_like(q[:, 0]), -gravity + 0 * q[:, 1]], -1)
    )
    leapfrog = get_integrator("leapfrog")
    return lambda z, duration: leapfrog.advance(field, z, duration, 1)


def test_reflection_with_a_unit_normal_keeps_the_speed_and_undoes_itself() -> None:
    generator = torch.Generator().manual_seed(0)
    p = torch.randn(200, 2, generator=generator, dtype=F64)
    n = torch.randn(200, 2, generator=generator, dtype=F64)
    n = n / n.norm(dim=-1, keepdim=True)
    once = reflect(p, n)
    torch.testing.assert_close(once.norm(dim=-1), p.norm(dim=-1), rtol=0, atol=1e-14)
    torch.testing.assert_close(reflect(once, n), p, rtol=0, atol=1e-14)
    assert torch.equal(reflect(p, torch.zeros_like(n)), p)


def test_gamma_zero_is_exactly_the_plain_srnn_step() -> None:
    model = _model()
    last = model.rebound.gamma_net[-1]
    with torch.no_grad():
        last.weight.zero_()
        last.bias.fill_(-1e4)  # sigmoid(-1e4) == 0 exactly
    srnn = make("srnn", obs_dim=4, dt=0.1, hidden=32, iso=False).double()
    srnn.load_state_dict(model.state_dict(), strict=False)
    srnn.system.load_state_dict(model.system.state_dict())
    # States near and beyond the walls, where the module would otherwise act.
    z = torch.tensor(
        [[0.01, 0.5, -1.0, 0.2], [0.5, 0.02, 0.3, -1.2], [0.98, 0.97, 0.9, 0.8]], dtype=F64
    )
    terms = model.terms(z)
    assert torch.equal(terms.gamma, torch.zeros(3, dtype=F64))
    assert torch.equal(model.step(z), srnn.step(z))


def test_true_h_true_normal_and_exact_alpha_give_the_envs_exact_step() -> None:
    env = gym.make(BILLIARD).unwrapped
    flow = _true_flow(env.g)
    rng = np.random.default_rng(0)
    checked = 0
    for _ in range(3000):
        state = env.sample_initial_state(rng)
        state[2:] *= 1.5  # faster than the starting range: more bounces per draw
        events = env.wall_events(state)
        if len(events) != 1:
            continue
        time, normal = events[0]
        z = torch.tensor(state[None], dtype=F64)
        tentative = flow(z, torch.full((1, 1), env.dt, dtype=F64))
        n = torch.tensor(normal[None], dtype=F64)
        alpha = torch.tensor([time / env.dt], dtype=F64)
        stepped = rebound_step(flow, z, tentative, n, alpha, env.dt)
        exact = env._advance(state, np.zeros(2))
        np.testing.assert_allclose(stepped[0].numpy(), exact, rtol=0, atol=1e-10)
        checked += 1
    assert checked > 300  # the draw really contains many single bounces


def test_wall_events_name_the_wall_and_the_time() -> None:
    env = gym.make(BILLIARD).unwrapped
    # Moving left at 1 box/s from x = 0.02: the left wall after 0.02 s, no gravity along x.
    events = env.wall_events(np.array([0.02, 0.5, -1.0, 0.0]))
    assert len(events) == 1
    assert events[0][0] == pytest.approx(0.02, abs=1e-15)
    assert events[0][1].tolist() == [1.0, 0.0]
    # A corner: both walls at the same time.
    corner = env.wall_events(np.array([0.99, 0.99, 1.0, 1.0]))
    assert sorted(tuple(n) for _, n in corner) == [(-1.0, 0.0), (0.0, -1.0)]
    assert env.wall_events(np.array([0.5, 0.5, 0.1, 0.0])) == []


def test_wall_image_is_sampled_bilinearly_with_walls_outside() -> None:
    image, affine = env_wall_image(BILLIARD)
    walls = WallImage(image, affine).double()
    inside = walls.neighbourhood(torch.tensor([[0.5, 0.5]], dtype=F64), 10)
    assert inside.shape == (1, 100) and torch.equal(inside, torch.zeros_like(inside))
    far = walls.neighbourhood(torch.tensor([[5.0, -3.0]], dtype=F64), 10)
    assert torch.equal(far, torch.ones_like(far))
    # On the left wall's edge (x = 0): the 2 x 2 neighbourhood is half wall, half free.
    edge = walls.neighbourhood(torch.tensor([[0.0, 0.5]], dtype=F64), 2)
    torch.testing.assert_close(edge, torch.tensor([[1.0, 0.0, 1.0, 0.0]], dtype=F64))
    # Differentiable: moving into the wall raises the samples.
    q = torch.tensor([[0.002, 0.5]], dtype=F64, requires_grad=True)
    walls.neighbourhood(q, 2).sum().backward()
    assert q.grad is not None and q.grad[0, 0] < 0
    # A non-finite position is never an indexing error (its step is non-finite anyway).
    nowhere = torch.tensor([[np.nan, 0.5], [np.inf, -np.inf]], dtype=F64)
    assert walls.neighbourhood(nowhere, 2).shape == (2, 4)


def test_config_is_checked() -> None:
    with pytest.raises(TypeError, match="env_id is required"):
        make("srnn-rebound", obs_dim=4, dt=0.1)
    with pytest.raises(ValueError, match="has no wall image"):
        make("srnn-rebound", obs_dim=4, dt=0.1, env_id="physprior/MassSpring-v0")
    with pytest.raises(ValueError, match=r"\[x, y, px, py\] states"):
        make("srnn-rebound", obs_dim=2, dt=0.1, env_id=BILLIARD)
    with pytest.raises(ValueError, match="alpha_output must be 'relu' or 'sigmoid'"):
        make("srnn-rebound", obs_dim=4, dt=0.1, env_id=BILLIARD, alpha_output="tanh")
    with pytest.raises(ValueError, match="dynamics must be 'hnet' or 'onet'"):
        make("srnn-rebound", obs_dim=4, dt=0.1, env_id=BILLIARD, dynamics="mlp")


@pytest.mark.parametrize(
    "config",
    [{}, {"learn_alpha": False}, {"dynamics": "onet"}, {"alpha_output": "sigmoid"}],
    ids=["full", "no-alpha", "onet", "sigmoid-alpha"],
)
def test_gradients_reach_every_parameter_and_the_penalty_counts(config) -> None:
    model = _model(action_dim=0, **config)
    generator = torch.Generator().manual_seed(1)
    states = torch.rand(6, 5, 4, generator=generator, dtype=F64)
    states[..., 2:] = states[..., 2:] * 2 - 1
    actions = torch.zeros(6, 4, 0, dtype=F64)
    model.fit_normalization(states, actions)
    loss = model.training_loss(states, actions)
    loss.backward()
    unused = {"rebound.alpha_head"} if not model.config.learn_alpha else set()
    for name, parameter in model.named_parameters():
        if any(name.startswith(prefix) for prefix in unused):
            continue
        assert parameter.grad is not None and parameter.grad.abs().sum() > 0, name
    plain = make(
        "srnn-rebound", obs_dim=4, dt=0.1, env_id=BILLIARD, gamma_l1=0.0, **config
    ).double()
    plain.load_state_dict(model.state_dict())
    with torch.no_grad():
        gap = model.training_loss(states, actions) - plain.training_loss(states, actions)
    assert gap > 0  # the L1 penalty on gamma


def test_planar_billiard_model_in_the_learned_env(tmp_path) -> None:
    from physprior.training import save_model

    model = make("srnn-rebound", obs_dim=4, action_dim=2, dt=0.1, env_id=BILLIARD)
    save_model(model, tmp_path / "model")
    env = gym.make("physprior/Learned-v0", model_path=tmp_path / "model", base_env_id=BILLIARD)
    obs, _ = env.reset(seed=0)
    for _ in range(5):
        obs, reward, *_ = env.step(env.action_space.sample())
    assert obs.shape == (4,) and np.isfinite(obs).all() and np.isfinite(reward)


def test_the_command_line_trains_and_evaluates_it_on_billiard_data(tmp_path) -> None:
    from physprior.cli import main

    data, run = str(tmp_path / "b.npz"), str(tmp_path / "run")
    args = ["--trajectories", "12", "--length", "8", "--out", data, "--no-progress"]
    assert main(["generate", BILLIARD, *args]) == 0
    train = ["train", data, "--model", "srnn-rebound", "--epochs", "2", "--window", "4"]
    assert main([*train, "--out", run, "--schedule", "exponential", "--no-progress"]) == 0
    assert main(["eval", run, data, "--horizon", "4", "--json", str(tmp_path / "e.json")]) == 0
