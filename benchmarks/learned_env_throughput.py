"""Transitions per second of the batched learned env against MuJoCo's own batched rollout.

Subjects, all at `--envs` (default 4,096) parallel copies with HalfCheetah's dimensions
(state 18 = 9 positions + 9 velocities, action 6), random actions in [-1, 1]:

- `mujoco.rollout` (the reference): MuJoCo's multi-threaded C rollout of Gymnasium's
  `HalfCheetah-v5` model (`env.unwrapped.model`) with `--threads` threads and a persistent
  thread pool, from 4,096 initial states drawn by the env's own reset. One env step is
  `frame_skip` (5) physics steps with the control held; env steps are counted, not physics
  steps. No reward is computed (MuJoCo does not know it): this favours the reference.
- `node-so env`: `LearnedVectorEnv(node_so, "physprior/HalfCheetahFull-v0", 4096).step_tensor`
  with node-so at 2 hidden layers of 128 and 8 averaged-velocity substeps per step, its
  normalisers fitted on HalfCheetahFull states (so the divergence bound sees realistic
  statistics); reward, termination, divergence check, episode counting and autoreset included
  (resets draw from a pool of HalfCheetahFull states, as MBPO draws from its data).
- `node-so model`: the bare `model.step(obs, action)` under `torch.inference_mode()`, so that
  the env's overhead over the model shows.
- `mlp env` / `mlp model`: the same for `mlp` (2 hidden layers of 128, one-step delta MLP).
- `node-so chunked` / `node-so halves`: two of issue 16's candidates on the bare node-so
  step: the copies in chunks of 1,024 rows per call, and each half of the copies on its own
  Python thread with one intra-op thread each.
- `node-so matmuls`: only the matrix products of a node-so step, on preallocated tensors: the
  ceiling of any implementation that uses torch's matrix products.

All run in one process on the same cores (torch with `--threads` intra-op threads), alternating
subject by subject in `--rounds` rounds (the order rotates every round), each timed over
`--steps` env steps in wall time; the table gives the median transitions per second of each
and its ratio to the reference measured in the same run. Absolute figures swing by up to 3
times on shared machines; the ratios are the result.

The machine's compute limit is measured in the same run (`_limits.py`: one thread's
`torch.addmm` rate on the model's hidden shape, times `--threads`), and every figure is also
printed as a fraction of the limit it implies (matrix-product FLOPs only).

    python benchmarks/learned_env_throughput.py                     # about a minute
    python benchmarks/learned_env_throughput.py --rounds 3 --steps 10 --threads 1

Goal: the node-so learned env (reward included) at least 10 times `mujoco.rollout`'s env steps
per second. For scale, measured on these machines at 2 threads: `mujoco.rollout` about 58,000
env steps/s, a plain torch node-so loop 220,000-340,000 transitions/s, the compute limit of the
node-so step (its matmuls at full speed) about 1,000,000/s.
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import torch
from _limits import Limit, addmm_gflops, cores_check, mlp_flops, node_so_transition_flops
from mujoco import rollout as mj_rollout

import physprior
from physprior.models import TransitionModel, make

ENV_ID = "physprior/HalfCheetahFull-v0"
GOAL = 10.0


@dataclass
class Subject:
    """One timed subject: `run(steps)` does `steps` env steps of `copies` copies."""

    name: str
    run: Callable[[int], None]
    copies: int
    rates: list[float] = field(default_factory=list)


def halfcheetah_states(n: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Random-action HalfCheetahFull data: `obs (n, 18)`, `actions (n, 6)`, `next_obs (n, 18)`."""
    env = gym.make(ENV_ID)
    rng = np.random.default_rng(seed)
    obs_l, act_l, next_l = [], [], []
    obs, _ = env.reset(seed=seed)
    while len(obs_l) < n:
        action = rng.uniform(-1, 1, 6).astype(np.float32)
        next_obs, _, terminated, truncated, _ = env.step(action)
        obs_l.append(obs)
        act_l.append(action)
        next_l.append(next_obs)
        obs = next_obs
        if terminated or truncated:
            obs, _ = env.reset()
    env.close()
    return np.array(obs_l), np.array(act_l), np.array(next_l)


def fitted_model(
    name: str, data: tuple[np.ndarray, np.ndarray, np.ndarray], **config: Any
) -> TransitionModel:
    """`name` (2x128, HalfCheetahFull dims, random weights) with normalisers fitted on `data`.

    `config`: further fields of the model's config (e.g. `activation`)."""
    torch.manual_seed(0)
    extra = {"substeps": 8, **config} if name == "node-so" else config
    model = make(
        name,
        obs_dim=18,
        action_dim=6,
        q_dim=9,
        state_layout="qv",
        dt=0.05,
        hidden=128,
        layers=2,
        env_id=ENV_ID,
        **extra,
    )
    obs, actions, next_obs = (torch.as_tensor(x, dtype=torch.float32) for x in data)
    model.fit_normalization(torch.stack((obs, next_obs), dim=1), actions.unsqueeze(1))
    return model.eval()


def mujoco_subject(copies: int, threads: int, seed: int) -> tuple[Subject, Callable[[], None]]:
    """`mujoco.rollout` of HalfCheetah-v5 from `copies` reset states; the subject and a closer."""
    env = gym.make("HalfCheetah-v5").unwrapped
    model, frame_skip = env.model, int(env.frame_skip)
    spec = mujoco.mjtState.mjSTATE_FULLPHYSICS
    initial = np.empty((copies, mujoco.mj_stateSize(model, spec)))
    for i in range(copies):
        env.reset(seed=seed + i)
        mujoco.mj_getState(model, env.data, initial[i], spec)
    datas = [mujoco.MjData(model) for _ in range(threads)]
    pool = mj_rollout.Rollout(nthread=threads)
    rng = np.random.default_rng(seed)
    outputs: dict[int, tuple[np.ndarray, np.ndarray, np.ndarray]] = {}

    def run(steps: int) -> None:
        if steps not in outputs:  # controls and output buffers allocated outside the timing
            controls = rng.uniform(-1, 1, (copies, steps, model.nu))
            held = np.repeat(controls, frame_skip, axis=1)  # each control for frame_skip steps
            state = np.empty((copies, steps * frame_skip, initial.shape[1]))
            sensor = np.empty((copies, steps * frame_skip, model.nsensordata))
            outputs[steps] = (held, state, sensor)
        held, state, sensor = outputs[steps]
        pool.rollout(
            model,
            datas,
            initial,
            held,
            nstep=steps * frame_skip,
            state=state,
            sensordata=sensor,
            skip_checks=False,
        )

    def close() -> None:
        pool.close()
        env.close()

    return Subject("mujoco.rollout", run, copies), close


def env_subject(name: str, model: TransitionModel, pool: np.ndarray, copies: int) -> Subject:
    """`LearnedVectorEnv.step_tensor` of `model`, reward and autoreset included."""
    envs = physprior.LearnedVectorEnv(model, ENV_ID, copies, initial_states=pool)
    envs.reset(seed=0)
    gen = torch.Generator().manual_seed(1)

    def run(steps: int) -> None:
        actions = torch.rand(steps, copies, 6, generator=gen) * 2 - 1
        for t in range(steps):
            envs.step_tensor(actions[t])

    return Subject(f"{name} env", run, copies)


def model_subject(name: str, model: TransitionModel, pool: np.ndarray, copies: int) -> Subject:
    """The bare `model.step` under `torch.inference_mode()` (no reward, no checks)."""
    rows = np.random.default_rng(2).integers(len(pool), size=copies)
    start = torch.as_tensor(pool[rows], dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)

    def run(steps: int) -> None:
        actions = torch.rand(steps, copies, 6, generator=gen) * 2 - 1
        z = start
        with torch.inference_mode():
            for t in range(steps):
                z = model.step(z, actions[t])

    return Subject(f"{name} model", run, copies)


def chunked_model_subject(model: TransitionModel, pool: np.ndarray, copies: int) -> Subject:
    """Issue 16's candidate "fewer rows per call": the bare node-so `model.step` on the
    copies in consecutive chunks of 1,024 rows (each chunk's activations stay in the core's
    cache through the step's 8 substeps), the same threads."""
    rows = np.random.default_rng(2).integers(len(pool), size=copies)
    start = torch.as_tensor(pool[rows], dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)
    chunk = 1024

    def run(steps: int) -> None:
        actions = torch.rand(steps, copies, 6, generator=gen) * 2 - 1
        z = start
        with torch.inference_mode():
            for t in range(steps):
                u = actions[t]
                parts = [
                    model.step(z[i : i + chunk], u[i : i + chunk]) for i in range(0, copies, chunk)
                ]
                z = torch.cat(parts)

    return Subject("node-so chunked", run, copies)


def halves_model_subject(
    model: TransitionModel, pool: np.ndarray, copies: int, threads: int
) -> Subject:
    """Issue 16's candidate "split the batch across the cores yourself": the bare node-so
    `model.step`, each half of the copies on its own Python thread with one intra-op thread
    (torch releases the GIL inside its operations); the thread setting is restored after.
    torch's thread count is per thread here (a worker's `set_num_threads` leaves the main
    thread's alone), so the worker sets its own when it starts."""
    rows = np.random.default_rng(2).integers(len(pool), size=copies)
    start = torch.as_tensor(pool[rows], dtype=torch.float32)
    gen = torch.Generator().manual_seed(3)
    worker = ThreadPoolExecutor(1, initializer=torch.set_num_threads, initargs=(1,))
    half = copies // 2

    def second(z: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        with torch.inference_mode():
            return model.step(z[half:], u[half:])

    def run(steps: int) -> None:
        actions = torch.rand(steps, copies, 6, generator=gen) * 2 - 1
        z = start
        torch.set_num_threads(1)
        try:
            with torch.inference_mode():
                for t in range(steps):
                    other = worker.submit(second, z, actions[t])
                    first = model.step(z[:half], actions[t][:half])
                    z = torch.cat((first, other.result()))
        finally:
            torch.set_num_threads(threads)

    return Subject("node-so halves", run, copies)


def matmul_subject(copies: int) -> Subject:
    """The node-so step's matrix products alone, on preallocated tensors: its compute ceiling.

    Per env step: the action term (6 -> 128) once, then per each of the 8 substeps the network
    18 -> 128 -> 128 -> 18; nothing else (no bias, activation, drift, reward or checks). Any
    implementation built on torch's matrix products is bounded by this rate.
    """
    b, d, a, h = copies, 18, 6, 128
    shapes = [(b, a, h)] + 8 * [(b, d, h), (b, h, h), (b, h, d)]
    operands = [(torch.randn(m, k), torch.randn(k, n), torch.empty(m, n)) for m, k, n in shapes]

    def run(steps: int) -> None:
        for _ in range(steps):
            for left, right, out in operands:
                torch.mm(left, right, out=out)

    return Subject("node-so matmuls", run, copies)


def timed(subject: Subject, steps: int) -> float:
    start = time.perf_counter()
    subject.run(steps)
    return subject.copies * steps / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--envs", type=int, default=4096, help="parallel copies (4096)")
    parser.add_argument("--steps", type=int, default=20, help="env steps per timing (20)")
    parser.add_argument("--rounds", type=int, default=7, help="alternating rounds (7)")
    parser.add_argument("--threads", type=int, default=2, help="torch and MuJoCo threads (2)")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    data = halfcheetah_states(2000, args.seed)
    pool = data[0]
    reference, close = mujoco_subject(args.envs, args.threads, args.seed)
    subjects = [reference]
    for name in ("node-so", "mlp"):
        model = fitted_model(name, data)
        subjects += [env_subject(name, model, pool, args.envs)]
        subjects += [model_subject(name, model, pool, args.envs)]
        if name == "node-so":
            subjects += [chunked_model_subject(model, pool, args.envs)]
            subjects += [halves_model_subject(model, pool, args.envs, args.threads)]

    subjects.append(matmul_subject(args.envs))

    for s in subjects:  # warm-up: allocations, thread pools, first-call costs
        s.run(2)
    for r in range(args.rounds):
        for i in range(len(subjects)):
            s = subjects[(i + r) % len(subjects)]
            s.rates.append(timed(s, args.steps))
    close()

    ref = statistics.median(reference.rates)
    print(
        f"{args.envs} copies, {args.steps} env steps per timing, {args.rounds} rounds, "
        f"{args.threads} threads, torch {torch.__version__}, mujoco {mujoco.__version__}"
    )
    print(f"{'subject':<16}{'median /s':>12}{'min /s':>12}{'max /s':>12}{'x mujoco':>10}")
    for s in subjects:
        med = statistics.median(s.rates)
        print(
            f"{s.name:<16}{med:>12,.0f}{min(s.rates):>12,.0f}{max(s.rates):>12,.0f}"
            f"{med / ref:>10.2f}"
        )
    ratios = {s.name: statistics.median(s.rates) / ref for s in subjects}
    env_over_model = statistics.median(subjects[2].rates) / statistics.median(subjects[1].rates)
    print(f"node-so env overhead over the bare model: {env_over_model:.2f}x the env's time")
    print(
        f"node-so matrix products alone (the ceiling of any torch implementation): "
        f"{ratios['node-so matmuls']:.2f}x mujoco.rollout"
    )
    ratio = ratios["node-so env"]
    verdict = "met" if ratio >= GOAL else "not met"
    print(f"goal: node-so env >= {GOAL:.0f}x mujoco.rollout: {ratio:.2f}x ({verdict})")
    # The machine's limit, measured now on the models' hidden shape.
    gflops = addmm_gflops(args.envs, 128, 128)
    limits = {
        "node-so": Limit(node_so_transition_flops(18, 6, 128, 2, 8), gflops, args.threads),
        "mlp": Limit(2 * 6 * 128 + mlp_flops(18, 128, 2, 18), gflops, args.threads),
    }
    print(cores_check(args.envs, 128, 128, args.threads, gflops))
    for name, limit in limits.items():
        print(f"{name}: {limit.describe('transition')}")
    for s in subjects[1:]:
        kind = s.name.split()[0]
        if kind in limits:
            share = limits[kind].fraction(statistics.median(s.rates))
            print(f"{s.name:<16} {share:6.1%} of the {kind} compute limit")


if __name__ == "__main__":
    main()
