"""decon-hnn's averaged-velocity rollout for inference, in preallocated buffers.

Planners and learned environments roll `node-so` out on thousands of rows at once. Written as
a plain loop, every substep allocates fresh `(B, H)` tensors; at these sizes each is a newly
mapped block that page-faults on first touch, which costs about a third of the rollout
(`benchmarks/learned_env_throughput.py`). Here the hidden activations and the increment are
allocated once per rollout and overwritten, and the activation and the state update run in
place. The function is the plain loop's (`node_so._averaged_velocity_rollout`), to rounding.

(A hand-written backward for training was tried as well, one autograd node for the whole
rollout with batched weight gradients: it measured no faster than autograd's, since the
matrix products dominate either way, and was dropped.)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

__all__ = ["IN_PLACE_ACTIVATIONS", "averaged_velocity_rollout_no_grad"]

# Each activation (as `FoldedMLP.act`) with its in-place form.
_IN_PLACE: dict[Any, Callable[[Tensor], Tensor]] = {
    torch.sigmoid: torch.Tensor.sigmoid_,
    torch.tanh: torch.Tensor.tanh_,
    torch.relu: torch.Tensor.relu_,
}
#: Activations (as `FoldedMLP.act`) that run in place here.
IN_PLACE_ACTIVATIONS = frozenset(_IN_PLACE)


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
    """States `(B, T + 1, D)` of `q <- q + h v + incr_q(z)`, `v <- v + incr_v(z)`, `substeps`
    times per step, without a graph.

    `incr(z) = act(... act(z @ in_weight + biases[t]) ...) @ out_weight + out_bias` is the
    folded network's `[h^2/2 a, h a]`, with `z0 (B, D)`, `biases (T, B, H)` (the first layer's
    action term and bias per step) or `(T, H)` without actions, `in_weight (D, H)`, `hidden`
    pairs `(W (H, H), b (H,))`, `out_weight (H, D)`, `out_bias (D,)`, `h` the substep (time
    units). `act` is a key of `IN_PLACE_ACTIVATIONS`.
    """
    activate = _IN_PLACE[act]
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
