"""`PixelLearnedEnv`: a pixel model's latent dynamics as a Gymnasium env."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium.utils.env_checker import check_env

import physprior
from physprior.models import make

PENDULUM = "physprior/Pendulum-v0"
VIN_PENDULUM = {"gravity": 4.91, "start": "vin", "dt": 0.1}


def _model(dynamics: str = "so2"):
    torch.manual_seed(0)
    return make(
        "pixel-vin",
        dt=0.1,
        dynamics=dynamics,
        hidden=16,
        encoder_hidden=24,
        decoder_hidden=24,
        lstm_hidden=8,
    )


# A latent has no bounds; Gymnasium's checker warns about any unbounded Box.
@pytest.mark.filterwarnings("ignore:.*Box observation space (min|max)imum value is")
@pytest.mark.parametrize("observation", ["frame", "latent"])
def test_passes_gymnasiums_checker(observation: str) -> None:
    env = physprior.PixelLearnedEnv(
        _model(), PENDULUM, base_env_kwargs=VIN_PENDULUM, observation=observation
    )
    check_env(env, skip_render_check=True)


def test_reset_infers_the_latent_from_the_true_first_frames() -> None:
    model = _model("vv").eval()
    env = gym.make(
        "physprior/PixelLearned-v0",
        model=model,
        base_env_id=PENDULUM,
        base_env_kwargs=VIN_PENDULUM,
        max_episode_steps=3,
    )
    frame, info = env.reset(seed=4)
    assert frame.shape == (28, 28) and frame.dtype == np.float32
    # The same inference by hand: the base env's first 10 frames from the same seed.
    base = gym.make(PENDULUM, **VIN_PENDULUM).unwrapped
    states = [base.reset(seed=4)[0]]
    for _ in range(9):
        states.append(base.step(np.zeros(1))[0])
    frames = torch.as_tensor(base.binary_frames(np.stack(states)).reshape(1, 10, 784)).float()
    path, _ = model.latent_rollout(frames, 9)
    np.testing.assert_allclose(info["latent"], path[0, -1].detach().numpy(), rtol=1e-6)
    for step in range(3):
        frame, reward, terminated, truncated, info = env.step(np.zeros(0, dtype=np.float32))
        assert reward == 0.0 and not terminated and truncated == (step == 2)
    expected = torch.sigmoid(model.decode(torch.as_tensor(info["latent"])[None]))
    np.testing.assert_allclose(frame.reshape(-1), expected[0].detach().numpy(), atol=1e-6)


def test_reward_fn_reads_latents_and_render_draws_the_frame() -> None:
    seen = []

    def reward(latent, action, next_latent):
        seen.append((latent.shape, action.shape, next_latent.shape))
        return float(next_latent[0])

    env = physprior.PixelLearnedEnv(
        _model(), PENDULUM, base_env_kwargs=VIN_PENDULUM, reward_fn=reward, render_mode="rgb_array"
    )
    env.reset(seed=0)
    _, r, _, _, info = env.step(np.zeros(0))
    assert seen == [((2,), (0,), (2,))] and r == pytest.approx(float(info["latent"][0]))
    image = env.render()
    assert image.shape == (28, 28, 3) and image.dtype == np.uint8


def test_mistakes_are_refused_with_one_line() -> None:
    with pytest.raises(TypeError, match="needs a pixel model"):
        physprior.PixelLearnedEnv(make("vin", obs_dim=2, dt=0.1), PENDULUM)
    with pytest.raises(ValueError, match=r"model has dt 0.1 \(its frame spacing\), but"):
        physprior.PixelLearnedEnv(_model(), PENDULUM)  # the default pendulum: dt 1/15
    with pytest.raises(ValueError, match="observation must be 'frame' or 'latent'"):
        physprior.PixelLearnedEnv(_model(), PENDULUM, base_env_kwargs=VIN_PENDULUM, observation="x")
    env = physprior.PixelLearnedEnv(_model(), PENDULUM, base_env_kwargs=VIN_PENDULUM)
    with pytest.raises(RuntimeError, match="before reset"):
        env.step(np.zeros(0))
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"action has shape \(1,\), expected \(0,\)"):
        env.step(np.zeros(1))
    with pytest.raises(TypeError, match=r"use physprior\.PixelLearnedEnv"):
        physprior.LearnedDynamicsEnv(_model(), PENDULUM)


# ---------------------------------------------------------------------------- HGN
HGN_SPRING = {"stiffness": 2.0, "mass": 0.5, "radius_range": (0.1, 1.0), "dt": 0.125}


def _hgn(**config):
    torch.manual_seed(0)
    return make("hgn", dt=0.125, inference_frames=4, **config)


def test_hgn_world_is_an_env_whose_observation_is_the_colour_frame() -> None:
    model = _hgn(action_dim=1).eval()
    env = gym.make(
        "physprior/PixelLearned-v0",
        model=model,
        base_env_id="physprior/MassSpring-v0",
        base_env_kwargs=HGN_SPRING,
        max_episode_steps=5,
        render_mode="rgb_array",
    )
    check_env(env.unwrapped, skip_render_check=True)
    frame, info = env.reset(seed=3)
    assert frame.shape == (32, 32, 3) and frame.dtype == np.float32
    # The latent is inferred from the base env's first 4 HGN frames.
    base = gym.make("physprior/MassSpring-v0", **HGN_SPRING).unwrapped
    states = [base.reset(seed=3)[0]]
    for _ in range(3):
        states.append(base.step(np.zeros(1))[0])
    frames = torch.as_tensor(base.hgn_frames(np.stack(states)).reshape(1, 4, 3072))
    path, _ = model.latent_rollout(frames, 3)
    np.testing.assert_allclose(info["latent"], path[0, -1].detach().numpy(), rtol=1e-5, atol=1e-6)
    # An action moves the latent: the agent acts in HGN's world.
    pushed = env.step(np.ones(1, dtype=np.float32))[4]["latent"]
    env.reset(seed=3)
    still = env.step(np.zeros(1, dtype=np.float32))[4]["latent"]
    assert not np.allclose(pushed, still)
    image = env.render()
    assert image.shape == (32, 32, 3) and image.dtype == np.uint8


def test_hgn_world_refuses_a_base_env_without_hgn_frames() -> None:
    with pytest.raises(ValueError, match="cannot draw hgn frames"):
        physprior.PixelLearnedEnv(_hgn(), "physprior/SpringChain-v0", base_env_kwargs={"dt": 0.125})
