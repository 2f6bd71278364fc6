"""`node-so`: a neural ODE with second-order structure (decon-hnn's NODE + SO).

The network models only the force; how positions change follows from the state itself.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from collections.abc import Callable
from typing import Any, final

import torch
from torch import Tensor
from torch.nn import functional as F

from physprior.integrators import Field

from ._base import Memory, ModelConfig, NumpyRowStep, TransitionModel
from ._cache import inference_cached
from ._inference_rollout import IN_PLACE_ACTIVATIONS, averaged_velocity_rollout_no_grad
from ._normalized_mlp import (
    AngleInputMLP,
    FoldedMLP,
    FoldedNet,
    NormalizedMLP,
    embedded_input_stats,
)
from ._numpy_row import NumpyMLP, as_row
from ._registry import register
from ._rollout import rollout_inputs

__all__ = ["NODESO", "NODESOConfig"]

#: softplus(x + _SOFTPLUS_ONE) = 1 at x = 0: a zero network output gives a unit diagonal.
_SOFTPLUS_ONE = math.log(math.e - 1.0)


@dataclasses.dataclass
class NODESOConfig(ModelConfig):
    """Configuration of `node-so`; the fields below differ from or add to `ModelConfig`.

    `hidden`, `layers`, `activation` size every network (decon-hnn: 2 layers of 128, tanh).
    `q_dim` must equal `obs_dim / 2` (as many velocities or momenta as positions).
    """

    integrator: str = "auto"
    """Integrator used while training. `auto`: `euler` for `[q, v]` data, `rk4` for `[q, p]`.
    On `[q, v]` data `euler` is decon-hnn's averaged-velocity rule (see `NODESO`), not plain
    forward Euler; any other name integrates `dq/dt = v`, `dv/dt = a(q, v, u)` as usual."""
    substeps: int = 8
    """Integrator steps per observation interval; decon-hnn uses 8 (`h = dt / 8`)."""
    mass_eps: float = 1e-3
    """`[q, p]` data only: added to the diagonal of the learned inverse mass matrix (in
    normalised units) so that it stays well conditioned."""

    supports_angle_embedding = True

    def __post_init__(self) -> None:
        if self.integrator == "auto":
            self.integrator = "euler" if self.state_layout == "qv" else "rk4"
        super().__post_init__()
        if self.angle_embedding and self.state_layout == "qv":
            for name in (self.integrator, self.test_integrator):
                if name == "euler":
                    raise ValueError(
                        "angle_embedding is not available with the averaged-velocity Euler "
                        "rule of [q, v] data; choose another integrator, e.g. 'rk4'"
                    )
        if 2 * self.v_dim != self.obs_dim:
            raise ValueError(
                "node-so needs as many velocities/momenta as positions (q_dim = obs_dim / 2); "
                f"got q_dim={self.q_dim}, obs_dim={self.obs_dim}"
            )
        if self.mass_eps < 0:
            raise ValueError(f"mass_eps must be >= 0, got {self.mass_eps}")


@final
@register
class NODESO(TransitionModel):
    """A neural ODE whose network models the acceleration (or force) only.

    **`[q, v]` data** (`state_layout="qv"`, e.g. full-state MuJoCo), decon-hnn section 4.3 and
    appendix C. The network gives the acceleration

        a = (dv_mean + dv_std * net([z_hat, u_hat])) / dt          (velocity units per time)

    with `z_hat = state_norm(z)`, `u_hat = action_norm(u)` and `dv_mean`, `dv_std` the velocity
    part of `delta_norm` (one-interval changes), so the net works in O(1) numbers. With the
    `euler` integrator (the default) each of the `substeps` steps of `h = dt / substeps` is the
    averaged-velocity rule of appendix C,

        a = f(q, v, u);   q <- q + h v + h^2 a / 2;   v <- v + h a,

    i.e. `dq/dt = (v + (v + h a)) / 2`, the mean of the velocity before and after the control
    acts: `v` is observed before the action is applied, so `dq/dt = v` alone would lag. It is
    an RK2-like step on `q` for the price of one network evaluation. Other integrators
    (`rk4`, `leapfrog`, ...) integrate the second-order field `dq/dt = v`, `dv/dt = a`.

    **`[q, p]` data** (Hamiltonian systems). `dq/dt = M^-1(q) p` with a learned symmetric
    positive-definite inverse mass matrix and `dp/dt = f(q, p, u)` (a force, momentum units
    per time, scaled like `a` above with the momentum part of `delta_norm`), integrated with
    the configured integrator (`rk4` by default). We learn `M^-1` rather than `M` because the
    field needs `M^-1 p`, which then costs two matrix-vector products instead of a solve:

        M^-1(q) = S (L(q) L(q)^T + mass_eps I) S,   L lower triangular, diag(L) > 0

    where `L`'s entries come from an MLP of `q_hat` (diagonal through softplus, shifted so that
    a zero output gives 1) and `S = diag(sqrt(dq_rate / p_std))` (`dq_rate = dq_std / dt`) is a
    positive scale from the fitted normalisers that makes an O(1) `L L^T` map typical momenta
    to typical rates while keeping `M^-1` symmetric. `mass_matrix(q)` returns its inverse
    `M(q)`. Position and momentum rates both depend on `q`, so the field is not separable:
    leapfrog is approximate.

    Shapes: `z (B, 2n)`, `u (B, A)`, `rollout(z0 (B, 2n), actions (B, T, A)) -> (B, T+1, 2n)`.

    Differences from decon-hnn: their `[q, p]` variant (MechanicsNN) maps `M^-1 p` through an
    extra linear "velocity head"; we keep `dq/dt = M^-1 p` exactly, as the paper's equation (6)
    states. Their rollouts use torchdiffeq's fixed-step Euler; ours is the same rule written out
    with the normalisation folded into the weights (same function, fewer operations).
    """

    name = "node-so"
    config_class = NODESOConfig
    config: NODESOConfig

    def __init__(self, config: NODESOConfig) -> None:
        super().__init__(config)
        n = self.q_dim
        angles = n if config.angle_embedding else 0
        self.net = NormalizedMLP(
            config.obs_dim + angles,
            config.action_dim,
            n,
            config.hidden,
            config.layers,
            config.activation,
        )
        self.mass_net: NormalizedMLP | None = None
        if config.state_layout == "qp":
            self.mass_net = NormalizedMLP(
                n + angles, 0, n * (n + 1) // 2, config.hidden, config.layers, config.activation
            )
            # Entries of L in the order the network emits them: the diagonal, then the rest.
            rows, cols = torch.tril_indices(n, n, offset=-1)
            diagonal = torch.arange(n)
            flat = torch.cat((diagonal * (n + 1), rows * n + cols))
            self.register_buffer("_tril_index", flat, persistent=False)

    # ------------------------------------------------------------------ public
    def acceleration(self, z: Tensor, u: Tensor | None = None) -> Tensor:
        """`dv/dt` (`[q, v]` data) or `dp/dt` (`[q, p]` data), `(B, n)`, at `z (B, 2n)`."""
        z = self._check_state(z)
        u = self._check_action(u, z.shape[0])
        net = self._folded()
        return net(z, net.input_bias(u))

    def inverse_mass_matrix(self, q: Tensor) -> Tensor:
        """The learned `M^-1(q)` `(B, n, n)`, symmetric positive definite (`[q, p]` data)."""
        q = q.to(self.dtype)
        mass = self._inverse_mass(q)
        factor = mass.factor(q)
        eye = torch.eye(self.q_dim, dtype=factor.dtype, device=factor.device)
        inner = factor @ factor.transpose(-1, -2) + self.config.mass_eps * eye
        matrix = mass.scale[:, None] * inner * mass.scale
        return 0.5 * (matrix + matrix.transpose(-1, -2))  # exactly symmetric, not to rounding

    def mass_matrix(self, q: Tensor) -> Tensor:
        """The learned mass matrix `M(q)` `(B, n, n)`, the inverse of `inverse_mass_matrix`."""
        mass = torch.cholesky_inverse(torch.linalg.cholesky(self.inverse_mass_matrix(q)))
        return 0.5 * (mass + mass.transpose(-1, -2))

    def step_with_memory(
        self, z: Tensor, u: Tensor, memory: Memory = None
    ) -> tuple[Tensor, Memory]:
        return self._rollout(z, u.unsqueeze(1))[:, 1], None

    def rollout(
        self, z0: Tensor, actions: Tensor | None = None, *, steps: int | None = None
    ) -> Tensor:
        """Roll out from `z0 (B, 2n)` under `actions (B, T, A)` (or `steps=T` without actions).

        Returns `(B, T + 1, 2n)`. The folded networks and every step's action term are computed
        once for the whole rollout.
        """
        z, actions = rollout_inputs(self, z0, actions, steps)
        return self._rollout(z, actions)

    def numpy_row_step(self) -> NumpyRowStep | None:
        """decon-hnn's averaged-velocity rule on one row in numpy (see `TransitionModel`);
        None with a mass matrix or another integrator, which step in torch."""
        return self._numpy_row_step(self.active_integrator.name, self.active_substeps)

    # ------------------------------------------------------------------ parts
    @inference_cached
    def _numpy_row_step(self, integrator: str, substeps: int) -> NumpyRowStep | None:
        if self.mass_net is not None or integrator != "euler":
            return None
        h = self.dt / substeps
        increment = self._folded(increment=h)
        net = NumpyMLP.of(increment) if isinstance(increment, FoldedMLP) else None
        if net is None:
            return None
        n, dtype = self.q_dim, net.dtype

        def step(z: Any, u: Any) -> Any:
            z = as_row(z, 2 * n, "z", dtype).copy()  # updated in place
            bias = net.input_bias(as_row(u, self.action_dim, "u", dtype))
            for _ in range(substeps):  # as `_averaged_velocity_rollout`, one row
                kick = net(z, bias)  # [h^2/2 a, h a] at the state before this substep
                z[:n] += h * z[n:]
                z += kick
            return z

        return step

    def _rollout(self, z: Tensor, actions: Tensor) -> Tensor:
        """`(B, T + 1, 2n)` from checked `z (B, 2n)` and `actions (B, T, A)`."""
        integrator = self.active_integrator
        substeps = self.active_substeps
        h = self.dt / substeps
        if self.mass_net is None and integrator.name == "euler":
            increment = self._folded(increment=h)
            # The config refuses angle_embedding with this rule: the net reads raw states.
            assert isinstance(increment, FoldedMLP)
            return _averaged_velocity_rollout(
                increment, z, increment.input_biases(actions), h, substeps
            )
        net = self._folded()
        field: Callable[[Tensor], Field]
        if self.mass_net is not None:
            field = functools.partial(_MechanicalField, net, self._inverse_mass())
        else:
            field = functools.partial(_SecondOrderField, net)
        biases = net.input_biases(actions)
        states = [z]
        for t in range(actions.shape[1]):
            z = integrator.advance(field(biases[t]), z, h, substeps)
            states.append(z)
        return torch.stack(states, dim=1)

    @inference_cached
    def _folded(self, increment: float | None = None) -> FoldedNet:
        """The acceleration (or force) network folded, `(B, 2n) -> (B, n)`.

        With `increment=h` its output is instead the averaged-velocity increment
        `[h^2/2 a, h a]` `(B, 2n)`: the output rows are repeated and scaled in the fold.
        """
        n, dt = self.q_dim, self.dt
        scale = self.delta_norm.std[n:] / dt
        offset = self.delta_norm.mean[n:] / dt
        rows = None
        if increment is not None:
            h = increment
            coef = torch.cat((scale.new_full((n,), 0.5 * h * h), scale.new_full((n,), h)))
            rows = torch.arange(n, device=scale.device).repeat(2)
            scale, offset = scale.repeat(2) * coef, offset.repeat(2) * coef
        mean, std = self.state_norm.mean, self.state_norm.std
        if self.config.angle_embedding:
            mean, std = embedded_input_stats(mean, std, n)
        net = self.net.fold(
            in_mean=mean,
            in_std=std,
            action_mean=self.action_norm.mean,
            action_std=self.action_norm.std,
            out_scale=scale,
            out_offset=offset,
            out_rows=rows,
        )
        return AngleInputMLP(net, n) if self.config.angle_embedding else net

    def _inverse_mass(self, q: Tensor | None = None) -> _InverseMass:
        if self.mass_net is None:
            raise ValueError(
                "node-so has a mass matrix only on [q, p] data (state_layout='qp'); "
                "on [q, v] data it models the acceleration directly"
            )
        n = self.q_dim
        if q is not None and (q.ndim != 2 or q.shape[-1] != n):
            raise ValueError(f"positions have shape {tuple(q.shape)}, expected (B, {n})")
        mean, std = self.state_norm.mean[:n], self.state_norm.std[:n]
        if self.config.angle_embedding:
            mean, std = embedded_input_stats(mean, std, n)
        folded = self.mass_net.fold(in_mean=mean, in_std=std)
        net = AngleInputMLP(folded, n) if self.config.angle_embedding else folded
        rate = self.delta_norm.std[:n] / self.dt
        return _InverseMass(
            net=net,
            scale=torch.sqrt(rate / self.state_norm.std[n:]),
            eps=self.config.mass_eps,
            index=self._tril_index,
            n=n,
        )

    _tril_index: Tensor


# ---------------------------------------------------------------------------- integration
def _averaged_velocity_rollout(
    increment: FoldedMLP, z: Tensor, biases: Tensor, h: float, substeps: int
) -> Tensor:
    """decon-hnn's rule, `substeps` times per transition: `q += h v + h^2 a / 2`, `v += h a`.

    `increment` is the acceleration network folded to output `[h^2/2 a, h a]` (`(B, 2n)`),
    `z (B, 2n)`, `biases = increment.input_biases(actions)`, `(T, B, H)` (or `(T, H)` without
    actions); returns `(B, T + 1, 2n)`. Each substep is

        z <- z @ drift + increment(z),   drift = [[I, 0], [h I, I]]   (z @ drift = [q + h v, v])

    one pass through the hidden layers and two `addmm`, nothing else: this loop is the hot
    path of training on MuJoCo data.
    """
    n = z.shape[-1] // 2
    # Built in the weights' dtype on every call: a float32 buffer converted by .double()
    # would keep float32's rounding of h.
    drift = torch.eye(2 * n, dtype=z.dtype, device=z.device)
    drift[n:, :n] = h * torch.eye(n, dtype=z.dtype, device=z.device)
    weight, bias = increment.out_weight, increment.out_bias
    # `out=` buffers have no vmap batching rule: an ensemble's batched members take the loop.
    batched = torch._C._functorch.is_batchedtensor(increment.in_weight)
    if increment.act in IN_PLACE_ACTIVATIONS and not torch.is_grad_enabled() and not batched:
        # Planners, learned envs, evaluation: the same loop in preallocated buffers.
        layers = (increment.in_weight, increment.hidden, weight, bias)
        return averaged_velocity_rollout_no_grad(z, biases, *layers, h, substeps, increment.act)
    states = [z]
    for t in range(biases.shape[0]):
        bias_t = biases[t]
        for _ in range(substeps):
            features = increment.features(z, bias_t)
            z = torch.addmm(torch.addmm(bias, features, weight), z, drift)
        states.append(z)
    return torch.stack(states, dim=1)


# ---------------------------------------------------------------------------- fields
@dataclasses.dataclass(frozen=True)
class _SecondOrderField:
    """`dq/dt = v`, `dv/dt = a(q, v, u)` on `[q, v]` data, for the library integrators."""

    net: FoldedNet
    bias: Tensor
    separable: bool = False

    def position_rate(self, q: Tensor, v: Tensor) -> Tensor:
        return v

    def momentum_rate(self, q: Tensor, v: Tensor) -> Tensor:
        return self.net((q, v), self.bias)


@dataclasses.dataclass(frozen=True)
class _MechanicalField:
    """`dq/dt = M^-1(q) p`, `dp/dt = f(q, p, u)` on `[q, p]` data."""

    net: FoldedNet
    mass: _InverseMass
    bias: Tensor
    separable: bool = False

    def position_rate(self, q: Tensor, p: Tensor) -> Tensor:
        return self.mass.apply(q, p)

    def momentum_rate(self, q: Tensor, p: Tensor) -> Tensor:
        return self.net((q, p), self.bias)


@dataclasses.dataclass(frozen=True)
class _InverseMass:
    """`M^-1(q) = S (L L^T + eps I) S` from a folded network `q -> entries of L`."""

    net: FoldedNet
    scale: Tensor  # S, (n,)
    eps: float
    index: Tensor  # flat positions in (n, n) of the network's outputs
    n: int

    def factor(self, q: Tensor) -> Tensor:
        """The lower-triangular `L(q)` `(B, n, n)` with a positive diagonal."""
        raw = self.net(q, self.net.in_bias)
        n = self.n
        entries = torch.cat((F.softplus(raw[:, :n] + _SOFTPLUS_ONE), raw[:, n:]), dim=-1)
        flat = raw.new_zeros(raw.shape[0], n * n).index_copy(1, self.index, entries)
        return flat.view(-1, n, n)

    def apply(self, q: Tensor, p: Tensor) -> Tensor:
        """`M^-1(q) p` `(B, n)` without forming the matrix."""
        factor = self.factor(q)
        w = p * self.scale
        lt_w = (w.unsqueeze(-2) @ factor).squeeze(-2)  # L^T w
        l_lt_w = (factor @ lt_w.unsqueeze(-1)).squeeze(-1)
        return torch.add(l_lt_w, w, alpha=self.eps) * self.scale
