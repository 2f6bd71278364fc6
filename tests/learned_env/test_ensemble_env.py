"""Ensembles in the learned envs: a chosen member, a random one, the mean, the disagreement,
and rollouts with each row on a member of the caller's choosing (the planners' particles)."""

from __future__ import annotations

import gymnasium as gym
import numpy as np
import pytest
import torch

import physprior
from physprior.learned_env import LearnedDynamicsEnv, ModelDynamics
from physprior.models import make

ENV = "physprior/MassSpring-v0"
K = 3


@pytest.fixture(scope="module")
def ensemble():
    torch.manual_seed(0)
    dt = gym.make(ENV).unwrapped.dt
    model = make(
        "ensemble", member="node-so", size=K, obs_dim=2, action_dim=1, dt=dt, env_id=ENV,
        member_config={"hidden": 16},
    )  # fmt: skip
    return model.double().eval()


def _inputs(n: int = 12, horizon: int = 5):
    generator = torch.Generator().manual_seed(3)
    obs = torch.randn(n, 2, generator=generator, dtype=torch.float64)
    actions = torch.rand(n, horizon, 1, generator=generator, dtype=torch.float64) * 2 - 1
    return obs, actions


def test_a_chosen_member_steps_as_that_member_alone(ensemble):
    obs, actions = _inputs()
    for k in range(K):
        chosen = ModelDynamics(ensemble, ENV, member=k)
        alone = ModelDynamics(ensemble.members[k], ENV)
        for a, b in zip(
            chosen.step(obs, actions[:, 0]), alone.step(obs, actions[:, 0]), strict=True
        ):
            torch.testing.assert_close(a, b, rtol=0, atol=1e-12)
        torch.testing.assert_close(
            chosen.rollout_returns(obs, actions), alone.rollout_returns(obs, actions),
            rtol=0, atol=1e-10,
        )  # fmt: skip


def test_the_mean_and_the_disagreement(ensemble):
    obs, actions = _inputs()
    dynamics = ModelDynamics(ensemble, ENV)
    next_obs = dynamics.step(obs, actions[:, 0])[0]
    with torch.no_grad():
        members = ensemble.members_step(obs, actions[:, 0])
    torch.testing.assert_close(next_obs, members.mean(0), rtol=0, atol=1e-12)
    torch.testing.assert_close(dynamics.last_disagreement, members.std(0).mean(-1))
    single = ModelDynamics(ensemble.members[0], ENV)
    single.step(obs, actions[:, 0])
    assert single.last_disagreement is None


def test_a_random_member_per_row_and_step_repeats_under_a_seed(ensemble):
    obs, actions = _inputs(n=200)
    dynamics = ModelDynamics(ensemble, ENV, member="random")
    with torch.no_grad():
        members = ensemble.members_step(obs, actions[:, 0])
    dynamics.seed(5)
    first = dynamics.step(obs, actions[:, 0])[0]
    # Every row is one member's prediction, and every member is drawn for some rows.
    match = (members - first).abs().amax(-1) < 1e-12  # (K, N)
    assert bool(match.any(0).all()) and bool(match.any(1).all())
    dynamics.seed(5)
    assert torch.equal(dynamics.step(obs, actions[:, 0])[0], first)


def test_ts_inf_rollouts_keep_each_row_on_its_member(ensemble):
    obs, actions = _inputs()
    dynamics = ModelDynamics(ensemble, ENV)
    members = torch.arange(12) % K
    returns = dynamics.rollout_returns(obs, actions, members=members)
    for k in range(K):
        alone = ModelDynamics(ensemble.members[k], ENV).rollout_returns(obs, actions)
        rows = members == k
        torch.testing.assert_close(returns[rows], alone[rows], rtol=0, atol=1e-10)


def test_ts_inf_rollouts_with_uneven_and_empty_member_groups(ensemble):
    obs, actions = _inputs(n=5)
    members = torch.tensor([2, 0, 2, 2, 0])  # member 1 gets no row; groups of 2 and 3
    returns = ModelDynamics(ensemble, ENV).rollout_returns(obs, actions, members=members)
    for k in (0, 2):
        alone = ModelDynamics(ensemble.members[k], ENV).rollout_returns(obs, actions)
        rows = members == k
        torch.testing.assert_close(returns[rows], alone[rows], rtol=0, atol=1e-10)


def test_sampled_ts_inf_particles_stay_on_their_members():
    # Members whose predicted spread is nearly nil: the sampled particles' returns are then
    # their own member's deterministic returns, row by row.
    torch.manual_seed(0)
    dt = gym.make(ENV).unwrapped.dt
    ensemble = make(
        "ensemble", member="mlp", size=K, obs_dim=2, action_dim=1, dt=dt, env_id=ENV,
        member_config={"hidden": 16, "probabilistic": True},
    ).double()  # fmt: skip
    with torch.no_grad():
        for member in ensemble.members:
            member.max_log_var.fill_(-40.0)
            member.min_log_var.fill_(-50.0)
    obs, actions = _inputs(n=12, horizon=4)
    members = torch.arange(12) % K
    dynamics = ModelDynamics(ensemble, ENV, sample=True)
    dynamics.seed(1)
    returns = dynamics.rollout_returns(obs, actions, members=members)
    for k in range(K):
        alone = ModelDynamics(ensemble.members[k], ENV).rollout_returns(obs, actions)
        rows = members == k
        torch.testing.assert_close(returns[rows], alone[rows], rtol=0, atol=1e-6)
    dynamics.seed(1)
    assert torch.equal(dynamics.rollout_returns(obs, actions, members=members), returns)


def test_ts1_rollouts_switch_members_per_step(ensemble):
    obs, actions = _inputs(n=7, horizon=4)
    schedule = torch.tensor([[0, 1, 2, 0], [2, 2, 1, 0], [1, 0, 0, 0], [0, 0, 0, 0]] * 2)[:7]
    returns = ModelDynamics(ensemble, ENV).rollout_returns(obs, actions, members=schedule)
    # The same by hand: each step, each row on its scheduled member.
    singles = [ModelDynamics(m, ENV) for m in ensemble.members]
    z, total = obs.clone(), torch.zeros(7, dtype=torch.float64)
    for t in range(4):
        stepped = [d.step(z, actions[:, t]) for d in singles]
        rows = torch.arange(7)
        next_obs = torch.stack([s[0] for s in stepped])[schedule[:, t], rows]
        reward = torch.stack([s[1] for s in stepped])[schedule[:, t], rows]
        z, total = next_obs, total + reward
    torch.testing.assert_close(returns, total, rtol=0, atol=1e-10)


def test_bad_members_and_modes_are_refused(ensemble):
    obs, actions = _inputs()
    dynamics = ModelDynamics(ensemble, ENV)
    with pytest.raises(ValueError, match=r"members must be int64 of shape \(12,\) or \(12, 5\)"):
        dynamics.rollout_returns(obs, actions, members=torch.zeros(12, 2, dtype=torch.int64))
    with pytest.raises(ValueError, match=r"members must be int64"):
        dynamics.rollout_returns(obs, actions, members=torch.zeros(12))
    with pytest.raises(ValueError, match=r"members must lie in \[0, 3\)"):
        dynamics.rollout_returns(obs, actions, members=torch.full((12,), 3))
    with pytest.raises(ValueError, match=r"member must be 'mean', 'random' or a member index"):
        ModelDynamics(ensemble, ENV, member=3)
    single = ensemble.members[0]
    with pytest.raises(ValueError, match="member='random' applies to an ensemble model"):
        ModelDynamics(single, ENV, member="random")
    with pytest.raises(ValueError, match="members applies to an ensemble model"):
        ModelDynamics(single, ENV).rollout_returns(obs, actions, members=torch.zeros(12).long())


def test_the_envs_report_disagreement_and_repeat_random_members(ensemble):
    env = gym.make("physprior/Learned-v0", model=ensemble, base_env_id=ENV, member="random")
    episodes = []
    for _ in range(2):
        obs, _ = env.reset(seed=4)
        states, spreads = [obs], []
        for t in range(5):
            obs, _, _, _, info = env.step(np.array([0.3 * t - 0.5]))
            states.append(obs)
            spreads.append(info["model_disagreement"])
        episodes.append((np.stack(states), spreads))
    np.testing.assert_array_equal(episodes[0][0], episodes[1][0])
    assert all(isinstance(s, float) and s > 0 for s in episodes[0][1])
    vector = physprior.LearnedVectorEnv(ensemble, ENV, 4)
    vector.reset(seed=0)
    info = vector.step(np.zeros((4, 1), dtype=np.float32))[4]
    assert info["model_disagreement"].shape == (4,) and bool((info["model_disagreement"] > 0).all())
    plain = LearnedDynamicsEnv(ensemble.members[0], ENV)
    plain.reset(seed=0)
    assert "model_disagreement" not in plain.step(np.zeros(1, dtype=np.float32))[4]


def test_sampling_draws_from_the_members_gaussians_and_repeats_under_a_seed():
    torch.manual_seed(0)
    dt = gym.make(ENV).unwrapped.dt
    ensemble = make(
        "ensemble", member="mlp", size=K, obs_dim=2, action_dim=1, dt=dt, env_id=ENV,
        member_config={"hidden": 16, "probabilistic": True},
    ).double()  # fmt: skip
    obs = torch.tensor([[0.4, -0.1]], dtype=torch.float64).expand(4000, 2)
    action = torch.zeros(4000, 1, dtype=torch.float64)
    dynamics = ModelDynamics(ensemble, ENV, member=1, sample=True)
    dynamics.seed(0)
    drawn = dynamics.step(obs, action)[0]
    with torch.no_grad():
        mean, log_var = ensemble.members[1].step_distribution(obs[:1], action[:1])
    torch.testing.assert_close(
        drawn.mean(0), mean[0], atol=0.05 * float(log_var.exp().sqrt().max()), rtol=0
    )
    torch.testing.assert_close(drawn.std(0), (0.5 * log_var[0]).exp(), atol=0, rtol=0.05)
    dynamics.seed(0)
    assert torch.equal(dynamics.step(obs, action)[0], drawn)
    # Particles on their members draw too; a single deterministic model cannot sample.
    members = torch.arange(12) % K
    returns = dynamics.rollout_returns(obs[:12], torch.zeros(12, 3, 1), members=members)
    assert returns.shape == (12,) and bool(torch.isfinite(returns).all())
    with pytest.raises(ValueError, match="sample=True draws from a probabilistic model"):
        ModelDynamics(make("mlp", obs_dim=2, action_dim=1, dt=dt), ENV, sample=True)
