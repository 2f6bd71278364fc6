"""The VIN-style 28x28 binary frames agree with the authors' matplotlib drawing."""

from __future__ import annotations

import gymnasium as gym
import matplotlib
import numpy as np
import pytest

import physprior  # noqa: F401  (registers the envs)
from physprior.envs.mass_spring import MassSpringEnv
from physprior.envs.pendulum import PendulumEnv

matplotlib.use("Agg")
import matplotlib.pyplot as plt


def _authors_frames(draw, limit: float, count: int) -> np.ndarray:
    """Frames drawn the VIN authors' way: 1 inch at 28 dpi, pure black pixels only."""
    figure, axes = plt.subplots(figsize=(1, 1), dpi=28)
    frames = []
    for i in range(count):
        axes.cla()
        axes.set_xlim(-limit, limit)
        axes.set_ylim(-limit, limit)
        draw(axes, i)
        axes.axis("off")
        figure.canvas.draw()
        red = np.asarray(figure.canvas.buffer_rgba())[:, :, 0]
        frames.append((red == 0).astype(np.uint8))
    plt.close(figure)
    return np.stack(frames)


def test_pendulum_frames_match_matplotlib() -> None:
    q = np.random.default_rng(0).uniform(-np.pi, np.pi, 60)
    ours = PendulumEnv().binary_frames(np.stack((q, 0 * q), axis=-1))
    theirs = _authors_frames(
        lambda ax, i: ax.plot([0, np.sin(q[i])], [0, -np.cos(q[i])], linewidth=12, color="black"),
        1.2,
        len(q),
    )
    assert ours.shape == theirs.shape == (60, 28, 28)
    rod = theirs.sum(axis=(1, 2)).mean()
    assert 35 < rod < 55  # a rod about 4.7 pixels wide and 9 long
    assert (ours != theirs).sum(axis=(1, 2)).mean() < 2.0


def test_spring_frames_match_matplotlib_exactly() -> None:
    q = np.random.default_rng(1).uniform(-1.5, 1.5, 60)
    ours = MassSpringEnv(stiffness=2.0).binary_frames(np.stack((q, 0 * q), axis=-1))
    theirs = _authors_frames(
        lambda ax, i: ax.scatter([q[i]], [0.0], marker="o", s=400, color="black"), 2.5, len(q)
    )
    np.testing.assert_array_equal(ours, theirs)


def test_frames_follow_the_state_and_keep_batch_shape() -> None:
    env = MassSpringEnv()
    states = np.zeros((2, 3, 2))
    states[..., 0] = np.linspace(-1.5, 1.5, 6).reshape(2, 3)
    frames = env.binary_frames(states)
    assert frames.shape == (2, 3, 28, 28) and frames.dtype == np.uint8
    assert set(np.unique(frames)) == {0, 1}
    columns = np.arange(28) + 0.5
    centroids = (frames.sum(axis=-2) * columns).sum(-1) / frames.sum(axis=(-2, -1))
    assert np.all(np.diff(centroids.reshape(-1)) > 0)  # the disc moves right as q grows
    assert env.binary_frames(states[0, 0]).shape == (28, 28)


def test_render_mode_binary_draws_the_current_state() -> None:
    env = gym.make("physprior/Pendulum-v0", render_mode="binary")
    obs, _ = env.reset(seed=3)
    frame = env.render()
    np.testing.assert_array_equal(frame, env.unwrapped.binary_frames(obs))


def test_bad_input_is_refused_in_one_line() -> None:
    env = PendulumEnv()
    with pytest.raises(ValueError, match=r"obs has shape \(4, 3\), expected \(\.\.\., 2\)"):
        env.binary_frames(np.zeros((4, 3)))
    with pytest.raises(ValueError, match="obs must be an array of numbers, got 'abc'"):
        env.binary_frames("abc")
    with pytest.raises(ValueError, match="NaN or infinite"):
        env.binary_frames(np.array([np.nan, 0.0]))
    with pytest.raises(ValueError, match="render_mode='binary' is not supported"):
        type(gym.make("physprior/TwoBody-v0").unwrapped)(render_mode="binary")


def test_every_physics_env_draws_binary_frames_from_its_colour_frame() -> None:
    env = gym.make("physprior/TwoBody-v0").unwrapped
    obs, _ = env.reset(seed=0)
    frames = env.binary_frames(np.stack((obs, obs)))
    assert frames.shape == (2, 28, 28) and 0 < frames[0].sum() < 28 * 28 / 2
    np.testing.assert_array_equal(frames[0], frames[1])
    assert env.render_size == 128  # drawn at 28 pixels without changing the env
