"""The common shell of the physics environments.

Each environment is built from pure parts (STYLE 5, after dm_control's Physics/Task split):
an initial-state distribution, a ground-truth transition over one observation interval `dt`,
and batched `reward_fn`, `termination_fn` and `energy` that work on numpy or torch arrays. A
learned environment later replaces only the transition and reuses the rest.
"""

from __future__ import annotations

import abc
from typing import Any, ClassVar

import gymnasium as gym
import numpy as np
from gymnasium import spaces
from numpy.typing import NDArray

from ._binary import FRAME_SIZE
from ._render import BACKGROUND
from ._validation import check_action, check_render_mode, check_state
from ._xp import as_batch, namespace, unbatch

FloatArray = NDArray[np.float64]


class PhysicsEnv(gym.Env[FloatArray, FloatArray], abc.ABC):
    """Base class of the Hamiltonian physics environments (observation `[q, p]`, body-major).

    Actions live in `[-1, 1]^A` (SB3's recommended normalised Box) and are scaled to
    generalised forces by `force_scale`; each subclass documents which coordinates they act on.
    Out-of-range actions are clipped, and `reward_fn` clips the same way, so a dataset row
    reproduces the env's reward whatever action was recorded. A zero action gives the
    autonomous system of the papers.

    Subclasses implement `sample_initial_state`, `_advance`, `_energy`, `_reward` and
    `_draw`; `_terminated` defaults to never. The environment never truncates: registration
    adds a `TimeLimit`.

    `reset(options={"state": z})` starts from a given state (used to replay datasets).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 10}  # noqa: RUF012 (gymnasium's API)

    #: Layout of observations: positions then canonical momenta.
    state_layout: ClassVar[str] = "qp"

    def __init__(
        self,
        *,
        q_dim: int,
        action_dim: int,
        dt: float,
        force_scale: float,
        render_mode: str | None = None,
        render_size: int = 128,
    ) -> None:
        check_render_mode(render_mode, self.metadata)
        if dt <= 0:
            raise ValueError(f"dt must be positive, got {dt}")
        self.q_dim = int(q_dim)
        self.obs_dim = 2 * self.q_dim
        self.action_dim = int(action_dim)
        self.dt = float(dt)
        self.force_scale = float(force_scale)
        self.render_mode = render_mode
        self.render_size = int(render_size)
        # Gymnasium types the spaces loosely; these Boxes are what the API promises.
        obs_space = spaces.Box(-np.inf, np.inf, (self.obs_dim,), np.float64)
        self.observation_space = obs_space
        self.action_space = spaces.Box(-1.0, 1.0, (self.action_dim,), np.float32)  # type: ignore[assignment]
        self.metadata = {**self.metadata, "render_fps": max(1, round(1.0 / self.dt))}
        self.state: FloatArray | None = None

    # ------------------------------------------------------------------ pure parts
    @abc.abstractmethod
    def sample_initial_state(self, rng: np.random.Generator) -> FloatArray:
        """Draw a state `(2 * q_dim,)` from the papers' initial-state distribution."""

    @abc.abstractmethod
    def _advance(self, state: FloatArray, action: FloatArray) -> FloatArray:
        """Ground truth: the state `dt` later under the (clipped) action held constant."""

    @abc.abstractmethod
    def _energy(self, obs: Any) -> Any:
        """True Hamiltonian of a batch `(N, 2 * q_dim)` -> `(N,)`; numpy or torch."""

    @abc.abstractmethod
    def _reward(self, obs: Any, action: Any, next_obs: Any) -> Any:
        """Reward of a batch of transitions -> `(N,)`; the action is already clipped."""

    def _terminated(self, next_obs: Any) -> Any:
        """Termination of a batch -> `(N,)` booleans. Default: never terminates."""
        xp = namespace(next_obs)
        return (
            xp.zeros(next_obs.shape[:-1], dtype=bool)
            if xp is np
            else xp.zeros(next_obs.shape[:-1], dtype=xp.bool, device=next_obs.device)
        )

    @abc.abstractmethod
    def _draw(self, state: FloatArray) -> NDArray[np.uint8]:
        """An RGB frame `(render_size, render_size, 3)` of `state`."""

    def _binary_frames(self, obs: FloatArray) -> NDArray[np.uint8]:
        """28x28 binary frames `(N, 28, 28)` of states `(N, D)`: by default the env's colour
        frame drawn at 28 pixels, a pixel set wherever anything is drawn. Pendulum and
        MassSpring override this with the VIN authors' own drawings."""
        saved = self.render_size
        try:
            self.render_size = FRAME_SIZE
            frames = [np.any(self._draw(state) != BACKGROUND, axis=-1) for state in obs]
        finally:
            self.render_size = saved
        return np.stack(frames).astype(np.uint8)

    def binary_frames(self, obs: Any) -> NDArray[np.uint8]:
        """28x28 binary frames `(..., 28, 28)` (0/1, uint8) of states `obs` `(..., D)`: for
        Pendulum and MassSpring as the VIN authors drew their pixel datasets (see
        `physprior.envs._binary`); for the other systems their colour frame at 28 pixels,
        every drawn pixel set.

        Batched and exact (no anti-aliasing), so pixel datasets are drawn from stored states
        when needed rather than stored. Also `render()` with `render_mode="binary"`.
        """
        flat = self._frame_states(obs)
        frames = self._binary_frames(flat.reshape(-1, self.obs_dim))
        return frames.reshape(*flat.shape[:-1], *frames.shape[1:])

    def _hgn_frames(self, obs: FloatArray) -> NDArray[np.float32]:
        """HGN-style frames `(N, 32, 32, 3)` of states `(N, D)`; the HGN systems override it."""
        raise NotImplementedError(
            f"{type(self).__name__} has no HGN-style frames; they are drawn for MassSpring, "
            "Pendulum, TwoBody and ThreeBody (the HGN paper's systems)"
        )

    def hgn_frames(self, obs: Any) -> NDArray[np.float32]:
        """32x32 RGB frames `(..., 32, 32, 3)` (float32 in [0, 1]) of states `obs` `(..., D)`
        in the HGN paper's style: each body a blurred disc of its own colour on a grey
        background (see `physprior.envs._hgn_frames`). MassSpring, Pendulum, TwoBody and
        ThreeBody draw them; also `render()` with `render_mode="hgn"` (as uint8).

        Batched and exact, so HGN datasets are drawn from stored states when needed.
        """
        flat = self._frame_states(obs)
        frames = self._hgn_frames(flat.reshape(-1, self.obs_dim))
        return frames.reshape(*flat.shape[:-1], *frames.shape[1:])

    def _frame_states(self, obs: Any) -> FloatArray:
        """`obs` as a float64 array `(..., D)` of finite states, or a one-line ValueError."""
        try:
            flat = np.asarray(obs, dtype=np.float64)
        except (TypeError, ValueError):
            raise ValueError(f"obs must be an array of numbers, got {obs!r:.60}") from None
        if flat.ndim == 0 or flat.shape[-1] != self.obs_dim:
            raise ValueError(f"obs has shape {flat.shape}, expected (..., {self.obs_dim})")
        if not np.isfinite(flat).all():
            raise ValueError("obs holds NaN or infinite values; frames need finite states")
        return flat

    # ------------------------------------------------------------------ batched contract
    def energy(self, obs: Any) -> Any:
        """True energy H of `obs` `(..., 2 * q_dim)` (numpy or torch); a float for one state."""
        batch, single = as_batch(obs, self.obs_dim, "obs")
        return unbatch(self._energy(batch), single)

    def reward_fn(self, obs: Any, action: Any, next_obs: Any) -> Any:
        """Reward of transitions `(N, D), (N, A), (N, D) -> (N,)` (numpy or torch).

        Reproduces the reward returned by `step`; one unbatched transition gives a float.
        """
        obs_b, single = as_batch(obs, self.obs_dim, "obs")
        next_b, _ = as_batch(next_obs, self.obs_dim, "next_obs")
        act_b, _ = as_batch(action, self.action_dim, "action")
        act_b = namespace(act_b).clip(act_b, -1.0, 1.0)
        return unbatch(self._reward(obs_b, act_b, next_b), single)

    def time_derivative(self, obs: Any, action: Any = None) -> Any:
        """The true vector field `dz/dt` `(..., D)` at states `obs` `(..., D)` (numpy or torch)
        under actions `action` `(..., A)` held constant (None: no force, the papers' system).

        What HNN-style training fits: exact time derivatives at the observed states. Available
        where the field has a closed form (NotImplementedError elsewhere).
        """
        batch, single = as_batch(obs, self.obs_dim, "obs")
        if action is None:
            force = batch[..., : self.action_dim] * 0.0
        else:
            act_b, _ = as_batch(action, self.action_dim, "action")
            force = self.force_scale * namespace(act_b).clip(act_b, -1.0, 1.0)
        out = self._time_derivative(batch, force)
        return out[0] if single else out

    def _time_derivative(self, obs: Any, force: Any) -> Any:
        """`dz/dt` `(N, D)` of states `(N, D)` under generalised forces `(N, A)` (env units)."""
        raise NotImplementedError(
            f"{type(self).__name__} has no closed-form time derivative; it is defined for "
            "MassSpring, Pendulum, TwoBody, ThreeBody and SpringChain"
        )

    def termination_fn(self, next_obs: Any) -> Any:
        """Whether each `next_obs` `(N, D)` ends the episode -> `(N,)` booleans."""
        batch, single = as_batch(next_obs, self.obs_dim, "next_obs")
        return unbatch(self._terminated(batch), single)

    # ------------------------------------------------------------------ gymnasium API
    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[FloatArray, dict[str, Any]]:
        super().reset(seed=seed)
        if options and "state" in options:
            self.state = check_state(options["state"], (self.obs_dim,))
        else:
            self.state = np.asarray(self.sample_initial_state(self.np_random), dtype=np.float64)
        return self.state.copy(), {}

    def step(self, action: Any) -> tuple[FloatArray, float, bool, bool, dict[str, Any]]:
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}.step() called before reset()")
        a = np.clip(check_action(action, (self.action_dim,)), -1.0, 1.0)
        next_state = self._advance(self.state, a)
        reward = float(self.reward_fn(self.state, a, next_state))
        terminated = bool(self.termination_fn(next_state))
        self.state = next_state
        return next_state.copy(), reward, terminated, False, {}

    def render(self) -> NDArray[np.uint8] | None:
        if self.render_mode is None:
            gym.logger.warn(
                f"{type(self).__name__}.render() called without a render_mode; "
                'pass render_mode="rgb_array" to the constructor or gym.make'
            )
            return None
        if self.state is None:
            raise RuntimeError(f"{type(self).__name__}.render() called before reset()")
        if self.render_mode == "binary":
            return self.binary_frames(self.state)
        if self.render_mode == "hgn":
            return np.round(255.0 * self.hgn_frames(self.state)).astype(np.uint8)
        return self._draw(self.state)
