"""The mbrl-lib side of `pets_vs_mbrl_lib.py`: mbrl-lib's PETS, with the real env elsewhere.

Not for direct use. `pets_vs_mbrl_lib.py` hosts the real env (physprior's, which needs
gymnasium 1.x; mbrl 0.2.0 pins 0.26.3) and starts this script in the mbrl-lib venv. It sends
one JSON object per line on stdin and reads one JSON line back per command:

- `{"cmd": "add", "obs": (T, D), "action": (T, A), "next_obs": (T, D), "reward": (T,),
  "terminated": (T,), "truncated": (T,)}`: one episode's transitions into the replay buffer
  -> `{"stored": N}`;
- `{"cmd": "train"}`: `mbrl.util.common.train_model_and_save_model_and_data` on the whole
  buffer (as `mbrl.algorithms.pets.train` calls it before each planned episode)
  -> `{"seconds": s}`;
- `{"cmd": "reset"}`: `agent.reset()` at an episode's start -> `{}`;
- `{"cmd": "act", "obs": (D,)}`: `agent.act(obs)` -> `{"action": (A,), "seconds": s}`, the
  time of `act` alone (no pipe);
- `{"cmd": "quit"}`.

Everything else is built as `mbrl.algorithms.pets.train` builds it, from an omegaconf config
laid out as mbrl-lib's example configs (`algorithm: pets`, `dynamics_model:
gaussian_mlp_ensemble`, `action_optimizer: cem`, `overrides: pets_halfcheetah`), with the
fields the driver sets on the command line (first argument, JSON): `seed`, `threads`,
`obs_dim`, `action_dim`, `capacity`, `trial_length`, `ensemble`, `hidden`, `layers`,
`propagation` (`fixed_model` is TS-inf), `particles`, `horizon`, `population`,
`iterations`, `elite_ratio`, `alpha`, `model_lr`, `model_wd`, `model_batch_size`,
`epochs`, `patience`, `validation_ratio`, `velocity_index`, `ctrl_cost_weight`.

The reward is computed from the predicted next observation, as mbrl-lib's reward functions
are (`reward_fn(action, next_obs)`): `next_obs[velocity_index] - ctrl_cost_weight * |a|^2`,
the x velocity at the step's end standing in for the env's mean velocity over the step.
"""

from __future__ import annotations

import json
import sys
import time

import mbrl.env.termination_fns as termination_fns
import mbrl.models
import mbrl.planning
import mbrl.util.common
import numpy as np
import omegaconf
import torch
from _mbrl_lib_side import Spaces


def config(c: dict) -> omegaconf.DictConfig:
    """mbrl-lib's PETS example config with the driver's fields filled in."""
    return omegaconf.OmegaConf.create(
        {
            "seed": c["seed"],
            "device": "cpu",
            "algorithm": {
                "name": "pets",
                "agent": {
                    "_target_": "mbrl.planning.TrajectoryOptimizerAgent",
                    # hydra 1.3 instantiates nested `_target_`s first; the optimizer's bounds
                    # are only filled in by TrajectoryOptimizer, so it must stay a config.
                    "_recursive_": False,
                    "action_lb": "???",
                    "action_ub": "???",
                    "planning_horizon": c["horizon"],
                    "optimizer_cfg": {
                        "_target_": "mbrl.planning.CEMOptimizer",
                        "num_iterations": c["iterations"],
                        "elite_ratio": c["elite_ratio"],
                        "population_size": c["population"],
                        "alpha": c["alpha"],
                        "lower_bound": "???",
                        "upper_bound": "???",
                        "return_mean_elites": True,
                        "device": "cpu",
                        "clipped_normal": False,
                    },
                    "replan_freq": 1,
                    "verbose": False,
                },
                "normalize": True,
                "normalize_double_precision": True,
                "target_is_delta": True,
                "learned_rewards": False,
                "num_particles": c["particles"],
                "dataset_size": c["capacity"],
            },
            "dynamics_model": {
                "_target_": "mbrl.models.GaussianMLP",
                "_recursive_": False,  # GaussianMLP instantiates its activation's config
                "device": "cpu",
                "num_layers": c["layers"],
                "ensemble_size": c["ensemble"],
                "hid_size": c["hidden"],
                "deterministic": False,
                "propagation_method": c["propagation"],
                "learn_logvar_bounds": False,
                "activation_fn_cfg": {"_target_": "torch.nn.SiLU"},
            },
            "overrides": {
                "num_steps": c["capacity"],
                "trial_length": c["trial_length"],
                "model_lr": c["model_lr"],
                "model_wd": c["model_wd"],
                "model_batch_size": c["model_batch_size"],
                "validation_ratio": c["validation_ratio"],
                "num_epochs_train_model": c["epochs"],
                "patience": c["patience"],
                "learned_rewards": False,
            },
        }
    )


def main() -> None:
    c = json.loads(sys.argv[1])
    torch.set_num_threads(c["threads"])
    np.random.seed(c["seed"])  # noqa: NPY002  (as mbrl-lib's examples/main.py seeds)
    torch.manual_seed(c["seed"])
    cfg = config(c)
    obs_shape, act_shape = (c["obs_dim"],), (c["action_dim"],)
    spaces = Spaces(c["obs_dim"], c["action_dim"])
    model = mbrl.util.common.create_one_dim_tr_model(cfg, obs_shape, act_shape)
    rng = np.random.default_rng(seed=c["seed"])
    buffer = mbrl.util.common.create_replay_buffer(
        cfg, obs_shape, act_shape, rng=rng,
        obs_type=np.double, action_type=np.double, reward_type=np.double,
    )  # fmt: skip
    velocity, ctrl = c["velocity_index"], c["ctrl_cost_weight"]

    def reward_fn(action: torch.Tensor, next_obs: torch.Tensor) -> torch.Tensor:
        return (next_obs[:, velocity] - ctrl * action.square().sum(dim=1)).view(-1, 1)

    generator = torch.Generator().manual_seed(c["seed"])
    model_env = mbrl.models.ModelEnv(
        spaces, model, termination_fns.no_termination, reward_fn, generator=generator
    )
    trainer = mbrl.models.ModelTrainer(
        model, optim_lr=cfg.overrides.model_lr, weight_decay=cfg.overrides.model_wd
    )
    agent = mbrl.planning.create_trajectory_optim_agent_for_model(
        model_env, cfg.algorithm.agent, num_particles=cfg.algorithm.num_particles
    )

    def answer(reply: dict) -> None:
        print(json.dumps(reply))
        sys.stdout.flush()

    answer({"ready": True, "mbrl": mbrl.__version__, "torch": torch.__version__})
    for line in sys.stdin:
        msg = json.loads(line)
        cmd = msg["cmd"]
        if cmd == "quit":
            break
        if cmd == "add":
            for t in range(len(msg["reward"])):
                buffer.add(
                    np.asarray(msg["obs"][t]),
                    np.asarray(msg["action"][t]),
                    np.asarray(msg["next_obs"][t]),
                    float(msg["reward"][t]),
                    bool(msg["terminated"][t]),
                    bool(msg["truncated"][t]),
                )
            answer({"stored": buffer.num_stored})
        elif cmd == "train":
            begin = time.perf_counter()
            mbrl.util.common.train_model_and_save_model_and_data(
                model, trainer, cfg.overrides, buffer, work_dir=None
            )
            answer({"seconds": time.perf_counter() - begin})
        elif cmd == "reset":
            agent.reset()
            answer({})
        elif cmd == "act":
            obs = np.asarray(msg["obs"], dtype=np.float64)
            begin = time.perf_counter()
            action = agent.act(obs)
            answer({"action": np.asarray(action).tolist(),
                    "seconds": time.perf_counter() - begin})  # fmt: skip
        else:
            answer({"error": f"unknown command {cmd!r}"})


if __name__ == "__main__":
    main()
