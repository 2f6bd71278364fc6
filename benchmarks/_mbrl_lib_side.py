"""The mbrl-lib side of `mbrl_lib_comparison.py`; runs inside the separate mbrl-lib venv.

Not for direct use: `mbrl_lib_comparison.py` starts it as a subprocess of that venv's Python
(mbrl 0.2.0 cannot share an environment with physprior: it pins gymnasium 0.26.3) and sends
it one command per line on stdin; it answers one JSON line per command on stdout:

- `env K`: `K` steps of `mbrl.models.ModelEnv` at the configured batch -> `{"rate": ...}`
  (transitions per second, wall time);
- `cem K`: `K` decisions of `mbrl.planning.TrajectoryOptimizerAgent.act` with `CEMOptimizer`
  -> `{"ms": ...}` (milliseconds per decision);
- `quit`.

Setup (the first argument, a JSON object): `threads`, `batch`, `obs_dim`, `action_dim`,
`hidden`, `layers`, `activation` (a torch.nn class name), `horizon`, `population`,
`iterations`, `elites`, `seed`. The model is mbrl-lib's own one-step model as its PETS/MBPO
examples build it: `OneDTransitionRewardModel(GaussianMLP(...), target_is_delta=True,
normalize=True, learned_rewards=False)`, a deterministic ensemble of one, random weights;
`ModelEnv` gets mbrl's `reward_fns.halfcheetah` and `termination_fns.no_termination`. The
agent is built from an omegaconf config through `create_trajectory_optim_agent_for_model`, as
mbrl-lib's `pets.py` does (with `_recursive_: false`, which hydra-core 1.3 needs for mbrl
0.2.0's nested optimizer config).
"""

from __future__ import annotations

import json
import sys
import time

import gymnasium as gym
import mbrl.env.reward_fns as reward_fns
import mbrl.env.termination_fns as termination_fns
import mbrl.models
import mbrl.planning
import numpy as np
import omegaconf
import torch


class Spaces:
    """The two attributes `ModelEnv` and `complete_agent_cfg` read from an env (also used by
    `_mbrl_lib_pets_side.py`)."""

    def __init__(self, obs_dim: int, action_dim: int) -> None:
        self.observation_space = gym.spaces.Box(-np.inf, np.inf, (obs_dim,), np.float64)
        self.action_space = gym.spaces.Box(-1.0, 1.0, (action_dim,), np.float32)


def main() -> None:
    cfg = json.loads(sys.argv[1])
    torch.set_num_threads(cfg["threads"])
    torch.manual_seed(cfg["seed"])
    obs_dim, action_dim, batch = cfg["obs_dim"], cfg["action_dim"], cfg["batch"]
    spaces = Spaces(obs_dim, action_dim)
    net = mbrl.models.GaussianMLP(
        in_size=obs_dim + action_dim,
        out_size=obs_dim,
        device="cpu",
        num_layers=cfg["layers"],
        ensemble_size=1,
        hid_size=cfg["hidden"],
        deterministic=True,
        activation_fn_cfg={"_target_": f"torch.nn.{cfg['activation']}"},
    )
    model = mbrl.models.OneDTransitionRewardModel(
        net, target_is_delta=True, normalize=True, learned_rewards=False
    )
    model_env = mbrl.models.ModelEnv(
        spaces,
        model,
        termination_fns.no_termination,
        reward_fns.halfcheetah,
        generator=torch.Generator().manual_seed(cfg["seed"]),
    )
    agent_cfg = omegaconf.OmegaConf.create(
        {
            "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
            # hydra 1.3 instantiates nested `_target_`s first; the optimizer's bounds are only
            # filled in by TrajectoryOptimizer, so it must get its config uninstantiated.
            "_recursive_": False,
            "action_lb": [-1.0] * action_dim,
            "action_ub": [1.0] * action_dim,
            "planning_horizon": cfg["horizon"],
            "replan_freq": 1,
            "verbose": False,
            "keep_last_solution": True,
            "optimizer_cfg": {
                "_target_": "mbrl.planning.CEMOptimizer",
                "num_iterations": cfg["iterations"],
                "elite_ratio": cfg["elites"] / cfg["population"],
                "population_size": cfg["population"],
                "alpha": 0.1,
                "device": "cpu",
                "lower_bound": "???",
                "upper_bound": "???",
                "return_mean_elites": True,
                "clipped_normal": False,
            },
        }
    )
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, agent_cfg, num_particles=1
    )
    rng = np.random.default_rng(cfg["seed"])
    start = (0.1 * rng.standard_normal((batch, obs_dim))).astype(np.float32)
    observations = (0.1 * rng.standard_normal((64, obs_dim))).astype(np.float32)
    gen = torch.Generator().manual_seed(cfg["seed"])
    cursor = 0

    def env_rate(steps: int) -> float:
        actions = torch.rand(steps, batch, action_dim, generator=gen) * 2 - 1
        begin = time.perf_counter()
        state = model_env.reset(start, return_as_np=False)
        for t in range(steps):
            _, _, _, state = model_env.step(actions[t], state, sample=False)
        return batch * steps / (time.perf_counter() - begin)

    def cem_ms(decisions: int) -> float:
        nonlocal cursor
        begin = time.perf_counter()
        for _ in range(decisions):
            agent.act(observations[cursor % len(observations)])
            cursor += 1
        return 1000 * (time.perf_counter() - begin) / decisions

    print(json.dumps({"ready": True, "mbrl": mbrl.__version__, "torch": torch.__version__}))
    sys.stdout.flush()
    for line in sys.stdin:
        words = line.split()
        if not words or words[0] == "quit":
            break
        count = int(words[1])
        if words[0] == "env":
            answer = {"rate": env_rate(count)}
        elif words[0] == "cem":
            answer = {"ms": cem_ms(count)}
        else:
            answer = {"error": f"unknown command {words[0]!r}"}
        print(json.dumps(answer))
        sys.stdout.flush()


if __name__ == "__main__":
    main()
