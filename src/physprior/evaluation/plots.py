"""PNG plots of model comparisons: error against horizon, trajectories, returns.

matplotlib (a dependency of physprior) is imported on first use, to keep `import physprior`
light, with the Agg backend so that plotting works on machines without a display. Every function
writes its figure atomically (a temporary file, then a rename) and returns the path.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from physprior._io import atomic_write

__all__ = [
    "distinct_colors",
    "place_legend",
    "plot_calibration",
    "plot_error_curves",
    "plot_frames",
    "plot_learning_curves",
    "plot_returns",
    "plot_trajectories",
]


def _pyplot() -> Any:
    try:
        import matplotlib
    except ImportError as err:  # pragma: no cover - depends on the install
        raise ImportError(
            "plots need matplotlib, a dependency of physprior: pip install 'matplotlib>=3.8'"
        ) from err
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def distinct_colors(ax: Any, lines: int) -> None:
    """Give `ax` a colour cycle with a colour per line: matplotlib's default repeats after 10."""
    if lines > 10:
        plt = _pyplot()
        ax.set_prop_cycle(color=plt.get_cmap("tab20").colors[: min(lines, 20)])


def place_legend(ax: Any, lines: int) -> None:
    """A legend inside the axes for a few lines; beside them, where it hides none, for many."""
    if lines > 6:
        ax.legend(fontsize="small", loc="upper left", bbox_to_anchor=(1.02, 1.0))
    else:
        ax.legend()


def _save(figure: Any, path: str | os.PathLike[str]) -> Path:
    plt = _pyplot()
    try:
        return atomic_write(
            path, lambda handle: figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
        )
    finally:
        plt.close(figure)


def plot_error_curves(
    curves: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    dt: float = 1.0,
    title: str = "Open-loop rollout error",
    ylabel: str = "relative state error",
) -> Path:
    """Mean relative state error against the prediction horizon, one line per model.

    `curves[name][t]` is the error `t` steps after the initial state (`EvalResult.error_curve`;
    the value at `t = 0` is skipped: it is zero). The horizon axis is in the env's time units
    (`t * dt`); the error axis is logarithmic. Any other relative error per step (an energy
    violation, say) plots the same way under its own `ylabel`.
    """
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(6, 4))
    distinct_colors(ax, len(curves))
    for name, curve in curves.items():
        values = np.asarray(curve, dtype=float)[1:]
        finite = np.isfinite(values) & (values > 0)
        times = np.arange(1, len(values) + 1) * dt
        ax.plot(times[finite], values[finite], label=name)
    ax.set_yscale("log")
    ax.set_xlabel("horizon (time units)" if dt != 1.0 else "horizon (steps)")
    ax.set_ylabel(ylabel)
    ax.set_title(title)
    ax.grid(True, which="both", alpha=0.3)
    place_legend(ax, len(curves))
    return _save(figure, path)


def plot_trajectories(
    true: ArrayLike,
    predicted: Mapping[str, ArrayLike],
    path: str | os.PathLike[str],
    *,
    dims: Sequence[int] | None = None,
    labels: Sequence[str] | None = None,
    dt: float = 1.0,
    title: str = "Predicted and true trajectory",
) -> Path:
    """One panel per state coordinate: the true trajectory and each model's prediction.

    `true` is `(T + 1, D)`, `predicted[name]` `(T + 1, D)`; `dims` picks the coordinates to show
    (default: up to the first four), `labels` names all `D` coordinates.
    """
    plt = _pyplot()
    truth = np.asarray(true, dtype=float)
    if truth.ndim != 2:
        raise ValueError(f"true trajectory must be (T + 1, D), got shape {truth.shape}")
    shown = list(dims) if dims is not None else list(range(min(4, truth.shape[1])))
    times = np.arange(truth.shape[0]) * dt
    figure, axes = plt.subplots(len(shown), 1, figsize=(6, 1.8 * len(shown) + 0.6), sharex=True)
    axes = np.atleast_1d(axes)
    for ax, d in zip(axes, shown, strict=True):
        distinct_colors(ax, len(predicted))
        ax.plot(times, truth[:, d], color="black", linewidth=2, label="true")
        for name, states in predicted.items():
            values = np.asarray(states, dtype=float)
            if values.shape != truth.shape:
                raise ValueError(
                    f"prediction {name!r} has shape {values.shape}, expected {truth.shape}"
                )
            ax.plot(times, values[:, d], label=name)
        ax.set_ylabel(labels[d] if labels is not None else f"z[{d}]")
        ax.grid(True, alpha=0.3)
    axes[0].set_title(title)
    axes[0].legend(fontsize="small", ncol=3)
    axes[-1].set_xlabel("time (time units)" if dt != 1.0 else "time (steps)")
    return _save(figure, path)


def plot_returns(
    returns: Mapping[str, Sequence[float]],
    path: str | os.PathLike[str],
    *,
    title: str = "Return on the real environment",
) -> Path:
    """A horizontal bar per agent: mean episode return, with its standard deviation as an
    error bar when there are several episodes."""
    plt = _pyplot()
    names = list(returns)
    means = [float(np.mean(returns[n])) if len(returns[n]) else math.nan for n in names]
    stds = [float(np.std(returns[n])) if len(returns[n]) > 1 else 0.0 for n in names]
    figure, ax = plt.subplots(figsize=(6, 0.45 * len(names) + 1.2))
    positions = np.arange(len(names))[::-1]  # first agent on top
    ax.barh(positions, means, xerr=stds if any(stds) else None, capsize=4, alpha=0.8)
    ax.set_yticks(positions, names)
    ax.axvline(0.0, color="black", linewidth=0.8)
    ax.set_xlabel("episode return")
    ax.set_title(title)
    ax.grid(True, axis="x", alpha=0.3)
    return _save(figure, path)


def plot_learning_curves(
    curves: Mapping[str, Sequence[tuple[Sequence[float], Sequence[float]]]],
    path: str | os.PathLike[str],
    *,
    title: str = "Return against real environment steps",
) -> Path:
    """Learning curves: per agent, a line of the mean episode return against real env steps
    over its seeds, and a band from the lowest to the highest seed.

    `curves[agent]` holds one `(steps, returns)` per seed: the real env steps at which each
    episode ended and its return. Seeds are compared on a common grid of steps, each holding
    the return of its latest finished episode (nothing before its first)."""
    plt = _pyplot()
    figure, ax = plt.subplots(figsize=(7, 4.2))
    distinct_colors(ax, len(curves))
    for name, given in curves.items():
        runs = [(np.asarray(s, float), np.asarray(r, float)) for s, r in given if len(s)]
        if not runs:
            continue
        grid = np.unique(np.concatenate([s for s, _ in runs]))
        rows = []
        for steps, returns in runs:
            index = np.searchsorted(steps, grid, side="right") - 1
            rows.append(np.where(index >= 0, returns[np.clip(index, 0, None)], np.nan))
        table = np.vstack(rows)
        with np.errstate(invalid="ignore"):
            mean = np.nanmean(table, axis=0) if len(rows) > 1 else table[0]
        label = name if len(rows) == 1 else f"{name} ({len(rows)} seeds)"
        (line,) = ax.step(grid, mean, where="post", label=label)
        if len(rows) > 1:
            ax.fill_between(
                grid,
                np.nanmin(table, axis=0),
                np.nanmax(table, axis=0),
                step="post",
                alpha=0.2,
                color=line.get_color(),
            )
    ax.set_xlabel("real environment steps")
    ax.set_ylabel("episode return")
    ax.set_title(title)
    ax.grid(True, alpha=0.3)
    place_legend(ax, len(curves))
    return _save(figure, path)


def plot_calibration(
    calibrations: Mapping[str, Any],
    path: str | os.PathLike[str],
    *,
    dt: float = 1.0,
    title: str = "Calibration of the predicted spread along held-out rollouts",
) -> Path:
    """Two panels against the rollout horizon: the Gaussian NLL per coordinate, and the
    fractions of true coordinates within 1 and 2 predicted standard deviations (solid and
    dashed), with the ideal Gaussian fractions as grey lines. `calibrations[label]` is a
    `physprior.evaluation.calibration.Calibration` (or its `to_dict()`)."""
    from .calibration import GAUSSIAN_COVERAGE

    plt = _pyplot()
    figure, (left, right) = plt.subplots(1, 2, figsize=(11, 4.2))
    distinct_colors(left, len(calibrations))
    distinct_colors(right, len(calibrations))
    for label, value in calibrations.items():
        record = value if isinstance(value, Mapping) else value.to_dict()
        t = dt * np.arange(1, len(record["nll"]) + 1)
        left.plot(t, record["nll"], label=label)
        (line,) = right.plot(t, record["within_1sigma"], label=label)
        right.plot(t, record["within_2sigma"], linestyle="--", color=line.get_color())
    for ideal in GAUSSIAN_COVERAGE:
        right.axhline(ideal, color="grey", linewidth=0.8)
    left.set_ylabel("NLL per coordinate (nats)")
    right.set_ylabel("fraction within 1 sigma (solid), 2 sigma (dashed)")
    right.set_ylim(0.0, 1.02)
    for ax in (left, right):
        ax.set_xlabel("horizon" if dt == 1.0 else "horizon (time units)")
        ax.grid(True, alpha=0.3)
    place_legend(left, len(calibrations))
    figure.suptitle(title)
    return _save(figure, path)


def plot_paths_over_image(
    image: ArrayLike,
    extent: tuple[float, float, float, float],
    panels: Mapping[str, Sequence[tuple[ArrayLike, ArrayLike]]],
    path: str | os.PathLike[str],
    *,
    title: str = "Predicted and true paths",
) -> Path:
    """One panel per model: paths in the plane drawn over a background image (the walls).

    `image` `(H, W)` (values in [0, 1], 1 dark) fills the box `extent = (left, right, bottom,
    top)` in position units; `panels[name]` is a list of `(true (T, 2), predicted (T, 2))`
    position paths, each pair in its own colour (true solid, predicted dashed, a dot at the
    start).
    """
    plt = _pyplot()
    picture = np.asarray(image, dtype=float)
    if picture.ndim != 2:
        raise ValueError(f"image must be (H, W), got shape {picture.shape}")
    names = list(panels)
    if not names:
        raise ValueError("plot_paths_over_image needs at least one panel")
    columns = min(3, len(names))
    rows = -(-len(names) // columns)
    figure, axes = plt.subplots(rows, columns, figsize=(3.6 * columns, 3.6 * rows + 0.4))
    axes = np.atleast_1d(axes).reshape(-1)
    colours = plt.get_cmap("tab10").colors
    for ax, name in zip(axes, names, strict=False):
        ax.imshow(picture, cmap="Greys", vmin=0, vmax=1.6, extent=extent, origin="upper")
        for index, (true, predicted) in enumerate(panels[name]):
            truth, guess = np.asarray(true, dtype=float), np.asarray(predicted, dtype=float)
            colour = colours[index % len(colours)]
            ax.plot(truth[:, 0], truth[:, 1], color=colour, linewidth=1.5)
            ax.plot(guess[:, 0], guess[:, 1], color=colour, linewidth=1.2, linestyle="--")
            ax.plot(truth[:1, 0], truth[:1, 1], "o", color=colour, markersize=4)
        ax.set_xlim(extent[0], extent[1])
        ax.set_ylim(extent[2], extent[3])
        ax.set_title(name, fontsize="small")
        ax.set_xticks([])
        ax.set_yticks([])
    for ax in axes[len(names) :]:
        ax.set_visible(False)
    figure.suptitle(f"{title}\n(solid: true, dashed: predicted)", fontsize="medium")
    return _save(figure, path)


def plot_frames(
    true: ArrayLike,
    predicted: Mapping[str, ArrayLike],
    times: Sequence[float],
    path: str | os.PathLike[str],
    *,
    title: str = "Predicted frames against true ones",
) -> Path:
    """A grid of frames: the true frames on the first row, each model's below, one column per
    time in `times` (seconds, shown above the columns).

    `true` `(T, H, W)` and each `predicted[name]` `(T, H, W)` hold values in [0, 1] (binary
    frames, predicted pixel probabilities; dark is 1), or `(T, H, W, 3)` RGB values in
    [0, 1] (HGN's colour frames; shown as they are, clipped to [0, 1]).
    """
    plt = _pyplot()
    truth = np.asarray(true, dtype=float)
    colour = truth.ndim == 4 and truth.shape[-1] == 3
    if not (truth.ndim == 3 or colour) or len(times) != truth.shape[0]:
        raise ValueError(
            f"true must be (T, H, W) or (T, H, W, 3) with T = len(times) = {len(times)}, "
            f"got {truth.shape}"
        )
    rows = {"true": truth} | {k: np.asarray(v, dtype=float) for k, v in predicted.items()}
    for name, frames in rows.items():
        if frames.shape != truth.shape:
            raise ValueError(
                f"frames of {name!r} have shape {frames.shape}, expected {truth.shape}"
            )
    columns = truth.shape[0]
    figure, axes = plt.subplots(
        len(rows), columns, figsize=(0.9 * columns + 1.6, 0.95 * len(rows) + 0.6), squeeze=False
    )
    for r, (name, frames) in enumerate(rows.items()):
        for c in range(columns):
            ax = axes[r, c]
            if colour:
                ax.imshow(np.clip(frames[c], 0.0, 1.0), interpolation="nearest")
            else:
                ax.imshow(frames[c], cmap="Greys", vmin=0.0, vmax=1.0, interpolation="nearest")
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"{times[c]:g} s", fontsize="small")
        axes[r, 0].set_ylabel(name, rotation=0, ha="right", va="center", fontsize="small")
    figure.suptitle(title, fontsize="medium")
    return _save(figure, path)
