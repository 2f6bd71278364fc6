"""Tests specific to the decon-hnn pendulums: ChainPendulum (angular) and SpringPendulum (3-D).

The generic env contract (check_env, seeding, reward_fn reproduction, ...) is in
test_contract.py; here we check the physics against independent derivations and the authors'
parameters.
"""

from __future__ import annotations

import doctest

import gymnasium as gym
import numpy as np
import pytest
import torch

from physprior.envs import chain_pendulum, spring_pendulum  # registers the environments
from physprior.envs.chain_pendulum import ChainPendulumEnv
from physprior.envs.spring_pendulum import SpringPendulumEnv

# numpy's legacy RandomState(0).rand() stream, 0.6 + 0.8 * u, written out by hand so the test
# does not share the env's code: 0.5488135, 0.71518937, 0.60276338, 0.54488318, 0.4236548,
# 0.64589411, ...
AUTHORS_DRAWS = [1.0390508, 1.17215149, 1.0822107, 1.03590655, 0.93892384, 1.11671529]


def make(kind: str, size: int, **kwargs: float) -> ChainPendulumEnv | SpringPendulumEnv:
    if kind == "chain":
        return ChainPendulumEnv(links=size, **kwargs)  # type: ignore[arg-type]
    return SpringPendulumEnv(bobs=size, **kwargs)  # type: ignore[arg-type]


def random_states(env: ChainPendulumEnv | SpringPendulumEnv, n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array([env.sample_initial_state(rng) for _ in range(n)])


def zero_action_energies(env: ChainPendulumEnv | SpringPendulumEnv, steps: int, seed: int):
    obs, _ = env.reset(seed=seed)
    zero = np.zeros(env.action_space.shape, dtype=np.float32)
    energies = [env.energy(obs)]
    for _ in range(steps):
        obs = env.step(zero)[0]
        energies.append(env.energy(obs))
    return np.array(energies)


# ---------------------------------------------------------------------- parameters
def test_authors_parameters_are_reproduced() -> None:
    # The authors pop() from the end of each list: link/bob 0 gets the last value drawn.
    chain2 = ChainPendulumEnv(links=2)
    np.testing.assert_allclose(chain2.masses, [1.17215149, 1.0390508], atol=1e-8)
    np.testing.assert_allclose(chain2.lengths, [1.03590655, 1.0822107], atol=1e-8)
    chain3 = ChainPendulumEnv(links=3)
    np.testing.assert_allclose(chain3.masses, AUTHORS_DRAWS[:3][::-1], atol=1e-8)
    np.testing.assert_allclose(chain3.lengths, AUTHORS_DRAWS[3:6][::-1], atol=1e-8)
    spring3 = SpringPendulumEnv(bobs=3)
    np.testing.assert_allclose(spring3.masses, AUTHORS_DRAWS[:3][::-1], atol=1e-8)
    np.testing.assert_array_equal(spring3.rest_lengths, [0.0, 1.0, 1.0])
    assert spring3.spring_constant == 10.0
    for env in (chain2, spring3):
        assert env.gravity == 9.81
        assert env.dt == 0.03
        assert env.drag == 0.0
    # The papers' damped value is documented, not the default.
    assert chain_pendulum.PAPER_DRAG == spring_pendulum.PAPER_DRAG == 0.4


def test_parameters_do_not_touch_global_numpy_seed() -> None:
    np.random.seed(123)  # noqa: NPY002 - checking the legacy global state is left alone
    expected = np.random.RandomState(123).rand()
    ChainPendulumEnv(links=3)
    SpringPendulumEnv(bobs=3)
    assert np.random.rand() == expected  # noqa: NPY002


# ---------------------------------------------------------------------- equations of motion
@pytest.mark.parametrize("kind", ["chain", "spring"])
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_vector_field_is_hamiltonian(kind: str, size: int) -> None:
    """dq/dt = dH/dp and dp/dt = -dH/dq, with H differentiated by central differences."""
    env = make(kind, size)
    n = env.q_dim
    eps = 1e-6
    for z in random_states(env, 5, seed=size):
        grad = np.empty(2 * n)
        for i in range(2 * n):
            dz = np.zeros(2 * n)
            dz[i] = eps
            grad[i] = (env.energy(z + dz) - env.energy(z - dz)) / (2 * eps)
        field = env.vector_field(z, np.zeros(n))
        expected = np.concatenate([grad[n:], -grad[:n]])
        np.testing.assert_allclose(field, expected, rtol=1e-6, atol=1e-6 * np.abs(grad).max())


@pytest.mark.parametrize("kind", ["chain", "spring"])
def test_forces_and_drag_enter_as_documented(kind: str) -> None:
    """dp/dt gains Q - drag * dq/dt; dq/dt is unchanged."""
    free = make(kind, 3)
    damped = make(kind, 3, drag=0.4)
    n = free.q_dim
    force = np.random.default_rng(0).normal(size=n)
    for z in random_states(free, 3, seed=1):
        base = free.vector_field(z, np.zeros(n))
        forced = damped.vector_field(z, force)
        np.testing.assert_allclose(forced[:n], base[:n], rtol=1e-12)
        np.testing.assert_allclose(forced[n:] - base[n:], force - 0.4 * base[:n], atol=1e-9)


@pytest.mark.parametrize("links", [1, 2, 3, 4])
def test_chain_hamiltonian_matches_cartesian_energy(links: int) -> None:
    """M(theta) and V agree with the kinetic and potential energy of the bobs in the plane."""
    env = ChainPendulumEnv(links=links)
    rng = np.random.default_rng(links)
    for _ in range(5):
        theta, theta_dot = rng.normal(size=links), rng.normal(size=links)
        # Bob i moves with sum_{j <= i} l_j theta_dot_j (cos theta_j, sin theta_j).
        link_velocity = env.lengths[:, None] * theta_dot[:, None]
        link_velocity = link_velocity * np.stack([np.cos(theta), np.sin(theta)], axis=-1)
        bob_velocity = np.cumsum(link_velocity, axis=0)
        positions = env.bob_positions(theta)
        kinetic = 0.5 * np.sum(env.masses * np.sum(bob_velocity**2, axis=-1))
        potential = 9.81 * np.sum(env.masses * positions[:, 1])
        p = env.mass_matrix(theta) @ theta_dot
        assert env.energy(np.concatenate([theta, p])) == pytest.approx(kinetic + potential)
        # dq/dt is the angular velocity the momenta were built from.
        np.testing.assert_allclose(
            env.vector_field(np.concatenate([theta, p]), 0.0)[:links],
            theta_dot,
            rtol=1e-10,
            atol=1e-12,
        )


def test_single_link_is_the_simple_pendulum() -> None:
    env = ChainPendulumEnv(links=1)
    (m,), (length,) = env.masses, env.lengths
    theta, theta_dot = 0.7, -0.3
    field = env.vector_field(np.array([theta, m * length**2 * theta_dot]), np.zeros(1))
    assert field[0] == pytest.approx(theta_dot)
    assert field[1] / (m * length**2) == pytest.approx(-9.81 / length * np.sin(theta))


def test_spring_equilibrium_is_the_true_minimum() -> None:
    env = SpringPendulumEnv(bobs=3)
    eq = env.equilibrium.ravel()
    rest = np.concatenate([eq, np.zeros(9)])
    np.testing.assert_allclose(env.vector_field(rest, np.zeros(9)), 0.0, atol=1e-12)
    assert env.energy(rest) == pytest.approx(env.equilibrium_energy, abs=1e-12)
    # Hanging on the z axis, each spring stretched by the weight below it over k.
    weights = 9.81 * np.cumsum(env.masses[::-1])[::-1]
    np.testing.assert_allclose(np.diff(np.r_[0.0, eq[2::3]]), -(env.rest_lengths + weights / 10))
    np.testing.assert_array_equal(env.equilibrium[:, :2], 0.0)
    # Every other configuration at rest has more energy, so the reward is never positive.
    shaken = eq + np.random.default_rng(0).normal(scale=0.8, size=(2000, 9))
    assert np.all(env.energy(np.hstack([shaken, np.zeros((2000, 9))])) > env.equilibrium_energy)


def test_spring_force_is_finite_when_bobs_meet() -> None:
    env = SpringPendulumEnv(bobs=2)
    z = np.zeros(12)
    z[:6] = [0.3, 0.1, -2.0, 0.3, 0.1, -2.0]  # bob 1 on top of bob 0
    field = env.vector_field(z, np.zeros(6))
    assert np.all(np.isfinite(field))
    assert np.isfinite(env.energy(z))


# ---------------------------------------------------------------------- energy
@pytest.mark.parametrize("kind", ["chain", "spring"])
@pytest.mark.parametrize("size", [2, 3])
def test_energy_is_conserved_without_drag(kind: str, size: int) -> None:
    energies = zero_action_energies(make(kind, size), 1000, seed=size)
    relative = np.abs(energies - energies[0]) / np.abs(energies[0])
    assert relative.max() < 1e-4


@pytest.mark.parametrize("kind", ["chain", "spring"])
def test_energy_decreases_monotonically_with_drag(kind: str) -> None:
    energies = zero_action_energies(make(kind, 2, drag=0.4), 1000, seed=0)
    assert np.all(np.diff(energies) < 0.0)
    assert energies[-1] < energies[0] - 0.5


def test_chain_initial_state_distribution() -> None:
    """Angles and angular velocities are N(0, 1); the observation holds p = M theta_dot."""
    env = ChainPendulumEnv(links=3)
    states = random_states(env, 4000, seed=0)
    theta = states[:, :3]
    theta_dot = np.linalg.solve(env.mass_matrix(theta), states[:, 3:, None])[..., 0]
    for sample in (theta, theta_dot):
        np.testing.assert_allclose(sample.mean(axis=0), 0.0, atol=0.06)
        np.testing.assert_allclose(sample.std(axis=0), 1.0, atol=0.05)


def test_spring_initial_state_distribution() -> None:
    """Equilibrium plus 0.8 N(0, 1) on every position and momentum coordinate."""
    env = SpringPendulumEnv(bobs=2)
    states = random_states(env, 4000, seed=0)
    centre = np.concatenate([env.equilibrium.ravel(), np.zeros(6)])
    np.testing.assert_allclose(states.mean(axis=0), centre, atol=0.05)
    np.testing.assert_allclose(states.std(axis=0), 0.8, atol=0.04)


# ---------------------------------------------------------------------- control and reward
def test_chain_reward_extremes_and_torque_sign() -> None:
    env = ChainPendulumEnv(links=2)
    zero = np.zeros(2)
    up, down = np.array([np.pi, np.pi, 0.0, 0.0]), np.zeros(4)
    assert env.reward_fn(down, zero, up) == pytest.approx(1.0)
    assert env.reward_fn(up, zero, down) == pytest.approx(-1.0)
    assert env.reward_fn(up, np.ones(2), down) == pytest.approx(-1.02)
    # A positive torque on theta_0 turns the chain counter-clockwise from rest.
    env.reset(options={"state": down})
    obs = env.step(np.array([1.0, 0.0], dtype=np.float32))[0]
    assert obs[0] > 0.0


def test_spring_reward_and_force_sign() -> None:
    env = SpringPendulumEnv(bobs=2)
    rest = np.concatenate([env.equilibrium.ravel(), np.zeros(6)])
    assert env.reward_fn(rest, np.zeros(6), rest) == pytest.approx(0.0, abs=1e-12)
    env.reset(options={"state": rest})
    obs, reward, *_ = env.step(np.array([1, 0, 0, 0, 0, 0], dtype=np.float32))
    assert obs[6] > 0.0  # x momentum of bob 0 grows along the applied force
    assert reward < 0.0


@pytest.mark.parametrize("kind", ["chain", "spring"])
def test_numpy_and_torch_agree(kind: str) -> None:
    env = make(kind, 3)
    obs = random_states(env, 64, seed=0)
    next_obs = random_states(env, 64, seed=1)
    action = np.random.default_rng(2).uniform(-1.5, 1.5, size=(64, env.action_space.shape[0]))
    as_t = torch.from_numpy
    np.testing.assert_allclose(env.energy(as_t(obs)).numpy(), env.energy(obs), rtol=1e-12)
    np.testing.assert_allclose(
        env.reward_fn(as_t(obs), as_t(action), as_t(next_obs)).numpy(),
        env.reward_fn(obs, action, next_obs),
        rtol=1e-12,
        atol=1e-12,
    )
    # float32 tensors (a model's output) stay float32 and agree to single precision.
    energy32 = env.energy(as_t(obs).float())
    assert energy32.dtype == torch.float32
    np.testing.assert_allclose(energy32.numpy(), env.energy(obs), rtol=1e-5, atol=1e-4)
    assert not env.termination_fn(as_t(next_obs)).any()


# ---------------------------------------------------------------------- construction
@pytest.mark.parametrize(
    ("env_id", "size_kwarg"),
    [("physprior/ChainPendulum-v0", "links"), ("physprior/SpringPendulum-v0", "bobs")],
)
@pytest.mark.parametrize("size", [1, 2, 3, 4])
def test_variants_construct_and_step(env_id: str, size_kwarg: str, size: int) -> None:
    env = gym.make(env_id, **{size_kwarg: size})
    per_body = 1 if size_kwarg == "links" else 3
    assert env.spec is not None and env.spec.max_episode_steps == 300
    assert env.unwrapped.q_dim == per_body * size
    assert env.unwrapped.state_layout == "qp"
    assert env.action_space.shape == (per_body * size,)
    obs, _ = env.reset(seed=size)
    assert obs.shape == (2 * per_body * size,)
    env.action_space.seed(size)
    for _ in range(3):
        obs, reward, terminated, truncated, _ = env.step(env.action_space.sample())
        assert np.all(np.isfinite(obs)) and np.isfinite(reward)
        assert not terminated and not truncated


@pytest.mark.filterwarnings("ignore:.*infinity.*")  # PhysicsEnv's observation Box is unbounded
@pytest.mark.parametrize("env_id", ["physprior/ChainPendulum-v0", "physprior/SpringPendulum-v0"])
def test_damped_variants_pass_check_env(env_id: str) -> None:
    from gymnasium.utils.env_checker import check_env
    from stable_baselines3.common.env_checker import check_env as sb3_check_env

    env = gym.make(env_id, drag=0.4, render_mode="rgb_array")
    check_env(env.unwrapped)
    sb3_check_env(env)


@pytest.mark.parametrize(
    ("cls", "size_kwarg"), [(ChainPendulumEnv, "links"), (SpringPendulumEnv, "bobs")]
)
def test_bad_arguments_are_refused(cls: type, size_kwarg: str) -> None:
    with pytest.raises(TypeError, match=rf"valid arguments are: {size_kwarg}, drag"):
        cls(lenghts=2)
    with pytest.raises(TypeError, match="unexpected keyword argument 'friction'"):
        gym.make(cls.__name__.replace("Env", "").join(["physprior/", "-v0"]), friction=0.4)
    for bad in ({size_kwarg: 0}, {size_kwarg: 2.5}, {"drag": -0.1}, {"force_scale": 0.0}):
        with pytest.raises(ValueError):
            cls(**bad)


@pytest.mark.parametrize("kind", ["chain", "spring"])
def test_render_frames(kind: str) -> None:
    env = make(kind, 3, render_mode="rgb_array")  # type: ignore[arg-type]
    env.reset(seed=0)
    frame = env.render()
    assert frame is not None and frame.shape == (128, 128, 3) and frame.dtype == np.uint8
    assert (frame != 255).any()
    np.testing.assert_array_equal(frame, env.render())


@pytest.mark.parametrize("module", [chain_pendulum, spring_pendulum])
def test_docstring_examples(module: object) -> None:
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)  # type: ignore[arg-type]
    assert result.attempted > 0 and result.failed == 0


def test_the_decon_authors_start_lies_on_the_rods_with_more_energy() -> None:
    from physprior.envs.chain_pendulum import project_onto_rods

    env = gym.make("physprior/ChainPendulum-v0", links=3, start="authors").unwrapped
    paper = gym.make("physprior/ChainPendulum-v0", links=3).unwrapped
    energies = {"authors": [], "paper": []}
    for seed in range(100):
        for name, e in (("authors", env), ("paper", paper)):
            obs, _ = e.reset(seed=seed)
            theta, p = obs[:3], obs[3:]
            energies[name].append(0.5 * p @ np.linalg.solve(e.mass_matrix(theta), p))
    ratio = np.mean(energies["authors"]) / np.mean(energies["paper"])
    assert 2.0 < ratio < 5.0  # the authors' draw moves faster (about 3x)
    # The projection puts bobs on the rods, with velocities along the circles.
    rng = np.random.default_rng(0)
    lengths = np.array([1.0, 0.5])
    x, v = project_onto_rods(rng.normal(size=(2, 2)), rng.normal(size=(2, 2)), lengths)
    rods = np.diff(x, axis=0, prepend=np.zeros((1, 2)))
    rod_v = np.diff(v, axis=0, prepend=np.zeros((1, 2)))
    np.testing.assert_allclose(np.linalg.norm(rods, axis=1), lengths, atol=1e-5)
    np.testing.assert_allclose(np.sum(rods * rod_v, axis=1), 0.0, atol=1e-5)


@pytest.mark.parametrize("env_id", ["physprior/ChainPendulum-v0", "physprior/SpringPendulum-v0"])
def test_momentum_drag_is_minus_lambda_p(env_id: str) -> None:
    def field(**kwargs: object) -> np.ndarray:
        env = gym.make(env_id, **kwargs).unwrapped
        obs, _ = env.reset(seed=4)
        return env.vector_field(obs, np.zeros(env.action_dim)), obs

    free, obs = field()
    damped, _ = field(drag=0.4, drag_form="momentum")
    n = len(obs) // 2
    np.testing.assert_allclose(damped[n:] - free[n:], -0.4 * obs[n:], atol=1e-12)
    with pytest.raises(ValueError, match="drag_form must be one of"):
        gym.make(env_id, drag_form="sideways")
    with pytest.raises(ValueError, match="start must be one of"):
        gym.make(env_id, start="nowhere")


def test_the_decon_authors_spring_pendulum_start() -> None:
    env = gym.make("physprior/SpringPendulum-v0", bobs=2, start="authors").unwrapped
    draws = np.stack([env.reset(seed=s)[0] for s in range(400)])
    x = draws[:, :6].reshape(-1, 2, 3)
    drawn = env.masses[::-1]  # the authors' equilibrium takes the masses in drawing order
    weight = 9.81 * np.cumsum(drawn[::-1])[::-1]
    np.testing.assert_allclose(x[:, :, 2].mean(0), -np.cumsum(weight / 10.0), atol=0.15)
    assert 0.8 < x[:, :, 2].std(0).mean() < 1.0  # sqrt(0.8^2 + 0.4^2) = 0.89
    velocities = draws[:, 6:] / env.masses.repeat(3)
    assert 0.55 < velocities.std() < 0.65
