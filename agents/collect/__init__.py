"""Collect a transitions dataset by acting in an environment: a learning SAC agent, or at random.

`collect(CollectConfig(env_id, steps, out, agent="sac"|"random", seed=...))` runs the agent for
`steps` env steps and records every transition it experiences, in the order it experienced
them, as a `TransitionDataset` (DESIGN.md): `obs`, `actions` in the env's own units, `next_obs`
(the true last observation at an episode end, not the next episode's first), the env's float64
`rewards`, `terminated`, `truncated` (time limits) and an `episode` id per row, counting from 0.

Files, for `out = "runs/hopper.npz"`:

- `runs/hopper.npz`: the dataset, rewritten atomically every `flush_every` steps and at the
  end, so a run killed at any moment leaves a valid file with every step up to the last flush
  (the episode running then ends `truncated`; `meta.extra["complete"]` is False);
- `runs/hopper.sac.safetensors` (SAC): the agent's state at the same moments, for resuming;
  nothing in it is pickled;
- `runs/hopper.sac.zip` (SAC, at the end): SB3's own file of the trained agent, for
  `stable_baselines3.SAC.load` (SB3's format pickles parts of it; physprior never loads it).

`resume=True` continues the file up to `steps` rows, and the result is the run an
uninterrupted call records, bit for bit (same `steps`; tested after SIGKILL, SIGINT and a
crash, on physics and MuJoCo envs). The random agent seeds every episode's reset and actions
from `(seed, episode id)`, so it re-enters the episode a kill left open (its state, its
time-limit count, its action stream, MuJoCo's solver warm start). SAC gets back, from the
safetensors file, its weights (actor, critic, target critic, entropy coefficient), Adam
states, step counters and the run state of `_resume` (every random generator, where
the env stands, the replay buffer's stored actions), and its replay buffer refilled from the
dataset. The agent state is written at flushes only; rows recorded after the last one (an
interruption between flushes keeps them in the file) are recorded again on resume, with a
warning that says how many. A resume may also extend a finished file to a larger `steps`;
SAC's `learning_starts` and buffer size then follow the new `steps`.

Recording costs little next to SAC's own work: the callback copies a handful of numbers per
step into preallocated arrays (`benchmarks/collect_overhead.py` measures it).

>>> import tempfile, pathlib
>>> from physprior.agents.collect import CollectConfig, collect
>>> out = pathlib.Path(tempfile.mkdtemp()) / "pendulum.npz"
>>> result = collect(CollectConfig("physprior/Pendulum-v0", 300, str(out), agent="random",
...                                progress=False))
>>> len(result.dataset), result.dataset.episode_ids.tolist()
(300, [0, 1])
"""

from __future__ import annotations

from ._collect import CollectConfig, CollectResult, collect, load_sac, sac_paths

__all__ = ["CollectConfig", "CollectResult", "collect", "load_sac", "sac_paths"]
