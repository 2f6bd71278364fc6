"""`ensemble`: K members of any state model, stepped in one vmapped call."""

from __future__ import annotations

import pytest
import torch

from physprior.models import make
from physprior.models.ensemble import Ensemble

#: Every state model, small, with a config that exercises its own path.
MEMBERS = {
    "mlp": {"hidden": 16},
    "node": {"hidden": 16, "substeps": 2},
    "node-so": {"hidden": 16, "substeps": 2},
    "hnn": {"hidden": 16},
    "srnn": {"hidden": 16},
    "vin": {"hidden": 16},
    "rnn": {"hidden": 16},
    "lstm": {"hidden": 16},
    "srnn-rebound": {"hidden": 16},
}
K = 3


def _ensemble(member: str, *, action_dim: int = 2, dtype=torch.float64, **extra) -> Ensemble:
    torch.manual_seed(0)
    env = {"env_id": "physprior/HeavyBilliard-v0"} if member == "srnn-rebound" else {}
    if member in ("hnn", "srnn", "vin", "srnn-rebound"):
        action_dim = 0 if member != "hnn" else action_dim
    layout = {"state_layout": extra.pop("state_layout")} if "state_layout" in extra else {}
    model = make(
        "ensemble",
        member=member,
        size=K,
        obs_dim=4,
        action_dim=action_dim,
        dt=0.1,
        member_config=MEMBERS[member] | extra,
        **env,
        **layout,
    )
    assert isinstance(model, Ensemble)
    return model.to(dtype).eval()


def _inputs(model: Ensemble, batch: int = 5, steps: int = 4):
    generator = torch.Generator().manual_seed(1)
    z = torch.randn(batch, 4, generator=generator, dtype=torch.float64)
    actions = torch.randn(batch, steps, model.action_dim, generator=generator, dtype=torch.float64)
    return z, actions


@pytest.mark.parametrize("member", MEMBERS)
def test_the_batched_step_equals_each_members_own(member):
    model = _ensemble(member)
    z, actions = _inputs(model)
    with torch.no_grad():
        batched = model.members_step(z, actions[:, 0])
        own = torch.stack([m.step(z, actions[:, 0]) for m in model.members])
        torch.testing.assert_close(batched, own, rtol=0, atol=1e-12)
        # One state per member: each member steps its own.
        per_member = z + 0.1 * torch.arange(K, dtype=z.dtype)[:, None, None]
        batched = model.members_step(per_member, actions[:, 0])
        own = torch.stack(
            [m.step(per_member[k], actions[:, 0]) for k, m in enumerate(model.members)]
        )
        torch.testing.assert_close(batched, own, rtol=0, atol=1e-12)


@pytest.mark.parametrize("member", MEMBERS)
def test_members_rollout_equals_each_members_rollout(member):
    model = _ensemble(member)
    z, actions = _inputs(model)
    with torch.no_grad():
        batched = model.members_rollout(z, actions)
        own = torch.stack([m.rollout(z, actions) for m in model.members])
    assert batched.shape == (K, 5, 5, 4)
    torch.testing.assert_close(batched, own, rtol=0, atol=1e-10)


#: The memoryless members that can be probabilistic; `mlp` rolls out through its stacked
#: networks (`stacked_rollout`), the others through their `noisy_rollout` under vmap.
PROBABILISTIC = ["mlp", "node", "node-so", "hnn", "srnn", "vin"]


@pytest.mark.parametrize("member", PROBABILISTIC)
def test_sampled_members_rollout_equals_each_members_sampled_steps(member):
    model = _ensemble(member, probabilistic=True)
    with torch.no_grad():  # away from the initial bounds, so that every term matters
        for parameter in model.parameters():
            parameter.add_(0.05 * torch.randn_like(parameter))
    z, actions = _inputs(model)
    noise = torch.randn(K, 5, 4, 4, generator=torch.Generator().manual_seed(2), dtype=z.dtype)
    with torch.no_grad():
        batched = model.members_rollout(z, actions, noise=noise)
        for k, m in enumerate(model.members):  # by hand: draw each step from its Gaussian
            state = z
            for t in range(4):
                mean, log_var = m.step_distribution(state, actions[:, t])
                state = mean + (0.5 * log_var).exp() * noise[k, :, t]
                torch.testing.assert_close(batched[k, :, t + 1], state, rtol=0, atol=1e-12)
        # Without noise: the members' own deterministic rollouts.
        own = torch.stack([m.rollout(z, actions) for m in model.members])
        torch.testing.assert_close(model.members_rollout(z, actions), own, rtol=0, atol=1e-10)


def test_bad_rollout_noise_is_refused():
    model = _ensemble("mlp", probabilistic=True)
    z, actions = _inputs(model)
    with pytest.raises(ValueError, match=r"noise has shape \(3, 5, 4\), expected \(3, 5, 4, 4\)"):
        model.members_rollout(z, actions, noise=torch.zeros(3, 5, 4))
    deterministic = _ensemble("mlp")
    with pytest.raises(ValueError, match="noise needs probabilistic members"):
        deterministic.members_rollout(z, actions, noise=torch.zeros(K, 5, 4, 4))


def test_the_stacked_rollout_sees_a_changed_member_and_trains():
    model = _ensemble("mlp")
    z, actions = _inputs(model)
    with torch.no_grad():
        before = model.members_rollout(z, actions)
        next(model.members[1].parameters()).add_(1.0)
        after = model.members_rollout(z, actions)
        own = model.members[1].rollout(z, actions)
    assert torch.equal(after[0], before[0]) and not torch.allclose(after[1], before[1])
    torch.testing.assert_close(after[1], own, rtol=0, atol=1e-12)
    model.members_rollout(z, actions).square().sum().backward()  # gradients reach members
    assert all(p.grad is not None and bool(p.grad.abs().sum() > 0) for p in model.parameters()
               if p.requires_grad and p.ndim == 2)  # fmt: skip


@pytest.mark.parametrize("member", ["node-so", "node", "mlp"])
def test_qv_members_with_inference_fast_paths_batch_too(member):
    # [q, v] data (the full-state MuJoCo envs) takes node-so's preallocated inference loop.
    model = _ensemble(member, state_layout="qv", integrator="euler", substeps=4)
    z, actions = _inputs(model)
    with torch.no_grad():
        batched = model.members_rollout(z, actions)
        own = torch.stack([m.rollout(z, actions) for m in model.members])
    assert batched.shape == (K, 5, 5, 4)
    torch.testing.assert_close(batched, own, rtol=0, atol=1e-10)


def test_members_rollout_takes_one_action_sequence_per_member():
    model = _ensemble("node-so")
    z, actions = _inputs(model)
    per_member = actions + torch.arange(K, dtype=actions.dtype)[:, None, None, None]
    with torch.no_grad():
        batched = model.members_rollout(z, per_member)
        own = torch.stack([m.rollout(z, per_member[k]) for k, m in enumerate(model.members)])
    torch.testing.assert_close(batched, own, rtol=0, atol=1e-10)
    with pytest.raises(ValueError, match=r"actions have shape \(2, 5, 4, 2\), expected"):
        model.members_rollout(z, per_member[:2])


@pytest.mark.parametrize("member", ["mlp", "node-so", "hnn", "lstm"])
def test_members_differ_and_the_ensemble_step_is_their_mean(member):
    model = _ensemble(member)
    z, actions = _inputs(model)
    first = [p.detach() for p in model.members[0].parameters()]
    for other in model.members[1:]:
        assert any(not torch.equal(a, b) for a, b in zip(first, other.parameters(), strict=True))
    with torch.no_grad():
        members = model.members_step(z, actions[:, 0])
        torch.testing.assert_close(model.step(z, actions[:, 0]), members.mean(0), rtol=0, atol=0)
        spread = model.disagreement(z, actions[:, 0])
    assert spread.shape == (5,) and bool((spread > 0).all())
    torch.testing.assert_close(spread, members.std(0).mean(-1), rtol=0, atol=0)
    rollout = model.rollout(z, actions)
    assert rollout.shape == (5, 5, 4)


def test_a_single_member_has_no_disagreement():
    model = make("ensemble", member="mlp", size=1, obs_dim=4, dt=0.1)
    assert torch.equal(model.disagreement(torch.randn(6, 4)), torch.zeros(6))


def test_a_loss_on_the_batched_step_trains_every_member():
    model = _ensemble("node-so").train()
    z, actions = _inputs(model)
    model.members_step(z, actions[:, 0]).square().sum().backward()
    for member in model.members:
        grads = [p.grad for p in member.parameters()]
        assert all(g is not None for g in grads) and any(g.abs().sum() > 0 for g in grads)


def test_a_changed_member_is_seen_by_the_next_batched_call():
    model = _ensemble("mlp")
    z, actions = _inputs(model)
    with torch.no_grad():
        before = model.members_step(z, actions[:, 0])
        next(model.members[1].parameters()).add_(1.0)
        after = model.members_step(z, actions[:, 0])
        own = model.members[1].step(z, actions[:, 0])
    assert torch.equal(after[0], before[0]) and torch.equal(after[2], before[2])
    torch.testing.assert_close(after[1], own, rtol=0, atol=1e-12)
    assert not torch.allclose(after[1], before[1])
    as_float = model.float()
    assert as_float.members_step(z.float(), actions[:, 0].float()).dtype == torch.float32


def test_ensemble_of_builds_the_same_members_as_make():
    torch.manual_seed(0)
    built = Ensemble.of("node", 2, obs_dim=4, dt=0.1, hidden=8)
    assert built.config.member_config == {"hidden": 8}
    assert built.members[0].config.hidden == 8 and built.obs_dim == 4


@pytest.mark.parametrize(
    ("config", "error", "message"),
    [
        ({"member": "hgn"}, ValueError, "member 'hgn' is a pixel model"),
        ({"member": "ensemble"}, ValueError, "member must be a model name"),
        ({"member": "gru"}, ValueError, r"member must be a model name \(.*node-so.*\), got 'gru'"),
        ({"size": 0}, ValueError, r"size must be in \[1, 64\], got 0"),
        ({"size": 2.0}, TypeError, "EnsembleConfig.size must be int, got 2.0"),
        ({"member_config": {"dt": 0.2}}, ValueError, "member_config holds data field"),
        ({"member_config": {"width": 3}}, TypeError, "unknown config field"),
    ],
)
def test_bad_configs_are_refused_by_name(config, error, message):
    with pytest.raises(error, match=message):
        make("ensemble", **{"member": "mlp", "obs_dim": 4, "dt": 0.1, **config})


def test_bad_shapes_and_training_as_one_model_are_refused():
    model = _ensemble("mlp")
    z, actions = _inputs(model)
    with pytest.raises(ValueError, match=r"state has shape \(2, 5, 4\), expected \(B, 4\) or"):
        model.members_step(z.expand(2, 5, 4), actions[:, 0])
    with pytest.raises(ValueError, match=r"action has shape \(5, 3\), expected \(B, 2\)"):
        model.members_step(z, torch.zeros(5, 3))
    with pytest.raises(TypeError, match="train_ensemble fits each member"):
        model.training_loss(torch.zeros(2, 3, 4), torch.zeros(2, 2, 2))
