"""decon-hnn's averaged-velocity rollout as one autograd node with a hand-written backward.

Training `node-so` on MuJoCo data spends its time in a loop of `T * substeps` evaluations of a
small MLP on a batch of a few hundred states. Recorded op by op, every evaluation adds about a
dozen autograd nodes, and the backward pass then computes each weight gradient once per
evaluation and adds them up. `averaged_velocity_rollout` instead runs the loop without a graph,
keeping the states and hidden activations in preallocated `(S, B, .)` buffers
(`S = T * substeps`), and its backward walks the loop in reverse with only the matrix products
the chain rule needs. Every weight gradient is then a single product over all `S * B` rows at
once, e.g. `dW = sum_k a_k^T g_k = A^T G` with `A`, `G` the stacked `(S * B, .)` buffers.

The function computed is exactly the one of the plain loop in `node_so._averaged_velocity_rollout`
(same operations in the same order); the gradients agree with autograd's to rounding, which
`tests/models/test_node_so.py` checks with `torch.autograd.gradcheck` in float64.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = [
    "FUSED_ACTIVATIONS",
    "averaged_velocity_rollout",
    "averaged_velocity_rollout_no_grad",
]

# The activation's derivative written in terms of its output, so that only outputs are kept.
_Backward = Callable[[Tensor, Tensor], Tensor]
_ACTIVATIONS: dict[Any, tuple[Callable[[Tensor], Tensor], _Backward]] = {
    torch.sigmoid: (torch.Tensor.sigmoid_, torch.ops.aten.sigmoid_backward),
    torch.tanh: (torch.Tensor.tanh_, torch.ops.aten.tanh_backward),
    torch.relu: (torch.Tensor.relu_, lambda grad, out: grad * (out > 0)),
}
#: Activations (as `FoldedMLP.act`) whose rollouts can take the fused path.
FUSED_ACTIVATIONS = frozenset(_ACTIVATIONS)


def averaged_velocity_rollout(
    z0: Tensor,
    biases: Tensor,
    in_weight: Tensor,
    hidden: Sequence[tuple[Tensor, Tensor]],
    out_weight: Tensor,
    out_bias: Tensor,
    drift: Tensor,
    substeps: int,
    act: Callable[[Tensor], Tensor],
) -> Tensor:
    """States `(B, T + 1, D)` of `z <- z @ drift + increment(z)`, `substeps` times per step.

    `increment(z) = act(... act(z @ in_weight + biases[t]) ...) @ out_weight + out_bias` with
    `z0 (B, D)`, `biases (T, B, H)` (the first layer's action term and bias, per step),
    `in_weight (D, H)`, `hidden` pairs `(W (H, H), b (H,))`, `out_weight (H, D)`,
    `out_bias (D,)`, `drift (D, D)` (a constant: no gradient). `act` is a key of
    `FUSED_ACTIVATIONS`. Differentiable once (no double backward) in every tensor but `drift`.
    """
    flat_hidden = [tensor for pair in hidden for tensor in pair]
    states: Tensor = _AveragedVelocityRollout.apply(
        substeps, act, drift, z0, biases, in_weight, out_weight, out_bias, *flat_hidden
    )
    return states


def averaged_velocity_rollout_no_grad(
    z0: Tensor,
    biases: Tensor,
    in_weight: Tensor,
    hidden: Sequence[tuple[Tensor, Tensor]],
    out_weight: Tensor,
    out_bias: Tensor,
    h: float,
    substeps: int,
    act: Callable[[Tensor], Tensor],
) -> Tensor:
    """`averaged_velocity_rollout` for inference (no graph), in preallocated buffers.

    The same arguments and result, except that the drift is given by its step `h`
    (`z @ drift = [q + h v, v]`, applied in place) and `biases` may also be `(T, H)` (no
    actions). Planners and learned envs call this with thousands of rows, where every fresh
    `(B, H)` tensor is a newly mapped block that page-faults on first touch; here the hidden
    activations and the increment are allocated once and overwritten, and the activation and
    the state update run in place.
    """
    activate = _ACTIVATIONS[act][0]
    batch, dim = z0.shape
    n = dim // 2
    steps = biases.shape[0]
    states = z0.new_empty(batch, steps + 1, dim)
    states[:, 0] = z0
    layers = [z0.new_empty(batch, in_weight.shape[1]) for _ in range(len(hidden) + 1)]
    increment = z0.new_empty(batch, dim)
    z = z0.clone()
    q, v = z[:, :n], z[:, n:]
    for t in range(steps):
        bias_t = biases[t]
        for _ in range(substeps):
            activate(torch.addmm(bias_t, z, in_weight, out=layers[0]))
            for j, (weight, bias) in enumerate(hidden):
                activate(torch.addmm(bias, layers[j], weight, out=layers[j + 1]))
            torch.addmm(out_bias, layers[-1], out_weight, out=increment)
            q.add_(v, alpha=h)  # the drift, with the velocity before this substep's kick
            z.add_(increment)
        states[:, t + 1] = z
    return states


class _AveragedVelocityRollout(torch.autograd.Function):
    # Per-evaluation tensors are kept as lists of `(B, .)` blocks rather than stacked
    # `(S, B, .)` buffers: blocks this small come from the allocator's free lists, whereas a
    # fresh megabyte-sized buffer per batch is mapped anew and page-faults on first touch,
    # which cost more than the products themselves.

    @staticmethod
    def forward(
        ctx: Any,
        substeps: int,
        act: Callable[[Tensor], Tensor],
        drift: Tensor,
        z0: Tensor,
        biases: Tensor,
        in_weight: Tensor,
        out_weight: Tensor,
        out_bias: Tensor,
        *flat_hidden: Tensor,
    ) -> Tensor:
        activate = _ACTIVATIONS[act][0]
        hidden = list(zip(flat_hidden[::2], flat_hidden[1::2], strict=True))
        # zs[k] is the state entering evaluation k; acts[j][k] the output of hidden layer j.
        zs = [z0]
        acts: list[list[Tensor]] = [[] for _ in range(len(hidden) + 1)]
        for t in range(biases.shape[0]):
            bias_t = biases[t]
            for _ in range(substeps):
                z = zs[-1]
                a = activate(torch.addmm(bias_t, z, in_weight))
                acts[0].append(a)
                for j, (weight, bias) in enumerate(hidden):
                    a = activate(torch.addmm(bias, a, weight))
                    acts[j + 1].append(a)
                zs.append(torch.addmm(torch.addmm(out_bias, a, out_weight), z, drift))
        ctx.substeps = substeps
        ctx.act = act
        # Inputs go through save_for_backward (autograd then catches in-place changes to them);
        # the intermediates are private to this node and kept on it directly.
        ctx.save_for_backward(z0, drift, in_weight, out_weight, *flat_hidden[::2])
        ctx.zs, ctx.acts = zs[1:], acts
        return torch.stack(zs[::substeps], dim=1)

    @staticmethod
    @torch.autograd.function.once_differentiable
    def backward(ctx: Any, grad_states: Tensor) -> tuple[Tensor | None, ...]:
        substeps: int = ctx.substeps
        derivative = _ACTIVATIONS[ctx.act][1]
        z0, drift, in_weight, out_weight, *hidden_weights = ctx.saved_tensors
        zs: list[Tensor] = [z0, *ctx.zs]
        acts: list[list[Tensor]] = ctx.acts
        layers, total = len(acts), len(acts[0])
        steps = total // substeps
        needs = ctx.needs_input_grad

        # Gradient accumulators, one product added per evaluation (as autograd would, but
        # without a graph node per operation).
        grad_in = in_weight.new_zeros(in_weight.shape)
        grad_out_weight = out_weight.new_zeros(out_weight.shape)
        grad_out_rows = zs[0].new_zeros(zs[0].shape)  # sum over evaluations, rows summed last
        grad_hidden = [w.new_zeros(w.shape) for w in hidden_weights]
        grad_hidden_rows = [acts[0][0].new_zeros(acts[0][0].shape) for _ in hidden_weights]
        grad_biases = acts[0][0].new_zeros(steps, *acts[0][0].shape)

        drift_t, out_weight_t, in_weight_t = drift.t(), out_weight.t(), in_weight.t()
        grad = grad_states[:, steps].clone()  # dL/d zs[k + 1], walking back from the end
        for k in range(total - 1, -1, -1):
            grad_out_weight.addmm_(acts[-1][k].t(), grad)
            grad_out_rows += grad
            upstream = torch.mm(grad, out_weight_t)
            for j in range(layers - 1, 0, -1):
                pre = derivative(upstream, acts[j][k])
                grad_hidden[j - 1].addmm_(acts[j - 1][k].t(), pre)
                grad_hidden_rows[j - 1] += pre
                upstream = torch.mm(pre, hidden_weights[j - 1].t())
            pre = derivative(upstream, acts[0][k])
            grad_in.addmm_(zs[k].t(), pre)
            grad_biases[k // substeps] += pre
            grad = torch.addmm(torch.mm(grad, drift_t), pre, in_weight_t)
            if k % substeps == 0:
                grad += grad_states[:, k // substeps]

        grads_hidden: list[Tensor | None] = []
        for weight, rows in zip(grad_hidden, grad_hidden_rows, strict=True):
            grads_hidden += [weight, rows.sum(0)]
        return (
            None,
            None,
            None,
            grad if needs[3] else None,
            grad_biases if needs[4] else None,
            grad_in if needs[5] else None,
            grad_out_weight if needs[6] else None,
            grad_out_rows.sum(0) if needs[7] else None,
            *grads_hidden,
        )
