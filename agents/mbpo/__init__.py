"""MBPO: SAC trained mostly on short model rollouts branched from real states.

Model-based policy optimisation (Janner et al. 2019, "When to trust your model", Algorithm 2)
with a physprior transition model and SB3's SAC. One loop over real env steps:

1. SAC (SB3) acts in the real env; SB3 stores the transition in the replay buffer, which is
   a `MixedReplayBuffer` (the real data pool `D_env`). The first `learning_starts` steps act
   uniformly at random, as SB3's SAC does.
2. Every `model_train_every` steps from `learning_starts` on, the model is refitted in memory
   on all real transitions (`from_replay_buffer` -> `make_windows`; warm-started, one AdamW
   optimiser over the whole run). With `ensemble=K` (MBPO's own setting) the model is an
   ensemble of K members, each refitted on its own bootstrap resample (a fresh AdamW per
   refit), and each branched step steps every row on a member drawn at random (sampling
   its Gaussian when the members are probabilistic).
3. Every `rollout_every` steps (once a model exists), `rollouts_per_step * rollout_every`
   start states are drawn uniformly from the real data and rolled out `rollout_length` steps
   through `ModelDynamics` (the model plus the base env's reward, termination and divergence
   bound; the length follows `rollout_schedule` if given), with actions from SAC's current
   stochastic policy. Every non-diverged model transition goes to the model pool `D_model`;
   a row stops after a termination or divergence.
4. SAC takes `gradient_steps` gradient steps on batches of which a fraction `real_ratio` comes
   from `D_env` and the rest from `D_model` (`MixedReplayBuffer.sample`).

Steps 2 and 3 run in an SB3 callback at the end of each collected step (after SB3 stored the
transition, before SAC's gradient steps), so the real-data handling (time-limit truncation,
terminal observations, action scaling) is SB3's own.

Example (InvertedPendulum in a few thousand real steps; see tests/agents/test_mbpo.py)::

    from physprior.agents.mbpo import MBPO, MBPOConfig
    agent = MBPO("physprior/InvertedPendulumFull-v0", MBPOConfig(learning_starts=250))
    agent.learn(3000)
    action, _ = agent.predict(obs)        # SB3's signature: evaluate_policy can score it
    agent.save("runs/mbpo")               # model/ (physprior checkpoint), sac.zip, mbpo.json

`run_mbpo(env_id, config, steps, out)` runs it in a folder that checkpoints every
`checkpoint_every` real steps and resumes after a kill with identical results, with a
learning-curve PNG and `results.json` (`physprior mbrl ENV --algo mbpo`).
"""

from __future__ import annotations

from ._mbpo import MBPO, MBPOConfig
from ._run import run_mbpo

__all__ = ["MBPO", "MBPOConfig", "run_mbpo"]
