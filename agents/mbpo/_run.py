"""`run_mbpo`: MBPO for a number of real steps in a run folder that survives a kill.

The loop is `MBPO.learn` in chunks of `checkpoint_every` real steps; after each chunk the
whole agent goes to `OUT/checkpoint/` in one atomic folder swap (`_run_folder`):

- `sac.safetensors`: SAC's weights, optimisers, counters and run state (random generators,
  the env's state and time-limit count, SB3's last observation), as SAC collection saves it
  (`collect._sac.save_agent_state`; `collect._resume`);
- `buffers.npz`: the real transitions in SB3's layout and the model buffer's rows;
- `model/`: the transition model (`save_model`); `model_optimizer/`: its AdamW state (one
  model; an ensemble's members get a fresh AdamW at every refit, so it has none);
- `state.json`: env, config, steps asked for, MBPO's counters and fit history, the learning
  curve, and the generators of the branch starts, the model buffer and the model draws.

Chunked learning equals one `learn` call (SB3 keeps its state between calls), and a resumed
run restores every piece above, so a run killed and resumed gives the same episodes, returns
and weights as an uninterrupted one. Nothing is unpickled: tensors in safetensors, arrays in
`.npz` read with `allow_pickle=False`, the rest JSON.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import torch

from physprior._io import atomic_write_text, check_output_folder, output_lock
from physprior._progress import progress_bar
from physprior.training import load_model, save_model
from physprior.training._folders import current, write_folder
from physprior.training._state_io import (
    flatten_optimizer,
    read_state,
    unflatten_optimizer,
    write_state,
)

from .._run_folder import (
    CHECKPOINT_DIR,
    CURVE_FILE,
    RESULTS_FILE,
    STATE_FILE,
    load_arrays,
    run_state,
)
from ..collect._resume import open_steps, restore
from ..collect._sac import restore_agent_state, save_agent_state
from ._mbpo import MBPO, MBPOConfig

__all__ = ["run_mbpo"]

SAC_FILE = "sac.safetensors"
BUFFERS_FILE = "buffers.npz"
MODEL_DIR = "model"
MODEL_OPTIMIZER_DIR = "model_optimizer"
#: The real buffer's arrays (SB3's `ReplayBuffer` fields) saved up to their filled length.
_REAL_ARRAYS = ("observations", "next_observations", "actions", "rewards", "dones", "timeouts")
_MODEL_ARRAYS = ("obs", "next_obs", "actions", "rewards", "dones")


def run_mbpo(
    env_id: str,
    config: MBPOConfig,
    steps: int,
    out: str | Path,
    *,
    resume: bool = False,
    progress: bool = True,
    checkpoint_every: int = 1000,
) -> dict[str, Any]:
    """Run MBPO on the real env `env_id` for `steps` real steps, writing the run folder `out`
    (module docstring); returns the results (`curve`: the real steps at which each finished
    episode ended and its return; `cut_episode`; the fit history; the config).
    `resume=True` continues a killed run; without it a folder that holds a run is refused."""
    for name, value in (("steps", steps), ("checkpoint_every", checkpoint_every)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if not isinstance(config, MBPOConfig):
        raise TypeError(f"config must be an MBPOConfig, got {type(config).__name__}")
    try:
        json.dumps(config.to_dict())
    except TypeError:
        raise ValueError(
            "a resumable MBPO run needs a config of JSON values (model_kwargs, sac_kwargs); "
            "use MBPO(env_id, config).learn(steps) for other values"
        ) from None
    folder = check_output_folder(out, "out")
    with output_lock(folder, "out", folder=True):
        state = run_state(
            folder, "MBPO", env_id, config.to_dict(), steps, resume=resume, article="an"
        )
        agent = MBPO(env_id, config)
        if state is not None:
            checkpoint = current(folder / CHECKPOINT_DIR)
            assert checkpoint is not None
            _restore(agent, checkpoint, state)
        bar = progress_bar(total=steps, initial=agent.real_steps, enabled=progress,
                           unit="step", desc=f"MBPO {config.model}")  # fmt: skip
        with bar:
            while agent.real_steps < steps:
                before = agent.real_steps
                chunk = min(checkpoint_every - before % checkpoint_every, steps - before)
                agent.learn(chunk, progress=False)
                bar.update(agent.real_steps - before)
                if agent.curve:
                    bar.set_postfix(episode=len(agent.curve), ret=f"{agent.curve[-1][1]:.1f}")
                _checkpoint(agent, folder, env_id, steps)
        results = _results(agent, env_id)
        atomic_write_text(folder / RESULTS_FILE, json.dumps(results, indent=2) + "\n")
        from physprior.evaluation.plots import plot_learning_curves

        label = f"MBPO, {config.model}"
        if config.ensemble:
            label += f" ensemble of {config.ensemble}"
        plot_learning_curves(
            {label: [([s for s, _ in agent.curve], [r for _, r in agent.curve])]},
            folder / CURVE_FILE,
            title=f"MBPO on {env_id}",
        )
    agent.env.close()
    return results


def _results(agent: MBPO, env_id: str) -> dict[str, Any]:
    open_length = open_steps(agent.sac)
    return {
        "algo": "mbpo",
        "env_id": env_id,
        "config": agent.config.to_dict(),
        "steps": agent.real_steps,
        "episodes": len(agent.curve),
        "curve": {"steps": [s for s, _ in agent.curve], "returns": [r for _, r in agent.curve]},
        "cut_episode": {"steps": open_length, "return": agent.open_return} if open_length else None,
        "model_fits": agent.model_fits,
        "model_transitions": agent.model_transitions,
        "model_diverged": agent.model_diverged,
        "gradient_steps": agent.gradient_steps,
        "history": agent.history,
        "final_return": agent.curve[-1][1] if agent.curve else math.nan,
    }


def _checkpoint(agent: MBPO, folder: Path, env_id: str, steps: int) -> None:
    """Everything a resume needs, as one folder swap (module docstring)."""
    buffer = agent.buffer
    filled = buffer.real_size()
    model_rows = len(buffer.model)
    state = {
        "env_id": env_id,
        "config": agent.config.to_dict(),
        "total_steps": steps,
        "steps": agent.real_steps,
        "curve": agent.curve,
        "open_return": agent.open_return,
        "open_steps": open_steps(agent.sac),
        "model_fits": agent.model_fits,
        "model_transitions": agent.model_transitions,
        "model_diverged": agent.model_diverged,
        "history": agent.history,
        "real_buffer": {"pos": int(buffer.pos), "full": bool(buffer.full)},
        "model_buffer": {
            "pos": buffer.model.pos,
            "size": buffer.model.size,
            "added": buffer.model.added,
        },
        "model_buffer_rng": buffer.rng.bit_generator.state,
        "branch_rng": agent._branch_rng.bit_generator.state,
        "model_draws_rng": agent.dynamics._generator.get_state().tolist(),
    }
    arrays = {f"real_{k}": getattr(buffer, k)[:filled] for k in _REAL_ARRAYS}
    arrays |= {f"model_{k}": getattr(buffer.model, k)[:model_rows] for k in _MODEL_ARRAYS}

    def fill(tmp: Path) -> None:
        np.savez(tmp / BUFFERS_FILE, **arrays)
        save_model(agent.model, tmp / MODEL_DIR)
        if agent.config.ensemble is None:
            (tmp / MODEL_OPTIMIZER_DIR).mkdir()
            tensors, info = flatten_optimizer(agent._model_optimizer.state_dict())
            write_state(tmp / MODEL_OPTIMIZER_DIR, tensors, info)
        save_agent_state(agent.sac, tmp / SAC_FILE, rows=filled)
        (tmp / STATE_FILE).write_text(json.dumps(state, indent=2) + "\n", encoding="utf-8")

    write_folder(folder / CHECKPOINT_DIR, fill)


def _restore(agent: MBPO, checkpoint: Path, state: dict[str, Any]) -> None:
    """Put a checkpoint back into a fresh `agent` built from the same env and config."""
    buffer = agent.buffer
    names = tuple(f"real_{k}" for k in _REAL_ARRAYS) + tuple(f"model_{k}" for k in _MODEL_ARRAYS)
    arrays = load_arrays(checkpoint / BUFFERS_FILE, names)
    for name in _REAL_ARRAYS:
        values = arrays[f"real_{name}"]
        getattr(buffer, name)[: len(values)] = values
    for name in _MODEL_ARRAYS:
        values = arrays[f"model_{name}"]
        getattr(buffer.model, name)[: len(values)] = values
    buffer.pos, buffer.full = int(state["real_buffer"]["pos"]), bool(state["real_buffer"]["full"])
    saved_model_buffer = state["model_buffer"]
    buffer.model.pos = int(saved_model_buffer["pos"])
    buffer.model.size = int(saved_model_buffer["size"])
    buffer.model.added = int(saved_model_buffer["added"])
    buffer.rng.bit_generator.state = state["model_buffer_rng"]
    # The model before SAC's run state: building it from the checkpoint draws initial weights
    # from torch's global generator, which `restore` sets last.
    agent.model.load_state_dict(load_model(checkpoint / MODEL_DIR).state_dict())
    agent.model.eval()
    if agent.config.ensemble is None:
        tensors, info = read_state(checkpoint / MODEL_OPTIMIZER_DIR)
        agent._model_optimizer.load_state_dict(unflatten_optimizer(tensors, info))
    agent.history = list(state["history"])
    agent.curve = [(int(s), float(r)) for s, r in state["curve"]]
    agent.open_return = float(state["open_return"])
    agent.model_fits = int(state["model_fits"])
    agent.model_transitions = int(state["model_transitions"])
    agent.model_diverged = int(state["model_diverged"])
    agent._branch_rng.bit_generator.state = state["branch_rng"]
    agent.dynamics._generator.set_state(torch.tensor(state["model_draws_rng"], dtype=torch.uint8))
    restored = restore_agent_state(agent.sac, checkpoint / SAC_FILE)
    if restored.run_state is None:
        raise ValueError(f"{checkpoint / SAC_FILE} holds no run state to resume from")
    restore(agent.sac, *restored.run_state, open_steps=int(state["open_steps"]))
