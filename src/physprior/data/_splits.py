"""Episode-level splits: train, (validation,) test sets that never share an episode."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ._dataset import TransitionDataset

_NAMES = {2: ("train", "test"), 3: ("train", "validation", "test")}


def split_episodes(
    dataset: TransitionDataset,
    test_fraction: float | None = None,
    *,
    fractions: Sequence[float] | None = None,
    seed: int,
) -> tuple[TransitionDataset, ...]:
    """Split `dataset` by episode at random: whole episodes go to one split each.

    Give either `test_fraction` (returns `(train, test)`) or `fractions`, one per split,
    summing to 1 (e.g. `(0.8, 0.1, 0.1)` for train, validation, test). Episode ids are
    permuted with `np.random.default_rng(seed)`; every split but the first takes the next
    `round(fraction * n)` of them (ties to even) and the first (train) the rest. Each split
    keeps its rows in file order.

    Raises ValueError for fractions outside (0, 1) or not summing to 1, and for a split that
    would be empty, e.g. "test_fraction 0.5 gives an empty test split: the dataset has 1
    episode".
    """
    if (test_fraction is None) == (fractions is None):
        raise TypeError("split_episodes takes either test_fraction or fractions, not both")
    if test_fraction is not None:
        _check_fraction(test_fraction, "test_fraction")
        parts: tuple[float, ...] = (1.0 - float(test_fraction), float(test_fraction))
        described = f"test_fraction {test_fraction}"
    else:
        assert fractions is not None
        parts = tuple(float(f) for f in fractions)
        if len(parts) < 2:
            raise ValueError(f"fractions must name at least 2 splits, got {len(parts)}")
        for f in parts:
            _check_fraction(f, "every fraction")
        if not np.isclose(sum(parts), 1.0, rtol=0.0, atol=1e-9):
            raise ValueError(f"fractions must sum to 1, got {sum(parts)} from {parts}")
        described = f"fractions {parts}"
    names = _NAMES.get(len(parts), tuple(f"#{k}" for k in range(len(parts))))

    ids = dataset.episode_ids
    n = len(ids)
    # Every split after the first gets its own share rounded (ties to even); the first
    # (train) takes the rest, so the held-out sizes do not depend on the order of the others.
    sizes = np.rint(np.asarray(parts[1:]) * n).astype(np.int64)
    edges = np.concatenate([[0], np.cumsum([n - sizes.sum(), *sizes])])
    for k, name in enumerate(names):
        if edges[k + 1] <= edges[k]:
            raise ValueError(
                f"{described} gives an empty {name} split: the dataset has {n} "
                f"episode{'s' if n != 1 else ''}"
            )
    order = np.random.default_rng(seed).permutation(ids)
    return tuple(dataset.select_episodes(order[edges[k] : edges[k + 1]]) for k in range(len(parts)))


def _check_fraction(value: float, name: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float, np.floating)):
        raise TypeError(f"{name} must be a number, got {type(value).__name__}")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"{name} must lie strictly between 0 and 1, got {value}")
