"""Tests specific to the heavy billiard: exact event-driven flight, bounces, images."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest

from physprior.envs.heavy_billiard import (
    BILLIARD_PX,
    FREE_PX,
    IMAGE_PX,
    WALL_PX,
    WALL_VALUE,
    HeavyBilliardEnv,
)

DT = 0.1
G = 1.0
ZERO = np.zeros(2)


def step_from(state: list[float], action: np.ndarray = ZERO, **kwargs: float) -> np.ndarray:
    """One ground-truth step from `state` (x, y, px, py) with the default parameters."""
    env = HeavyBilliardEnv(**kwargs)
    env.reset(options={"state": np.asarray(state, dtype=np.float64)})
    return env.step(action)[0]


def test_defaults() -> None:
    env = gym.make("physprior/HeavyBilliard-v0").unwrapped
    assert isinstance(env, HeavyBilliardEnv)
    assert (env.dt, env.g, env.m, env.force_scale) == (DT, G, 1.0, 2.0)
    assert (env.q_dim, env.state_layout) == (2, "qp")


def test_free_flight_matches_closed_form() -> None:
    # Apex at y = 0.625, floor reached at t = 1.618 s, right wall at t = 2.67 s: no bounce.
    env = HeavyBilliardEnv()
    z0 = np.array([0.2, 0.5, 0.3, 0.5])
    obs, _ = env.reset(options={"state": z0})
    for k in range(1, 17):
        obs = env.step(ZERO)[0]
        t = k * DT
        expected = [0.2 + 0.3 * t, 0.5 + 0.5 * t - 0.5 * G * t * t, 0.3, 0.5 - G * t]
        np.testing.assert_allclose(obs, expected, rtol=0, atol=1e-14)


def test_flight_under_constant_force_matches_closed_form() -> None:
    # Action (0.5, 0.25) with force_scale 2 m g: acceleration (1, 0.5 - 1) = (1, -0.5).
    env = HeavyBilliardEnv()
    obs, _ = env.reset(options={"state": np.array([0.1, 0.4, 0.2, 0.3])})
    action = np.array([0.5, 0.25], dtype=np.float32)
    for k in range(1, 9):
        obs = env.step(action)[0]
        t = k * DT
        expected = [
            0.1 + 0.2 * t + 0.5 * t * t,
            0.4 + 0.3 * t - 0.25 * t * t,
            0.2 + t,
            0.3 - 0.5 * t,
        ]
        np.testing.assert_allclose(obs, expected, rtol=0, atol=1e-14)


def test_hovering_force_holds_the_billiard_still() -> None:
    z = [0.3, 0.7, 0.0, 0.0]
    np.testing.assert_array_equal(step_from(z, np.array([0.0, 0.5])), z)


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        # Left wall, no gravity along x: hit at t = 0.04, then 0.06 s at +0.5.
        ([0.02, 0.5, -0.5, 0.0], [0.03, 0.495, 0.5, -0.1]),
        # Right wall, mirror image.
        ([0.98, 0.5, 0.5, 0.0], [0.97, 0.495, -0.5, -0.1]),
        # Floor: y = 0.0088, vy = -0.2 hits at t = 0.04 with vy = -0.24; then 0.06 s at +0.24:
        # y = 0.24 * 0.06 - 0.06^2 / 2 = 0.0126, vy = 0.24 - 0.06 = 0.18.
        ([0.5, 0.0088, 0.0, -0.2], [0.5, 0.0126, 0.0, 0.18]),
        # Ceiling: y = 0.98625, vy = 0.3 hits at t = 0.05 with vy = 0.25; then 0.05 s at -0.25:
        # y = 1 - 0.25 * 0.05 - 0.05^2 / 2 = 0.98625, vy = -0.3.
        ([0.5, 0.98625, 0.0, 0.3], [0.5, 0.98625, 0.0, -0.3]),
        # Exact corner: the left-wall and floor hits above at the same instant t = 0.04.
        ([0.02, 0.0088, -0.5, -0.2], [0.03, 0.0126, 0.5, 0.18]),
        # Near the corner, two different walls in one step: left at t = 0.02, floor at 0.04.
        ([0.01, 0.0088, -0.5, -0.2], [0.04, 0.0126, 0.5, 0.18]),
        # Several bounces in one step, travelling |vx| * dt along x:
        # 1.2: 0.5 -> 1 -> 0.3;  1.7: 0.5 -> 1 -> 0 -> 0.2;  2.7: 0.5 -> 0 -> 1 -> 0 -> 0.2.
        ([0.5, 0.5, 12.0, 0.0], [0.3, 0.495, -12.0, -0.1]),
        ([0.5, 0.5, 17.0, 0.0], [0.2, 0.495, 17.0, -0.1]),
        ([0.5, 0.5, -27.0, 0.0], [0.2, 0.495, 27.0, -0.1]),
    ],
)
def test_bounces_match_hand_computed_answers(state: list[float], expected: list[float]) -> None:
    np.testing.assert_allclose(step_from(state), expected, rtol=0, atol=1e-13)


def test_many_bounces_without_gravity_match_the_unfolded_line() -> None:
    # Without acceleration the bounced motion is a straight line folded into [0, 1]:
    # u = x + v t, x' = u mod 2 reflected at 1, and v flips once per wall crossed.
    env = HeavyBilliardEnv(gravity=0.0)
    rng = np.random.default_rng(1)
    for _ in range(200):
        z = np.concatenate([rng.uniform(0, 1, 2), rng.uniform(-60, 60, 2)])
        env.reset(options={"state": z})
        out = env.step(ZERO)[0]
        u = z[:2] + z[2:] * DT
        folded = np.mod(u, 2.0)
        expected_q = np.where(folded <= 1.0, folded, 2.0 - folded)
        expected_p = z[2:] * np.where(np.floor(u) % 2 == 0, 1.0, -1.0)
        np.testing.assert_allclose(out[:2], expected_q, rtol=0, atol=1e-12)
        np.testing.assert_array_equal(out[2:], expected_p)


def test_one_step_equals_two_half_steps() -> None:
    # The exact flow is a semigroup: dt in one go equals dt/2 twice, bounces and forces alike.
    full, half = HeavyBilliardEnv(), HeavyBilliardEnv(dt=DT / 2)
    rng = np.random.default_rng(2)
    for _ in range(300):
        z = np.concatenate([rng.uniform(0, 1, 2), rng.uniform(-5, 5, 2)])
        action = rng.uniform(-1, 1, 2)
        full.reset(options={"state": z})
        half.reset(options={"state": z})
        half.step(action)
        np.testing.assert_allclose(full.step(action)[0], half.step(action)[0], atol=1e-12)


def test_resting_and_nearly_resting_on_the_floor() -> None:
    # At rest on the floor: stays exactly.
    np.testing.assert_array_equal(step_from([0.4, 0.0, 0.0, 0.0]), [0.4, 0.0, 0.0, 0.0])
    # Bouncing with a tiny speed: ~1e11 bounces per step, reduced by the period, so the step
    # is fast and the billiard stays within its (tiny) apex with the same speed.
    out = step_from([0.4, 0.0, 0.0, 1e-12])
    assert 0.0 <= out[1] <= 1e-24
    assert abs(out[3]) <= 1e-12 * (1 + 1e-9)
    # Grazing the ceiling: the apex is exactly y = 1 at the end of the step.
    out = step_from([0.4, 0.995, 0.0, 0.1])
    assert 0.0 <= out[1] <= 1.0
    np.testing.assert_allclose(out[[1, 3]], [1.0, 0.0], atol=1e-15)


def test_energy_conserved_over_1000_steps() -> None:
    env = HeavyBilliardEnv()
    for seed in range(5):
        obs, _ = env.reset(seed=seed)
        e0 = env.energy(obs)
        energies = []
        for _ in range(1000):
            obs = env.step(ZERO)[0]
            energies.append(env.energy(obs))
        assert np.max(np.abs(np.array(energies) - e0)) / abs(e0) < 1e-12


def test_never_leaves_the_box_under_random_actions() -> None:
    env = HeavyBilliardEnv()
    env.reset(seed=0)
    rng = np.random.default_rng(0)
    # Bang-bang actions pump energy in; half the time the billiard is thrown hard at a wall.
    actions = rng.choice([-1.0, 0.0, 1.0], size=(10_000, 2))
    positions = np.empty((len(actions), 2))
    for i, action in enumerate(actions):
        positions[i] = env.step(action)[0][:2]
    assert np.all((positions >= 0.0) & (positions <= 1.0))
    assert np.all(np.isfinite(env.state))


def test_time_reversible() -> None:
    env = HeavyBilliardEnv()
    flip = np.array([1.0, 1.0, -1.0, -1.0])
    for seed in range(5):
        start, _ = env.reset(seed=seed)
        obs = start
        for _ in range(50):
            obs = env.step(ZERO)[0]
        env.reset(options={"state": obs * flip})
        for _ in range(50):
            obs = env.step(ZERO)[0]
        np.testing.assert_allclose(obs * flip, start, rtol=0, atol=1e-10)


def test_state_outside_the_box_is_refused() -> None:
    env = HeavyBilliardEnv()
    with pytest.raises(ValueError, match="outside the free space"):
        env.reset(options={"state": np.array([1.2, 0.5, 0.0, 0.0])})


def test_background_image_geometry() -> None:
    img = HeavyBilliardEnv().background_image()
    assert img.shape == (IMAGE_PX, IMAGE_PX) == (128, 128)
    assert img.dtype == np.uint8
    free = img != WALL_VALUE
    rows, cols = np.nonzero(free)
    assert (rows.min(), rows.max(), cols.min(), cols.max()) == (12, 115, 12, 115)
    assert free.sum() == FREE_PX * FREE_PX == 104 * 104
    # Walls 12 px thick on every side, along the middle row and column.
    mid = IMAGE_PX // 2
    for line in (img[mid, :], img[:, mid]):
        wall = line == WALL_VALUE
        assert wall[:WALL_PX].all() and wall[-WALL_PX:].all() and not wall[WALL_PX:-WALL_PX].any()


def test_position_to_pixel_mapping() -> None:
    to_px = HeavyBilliardEnv.position_to_pixel
    # Top-left, bottom-right corners of the free space, and its centre.
    np.testing.assert_array_equal(to_px(np.array([0.0, 1.0])), [12, 12])
    np.testing.assert_array_equal(to_px(np.array([1.0, 0.0])), [115, 115])
    np.testing.assert_array_equal(to_px(np.array([0.5, 0.5])), [64, 64])
    rc = np.stack(np.meshgrid(np.arange(12, 116), np.arange(12, 116)), -1)
    np.testing.assert_array_equal(to_px(HeavyBilliardEnv.pixel_to_position(rc)), rc)


def test_rendered_billiard_is_where_position_to_pixel_says() -> None:
    env = HeavyBilliardEnv(render_mode="rgb_array")
    background = env.background_image()
    half = BILLIARD_PX // 2
    for q in [(0.5, 0.5), (0.0, 0.0), (1.0, 1.0), (0.0, 1.0), (0.123, 0.877)]:
        env.reset(options={"state": np.array([*q, 0.0, 0.0])})
        frame = env.render()
        assert frame is not None and frame.shape == (128, 128, 3) and frame.dtype == np.uint8
        row, col = env.position_to_pixel(np.array(q))
        # The billiard is the 3 x 3 block of pixels with a colour of neither walls nor space.
        wall_rgb = frame[0, 0]
        free_rgb = frame[64, 64] if (row, col) != (64, 64) else frame[40, 40]
        billiard = ~(frame == wall_rgb).all(-1) & ~(frame == free_rgb).all(-1)
        expected = np.zeros_like(billiard)
        expected[row - half : row + half + 1, col - half : col + half + 1] = True
        np.testing.assert_array_equal(billiard, expected)
        # Everywhere else the frame shows the background image.
        np.testing.assert_array_equal(
            (frame == wall_rgb).all(-1), (background == WALL_VALUE) & ~expected
        )


def test_reward_is_distance_to_centre_plus_control_cost() -> None:
    env = HeavyBilliardEnv()
    centre = np.array([0.5, 0.5, 0.0, 0.0])
    assert env.reward_fn(centre, ZERO, centre) == 0.0
    off = np.array([0.8, 0.9, 0.0, 0.0])
    assert env.reward_fn(centre, np.array([1.0, -1.0]), off) == pytest.approx(-0.5 - 0.02)
