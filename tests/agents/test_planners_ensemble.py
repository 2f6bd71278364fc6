"""PETS's trajectory sampling through ensembles (TS-1, TS-inf, particles) and iCEM."""

from __future__ import annotations

import math

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import Tensor

import physprior  # noqa: F401  (registers the environments)
from physprior.agents.mpc import (
    CEMConfig,
    CEMPlanner,
    ICEMConfig,
    ICEMPlanner,
    MPPIConfig,
    MPPIPlanner,
    coloured_noise,
    make_planner,
    planner_config,
)
from physprior.learned_env import ModelDynamics
from physprior.models import make

SMALL = {"horizon": 10, "population": 64, "iterations": 3, "elites": 8}


class PointMass:
    """An exact 1-D point mass (obs `[x, v]`, force in [-2, 2], reward `-(x^2 + 0.1 v^2)`), as
    an 'ensemble' of K copies whose member k adds `k` to every reward; records the calls."""

    obs_dim = 2
    action_dim = 1

    def __init__(self, ensemble_size: int | None = None) -> None:
        self.action_low = torch.tensor([-2.0])
        self.action_high = torch.tensor([2.0])
        self.ensemble_size = ensemble_size
        self.calls: list[tuple[tuple[int, ...], Tensor | None]] = []

    def rollout_returns(
        self, obs: Tensor, actions: Tensor, discount: float = 1.0, *, members=None
    ) -> Tensor:
        self.calls.append((tuple(actions.shape), members))
        total = torch.zeros(obs.shape[0])
        x, v = obs[:, 0].clone(), obs[:, 1].clone()
        for t in range(actions.shape[1]):
            v = v + 0.1 * actions[:, t, 0].clamp(-2.0, 2.0)
            x = x + 0.1 * v
            total += discount**t * -(x**2 + 0.1 * v**2)
            if members is not None:
                step_members = members if members.ndim == 1 else members[:, t]
                total += step_members.to(total.dtype)
        return total


def _act(planner, observations) -> list[np.ndarray]:
    return [planner.predict(obs)[0] for obs in observations]


OBSERVATIONS = [np.array([1.0, 0.0]), np.array([0.8, -0.3]), np.array([0.5, -0.5])]


def test_icem_without_its_additions_is_cem_sample_for_sample():
    plain = CEMPlanner(PointMass(), CEMConfig(**SMALL))
    reduced = ICEMPlanner(
        PointMass(),
        ICEMConfig(
            **SMALL, noise_exponent=0.0, keep_elites=0.0, population_decay=1.0,
            add_mean=False, execute="mean",
        ),
    )  # fmt: skip
    for a, b in zip(_act(plain, OBSERVATIONS), _act(reduced, OBSERVATIONS), strict=True):
        np.testing.assert_array_equal(a, b)


def test_icem_decays_its_population_keeps_elites_and_steers_home():
    dynamics = PointMass()
    planner = ICEMPlanner(dynamics, ICEMConfig(**SMALL))  # keep 30% of 8 elites: 2
    planner.predict(OBSERVATIONS[0])
    # 64, 64 / 1.25 = 51 (+ 2 kept), 64 / 1.25^2 = 41 (+ 2 kept + the mean).
    assert [shape[0] for shape, _ in dynamics.calls] == [64, 53, 44]
    planner.predict(OBSERVATIONS[1])  # the shifted elites join the next decision's first round
    assert dynamics.calls[3][0][0] == 66
    # From x = 1 at rest it pushes back towards 0, as CEM does.
    planner.reset()
    assert planner.predict(OBSERVATIONS[0])[0][0] < -0.5


def test_coloured_noise_has_unit_variance_and_its_exponents_smoothness():
    generator = torch.Generator().manual_seed(0)
    white = coloured_noise((4000, 30), 0.0, generator)
    assert torch.equal(white, torch.randn((4000, 30), generator=generator.manual_seed(0)))
    # Variance (the zero frequency adds to the unit variance of the others) and smoothness
    # (lag-one autocorrelation) grow with the exponent.
    cases = ((0.0, 1.0, 0.0), (1.0, 1.16, 0.57), (2.0, 1.32, 0.88))
    for exponent, variance, lag_one in cases:
        noise = coloured_noise((20000, 30), exponent, generator.manual_seed(1), torch.float64)
        assert abs(float(noise.var()) - variance) < 0.03, exponent
        measured = float((noise[:, 1:] * noise[:, :-1]).mean() / noise.var())
        assert abs(measured - lag_one) < 0.03, (exponent, measured)


@pytest.mark.parametrize("planner_class", [CEMPlanner, MPPIPlanner, ICEMPlanner])
def test_ts_inf_keeps_each_particle_on_one_member_and_spreads_them_evenly(planner_class):
    dynamics = PointMass(ensemble_size=4)
    config_class = {CEMPlanner: CEMConfig, MPPIPlanner: MPPIConfig, ICEMPlanner: ICEMConfig}
    fields = {**SMALL, "propagation": "tsinf", "particles": 8}
    if planner_class is MPPIPlanner:
        fields.pop("elites")
    planner = planner_class(dynamics, config_class[planner_class](**fields))
    planner.predict(OBSERVATIONS[0])
    for shape, members in dynamics.calls:
        assert members is not None and members.shape == (shape[0],)  # one per whole rollout
        assert shape[0] % 8 == 0
        counts = torch.bincount(members, minlength=4)
        assert int(counts.max() - counts.min()) <= 1


def test_ts1_draws_members_per_step_and_a_candidate_scores_its_particles_mean():
    dynamics = PointMass(ensemble_size=4)
    planner = CEMPlanner(dynamics, CEMConfig(**SMALL, propagation="ts1", particles=4))
    planner.predict(OBSERVATIONS[0])
    _, members = dynamics.calls[0]
    assert members is not None and members.shape == (64 * 4, 10)
    assert not torch.equal(members[:, 0], members[:, 1])
    assert all(torch.bincount(members[:, t], minlength=4).tolist() == [64] * 4 for t in range(10))
    # The members' offsets average to 1.5 per step over a candidate's particles in expectation;
    # the scores the planner sees are the particles' means.
    candidate = torch.zeros(1, 10, 1)
    planner._allocate(1)
    returns = planner._returns(torch.tensor([[0.0, 0.0]]).repeat(1, 1), candidate.unsqueeze(0))
    drawn = dynamics.calls[-1][1]
    assert math.isclose(float(returns[0, 0]), float(drawn.sum()) / 4, rel_tol=1e-6)


def test_particles_through_a_single_model_and_bad_settings_are_refused():
    with pytest.raises(ValueError, match="propagation 'tsinf' carries particles through an"):
        CEMPlanner(PointMass(), CEMConfig(**SMALL, propagation="tsinf", particles=4))
    with pytest.raises(ValueError, match=r"particles must be 1 with propagation 'mean'"):
        CEMConfig(particles=5)
    with pytest.raises(ValueError, match=r"propagation must be one of mean, ts1, tsinf"):
        CEMConfig(propagation="ts2")
    with pytest.raises(ValueError, match=r"ICEMConfig.noise_exponent must be a number in"):
        ICEMConfig(noise_exponent=-1.0)
    with pytest.raises(ValueError, match=r"ICEMConfig.execute must be 'best' or 'mean'"):
        ICEMConfig(execute="first")
    with pytest.raises(TypeError, match="CEMPlanner needs a CEMConfig, got ICEMConfig"):
        CEMPlanner(PointMass(), ICEMConfig())
    assert isinstance(make_planner(PointMass(), planner_config("icem")), ICEMPlanner)


def test_pets_planning_through_a_real_ensemble():
    env_id = "physprior/InvertedPendulumFull-v0"
    env = gym.make(env_id)
    torch.manual_seed(0)
    ensemble = make(
        "ensemble", member="mlp", size=3, obs_dim=4, action_dim=1, dt=env.unwrapped.dt,
        env_id=env_id, member_config={"hidden": 16},
    )  # fmt: skip
    dynamics = ModelDynamics(ensemble, env_id)
    config = CEMConfig(horizon=5, population=30, iterations=2, elites=5, particles=3,
                       propagation="tsinf")  # fmt: skip
    obs, _ = env.reset(seed=0)
    action, _ = CEMPlanner(dynamics, config).predict(obs)
    assert action.shape == (1,) and -3.0 <= float(action[0]) <= 3.0
    again, _ = CEMPlanner(dynamics, config).predict(obs)
    np.testing.assert_array_equal(action, again)
