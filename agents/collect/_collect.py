"""The collection run: `collect`, its config and result, and the SAC agent it saves."""

from __future__ import annotations

import contextlib
import dataclasses
import os
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import gymnasium as gym
import numpy as np
from tqdm import tqdm

import physprior  # noqa: F401  (registers the environments)
from physprior._io import check_output_file, output_lock
from physprior._progress import progress_bar
from physprior.data import TransitionDataset
from physprior.data._envinfo import env_info

from ._record import Recorder, json_safe
from ._resume import set_episode_steps

AgentName = Literal["sac", "random"]

#: SAC settings a run sets itself: the policy class, its env and its seed.
_RESERVED_SAC_KEYS = frozenset({"policy", "env", "seed"})
#: SAC settings that default to values derived from `steps`, so a resume may change them.
_STEP_DERIVED_SAC_KEYS = frozenset({"buffer_size", "learning_starts"})


@dataclass(frozen=True)
class CollectConfig:
    """`physprior collect`: run an agent in an env and record every transition."""

    env_id: str
    """Registered environment id (`physprior envs` lists them)."""
    steps: int
    """Env steps to record in all (a resumed run counts the rows already in `out`)."""
    out: str
    """The dataset file (`.npz`); SAC's files go next to it (`<stem>.sac.zip`, ...)."""
    agent: AgentName = "sac"
    """`sac`: a Stable-Baselines3 SAC agent learning as it acts; `random`: uniform actions."""
    seed: int = 0
    """Seed of the env's resets, the random actions and SAC (non-negative)."""
    flush_every: int = 10_000
    """Rewrite the file (and SAC's state) every this many steps."""
    resume: bool = False
    """Continue the run in `out` (from scratch if there is no file yet); without it an
    existing `out` is refused."""
    progress: bool = True
    """Show a tqdm progress bar."""
    max_episode_steps: int | None = None
    """Time limit of an episode; None: the registered one."""
    env_kwargs: dict[str, Any] = field(default_factory=dict)
    """Keyword arguments of `gym.make` (the env's parameters)."""
    sac_kwargs: dict[str, Any] = field(default_factory=dict)
    """Overrides of SAC's settings (`stable_baselines3.SAC` keyword arguments), on top of
    `default_sac_kwargs(steps)`."""
    torch_threads: int | None = 1
    """torch intra-op threads while SAC trains (restored after). SAC's small networks gain
    nothing from more, and on a busy machine spinning threads slow each gradient step many
    times. None: leave torch's setting."""


@dataclass(frozen=True)
class CollectResult:
    """What a `collect` call produced."""

    dataset: TransitionDataset
    """Every row of the file, this call's and earlier parts'."""
    path: Path
    """The dataset file."""
    new_rows: int
    """Rows this call recorded."""
    seconds: float
    """Wall time of this call."""
    policy_path: Path | None = None
    """SB3's `.zip` of the trained SAC agent (None for the random agent)."""
    agent_state_path: Path | None = None
    """SAC's pickle-free state for resuming (None for the random agent)."""


def sac_paths(out: str | os.PathLike[str]) -> tuple[Path, Path]:
    """The SAC files of a dataset path: (`<stem>.sac.zip`, `<stem>.sac.safetensors`)."""
    path = Path(out)
    stem = path.name[: -len(path.suffix)] if path.suffix else path.name
    return path.with_name(f"{stem}.sac.zip"), path.with_name(f"{stem}.sac.safetensors")


def load_sac(out: str | os.PathLike[str]) -> Any:
    """The SAC agent a `collect` run into `out` trained, rebuilt without unpickling anything.

    Reads the dataset's meta (env id, SAC settings) and the agent's safetensors state next to
    it (`sac_paths(out)[1]`); returns a `stable_baselines3.SAC` ready to `predict`. Its replay
    buffer is empty (the dataset holds the experience). Raises ValueError with a one-line
    message when `out` was not collected by SAC or its state file is missing.
    """
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ._sac import make_sac, restore_agent_state

    dataset = TransitionDataset.load(out)
    meta = dataset.meta
    kwargs = meta.extra.get("sac_kwargs")
    _, state_path = sac_paths(out)
    if meta.agent != "sac" or kwargs is None:
        raise ValueError(f"{out} was collected by agent {meta.agent!r}, not SAC")
    if not state_path.is_file():
        raise ValueError(f"{out}: the SAC state file {state_path} is missing")
    env_kwargs = dict(meta.extra.get("env_kwargs") or {})
    if meta.extra.get("max_episode_steps") is not None:
        env_kwargs["max_episode_steps"] = meta.extra["max_episode_steps"]
    vec = DummyVecEnv([lambda: Monitor(gym.make(meta.env_id, **env_kwargs))])
    # A one-row buffer: the agent is for acting, and the run's buffer could be large.
    model = make_sac(vec, meta.seed or 0, {**kwargs, "buffer_size": 1})
    restore_agent_state(model, state_path)
    return model


def collect(config: CollectConfig) -> CollectResult:
    """Run `config.agent` in `config.env_id` and record `config.steps` transitions to `out`.

    Raises ValueError or TypeError with a one-line message for a bad config, an unknown env
    id, an env without the physprior contract or an unbounded action space, an existing `out`
    without `resume`, or a resume that does not match the file (env, agent, seed, settings).
    """
    started = time.perf_counter()
    _check_config(config)
    path = check_output_file(config.out, "out", example="data.npz")
    # One collection per file: SAC's state and policy files beside it belong to the same run.
    with output_lock(path, "out", folder=False):
        return _collect(config, path, started)


def _collect(config: CollectConfig, path: Path, started: float) -> CollectResult:
    """`collect` once the config is checked and the output locked."""
    start = _previous_part(config, path)
    if start is not None and config.agent == "sac":
        start = _sac_start(start, sac_paths(path)[1])
    rows_before = 0 if start is None else len(start)
    sac_kwargs = _sac_kwargs(config, start) if config.agent == "sac" else None
    if start is not None and rows_before == config.steps:
        # A resume of a finished run: nothing to add, nothing rewritten.
        zip_path, state_path = sac_paths(path)
        sac = config.agent == "sac"
        return CollectResult(
            dataset=start,
            path=path,
            new_rows=0,
            seconds=time.perf_counter() - started,
            policy_path=zip_path if sac and zip_path.is_file() else None,
            agent_state_path=state_path if sac and state_path.is_file() else None,
        )

    env = gym.make(config.env_id, **_make_kwargs(config))
    try:
        info = env_info(env)
        space = env.action_space
        obs_space = env.observation_space
        if not isinstance(space, gym.spaces.Box) or not np.all(
            np.isfinite(space.low) & np.isfinite(space.high)
        ):
            raise TypeError(f"{config.env_id} needs a bounded Box action space, got {space}")
        if not isinstance(obs_space, gym.spaces.Box) or len(obs_space.shape) != 1:
            raise TypeError(f"{config.env_id} needs a flat Box observation space, got {obs_space}")
        # A SAC resume is exact when it continues the same run (not an extension to more
        # steps, whose learning_starts and buffer size differ) from a state that has a run state.
        exact_sac = (
            sac_kwargs is not None
            and start is not None
            and start.meta.extra.get("target_steps") == config.steps
            and _exact_sac_resume(path)
        )
        previous = [] if start is None else list(start.meta.extra.get("resumed_at", []))
        extra: dict[str, Any] = {
            "target_steps": int(config.steps),
            "flush_every": int(config.flush_every),
            "max_episode_steps": config.max_episode_steps,
            "env_kwargs": json_safe(config.env_kwargs),
            "resumed_at": previous + ([rows_before] if rows_before else []),
        }
        if start is not None and "solver_warmstart" in start.meta.extra:
            extra["solver_warmstart"] = start.meta.extra["solver_warmstart"]
        if sac_kwargs is not None:
            import stable_baselines3

            zip_path, state_path = sac_paths(path)
            extra.update(
                sac_kwargs=json_safe(sac_kwargs),
                sb3_version=stable_baselines3.__version__,
                policy=zip_path.name,
                agent_state=state_path.name,
            )
        recorder = Recorder(
            path,
            info,
            int(obs_space.shape[0]),
            int(np.prod(space.shape)),
            config.steps,
            agent=config.agent,
            seed=config.seed,
            extra=extra,
            start=start,
            # Both agents re-enter an episode left open exactly (SAC from a version-2 state).
            continue_episode=sac_kwargs is None or exact_sac,
        )
        bar = progress_bar(
            total=config.steps,
            initial=recorder.rows,
            desc=f"collect {config.env_id}",
            unit="step",
            enabled=config.progress,
        )
        policy_path = state_path_out = None
        with bar:
            if sac_kwargs is None:
                _run_random(env, recorder, config, bar)
            else:
                policy_path, state_path_out = _run_sac(
                    env, recorder, config, sac_kwargs, start, bar, exact=exact_sac
                )
    finally:
        env.close()
    recorder.flush()
    return CollectResult(
        dataset=recorder.dataset(),
        path=path,
        new_rows=recorder.rows - rows_before,
        seconds=time.perf_counter() - started,
        policy_path=policy_path,
        agent_state_path=state_path_out,
    )


# ---------------------------------------------------------------------- checks


def _check_config(config: CollectConfig) -> None:
    if config.agent not in ("sac", "random"):
        raise ValueError(f"agent must be 'sac' or 'random', got {config.agent!r}")
    for name, least in (("steps", 1), ("seed", 0), ("flush_every", 1)):
        value = getattr(config, name)
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise TypeError(f"{name} must be an int, got {type(value).__name__}")
        if value < least:
            raise ValueError(f"{name} must be at least {least}, got {value}")
    if config.max_episode_steps is not None and config.max_episode_steps < 1:
        raise ValueError(f"max_episode_steps must be at least 1, got {config.max_episode_steps}")
    if config.env_id not in gym.registry:
        raise ValueError(
            f"unknown environment id {config.env_id!r}; run `physprior envs` for the list"
        )
    if config.agent == "random" and config.sac_kwargs:
        raise ValueError("sac_kwargs are for agent='sac', not the random agent")
    reserved = sorted(_RESERVED_SAC_KEYS & set(config.sac_kwargs))
    if reserved:
        raise ValueError(f"sac_kwargs may not set {', '.join(reserved)} (collect sets them)")
    if config.torch_threads is not None and config.torch_threads < 1:
        raise ValueError(f"torch_threads must be at least 1 or None, got {config.torch_threads}")


def _make_kwargs(config: CollectConfig) -> dict[str, Any]:
    kwargs = dict(config.env_kwargs)
    if config.max_episode_steps is not None:
        kwargs["max_episode_steps"] = config.max_episode_steps
    return kwargs


def _previous_part(config: CollectConfig, path: Path) -> TransitionDataset | None:
    """The rows already in `path` when resuming (checked against the config), else None."""
    if not path.exists():
        return None
    if not config.resume:
        raise ValueError(f"{path} exists; pass resume=True (--resume) to continue it")
    start = TransitionDataset.load(path)
    meta, extra = start.meta, start.meta.extra
    saved = {
        "env_id": meta.env_id,
        "agent": meta.agent,
        "seed": meta.seed,
        "max_episode_steps": extra.get("max_episode_steps"),
        "env_kwargs": extra.get("env_kwargs", {}),
    }
    now = {
        "env_id": config.env_id,
        "agent": config.agent,
        "seed": config.seed,
        "max_episode_steps": config.max_episode_steps,
        "env_kwargs": json_safe(config.env_kwargs),
    }
    differ = [k for k in saved if saved[k] != now[k]]
    if differ:
        shown = ", ".join(f"{k} ({saved[k]!r} in the file, {now[k]!r} now)" for k in differ)
        raise ValueError(f"cannot resume {path}: {shown}")
    if len(start) > config.steps:
        raise ValueError(
            f"cannot resume {path}: it already holds {len(start)} rows, more than steps="
            f"{config.steps}"
        )
    return start


def _sac_kwargs(config: CollectConfig, start: TransitionDataset | None) -> dict[str, Any]:
    from ._sac import default_sac_kwargs

    kwargs = {**default_sac_kwargs(config.steps), **config.sac_kwargs}
    if start is not None:
        saved = start.meta.extra.get("sac_kwargs", {})
        now = json_safe(kwargs)
        keys = (set(saved) | set(now)) - _STEP_DERIVED_SAC_KEYS
        differ = sorted(k for k in keys if saved.get(k) != now.get(k))
        if differ:
            raise ValueError(
                f"cannot resume {config.out}: the SAC settings differ in {', '.join(differ)}"
            )
    return kwargs


def _sac_start(start: TransitionDataset, state_path: Path) -> TransitionDataset:
    """The rows a SAC resume continues from: those the agent state was saved at.

    Rows recorded after the agent's last save (an interruption between flushes, or a kill
    between the two writes of a flush) are dropped here and recorded again, identically.
    """
    from ._sac import agent_state_header

    if not state_path.is_file():
        return start  # `_run_sac` refuses it with its own message
    try:
        saved = int(agent_state_header(state_path)["rows"])
    except (ValueError, KeyError, TypeError):  # `_run_sac` says why, with the file's name
        return start
    if saved >= len(start):
        return start
    warnings.warn(
        f"{state_path} was saved at {saved} rows, {len(start)} are recorded: the resume "
        f"continues from row {saved} and records the {len(start) - saved} after it again",
        stacklevel=3,
    )
    kept = start.take(np.arange(saved))
    last = saved - 1
    open_episode = not (bool(kept.terminated[last]) or bool(kept.truncated[last]))
    extra = {**kept.meta.extra, "open_episode": open_episode}
    if open_episode:  # every saved episode ends with a flag; this one is the cut's
        truncated = kept.truncated.copy()
        truncated[last] = True
        kept = dataclasses.replace(kept, truncated=truncated)
    return dataclasses.replace(kept, meta=dataclasses.replace(kept.meta, extra=extra))


def _exact_sac_resume(path: Path) -> bool:
    """Whether the SAC state beside `path` carries a run state (an exact resume)."""
    from ._sac import agent_state_header

    state_path = sac_paths(path)[1]
    try:
        return state_path.is_file() and "run" in agent_state_header(state_path)
    except ValueError:  # damaged: `_run_sac` refuses it with the file's name and the reason
        return False


def _part_seed(seed: int, rows: int) -> int:
    """The seed of a run part starting at row `rows` (the run's seed for the first part)."""
    if rows == 0:
        return int(seed)
    return int(np.random.SeedSequence([seed, rows]).generate_state(1)[0])


# ---------------------------------------------------------------------- agents


@contextlib.contextmanager
def _flush_on_error(flush: Callable[[], object]) -> Iterator[None]:
    """On any error or interrupt, write what was recorded, then let the error through."""
    try:
        yield
    except BaseException:
        # The original error matters more than a failed last write (e.g. non-finite rows).
        with contextlib.suppress(Exception):
            flush()
        raise


def _episode_seeds(seed: int, episode: int) -> tuple[int, int]:
    """The reset seed and the action-stream seed of episode `episode` of a run."""
    reset, actions = np.random.SeedSequence([seed, episode]).generate_state(2)
    return int(reset), int(actions)


def _start_episode(env: gym.Env[Any, Any], seed: int, episode: int) -> Any:
    """Reset `env` for episode `episode` and seed its action stream; the first obs."""
    reset_seed, action_seed = _episode_seeds(seed, episode)
    env.action_space.seed(action_seed)
    return env.reset(seed=reset_seed)[0]


def _reenter_episode(env: gym.Env[Any, Any], seed: int, recorder: Recorder) -> Any:
    """Put `env` where the open episode of a resumed run stood: its state, its step count
    (the time limit's counter) and its action stream, fast-forwarded past the recorded steps."""
    steps = recorder.open_steps
    _start_episode(env, seed, recorder.episode)
    for _ in range(steps):
        env.action_space.sample()
    obs, _ = env.reset(options={"state": recorder.next_obs[recorder.rows - 1]})
    warmstart = recorder.extra.get("solver_warmstart")
    if warmstart is not None:
        # MuJoCo starts its constraint solver from the previous step's accelerations, which
        # a reset to [qpos, qvel] does not carry: restored, the next steps match to the bit.
        mujoco_env: Any = env.unwrapped
        mujoco_env.data.qacc_warmstart[:] = warmstart
    set_episode_steps(env, steps)
    return obs


def _run_random(
    env: gym.Env[Any, Any], recorder: Recorder, config: CollectConfig, bar: tqdm[Any]
) -> None:
    """Uniform actions from the seeded action space; a new episode after every end.

    Every episode's reset and actions are seeded from `(seed, episode id)` alone, so a resumed
    run re-enters the episode a kill or flush left open and records exactly the rows an
    uninterrupted run records, bit for bit (on MuJoCo with the solver's warm start, which
    every flush keeps in `meta.extra["solver_warmstart"]`).
    """
    if recorder.open_steps:
        obs = _reenter_episode(env, config.seed, recorder)
    else:
        obs = _start_episode(env, config.seed, recorder.episode)
    recorder.extra.pop("solver_warmstart", None)
    data = getattr(env.unwrapped, "data", None)
    solver = getattr(data, "qacc_warmstart", None)  # MuJoCo envs only
    every = config.flush_every
    with _flush_on_error(recorder.flush):
        while not recorder.full:
            action = env.action_space.sample()
            next_obs, reward, terminated, truncated, _ = env.step(action)
            recorder.add(obs, action, next_obs, float(reward), terminated, truncated)
            if solver is not None:  # kept with the rows, so any flush can resume exactly
                recorder.extra["solver_warmstart"] = solver.tolist()
            bar.update(1)
            if terminated or truncated:
                obs = _start_episode(env, config.seed, recorder.episode)
            else:
                obs = next_obs
            if recorder.rows % every == 0 and not recorder.full:
                recorder.flush()


def _run_sac(
    env: gym.Env[Any, Any],
    recorder: Recorder,
    config: CollectConfig,
    sac_kwargs: dict[str, Any],
    start: TransitionDataset | None,
    bar: tqdm[Any],
    *,
    exact: bool,
) -> tuple[Path, Path]:
    """SAC learning for the remaining steps, every step recorded by a callback; `exact`: the
    resume restores the run state, so it continues the run exactly."""
    import torch
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from ._resume import restore as restore_run_state
    from ._sac import (
        ExactReward,
        RecordCallback,
        make_sac,
        refill_buffer,
        restore_agent_state,
        save_agent_state,
        save_policy_zip,
    )

    zip_path, state_path = sac_paths(config.out)
    threads = torch.get_num_threads()
    if config.torch_threads is not None:
        torch.set_num_threads(config.torch_threads)
    try:
        vec = DummyVecEnv([lambda: Monitor(ExactReward(env))])
        model = make_sac(vec, _part_seed(config.seed, recorder.rows), sac_kwargs)
        if start is not None:
            if not state_path.is_file():
                raise ValueError(f"cannot resume {config.out}: no SAC state file {state_path}")
            run_state = restore_agent_state(model, state_path).run_state
            refill_buffer(model, recorder.dataset())
            if exact and run_state is not None:
                restore_run_state(model, *run_state, open_steps=recorder.open_steps)
            elif run_state is None:
                warnings.warn(
                    f"{state_path} predates exact resumes (no random generator states): "
                    "the rows from here on differ from an uninterrupted run",
                    stacklevel=2,
                )
            # else: an extension to more steps, a new part of the run (a new episode) by design

        def flush() -> None:
            # The rows first: a kill between the writes leaves rows ahead of the agent, which
            # the resume discards and records again (`_sac_start`).
            recorder.flush()
            save_agent_state(model, state_path, recorder.rows)

        callback = RecordCallback(recorder, flush, config.flush_every, bar)
        # An interruption between flushes keeps its rows; the agent state stays at the last
        # flush (mid-step it would not be a state to resume from).
        with _flush_on_error(recorder.flush):
            model.learn(
                total_timesteps=config.steps - recorder.rows,
                callback=callback,
                reset_num_timesteps=start is None,
            )
        save_agent_state(model, state_path, recorder.rows)
        save_policy_zip(model, zip_path)
    finally:
        torch.set_num_threads(threads)
    return zip_path, state_path
