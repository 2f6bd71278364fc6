"""Suite hnn-toy: the authors' protocol in its grid, and every smoke job end to end."""

from __future__ import annotations

import json
import math
from pathlib import Path

import gymnasium as gym
import numpy as np
import torch

from physprior.suites import get_suite, hnn_toy, run_bench


def test_grid_follows_the_authors_protocol() -> None:
    grid = hnn_toy.jobs("paper", 2)
    cells = {(j.row, j.env_id, j.seed) for j in grid}
    assert len(cells) == len(grid) == 3 * 3 * 2
    by_env = {j.env_id: j.params for j in grid}
    two_body = by_env[hnn_toy.TWO_BODY]
    assert (two_body["steps"], two_body["batch_size"], two_body["noise"]) == (10_000, 200, 0.0)
    assert (two_body["trajectories"], two_body["test_trajectories"]) == (800, 200)
    assert two_body["env_kwargs"]["start"] == "authors"
    spring = by_env[hnn_toy.MASS_SPRING]
    assert (spring["trajectories"], spring["length"], spring["noise"]) == (25, 30, 0.1)
    # H = q^2 + p^2: the authors' mass-spring.
    env = gym.make(hnn_toy.MASS_SPRING, **spring["env_kwargs"]).unwrapped
    assert env.energy(np.array([0.3, 0.4])) == 0.3**2 + 0.4**2
    pendulum = gym.make(hnn_toy.PENDULUM, **by_env[hnn_toy.PENDULUM]["env_kwargs"]).unwrapped
    assert math.isclose(pendulum.energy(np.array([1.0, 0.5])), 3 * (1 - math.cos(1)) + 0.25)
    assert get_suite("hnn-toy") is hnn_toy.SUITE


def test_eval_starts_follow_the_authors_box() -> None:
    job = next(j for j in hnn_toy.jobs("paper", 1) if j.env_id == hnn_toy.MASS_SPRING)
    env = hnn_toy._env(job)
    starts = hnn_toy._eval_starts(job, env, 200)
    assert starts.shape == (200, 2)
    assert ((np.abs(starts) >= 0.2) & (np.abs(starts) <= 1.0)).all()
    assert (starts > 0).any() and (starts < 0).any()


def test_smoke_run_writes_results_and_report(tmp_path: Path) -> None:
    report = run_bench("hnn-toy", scale="smoke", seeds=1, out=tmp_path, progress=False)
    results = json.loads((tmp_path / "results.json").read_text())["results"]
    assert len(results) == 9
    hashes: dict[str, set[str]] = {}
    for r in results:
        assert set(hnn_toy.SUITE.metrics) <= set(r["metrics"])
        assert math.isfinite(r["metrics"]["energy_mse"]) and r["metrics"]["energy_mse"] >= 0
        p = r["job"]["params"]
        assert len(r["curves"]["error"]) == round(p["eval_time"] / p["dt"]) + 1
        hashes.setdefault(r["job"]["env_id"], set()).add(r["data_hash"])
        if r["job"]["row"] == hnn_toy.TRUE_FIELD:
            # RK4 on the true field: only integration error is left.
            assert r["metrics"]["energy_mse"] < 1e-6 and r["metrics"]["test_loss"] == 0
    # Every row of an env and seed trains and tests on the same data.
    assert all(len(h) == 1 for h in hashes.values()) and len(hashes) == 3
    text = report.read_text()
    assert "| HNN |" in text and "| Baseline NN |" in text and "0.171" in text
    assert text.count("**holds**") + text.count("**does not hold**") == 3
    assert (tmp_path / "energy-twobody-v0.png").is_file()


def test_test_loss_is_the_derivative_mse_on_the_test_inputs() -> None:
    job = next(
        j
        for j in hnn_toy.jobs("smoke", 1)
        if j.env_id == hnn_toy.MASS_SPRING and j.row == hnn_toy.BASELINE
    )
    from physprior.data import derivative_windows, generate_trajectories

    p = job.params
    streams = [int(s) for s in np.random.SeedSequence([0, 0]).generate_state(4)]
    train = generate_trajectories(
        job.env_id, p["trajectories"], p["length"] + 1, seed=streams[0], env_kwargs=p["env_kwargs"]
    )
    windows = derivative_windows(train, noise_std=p["noise"], seed=streams[2])
    model = hnn_toy._model(job, windows)
    test = generate_trajectories(
        job.env_id,
        p["test_trajectories"],
        p["length"] + 1,
        seed=streams[1],
        env_kwargs=p["env_kwargs"],
    )
    test_windows = derivative_windows(test, noise_std=p["noise"], seed=streams[3])
    inputs = torch.tensor(test_windows.states[:, 0], dtype=torch.float32)
    rates = (test_windows.states[:, 1] - test_windows.states[:, 0]) / p["dt"]
    with torch.no_grad():
        fitted = model.vector_field(inputs).double().numpy()
    expected = float(np.mean((fitted - rates) ** 2))
    assert math.isclose(hnn_toy.run_job(job).metrics["test_loss"], expected, rel_tol=1e-6)
