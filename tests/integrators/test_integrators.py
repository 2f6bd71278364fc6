"""Fixed-step integrators against exact answers: convergence order, energy behaviour,
reversibility, symplecticity, dtypes and gradients."""

from __future__ import annotations

import ast
import math
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import Tensor

import physprior.integrators as integrators
from physprior.integrators import (
    EULER,
    LEAPFROG,
    RK4,
    SYMPLECTIC_EULER,
    Field,
    Integrator,
    SplitField,
    available_integrators,
    get_integrator,
    integrate,
    join_state,
    split_state,
)

NAMES = ("euler", "rk4", "leapfrog", "symplectic_euler")
DECLARED = {  # name -> (order, symplectic, requires_split)
    "euler": (1, False, False),
    "rk4": (4, False, False),
    "leapfrog": (2, True, True),
    "symplectic_euler": (1, True, True),
}
F64 = torch.float64


# ---------------------------------------------------------------------------------------------
# Systems with known behaviour
# ---------------------------------------------------------------------------------------------


def _identity(p: Tensor) -> Tensor:
    return p


def _neg(q: Tensor) -> Tensor:
    return -q


def _pendulum_force(q: Tensor) -> Tensor:
    return -torch.sin(q)


def _kepler_force(q: Tensor) -> Tensor:
    r = q.norm(dim=-1, keepdim=True)
    return -q / r**3


#: H = p^2/2 + q^2/2; q'' = -q.
OSCILLATOR = SplitField.from_separable(_identity, _neg)
#: H = p^2/2 + (1 - cos q).
PENDULUM = SplitField.from_separable(_identity, _pendulum_force)
#: H = |p|^2/2 - 1/|q| in the plane; D = 4.
KEPLER = SplitField.from_separable(_identity, _kepler_force)


def oscillator_plain(z: Tensor) -> Tensor:
    q, p = split_state(z)
    return join_state(p, -q)


def field_for(name: str, split: SplitField) -> Field:
    """The split field for split integrators; its plain form for the explicit ones."""
    return split if get_integrator(name).requires_split else oscillator_plain


def oscillator_exact(z0: Tensor, t: float) -> Tensor:
    q0, p0 = split_state(z0)
    c, s = math.cos(t), math.sin(t)
    return join_state(q0 * c + p0 * s, p0 * c - q0 * s)


DAMPING = 0.3


def damped_acceleration(q: Tensor, v: Tensor) -> Tensor:
    return -q - DAMPING * v


def damped_exact(z0: Tensor, t: float) -> Tensor:
    """q'' = -q - c q' (under-damped), from q(0) = q0, q'(0) = v0."""
    q0, v0 = split_state(z0)
    w = math.sqrt(1.0 - DAMPING**2 / 4.0)
    a, b = q0, (v0 + 0.5 * DAMPING * q0) / w
    decay = math.exp(-0.5 * DAMPING * t)
    c, s = math.cos(w * t), math.sin(w * t)
    q = decay * (a * c + b * s)
    v = -0.5 * DAMPING * q + decay * w * (b * c - a * s)
    return join_state(q, v)


def assert_near(actual: Tensor, expected: Tensor, atol: float) -> None:
    """Same shape and dtype, and elementwise within ``atol``."""
    assert actual.shape == expected.shape
    assert actual.dtype == expected.dtype
    error = (actual - expected).abs().max().item() if actual.numel() else 0.0
    assert error <= atol, error


def pendulum_energy(z: Tensor) -> Tensor:
    q, p = split_state(z)
    return (0.5 * p**2 + (1.0 - torch.cos(q))).squeeze(-1)


def batch_of_oscillator_states() -> Tensor:
    return torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.3, -0.7]], dtype=F64)


def convergence_slope(
    name: str, field: Field, exact: Callable[[Tensor, float], Tensor], z0: Tensor, t_end: float
) -> float:
    """Slope of log(global error at t_end) against log(h) over three halvings of h."""
    integrator = get_integrator(name)
    order = integrator.order
    # Coarsest grids chosen so each method is in its asymptotic regime yet far above rounding.
    base = {1: 40, 2: 20, 4: 10}[order]
    steps = [base * 2**k for k in range(4)]
    errors = []
    for n in steps:
        z = integrator.advance(field, z0, t_end / n, n)
        errors.append((z - exact(z0, t_end)).norm(dim=-1).max().item())
    hs = [t_end / n for n in steps]
    return float(np.polyfit(np.log(hs), np.log(errors), 1)[0])


# ---------------------------------------------------------------------------------------------
# The name table
# ---------------------------------------------------------------------------------------------


def test_table_lists_the_four_integrators() -> None:
    assert available_integrators() == NAMES
    assert set(integrators.INTEGRATORS) == set(NAMES)


@pytest.mark.parametrize("name", NAMES)
def test_integrators_declare_their_properties(name: str) -> None:
    integrator = get_integrator(name)
    assert isinstance(integrator, Integrator)
    assert integrator.name == name
    assert (integrator.order, integrator.symplectic, integrator.requires_split) == DECLARED[name]
    assert name in repr(integrator)


def test_aliases_and_spellings() -> None:
    assert get_integrator("symplectic-euler") is SYMPLECTIC_EULER
    assert get_integrator("Symplectic_Euler") is SYMPLECTIC_EULER
    assert get_integrator("RK4") is RK4
    assert get_integrator("verlet") is LEAPFROG
    assert get_integrator("explicit-euler") is EULER


def test_unknown_name_lists_valid_names() -> None:
    with pytest.raises(ValueError, match="unknown integrator 'dopri5'") as info:
        get_integrator("dopri5")
    for name in NAMES:
        assert repr(name) in str(info.value)


def test_non_string_name_is_a_type_error() -> None:
    with pytest.raises(TypeError):
        get_integrator(4)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Field checks
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", ["leapfrog", "symplectic_euler"])
def test_split_integrators_reject_plain_fields(name: str) -> None:
    z = batch_of_oscillator_states()
    with pytest.raises(TypeError, match="needs a split field"):
        get_integrator(name).step(oscillator_plain, z, 0.1)
    with pytest.raises(TypeError, match="needs a split field"):
        integrate(oscillator_plain, z, 0.1, 3, method=name)


def test_split_integrators_reject_odd_state_size() -> None:
    with pytest.raises(ValueError, match="even"):
        LEAPFROG.step(OSCILLATOR, torch.zeros(2, 3, dtype=F64), 0.1)


def test_bad_states_fields_and_counts() -> None:
    z = batch_of_oscillator_states()
    with pytest.raises(TypeError, match=r"torch\.Tensor"):
        RK4.step(oscillator_plain, np.zeros((2, 2)), 0.1)  # type: ignore[arg-type]
    with pytest.raises(TypeError, match="floating-point"):
        RK4.step(oscillator_plain, torch.zeros(2, 2, dtype=torch.int64), 0.1)
    with pytest.raises(TypeError, match="callable"):
        RK4.step(42, z, 0.1)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="n_steps"):
        integrate(oscillator_plain, z, 0.1, -1)
    with pytest.raises(ValueError, match="substeps"):
        integrate(oscillator_plain, z, 0.1, 2, substeps=0)
    with pytest.raises(TypeError, match="n_steps"):
        RK4.advance(oscillator_plain, z, 0.1, 2.5)  # type: ignore[arg-type]


# ---------------------------------------------------------------------------------------------
# Convergence order against exact solutions
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_order_on_harmonic_oscillator(name: str) -> None:
    slope = convergence_slope(
        name, field_for(name, OSCILLATOR), oscillator_exact, batch_of_oscillator_states(), 2.0
    )
    assert abs(slope - get_integrator(name).order) < 0.2, slope


@pytest.mark.parametrize("name", NAMES)
def test_order_on_damped_second_order_system(name: str) -> None:
    # q'' = a(q, v) with a velocity-dependent force: every integrator keeps its order, leapfrog
    # included (its last kick is corrected for non-separable fields).
    field = SplitField.from_second_order(damped_acceleration)
    slope = convergence_slope(name, field, damped_exact, batch_of_oscillator_states(), 2.0)
    assert abs(slope - get_integrator(name).order) < 0.2, slope


def test_leapfrog_drops_to_first_order_if_told_a_damped_field_is_separable() -> None:
    # Documents why the ``separable`` flag matters: the plain last kick uses the half-step
    # velocity, which is only first order when the force depends on the velocity.
    wrong = SplitField(lambda q, v: v, damped_acceleration, separable=True)
    slope = convergence_slope("leapfrog", wrong, damped_exact, batch_of_oscillator_states(), 2.0)
    assert abs(slope - 1.0) < 0.2, slope


@pytest.mark.parametrize("name", ["euler", "rk4"])
def test_explicit_integrators_treat_split_fields_as_concatenated(name: str) -> None:
    z = batch_of_oscillator_states()
    plain = integrate(oscillator_plain, z, 0.1, 7, method=name)
    split = integrate(OSCILLATOR, z, 0.1, 7, method=name)
    assert_near(split, plain, 1e-14)


class _OscillatorModule(torch.nn.Module):
    """A model that is a split field by implementing the two methods (and is also callable)."""

    def forward(self, z: Tensor) -> Tensor:
        raise AssertionError("split rates must be preferred over forward()")

    def position_rate(self, q: Tensor, p: Tensor) -> Tensor:
        return p

    def momentum_rate(self, q: Tensor, p: Tensor) -> Tensor:
        return -q


@pytest.mark.parametrize("name", NAMES)
def test_objects_with_split_methods_are_split_fields(name: str) -> None:
    z = batch_of_oscillator_states()
    expected = integrate(OSCILLATOR, z, 0.1, 5, method=name)
    got = integrate(_OscillatorModule(), z, 0.1, 5, method=name)
    assert_near(got, expected, 1e-14)


# ---------------------------------------------------------------------------------------------
# Long-time energy behaviour on the pendulum
# ---------------------------------------------------------------------------------------------


PENDULUM_STATES = torch.tensor([[0.5, 0.0], [1.0, 0.0], [2.0, 0.3], [0.0, 2.5]], dtype=F64)


def test_leapfrog_energy_error_stays_bounded_over_100k_steps() -> None:
    n_steps = 100_000
    with torch.no_grad():
        trajectory = integrate(PENDULUM, PENDULUM_STATES, 0.1, n_steps, method="leapfrog")
    assert trajectory.shape == (4, n_steps + 1, 2)
    energy = pendulum_energy(trajectory)
    error = (energy - energy[:, :1]).abs() / energy[:, :1]
    first_tenth = error[:, : n_steps // 10].amax(dim=1)
    last_half = error[:, n_steps // 2 :].amax(dim=1)
    assert torch.all(last_half <= 1.5 * first_tenth), (first_tenth, last_half)
    assert error.max() < 1e-2


def test_euler_energy_error_grows() -> None:
    n_steps = 300
    with torch.no_grad():
        trajectory = integrate(PENDULUM, PENDULUM_STATES, 0.1, n_steps, method="euler")
    energy = pendulum_energy(trajectory)
    error = (energy - energy[:, :1]).abs() / energy[:, :1]
    first_tenth = error[:, : n_steps // 10].amax(dim=1)
    last_tenth = error[:, -n_steps // 10 :].amin(dim=1)
    assert torch.all(last_tenth > 5.0 * first_tenth), (first_tenth, last_tenth)


# ---------------------------------------------------------------------------------------------
# Time reversibility and symplecticity
# ---------------------------------------------------------------------------------------------


KEPLER_STATES = torch.tensor([[1.0, 0.0, 0.0, 1.2], [0.0, 1.5, -0.7, 0.1]], dtype=F64)


@pytest.mark.parametrize(
    ("field", "z0", "h", "n_steps"),
    [(PENDULUM, PENDULUM_STATES, 0.1, 1000), (KEPLER, KEPLER_STATES, 0.01, 2000)],
    ids=["pendulum", "kepler"],
)
def test_leapfrog_is_time_reversible(field: SplitField, z0: Tensor, h: float, n_steps: int) -> None:
    forward = LEAPFROG.advance(field, z0, h, n_steps)
    assert (forward - z0).abs().max() > 0.1  # it really went somewhere
    back = LEAPFROG.advance(field, forward, -h, n_steps)
    assert (back - z0).abs().max() < 1e-10
    back_tensor_step = LEAPFROG.advance(field, forward, torch.tensor(-h, dtype=F64), n_steps)
    assert (back_tensor_step - z0).abs().max() < 1e-10


def _one_step_jacobian(name: str, field: Field, z: Tensor, h: float) -> Tensor:
    integrator = get_integrator(name)
    return torch.autograd.functional.jacobian(lambda x: integrator.step(field, x, h), z)


def _symplectic_form(dim: int) -> Tensor:
    half = dim // 2
    eye = torch.eye(half, dtype=F64)
    zero = torch.zeros(half, half, dtype=F64)
    return torch.cat((torch.cat((zero, eye), 1), torch.cat((-eye, zero), 1)), 0)


KEPLER_POINT = torch.tensor([0.9, 0.4, -0.3, 1.1], dtype=F64)


@pytest.mark.parametrize("name", ["leapfrog", "symplectic_euler"])
def test_symplectic_steps_preserve_the_symplectic_form(name: str) -> None:
    jac = _one_step_jacobian(name, KEPLER, KEPLER_POINT, 0.1)
    assert jac.shape == (4, 4)
    assert (jac - torch.eye(4, dtype=F64)).abs().max() > 1e-3  # a nontrivial map
    omega = _symplectic_form(4)
    assert_near(jac.T @ omega @ jac, omega, 1e-10)
    assert abs(torch.linalg.det(jac).item() - 1.0) < 1e-10


def test_euler_step_does_not_preserve_volume() -> None:
    jac = _one_step_jacobian("euler", KEPLER, KEPLER_POINT, 0.1)
    assert abs(torch.linalg.det(jac).item() - 1.0) > 1e-6


# ---------------------------------------------------------------------------------------------
# Shapes, dtypes, step sizes, sub-steps
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_dtype_and_shape_are_preserved(name: str, dtype: torch.dtype) -> None:
    integrator = get_integrator(name)
    field = field_for(name, OSCILLATOR)
    z = torch.randn(2, 3, 2, dtype=dtype, generator=torch.Generator().manual_seed(0))
    assert integrator.step(field, z, 0.1).dtype == dtype
    assert integrator(field, z, 0.1).shape == (2, 3, 2)
    # A per-sample float64 step tensor must not promote a float32 state.
    h = torch.full((2, 3, 1), 0.1, dtype=F64)
    assert integrator.step(field, z, h).dtype == dtype
    trajectory = integrate(field, z, 0.1, 4, method=integrator)
    assert trajectory.shape == (2, 3, 5, 2)
    assert trajectory.dtype == dtype
    assert_near(trajectory[..., 0, :], z, 0)
    # An unbatched state works too.
    assert integrator.step(field, z[0, 0], 0.1).shape == (2,)
    assert integrate(field, z, 0.1, 0, method=name).shape == (2, 3, 1, 2)


@pytest.mark.parametrize("name", NAMES)
def test_per_sample_step_sizes(name: str) -> None:
    integrator = get_integrator(name)
    field = field_for(name, OSCILLATOR)
    z = batch_of_oscillator_states()
    hs = torch.tensor([[0.1], [-0.05], [0.2]], dtype=F64)
    batched = integrator.advance(field, z, hs, 3)
    for i in range(3):
        single = integrator.advance(field, z[i], float(hs[i, 0]), 3)
        assert_near(batched[i], single, 1e-14)


@pytest.mark.parametrize("name", NAMES)
def test_substeps_match_smaller_steps(name: str) -> None:
    field = field_for(name, OSCILLATOR)
    z = batch_of_oscillator_states()
    coarse = integrate(field, z, 0.3, 4, method=name, substeps=3)
    fine = integrate(field, z, 0.1, 12, method=name)
    assert_near(coarse, fine[..., ::3, :], 1e-14)
    advanced = get_integrator(name).advance(field, z, 0.1, 12)
    assert_near(advanced, fine[..., -1, :], 1e-14)


# ---------------------------------------------------------------------------------------------
# Gradients
# ---------------------------------------------------------------------------------------------


class _LearnedOscillator(torch.nn.Module):
    """q'' = -k q - c v with learnable k and c, usable as a plain or a split field."""

    def __init__(self, dtype: torch.dtype) -> None:
        super().__init__()
        self.k = torch.nn.Parameter(torch.tensor(1.3, dtype=dtype))
        self.c = torch.nn.Parameter(torch.tensor(0.2, dtype=dtype))

    def acceleration(self, q: Tensor, v: Tensor) -> Tensor:
        return -self.k * q - self.c * v

    def forward(self, z: Tensor) -> Tensor:
        q, v = split_state(z)
        return join_state(v, self.acceleration(q, v))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("name", NAMES)
def test_gradients_flow_through_steps(name: str, dtype: torch.dtype) -> None:
    model = _LearnedOscillator(dtype)
    field = (
        SplitField.from_second_order(model.acceleration)
        if get_integrator(name).requires_split
        else model
    )
    z0 = torch.tensor([[1.0, 0.0], [0.2, -0.5]], dtype=dtype, requires_grad=True)
    h = torch.tensor(0.1, dtype=dtype, requires_grad=True)
    trajectory = integrate(field, z0, h, 10, method=name)
    assert trajectory.dtype == dtype
    loss = trajectory[..., 1:, :].pow(2).mean()
    loss.backward()
    for grad in (model.k.grad, model.c.grad, z0.grad, h.grad):
        assert grad is not None
        assert torch.isfinite(grad).all()
        assert grad.abs().sum() > 0


# ---------------------------------------------------------------------------------------------
# Packaging
# ---------------------------------------------------------------------------------------------


def test_public_surface_is_explicit() -> None:
    for name in integrators.__all__:
        assert hasattr(integrators, name), name


def test_package_imports_nothing_else_from_physprior() -> None:
    package_dir = Path(integrators.__file__).parent
    for path in package_dir.glob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.ImportFrom):
                module = node.module or ""
                if node.level > 1:  # relative import from outside this package
                    assert (node.level, module) == (2, "types"), (path.name, module)
                elif node.level == 0 and module.startswith("physprior"):
                    assert module == "physprior.types", (path.name, module)
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    assert not alias.name.startswith("physprior"), (path.name, alias.name)
