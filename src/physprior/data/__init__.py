"""The transitions dataset and everything that makes or slices one.

Format and loading
    `TransitionDataset` - row-aligned arrays `obs (N, D)`, `actions (N, A)`, `next_obs (N, D)`,
    `rewards (N,)`, `terminated (N,)`, `truncated (N,)`, `episode (N,)` and a `DatasetMeta`
    (env id, `dt`, `q_dim`, `state_layout`, agent, seed, steps, format version). States and
    actions are in the env's own units. `.save(path)` writes an `.npz` atomically;
    `.load(path)` validates it and never unpickles. Bad files raise `DatasetError` (a
    ValueError) with a one-line message.

Making datasets
    `generate_trajectories(env_id, n, length, actions="zero"|"random", seed=...)` - the papers'
    trajectory sets from any physics env.
    `from_replay_buffer(buffer, env)` - an SB3 `ReplayBuffer`, actions back in env units,
    `timeouts` read as truncations, episodes recovered.
    `from_minari(dataset_or_id)` / `to_minari(ds, dataset_id)` - Minari, the offline-RL
    dataset standard, both ways (the `minari` extra).

Slicing datasets
    `split_episodes(ds, test_fraction, seed=...)` or `split_episodes(ds, fractions=(...),
    seed=...)` - random splits by whole episodes.
    `make_windows(ds, length, count=None, seed=...)` - `Windows` of `length = T + 1`
    consecutive states (`states (W, T + 1, D)`, `actions (W, T, A)`, numpy, the dataset's
    dtype; `.to_torch(dtype)`), never across an episode end.
    `add_noise(ds_or_windows, std, seed=...)` - Gaussian observation noise, one draw per
    observed state, so overlapping windows share their noisy states.
    `derivative_windows(ds, noise_std=..., seed=...)` - the HNN protocol's (noisy state,
    exact time derivative) pairs as Euler windows `[y, y + dt f(z)]`.
    `frame_windows(windows, env)` / `render_frames(env, states, style)` - the states drawn as
    frames (flattened) for pixel models: 28x28 binary (VIN) or 32x32 RGB (HGN), drawn when
    needed rather than stored. `FrameRenderer(env, style)` does it per batch inside the
    trainer (`transform=`), so large pixel datasets stay states in memory.

Typical use (the decon-hnn protocol):

>>> from physprior.data import generate_trajectories, make_windows, split_episodes
>>> ds = generate_trajectories("physprior/MassSpring-v0", 10, 20, seed=0)
>>> train, test = split_episodes(ds, 0.2, seed=0)
>>> windows = make_windows(train, 3, count=100, seed=0)
>>> windows.states.shape, windows.actions.shape
((100, 3, 2), (100, 2, 1))
"""

from __future__ import annotations

from ._adapters import from_replay_buffer
from ._dataset import FORMAT_VERSION, DatasetError, DatasetMeta, TransitionDataset
from ._derivatives import derivative_windows
from ._frames import FrameRenderer, frame_windows, render_frames
from ._generate import generate_trajectories
from ._minari import from_minari, to_minari
from ._noise import add_noise
from ._splits import split_episodes
from ._windows import Windows, make_windows

__all__ = [
    "FORMAT_VERSION",
    "DatasetError",
    "DatasetMeta",
    "FrameRenderer",
    "TransitionDataset",
    "Windows",
    "add_noise",
    "derivative_windows",
    "frame_windows",
    "from_minari",
    "from_replay_buffer",
    "generate_trajectories",
    "make_windows",
    "render_frames",
    "split_episodes",
    "to_minari",
]
