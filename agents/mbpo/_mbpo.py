"""`MBPO`: SB3's SAC on real and branched model transitions, and its config."""

from __future__ import annotations

import copy
import dataclasses
import io
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from numpy.typing import NDArray
from stable_baselines3 import SAC
from stable_baselines3.common.callbacks import BaseCallback
from stable_baselines3.common.evaluation import evaluate_policy

from physprior._io import atomic_write, atomic_write_text
from physprior._progress import progress_bar
from physprior._validate import check_finite_rates, check_positive_ints, check_seed
from physprior.data import from_replay_buffer, make_windows
from physprior.learned_env import ModelDynamics
from physprior.models import TransitionModel, check_config_fields, make, model_class
from physprior.training import load_model, save_model

from .._fit import derive_seed, fit_ensemble, fit_model
from ..collect._sac import folderless_logger
from ._buffers import MixedReplayBuffer

__all__ = ["MBPO", "MBPOConfig"]

_DIM_FIELDS = ("obs_dim", "action_dim", "q_dim", "state_layout", "dt", "env_id")
"""Model config fields MBPO takes from the env, never from `model_kwargs`."""
_SAC_RESERVED = (
    "policy",
    "env",
    "seed",
    "device",
    "learning_starts",
    "batch_size",
    "buffer_size",
    "train_freq",
    "gradient_steps",
    "replay_buffer_class",
    "replay_buffer_kwargs",
    "optimize_memory_usage",
    "n_envs",
)
"""SAC arguments that `MBPOConfig` sets itself (by its own fields or MBPO's design)."""
CONFIG_FILE = "mbpo.json"
SAC_FILE = "sac.zip"
MODEL_DIR = "model"


@dataclass(frozen=True)
class MBPOConfig:
    """How MBPO trains. Defaults follow MBPO's MuJoCo settings where they fit a small CPU
    budget (mbrl-lib's InvertedPendulum config: model refit every 250 steps, rollouts of
    length 1, 400 model rollouts per env step, 20 SAC updates per env step, batch 256)."""

    model: str = "mlp"
    """Transition model name (`physprior.models.make`): `mlp` (MBPO's own kind of model),
    `node`, `node-so`, `hnn`, `srnn`, `rnn`, `lstm`."""
    model_kwargs: dict[str, Any] = field(default_factory=dict)
    """Model config overrides, e.g. `{"hidden": 200, "layers": 4}` or `{"substeps": 4}`; the
    dimensions, layout, `dt` and env id come from the env and may not be set here."""
    model_train_every: int = 250
    """Real env steps between model refits (the first fit is at `learning_starts`)."""
    model_epochs: int = 5
    """Passes over all real-data windows per refit."""
    model_batch_size: int = 256
    """Windows per model optimiser step."""
    model_lr: float = 1e-3
    """AdamW learning rate of the model (one optimiser for the whole run)."""
    model_weight_decay: float = 1e-5
    """AdamW weight decay of the model."""
    model_window: int = 2
    """States per training window (2: one-step targets, the MBRL standard; more: the model
    rolls through `model_window - 1` steps in `recurrent` train mode)."""
    rollout_length: int = 1
    """Model steps per branched rollout (MBPO's k); the most, with `rollout_schedule`."""
    rollout_schedule: tuple[int, int, int] | None = None
    """MBPO's linear schedule of k, `(start, end, first_length)` in real env steps: k is
    `first_length` until `start`, grows linearly to `rollout_length` at `end`, and stays
    there (MBPO's `[a, b, x, y]` with epochs as real steps); None: always `rollout_length`."""
    ensemble: int | None = None
    """Members K of an ensemble of `model` (MBPO's 7); every branched step steps each row on a
    member drawn at random, drawing from its Gaussian if the members are probabilistic (as
    MBPO does). None: one model."""
    rollouts_per_step: int = 400
    """Branched rollouts started per real env step (MBPO's M)."""
    rollout_every: int = 250
    """Real env steps between batches of branched rollouts; each batch starts
    `rollouts_per_step * rollout_every` rollouts from states drawn from the real data."""
    model_retain_steps: int = 1000
    """The model buffer keeps the rollouts of this many real steps: its capacity is
    `rollouts_per_step * rollout_length * model_retain_steps` transitions, oldest dropped."""
    real_ratio: float = 0.05
    """Fraction of each SAC batch drawn from real transitions (the rest from model data; all
    real until the first model rollouts exist)."""
    gradient_steps: int = 20
    """SAC gradient steps per real env step (MBPO's G)."""
    batch_size: int = 256
    """SAC batch size."""
    learning_starts: int = 1000
    """Real env steps of uniform random actions before the first model fit and SAC update."""
    buffer_size: int = 1_000_000
    """Capacity of the real replay buffer."""
    bound: float | None = None
    """Divergence bound for model states (`ModelDynamics`); `None`: its default."""
    max_episode_steps: int | None = None
    """Cap on a real episode's length; None: the env's own."""
    sac_kwargs: dict[str, Any] = field(default_factory=dict)
    """Other arguments of SB3's `SAC` (e.g. `learning_rate`, `gamma`, `ent_coef`,
    `policy_kwargs`); those MBPO sets itself are refused."""
    seed: int = 0
    """Seeds SAC (torch, numpy, the env), the model's initialisation, the model fits' batch
    order and the branched start states: a run is repeatable on the CPU."""
    device: str = "cpu"
    """Torch device of SAC and the model."""

    def __post_init__(self) -> None:
        check_positive_ints(
            self,
            "model_train_every",
            "model_epochs",
            "model_batch_size",
            "rollout_length",
            "rollouts_per_step",
            "rollout_every",
            "model_retain_steps",
            "batch_size",
            "learning_starts",
            "buffer_size",
        )
        if isinstance(self.gradient_steps, bool) or not isinstance(self.gradient_steps, int):
            raise ValueError(
                f"MBPOConfig.gradient_steps must be an int, got {self.gradient_steps!r}"
            )
        if self.gradient_steps < 0:
            raise ValueError(f"MBPOConfig.gradient_steps must be >= 0, got {self.gradient_steps}")
        if isinstance(self.model_window, bool) or not isinstance(self.model_window, int):
            raise ValueError(f"MBPOConfig.model_window must be an int, got {self.model_window!r}")
        if self.model_window < 2:
            raise ValueError(f"MBPOConfig.model_window must be >= 2, got {self.model_window}")
        if not isinstance(self.real_ratio, (int, float)) or not 0 <= self.real_ratio <= 1:
            raise ValueError(f"MBPOConfig.real_ratio must be in [0, 1], got {self.real_ratio!r}")
        check_finite_rates(self, positive=("model_lr",), non_negative=("model_weight_decay",))
        check_positive_ints(self, "ensemble", "max_episode_steps", optional=True)
        if self.rollout_schedule is not None:
            schedule = self.rollout_schedule
            valid = (
                isinstance(schedule, (tuple, list))
                and len(schedule) == 3
                and all(isinstance(v, int) and not isinstance(v, bool) for v in schedule)
                and 0 <= schedule[0] < schedule[1]
                and 1 <= schedule[2] <= self.rollout_length
            )
            if not valid:
                raise ValueError(
                    "MBPOConfig.rollout_schedule must be (start, end, first_length) with "
                    f"0 <= start < end and 1 <= first_length <= rollout_length, got {schedule!r}"
                )
        if self.bound is not None and not self.bound > 0:
            raise ValueError(f"MBPOConfig.bound must be positive or None, got {self.bound!r}")
        check_seed(self)
        model_class(self.model)  # ValueError listing the valid names
        if not isinstance(self.model_kwargs, dict) or not isinstance(self.sac_kwargs, dict):
            raise TypeError("MBPOConfig.model_kwargs and sac_kwargs must be dicts")
        fixed = sorted(set(self.model_kwargs) & set(_DIM_FIELDS))
        if fixed:
            raise ValueError(
                f"MBPOConfig.model_kwargs may not set {', '.join(fixed)}: they come from the env"
            )
        check_config_fields(self.model, self.model_kwargs)  # TypeError listing valid fields
        reserved = sorted(set(self.sac_kwargs) & set(_SAC_RESERVED))
        if reserved:
            raise ValueError(
                f"MBPOConfig.sac_kwargs may not set {', '.join(reserved)}: MBPO sets them"
            )
        try:
            torch.device(self.device)
        except (RuntimeError, TypeError):
            raise ValueError(f"MBPOConfig.device {self.device!r} is not a torch device") from None

    @property
    def model_buffer_size(self) -> int:
        """Capacity of the model buffer, in transitions."""
        return self.rollouts_per_step * self.rollout_length * self.model_retain_steps

    def rollout_length_at(self, real_steps: int) -> int:
        """The branched rollouts' length k after `real_steps` real env steps."""
        if self.rollout_schedule is None:
            return self.rollout_length
        start, end, first = self.rollout_schedule
        progress = min(max((real_steps - start) / (end - start), 0.0), 1.0)
        return int(first + progress * (self.rollout_length - first))

    def to_dict(self) -> dict[str, Any]:
        """The fields as a JSON-ready dict."""
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> MBPOConfig:
        """The config from `to_dict`'s output; unknown fields are refused by name."""
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ValueError(f"unknown MBPOConfig field(s): {', '.join(unknown)}")
        if isinstance(raw.get("rollout_schedule"), list):  # JSON has no tuples
            raw = {**raw, "rollout_schedule": tuple(raw["rollout_schedule"])}
        return cls(**raw)


class MBPO:
    """SAC (SB3) trained on a mix of real transitions and branched model rollouts.

    `MBPO(env_id, config)` builds the env (`gym.make(env_id)`, a physprior env with the
    `reward_fn` / `termination_fn` contract and Box spaces), the transition model
    (`config.model`, untrained) and SAC. `learn(n)` runs `n` more real env steps.

    Attributes:
        model: the current `TransitionModel` (trained in place by every refit).
        sac: the SB3 `SAC` agent; `sac.replay_buffer` is the `MixedReplayBuffer`.
        dynamics: the `ModelDynamics` the branched rollouts step through.
        history: one record per model fit: `step` (real steps so far), `windows`, `loss`
            (mean training loss of the fit's last epoch, normalised units).
        curve: `(real steps at its end, return)` of every finished real episode; `open_return`
            the return so far of the one in progress.
    Counters: `real_steps`, `model_fits`, `model_transitions` (model rows added to the model
    buffer), `model_diverged` (rollout rows dropped as diverged), `gradient_steps` (SAC's).
    """

    def __init__(self, env_id: str, config: MBPOConfig | None = None) -> None:
        config = MBPOConfig() if config is None else config
        if not isinstance(config, MBPOConfig):
            raise TypeError(f"config must be an MBPOConfig, got {type(config).__name__}")
        if not isinstance(env_id, str):
            raise TypeError(f"env_id must be a registered id string, got {type(env_id).__name__}")
        try:
            gym.spec(env_id)
        except gym.error.Error:
            raise ValueError(f"unknown env id {env_id!r}; `physprior envs` lists them") from None
        self.env_id = env_id
        self.config = config
        self.env = gym.make(env_id, max_episode_steps=config.max_episode_steps)
        base: Any = self.env.unwrapped
        obs_space, act_space = self.env.observation_space, self.env.action_space
        if not isinstance(obs_space, gym.spaces.Box) or not isinstance(act_space, gym.spaces.Box):
            raise TypeError(f"{env_id} must have Box observation and action spaces")
        if not all(hasattr(base, a) for a in ("dt", "q_dim", "state_layout", "reward_fn")):
            raise TypeError(f"{env_id} lacks the physprior env contract (dt, q_dim, reward_fn)")

        # The model's initialisation draws from its own seed, not from SAC's random stream.
        dims = {
            "obs_dim": int(obs_space.shape[0]),
            "action_dim": int(act_space.shape[0]),
            "q_dim": int(base.q_dim),
            "state_layout": str(base.state_layout),
            "dt": float(base.dt),
            "env_id": env_id,
        }
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(derive_seed(config.seed, 0, "model-init"))
            if config.ensemble is None:
                self.model: TransitionModel = make(config.model, **dims, **config.model_kwargs)
            else:
                self.model = make(
                    "ensemble",
                    member=config.model,
                    size=config.ensemble,
                    member_config=dict(config.model_kwargs),
                    **dims,
                )
        self.model.to(config.device).eval()
        probabilistic = bool(config.model_kwargs.get("probabilistic", False))
        self.dynamics = ModelDynamics(
            self.model,
            env_id,
            bound=config.bound,
            device=config.device,
            member="mean" if config.ensemble is None else "random",
            sample=probabilistic,
        )
        self.dynamics.seed(derive_seed(config.seed, 0, "model-draws"))
        self._model_optimizer = torch.optim.AdamW(
            self.model.parameters(), lr=config.model_lr, weight_decay=config.model_weight_decay
        )
        self.sac = SAC(
            "MlpPolicy",
            self.env,
            learning_starts=config.learning_starts,
            batch_size=config.batch_size,
            buffer_size=config.buffer_size,
            train_freq=1,
            gradient_steps=config.gradient_steps,
            replay_buffer_class=MixedReplayBuffer,
            replay_buffer_kwargs={
                "real_ratio": config.real_ratio,
                "model_capacity": config.model_buffer_size,
                "seed": derive_seed(config.seed, 0, "model-buffer"),
            },
            seed=config.seed,
            device=config.device,
            verbose=0,
            # A copy: SB3 adds keys to the `policy_kwargs` it is given, which would change
            # the (frozen) config and so what `save` records.
            **copy.deepcopy(config.sac_kwargs),
        )
        self.sac.set_logger(folderless_logger(verbose=False))
        self._low = torch.as_tensor(act_space.low, dtype=self.model.dtype, device=config.device)
        self._high = torch.as_tensor(act_space.high, dtype=self.model.dtype, device=config.device)
        self._branch_rng = np.random.default_rng(derive_seed(config.seed, 0, "branch-starts"))
        self.history: list[dict[str, Any]] = []
        #: The learning curve: `(real steps at its end, return)` of every finished episode.
        self.curve: list[tuple[int, float]] = []
        #: The return so far of the episode in progress.
        self.open_return = 0.0
        self.model_fits = 0
        self.model_transitions = 0
        self.model_diverged = 0

    # ------------------------------------------------------------------------------ public
    @property
    def real_steps(self) -> int:
        """Real env steps taken so far."""
        return int(self.sac.num_timesteps)

    @property
    def gradient_steps(self) -> int:
        """SAC gradient steps taken so far."""
        return int(self.sac._n_updates)

    @property
    def buffer(self) -> MixedReplayBuffer:
        """SAC's replay buffer: the real transitions, holding the model buffer (`.model`)."""
        buffer = self.sac.replay_buffer
        assert isinstance(buffer, MixedReplayBuffer)
        return buffer

    def learn(self, total_steps: int, progress: bool = True) -> MBPO:
        """Run `total_steps` more real env steps of MBPO (model fits, rollouts, SAC updates)."""
        if isinstance(total_steps, bool) or not isinstance(total_steps, int) or total_steps < 1:
            raise ValueError(f"total_steps must be a positive integer, got {total_steps!r}")
        callback = _MBPOCallback(self, total_steps, progress)
        try:
            self.sac.learn(total_steps, callback=callback, reset_num_timesteps=False)
        finally:
            callback.close()
        return self

    def predict(
        self,
        observation: NDArray[Any] | dict[str, NDArray[Any]],
        state: tuple[NDArray[Any], ...] | None = None,
        episode_start: NDArray[Any] | None = None,
        deterministic: bool = True,
    ) -> tuple[NDArray[Any], tuple[NDArray[Any], ...] | None]:
        """SAC's action for `observation` `(D,)` or `(N, D)`, in env units: SB3's signature,
        so `stable_baselines3.common.evaluation.evaluate_policy` can score the agent."""
        return self.sac.predict(observation, state, episode_start, deterministic)

    def evaluate(self, episodes: int = 10, *, seed: int = 0) -> tuple[float, float]:
        """Mean and std of the undiscounted return of the deterministic policy over `episodes`
        real episodes (a fresh env seeded with `seed`, capped as the training env)."""
        env = gym.make(self.env_id, max_episode_steps=self.config.max_episode_steps)
        env.reset(seed=seed)
        try:
            mean, std = evaluate_policy(self, env, n_eval_episodes=episodes, warn=False)
        finally:
            env.close()
        return float(mean), float(std)  # type: ignore[arg-type]

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the agent into folder `path`: `model/` (the transition model via
        `physprior.training.save_model`), `sac.zip` (SB3's SAC, without replay buffer) and
        `mbpo.json` (env id, config, counters, fit history). Each file is written atomically."""
        folder = Path(path)
        folder.mkdir(parents=True, exist_ok=True)
        save_model(self.model, folder / MODEL_DIR)
        data = io.BytesIO()
        self.sac.save(data)
        atomic_write(folder / SAC_FILE, lambda handle: handle.write(data.getvalue()))
        record = {
            "env_id": self.env_id,
            "config": self.config.to_dict(),
            "real_steps": self.real_steps,
            "model_fits": self.model_fits,
            "model_transitions": self.model_transitions,
            "model_diverged": self.model_diverged,
            "gradient_steps": self.gradient_steps,
            "history": self.history,
        }
        try:
            text = json.dumps(record, indent=2)
        except TypeError:
            # e.g. sac_kwargs={"policy_kwargs": {"activation_fn": torch.nn.ReLU}}: recorded
            # as text for people, and `load` refuses the folder instead of guessing.
            record["loadable"] = False
            text = json.dumps(record, indent=2, default=repr)
        atomic_write_text(folder / CONFIG_FILE, text + "\n")
        return folder

    @classmethod
    def load(cls, path: str | os.PathLike[str]) -> MBPO:
        """An agent from `save`'s folder, ready to predict or evaluate: config, model weights
        and SAC parameters (policy, critics, their optimisers). Not restored: the replay and
        model buffers, the model's optimiser and the counters (a further `learn` starts them
        afresh). Nothing is unpickled. Refuses a folder whose config held values JSON cannot
        represent (e.g. a class in `sac_kwargs`)."""
        folder = Path(path)
        try:
            record = json.loads((folder / CONFIG_FILE).read_text())
        except (OSError, ValueError) as err:
            raise ValueError(f"{folder} is not an MBPO folder: {err}") from None
        if record.get("loadable") is False:
            raise ValueError(
                f"{folder / CONFIG_FILE} records model_kwargs or sac_kwargs that are not JSON "
                "values; rebuild the agent with MBPO(env_id, config) and load its parts"
            )
        agent = cls(record["env_id"], MBPOConfig.from_dict(record["config"]))
        agent.model.load_state_dict(load_model(folder / MODEL_DIR).state_dict())
        agent.model.eval()
        agent.sac.set_parameters(str(folder / SAC_FILE), exact_match=True)
        return agent

    # ------------------------------------------------------------------------------ steps
    def _fit(self) -> None:
        """Refit the model on every real transition so far."""
        cfg = self.config
        dataset = from_replay_buffer(self.buffer, self.env, seed=cfg.seed)
        states, actions = make_windows(dataset, cfg.model_window).to_torch(
            self.model.dtype, device=cfg.device
        )
        if cfg.ensemble is None:
            loss = fit_model(
                self.model,
                self._model_optimizer,
                states,
                actions,
                epochs=cfg.model_epochs,
                batch_size=cfg.model_batch_size,
                seed=derive_seed(cfg.seed, self.model_fits, "model-fit"),
            )
        else:  # every member on its own bootstrap resample, as MBPO's ensemble
            losses = fit_ensemble(
                self.model,
                states,
                actions,
                epochs=cfg.model_epochs,
                batch_size=cfg.model_batch_size,
                lr=cfg.model_lr,
                weight_decay=cfg.model_weight_decay,
                seed=cfg.seed,
                index=self.model_fits,
            )
            loss = float(np.mean(losses))
        self.model_fits += 1
        self.history.append({"step": self.real_steps, "windows": len(states), "loss": loss})

    @torch.no_grad()
    def _branch(self) -> None:
        """Branched rollouts from real states into the model buffer."""
        cfg, buffer, actor = self.config, self.buffer, self.sac.actor
        n = cfg.rollouts_per_step * cfg.rollout_every
        index = self._branch_rng.integers(0, buffer.real_size(), size=n)
        obs = torch.as_tensor(buffer.observations[index, 0], device=cfg.device)
        obs = obs.to(self.model.dtype)
        for _ in range(cfg.rollout_length_at(self.real_steps)):
            # The actor gives tanh-squashed actions in [-1, 1], the units SB3's buffers store;
            # the model and the env's reward take them in env units.
            scaled = actor(obs, deterministic=False).to(self.model.dtype)
            action = self._low + 0.5 * (scaled + 1.0) * (self._high - self._low)
            next_obs, reward, terminated, diverged = self.dynamics.step(obs, action)
            keep = ~diverged
            buffer.model.add(
                obs[keep].cpu().numpy(),
                scaled[keep].cpu().numpy(),
                reward[keep].cpu().numpy(),
                next_obs[keep].cpu().numpy(),
                terminated[keep].cpu().numpy().astype(np.float32),
            )
            self.model_transitions += int(keep.sum())
            self.model_diverged += int(diverged.sum())
            alive = keep & ~terminated
            obs = next_obs[alive]
            if obs.shape[0] == 0:
                break


class _MBPOCallback(BaseCallback):
    """Runs MBPO's model fits and branched rollouts inside SB3's `learn` loop."""

    def __init__(self, agent: MBPO, total_steps: int, progress: bool) -> None:
        super().__init__()
        self.agent = agent
        self.bar = progress_bar(total=total_steps, desc="mbpo", unit="step", enabled=progress)

    def _on_step(self) -> bool:
        # SB3's raw env reward and episode end of the step just taken (one env).
        agent = self.agent
        agent.open_return += float(self.locals["rewards"][0])
        if bool(self.locals["dones"][0]):
            agent.curve.append((agent.real_steps, agent.open_return))
            agent.open_return = 0.0
        self.bar.update(1)
        return True

    def _on_rollout_end(self) -> None:
        # Called once per real step (train_freq=1), after SB3 stored the transition and
        # before SAC's gradient steps on the mixed buffer.
        agent, cfg = self.agent, self.agent.config
        since = agent.real_steps - cfg.learning_starts
        if since < 0:
            return
        if since % cfg.model_train_every == 0:
            agent._fit()
        if agent.model_fits and since % cfg.rollout_every == 0:
            agent._branch()
        self.bar.set_postfix(
            fits=agent.model_fits, model_rows=len(agent.buffer.model), refresh=False
        )

    def close(self) -> None:
        self.bar.close()
