"""Parts of the Hamiltonian models: learned energies, forcing, dissipation and their vector field.

A state is `z = [q, p]`, positions `q` and canonical momenta `p` each of shape `(B, n)`. The
parts learn in normalised coordinates but every quantity they return is in the data's original
units, so the flow is exactly Hamiltonian (and leapfrog exactly symplectic) in those units:

    H(q, p) = energy_scale * net(q_hat, p_hat),   q_hat = (q - q_mean) / q_std, ...

and the gradients `dH/dq`, `dH/dp` are taken with respect to the original `q`, `p` through the
normalisation, by backpropagation written out as tensor operations (:func:`mlp_gradient`: the
arithmetic of autograd without the cost of the autograd engine, which dominates for small
networks; tested against autograd and finite differences). The scales are buffers fitted from
data (:class:`PhaseScales`).

The vector field with a control `u` (already divided by its scale, `(B, A)`) is

    dq/dt = dH/dp
    dp/dt = -dH/dq + G(q) u - D(q) dq/dt

with `G(q)` a learned `(n, A)` input matrix (:class:`Forcing`) and `D(q)` a learned positive
semi-definite damping matrix (:class:`Dissipation`), so that forces act only on `dp/dt` and the
dissipation never creates energy: `dH/dt = -(dq/dt)^T D (dq/dt) <= 0` without control.

The models (`hnn`, `srnn`) compose these parts; nothing here knows about datasets or training.
"""

from __future__ import annotations

import abc
import dataclasses
import math
from typing import Literal, cast, final

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from physprior.integrators import Integrator
from physprior.types import StateLayout

from ._parts import mlp

__all__ = [
    "ENERGY_FORMS",
    "SMOOTH_ACTIVATIONS",
    "CholeskyFactor",
    "Dissipation",
    "Energy",
    "EnergyForm",
    "Forcing",
    "FreeField",
    "GeneralEnergy",
    "HamiltonianField",
    "HamiltonianSystem",
    "MassConversion",
    "MechanicalEnergy",
    "NetSize",
    "PhaseScales",
    "SeparableEnergy",
    "as_duration",
    "make_energy",
    "mlp_gradient",
]

EnergyForm = Literal["general", "separable", "mechanical"]
ENERGY_FORMS: tuple[str, ...] = ("general", "separable", "mechanical")

#: Activations whose derivative is continuous: the field is the gradient of the network, so a
#: piecewise-constant derivative (relu) would make the learned dynamics discontinuous.
SMOOTH_ACTIVATIONS: tuple[str, ...] = ("tanh", "softplus", "silu", "elu")


@dataclasses.dataclass(frozen=True)
class NetSize:
    """The shape shared by every network of a model: `layers` hidden layers of `hidden` units."""

    hidden: int
    layers: int
    activation: str

    def mlp(self, in_dim: int, out_dim: int) -> nn.Sequential:
        """An MLP `in_dim -> out_dim` of this size."""
        return mlp(in_dim, out_dim, self.hidden, self.layers, self.activation)


# ---------------------------------------------------------------------------- scales
@final
class PhaseScales(nn.Module):
    """The units in which the networks see the state and in which their outputs are read.

    Buffers (saved with the model), identity until :meth:`fit`:
        q_mean, q_std, p_mean, p_std: `(n,)` affine normalisation of positions and momenta.
        energy_scale: `()` the unit of H: `H = energy_scale * network output`.
        momentum_scale: `(n,)` the unit of `p` in the quadratic kinetic energy of the
            mechanical form (a scale without a shift, so that `p = 0` has no kinetic energy).
        force_scale: `(n,)` a typical `|dp/dt|`; the unit of the control forcing.
        damping_scale: `(n,)` `c` in `D = diag(c) D_hat diag(c)`; `c^2` is a typical
            `|dp/dt| / |dq/dt|`, so an O(1) `D_hat` gives O(1)-relative damping forces.
    """

    q_mean: Tensor
    q_std: Tensor
    p_mean: Tensor
    p_std: Tensor
    energy_scale: Tensor
    momentum_scale: Tensor
    force_scale: Tensor
    damping_scale: Tensor

    def __init__(self, n: int, *, angles: bool = False) -> None:
        super().__init__()
        self.angles = bool(angles)
        for name in ("q_mean", "p_mean"):
            self.register_buffer(name, torch.zeros(n))
        for name in ("q_std", "p_std", "momentum_scale", "force_scale", "damping_scale"):
            self.register_buffer(name, torch.ones(n))
        self.register_buffer("energy_scale", torch.ones(()))

    @torch.no_grad()
    def fit(
        self,
        state_mean: Tensor,
        state_std: Tensor,
        delta_std: Tensor,
        dt: float,
        layout: StateLayout,
    ) -> None:
        """Fit from data statistics: state mean and std `(2n,)` and the std of one-step
        changes `(2n,)` over an interval `dt`, for data laid out `[q, p]` or `[q, v]`.

        For `[q, p]` data Hamilton's equations give two estimates of the energy unit,
        `|dq/dt| ~ E / std(p)` and `|dp/dt| ~ E / std(q)`; the geometric mean of the two is
        used. For `[q, v]` data the momenta are internal (`p = M(q) v`) and the energy unit is a
        free gauge: scaling H by any constant scales `p` alike and leaves `v(t)` unchanged, so it
        is fixed to 1 and the momentum unit follows as `1 / std(v)`.
        """
        n = self.q_mean.numel()
        mean, std, delta = (x.to(self.q_mean) for x in (state_mean, state_std, delta_std))
        rate_q, rate_y = delta[:n] / dt, delta[n:] / dt
        q_std, y_std = std[:n], std[n:]
        if layout == "qp":
            energy = torch.sqrt((y_std * rate_q).mean() * (q_std * rate_y).mean())
            p_mean, p_std, momentum, force = mean[n:], y_std, y_std, rate_y
        elif layout == "qv":
            energy = torch.ones_like(self.energy_scale)
            momentum = energy / y_std
            # p = M v with M ~ energy / std(v)^2, so |dp/dt| ~ M |dv/dt|.
            p_mean, p_std, force = torch.zeros_like(momentum), momentum, energy * rate_y / y_std**2
        else:
            raise ValueError(f"layout must be 'qp' or 'qv', got {layout!r}")
        self.q_mean.copy_(mean[:n])
        self.q_std.copy_(q_std)
        self.p_mean.copy_(p_mean)
        self.p_std.copy_(p_std)
        self.energy_scale.copy_(energy)
        self.momentum_scale.copy_(momentum)
        self.force_scale.copy_(force)
        self.damping_scale.copy_(torch.sqrt(force / rate_q))

    def q_hat(self, q: Tensor) -> Tensor:
        """Normalised positions `(..., n)`."""
        return (q - self.q_mean) / self.q_std

    @property
    def q_features_dim(self) -> int:
        """Width of what the networks read of the positions: `n`, or `2n` for angles."""
        return self.q_mean.numel() * (2 if self.angles else 1)

    def q_features(self, q: Tensor) -> Tensor:
        """What the networks read of the positions `q (..., n)`: `q_hat`, or for angles the
        embedding `[cos q, sin q]` `(..., 2n)` (periodic, so unnormalised)."""
        if self.angles:
            return torch.cat((q.cos(), q.sin()), dim=-1)
        return self.q_hat(q)

    def q_gradient(self, q: Tensor, features_gradient: Tensor) -> Tensor:
        """`d/dq` `(..., n)` of a function of `q_features(q)`, from its gradient with respect to
        the features (the chain rule through the normalisation or the embedding)."""
        if self.angles:
            n = q.shape[-1]
            return q.cos() * features_gradient[..., n:] - q.sin() * features_gradient[..., :n]
        return features_gradient / self.q_std

    def p_hat(self, p: Tensor) -> Tensor:
        """Normalised momenta `(..., n)`."""
        return (p - self.p_mean) / self.p_std


# ---------------------------------------------------------------------------- backpropagation
# The fields below are gradients of small MLPs. Backpropagation written out as ordinary tensor
# operations does the same arithmetic as `torch.autograd.grad` without the autograd engine's
# fixed cost per call, which dominates for the small networks and batches of a rollout (2-4x
# faster here). Being ordinary operations, it works under `torch.no_grad()` (an env stepping the
# model) and autograd differentiates it again (a loss on the field trains the parameters).


def _activation_slope(activation: nn.Module, a: Tensor, y: Tensor) -> Tensor:
    """The derivative of `activation` at pre-activations `a` with outputs `y = activation(a)`."""
    if isinstance(activation, nn.Tanh):
        return 1.0 - y * y
    if isinstance(activation, nn.Softplus):
        return _softplus_slope(a, activation.beta, activation.threshold)
    if isinstance(activation, nn.SiLU):
        s = torch.sigmoid(a)
        return s * (1.0 + a * (1.0 - s))
    if isinstance(activation, nn.ELU):
        return torch.where(a > 0, 1.0, y + activation.alpha)
    if isinstance(activation, nn.ReLU):
        return (a > 0).to(a.dtype)
    raise TypeError(f"no derivative known for activation {type(activation).__name__}")


def _softplus_slope(a: Tensor, beta: float = 1.0, threshold: float = 20.0) -> Tensor:
    """`d softplus(a) / da`, linear (slope 1) above the threshold like `F.softplus`."""
    return torch.where(beta * a > threshold, 1.0, torch.sigmoid(beta * a))


def _mlp_forward(
    net: nn.Sequential, x: Tensor, *, output_layer: bool = True
) -> tuple[Tensor, list[Tensor]]:
    """`net(x)` `(..., out)` of an MLP of Linear and activation layers (as built by `mlp`),
    with the activation slopes that :func:`_mlp_input_vjp` needs. Without `output_layer` the
    last Linear is skipped (a gradient does not need the output itself)."""
    slopes: list[Tensor] = []
    h = x
    stop = len(net) if output_layer else len(net) - 1
    for i, layer in enumerate(net):
        if i == stop:
            break
        if isinstance(layer, nn.Linear):
            h = F.linear(h, layer.weight, layer.bias)  # skips Module.__call__'s overhead
        else:
            y = layer(h)
            slopes.append(_activation_slope(layer, h, y))
            h = y
    return h, slopes


def _mlp_input_vjp(net: nn.Sequential, slopes: list[Tensor], cotangent: Tensor | None) -> Tensor:
    """`cotangent^T d net / dx` `(..., in)` from the slopes of :func:`_mlp_forward`.

    `cotangent` `(..., out)`; `None` for a one-output network means 1 (its plain gradient),
    whose last weight row then broadcasts over the batch: one matrix product saved.
    """
    linears = [layer for layer in net if isinstance(layer, nn.Linear)]
    grad = linears[-1].weight if cotangent is None else cotangent @ linears[-1].weight
    for slope, linear in zip(reversed(slopes), reversed(linears[:-1]), strict=True):
        grad = (grad * slope) @ linear.weight
    return grad


def mlp_gradient(net: nn.Sequential, x: Tensor) -> Tensor:
    """The gradient `(..., in)` of a one-output MLP with respect to its input `x` `(..., in)`."""
    out_features = net[-1].out_features
    if out_features != 1:
        raise ValueError(f"mlp_gradient needs a network with one output, not {out_features}")
    _, slopes = _mlp_forward(net, x, output_layer=False)
    return _mlp_input_vjp(net, slopes, None).expand_as(x)


# ---------------------------------------------------------------------------- building blocks
@final
class CholeskyFactor(nn.Module):
    """A lower-triangular `L(x)` `(..., n, n)` with a positive diagonal, from an MLP of `x`.

    `L L^T` is then symmetric positive definite. The network's `n (n + 1) / 2` outputs are the
    diagonal, through `softplus(raw + offset) + eps`, then the strictly lower triangle row by
    row. The last layer starts at zero, so at initialisation `L = initial_diagonal * I`
    exactly: a neutral prior (unit normalised mass, weak damping) that the data then bends.
    """

    layout: Tensor
    rows: Tensor
    cols: Tensor

    def __init__(
        self,
        in_dim: int,
        n: int,
        size: NetSize,
        *,
        initial_diagonal: float,
        eps: float = 0.0,
    ) -> None:
        super().__init__()
        if not initial_diagonal > eps >= 0:
            raise ValueError(f"need initial_diagonal > eps >= 0, got {initial_diagonal}, {eps}")
        self.n = n
        self.eps = float(eps)
        # softplus(offset) + eps == initial_diagonal when the raw output is zero.
        self.offset = math.log(math.expm1(initial_diagonal - eps))
        self.net = size.mlp(in_dim, n * (n + 1) // 2)
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        # Where each of the n*n entries of L comes from in [diagonal, strictly lower, 0]: one
        # gather builds the matrix (cheaper than scattering into a zero matrix).
        rows, cols = torch.tril_indices(n, n, offset=-1)
        layout = torch.full((n, n), n * (n + 1) // 2, dtype=torch.long)
        layout[rows, cols] = torch.arange(n, n + rows.numel())
        layout[torch.arange(n), torch.arange(n)] = torch.arange(n)
        self.register_buffer("layout", layout.flatten(), persistent=False)
        self.register_buffer("rows", rows, persistent=False)
        self.register_buffer("cols", cols, persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        """`L(x)` of shape `(..., n, n)` for `x` of shape `(..., in_dim)`."""
        return self._assemble(cast(Tensor, self.net(x)))

    def _assemble(self, raw: Tensor) -> Tensor:
        diagonal = F.softplus(raw[..., : self.n] + self.offset) + self.eps
        values = torch.cat((diagonal, raw[..., self.n :], torch.zeros_like(raw[..., :1])), dim=-1)
        return values.index_select(-1, self.layout).unflatten(-1, (self.n, self.n))

    def traced(self, x: Tensor) -> tuple[Tensor, tuple[Tensor, list[Tensor]]]:
        """`L(x)` and the trace of its network that :meth:`bilinear_gradient` needs."""
        raw, slopes = _mlp_forward(self.net, x)
        return self._assemble(raw), (raw, slopes)

    def bilinear_gradient(self, trace: tuple[Tensor, list[Tensor]], a: Tensor, b: Tensor) -> Tensor:
        """The gradient `(..., in_dim)` of `a^T L(x) b` with respect to `x`, `a` and `b`
        `(..., n)` held fixed; `trace` from :meth:`traced` at `x`."""
        raw, slopes = trace
        # d(a^T L b)/dL_ij = a_i b_j, read at the entries the network fills.
        diagonal = a * b * _softplus_slope(raw[..., : self.n] + self.offset)
        lower = a.index_select(-1, self.rows) * b.index_select(-1, self.cols)
        return _mlp_input_vjp(self.net, slopes, torch.cat((diagonal, lower), dim=-1))


def _energy_mlp(size: NetSize, in_dim: int) -> nn.Sequential:
    """An MLP `in_dim -> 1` for an energy. Its output layer has no bias: a constant added to
    H changes no dynamics, so such a parameter could never learn anything."""
    net = size.mlp(in_dim, 1)
    net[-1].register_parameter("bias", None)
    return net


def _scalar(net: nn.Module, x: Tensor) -> Tensor:
    """A network with one output, read as a scalar per sample: `(..., in) -> (...)`."""
    return cast(Tensor, net(x)).squeeze(-1)


# ---------------------------------------------------------------------------- energies
class Energy(nn.Module, abc.ABC):
    """A learned Hamiltonian `H(q, p) -> (...)` in original units, for `q`, `p` `(..., n)`.

    With `angles` every position is an angle and the networks read `[cos q, sin q]`
    (:meth:`PhaseScales.q_features`).
    """

    def __init__(self, n: int, *, angles: bool = False) -> None:
        super().__init__()
        self.n = n
        self.angles = bool(angles)

    @property
    def q_features_dim(self) -> int:
        """Width of the networks' position input."""
        return self.n * (2 if self.angles else 1)

    @abc.abstractmethod
    def forward(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        """`H(q, p)` of shape `(...)`."""

    @abc.abstractmethod
    def gradient(self, q: Tensor, p: Tensor, scales: PhaseScales) -> tuple[Tensor, Tensor]:
        """`(dH/dq, dH/dp)`, each `(..., n)`, in original units (by written-out backprop)."""


@final
class GeneralEnergy(Energy):
    """`H(q, p) = E * net([q_hat, p_hat])`: one MLP of the whole state (Greydanus et al.)."""

    def __init__(self, n: int, size: NetSize, *, angles: bool = False) -> None:
        super().__init__(n, angles=angles)
        self.net = _energy_mlp(size, self.q_features_dim + n)

    def forward(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        x = torch.cat((scales.q_features(q), scales.p_hat(p)), dim=-1)
        return scales.energy_scale * _scalar(self.net, x)

    def gradient(self, q: Tensor, p: Tensor, scales: PhaseScales) -> tuple[Tensor, Tensor]:
        x = torch.cat((scales.q_features(q), scales.p_hat(p)), dim=-1)
        g = scales.energy_scale * mlp_gradient(self.net, x)
        # The chain rule through the normalisation (and embedding): d/dp = (d/dp_hat) / p_std.
        width = self.q_features_dim
        return scales.q_gradient(q, g[..., :width]), g[..., width:] / scales.p_std


@final
class SeparableEnergy(Energy):
    """`H = K(p) + V(q)` with `K = E * net_K(p_hat)`, `V = E * net_V(q_hat)` (SRNN's H-NET).

    Each part normalises only its own half, so the sum stays separable in original units and
    leapfrog stays symplectic for it.
    """

    def __init__(self, n: int, size: NetSize, *, angles: bool = False) -> None:
        super().__init__(n, angles=angles)
        self.kinetic_net = _energy_mlp(size, n)
        self.potential_net = _energy_mlp(size, self.q_features_dim)

    def forward(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        return self.kinetic(p, scales) + self.potential(q, scales)

    def kinetic(self, p: Tensor, scales: PhaseScales) -> Tensor:
        """`K(p)` `(...)`."""
        return scales.energy_scale * _scalar(self.kinetic_net, scales.p_hat(p))

    def potential(self, q: Tensor, scales: PhaseScales) -> Tensor:
        """`V(q)` `(...)`."""
        return scales.energy_scale * _scalar(self.potential_net, scales.q_features(q))

    def kinetic_gradient(self, p: Tensor, scales: PhaseScales) -> Tensor:
        """`dK/dp` `(..., n)`."""
        g = mlp_gradient(self.kinetic_net, scales.p_hat(p))
        return scales.energy_scale * g / scales.p_std

    def potential_gradient(self, q: Tensor, scales: PhaseScales) -> Tensor:
        """`dV/dq` `(..., n)`."""
        g = mlp_gradient(self.potential_net, scales.q_features(q))
        return scales.energy_scale * scales.q_gradient(q, g)

    def gradient(self, q: Tensor, p: Tensor, scales: PhaseScales) -> tuple[Tensor, Tensor]:
        return self.potential_gradient(q, scales), self.kinetic_gradient(p, scales)


@final
class MechanicalEnergy(Energy):
    """`H = p^T M(q)^-1 p / 2 + V(q)` with a learned positive-definite mass matrix (decon-hnn).

    The network gives the Cholesky factor `L(q_hat)` of the normalised *inverse* mass matrix,
    `M_hat^-1 = L L^T` (a :class:`CholeskyFactor`, diagonal at least `mass_eps`, starting at
    the identity), so that the kinetic energy and its gradient need no linear solve; only the
    `[q, v]` conversion `p = M v` solves with `L`. In original units `M^-1 = E S^-1 M_hat^-1
    S^-1` with `S = diag(momentum_scale)`, i.e. `K = E/2 |L^T p_tilde|^2`, `p_tilde = p / S`.
    Being a mass matrix, it converts velocities to momenta and back (:meth:`momentum`,
    :meth:`velocity`), which is what lets this form learn from `[q, v]` data.
    """

    def __init__(self, n: int, size: NetSize, *, mass_eps: float, angles: bool = False) -> None:
        super().__init__(n, angles=angles)
        self.potential_net = _energy_mlp(size, self.q_features_dim)
        self.inverse_mass_factor = CholeskyFactor(
            self.q_features_dim, n, size, initial_diagonal=1.0 + mass_eps, eps=mass_eps
        )

    def forward(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        return self.kinetic(q, p, scales) + self.potential(q, scales)

    def kinetic(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        """`K(q, p) = p^T M(q)^-1 p / 2` `(...)`."""
        factor = self.inverse_mass_factor(scales.q_features(q))
        w = factor.mT @ (p / scales.momentum_scale).unsqueeze(-1)
        return 0.5 * scales.energy_scale * w.square().sum(dim=(-2, -1))

    def potential(self, q: Tensor, scales: PhaseScales) -> Tensor:
        """`V(q)` `(...)`."""
        return scales.energy_scale * _scalar(self.potential_net, scales.q_features(q))

    def gradient(self, q: Tensor, p: Tensor, scales: PhaseScales) -> tuple[Tensor, Tensor]:
        features = scales.q_features(q)
        p_tilde = p / scales.momentum_scale
        # K = E/2 |w|^2 with w = L^T p_tilde: dK/dp_tilde = E L w, and dK/d(features) is E
        # times the gradient of p_tilde^T L w with w held fixed (the chain rule through L only).
        factor, trace = self.inverse_mass_factor.traced(features)
        w = (factor.mT @ p_tilde.unsqueeze(-1)).squeeze(-1)
        dk_dfeatures = self.inverse_mass_factor.bilinear_gradient(trace, p_tilde, w)
        dv_dfeatures = mlp_gradient(self.potential_net, features)
        e = scales.energy_scale
        dh_dq = e * scales.q_gradient(q, dk_dfeatures + dv_dfeatures)
        dh_dp = e * (factor @ w.unsqueeze(-1)).squeeze(-1) / scales.momentum_scale
        return dh_dq, dh_dp

    def mass_matrix(self, q: Tensor, scales: PhaseScales) -> Tensor:
        """`M(q)` `(..., n, n)` in original units (symmetric positive definite)."""
        return _mass_matrix(self.inverse_mass_factor(scales.q_features(q)), scales)

    def velocity(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        """`v = M(q)^-1 p = dH/dp` `(..., n)`."""
        return _velocity(self.inverse_mass_factor(scales.q_features(q)), p, scales)

    def momentum(self, q: Tensor, v: Tensor, scales: PhaseScales) -> Tensor:
        """`p = M(q) v` `(..., n)`: the inverse of :meth:`velocity`."""
        return _momentum(self.inverse_mass_factor(scales.q_features(q)), v, scales)


@final
class MassConversion(nn.Module):
    """A learned mass matrix used only to map velocities to momenta and back, for an energy
    that has none of its own (the general and separable forms on `[q, v]` data).

    decon-hnn's `NonseparableHNN` (their HNN "without second-order structure") reads
    `[theta, theta_dot]` this way: `p0 = M(q0) v0` on the way in, `v = M(q)^-1 p` on the way
    out, while the dynamics come from a general `H(q, p)`, so `dq/dt = dH/dp` need not equal
    the velocity read out. `M^-1` is parametrised as in :class:`MechanicalEnergy`.
    """

    def __init__(self, n: int, size: NetSize, *, mass_eps: float, q_features: int = 0) -> None:
        super().__init__()
        self.inverse_mass_factor = CholeskyFactor(
            q_features or n, n, size, initial_diagonal=1.0 + mass_eps, eps=mass_eps
        )

    def velocity(self, q: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
        """`v = M(q)^-1 p` `(..., n)`."""
        return _velocity(self.inverse_mass_factor(scales.q_features(q)), p, scales)

    def momentum(self, q: Tensor, v: Tensor, scales: PhaseScales) -> Tensor:
        """`p = M(q) v` `(..., n)`."""
        return _momentum(self.inverse_mass_factor(scales.q_features(q)), v, scales)


# The mass matrix from the Cholesky factor `L` of the normalised inverse mass matrix:
# `M^-1 = E S^-1 L L^T S^-1` in original units, `S = diag(momentum_scale)`.
def _mass_matrix(factor: Tensor, scales: PhaseScales) -> Tensor:
    """`M` `(..., n, n)`."""
    s = scales.momentum_scale
    return s.unsqueeze(-1) * torch.cholesky_inverse(factor) * s / scales.energy_scale


def _velocity(factor: Tensor, p: Tensor, scales: PhaseScales) -> Tensor:
    """`M^-1 p` `(..., n)`: two triangular products, no solve."""
    s = scales.momentum_scale
    x = (p / s).unsqueeze(-1)
    return scales.energy_scale * (factor @ (factor.mT @ x)).squeeze(-1) / s


def _momentum(factor: Tensor, v: Tensor, scales: PhaseScales) -> Tensor:
    """`M v` `(..., n)`: the inverse of `_velocity`, by a Cholesky solve."""
    s = scales.momentum_scale
    x = (s * v / scales.energy_scale).unsqueeze(-1)
    return s * torch.cholesky_solve(x, factor, upper=False).squeeze(-1)


def make_energy(
    form: str, n: int, size: NetSize, *, mass_eps: float = 1e-3, angles: bool = False
) -> Energy:
    """The energy of the named form (`general`, `separable` or `mechanical`) over `n` dofs;
    `angles`: every position is an angle, read through `[cos q, sin q]`."""
    if form == "general":
        return GeneralEnergy(n, size, angles=angles)
    if form == "separable":
        return SeparableEnergy(n, size, angles=angles)
    if form == "mechanical":
        return MechanicalEnergy(n, size, mass_eps=mass_eps, angles=angles)
    raise ValueError(f"unknown Hamiltonian form {form!r}; valid forms are {ENERGY_FORMS}")


# ---------------------------------------------------------------------------- non-conservative
@final
class Forcing(nn.Module):
    """The generalised force of a control: `G(q) u`, `G` an MLP of `q_hat` giving `(n, A)`.

    Linear in `u`, so a zero action exerts no force and the autonomous system is recovered.
    The force is in units of `scales.force_scale`.
    """

    def __init__(self, n: int, action_dim: int, size: NetSize, *, q_features: int = 0) -> None:
        super().__init__()
        if action_dim < 1:
            raise ValueError(f"Forcing needs action_dim >= 1, got {action_dim}")
        self.n, self.action_dim = n, action_dim
        self.net = size.mlp(q_features or n, n * action_dim)

    def input_matrix(self, q: Tensor, scales: PhaseScales) -> Tensor:
        """`G(q)` `(..., n, A)` in normalised force units per unit of scaled control."""
        return self.net(scales.q_features(q)).unflatten(-1, (self.n, self.action_dim))

    def forward(self, q: Tensor, u: Tensor, scales: PhaseScales) -> Tensor:
        """Force on `dp/dt` `(..., n)` at `q` `(..., n)` under scaled control `u` `(..., A)`."""
        gu = (self.input_matrix(q, scales) @ u.unsqueeze(-1)).squeeze(-1)
        return scales.force_scale * gu


@final
class Dissipation(nn.Module):
    """A damping force `-D(q) dq/dt` with `D = diag(c) L L^T diag(c)` positive semi-definite.

    `L(q_hat)` is a :class:`CholeskyFactor` starting at `0.1 I` (weak damping) and
    `c = scales.damping_scale`. Energy can only leave the system through this term.
    """

    def __init__(self, n: int, size: NetSize, *, q_features: int = 0) -> None:
        super().__init__()
        self.factor = CholeskyFactor(q_features or n, n, size, initial_diagonal=0.1)

    def damping_matrix(self, q: Tensor, scales: PhaseScales) -> Tensor:
        """`D(q)` `(..., n, n)` in original units."""
        factor = self.factor(scales.q_features(q))
        c = scales.damping_scale
        return c.unsqueeze(-1) * (factor @ factor.mT) * c

    def forward(self, q: Tensor, velocity: Tensor, scales: PhaseScales) -> Tensor:
        """The damping force `D(q) dq/dt` `(..., n)` (to be subtracted from `dp/dt`)."""
        factor = self.factor(scales.q_features(q))
        c = scales.damping_scale
        x = (c * velocity).unsqueeze(-1)
        return c * (factor @ (factor.mT @ x)).squeeze(-1)


@final
class FreeField(nn.Module):
    """An unconstrained field `g(q, p)` `(..., 2n)` added to `[dq/dt, dp/dt]`: decon-hnn's
    `MixtureHNN` (their plots' SymODEN), an HNN plus a free neural ODE.

    An MLP of `[q_features, p_hat]`; its `dq/dt` half is read in units of a typical position
    rate (`position_rate_scale`, fitted by the model), its `dp/dt` half in `force_scale`. The
    last layer starts at zero, so the mixture starts as its HNN.
    """

    position_rate_scale: Tensor

    def __init__(self, n: int, size: NetSize, *, q_features: int = 0) -> None:
        super().__init__()
        self.n = n
        self.net = size.mlp((q_features or n) + n, 2 * n)
        last = self.net[-1]
        assert isinstance(last, nn.Linear)
        nn.init.zeros_(last.weight)
        nn.init.zeros_(last.bias)
        self.register_buffer("position_rate_scale", torch.ones(n))

    def forward(self, q: Tensor, p: Tensor, scales: PhaseScales) -> tuple[Tensor, Tensor]:
        """Its `(dq/dt, dp/dt)` terms, each `(..., n)`."""
        out = self.net(torch.cat((scales.q_features(q), scales.p_hat(p)), dim=-1))
        return out[..., : self.n] * self.position_rate_scale, out[
            ..., self.n :
        ] * scales.force_scale


# ---------------------------------------------------------------------------- the system
@final
class HamiltonianSystem(nn.Module):
    """A learned (possibly forced and damped) Hamiltonian system in original coordinates.

    Composes an :class:`Energy`, an optional :class:`Forcing` and an optional
    :class:`Dissipation` with the :class:`PhaseScales` they are read in. States `(..., 2n)`
    are `[q, p]` unless a method says otherwise; controls `u` `(..., A)` are already divided by
    their scale (or `None`: no force).
    """

    def __init__(
        self,
        energy: Energy,
        *,
        forcing: Forcing | None = None,
        dissipation: Dissipation | None = None,
        free_field: FreeField | None = None,
        conversion: MassConversion | None = None,
    ) -> None:
        super().__init__()
        self.n = energy.n
        self.scales = PhaseScales(energy.n, angles=energy.angles)
        self.energy = energy
        self.forcing = forcing
        self.dissipation = dissipation
        self.free_field = free_field
        self.conversion = conversion

    @property
    def separable(self) -> bool:
        """Whether `dq/dt` depends on `p` only and `dp/dt` on `q` only (leapfrog is symplectic)."""
        return (
            isinstance(self.energy, SeparableEnergy)
            and self.dissipation is None
            and self.free_field is None
        )

    # ------------------------------------------------------------------ energy and rates
    def hamiltonian(self, q: Tensor, p: Tensor) -> Tensor:
        """`H(q, p)` `(...)` for `q`, `p` `(..., n)`."""
        return self.energy(q, p, self.scales)

    def rates(self, q: Tensor, p: Tensor, u: Tensor | None) -> tuple[Tensor, Tensor]:
        """`(dq/dt, dp/dt)`, each `(..., n)`, from one evaluation of H and its gradient."""
        dh_dq, dh_dp = self.energy.gradient(q, p, self.scales)
        dq_dt, dp_dt = dh_dp, self._add_forces(-dh_dq, q, dh_dp, u)
        if self.free_field is not None:
            free_q, free_p = self.free_field(q, p, self.scales)
            dq_dt, dp_dt = dq_dt + free_q, dp_dt + free_p
        return dq_dt, dp_dt

    def position_rate(self, q: Tensor, p: Tensor) -> Tensor:
        """`dq/dt = dH/dp` `(..., n)`; a separable energy differentiates `K(p)` only."""
        energy = self.energy
        if isinstance(energy, SeparableEnergy) and self.free_field is None:
            return energy.kinetic_gradient(p, self.scales)
        return self.rates(q, p, None)[0]

    def momentum_rate(self, q: Tensor, p: Tensor, u: Tensor | None) -> Tensor:
        """`dp/dt = -dH/dq + G(q) u - D(q) dq/dt` `(..., n)`."""
        energy = self.energy
        if not isinstance(energy, SeparableEnergy) or self.free_field is not None:
            return self.rates(q, p, u)[1]
        velocity = self.position_rate(q, p) if self.dissipation is not None else None
        return self._add_forces(-energy.potential_gradient(q, self.scales), q, velocity, u)

    def _add_forces(
        self, rate: Tensor, q: Tensor, velocity: Tensor | None, u: Tensor | None
    ) -> Tensor:
        """`rate + G(q) u - D(q) velocity` `(..., n)`, skipping the terms the model lacks."""
        if self.forcing is not None and u is not None:
            rate = rate + self.forcing(q, u, self.scales)
        if self.dissipation is not None and velocity is not None:
            rate = rate - self.dissipation(q, velocity, self.scales)
        return rate

    # ------------------------------------------------------------------ layouts
    def momentum(self, q: Tensor, v: Tensor) -> Tensor:
        """`p = M(q) v` `(..., n)`; needs a mass matrix (the mechanical form or a conversion)."""
        return self._masses().momentum(q, v, self.scales)

    def velocity(self, q: Tensor, p: Tensor) -> Tensor:
        """`v = M(q)^-1 p` `(..., n)`; needs a mass matrix."""
        return self._masses().velocity(q, p, self.scales)

    def _masses(self) -> MechanicalEnergy | MassConversion:
        if isinstance(self.energy, MechanicalEnergy):
            return self.energy
        if self.conversion is not None:
            return self.conversion
        raise TypeError(
            f"velocity <-> momentum conversion needs a mass matrix: the mechanical form or a "
            f"MassConversion, not {type(self.energy).__name__} alone"
        )

    def to_canonical(self, z: Tensor, layout: StateLayout) -> Tensor:
        """`[q, p]` `(..., 2n)` from a state in `layout` (`[q, v]` goes through `p = M v`)."""
        if layout == "qp":
            return z
        q, v = z[..., : self.n], z[..., self.n :]
        return torch.cat((q, self.momentum(q, v)), dim=-1)

    def from_canonical(self, z: Tensor, layout: StateLayout) -> Tensor:
        """The state in `layout` from `[q, p]` `(..., 2n)` (inverse of :meth:`to_canonical`)."""
        if layout == "qp":
            return z
        q, p = z[..., : self.n], z[..., self.n :]
        return torch.cat((q, self.velocity(q, p)), dim=-1)

    def state_energy(self, z: Tensor, layout: StateLayout) -> Tensor:
        """`H` `(...)` of states `z` `(..., 2n)` given in `layout`."""
        canonical = self.to_canonical(z, layout)
        return self.hamiltonian(canonical[..., : self.n], canonical[..., self.n :])

    # ------------------------------------------------------------------ integration
    def advance(
        self,
        z: Tensor,
        u: Tensor | None,
        integrator: Integrator,
        duration: float | Tensor,
        substeps: int = 1,
        layout: StateLayout = "qp",
    ) -> Tensor:
        """The state `(..., 2n)` a time `duration` (negative: backwards; a float or a tensor
        broadcastable to `(..., 1)`) after `z`, both in `layout`, in `substeps` steps of
        `integrator` with the control `u` held constant.

        `[q, v]` states are converted to momenta once on the way in and back once on the way
        out; the integrator always steps the canonical `[q, p]`.
        """
        field = HamiltonianField(self, u)
        target = field if integrator.requires_split else field.vector
        canonical = self.to_canonical(z, layout)
        canonical = integrator.advance(target, canonical, duration / substeps, substeps)
        return self.from_canonical(canonical, layout)


def as_duration(duration: float | Tensor, batch: int, like: Tensor) -> float | Tensor:
    """A time span for :meth:`HamiltonianSystem.advance`: a float, or per-sample durations
    `(B,)` or `(B, 1)` returned as `(B, 1)` in the dtype of `like`."""
    if not isinstance(duration, Tensor):
        return float(duration)
    if duration.shape not in ((batch,), (batch, 1)):
        raise ValueError(
            f"duration has shape {tuple(duration.shape)}, expected a float, ({batch},) or "
            f"({batch}, 1)"
        )
    return duration.reshape(batch, 1).to(like)


@final
class HamiltonianField:
    """A :class:`HamiltonianSystem` with its control bound: what an integrator steps.

    It is a split field (`position_rate`, `momentum_rate`, `separable`) for leapfrog and
    symplectic Euler; :meth:`vector` is the plain `z -> dz/dt` for Euler and RK4, computing
    both halves from a single gradient of H.
    """

    def __init__(self, system: HamiltonianSystem, u: Tensor | None) -> None:
        self.system = system
        self.u = u
        self.separable = system.separable

    def position_rate(self, q: Tensor, p: Tensor) -> Tensor:
        """`dq/dt` `(..., n)`."""
        return self.system.position_rate(q, p)

    def momentum_rate(self, q: Tensor, p: Tensor) -> Tensor:
        """`dp/dt` `(..., n)`."""
        return self.system.momentum_rate(q, p, self.u)

    def vector(self, z: Tensor) -> Tensor:
        """`dz/dt` `(..., 2n)` at `z = [q, p]`."""
        n = self.system.n
        dq, dp = self.system.rates(z[..., :n], z[..., n:], self.u)
        return torch.cat((dq, dp), dim=-1)
