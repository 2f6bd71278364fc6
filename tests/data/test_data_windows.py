"""Windows, splits by episode and observation noise on hand-made datasets."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from physprior.data import Windows, add_noise, make_windows, split_episodes

LENGTHS = [5, 1, 8, 3, 2]  # transitions per episode


def _episode_of(value: np.ndarray) -> np.ndarray:
    return np.floor(value / 1000.0 + 1e-9).astype(np.int64)


def _check_inside_episodes(w: Windows, lengths: list[int] = LENGTHS) -> None:
    """Every state of every window comes from its episode, consecutively, actions aligned."""
    states = w.states[:, :, 0]  # 1000 e + t
    episodes = _episode_of(states)
    assert np.all(episodes == w.episode[:, None])
    np.testing.assert_array_equal(np.diff(states, axis=1), 1.0)
    np.testing.assert_array_equal(w.actions[:, :, 0], states[:, :-1])
    first_rows = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    np.testing.assert_array_equal(w.states[:, 0, 0] % 1000, w.start - first_rows[w.episode])


@pytest.mark.parametrize("length", [2, 3, 4, 6, 9])
def test_windows_never_cross_episode_ends(toy, length: int) -> None:
    ds = toy(LENGTHS)
    w = make_windows(ds, length)
    expected = sum(max(0, n + 1 - length + 1) for n in LENGTHS)
    assert len(w) == expected
    assert w.states.shape == (expected, length, 2)
    assert w.actions.shape == (expected, length - 1, 1)
    assert w.length == length and w.horizon == length - 1
    _check_inside_episodes(w)
    # The last state of a window may be an episode's final next_obs.
    if length == 9:
        np.testing.assert_array_equal(w.states[0, -1], ds.next_obs[np.cumsum(LENGTHS)[2] - 1])


def test_single_step_pairs_of_the_srnn_protocol(toy) -> None:
    """A trajectory of 10 states gives 9 pairs."""
    w = make_windows(toy([9, 9]), 2)
    assert w.states.shape == (18, 2, 2)
    _check_inside_episodes(w, [9, 9])


def test_stride_and_random_draws(toy) -> None:
    ds = toy(LENGTHS)
    strided = make_windows(ds, 3, stride=2)
    assert np.all(strided.states[:, 0, 0] % 1000 % 2 == 0)
    _check_inside_episodes(strided)

    total = len(make_windows(ds, 3))
    a = make_windows(ds, 3, count=total, seed=1)
    b = make_windows(ds, 3, count=total, seed=1)
    np.testing.assert_array_equal(a.states, b.states)
    assert len(np.unique(a.state_index)) == total  # distinct without replacement
    _check_inside_episodes(a)
    many = make_windows(ds, 3, count=5 * total, replace=True, seed=2)
    assert len(many) == 5 * total
    _check_inside_episodes(many)
    assert not np.array_equal(make_windows(ds, 3, count=5, seed=3).start, a.start[:5])


def test_window_errors_are_clear(toy) -> None:
    ds = toy(LENGTHS)
    with pytest.raises(
        ValueError, match=r"no window of 10 states fits: the longest episode has 9 states"
    ):
        make_windows(ds, 10)
    with pytest.raises(ValueError, match="length must be at least 2"):
        make_windows(ds, 1)
    with pytest.raises(ValueError, match="pass seed="):
        make_windows(ds, 3, count=4)
    with pytest.raises(ValueError, match=r"count=100 exceeds the \d+ distinct windows"):
        make_windows(ds, 3, count=100, seed=0)
    with pytest.raises(ValueError, match="stride must be positive"):
        make_windows(ds, 3, stride=0)
    with pytest.raises(TypeError, match="length must be an int"):
        make_windows(ds, 2.5)  # type: ignore[arg-type]


def test_a_break_in_the_chain_is_an_episode_boundary(toy) -> None:
    ds = toy([6])
    obs = ds.obs.copy()
    obs[3] += 0.5  # next_obs[2] != obs[3]: rows 0-2 and 3-5 are separate pieces
    broken = dataclasses.replace(ds, obs=obs)
    pairs = make_windows(broken, 2)
    np.testing.assert_array_equal(pairs.start, np.arange(6))
    np.testing.assert_array_equal(pairs.states[2], [ds.obs[2], ds.next_obs[2]])
    np.testing.assert_array_equal(pairs.states[3], [obs[3], ds.next_obs[3]])
    # No window of 3 states runs through the break.
    np.testing.assert_array_equal(make_windows(broken, 3).start, [0, 1, 3, 4])
    with pytest.raises(
        ValueError, match=r"has 4 states \(1 break\(s\) where next_obs\[i\] != obs\[i\+1\]"
    ):
        make_windows(broken, 5)


def test_windows_to_torch(toy) -> None:
    w = make_windows(toy(LENGTHS, dim=4, action_dim=3), 3)
    states, actions = w.to_torch(torch.float64)
    assert states.dtype == actions.dtype == torch.float64
    assert tuple(states.shape) == (len(w), 3, 4) and tuple(actions.shape) == (len(w), 2, 3)
    states32, _ = w.to_torch()
    assert states32.dtype == torch.float32
    assert len(w.take(np.arange(3))) == 3
    # An autonomous system's dataset has no action columns: (W, T, 0).
    autonomous = make_windows(toy([4, 4], action_dim=0), 3)
    assert autonomous.actions.shape == (6, 2, 0)
    assert tuple(autonomous.to_torch()[1].shape) == (6, 2, 0)


def test_episode_split_is_disjoint_and_complete(toy) -> None:
    ds = toy([3] * 20)
    train, test = split_episodes(ds, 0.25, seed=0)
    train_ids, test_ids = set(train.episode_ids), set(test.episode_ids)
    assert not train_ids & test_ids
    assert train_ids | test_ids == set(range(20))
    assert len(test_ids) == 5
    assert len(train) + len(test) == len(ds)
    # Whole episodes, rows in file order.
    assert np.all(np.diff(train.obs[:, 0]) > 0)
    again, _ = split_episodes(ds, 0.25, seed=0)
    np.testing.assert_array_equal(again.episode, train.episode)
    other, _ = split_episodes(ds, 0.25, seed=1)
    assert set(other.episode_ids) != train_ids

    parts = split_episodes(ds, fractions=(0.7, 0.15, 0.15), seed=0)
    ids = [set(p.episode_ids) for p in parts]
    assert [len(s) for s in ids] == [14, 3, 3]
    assert set().union(*ids) == set(range(20)) and sum(len(s) for s in ids) == 20


def test_empty_split_is_refused(toy) -> None:
    message = r"test_fraction 0\.5 gives an empty test split: the dataset has 1 episode$"
    with pytest.raises(ValueError, match=message):
        split_episodes(toy([4]), 0.5, seed=0)
    with pytest.raises(ValueError, match="empty validation split: the dataset has 4 episodes"):
        split_episodes(toy([2] * 4), fractions=(0.8, 0.1, 0.1), seed=0)
    with pytest.raises(ValueError, match="strictly between 0 and 1"):
        split_episodes(toy([2] * 4), 1.0, seed=0)
    with pytest.raises(ValueError, match="must sum to 1"):
        split_episodes(toy([2] * 4), fractions=(0.5, 0.2), seed=0)
    with pytest.raises(TypeError, match="either test_fraction or fractions"):
        split_episodes(toy([2] * 4), seed=0)


def test_noise_has_the_right_std_and_keeps_the_chain(toy) -> None:
    ds = toy([200] * 20, dim=4)
    noisy = add_noise(ds, 0.1, seed=0)
    delta = noisy.obs - ds.obs
    assert abs(delta.std() / 0.1 - 1) < 0.03
    assert abs(delta.mean()) < 0.005
    # One draw per observation: rows still chain, actions and rewards are untouched.
    same_episode = ds.episode[1:] == ds.episode[:-1]
    np.testing.assert_array_equal(noisy.next_obs[:-1][same_episode], noisy.obs[1:][same_episode])
    np.testing.assert_array_equal(noisy.actions, ds.actions)
    np.testing.assert_array_equal(noisy.rewards, ds.rewards)
    assert noisy.meta.extra["noise_std"] == pytest.approx(0.1)
    twice = add_noise(noisy, 0.1, seed=1)
    assert twice.meta.extra["noise_std"] == pytest.approx(0.1 * np.sqrt(2))
    np.testing.assert_array_equal(add_noise(ds, 0.1, seed=0).obs, noisy.obs)

    per_coordinate = add_noise(ds, [0.0, 0.0, 1.0, 2.0], seed=0)
    spread = (per_coordinate.obs - ds.obs).std(axis=0)
    np.testing.assert_array_equal(spread[:2], 0.0)
    np.testing.assert_allclose(spread[2:], [1.0, 2.0], rtol=0.05)


def test_overlapping_windows_share_their_noisy_states(toy) -> None:
    ds = toy(LENGTHS, dim=3)
    clean = make_windows(ds, 3)
    noisy = add_noise(clean, 0.3, seed=5)
    np.testing.assert_array_equal(noisy.actions, clean.actions)
    # Windows are in file order: consecutive starts in one episode overlap by two states.
    follows = (noisy.episode[1:] == noisy.episode[:-1]) & (noisy.start[1:] == noisy.start[:-1] + 1)
    assert follows.sum() > 5
    np.testing.assert_array_equal(noisy.states[1:][follows, :2], noisy.states[:-1][follows, 1:])
    # Noise on the dataset, then windows, is the same as windows, then noise.
    via_dataset = make_windows(add_noise(ds, 0.3, seed=5), 3)
    np.testing.assert_array_equal(via_dataset.states, noisy.states)
    sampled = make_windows(ds, 3, count=6, seed=0)
    np.testing.assert_array_equal(
        add_noise(sampled, 0.3, seed=5).states,
        make_windows(add_noise(ds, 0.3, seed=5), 3, count=6, seed=0).states,
    )


def test_noise_errors(toy) -> None:
    ds = toy([3], dim=2)
    with pytest.raises(ValueError, match="std has 3 entries; the states have dimension 2"):
        add_noise(ds, [0.1, 0.1, 0.1], seed=0)
    with pytest.raises(ValueError, match="non-negative"):
        add_noise(ds, -1.0, seed=0)
    with pytest.raises(TypeError, match="TransitionDataset or Windows"):
        add_noise(ds.obs, 0.1, seed=0)  # type: ignore[type-var]


def test_float32_datasets_stay_float32(toy) -> None:
    ds = toy(LENGTHS, dtype=np.float32)
    w = make_windows(add_noise(ds, 0.1, seed=0), 2)
    assert w.states.dtype == np.float32
