"""The full-state MuJoCo variants against the Gymnasium v5 environments they are built on.

Checks what is specific to them: the observation is the complete, unclipped `[qpos, qvel]`, and
driven with the same seed and actions they follow v5 exactly (states, rewards, terminations),
apart from the two documented Ant differences (no contact cost, forward reward from `qpos[0]`).
The generic env contract (checkers, seeding, bad actions) is in test_contract.py.
"""

from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import pytest

import physprior.envs  # noqa: F401  (registers the ids)
from physprior.envs.mujoco_full import (
    RENDER_KWARGS,
    AntFullEnv,
    HalfCheetahFullEnv,
    HopperFullEnv,
    InvertedPendulumFullEnv,
    SwimmerFullEnv,
    Walker2dFullEnv,
)

# class, observation interval of PROTOCOLS.md, how v5 derives its observation from [qpos, qvel]
# (number of leading qpos entries dropped, velocity clip or None), extra v5 kwargs that make
# v5's reward comparable.
CASES: dict[str, tuple[type, float, int, float | None, dict[str, Any]]] = {
    "HalfCheetah": (HalfCheetahFullEnv, 0.05, 1, None, {}),
    "Hopper": (HopperFullEnv, 0.008, 1, 10.0, {}),
    "Walker2d": (Walker2dFullEnv, 0.008, 1, 10.0, {}),
    "Swimmer": (SwimmerFullEnv, 0.04, 2, None, {}),
    "Ant": (AntFullEnv, 0.05, 2, None, {"contact_cost_weight": 0.0}),
    "InvertedPendulum": (InvertedPendulumFullEnv, 0.04, 0, None, {}),
}
NAMES = list(CASES)


@pytest.fixture(autouse=True)
def _mujoco_log_in_tmp(tmp_path: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    # Compiling half_cheetah.xml makes MuJoCo append a deprecation warning ('settotalmass') to
    # MUJOCO_LOG.TXT in the working directory; keep it out of the repository.
    monkeypatch.chdir(tmp_path)


def _pair(name: str, **kwargs: Any) -> tuple[Any, Any]:
    """The Full env and its plain v5 env (unwrapped), built with the same kwargs."""
    cls, _, _, _, v5_extra = CASES[name]
    return cls(**kwargs), gym.make(cls.base_env_id, **v5_extra, **kwargs).unwrapped


def _assert_v5_observation(name: str, z: np.ndarray, nq: int, v5_obs: np.ndarray) -> None:
    """v5's observation is `z = [qpos, qvel]` trimmed and clipped (Ant: contact forces after)."""
    _, _, skip, clip, _ = CASES[name]
    q, v = z[skip:nq], z[nq:]
    expected = np.concatenate((q, v if clip is None else np.clip(v, -clip, clip)))
    np.testing.assert_array_equal(v5_obs[: len(expected)], expected)


def _actions(env: Any, n: int, seed: int) -> np.ndarray:
    """`n` uniform random float64 actions in the action box."""
    low, high = env.action_space.low, env.action_space.high
    return np.random.default_rng(seed).uniform(low, high, (n, *env.action_space.shape))


def _transitions(env: Any, n: int, seed: int) -> tuple[np.ndarray, ...]:
    """`n` random-action transitions (obs, action, reward, next_obs, terminated), with resets."""
    obs, _ = env.reset(seed=seed)
    rows = []
    for i, action in enumerate(_actions(env, n, seed)):
        next_obs, reward, terminated, _, _ = env.step(action)
        rows.append((obs, action, reward, next_obs, terminated))
        obs = env.reset(seed=seed + i + 1)[0] if terminated else next_obs
    return tuple(np.array(col) for col in zip(*rows, strict=True))


@pytest.mark.parametrize("name", NAMES)
def test_registered_id_builds_the_full_class_with_protocol_dt(name: str) -> None:
    cls, dt, _, _, _ = CASES[name]
    env = gym.make(f"physprior/{name}Full-v0")
    core = env.unwrapped
    assert type(core) is cls
    assert env.spec is not None and env.spec.max_episode_steps == 1000
    assert core.dt == pytest.approx(dt, rel=1e-12)
    assert core.dt == pytest.approx(core.model.opt.timestep * core.frame_skip, rel=1e-12)
    assert (core.q_dim, core.v_dim) == (core.model.nq, core.model.nv)
    assert core.state_layout == "qv"
    assert env.observation_space.shape == (core.model.nq + core.model.nv,)
    assert env.observation_space.dtype == np.float64
    env.close()


def test_ant_has_more_positions_than_velocities() -> None:
    env = AntFullEnv()
    assert (env.q_dim, env.v_dim, env.observation_space.shape) == (15, 14, (29,))


@pytest.mark.parametrize("name", NAMES)
def test_same_seed_gives_v5_initial_state(name: str) -> None:
    full, v5 = _pair(name)
    for seed in (0, 123):
        obs, _ = full.reset(seed=seed)
        v5_obs, _ = v5.reset(seed=seed)
        np.testing.assert_array_equal(obs, np.concatenate((v5.data.qpos, v5.data.qvel)))
        _assert_v5_observation(name, obs, full.q_dim, v5_obs)


@pytest.mark.parametrize("name", NAMES)
def test_follows_v5_step_for_step(name: str) -> None:
    """Same seeds and actions: identical states, rewards and terminations (Ant: see below)."""
    full, v5 = _pair(name)
    obs, _ = full.reset(seed=1)
    v5.reset(seed=1)
    terminations = 0
    for i, action in enumerate(_actions(full, 60, seed=2)):
        next_obs, reward, terminated, truncated, info = full.step(action)
        v5_obs, v5_reward, v5_terminated, _, v5_info = v5.step(action)
        # The observation is the complete state of the wrapped model, and it is v5's state.
        np.testing.assert_array_equal(
            next_obs, np.concatenate((full.data.qpos, full.data.qvel)), strict=True
        )
        np.testing.assert_array_equal(next_obs, np.concatenate((v5.data.qpos, v5.data.qvel)))
        _assert_v5_observation(name, next_obs, full.q_dim, v5_obs)
        assert (terminated, truncated) == (v5_terminated, False)
        assert isinstance(reward, float)
        if name == "Ant":
            # v5 measures the torso displacement on body xpos, one substep stale; the Full
            # variant on qpos[0]. Everything else in the reward is the same.
            assert info["x_velocity"] == (next_obs[0] - obs[0]) / full.dt
            assert abs(info["x_velocity"] - v5_info["x_velocity"]) < 0.5
            forward_gap = info["reward_forward"] - v5_info["reward_forward"]
            assert reward - v5_reward == pytest.approx(forward_gap, abs=1e-12)
            assert info["reward_contact"] == v5_info["reward_contact"] == 0.0
        else:
            assert reward == v5_reward
        obs = next_obs
        if terminated:
            terminations += 1
            obs, _ = full.reset(seed=100 + i)
            v5.reset(seed=100 + i)
    if name in ("Hopper", "Walker2d", "InvertedPendulum"):
        assert terminations > 0  # random actions topple them: resets were exercised too


def test_ant_contact_forces_are_not_observed_or_charged() -> None:
    env = AntFullEnv()
    env.reset(seed=0)
    largest_contact_force = 0.0
    for _ in range(40):  # zero action: the ant drops onto its legs and stands
        _, _, _, _, info = env.step(np.zeros(8))
        assert info["reward_contact"] == 0.0
        largest_contact_force = max(largest_contact_force, np.abs(env.data.cfrc_ext).max())
    assert largest_contact_force > 1.0  # there were contact forces v5 would have charged


@pytest.mark.parametrize("name", NAMES)
def test_reward_and_termination_functions_reproduce_step(name: str) -> None:
    env = CASES[name][0]()
    obs, act, rew, nxt, term = _transitions(env, 300, seed=5)
    np.testing.assert_allclose(env.reward_fn(obs, act, nxt), rew, rtol=0, atol=1e-6)
    np.testing.assert_array_equal(env.termination_fn(nxt), term)
    # Any leading batch shape, and one unbatched transition.
    shaped = env.reward_fn(
        obs.reshape(3, 100, -1), act.reshape(3, 100, -1), nxt.reshape(3, 100, -1)
    )
    np.testing.assert_allclose(shaped.reshape(-1), rew, rtol=0, atol=1e-6)
    assert env.reward_fn(obs[0], act[0], nxt[0]) == pytest.approx(rew[0], abs=1e-6)
    assert env.termination_fn(nxt[0]) == term[0]


@pytest.mark.parametrize("name", NAMES)
def test_reward_and_termination_functions_on_torch(name: str) -> None:
    torch = pytest.importorskip("torch")
    env = CASES[name][0]()
    obs, act, rew, nxt, term = _transitions(env, 300, seed=6)
    t_obs, t_act, t_nxt = (torch.as_tensor(x, dtype=torch.float64) for x in (obs, act, nxt))
    reward = env.reward_fn(t_obs, t_act, t_nxt)
    assert isinstance(reward, torch.Tensor) and reward.dtype == torch.float64
    np.testing.assert_allclose(reward.numpy(), rew, rtol=0, atol=1e-6)
    terminated = env.termination_fn(t_nxt)
    assert terminated.dtype == torch.bool
    np.testing.assert_array_equal(terminated.numpy(), term)
    # float32 actions (as sampled from the Box) give the float64 reward to 1e-6 as well.
    reward32 = env.reward_fn(t_obs, t_act.to(torch.float32), t_nxt)
    np.testing.assert_allclose(reward32.numpy(), rew, rtol=0, atol=1e-6)


def test_hopper_velocities_are_not_clipped() -> None:
    full, v5 = _pair("Hopper")
    full.reset(seed=0)
    v5.reset(seed=0)
    z = np.concatenate((full.init_qpos, [15.0, -20.0, 3.0, 12.0, -11.0, 0.5]))
    obs, _ = full.reset(options={"state": z})
    np.testing.assert_array_equal(obs, z)
    v5.set_state(z[:6], z[6:])
    next_obs, _, _, _, _ = full.step(np.zeros(3))
    v5_obs, *_ = v5.step(np.zeros(3))
    assert np.max(np.abs(next_obs[6:])) > 10.0
    assert np.max(np.abs(v5_obs[5:])) == 10.0  # v5 clips
    np.testing.assert_array_equal(next_obs[6:], full.data.qvel)
    np.testing.assert_array_equal(np.clip(next_obs[6:], -10, 10), v5_obs[5:])
    # Health is judged on the unclipped velocities (as v5 does on its internal state): a
    # velocity beyond healthy_state_range ends the episode even though v5 would show 10.
    fast = next_obs.copy()
    fast[8] = 150.0
    assert bool(full.termination_fn(fast)) and not bool(full.termination_fn(next_obs))


@pytest.mark.parametrize("name", NAMES)
def test_unknown_kwargs_are_refused_listing_the_valid_ones(name: str) -> None:
    with pytest.raises(TypeError, match=r"'no_such_option'.*valid arguments are: .*render_mode"):
        gym.make(f"physprior/{name}Full-v0", no_such_option=1)
    cls = CASES[name][0]
    valid = cls.__init__.valid_kwargs
    assert set(RENDER_KWARGS) <= set(valid) and "frame_skip" in valid


@pytest.mark.parametrize(
    ("name", "kwarg", "value"),
    [
        *[(n, "exclude_current_positions_from_observation", True) for n in NAMES[:5]],
        *[(n, "xml_file", "hopper.xml") for n in NAMES],
        ("Ant", "include_cfrc_ext_in_observation", True),
        ("Ant", "contact_cost_weight", 5e-4),
        ("Ant", "contact_force_range", (-1.0, 1.0)),
        ("Ant", "main_body", 1),
    ],
)
def test_trimming_and_model_kwargs_are_refused(name: str, kwarg: str, value: Any) -> None:
    with pytest.raises(TypeError, match=rf"'{kwarg}'.*valid arguments are: .*reset_noise_scale"):
        CASES[name][0](**{kwarg: value})


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"frame_skip": 0}, "frame_skip"),
        ({"reset_noise_scale": -1.0}, "reset_noise_scale"),
        ({"healthy_z_range": (1.0, 0.5)}, "healthy_z_range"),
        ({"render_mode": "human"}, "render_mode"),
    ],
)
def test_bad_values_are_refused(kwargs: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HopperFullEnv(**kwargs)


def test_frame_skip_and_weights_follow_through() -> None:
    """dt follows frame_skip, and reward_fn follows the weights, exactly as v5 does."""
    kwargs = {"frame_skip": 2, "forward_reward_weight": 2.0, "ctrl_cost_weight": 0.3}
    full, v5 = _pair("HalfCheetah", **kwargs)
    assert full.dt == pytest.approx(0.02) and v5.dt == full.dt
    full.reset(seed=0)
    v5.reset(seed=0)
    obs = full._get_obs()
    for action in _actions(full, 10, seed=0):
        next_obs, reward, *_ = full.step(action)
        assert reward == v5.step(action)[1]
        assert full.reward_fn(obs, action, next_obs) == pytest.approx(reward, abs=1e-12)
        obs = next_obs


def test_bad_actions_name_the_expected_shape() -> None:
    env = HopperFullEnv()
    env.reset(seed=0)
    with pytest.raises(ValueError, match=r"expected shape \(3,\)"):
        env.step(np.zeros(4))
    with pytest.raises(ValueError, match=r"NaN or inf"):
        env.step(np.array([0.0, np.inf, 0.0]))


def test_reset_to_a_given_state_and_pickling() -> None:
    env = AntFullEnv(ctrl_cost_weight=0.25)
    env.reset(seed=0)
    z = env._get_obs() + 0.01
    obs, info = env.reset(options={"state": z})
    np.testing.assert_array_equal(obs, z)
    assert info["x_position"] == z[0]
    with pytest.raises(ValueError, match=r"expected shape \(29,\)"):
        env.reset(options={"state": z[:-1]})
    clone = pickle.loads(pickle.dumps(env))
    assert type(clone) is AntFullEnv and clone._ctrl_cost_weight == 0.25


@pytest.fixture(scope="module")
def gl_backend() -> str:
    """An offscreen OpenGL backend for MuJoCo, or skip.

    Unset, Gymnasium tries GLFW first, which fails on a headless machine and leaves an
    unraisable exception (an error under `-W error`) before falling back to EGL; so pick EGL
    unless the caller chose a backend.
    """
    chosen = os.environ.get("MUJOCO_GL")
    os.environ["MUJOCO_GL"] = chosen or "egl"
    try:
        env = HopperFullEnv(render_mode="rgb_array", width=16, height=16)
        env.reset(seed=0)
        env.render()
        env.close()
    except Exception as err:  # no usable GL: libEGL / libOSMesa missing
        pytest.skip(
            f"no OpenGL backend for MuJoCo offscreen rendering (MUJOCO_GL="
            f"{os.environ['MUJOCO_GL']}: {err}); install libegl1 + libgl1-mesa-dri "
            "(MUJOCO_GL=egl) or libosmesa6 (MUJOCO_GL=osmesa)"
        )
    finally:
        if chosen is None:
            del os.environ["MUJOCO_GL"]
    return chosen or "egl"


@pytest.mark.parametrize("name", NAMES)
def test_rgb_array_rendering(name: str, gl_backend: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MUJOCO_GL", gl_backend)
    env = gym.make(f"physprior/{name}Full-v0", render_mode="rgb_array", width=48, height=32)
    env.reset(seed=0)
    env.step(env.action_space.sample())
    frame = env.render()
    env.close()
    assert frame.shape == (32, 48, 3) and frame.dtype == np.uint8
    assert frame.std() > 0  # not a blank image


def test_render_without_mode_warns_and_returns_none() -> None:
    env = SwimmerFullEnv()
    env.reset(seed=0)
    with pytest.warns(UserWarning, match="render_mode"):
        assert env.render() is None


def test_halfcheetah_builds_without_the_settotalmass_warning(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)  # MuJoCo's own handler would append to ./MUJOCO_LOG.TXT
    gym.make("physprior/HalfCheetahFull-v0").close()
    assert "settotalmass" not in capfd.readouterr().err
    assert not (tmp_path / "MUJOCO_LOG.TXT").exists()


def test_only_the_settotalmass_warning_is_dropped() -> None:
    import mujoco

    from physprior.envs.mujoco_full._full_state import _without_settotalmass_warning

    seen: list[str] = []
    mujoco.set_mju_user_warning(seen.append)
    try:
        with _without_settotalmass_warning():
            handler = mujoco.get_mju_user_warning()
            handler("compiler attribute 'settotalmass' is deprecated and will be removed")
            handler("Nan, Inf or huge value in QACC at DOF 0")
        assert mujoco.get_mju_user_warning() is not None  # ours is gone, the caller's is back
        mujoco.get_mju_user_warning()("after")
    finally:
        mujoco.set_mju_user_warning(None)
    assert seen == ["Nan, Inf or huge value in QACC at DOF 0", "after"]
