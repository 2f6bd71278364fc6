"""Training-step time of `pixel-vin` on the VIN paper's pixel data, against the machine's limit.

One Adam step on the authors' batch: the 50 windows of 11 frames of one 60-frame pendulum
trajectory (28x28). It times, alternating, the model as it is (each distinct frame encoded
once: 60 frames rather than the windows' 500) and a reference that encodes every window's
frames (the authors' way), and, in the same run, `torch.addmm` on the step's dominant shapes
to give the machine's dense-matrix limit. It prints milliseconds per step, the ratio of the
two, and each one's achieved GFLOP/s as a fraction of the limit (FLOPs counted from the
dense layers: 2 per multiply-add forward, twice that backward).

    python benchmarks/pixel_vin_step.py                 # about a minute
    python benchmarks/pixel_vin_step.py --dynamics vv --steps 30

Measure on an otherwise idle machine; every figure is on one thread.
"""

from __future__ import annotations

import argparse
import statistics
import time

import gymnasium as gym
import torch

import physprior  # noqa: F401  (registers the environments)
from physprior.data import generate_trajectories, make_windows, render_frames
from physprior.models import make
from physprior.models.pixel_vin import PixelVIN

PENDULUM = {"gravity": 4.91, "start": "vin", "dt": 0.1}


def pendulum_windows() -> torch.Tensor:
    """The paper's batch: every 11-frame window of one 60-frame trajectory, `(50, 11, 784)`."""
    env = gym.make("physprior/Pendulum-v0", **PENDULUM)
    data = generate_trajectories("physprior/Pendulum-v0", 1, 60, seed=0, env_kwargs=PENDULUM)
    frames = torch.from_numpy(render_frames(env, make_windows(data, 60).states))[0]
    return frames[torch.arange(50)[:, None] + torch.arange(11)]


def dense_flops(model: PixelVIN, windows: torch.Tensor, encoded_frames: int) -> float:
    """Forward-and-backward FLOPs of the encoder and decoder layers for one step."""
    decoded = windows.shape[0] * windows.shape[1]
    flops = 0.0
    for net, rows in ((model.frame_encoder, encoded_frames), (model.decoder, decoded)):
        for layer in net:
            if isinstance(layer, torch.nn.Linear):
                flops += 6.0 * rows * layer.in_features * layer.out_features
    return flops


def addmm_limit(seconds: float = 2.0) -> float:
    """GFLOP/s of `torch.addmm` on the decoder's widest shape (550 x 1000 x 1000)."""
    a, b, c = torch.randn(550, 1000), torch.randn(1000, 1000), torch.randn(550, 1000)
    torch.addmm(c, a, b)
    count, start = 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        torch.addmm(c, a, b)
        count += 1
    return 2.0 * 550 * 1000 * 1000 * count / (time.perf_counter() - start) / 1e9


def time_steps(model: PixelVIN, windows: torch.Tensor, steps: int) -> float:
    """Median seconds per Adam step."""
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-4)
    actions = torch.zeros(windows.shape[0], windows.shape[1] - 1, 0)
    times = []
    for i in range(steps + 2):
        start = time.perf_counter()
        loss = model.training_loss(windows, actions)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if i >= 2:  # the first steps allocate
            times.append(time.perf_counter() - start)
    return statistics.median(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--dynamics", default="so2", choices=("vv", "sv", "so2", "resnet"))
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    torch.set_num_threads(1)
    windows = pendulum_windows()
    torch.manual_seed(0)
    model = make("pixel-vin", dt=0.1, dynamics=args.dynamics)
    assert isinstance(model, PixelVIN)
    shared = model._encode_frames
    distinct = int(torch.unique(windows[:, :10].reshape(-1, 784), dim=0).shape[0])

    def every_frame(frames: torch.Tensor) -> torch.Tensor:
        return model.frame_encoder(frames)

    limit = addmm_limit()
    ours, reference = [], []
    for _ in range(2):  # alternate, so that drift in the machine hits both
        model._encode_frames = shared  # type: ignore[method-assign]
        ours.append(time_steps(model, windows, args.steps))
        model._encode_frames = every_frame  # type: ignore[method-assign]
        reference.append(time_steps(model, windows, args.steps))
    t_ours, t_ref = min(ours), min(reference)
    f_ours = dense_flops(model, windows, distinct) / t_ours / 1e9
    f_ref = dense_flops(model, windows, 500) / t_ref / 1e9
    print(f"pixel-vin ({args.dynamics}), 50 windows of 11 frames, one thread")
    print(f"machine limit (addmm 550x1000x1000): {limit:.1f} GFLOP/s")
    print(
        f"shared frames ({distinct} encoded): {1e3 * t_ours:.1f} ms/step, {f_ours:.1f} GFLOP/s "
        f"({f_ours / limit:.2f} of the limit)"
    )
    print(
        f"every frame (500 encoded):  {1e3 * t_ref:.1f} ms/step, {f_ref:.1f} GFLOP/s "
        f"({f_ref / limit:.2f} of the limit)"
    )
    print(
        f"speed-up: {t_ref / t_ours:.2f}x; 8,000 epochs: {8000 * t_ours / 60:.1f} min "
        f"against {8000 * t_ref / 60:.1f}"
    )


if __name__ == "__main__":
    main()
