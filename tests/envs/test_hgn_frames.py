"""HGN-style frames: 32x32 RGB blurred discs, one colour per body."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

import physprior  # noqa: F401  (registers the environments)
from physprior.data import FrameRenderer, render_frames
from physprior.envs._hgn_frames import HGN_BACKGROUND, HGN_COLOURS

HGN_SYSTEMS = {
    "physprior/MassSpring-v0": {"stiffness": 2.0, "mass": 0.5, "dt": 0.125},
    "physprior/Pendulum-v0": {"mass": 0.5, "gravity": 3.0, "dt": 0.125},
    "physprior/TwoBody-v0": {"separation_range": (1.0, 3.0), "dt": 0.125},
    "physprior/ThreeBody-v0": {"dt": 0.125},
}


@pytest.mark.parametrize("env_id", sorted(HGN_SYSTEMS))
def test_frames_are_batched_colour_images_in_unit_range(env_id: str) -> None:
    env = gym.make(env_id, render_mode="hgn", **HGN_SYSTEMS[env_id]).unwrapped
    states = np.stack([env.reset(seed=s)[0] for s in range(6)]).reshape(2, 3, -1)
    frames = env.hgn_frames(states)
    assert frames.shape == (2, 3, 32, 32, 3) and frames.dtype == np.float32
    assert frames.min() >= 0.0 and frames.max() <= 1.0
    np.testing.assert_array_equal(frames[1, 2], env.hgn_frames(states[1, 2]))
    # Mostly background, with blurred (intermediate) edges.
    background = np.all(np.isclose(frames[0, 0], HGN_BACKGROUND, atol=1e-6), axis=-1)
    assert 0.6 < background.mean() < 1.0
    env.reset(seed=0)
    assert env.render().shape == (32, 32, 3)


def test_each_body_has_its_own_colour_and_size() -> None:
    env = gym.make("physprior/ThreeBody-v0", **HGN_SYSTEMS["physprior/ThreeBody-v0"]).unwrapped
    state = np.zeros(12)
    state[:6] = [-2.0, 0.0, 0.0, 0.0, 2.0, 0.0]
    frame = env.hgn_frames(state)
    # The centres of the three discs (row 16: world y = 0) carry red, yellow and green.
    for column, colour in zip((5, 16, 26), HGN_COLOURS[[1, 0, 2]], strict=True):
        dominant = np.argmax(frame[16, column] - HGN_BACKGROUND)
        assert dominant == np.argmax(colour)
    spring = gym.make("physprior/MassSpring-v0", **HGN_SYSTEMS["physprior/MassSpring-v0"])
    disc = spring.unwrapped.hgn_frames(np.array([0.0, 0.0]))
    lit = np.any(disc > HGN_BACKGROUND + 0.05, axis=-1)
    assert 7 <= lit.sum(axis=0).max() <= 11  # a radius of 4 px, blurred


def test_the_spring_moves_vertically_and_the_pendulum_hangs_down() -> None:
    spring = gym.make("physprior/MassSpring-v0", **HGN_SYSTEMS["physprior/MassSpring-v0"])
    up, down = spring.unwrapped.hgn_frames(np.array([[-1.0, 0.0], [1.0, 0.0]]))
    rows_up = np.argmax(up.sum(axis=(1, 2)))
    assert np.argmax(up.sum(axis=(0, 2))) == np.argmax(down.sum(axis=(0, 2)))  # same column
    assert rows_up < np.argmax(down.sum(axis=(1, 2)))
    pendulum = gym.make("physprior/Pendulum-v0", **HGN_SYSTEMS["physprior/Pendulum-v0"])
    rest = pendulum.unwrapped.hgn_frames(np.array([0.0, 0.0]))
    assert np.argmax(rest.sum(axis=(1, 2))) > 16  # below the pivot at the centre


def test_envs_without_hgn_frames_and_bad_states_are_refused() -> None:
    chain = gym.make("physprior/SpringChain-v0").unwrapped
    with pytest.raises(NotImplementedError, match="no HGN-style frames"):
        chain.hgn_frames(np.zeros(chain.obs_dim))
    spring = gym.make("physprior/MassSpring-v0").unwrapped
    with pytest.raises(ValueError, match="NaN or infinite"):
        spring.hgn_frames(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match=r"expected \(\.\.\., 2\)"):
        spring.hgn_frames(np.zeros(3))
    with pytest.raises(ValueError, match="style must be one of"):
        render_frames(spring, np.zeros(2), "sepia")  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="physprior physics env"):
        FrameRenderer(object(), "hgn")


def test_renderer_draws_batches_of_state_windows_as_flat_frames() -> None:
    import torch

    spring = gym.make("physprior/MassSpring-v0", **HGN_SYSTEMS["physprior/MassSpring-v0"])
    renderer = FrameRenderer(spring, "hgn")
    states = torch.zeros(2, 5, 2, dtype=torch.float64)
    actions = torch.zeros(2, 4, 0, dtype=torch.float64)
    frames, same = renderer(states, actions)
    assert frames.shape == (2, 5, 3072) and frames.dtype == torch.float64 and same is actions
    expected = spring.unwrapped.hgn_frames(np.zeros(2)).reshape(-1)
    np.testing.assert_allclose(frames[1, 3].numpy(), expected, atol=1e-7)
