"""Data collection: every recorded row replays in the env, kills leave valid files, resumes.

Replay: `reset(options={"state": obs})` then `step(action)` must give the row's `next_obs`,
reward and termination. For the physics envs the step is a pure function of the state and the
action, so a row replays bit for bit. For MuJoCo it does too, except on steps where the
constraint solver is active (InvertedPendulum's slider at its joint limit): the solver
warm-starts from the previous step's accelerations, which a reset to `[qpos, qvel]` does not
carry, so those rows agree to the solver's rounding (~1e-17 here), checked to 1e-12.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors import safe_open

from physprior.agents.collect import CollectConfig, collect, sac_paths
from physprior.data import TransitionDataset

CART = "physprior/InvertedPendulumFull-v0"  # falls within a few dozen steps; actions in [-3, 3]
PENDULUM = "physprior/Pendulum-v0"
#: Small and quick SAC: learning starts well inside the run, so gradient steps happen.
TINY_SAC = {
    "learning_starts": 100,
    "batch_size": 64,
    "policy_kwargs": {"net_arch": [32, 32]},
}


def _replay(ds: TransitionDataset, *, exact: bool) -> int:
    """Replay every row; returns how many matched bit for bit (all of them when `exact`)."""
    env = gym.make(ds.meta.env_id)
    same = 0
    for i in range(len(ds)):
        env.reset(options={"state": ds.obs[i]})
        next_obs, reward, terminated, _, _ = env.step(ds.actions[i])
        if exact:
            np.testing.assert_array_equal(next_obs, ds.next_obs[i], err_msg=f"row {i}")
            assert reward == ds.rewards[i], f"row {i}"
        else:
            np.testing.assert_allclose(next_obs, ds.next_obs[i], rtol=1e-12, atol=1e-12)
            assert reward == pytest.approx(ds.rewards[i], rel=1e-12, abs=1e-12), f"row {i}"
        assert terminated == ds.terminated[i], f"row {i}"
        same += bool(np.array_equal(next_obs, ds.next_obs[i]) and reward == ds.rewards[i])
    env.close()
    return same


def _check_episodes(ds: TransitionDataset) -> None:
    """Ids 0, 1, ... in order; every episode ends with exactly one flag; rows chain inside."""
    ends = np.flatnonzero(ds.terminated | ds.truncated)
    last_rows = np.flatnonzero(np.r_[ds.episode[1:] != ds.episode[:-1], True])
    np.testing.assert_array_equal(ends, last_rows)
    assert not (ds.terminated & ds.truncated).any()
    np.testing.assert_array_equal(np.unique(ds.episode), np.arange(len(last_rows)))
    assert np.all(np.diff(ds.episode) >= 0)
    inside = ds.episode[1:] == ds.episode[:-1]
    np.testing.assert_array_equal(ds.next_obs[:-1][inside], ds.obs[1:][inside])


def _header(state_path: Path) -> dict[str, object]:
    with safe_open(str(state_path), framework="pt") as handle:
        return json.loads((handle.metadata() or {})["physprior"])


def test_random_agent_replays_exactly_and_is_seeded(tmp_path: Path) -> None:
    config = CollectConfig(
        PENDULUM, 300, str(tmp_path / "a.npz"), agent="random", seed=3, progress=False
    )
    result = collect(config)
    ds = TransitionDataset.load(result.path)
    assert len(ds) == 300 and result.new_rows == 300
    assert ds.meta.agent == "random" and ds.meta.seed == 3 and ds.meta.steps == 300
    assert ds.meta.extra["complete"] is True
    # The registered time limit (200) ends the first episode inside the run.
    assert ds.episode_ids.tolist() == [0, 1] and ds.truncated[199]
    _check_episodes(ds)
    assert _replay(ds, exact=True) == len(ds)
    again = collect(
        CollectConfig(
            PENDULUM, 300, str(tmp_path / "b.npz"), agent="random", seed=3, progress=False
        )
    ).dataset
    np.testing.assert_array_equal(again.actions, ds.actions)
    np.testing.assert_array_equal(again.next_obs, ds.next_obs)


def test_sac_on_full_env_records_every_step(tmp_path: Path) -> None:
    out = tmp_path / "cart.npz"
    result = collect(
        CollectConfig(CART, 300, str(out), seed=1, progress=False, sac_kwargs=TINY_SAC)
    )
    ds = TransitionDataset.load(out)
    assert len(ds) == 300 and ds.meta.agent == "sac"
    assert ds.terminated.sum() >= 3  # the pole falls: episodes end inside the run
    _check_episodes(ds)
    # Actions are in env units ([-3, 3]), not SB3's [-1, 1].
    assert np.abs(ds.actions).max() > 1.0 and np.abs(ds.actions).max() <= 3.0
    same = _replay(ds, exact=False)
    assert same >= 0.9 * len(ds)  # all but the rows at the slider's joint limit
    zip_path, state_path = sac_paths(out)
    assert result.policy_path == zip_path and zipfile.is_zipfile(zip_path)
    header = _header(state_path)
    assert header["rows"] == 300 and header["num_timesteps"] == 300
    assert header["n_updates"] == 200  # one gradient step per step after learning_starts


def test_sac_on_physics_env_replays_exactly(tmp_path: Path) -> None:
    result = collect(
        CollectConfig(
            PENDULUM,
            300,
            str(tmp_path / "p.npz"),
            progress=False,
            max_episode_steps=120,
            sac_kwargs=TINY_SAC,
        )
    )
    ds = result.dataset
    assert ds.episode_ids.tolist() == [0, 1, 2]
    assert ds.truncated.sum() == 3 and not ds.terminated.any()  # two time limits and the end
    _check_episodes(ds)
    assert _replay(ds, exact=True) == len(ds)


@pytest.mark.parametrize("sig", [signal.SIGKILL, signal.SIGINT])
def test_killed_run_leaves_valid_file_and_resume_continues(tmp_path: Path, sig: int) -> None:
    out = tmp_path / "kill.npz"
    script = (
        "from physprior.agents.collect import CollectConfig, collect\n"
        f"collect(CollectConfig({PENDULUM!r}, 10**7, {str(out)!r}, agent='random', seed=5, "
        "flush_every=200, max_episode_steps=70, progress=False))\n"
    )
    # A shell that starts a job in the background (`cmd &`) makes it ignore SIGINT, and Python
    # then installs no KeyboardInterrupt handler: give the child the default disposition.
    proc = subprocess.Popen(
        [sys.executable, "-c", script],
        stderr=subprocess.DEVNULL,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL),
    )
    try:
        deadline = time.monotonic() + 60
        while not out.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.05)
        time.sleep(0.3)  # let it run past a flush or two: the kill lands mid-way
    finally:
        proc.send_signal(sig)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
            raise
    assert proc.returncode != 0
    ds = TransitionDataset.load(out)  # valid, whatever moment the kill came
    n = len(ds)
    # SIGKILL leaves the last regular flush; SIGINT flushes every row recorded so far.
    assert n > 0 and (n % 200 == 0 or sig == signal.SIGINT) and not ds.meta.extra["complete"]
    _check_episodes(ds)
    assert ds.truncated[-1]  # the episode cut by the kill ends truncated in the file

    with pytest.raises(ValueError, match="exists; pass resume=True"):
        collect(
            CollectConfig(
                PENDULUM,
                n + 150,
                str(out),
                agent="random",
                seed=5,
                max_episode_steps=70,
                progress=False,
            )
        )
    result = collect(
        CollectConfig(
            PENDULUM,
            n + 150,
            str(out),
            agent="random",
            seed=5,
            max_episode_steps=70,
            resume=True,
            progress=False,
        )
    )
    both = TransitionDataset.load(out)
    assert len(both) == n + 150 and result.new_rows == 150
    assert both.meta.extra["resumed_at"] == [n] and both.meta.extra["complete"] is True
    _check_episodes(both)
    assert _replay(both.take(np.arange(n, n + 150)), exact=True) == 150
    # The resumed run is the run: every row as an uninterrupted one records it, bit for bit.
    whole = collect(
        CollectConfig(
            PENDULUM,
            n + 150,
            str(tmp_path / "whole.npz"),
            agent="random",
            seed=5,
            flush_every=200,
            max_episode_steps=70,
            progress=False,
        )
    ).dataset
    for name in ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode"):
        np.testing.assert_array_equal(getattr(both, name), getattr(whole, name), err_msg=name)


def test_random_resume_on_mujoco_is_bit_identical(tmp_path: Path) -> None:
    """Walker2d's contacts make MuJoCo's solver start from the previous step's accelerations:
    a resume restores them too, so the rows after it match an uninterrupted run exactly
    (without them, 13 rows of this run differed by up to 3e-13)."""
    walker = "physprior/Walker2dFull-v0"

    def run(steps: int, out: str, resume: bool = False) -> TransitionDataset:
        config = CollectConfig(walker, steps, str(tmp_path / out), agent="random", seed=1,
                               resume=resume, progress=False)  # fmt: skip
        return collect(config).dataset

    whole = run(800, "whole.npz")
    run(437, "part.npz")  # ends inside an episode
    resumed = run(800, "part.npz", resume=True)
    for name in ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(whole, name), err_msg=name)


def test_sac_crash_flushes_and_resume_is_the_uninterrupted_run(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A crash keeps every recorded row; the resume continues from the agent's last flush (row
    200), records the rows after it again, and the whole equals an uninterrupted run, bit for
    bit: same actions, same states, same episodes."""
    from physprior.envs.pendulum import PendulumEnv

    def config(out: str, resume: bool = False) -> CollectConfig:
        return CollectConfig(PENDULUM, 320, str(tmp_path / out), seed=2, flush_every=100,
                             progress=False, max_episode_steps=120, sac_kwargs=TINY_SAC,
                             resume=resume)  # fmt: skip

    whole = collect(config("whole.npz")).dataset
    calls = {"n": 0}
    step = PendulumEnv.step

    def failing_step(self: PendulumEnv, action: object) -> object:
        calls["n"] += 1
        if calls["n"] == 231:
            raise RuntimeError("simulated crash")
        return step(self, action)

    monkeypatch.setattr(PendulumEnv, "step", failing_step)
    with pytest.raises(RuntimeError, match="simulated crash"):
        collect(config("crash.npz"))
    monkeypatch.setattr(PendulumEnv, "step", step)

    out = tmp_path / "crash.npz"
    ds = TransitionDataset.load(out)
    assert len(ds) == 230  # flushed on the error: every step before it
    _zip, state_path = sac_paths(out)
    header = _header(state_path)
    assert header["rows"] == 200 and header["n_updates"] == 100  # the last regular flush

    with pytest.warns(UserWarning, match="continues from row 200 and records the 30 after it"):
        result = collect(config("crash.npz", resume=True))
    both = result.dataset
    assert len(both) == 320 and result.new_rows == 120
    _check_episodes(both)
    for name in ("obs", "actions", "next_obs", "rewards", "terminated", "truncated", "episode"):
        np.testing.assert_array_equal(getattr(both, name), getattr(whole, name), err_msg=name)
    header = _header(state_path)
    assert header["num_timesteps"] == 320 and header["n_updates"] == 220
    assert _replay(both.take(np.arange(200, 320)), exact=True) == 120


def test_sac_extends_a_finished_run_as_a_new_part(tmp_path: Path) -> None:
    """Extending a finished SAC run to more steps (its learning_starts and buffer size follow
    the new count) continues the agent and starts a new episode; the rows replay exactly."""
    out = tmp_path / "sac.npz"

    def run(steps: int, resume: bool) -> TransitionDataset:
        settings = {"max_episode_steps": 120, "sac_kwargs": TINY_SAC, "resume": resume}
        config = CollectConfig(PENDULUM, steps, str(out), seed=0, progress=False, **settings)
        return collect(config).dataset

    first = run(150, resume=False)
    longer = run(230, resume=True)
    np.testing.assert_array_equal(longer.actions[:150], first.actions)
    assert longer.episode[150] == first.episode[-1] + 1
    _check_episodes(longer)
    assert _header(sac_paths(out)[1])["num_timesteps"] == 230
    assert _replay(longer.take(np.arange(150, 230)), exact=True) == 80


def test_agent_state_round_trip_restores_weights_optimisers_and_buffer() -> None:
    from stable_baselines3.common.monitor import Monitor
    from stable_baselines3.common.vec_env import DummyVecEnv

    from physprior.agents.collect._sac import (
        ExactReward,
        make_sac,
        refill_buffer,
        restore_agent_state,
        save_agent_state,
    )
    from physprior.data import from_replay_buffer

    def vec() -> DummyVecEnv:
        return DummyVecEnv([lambda: Monitor(ExactReward(gym.make(CART, max_episode_steps=30)))])

    kwargs = {**TINY_SAC, "learning_starts": 50, "buffer_size": 1000}
    trained = make_sac(vec(), 0, kwargs)
    trained.learn(150)
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "state.safetensors"
        save_agent_state(trained, path, 150)
        fresh = make_sac(vec(), 99, kwargs)
        assert restore_agent_state(fresh, path).rows == 150
    for key, value in trained.policy.state_dict().items():
        torch.testing.assert_close(fresh.policy.state_dict()[key], value, rtol=0, atol=0)
    assert trained.log_ent_coef is not None and fresh.log_ent_coef is not None
    torch.testing.assert_close(fresh.log_ent_coef, trained.log_ent_coef, rtol=0, atol=0)
    for mine, theirs in (
        (fresh.actor.optimizer, trained.actor.optimizer),
        (fresh.critic.optimizer, trained.critic.optimizer),
        (fresh.ent_coef_optimizer, trained.ent_coef_optimizer),
    ):
        assert mine is not None and theirs is not None
        a, b = mine.state_dict(), theirs.state_dict()
        assert a["param_groups"] == b["param_groups"]
        for index, entries in b["state"].items():
            for name, value in entries.items():
                torch.testing.assert_close(a["state"][index][name], value, rtol=0, atol=0)
    assert (fresh.num_timesteps, fresh._n_updates) == (150, 100)

    # The buffer refilled from the dataset holds what SB3 stored, actions to float32 rounding.
    dataset = from_replay_buffer(trained.replay_buffer, gym.make(CART))
    refill_buffer(fresh, dataset)
    old, new = trained.replay_buffer, fresh.replay_buffer
    assert (new.pos, new.full) == (old.pos, old.full)
    for name in ("observations", "next_observations", "rewards", "dones", "timeouts"):
        got, want = getattr(new, name)[: old.pos], getattr(old, name)[: old.pos]
        if name in ("dones", "timeouts"):
            # The newest, unfinished episode ends `truncated` in the dataset: done by timeout.
            got, want = got[:-1], want[:-1]
        np.testing.assert_array_equal(got, want, err_msg=name)
    np.testing.assert_allclose(new.actions[: old.pos], old.actions[: old.pos], rtol=0, atol=1e-6)


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"env_id": "physprior/Nope-v0"}, "unknown environment id 'physprior/Nope-v0'"),
        ({"agent": "ppo"}, "agent must be 'sac' or 'random', got 'ppo'"),
        ({"steps": 0}, "steps must be at least 1, got 0"),
        ({"seed": -1}, "seed must be at least 0, got -1"),
        ({"flush_every": 0}, "flush_every must be at least 1"),
        ({"agent": "random", "sac_kwargs": {"gamma": 0.9}}, "sac_kwargs are for agent='sac'"),
        ({"sac_kwargs": {"seed": 1}}, "sac_kwargs may not set seed"),
    ],
)
def test_bad_config_gives_one_line_error(
    tmp_path: Path, changes: dict[str, object], message: str
) -> None:
    fields: dict[str, object] = {"env_id": PENDULUM, "steps": 10, "out": str(tmp_path / "x.npz")}
    fields.update(changes)
    with pytest.raises(ValueError) as err:
        collect(CollectConfig(**fields, progress=False))
    assert message in str(err.value) and "\n" not in str(err.value)
    assert not (tmp_path / "x.npz").exists()


def test_resume_refuses_another_run(tmp_path: Path) -> None:
    out = str(tmp_path / "r.npz")
    collect(CollectConfig(PENDULUM, 20, out, agent="random", seed=1, progress=False))
    with pytest.raises(ValueError, match=r"seed \(1 in the file, 2 now\)"):
        collect(
            CollectConfig(PENDULUM, 40, out, agent="random", seed=2, resume=True, progress=False)
        )
    with pytest.raises(ValueError, match="already holds 20 rows, more than steps=10"):
        collect(
            CollectConfig(PENDULUM, 10, out, agent="random", seed=1, resume=True, progress=False)
        )
    # A finished run resumed to the same length is left as it is, file untouched.
    before = Path(out).read_bytes()
    same = collect(
        CollectConfig(PENDULUM, 20, out, agent="random", seed=1, resume=True, progress=False)
    )
    assert same.new_rows == 0 and len(same.dataset) == 20
    assert Path(out).read_bytes() == before


def test_sac_learning_creates_no_logger_folder(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from stable_baselines3.common.vec_env import DummyVecEnv

    from physprior.agents.collect._sac import make_sac

    # SB3's default logger makes this folder (else an `SB3-<date>` one in the temp dir).
    logdir = tmp_path / "sb3-logs"
    monkeypatch.setenv("SB3_LOGDIR", str(logdir))
    agent = make_sac(DummyVecEnv([lambda: gym.make(CART, max_episode_steps=20)]), 0, TINY_SAC)
    agent.learn(30)
    assert not logdir.exists()
