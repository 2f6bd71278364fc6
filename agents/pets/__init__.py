"""PETS: plan through a bootstrapped ensemble, refit it after every episode, repeat.

Probabilistic ensembles with trajectory sampling (Chua et al. 2018) with any physprior state
model as the members, so that a physics prior can be compared with PETS's own probabilistic
MLPs on the same loop:

1. Random episodes (uniform actions) until `initial_steps` real steps are collected.
2. Fit the ensemble: every member on its own bootstrap resample of all one-step windows
   (`fit_ensemble`: warm-started, a fresh AdamW per refit, `model_epochs` passes).
3. One episode in the real env, acting with a planner (CEM, iCEM or MPPI) through
   `ModelDynamics(ensemble, env_id, sample=<probabilistic members>)`, with PETS's trajectory
   sampling (`propagation="tsinf"`, `particles`), re-planning at every step.
4. Back to 2 until `steps` real steps. The learning curve holds the finished episodes; an
   episode the step budget cuts short is reported apart (`cut_episode`).

`run_pets(env_id, config, steps, out)` writes, after every episode, the run folder's
`checkpoint/` as one atomic swap: `data.npz` (every real transition), `model/` (the ensemble
checkpoint, `physprior.load_model` reads it) and `state.json` (episodes done, the learning
curve, timings); at the end `results.json` and `learning_curve.png` beside it. A killed run
resumes from its last finished episode with the same result as an uninterrupted one: every
episode's env seed, planner seed and model-fit seeds derive from `(seed, episode)`.
"""

from __future__ import annotations

from ._pets import PETSConfig, run_pets

__all__ = ["PETSConfig", "run_pets"]
