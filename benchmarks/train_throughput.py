"""Training throughput of node-so with the decon-hnn MuJoCo configuration.

Trains `node-so` (2 hidden layers of 128, 8 Euler substeps with the averaged-velocity rule,
batch 200, windows of 3 states) on HalfCheetahFull-shaped data (q 9, v 9, actions 6) through
physprior's `Trainer`, and, in the same run and alternating with it, a plain reference: the
same network and update rule written the straightforward way (the network called on
`cat([q, v, u])` at every substep, separate tensor ops for the updates, a plain AdamW step) -
the structure of the decon-hnn authors' implementation. Both see the same windows in the same
order from the same initial weights.

It prints windows per second of both, their ratio, and the wall time of the full protocol
(256 epochs of 40,000 windows) extrapolated from each. For scale: the paper authors' own
implementation trains about 14,000 windows/s on these machines (about 12 minutes for the full
protocol); the goal is 3 times that (the full protocol in under 4 minutes on 2 CPU cores).
Measure on an otherwise idle machine.

The machine's compute limit is measured in the same run (`_limits.py`: one thread's
`torch.addmm` rate on the model's hidden shape, times `--threads`), and both rates are also
printed as a fraction of the limit it implies (a window: 2 transitions forward and backward,
the backward pass counted as twice the forward's products).

    python benchmarks/train_throughput.py                 # 2 epochs each, about 2 minutes
    python benchmarks/train_throughput.py --epochs 4 --threads 1
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time

import gymnasium as gym
import numpy as np
import torch
from _limits import Limit, addmm_gflops, cores_check, node_so_transition_flops
from torch import nn

import physprior  # noqa: F401  (registers the environments)
from physprior.models import make
from physprior.training import TrainConfig, train

WINDOWS = 40_000
BATCH = 200
FULL_EPOCHS = 256
PAPER_WINDOWS_PER_SECOND = 14_000


def halfcheetah_windows(n: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` windows of 3 states `(n, 3, 18)` and their actions `(n, 2, 6)`, random actions.

    Windows lie inside episodes (1,000 steps each).
    """
    env = gym.make("physprior/HalfCheetahFull-v0")
    rng = np.random.default_rng(seed)
    win_states, win_actions = [], []
    episode = 0
    while sum(len(w) for w in win_states) < n:
        obs, _ = env.reset(seed=seed + episode)
        states, acts = [obs], []
        truncated = False
        while not truncated:
            action = rng.uniform(-1, 1, 6).astype(np.float32)
            obs, _, _, truncated, _ = env.step(action)
            states.append(obs)
            acts.append(action)
        s, a = np.asarray(states), np.asarray(acts)
        starts = np.arange(len(a) - 1)
        win_states.append(np.stack([s[starts], s[starts + 1], s[starts + 2]], axis=1))
        win_actions.append(np.stack([a[starts], a[starts + 1]], axis=1))
        episode += 1
    states_t = torch.as_tensor(np.concatenate(win_states)[:n], dtype=torch.float32)
    return states_t, torch.as_tensor(np.concatenate(win_actions)[:n])


class PlainNodeSO(nn.Module):
    """The reference: NODE+SO's averaged-velocity Euler rule, written plainly."""

    def __init__(self, net: nn.Module, stats: dict[str, torch.Tensor], dt: float, substeps: int):
        super().__init__()
        self.net = net
        self.stats = stats
        self.h = dt / substeps
        self.substeps = substeps

    def rollout(self, z0: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        s = self.stats
        z = z0
        out = [z]
        for t in range(actions.shape[1]):
            for _ in range(self.substeps):
                q, v = z[:, :9], z[:, 9:]
                x = torch.cat(
                    [(z - s["z_mean"]) / s["z_std"], (actions[:, t] - s["u_mean"]) / s["u_std"]], -1
                )
                a = self.net(x) * s["a_scale"]
                q = q + self.h * v + 0.5 * self.h**2 * a
                v = v + self.h * a
                z = torch.cat([q, v], -1)
            out.append(z)
        return torch.stack(out, 1)


def plain_epoch(model: PlainNodeSO, opt: torch.optim.Optimizer, states, actions, order) -> float:
    start = time.perf_counter()
    std = model.stats["z_std"]
    for i in range(0, len(order), BATCH):
        idx = order[i : i + BATCH]
        pred = model.rollout(states[idx, 0], actions[idx])
        loss = ((pred[:, 1:] - states[idx, 1:]) / std).square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    return time.perf_counter() - start


def matrix_product_ceiling(repeats: int = 30) -> float:
    """Windows per second if a training step did nothing but its matrix products.

    One batch (200 windows, 2 transitions of 8 substeps: 16 network evaluations) needs, per
    evaluation, the forward products of the 18 -> 128 -> 128 -> 18 network and the drift
    (18 x 18), the backward products to the inputs, and the weight gradients; plus the action
    term (6 -> 128) once per transition. Run back to back on preallocated tensors with no
    autograd, no activation and no optimiser, their time bounds any implementation that calls
    torch's matrix products for them.
    """
    b, d, a, h = BATCH, 18, 6, 128
    forward = [(b, d, h), (b, h, h), (b, h, d), (b, d, d)]  # (m, k, n) of an m x k @ k x n
    to_inputs = [(b, d, h), (b, h, h), (b, h, d), (b, d, d)]
    weight_gradients = [(h, b, d), (h, b, h), (d, b, h)]
    action_term = [(b, a, h), (a, b, h)]
    shapes = 16 * (forward + to_inputs + weight_gradients) + 2 * action_term
    operands = [(torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)) for m, k, n in shapes]

    def one_batch() -> None:
        for left, right, out in operands:
            torch.mm(left, right, out=out)

    for _ in range(5):
        one_batch()
    start = time.perf_counter()
    for _ in range(repeats):
        one_batch()
    return BATCH * repeats / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=2, help="measured epochs per implementation")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    states, actions = halfcheetah_windows(WINDOWS, args.seed)
    dt = 0.05

    torch.manual_seed(args.seed)
    model = make(
        "node-so",
        obs_dim=18,
        action_dim=6,
        q_dim=9,
        state_layout="qv",
        dt=dt,
        hidden=128,
        layers=2,
        substeps=8,
        env_id="physprior/HalfCheetahFull-v0",
    )

    with tempfile.TemporaryDirectory() as tmp:
        config = TrainConfig(epochs=args.epochs, batch_size=BATCH, progress=False, seed=args.seed)
        result = train(model, (states, actions), None, config, tmp)
    # Whole epochs as the trainer runs them: steps, validation and the checkpoint write.
    ours = [record["seconds"] for record in result.history]

    # The reference uses our fitted normalisation and fresh weights of the same shape.
    torch.manual_seed(args.seed)
    net = nn.Sequential(
        nn.Linear(24, 128), nn.Tanh(), nn.Linear(128, 128), nn.Tanh(), nn.Linear(128, 9)
    )
    stats = {
        "z_mean": model.state_norm.mean,
        "z_std": model.state_norm.std,
        "u_mean": model.action_norm.mean,
        "u_std": model.action_norm.std,
        "a_scale": model.delta_norm.std[9:] / dt,
    }
    reference = PlainNodeSO(net, stats, dt, 8)
    opt = torch.optim.AdamW(net.parameters(), lr=2e-4, weight_decay=1e-4)
    plain = []
    for epoch in range(args.epochs):
        order = torch.randperm(WINDOWS, generator=torch.Generator().manual_seed(epoch))
        plain.append(plain_epoch(reference, opt, states, actions, order))
    for epoch, (a, b) in enumerate(zip(ours, plain, strict=True)):
        print(
            f"epoch {epoch + 1}: physprior {WINDOWS / a:,.0f} windows/s, plain {WINDOWS / b:,.0f}"
        )

    ceiling = matrix_product_ceiling()
    ours_rate = WINDOWS / statistics.median(ours)
    plain_rate = WINDOWS / statistics.median(plain)
    print()
    print(f"{'implementation':<22} {'windows/s':>10} {'full protocol':>14}")
    for name, rate in (
        ("physprior node-so", ours_rate),
        ("plain reference", plain_rate),
        ("paper authors (quoted)", PAPER_WINDOWS_PER_SECOND),
    ):
        minutes = FULL_EPOCHS * WINDOWS / rate / 60
        print(f"{name:<22} {rate:>10,.0f} {minutes:>11.1f} min")
    print(
        f"\nmatrix products alone (no autograd, activations or optimiser): {ceiling:,.0f} "
        f"windows/s, {FULL_EPOCHS * WINDOWS / ceiling / 60:.1f} min for the full protocol"
    )
    # The machine's limit, measured now: a window's 2 transitions forward and backward
    # (the backward pass twice the forward's products: to the inputs and to the weights).
    window_flops = 3 * 2 * node_so_transition_flops(18, 6, 128, 2, 8)
    gflops = addmm_gflops(BATCH, 128, 128)
    limit = Limit(window_flops, gflops, args.threads)
    print(cores_check(BATCH, 128, 128, args.threads, gflops))
    print(
        f"{limit.describe('window')}; physprior at {limit.fraction(ours_rate):.1%} of it, the "
        f"plain reference at {limit.fraction(plain_rate):.1%}"
    )
    print(
        f"physprior / plain reference: {ours_rate / plain_rate:.2f}x; "
        f"physprior / paper authors (quoted): {ours_rate / PAPER_WINDOWS_PER_SECOND:.2f}x "
        f"(goal: 3x, the full protocol under 4 min)"
    )


if __name__ == "__main__":
    main()
