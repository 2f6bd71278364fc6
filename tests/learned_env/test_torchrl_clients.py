"""TorchRL as a client: its `GymEnv` on physics and learned envs, its `GymWrapper` on the
learned vector env, each passing `check_env_specs` (the `torchrl` extra)."""

from __future__ import annotations

import warnings
from pathlib import Path

import gymnasium as gym
import pytest
import torch

import physprior
from physprior.models import make
from physprior.training import save_model

pytest.importorskip("torchrl", reason="the torchrl extra is not installed")

from torchrl.envs import GymEnv, GymWrapper
from torchrl.envs.utils import check_env_specs

INVERTED = "physprior/InvertedPendulumFull-v0"


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    core = gym.make(INVERTED).unwrapped
    torch.manual_seed(0)
    model = make("mlp", obs_dim=4, action_dim=1, q_dim=core.q_dim, dt=core.dt, env_id=INVERTED,
                 hidden=16)  # fmt: skip
    return save_model(model, tmp_path_factory.mktemp("torchrl") / "mlp")


@pytest.fixture(autouse=True)
def _quiet() -> object:
    with warnings.catch_warnings():  # TorchRL's notes on spec inference and gym versions
        warnings.simplefilter("ignore")
        yield


@pytest.mark.parametrize("env_id", ["physprior/Pendulum-v0", "physprior/SpringChain-v0", INVERTED])
def test_torchrl_gym_env_on_physprior_envs(env_id: str) -> None:
    # TorchRL passes `frameskip` and retries without it on Python's own TypeError wording.
    env = GymEnv(env_id)
    check_env_specs(env)
    rollout = env.rollout(20)
    assert rollout["next", "observation"].shape[-1] == env.observation_spec["observation"].shape[-1]


def test_torchrl_on_the_learned_env_and_its_vector_env(checkpoint: Path) -> None:
    single = GymEnv("physprior/Learned-v0", model_path=str(checkpoint))
    check_env_specs(single)
    vector = GymWrapper(physprior.LearnedVectorEnv(checkpoint, num_envs=4))
    check_env_specs(vector)
    rollout = vector.rollout(50, break_when_any_done=False)
    assert rollout.shape == torch.Size([4, 50])
    assert torch.isfinite(rollout["next", "observation"]).all()
