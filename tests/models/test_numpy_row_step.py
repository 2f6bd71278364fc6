"""`numpy_row_step`: a model's step on one row in numpy equals its torch `step` to rounding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from physprior.models import make

ACTIVATIONS = ["tanh", "softplus", "relu", "silu", "elu"]
TOLERANCE = {torch.float32: dict(rtol=2e-5, atol=2e-6), torch.float64: dict(rtol=1e-12, atol=1e-13)}


def _model(name: str, dtype: torch.dtype = torch.float32, **config):
    torch.manual_seed(0)
    model = make(name, obs_dim=4, action_dim=2, q_dim=2, dt=0.1, hidden=16, **config)
    model.fit_normalization(torch.randn(64, 2, 4) * 3.0, torch.randn(64, 1, 2))
    with torch.no_grad():  # weights large enough that softplus passes its threshold, elu < 0
        for p in model.parameters():
            p.mul_(4.0)
    return model.to(dtype).eval()


def _assert_rows_match(model, dtype: torch.dtype, rows: int = 20) -> None:
    rng = np.random.default_rng(1)
    z = rng.normal(0.0, 3.0, (rows, 4))
    u = rng.normal(0.0, 2.0, (rows, 2))
    with torch.no_grad():
        step = model.numpy_row_step()
        assert step is not None
        expected = model.step(torch.as_tensor(z, dtype=dtype), torch.as_tensor(u, dtype=dtype))
        got = np.stack([step(z[i].astype(step_dtype(dtype)), u[i]) for i in range(rows)])
    assert got.dtype == step_dtype(dtype)
    np.testing.assert_allclose(got, expected.numpy(), **TOLERANCE[dtype])


def step_dtype(dtype: torch.dtype):
    return np.float32 if dtype == torch.float32 else np.float64


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_mlp_numpy_row_step_equals_the_torch_step(activation: str, dtype: torch.dtype) -> None:
    _assert_rows_match(_model("mlp", dtype, activation=activation), dtype)


def test_probabilistic_mlp_numpy_row_step_is_its_mean_step() -> None:
    _assert_rows_match(_model("mlp", probabilistic=True), torch.float32)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("activation", ["tanh", "softplus"])
def test_node_so_numpy_row_step_equals_the_torch_step(activation: str, dtype: torch.dtype) -> None:
    _assert_rows_match(_model("node-so", dtype, state_layout="qv", activation=activation), dtype)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize(("integrator", "substeps"), [("rk4", 1), ("rk4", 3), ("euler", 2)])
def test_node_numpy_row_step_equals_the_torch_step(
    integrator: str, substeps: int, dtype: torch.dtype
) -> None:
    model = _model("node", dtype, integrator=integrator, substeps=substeps, activation="silu")
    _assert_rows_match(model, dtype)


def test_node_so_numpy_row_step_follows_the_evaluation_substeps() -> None:
    model = _model("node-so", state_layout="qv", substeps=8, test_substeps=3)
    _assert_rows_match(model, torch.float32)  # eval: 3 substeps, as `step` uses
    model.train()
    with torch.no_grad():
        step = model.numpy_row_step()
        z, u = np.ones(4, np.float32), np.ones(2, np.float32)
        np.testing.assert_allclose(
            step(z, u), model.step(torch.ones(1, 4), torch.ones(1, 2))[0].numpy(), rtol=2e-5
        )


def test_no_numpy_row_step_where_numpy_cannot_follow() -> None:
    with torch.no_grad():
        assert _model("node-so", state_layout="qv", integrator="rk4").numpy_row_step() is None
        assert _model("node-so", state_layout="qp").numpy_row_step() is None  # a mass matrix
        assert _model("mlp", torch.bfloat16).numpy_row_step() is None  # numpy lacks bf16
        assert _model("hnn").numpy_row_step() is None  # needs autograd: no numpy form
        assert _model("node", integrator="leapfrog").numpy_row_step() is None  # split
        assert _model("node", angle_embedding=True).numpy_row_step() is None


def test_numpy_row_step_sees_a_weight_change() -> None:
    model = _model("mlp")
    z, u = np.full(4, 0.5, np.float32), np.full(2, -0.5, np.float32)
    with torch.no_grad():
        before = model.numpy_row_step()
        assert model.numpy_row_step() is before  # kept while the weights stay
        first = before(z, u)
        next(model.parameters()).add_(1.0)  # an optimiser step is an in-place change too
        after = model.numpy_row_step()
        assert after is not before
        np.testing.assert_allclose(
            after(z, u), model.step(torch.as_tensor(z[None]), torch.as_tensor(u[None]))[0].numpy(),
            rtol=2e-5,
        )  # fmt: skip
    assert not np.allclose(after(z, u), first)


@pytest.mark.parametrize("name", ["mlp", "node", "node-so"])
def test_numpy_row_step_refuses_bad_rows_in_one_line(name: str) -> None:
    extra = {"state_layout": "qv"} if name == "node-so" else {}
    with torch.no_grad():
        step = _model(name, **extra).numpy_row_step()
    z, u = np.zeros(4), np.zeros(2)
    with pytest.raises(ValueError, match=r"^z must have shape \(4,\), got \(1, 4\)$"):
        step(z[None], u)
    with pytest.raises(ValueError, match=r"^u must have shape \(2,\), got \(3,\)$"):
        step(z, np.zeros(3))
    with pytest.raises(TypeError, match=r"^z must be an array of numbers, got 'abc'$"):
        step("abc", u)
    step(z.tolist(), u.tolist())  # lists of numbers are rows too
