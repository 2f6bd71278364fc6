"""MBPO: real steps, model fits and branched rollouts happen, runs repeat, bad configs fail."""

from __future__ import annotations

import json

import gymnasium as gym
import numpy as np
import pytest
import torch
from gymnasium import spaces
from stable_baselines3.common.evaluation import evaluate_policy

import physprior
from physprior.agents.mbpo import MBPO, MBPOConfig
from physprior.agents.mbpo._buffers import MixedReplayBuffer, ModelBuffer

ENV = "physprior/InvertedPendulumFull-v0"
OBS = np.array(
    [[0.0, 0.0, 0.0, 0.0], [0.1, -0.05, 0.2, 0.1], [-0.2, 0.1, -0.1, 0.3]], dtype=np.float64
)


def tiny(**overrides):
    """A config that does every part of MBPO within a couple hundred real steps."""
    fields = dict(
        learning_starts=50,
        model_train_every=50,
        model_epochs=2,
        model_batch_size=64,
        model_kwargs={"hidden": 32},
        rollout_every=10,
        rollouts_per_step=4,
        rollout_length=2,
        model_retain_steps=100,
        gradient_steps=1,
        batch_size=32,
        buffer_size=1000,
        sac_kwargs={"policy_kwargs": {"net_arch": [32, 32]}},
        seed=3,
    )
    fields.update(overrides)
    return MBPOConfig(**fields)


@pytest.fixture(scope="module")
def trained():
    agent = MBPO(ENV, tiny())
    agent.learn(150, progress=False)
    return agent


# ---------------------------------------------------------------------------------- the loop
def test_learn_fits_the_model_branches_rollouts_and_trains_sac(trained):
    agent = trained
    assert agent.real_steps == 150
    # Fits at learning_starts and every 50 steps after: steps 50, 100, 150.
    assert agent.model_fits == 3
    assert [h["step"] for h in agent.history] == [50, 100, 150]
    assert [h["windows"] for h in agent.history] == [50, 100, 150]
    assert all(np.isfinite(h["loss"]) for h in agent.history)
    # Rollout batches at steps 50, 60, ..., 150 of 4 * 10 starts each, up to 2 model steps.
    starts = 11 * 4 * 10
    assert starts <= agent.model_transitions + agent.model_diverged <= 2 * starts
    assert len(agent.buffer.model) == min(agent.model_transitions, 4 * 2 * 100)
    # SB3 trains once per step after learning_starts.
    assert agent.gradient_steps == 150 - 50
    assert isinstance(agent.model, physprior.models.TransitionModel)


def test_model_rows_are_on_the_action_scale_sb3_stores(trained):
    model = trained.buffer.model
    rows = slice(0, len(model))
    assert np.all(np.abs(model.actions[rows]) <= 1.0)
    assert np.all(np.isfinite(model.obs[rows])) and np.all(np.isfinite(model.next_obs[rows]))
    assert set(np.unique(model.dones[rows])) <= {0.0, 1.0}
    # InvertedPendulum's reward is 1 per step, terminal or not.
    np.testing.assert_array_equal(model.rewards[rows], 1.0)


def test_sac_batches_mix_real_and_model_rows(trained):
    batch = trained.buffer.sample(40)
    assert batch.observations.shape == (40, 4) and batch.actions.shape == (40, 1)
    assert batch.rewards.shape == (40, 1) and batch.dones.shape == (40, 1)


def test_predict_has_sb3_shapes_and_evaluate_policy_scores_it(trained):
    action, state = trained.predict(OBS[0])
    assert action.shape == (1,) and state is None
    actions, _ = trained.predict(OBS)
    assert actions.shape == (3, 1) and np.all(np.abs(actions) <= 3.0)
    env = gym.make(ENV, max_episode_steps=20)
    env.reset(seed=0)
    mean, _ = evaluate_policy(trained, env, n_eval_episodes=1, warn=False)
    assert 1 <= float(mean) <= 20  # type: ignore[arg-type]
    env.close()


def test_same_seed_gives_the_same_run(trained):
    again = MBPO(ENV, tiny())
    again.learn(150, progress=False)
    np.testing.assert_array_equal(again.predict(OBS)[0], trained.predict(OBS)[0])
    assert again.history == trained.history
    assert again.model_transitions == trained.model_transitions
    for (name, a), b in zip(
        again.model.state_dict().items(), trained.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b), name


def test_save_and_load_round_trip(trained, tmp_path):
    folder = trained.save(tmp_path / "mbpo")
    assert sorted(p.name for p in folder.iterdir()) == ["mbpo.json", "model", "sac.zip"]
    record = json.loads((folder / "mbpo.json").read_text())
    assert record["env_id"] == ENV and record["model_fits"] == 3
    assert physprior.load_model(folder / "model").config == trained.model.config
    loaded = MBPO.load(folder)
    assert loaded.config == trained.config
    np.testing.assert_array_equal(loaded.predict(OBS)[0], trained.predict(OBS)[0])
    for a, b in zip(
        loaded.model.state_dict().values(), trained.model.state_dict().values(), strict=True
    ):
        assert torch.equal(a, b)


# ---------------------------------------------------------------------------------- buffers
def _mixed(real_ratio):
    obs_space = spaces.Box(-np.inf, np.inf, (2,), np.float64)
    act_space = spaces.Box(-1.0, 1.0, (1,), np.float32)
    buffer = MixedReplayBuffer(
        50, obs_space, act_space, device="cpu", real_ratio=real_ratio, model_capacity=30
    )
    for _ in range(10):  # real rows have observations 0
        buffer.add(
            np.zeros((1, 2)), np.zeros((1, 2)), np.zeros((1, 1)), np.zeros(1), np.zeros(1), [{}]
        )
    return buffer


@pytest.mark.parametrize("ratio", [0.0, 0.25, 1.0])
def test_mixed_sample_draws_the_real_fraction(ratio):
    buffer = _mixed(ratio)
    assert (buffer.sample(16).observations == 0).all()  # no model rows yet: all real
    n = 5
    buffer.model.add(np.ones((n, 2)), np.zeros((n, 1)), np.ones(n), np.ones((n, 2)), np.zeros(n))
    batch = buffer.sample(16)
    real = int((batch.observations[:, 0] == 0).sum())
    assert real == round(16 * ratio)
    assert batch.observations.dtype == torch.float64 and batch.rewards.shape == (16, 1)


def test_model_buffer_is_a_ring():
    ring = ModelBuffer(4, 1, 1, np.float64)
    for start in (0, 3):
        n = 3
        values = np.arange(start, start + n, dtype=np.float64)[:, None]
        ring.add(values, np.zeros((n, 1)), np.zeros(n), values, np.zeros(n))
    assert len(ring) == 4 and ring.added == 6
    assert sorted(ring.obs[:, 0]) == [2.0, 3.0, 4.0, 5.0]
    ring.add(np.full((9, 1), 7.0), np.zeros((9, 1)), np.zeros(9), np.zeros((9, 1)), np.zeros(9))
    assert (ring.obs == 7.0).all() and ring.added == 15


# ---------------------------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("fields", "error", "match"),
    [
        ({"rollout_length": 0}, ValueError, "rollout_length must be a positive integer"),
        ({"model_train_every": 1.5}, ValueError, "model_train_every"),
        ({"real_ratio": 1.5}, ValueError, r"real_ratio must be in \[0, 1\]"),
        ({"gradient_steps": -1}, ValueError, "gradient_steps must be >= 0"),
        ({"model_window": 1}, ValueError, "model_window must be >= 2"),
        ({"model_lr": 0.0}, ValueError, "model_lr must be a finite number > 0"),
        ({"model_weight_decay": -1.0}, ValueError, "model_weight_decay must be a finite number >="),
        ({"seed": -1}, ValueError, "seed"),
        ({"model": "gpt"}, ValueError, "unknown model 'gpt'"),
        ({"model_kwargs": {"widht": 3}}, TypeError, "unknown config field"),
        ({"model_kwargs": {"obs_dim": 3}}, ValueError, "may not set obs_dim"),
        ({"sac_kwargs": {"gradient_steps": 3}}, ValueError, "may not set gradient_steps"),
        ({"device": "toaster"}, ValueError, "not a torch device"),
        ({"ensemble": 0}, ValueError, "ensemble must be a positive integer or None"),
        ({"max_episode_steps": 0}, ValueError, "max_episode_steps must be a positive integer"),
        ({"rollout_schedule": (5, 5, 1)}, ValueError, r"rollout_schedule must be \(start"),
        ({"rollout_schedule": (0, 5, 3)}, ValueError, "1 <= first_length <= rollout_length"),
    ],
)
def test_bad_config_is_refused_in_one_line(fields, error, match):
    with pytest.raises(error, match=match) as info:
        MBPOConfig(**fields)
    assert "\n" not in str(info.value)


def test_bad_env_and_steps_are_refused():
    with pytest.raises(ValueError, match="unknown env id 'physprior/Nope-v0'"):
        MBPO("physprior/Nope-v0", tiny())
    with pytest.raises(TypeError, match="MBPOConfig"):
        MBPO(ENV, {"seed": 0})  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="unknown MBPOConfig field"):
        MBPOConfig.from_dict({"sed": 1})


def test_bad_total_steps_is_refused(trained):
    with pytest.raises(ValueError, match="total_steps must be a positive integer"):
        trained.learn(0)


def test_a_config_json_cannot_hold_is_saved_but_not_loaded(tmp_path):
    config = tiny(sac_kwargs={"policy_kwargs": {"net_arch": [8], "activation_fn": torch.nn.ReLU}})
    folder = MBPO(ENV, config).save(tmp_path / "mbpo")
    assert json.loads((folder / "mbpo.json").read_text())["loadable"] is False
    with pytest.raises(ValueError, match="not JSON values"):
        MBPO.load(folder)
    with pytest.raises(ValueError, match="is not an MBPO folder"):
        MBPO.load(tmp_path / "nothing")


# ---------------------------------------------------------------------------------- slow
@pytest.mark.slow
def test_mbpo_improves_inverted_pendulum():
    """1000 real steps lift the return well above the random policy's (90 s idle, 3 min loaded).

    Measured on the 2-core dev machine (seed 0): 7.0 before, 66.4 after 1000 steps; the model's
    one-step loss falls from 0.26 to 4e-4 (normalised units) over the four fits.
    """
    config = MBPOConfig(
        learning_starts=250,
        model_train_every=250,
        rollout_every=250,
        rollouts_per_step=100,
        model_epochs=10,
        gradient_steps=10,
        sac_kwargs={"policy_kwargs": {"net_arch": [64, 64]}},
        seed=0,
    )
    agent = MBPO(ENV, config)
    before, _ = agent.evaluate(5)
    agent.learn(1000, progress=False)
    after, _ = agent.evaluate(5)
    assert agent.model_fits == 4 and agent.history[-1]["loss"] < 0.1 * agent.history[0]["loss"]
    assert after >= max(3 * before, 30.0), (before, after)


# ---------------------------------------------------------------------------------- ensembles
def test_an_ensemble_refits_every_member_and_branches_on_random_members(tmp_path):
    config = tiny(ensemble=3, model_kwargs={"hidden": 16, "probabilistic": True})
    agent = MBPO(ENV, config)
    assert agent.model.name == "ensemble" and agent.model.size == 3
    assert agent.dynamics.member == "random" and agent.dynamics.sample
    agent.learn(100, progress=False)
    assert agent.model_fits == 2 and agent.model_transitions > 0
    # The members were each refitted on their own resample: they differ.
    first, second = (next(m.parameters()) for m in list(agent.model.members)[:2])
    assert not torch.equal(first, second)
    agent.save(tmp_path / "agent")
    loaded = MBPO.load(tmp_path / "agent")
    obs = torch.zeros(4, agent.model.obs_dim, dtype=agent.model.dtype)
    with torch.no_grad():
        assert torch.equal(loaded.model.members_step(obs), agent.model.members_step(obs))


def test_episodes_are_capped_as_configured():
    agent = MBPO(ENV, tiny(max_episode_steps=7))
    agent.learn(30, progress=False)
    lengths = agent.sac.get_env().envs[0].get_episode_lengths()
    assert lengths and max(lengths) <= 7 and agent.env.spec.max_episode_steps == 7


def test_the_rollout_length_follows_mbpos_linear_schedule():
    config = tiny(rollout_length=15, rollout_schedule=(100, 200, 1))
    lengths = [config.rollout_length_at(step) for step in (0, 100, 150, 199, 200, 500)]
    assert lengths == [1, 1, 8, 14, 15, 15]
    assert tiny(rollout_length=4).rollout_length_at(0) == 4
    assert MBPOConfig.from_dict(config.to_dict()) == config  # JSON's lists back to a tuple
