"""SAC collection: the recording callback, the agent's pickle-free state, the buffer refill.

What SB3 2.x does in `OffPolicyAlgorithm.collect_rollouts` at each env step, and what the
callback reads from it (`self.locals` at `on_step`):

- `actions` `(1, A)`: the actions the vec env passed to the env, in env units (SB3 unscales
  its `[-1, 1]` buffer actions first);
- `new_obs` `(1, D)`: the observation after the step, or, when the episode ended, the first
  observation of the next one (the vec env resets automatically); the episode's true last
  observation is then `infos[0]["terminal_observation"]`;
- `dones` `(1,)`: terminated or truncated; `infos[0]["TimeLimit.truncated"]` says it was the
  time limit (and not a true end);
- `self.model._last_obs` `(1, D)`: still the observation *before* the step, because SB3
  replaces it only in `_store_transition`, after the callback.

Rewards in `self.locals` are float32 (the vec env's reward buffer); `ExactReward` passes the
env's own float64 reward through `info` so the dataset keeps it exactly.

The agent state for resuming is one safetensors file: the policy's `state_dict` (actor, critic,
target critic), SAC's `log_ent_coef`, and the Adam states of the actor, critic and entropy
optimisers (moment tensors as tensors, their `param_groups` as JSON in the file's metadata),
the step and update counters, and the run state of `_resume` (random generators, where
the env stands, the replay buffer's stored actions). Nothing is pickled, so loading runs no
code. The replay buffer's other contents are refilled from the dataset, in SB3's own layout.

The callback writes both files at the start of an SB3 rollout, after the previous step's
gradient update, where the state above decides everything that follows; the dataset first,
then the agent state, so a kill between the two leaves rows ahead of the agent, which a resume
discards and records again, identically.
"""

from __future__ import annotations

import io
import json
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import gymnasium as gym
import numpy as np
import torch
from safetensors import safe_open
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.logger import HumanOutputFormat, Logger

from physprior._io import atomic_write
from physprior.data import TransitionDataset

from ._record import Recorder, json_safe
from ._resume import PREFIX as RUN_PREFIX
from ._resume import capture

if TYPE_CHECKING:
    from stable_baselines3 import SAC
    from tqdm import tqdm

#: Key in `info` under which `ExactReward` passes the env's float64 reward.
REWARD_KEY = "physprior.reward"
#: Version of the agent-state file; bump on an incompatible change.
AGENT_STATE_VERSION = 2
#: Versions `restore_agent_state` reads (version 1 has no run state: its resume is not exact).
READABLE_VERSIONS = (1, 2)


class ExactReward(gym.Wrapper[Any, Any, Any, Any]):
    """Copies each step's reward into `info[REWARD_KEY]` (SB3's vec env rounds it to float32)."""

    def step(self, action: Any) -> tuple[Any, Any, bool, bool, dict[str, Any]]:
        obs, reward, terminated, truncated, info = self.env.step(action)
        info[REWARD_KEY] = reward
        return obs, reward, terminated, truncated, info


def default_sac_kwargs(steps: int) -> dict[str, Any]:
    """SAC's settings for a run of `steps` env steps on a 2-core CPU.

    Standard SAC (Haarnoja et al. 2018; SB3's defaults) with hidden layers of 128 rather than
    256: on this 2-core machine 1,500 steps of InvertedPendulumFull took 34 s with 2 x 64,
    34 s with 2 x 128 and 54 s with 2 x 256 (one torch thread), and these states have at most
    29 dimensions. The replay buffer holds the whole run up to SB3's default of a million rows
    (so a resumed run refills it completely), and learning starts after 1000 random steps, or
    a tenth of the run when that is shorter.
    """
    return {
        "learning_rate": 3e-4,
        "buffer_size": int(min(steps, 1_000_000)),
        "learning_starts": int(min(1000, max(1, steps // 10))),
        "batch_size": 256,
        "tau": 0.005,
        "gamma": 0.99,
        "train_freq": 1,
        "gradient_steps": 1,
        "policy_kwargs": {"net_arch": [128, 128]},
        "device": "cpu",
    }


def make_sac(env: Any, seed: int, kwargs: dict[str, Any]) -> SAC:
    """An SB3 SAC with an MLP policy on the vec env `env`."""
    from stable_baselines3 import SAC

    options = {"verbose": 0, **kwargs}
    agent = SAC("MlpPolicy", env, seed=seed, **options)
    agent.set_logger(folderless_logger(bool(options["verbose"])))
    return agent


def folderless_logger(verbose: bool) -> Logger:
    """An SB3 logger that writes to stdout (verbose) or nowhere, and creates no folder.

    Without one, every `learn` call makes SB3 create an empty `SB3-<date>` folder in the
    system's temporary directory, hundreds over a test run or a benchmark suite.
    """
    return Logger(folder=None, output_formats=[HumanOutputFormat(sys.stdout)] if verbose else [])


class RecordCallback(BaseCallback):
    """Records every env step SAC takes into a `Recorder`; flushes every `flush_every` rows.

    `flush` (the recorder's flush, then the agent state) runs at the start of the first
    rollout after the row count reaches a multiple of `flush_every`: after that step's
    gradient update, where the saved state decides the rest of the run. The run stops
    (on_step returns False) rather than record past the recorder's capacity, which only an
    episode-based `train_freq` could reach.
    """

    def __init__(
        self,
        recorder: Recorder,
        flush: Callable[[], None],
        flush_every: int,
        bar: tqdm[Any] | None = None,
    ) -> None:
        super().__init__(verbose=0)
        self.recorder = recorder
        self.flush = flush
        self.flush_every = int(flush_every)
        self.bar = bar
        self._flushed_at = recorder.rows

    def _on_rollout_start(self) -> None:
        rows = self.recorder.rows
        if rows != self._flushed_at and rows % self.flush_every == 0 and not self.recorder.full:
            self.flush()  # the end of the run writes anyway
            self._flushed_at = rows

    def _on_step(self) -> bool:
        rec = self.recorder
        if rec.full:
            return False
        local = self.locals
        info = local["infos"][0]
        done = bool(local["dones"][0])
        next_obs = info["terminal_observation"] if done else local["new_obs"][0]
        truncated = done and bool(info.get("TimeLimit.truncated", False))
        rec.add(
            self.model._last_obs[0],  # type: ignore[index]
            local["actions"][0],
            next_obs,
            info[REWARD_KEY],
            done and not truncated,
            truncated,
        )
        if self.bar is not None:
            self.bar.update(1)
        return True


# ---------------------------------------------------------------------- agent state


def _optimizers(model: SAC) -> dict[str, torch.optim.Optimizer]:
    found = {"actor": model.actor.optimizer, "critic": model.critic.optimizer}
    if model.ent_coef_optimizer is not None:
        found["ent_coef"] = model.ent_coef_optimizer
    return found


def save_agent_state(model: SAC, path: str | os.PathLike[str], rows: int) -> Path:
    """Write SAC's weights, optimiser states and counters to a safetensors file, atomically."""
    tensors: dict[str, torch.Tensor] = {
        f"policy.{k}": v.detach().cpu().clone() for k, v in model.policy.state_dict().items()
    }
    if model.log_ent_coef is not None:
        tensors["log_ent_coef"] = model.log_ent_coef.detach().cpu().clone()
    groups: dict[str, Any] = {}
    for name, optimizer in _optimizers(model).items():
        state = optimizer.state_dict()
        groups[name] = state["param_groups"]
        for index, entries in state["state"].items():
            for key, value in entries.items():
                if not isinstance(value, torch.Tensor):
                    value = torch.tensor(value)
                tensors[f"optim.{name}.{index}.{key}"] = value.detach().cpu().clone()
    header = {
        "version": AGENT_STATE_VERSION,
        "rows": int(rows),
        "num_timesteps": int(model.num_timesteps),
        "n_updates": int(model._n_updates),
        "episode_num": int(model._episode_num),
        "param_groups": json_safe(groups),
    }
    if model._last_obs is not None and model.replay_buffer is not None:
        run_tensors, header["run"] = capture(model)
        tensors.update(run_tensors)
    blob = save_tensors(tensors, metadata={"physprior": json.dumps(header)})
    return atomic_write(path, lambda handle: handle.write(blob))


RunState = tuple[dict[str, torch.Tensor], dict[str, Any]]


@dataclass(frozen=True)
class RestoredAgent:
    """What `restore_agent_state` read besides the weights: the row count the state was saved
    at, and the run state (`_resume.capture`), None in a version-1 file."""

    rows: int
    run_state: RunState | None


def agent_state_header(path: str | os.PathLike[str]) -> dict[str, Any]:
    """The JSON header of a physprior SAC state file (its tensors are not read).

    Raises ValueError naming the file when it is damaged, foreign or of an unread version.
    """
    source = Path(path)
    try:
        with safe_open(str(source), framework="pt") as handle:
            metadata = handle.metadata() or {}
    except Exception as err:  # safetensors raises its own error type for a damaged header
        raise ValueError(f"{source} is damaged or not a safetensors file ({err})") from None
    try:
        header = json.loads(metadata["physprior"])
    except (KeyError, json.JSONDecodeError):
        raise ValueError(f"{source} is not a physprior SAC state file") from None
    if not isinstance(header, dict) or header.get("version") not in READABLE_VERSIONS:
        version = header.get("version") if isinstance(header, dict) else None
        raise ValueError(
            f"{source}: agent state version {version} is not supported "
            f"(this physprior reads versions {', '.join(map(str, READABLE_VERSIONS))})"
        )
    return header


def restore_agent_state(model: SAC, path: str | os.PathLike[str]) -> RestoredAgent:
    """Load a `save_agent_state` file into `model` (same architecture), reading it once.

    Raises ValueError with the file and the reason when it does not fit `model`.
    """
    source = Path(path)
    header = agent_state_header(source)
    try:
        tensors = load_tensors(source.read_bytes())
        groups = header["param_groups"]
    except Exception as err:  # a damaged body or a header without the optimiser groups
        raise ValueError(f"{source} is damaged ({type(err).__name__}: {err})") from None
    policy = {k[len("policy.") :]: v for k, v in tensors.items() if k.startswith("policy.")}
    try:
        model.policy.load_state_dict(policy, strict=True)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ValueError(
            f"{source} does not fit this SAC (other network sizes?): {first[-1].strip()}"
        ) from None
    if model.log_ent_coef is not None:
        if "log_ent_coef" not in tensors:
            raise ValueError(f"{source} has no entropy coefficient; this SAC learns one")
        with torch.no_grad():
            model.log_ent_coef.copy_(tensors["log_ent_coef"])
    for name, optimizer in _optimizers(model).items():
        if name not in groups:
            raise ValueError(f"{source} has no {name} optimiser state")
        prefix = f"optim.{name}."
        state: dict[int, dict[str, torch.Tensor]] = {}
        for key, value in tensors.items():
            if key.startswith(prefix):
                index, field = key[len(prefix) :].split(".", 1)
                state.setdefault(int(index), {})[field] = value
        optimizer.load_state_dict({"state": state, "param_groups": _tuples(groups[name])})
    model.num_timesteps = int(header["num_timesteps"])
    model._n_updates = int(header["n_updates"])
    model._episode_num = int(header["episode_num"])
    run_state = None
    if "run" in header:
        run = {k: v for k, v in tensors.items() if k.startswith(RUN_PREFIX)}
        run_state = (run, header["run"])
    return RestoredAgent(rows=int(header["rows"]), run_state=run_state)


def _tuples(groups: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """JSON turned Adam's `betas` tuple into a list; give torch back its tuple."""
    return [{k: tuple(v) if k == "betas" else v for k, v in g.items()} for g in groups]


def refill_buffer(model: SAC, dataset: TransitionDataset) -> None:
    """Put the dataset's newest rows (up to the buffer's size) into SAC's replay buffer, each
    in the slot SB3's circular buffer gave it (row `r` at `r % buffer_size`).

    Actions are rescaled to `[-1, 1]` as SB3 stores them, rewards stored float32 as SB3 does,
    `dones = terminated | truncated` and `timeouts = truncated`. The buffer must be a plain
    `ReplayBuffer` without `optimize_memory_usage` and with one env.
    """
    buffer = model.replay_buffer
    if buffer is None:
        raise RuntimeError("this SAC has no replay buffer yet")
    if buffer.n_envs != 1 or getattr(buffer, "optimize_memory_usage", False):
        raise ValueError("resuming refills a one-env replay buffer without optimize_memory_usage")
    total, size = len(dataset), int(buffer.buffer_size)
    n = min(total, size)
    rows = np.arange(total - n, total)
    slots = rows % size  # where SB3's circular buffer put each row
    space = model.action_space
    assert isinstance(space, gym.spaces.Box)
    scaled = model.policy.scale_action(dataset.actions[rows].astype(space.dtype))
    buffer.observations[slots, 0] = dataset.obs[rows]
    buffer.next_observations[slots, 0] = dataset.next_obs[rows]
    buffer.actions[slots, 0] = scaled
    buffer.rewards[slots, 0] = dataset.rewards[rows]
    buffer.dones[slots, 0] = dataset.terminated[rows] | dataset.truncated[rows]
    buffer.timeouts[slots, 0] = dataset.truncated[rows]
    buffer.pos = total % size
    buffer.full = total >= size


def save_policy_zip(model: SAC, path: str | os.PathLike[str]) -> Path:
    """SB3's own `.zip` of the trained agent (for `SAC.load`), written atomically.

    SB3's format pickles some of its fields; physprior never loads it (resuming reads the
    safetensors state), it is written for users who want the policy in SB3.
    """
    blob = io.BytesIO()
    model.save(blob)
    return atomic_write(path, lambda handle: handle.write(blob.getvalue()))
