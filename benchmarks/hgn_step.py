"""Training-step time of `hgn` on HGN's batch, against the machine's limit.

One Adam step on the paper's batch: 16 sequences of 31 frames of 32x32x3. It times the
reduced model (the suite's default) and the paper's architecture, and, for the decoder alone
(most of a step), activations in PyTorch's default layout (the reference) against the
channels-last layout the model uses. In the same run `torch.addmm` on a 512 x 512 x 512 shape
gives the machine's dense-matrix limit; each figure's achieved GFLOP/s (convolution and
linear FLOPs counted from the layers: 2 per multiply-add forward, twice that backward) is
printed as a fraction of it.

    python benchmarks/hgn_step.py                 # about two minutes
    python benchmarks/hgn_step.py --steps 3 --skip-paper

Measure on an otherwise idle machine; every figure is on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable

import torch
from torch import nn

from physprior.models import make
from physprior.models.hgn import HGN


def addmm_limit(seconds: float = 2.0) -> float:
    """GFLOP/s of `torch.addmm` on a 512 x 512 x 512 product."""
    a, b, c = torch.randn(512, 512), torch.randn(512, 512), torch.randn(512, 512)
    torch.addmm(c, a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.addmm(c, a, b)
        count += 1
    return 2.0 * 512**3 * count / (time.perf_counter() - start) / 1e9


def layer_flops(module: nn.Module, example: torch.Tensor) -> float:
    """Forward FLOPs of the convolutions and linear layers of `module` on `example`."""
    total = 0.0

    def count(layer: nn.Module, inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        nonlocal total
        if isinstance(layer, nn.Conv2d):
            per_output = (
                layer.in_channels // layer.groups * layer.kernel_size[0] * layer.kernel_size[1]
            )
            total += 2.0 * per_output * output.numel()
        elif isinstance(layer, nn.Linear):
            total += 2.0 * layer.in_features * output.numel()

    hooks = [m.register_forward_hook(count) for m in module.modules()]
    with torch.no_grad():
        module(example)
    for hook in hooks:
        hook.remove()
    return total


def median_seconds(run: Callable[[], None], steps: int) -> float:
    """Median seconds of `run` after two warm-up calls."""
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        run()
        if i >= 2:
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def step_seconds(model: HGN, frames: torch.Tensor, steps: int) -> float:
    optimizer = torch.optim.Adam(model.parameters(), lr=1.5e-4)
    actions = torch.zeros(frames.shape[0], frames.shape[1] - 1, 0)

    def run() -> None:
        loss = model.training_loss(frames, actions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()

    return median_seconds(run, steps)


def step_flops(model: HGN, frames: torch.Tensor) -> float:
    """Forward-and-backward FLOPs of the encoder, f_psi and decoder for one step (the
    Hamiltonian's small share is left out)."""
    c = model.config
    stacked = model._stack(frames)
    mean, _ = model.encoder(stacked)
    flops = layer_flops(model.encoder, stacked) + layer_flops(model.transformer, mean)
    side = c.state_side
    q = torch.zeros(frames.shape[0] * frames.shape[1], c.state_channels, side, side)
    flops += layer_flops(model.decoder, q)
    return 3.0 * flops


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=5, help="timed steps per figure")
    parser.add_argument("--skip-paper", action="store_true", help="time the reduced model only")
    args = parser.parse_args()
    torch.set_num_threads(1)
    torch.manual_seed(0)
    frames = torch.rand(16, 31, 3072)
    limit = addmm_limit()
    print(f"torch.addmm limit (512^3, one thread): {limit:.1f} GFLOP/s")

    reduced = make("hgn", dt=0.125, inference_frames=31).train()
    decoder = reduced.decoder
    q = torch.randn(16 * 31, 16, 4, 4, requires_grad=True)

    def decode(layout: torch.memory_format) -> Callable[[], None]:
        def run() -> None:
            x = q.contiguous(memory_format=layout)
            # The blocks and output layer, bypassing the forward's own layout choice.
            out = torch.sigmoid(decoder.out(decoder.blocks(x)))
            out.square().mean().backward()

        return run

    decoder_flops = 3.0 * layer_flops(decoder, q)
    for name, layout in (
        ("decoder, default layout (reference)", torch.contiguous_format),
        ("decoder, channels-last (the model's)", torch.channels_last),
    ):
        seconds = median_seconds(decode(layout), args.steps)
        rate = decoder_flops / seconds / 1e9
        print(
            f"{name}: {1e3 * seconds:.0f} ms, {rate:.1f} GFLOP/s = {rate / limit:.2f} of the limit"
        )

    presets = ["reduced"] if args.skip_paper else ["reduced", "paper"]
    for preset in presets:
        model = make("hgn", dt=0.125, preset=preset, inference_frames=31).train()
        assert isinstance(model, HGN)
        seconds = step_seconds(model, frames, args.steps if preset == "reduced" else 2)
        rate = step_flops(model, frames) / seconds / 1e9
        print(
            f"hgn preset={preset}: {seconds:.2f} s per step (batch 16 x 31 frames), "
            f"{rate:.1f} GFLOP/s = {rate / limit:.2f} of the limit"
        )


if __name__ == "__main__":
    main()
