"""Initial-state optimisation on a model trained on an exact linear oscillator."""

from __future__ import annotations

import pytest
import torch

from physprior.training import TrainConfig, fit_initial_state, optimize_initial_states, train

NOISE = 0.1


@pytest.fixture(scope="module")
def trained(tmp_path_factory, tiny, windows):
    """A linear model fitted on noiseless oscillator windows (recurrent, 8 steps)."""
    states, actions, _ = windows(128, 8, seed=3)
    model = tiny(layers=0)
    config = TrainConfig(epochs=40, batch_size=32, lr=3e-2, lr_min=1e-4, progress=False)
    train(model, (states, actions), None, config, tmp_path_factory.mktemp("iso") / "run")
    return model.train(), windows


def _loss(model, states, actions, z0=None) -> float:
    with torch.no_grad():
        return float(model.training_loss(states, actions, initial_states=z0))


def test_iso_lowers_the_loss_on_noisy_windows(trained):
    model, windows = trained
    clean_s, clean_a, _ = windows(64, 8, seed=11)
    assert _loss(model, clean_s, clean_a) < 1e-4  # the model learned the dynamics

    noisy, actions, clean = windows(64, 8, noise=NOISE, seed=11)
    observed = noisy[:, 0]
    before = _loss(model, noisy, actions)
    weights = {k: v.clone() for k, v in model.state_dict().items()}
    model.zero_grad(set_to_none=True)
    z0 = optimize_initial_states(model, noisy, actions, observed, iterations=30)
    after = _loss(model, noisy, actions, z0)
    assert after < 0.5 * before
    # The refined states are closer to the true initial states than the observed ones.
    assert (z0 - clean[:, 0]).norm() < 0.5 * (observed - clean[:, 0]).norm()
    for key, value in model.state_dict().items():  # the model is frozen and gets no gradients
        assert torch.equal(value, weights[key])
    assert all(p.grad is None for p in model.parameters())


def test_chunked_problems_agree_with_one_problem(trained):
    model, windows = trained
    noisy, actions, _ = windows(32, 8, noise=NOISE, seed=12)
    whole = optimize_initial_states(model, noisy, actions, noisy[:, 0], iterations=30)
    chunks = optimize_initial_states(
        model, noisy, actions, noisy[:, 0], iterations=30, batch_size=8
    )
    assert _loss(model, noisy, actions, chunks) == pytest.approx(
        _loss(model, noisy, actions, whole), rel=0.05
    )


def test_fit_initial_state_at_test_time_improves_the_forecast(trained):
    model, windows = trained
    k, horizon = 10, 40
    noisy, actions, clean = windows(32, k - 1 + horizon, noise=NOISE, seed=13)
    model.train()
    z0 = fit_initial_state(model, noisy[:, :k], actions[:, : k - 1], iterations=30)
    assert model.training  # its mode is left as it was
    model.eval()
    with torch.no_grad():
        fitted = model.rollout(z0, actions)
        raw = model.rollout(noisy[:, 0], actions)
    future = slice(k, None)
    error = lambda pred: (pred[:, future] - clean[:, future]).norm()  # noqa: E731
    assert error(fitted) < 0.5 * error(raw)


def test_autonomous_models_need_no_actions(tiny):
    model = tiny(action_dim=0)
    observed = torch.randn(4, 5, 2)
    z0 = fit_initial_state(model, observed, iterations=2)
    assert z0.shape == (4, 2) and torch.isfinite(z0).all()


def test_shapes_are_checked(tiny):
    model = tiny()
    states, actions = torch.zeros(3, 5, 2), torch.zeros(3, 4, 1)
    with pytest.raises(ValueError, match=r"init has shape \(2, 2\), expected \(3, 2\)"):
        optimize_initial_states(model, states, actions, torch.zeros(2, 2))
    with pytest.raises(ValueError, match="actions have shape"):
        optimize_initial_states(model, states, actions[:, :3], states[:, 0])
    with pytest.raises(ValueError, match="K >= 2"):
        fit_initial_state(model, states[:, :1])


def test_trainer_refines_initial_states_after_the_warm_up(tmp_path, tiny, windows):
    noisy, actions, _ = windows(48, 8, noise=NOISE, seed=5)
    records = {}
    config = TrainConfig(
        epochs=5,
        batch_size=16,
        lr=1e-2,
        progress=False,
        iso=True,
        iso_warmup_epochs=3,
        iso_iterations=5,
    )
    result = train(
        tiny(layers=0),
        (noisy, actions),
        None,
        config,
        tmp_path / "run",
        callback=lambda r: records.update({r["epoch"]: r["train_loss"]}),
    )
    assert result.completed
    from safetensors.torch import load_file

    saved = load_file(str(tmp_path / "run" / "checkpoint" / "trainer.safetensors"))
    refined = saved["iso.initial_states"]
    assert refined.shape == (48, 2) and not torch.equal(refined, noisy[:, 0])
    # Epochs 4 and 5 roll out from refined states: their loss falls below the warm-up's.
    assert records[4] < records[3]
