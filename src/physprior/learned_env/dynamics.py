"""The batched core of the learned envs: `ModelDynamics`, a trained transition model inside
the base env's task (its reward, termination and action bounds), for planners and MBPO.

## Divergence

A learned model driven outside its training data can blow up. A row *diverges* when the
model's next state is not finite, or when any coordinate lies more than `bound` training
standard deviations from the training mean: `|z' - mean| / std > bound`, with `mean`, `std`
the model's own state normaliser (`model.state_norm`, fitted on the training split). A
diverged row keeps its last finite state (the returned `next_obs` is the input `obs`), so no
non-finite number ever leaves this module; the envs end its episode with `truncated=True` and
`info["model_diverged"]`.

The default bound, `DEFAULT_BOUND = 1e3`, is deliberately loose. The training states lie
within a few standard deviations of their mean, so a state 1000 standard deviations out is one
the model has never seen anything like, and its prediction is meaningless extrapolation; yet
legitimate exploration beyond the data is allowed for (a HalfCheetah policy running 500 m
when random-policy data spans a few metres is ~250 standard deviations). And it is caught while
the numbers are still small: at 1e3 standard deviations even the squares that rewards and
energies take (`v ** 2`, `p ** 2 / 2m`) are far from float32's overflow at 3.4e38, so a
blow-up is flagged a step or more before it could turn into inf or NaN. `bound=math.inf`
keeps only the non-finiteness check. An unfitted normaliser is the identity (mean 0, std 1),
so the bound is then in raw state units.
"""

from __future__ import annotations

import math
import numbers
import os
from typing import Any

import gymnasium as gym
import numpy as np
import torch
from gymnasium import spaces
from numpy.typing import NDArray
from torch import Tensor

from physprior.models import TransitionModel
from physprior.models._base import NumpyRowStep
from physprior.models._numpy_row import NUMPY_DTYPES

__all__ = [
    "DEFAULT_BOUND",
    "LEARNED_ENV_ID",
    "ModelDynamics",
    "ModelLike",
    "make_base_env",
    "resolve_model",
]

#: Default divergence bound, in training standard deviations from the training mean.
DEFAULT_BOUND = 1e3
#: The registered id of `LearnedDynamicsEnv`.
LEARNED_ENV_ID = "physprior/Learned-v0"

ModelLike = TransitionModel | str | os.PathLike[str]
"""A model, or the path of a checkpoint folder (or training run folder) to load it from."""


def resolve_model(model: ModelLike) -> TransitionModel:
    """`model` itself, or the model loaded from a checkpoint folder path."""
    if isinstance(model, TransitionModel):
        return model
    if isinstance(model, str | os.PathLike):
        from physprior.training import load_model

        return load_model(model)
    raise TypeError(
        f"model must be a physprior TransitionModel or a checkpoint folder path, "
        f"got {type(model).__name__}"
    )


def make_base_env(base_env_id: str, **env_kwargs: Any) -> Any:
    """The unwrapped base environment `base_env_id` (built with `env_kwargs`), checked to
    expose the batched contract."""
    import physprior.envs  # noqa: F401  (registers the environments)

    if not isinstance(base_env_id, str) or base_env_id not in gym.registry:
        raise ValueError(
            f"unknown base env id {base_env_id!r}; run `physprior envs` for the registered ids"
        )
    if base_env_id == LEARNED_ENV_ID:
        raise ValueError(f"the base env must be a real environment, not {LEARNED_ENV_ID}")
    core = gym.make(base_env_id, **env_kwargs).unwrapped
    missing = [n for n in ("reward_fn", "termination_fn", "dt") if not hasattr(core, n)]
    if missing:
        core.close()
        raise ValueError(
            f"base env {base_env_id!r} lacks {', '.join(missing)} (physprior's environments "
            f"have them); run `physprior envs` for the registered ids"
        )
    for name, space in (("observation", core.observation_space), ("action", core.action_space)):
        if not isinstance(space, spaces.Box) or len(space.shape) != 1:
            core.close()
            raise ValueError(f"base env {base_env_id!r} needs a 1-D Box {name} space, got {space}")
    return core


def to_numpy(tensor: Tensor) -> NDArray[Any]:
    """`tensor` as a numpy array on the CPU, in its own dtype; bfloat16, which numpy lacks,
    as float64 (exact)."""
    tensor = tensor.detach().cpu()
    if tensor.dtype == torch.bfloat16:
        tensor = tensor.double()
    return tensor.numpy()


def _check_bound(bound: float | None) -> float:
    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, numbers.Real)):
        raise TypeError(
            f"bound must be a positive number or None (math.inf disables it), got {bound!r}"
        )
    value = DEFAULT_BOUND if bound is None else float(bound)
    if not value > 0:  # also refuses NaN
        raise ValueError(f"bound must be positive (math.inf disables it), got {bound!r}")
    return value


_FLOAT64_MAX = float(np.finfo(np.float64).max)
#: `_bound_lists`'s cache: the normaliser's mean and std, their versions, the bound as lists.
_BoundEntry = tuple[Tensor, Tensor, tuple[int, int], tuple[list[float], list[float]]]


# ---------------------------------------------------------------------------------- the core
class ModelDynamics:
    """A trained model + the base env's reward, termination and divergence bound, batched, torch.

    `model`: a `TransitionModel` (physprior.models) or a checkpoint folder path; `base_env_id`: a
    registered id (e.g. `"physprior/HalfCheetahFull-v0"`). The model's `obs_dim`/`action_dim`
    must match the base env's spaces `(D,)`/`(A,)`, its `dt` the env's `dt`, and its recorded
    `env_id` (if any) the id (ValueError naming both otherwise). `bound`: the divergence bound
    in training standard deviations (module docstring; default `DEFAULT_BOUND`). `device`: the
    model is moved there (in place) and every tensor returned lives there.

    Runs under `torch.no_grad()` with the model in evaluation mode (the test integrator); if
    something switches the model back to training mode (an MBPO loop refitting it), the next
    `step` switches it to evaluation mode again. The state normaliser is read at every step, so
    a refit model's new statistics take effect at once.

    Recurrent models (`rnn`, `lstm`) are stepped with fresh (zero) memory at every step: the
    environment's state is the observation alone.

    ## Ensembles

    With an `ensemble` model, `member` chooses what a step predicts: `"mean"` (the default)
    the members' mean next state, `"random"` a member drawn for every row at every step
    (PETS's TS-1; seeded by `seed(s)`), an integer `k` member k alone. After each `step`,
    `last_disagreement` `(N,)` holds the members' spread about that step (their std per
    coordinate, averaged over the coordinates, in state units; `None` for a single model).
    `rollout_returns(..., members=...)` rolls each row out on a member of the caller's
    choosing (the planners' particles).

    `sample=True` (probabilistic models, and ensembles of them) draws every next state from
    the predicted Gaussian instead of taking its mean, as PETS's particles do; around the
    ensemble's mean its variance is the members' average. Draws come from the generator that
    `seed(s)` seeds.
    """

    def __init__(
        self,
        model: ModelLike,
        base_env_id: str,
        *,
        bound: float | None = None,
        device: str | torch.device = "cpu",
        member: str | int = "mean",
        sample: bool = False,
    ) -> None:
        model = resolve_model(model)
        if model.data_dim != model.obs_dim:
            raise TypeError(
                f"model {model.name!r} learns from frames and steps a latent state; use "
                "physprior.PixelLearnedEnv (physprior/PixelLearned-v0) for it"
            )
        self.base_env_id = base_env_id
        self.base_env: Any = make_base_env(base_env_id)
        obs_shape = tuple(self.base_env.observation_space.shape)
        act_space = self.base_env.action_space
        if (model.obs_dim, model.action_dim) != (obs_shape[0], act_space.shape[0]):
            self.base_env.close()
            raise ValueError(
                f"model has obs_dim {model.obs_dim} / action_dim {model.action_dim}, but "
                f"{base_env_id} has observation shape {obs_shape} / action shape "
                f"{tuple(act_space.shape)}"
            )
        env_dt = float(self.base_env.dt)
        if not math.isclose(model.dt, env_dt, rel_tol=1e-6):
            self.base_env.close()
            raise ValueError(f"model has dt {model.dt}, but {base_env_id} has dt {env_dt}")
        trained_on = model.config.env_id
        if trained_on is not None and trained_on != base_env_id:
            self.base_env.close()
            raise ValueError(f"model was trained on {trained_on}, not on {base_env_id}")
        self.bound = _check_bound(bound)
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.dtype: torch.dtype = model.dtype
        self.obs_dim: int = model.obs_dim
        self.action_dim: int = model.action_dim
        self.action_low: Tensor = torch.as_tensor(
            act_space.low, dtype=self.dtype, device=self.device
        )
        self.action_high: Tensor = torch.as_tensor(
            act_space.high, dtype=self.dtype, device=self.device
        )
        # The bounds as the model's dtype holds them, for `transition_one`'s numpy clip.
        self._action_low_np = to_numpy(self.action_low).astype(np.float64)
        self._action_high_np = to_numpy(self.action_high).astype(np.float64)
        self._bound_cache: _BoundEntry | None = None
        spec = gym.spec(base_env_id)
        #: The base env's episode length (its registered `max_episode_steps`; None: unlimited).
        self.max_episode_steps: int | None = spec.max_episode_steps
        #: Number of members of an ensemble model; None for a single model.
        self.ensemble_size: int | None = (
            getattr(model, "size", None) if _is_ensemble(model) else None
        )
        self.member = _check_member(member, self.ensemble_size)
        if not isinstance(sample, bool):
            raise TypeError(f"sample must be True or False, got {sample!r}")
        if sample and not model.predicts_variance:
            raise ValueError(
                f"sample=True draws from a probabilistic model's Gaussian; {model.name!r} was "
                "built with probabilistic=False"
            )
        #: Whether each next state is drawn from the model's Gaussian (else its mean).
        self.sample = sample
        self._generator = torch.Generator(device=self.device)
        self._generator.manual_seed(0)
        #: Whether `seed` was called (the envs seed an unseeded one at their first reset).
        self.seeded = False
        #: The members' disagreement `(N,)` about the last `step` (ensembles), else None.
        self.last_disagreement: Tensor | None = None

    def seed(self, seed: int) -> None:
        """Seed the draws of `member="random"` (the envs do at `reset(seed=...)`)."""
        self._generator.manual_seed(int(seed))
        self.seeded = True

    # ------------------------------------------------------------------ the base env's task
    def reward_fn(self, obs: Tensor, action: Tensor, next_obs: Tensor) -> Tensor:
        """The base env's reward `(N, D), (N, A), (N, D) -> (N,)`."""
        reward: Tensor = self.base_env.reward_fn(obs, action, next_obs)
        return reward

    def termination_fn(self, next_obs: Tensor) -> Tensor:
        """The base env's termination `(N, D) -> (N,)` bool."""
        terminated: Tensor = self.base_env.termination_fn(next_obs)
        return terminated

    def diverged(self, next_obs: Tensor) -> Tensor:
        """`(N, D) -> (N,)` bool: not finite, or a coordinate beyond `bound` training stds."""
        norm = self.model.state_norm
        # The limit is capped at the largest finite float so that inf is flagged under
        # bound=inf. The largest excess over the limit of each row is compared once: NaN
        # propagates through `amax` and compares False, so one `<=` flags non-finite rows
        # together with far-out ones (and a float `amax` over the row is about twice as fast
        # on CPU as `all` over a bool tensor, measurably so at thousands of rows).
        limit = torch.clamp(self.bound * norm.std, max=torch.finfo(norm.std.dtype).max)
        excess = (next_obs - norm.mean).abs_().sub_(limit)
        return ~(excess.amax(dim=-1) <= 0)

    # ------------------------------------------------------------------ transitions
    def step(self, obs: Tensor, action: Tensor) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """One model transition of a batch.

        `obs` `(N, D)`, `action` `(N, A)` in env units, clipped to the action bounds. Returns
        `next_obs` `(N, D)` (finite always; diverged rows keep their last finite obs),
        `reward` `(N,)` from the base `reward_fn(obs, clipped action, next_obs)` (of the
        returned `next_obs`), `terminated` `(N,)` bool from `termination_fn(next_obs)`, and
        `diverged` `(N,)` bool (non-finite or beyond the bound), all in the model's dtype on
        `device`. ValueError on a wrong shape or a non-finite `obs` or `action`.
        """
        obs = self._check_batch(obs, "obs", self.obs_dim, None)
        action = self._check_batch(action, "action", self.action_dim, obs.shape[0])
        return self._transition(obs, action)

    def _transition(
        self, obs: Tensor, action: Tensor, members: Tensor | None = None
    ) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """`step` without the input checks (for states that come from `step` itself); an
        ensemble's rows step on `members` `(N,)` if given."""
        with torch.no_grad():
            if self.model.training:
                self.model.eval()
            action = torch.clamp(action, self.action_low, self.action_high)
            predicted = self._predict(obs, action, members)
            diverged = self.diverged(predicted)
            next_obs = torch.where(diverged.unsqueeze(-1), obs, predicted)
            next_obs, reward, diverged = self._finite_rewards(obs, action, next_obs, diverged)
            terminated = self.termination_fn(next_obs)
        return next_obs, reward, terminated, diverged

    def transition_one(
        self, state: Tensor, obs: NDArray[np.float64], action: NDArray[np.float64]
    ) -> tuple[Tensor, NDArray[np.float64], float, bool, bool]:
        """`step` of one row, for the single env: `state (1, D)` (model dtype, from a reset
        or an earlier step), `obs (D,)` the same row as float64 and a checked `action (A,)`
        -> `(next_state (1, D), next_obs (D,) float64, reward, terminated, diverged)`.

        The clipping, reward, termination and divergence check run in numpy on the float64
        row, since on one row torch's cost per call is most of the step; so does the model
        where it has a `numpy_row_step` (a lone model, not sampled), else it steps in torch.
        The same results as `step` to rounding (reward and bound in float64 rather than the
        model's dtype)."""
        clipped = np.minimum(np.maximum(action, self._action_low_np), self._action_high_np)
        with torch.no_grad():
            if self.model.training:
                self.model.eval()
            row_step = self._numpy_row_step()
            if row_step is None:
                predicted = self._predict(state, self._action_row(clipped), None)
                next_obs = to_numpy(predicted)[0].astype(np.float64)
            else:
                self.last_disagreement = None
                next_row = row_step(obs, clipped)  # in the model's dtype
                predicted = torch.from_numpy(next_row[None])
                next_obs = next_row.astype(np.float64)
        low, high = self._bound_lists()
        # On a handful of numbers Python's own comparisons beat numpy's calls; NaN compares
        # False, so a non-finite row diverges too.
        values = next_obs.tolist()
        diverged = not all(lo <= v <= hi for lo, v, hi in zip(low, values, high, strict=True))
        if diverged:
            next_obs, predicted = obs, state
        reward = float(self.base_env.reward_fn(obs, clipped, next_obs))
        if not math.isfinite(reward):  # as `_finite_rewards`: diverged, reward of staying
            diverged, next_obs, predicted = True, obs, state
            stay = float(self.base_env.reward_fn(obs, clipped, obs))
            reward = stay if math.isfinite(stay) else 0.0
        terminated = bool(self.base_env.termination_fn(next_obs))
        return predicted, next_obs, reward, terminated, diverged

    def _numpy_row_step(self) -> NumpyRowStep | None:
        """The model's one-row numpy step, where `transition_one` may use it: a lone model
        (not an ensemble), not sampled, on the CPU."""
        if self.ensemble_size is not None or self.sample or self.device.type != "cpu":
            return None
        return self.model.numpy_row_step()

    def _action_row(self, action: NDArray[np.float64]) -> Tensor:
        """`action (A,)` as a `(1, A)` tensor of the model's dtype on `device`: through
        `torch.from_numpy` where numpy has the dtype (a few microseconds less than
        `torch.as_tensor` with a conversion, which is a tenth of a one-row step)."""
        numpy_dtype = NUMPY_DTYPES.get(self.dtype)
        if numpy_dtype is None:
            return torch.as_tensor(action[None], dtype=self.dtype, device=self.device)
        row = torch.from_numpy(action.astype(numpy_dtype).reshape(1, -1))
        return row if self.device.type == "cpu" else row.to(self.device)

    def _bound_lists(self) -> tuple[list[float], list[float]]:
        """The divergence bound as float64 lists `(mean - limit, mean + limit)` for
        `transition_one`, rebuilt when the model's state normaliser changes."""
        norm = self.model.state_norm
        mean, std = norm.mean, norm.std
        versions = (mean._version, std._version)
        cached = self._bound_cache
        # Compared by identity and in-place version, as the models' inference cache does;
        # the entry holds the tensors, so a freed one's id never matches again.
        if cached is None or cached[0] is not mean or cached[1] is not std or cached[2] != versions:
            limit = np.minimum(self.bound * to_numpy(std).astype(np.float64), _FLOAT64_MAX)
            centre = to_numpy(mean).astype(np.float64)
            bounds = ((centre - limit).tolist(), (centre + limit).tolist())
            self._bound_cache = cached = (mean, std, versions, bounds)
        return cached[3]

    def _predict(self, obs: Tensor, action: Tensor, members: Tensor | None) -> Tensor:
        """The model's next state `(N, D)` of checked, clipped inputs (see `member`; drawn
        from the predicted Gaussian with `sample`)."""
        if self.ensemble_size is None:
            self.last_disagreement = None
            if self.sample:
                return self.model.sample_step(obs, action, generator=self._generator)
            # The inputs are checked and in the model's dtype: no `model.step` checks again.
            return self.model.step_with_memory(obs, action)[0]
        ensemble: Any = self.model
        if members is not None:  # the caller's rows on their members: no spread computed
            self.last_disagreement = None
            mean, log_var = _step_on_members(ensemble, obs, action, members, self.sample)
            return self._draw(mean, log_var)
        if self.sample:
            means, log_vars = ensemble.members_distribution(obs, action)  # (K, N, D) each
        else:
            means, log_vars = ensemble.members_step(obs, action), None
        n = obs.shape[0]
        self.last_disagreement = (
            means.std(dim=0).mean(dim=-1) if self.ensemble_size > 1 else means.new_zeros(n)
        )
        if self.member == "mean":
            # Sampling around the mean: the members' average variance (their aleatoric part).
            average = None if log_vars is None else log_vars.exp().mean(dim=0).log()
            return self._draw(means.mean(dim=0), average)
        if self.member == "random":
            rows = torch.arange(n, device=self.device)
            drawn = torch.randint(
                self.ensemble_size, (n,), generator=self._generator, device=self.device
            )
            return self._draw(
                means[drawn, rows], None if log_vars is None else log_vars[drawn, rows]
            )
        k = int(self.member)
        return self._draw(means[k], None if log_vars is None else log_vars[k])

    def _draw(self, mean: Tensor, log_var: Tensor | None) -> Tensor:
        """`mean`, or with a log-variance a draw from the Gaussian (the dynamics' generator)."""
        if log_var is None:
            return mean
        noise = torch.randn(
            mean.shape, generator=self._generator, dtype=mean.dtype, device=mean.device
        )
        return torch.addcmul(mean, (0.5 * log_var).exp(), noise)

    def _finite_rewards(
        self, obs: Tensor, action: Tensor, next_obs: Tensor, diverged: Tensor
    ) -> tuple[Tensor, Tensor, Tensor]:
        """The base reward of `(M, D)` transitions, never NaN or inf.

        A transition whose reward is not finite (a finite state can still square to inf in
        float32, e.g. under `bound=inf`) counts as diverged: its next state becomes `obs`, its
        reward that of staying at `obs`, or 0 if that too is not finite.
        """
        reward = self.reward_fn(obs, action, next_obs)
        bad = ~torch.isfinite(reward)
        if bool(bad.any()):
            diverged = diverged | bad.view(diverged.shape)
            next_obs = torch.where(bad.unsqueeze(-1), obs, next_obs)
            stay = self.reward_fn(obs, action, obs)
            reward = torch.where(
                bad, torch.nan_to_num(stay, nan=0.0, posinf=0.0, neginf=0.0), reward
            )
        return next_obs, reward, diverged

    def rollout_returns(
        self,
        obs: Tensor,
        actions: Tensor,
        discount: float = 1.0,
        *,
        members: Tensor | None = None,
    ) -> Tensor:
        """Returns of model rollouts: `obs` `(N, D)`, `actions` `(N, H, A)` -> `(N,)`.

        `sum_t discount^t r_t` over the rewards an agent in the learned env would collect: the
        step that terminates or diverges is counted (with its returned, finite next state),
        rewards after it are not. ValueError on a wrong shape or a non-finite input.

        Ensembles: `members` (int64) puts each row on members of the caller's choice, `(N,)`
        one member for the whole rollout (PETS's TS-inf) or `(N, H)` one per step (TS-1);
        rows are grouped by member so that each member steps only its own rows. Without
        `members`, the rollout follows `member` (the mean, a random member per row and step,
        or member k).

        The hot path of the planners (every candidate of every CEM iteration): memoryless
        models (all but `rnn`, `lstm`) are rolled out in one `model.rollout` call, which folds
        their networks once per rollout rather than once per step, and the reward and
        termination are evaluated once on all `(N * H)` transitions. That equals stepping:
        states are identical up to the first divergence or termination of a row, and nothing
        after it is counted (a diverged row's later, possibly non-finite states are masked).
        """
        obs = self._check_batch(obs, "obs", self.obs_dim, None)
        n, a = obs.shape[0], self.action_dim
        actions = torch.as_tensor(actions, dtype=self.dtype, device=self.device)
        if actions.ndim != 3 or actions.shape[0] != n or actions.shape[2] != a:
            raise ValueError(f"actions have shape {tuple(actions.shape)}, expected ({n}, H, {a})")
        if not bool(torch.isfinite(actions).all()):
            raise ValueError("actions contains NaN or inf")
        horizon = actions.shape[1]
        members = self._check_members(members, n, horizon)
        if horizon == 0:
            return obs.new_zeros(n)
        with torch.no_grad():
            if self.model.training:
                self.model.eval()
            actions = torch.clamp(actions, self.action_low, self.action_high)
            if members is not None and members.ndim == 1 and self._members_roll_out:
                return self._returns_of_states(
                    self._member_rollouts(obs, actions, members), actions, discount
                )
            chosen = self.ensemble_size is not None and self.member != "mean"
            if members is not None or chosen or self.sample:  # per-step draws or regrouping
                return self._stepped_returns(obs, actions, discount, members)
            first, memory = self.model.step_with_memory(obs, actions[:, 0])
            if memory is not None:  # recurrent: every step starts from fresh memory
                return self._stepped_returns(obs, actions, discount)
            diverged_first = self.diverged(first)
            # From the first step on the rollout runs from the returned (finite) state.
            first = torch.where(diverged_first.unsqueeze(-1), obs, first)
            states = torch.cat((obs.unsqueeze(1), self.model.rollout(first, actions[:, 1:])), 1)
            return self._returns_of_states(states, actions, discount, diverged_first)

    @property
    def _members_roll_out(self) -> bool:
        """Whether TS-inf rollouts (one member per row) run as the members' own rollouts:
        memoryless members (a recurrent one steps from fresh memory here, as `step` does)."""
        ensemble: Any = self.model
        return self.ensemble_size is not None and type(ensemble.members[0]).memoryless

    def _member_rollouts(self, obs: Tensor, actions: Tensor, members: Tensor) -> Tensor:
        """States `(N, H + 1, D)` of every row rolled out by its member `members (N,)` for the
        whole horizon, in one `members_rollout` call on the rows grouped by member (as
        `_step_on_members` groups them); drawn from the members' Gaussians with `sample`."""
        ensemble: Any = self.model
        rows, valid, order = _member_rows(members, ensemble.size)
        noise = None
        if self.sample:
            shape = (*rows.shape, actions.shape[1], self.obs_dim)
            noise = torch.randn(
                shape, generator=self._generator, dtype=obs.dtype, device=obs.device
            )
        grouped = ensemble.members_rollout(obs[rows], actions[rows], noise=noise)
        states = torch.empty(obs.shape[0], *grouped.shape[2:], dtype=obs.dtype, device=obs.device)
        states[order] = grouped[valid]
        return states

    def _returns_of_states(
        self, states: Tensor, actions: Tensor, discount: float, diverged_first: Tensor | None = None
    ) -> Tensor:
        """`rollout_returns` of the states `(N, H + 1, D)` a rollout under `actions (N, H, A)`
        reached (`diverged_first`: whether each row's first step diverged, when `states` holds
        its replacement rather than the step itself)."""
        n, horizon, a = actions.shape
        with torch.no_grad():
            before, after = states[:, :-1], states[:, 1:]  # (N, H, D) each
            diverged = self.diverged(after)
            if diverged_first is not None:
                diverged[:, 0] = diverged_first
            after = torch.where(diverged.unsqueeze(-1), before, after)
            flat = (n * horizon, self.obs_dim)
            after_flat, reward, diverged_flat = self._finite_rewards(
                before.reshape(flat),
                actions.reshape(-1, a),
                after.reshape(flat),
                diverged.reshape(-1),
            )
            diverged = diverged_flat.view(n, horizon)
            terminated = self.termination_fn(after_flat).view(n, horizon)
            ended = (terminated | diverged).to(torch.int32)
            # A step counts while no earlier step of its row terminated or diverged.
            alive = (torch.cumsum(ended, dim=1) - ended) == 0
            weights = discount ** torch.arange(horizon, dtype=torch.float64, device=self.device)
            counted = torch.where(alive, reward.view(n, horizon), 0.0)
            return (counted * weights.to(counted.dtype)).sum(dim=1)

    def _stepped_returns(
        self, obs: Tensor, actions: Tensor, discount: float, members: Tensor | None = None
    ) -> Tensor:
        """`rollout_returns` one `step` at a time, for checked, clipped inputs (and members
        `(N, H)`, `(N,)` or None)."""
        n = obs.shape[0]
        total = obs.new_zeros(n)
        alive = torch.ones(n, dtype=torch.bool, device=obs.device)
        weight = 1.0
        for t in range(actions.shape[1]):
            step_members = None
            if members is not None:
                step_members = members if members.ndim == 1 else members[:, t]
            obs, reward, terminated, diverged = self._transition(obs, actions[:, t], step_members)
            total = total + weight * torch.where(alive, reward.to(total.dtype), 0.0)
            alive = alive & ~(terminated | diverged)
            weight *= discount
        return total

    def _check_members(self, members: Any, n: int, horizon: int) -> Tensor | None:
        """`members` as an int64 tensor `(N,)` or `(N, H)` of member indices, or None."""
        if members is None:
            return None
        if self.ensemble_size is None:
            raise ValueError(f"members applies to an ensemble model, not {self.model.name!r}")
        members = torch.as_tensor(members, device=self.device)
        if members.dtype != torch.int64 or members.shape not in ((n,), (n, horizon)):
            raise ValueError(
                f"members must be int64 of shape ({n},) or ({n}, {horizon}), got "
                f"{members.dtype} {tuple(members.shape)}"
            )
        if members.numel() and not bool(((members >= 0) & (members < self.ensemble_size)).all()):
            raise ValueError(f"members must lie in [0, {self.ensemble_size}), the ensemble's size")
        return members

    def _check_batch(self, x: Any, name: str, dim: int, rows: int | None) -> Tensor:
        """`x` as a `(rows, dim)` tensor of the model's dtype on `device`; finite."""
        x = torch.as_tensor(x, dtype=self.dtype, device=self.device)
        if x.ndim != 2 or x.shape[1] != dim or (rows is not None and x.shape[0] != rows):
            shown = "N" if rows is None else rows
            raise ValueError(f"{name} has shape {tuple(x.shape)}, expected ({shown}, {dim})")
        if not bool(torch.isfinite(x).all()):
            raise ValueError(f"{name} contains NaN or inf")
        return x

    def close(self) -> None:
        self.base_env.close()


def _seed_members(
    dynamics: ModelDynamics, np_random: np.random.Generator, seed: int | None
) -> None:
    """Seed an ensemble's random-member draws from the env's own stream, when the env is
    seeded (or on its first reset), so that `reset(seed=s)` repeats an episode."""
    if dynamics.ensemble_size is not None and (seed is not None or not dynamics.seeded):
        dynamics.seed(int(np_random.integers(2**63 - 1)))


def _is_ensemble(model: TransitionModel) -> bool:
    return hasattr(model, "members_step")


def _check_member(member: Any, size: int | None) -> str | int:
    """`member` if valid for an ensemble of `size` members (None: a single model)."""
    if size is None:
        if member != "mean":
            raise ValueError(f"member={member!r} applies to an ensemble model, not a single one")
        return member
    if member in ("mean", "random"):
        return str(member)
    if isinstance(member, numbers.Integral) and not isinstance(member, bool):
        if 0 <= int(member) < size:
            return int(member)
    raise ValueError(
        f"member must be 'mean', 'random' or a member index in [0, {size}), got {member!r}"
    )


def _member_rows(members: Tensor, size: int) -> tuple[Tensor, tuple[Tensor, Tensor], Tensor]:
    """Rows grouped by member: `rows (K, M)` (row indices of each member's rows; M the
    largest group, shorter groups padded with row 0), `valid` (the `(member, slot)` index of
    each real entry, in `order`) and `order` (the rows sorted by member), so that
    `x[rows][valid]` is `x[order]`."""
    n = members.shape[0]
    counts = torch.bincount(members, minlength=size)
    order = torch.argsort(members, stable=True)
    grouped_members = members[order]
    starts = torch.cumsum(counts, 0) - counts
    slot = torch.arange(n, device=members.device) - starts[grouped_members]
    rows = torch.zeros(size, int(counts.max()), dtype=torch.int64, device=members.device)
    rows[grouped_members, slot] = order
    return rows, (grouped_members, slot), order


def _step_on_members(
    ensemble: Any, obs: Tensor, action: Tensor, members: Tensor, distribution: bool
) -> tuple[Tensor, Tensor | None]:
    """Each row of `obs` `(N, D)` stepped by its own member `members` `(N,)`, in one batched
    call: rows are grouped by member into `(K, M, D)` (`_member_rows`), stepped, and put
    back. Returns the next states and, with `distribution`, their log-variances (else
    None)."""
    rows, valid, order = _member_rows(members, ensemble.size)
    if distribution:
        predicted, log_var = ensemble.members_distribution(obs[rows], action[rows])  # (K, M, D)
    else:
        predicted, log_var = ensemble.members_step(obs[rows], action[rows]), None
    result = torch.empty_like(obs)
    result[order] = predicted[valid]
    if log_var is None:
        return result, None
    result_log_var = torch.empty_like(obs)
    result_log_var[order] = log_var[valid]
    return result, result_log_var
