"""The report of a suite run: tables of our numbers next to the paper's, claims, PNG plots.

`report.md` holds, per env, one table row per suite row: each metric's mean (std over seeds)
and the paper's figure where the suite has a `PaperRow` for it; then every `Claim` with
"holds", "does not hold" or "cannot tell" and the numbers its check read.

Plots (at most one per env and kind, matplotlib needed: the `plot` extra):

- `error-<env>.png`: each row's `"error"` curve (error against time, mean over seeds);
- `energy-<env>.png`: each row's `"energy"` curve (the true energy along the predicted
  rollout, mean over seeds), with the `"energy_true"` curve (along the true one) in black; or,
  for suites that record it instead, each row's `"energy_violation"` curve (the relative
  energy violation per step, log scale);
- `trajectory-<env>.png`: each row's `trajectory["predicted"]` against `trajectory["true"]`,
  for the smallest seed, rows whose true trajectory is the same one.

Curves are per step (`curve[t]` at `t * dt` time units, `t = 0` the initial state), with `dt`
from a job's `params["dt"]` where it has one, else plots count steps.
"""

from __future__ import annotations

import math
import os
import re
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from physprior._io import atomic_write, atomic_write_text

from ._framework import Claim, JobResult, Means, PaperRow, Suite

REPORT_FILE = "report.md"

# -------------------------------------------------------------------------------- numbers


def aggregate(results: Sequence[JobResult]) -> dict[tuple[str, str], dict[str, list[float]]]:
    """{(row, env_id): {metric: [value per seed]}} in the order the results come."""
    table: dict[tuple[str, str], dict[str, list[float]]] = {}
    for result in results:
        cell = table.setdefault((result.job.row, result.job.env_id), {})
        for name, value in result.metrics.items():
            cell.setdefault(name, []).append(float(value))
    return table


def means(results: Sequence[JobResult]) -> dict[tuple[str, str], dict[str, float]]:
    """{(row, env_id): {metric: mean over seeds}}, what a Claim checks (NaN if any is NaN)."""
    return {
        cell: {name: float(np.mean(values)) for name, values in metrics.items()}
        for cell, metrics in aggregate(results).items()
    }


def _mean_std(values: Sequence[float]) -> tuple[float, float]:
    array = np.asarray(values, dtype=float)
    return float(array.mean()), float(array.std()) if len(array) > 1 else 0.0


def fmt(value: float) -> str:
    """A number in 3 significant figures (scientific when tiny or huge)."""
    if not math.isfinite(value):
        return str(value)
    if value != 0 and not 1e-3 <= abs(value) < 1e4:
        return f"{value:.2e}"
    return f"{value:.3g}"


def cell_text(values: Sequence[float]) -> str:
    """A table cell for one metric over seeds: "mean (std)", or the mean alone for one seed.

    A seed whose metric is not finite (a rollout that diverged) would turn the mean into inf
    and the std into nan and hide the other seeds, so the cell counts those seeds and gives
    the mean (std) of the rest: "inf in 1/3 seeds; rest 0.18 (0.0024)". Claims still read the
    plain mean (`means`), so a diverged seed counts against its row there.
    """
    finite = [v for v in values if math.isfinite(v)]
    if len(finite) == len(values):
        mean, std = _mean_std(values)
        # One seed has no spread to show: a "(0)" would read as a measured zero.
        return f"{fmt(mean)} ({fmt(std)})" if len(values) > 1 else fmt(mean)
    bad = [v for v in values if not math.isfinite(v)]
    kind = "nan" if any(math.isnan(v) for v in bad) else "inf"
    head = f"{kind} in {len(bad)}/{len(values)} seeds" if len(values) > 1 else kind
    return f"{head}; rest {cell_text(finite)}" if finite else head


# -------------------------------------------------------------------------------- claims


class _Recording(Mapping[Any, Any]):
    """A read-only mapping that remembers which keys were read (through nested mappings)."""

    def __init__(self, data: Mapping[Any, Any], log: list[tuple[Any, ...]], path: tuple[Any, ...]):
        self._data, self._log, self._path = data, log, path

    def __getitem__(self, key: Any) -> Any:
        value = self._data[key]
        if isinstance(value, Mapping):
            return _Recording(value, self._log, (*self._path, key))
        self._log.append(((*self._path, key), value))
        return value

    def __iter__(self) -> Iterator[Any]:
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)


def judge(claim: Claim, cell_means: Means) -> tuple[str, list[tuple[str, str, str, float]]]:
    """The verdict on `claim` ("holds", "does not hold", "cannot tell") and the numbers read,
    as (row, env_id, metric, mean). A check that raises KeyError could not find its rows."""
    log: list[tuple[Any, ...]] = []
    try:
        verdict = claim.check(_Recording(cell_means, log, ()))
    except KeyError:
        verdict = None
    numbers = []
    for path, value in log:
        if len(path) == 2 and isinstance(path[0], tuple) and len(path[0]) == 2:
            (row, env_id), metric = path
            entry = (str(row), str(env_id), str(metric), float(value))
            if entry not in numbers:
                numbers.append(entry)
    label = "cannot tell" if verdict is None else ("holds" if verdict else "does not hold")
    return label, numbers


def findings(suite: Suite, results: Sequence[JobResult]) -> list[tuple[str, str]]:
    """(claim text, verdict) for each of the suite's claims on these results, in order."""
    cell_means = means(results)
    return [(claim.text, judge(claim, cell_means)[0]) for claim in suite.claims]


# -------------------------------------------------------------------------------- report


def write_report(
    suite: Suite,
    results: Sequence[JobResult],
    out: str | os.PathLike[str],
    config: Mapping[str, Any],
    *,
    plots: bool = True,
) -> Path:
    """Write `out/report.md` (and the plots unless `plots=False`); return the report's path."""
    out_dir = Path(out)
    table = aggregate(results)
    cell_means = means(results)
    envs = list(dict.fromkeys(r.job.env_id for r in results))
    seeds = sorted({r.job.seed for r in results})
    lines = [
        f"# {suite.title}",
        "",
        f"Suite `{suite.name}`, scale `{config.get('scale')}`, backend `{config.get('backend')}`, "
        f"seeds {', '.join(map(str, seeds))}, physprior {config.get('physprior_version')}; "
        f"{len(results)} jobs, {sum(r.seconds for r in results):.1f} s of job time. "
        "Ours: mean (std over seeds; the mean alone with one seed); a column `<metric>: std "
        "over test trajectories` is that spread within each seed's test set (the papers' "
        "brackets), averaged over seeds; the paper's: mean (std) as published.",
        "",
    ]
    note = suite.scale_notes.get(str(config.get("scale")))
    if note is None and config.get("scale") == "smoke":
        note = "a check that every code path runs; nothing is trained long enough to mean anything."
    if note:
        lines += [f"**At scale `{config.get('scale')}`:** {note}", ""]
    plot_lines: dict[str, list[str]] = {}
    if plots:
        plot_lines = _write_plots(results, out_dir, envs)
    for env_id in envs:
        lines += [f"## {env_id}", ""]
        lines += _env_table(suite, table, env_id)
        lines += plot_lines.get(env_id, [])
        if plots and suite.plots is not None:
            lines += suite.plots([r for r in results if r.job.env_id == env_id], out_dir)
        lines.append("")
    if suite.claims:
        lines += ["## The paper's findings", ""]
        for claim in suite.claims:
            verdict, numbers = judge(claim, cell_means)
            shown = "; ".join(
                f"{row} on {env} {metric} = {fmt(v)}" for row, env, metric, v in numbers
            )
            lines.append(f"- {claim.text}: **{verdict}**" + (f" ({shown})" if shown else ""))
        lines.append("")
    return atomic_write_text(out_dir / REPORT_FILE, "\n".join(lines))


def _env_table(
    suite: Suite, table: Mapping[tuple[str, str], Mapping[str, list[float]]], env_id: str
) -> list[str]:
    paper: dict[tuple[str, str], PaperRow] = {
        (p.row, p.metric): p for p in suite.paper if p.env_id == env_id
    }
    rows = [row for row, env in table if env == env_id]
    # Published rows we did not run, once each (a row has a paper figure per metric).
    rows += [p_row for p_row in dict.fromkeys(p_row for p_row, _ in paper) if p_row not in rows]
    metrics = [m for m in suite.metrics if any(m in table.get((r, env_id), {}) for r in rows)]
    paper_metrics = [m for m in suite.metrics if any(m == pm for _, pm in paper)]
    header = ["row"] + [column_title(m, metrics) for m in metrics]
    header += [f"paper: {m}" for m in paper_metrics]
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for row in rows:
        cells = [row]
        for metric in metrics:
            values = table.get((row, env_id), {}).get(metric)
            cells.append(cell_text(values) if values else "")
        for metric in paper_metrics:
            published = paper.get((row, metric))
            if published is None:
                cells.append("")
            elif published.std is None:
                cells.append(fmt(published.mean))
            else:
                cells.append(f"{fmt(published.mean)} ({fmt(published.std)})")
        lines.append("| " + " | ".join(cells) + " |")
    sources = sorted({p.source for p in paper.values()})
    if sources:
        lines += ["", f"Published figures: {', '.join(sources)}."]
    lines.append("")
    return lines


def column_title(metric: str, metrics: Sequence[str]) -> str:
    """The table header of `metric`: `<name>_std` next to `<name>` is a spread over the test
    trajectories of one seed (what the papers' brackets give), so the header says so."""
    base = metric.removesuffix("_std")
    if base != metric and base in metrics:
        return f"{base}: std over test trajectories"
    return metric


# -------------------------------------------------------------------------------- plots


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9]+", "-", text.split("/")[-1]).strip("-").lower() or "env"


def _mean_curve(curves: Sequence[Sequence[float]]) -> list[float]:
    """Step-wise mean over seeds, over the length all seeds share."""
    length = min(len(c) for c in curves)
    return np.asarray([c[:length] for c in curves], dtype=float).mean(axis=0).tolist()


def _write_plots(
    results: Sequence[JobResult], out_dir: Path, envs: Sequence[str]
) -> dict[str, list[str]]:
    """Write each env's plots; return the report lines that show them, per env."""
    from physprior.evaluation.plots import plot_error_curves, plot_trajectories

    shown: dict[str, list[str]] = {}
    for env_id in envs:
        here = [r for r in results if r.job.env_id == env_id]
        dt = float(next((r.job.params["dt"] for r in here if "dt" in r.job.params), 1.0))
        slug = _slug(env_id)
        lines: list[str] = []
        error = curves_by_row(here, "error")
        if error:
            path = plot_error_curves(
                error, out_dir / f"error-{slug}.png", dt=dt, title=f"Rollout error, {env_id}"
            )
            lines.append(f"![error against time]({path.name})")
        violation = curves_by_row(here, "energy_violation")
        if violation:
            path = plot_error_curves(
                violation,
                out_dir / f"energy-{slug}.png",
                dt=dt,
                title=f"Energy violation along the rollouts, {env_id}",
                ylabel="relative energy violation",
            )
            lines.append(f"![energy violation against time]({path.name})")
        energy = curves_by_row(here, "energy")
        if energy:
            true_energy = curves_by_row(here, "energy_true")
            truth = next(iter(true_energy.values()), None)
            path = _plot_energy(energy, truth, out_dir / f"energy-{slug}.png", dt=dt, env_id=env_id)
            lines.append(f"![energy against time]({path.name})")
        # States only: a suite may keep other records (frames, several paths) under other keys.
        with_traj = [r for r in here if r.trajectory is not None and "true" in r.trajectory]
        if with_traj:
            seed = min(r.job.seed for r in with_traj)
            first = next(r for r in with_traj if r.job.seed == seed)
            assert first.trajectory is not None
            truth_arr = np.asarray(first.trajectory["true"], dtype=float)
            predicted = {}
            for r in with_traj:
                if r.job.seed != seed or r.job.row in predicted or r.trajectory is None:
                    continue
                true_r = np.asarray(r.trajectory["true"], dtype=float)
                if true_r.shape == truth_arr.shape and np.allclose(true_r, truth_arr):
                    predicted[r.job.row] = np.asarray(r.trajectory["predicted"], dtype=float)
            path = plot_trajectories(
                truth_arr,
                predicted,
                out_dir / f"trajectory-{slug}.png",
                dt=dt,
                title=f"A test trajectory of {env_id} (seed {seed})",
            )
            lines.append(f"![a predicted trajectory against the true one]({path.name})")
        if lines:
            shown[env_id] = [*lines, ""]
    return shown


def curves_by_row(results: Sequence[JobResult], name: str) -> dict[str, list[float]]:
    """{legend label: the row's curve `name`, mean over seeds}.

    A seed whose curve is not finite (its rollout diverged) would cut the mean short and
    swamp the other seeds, so the mean is over the finite seeds and the label says how many
    were left out, e.g. "HNN (1/3 seeds diverged, not shown)", as the table cells do.
    """
    by_row: dict[str, list[list[float]]] = {}
    for r in results:
        if r.curves.get(name):
            by_row.setdefault(r.job.row, []).append(r.curves[name])
    labelled = {}
    for row, curves in by_row.items():
        finite = [c for c in curves if np.isfinite(np.asarray(c, dtype=float)).all()]
        if len(finite) == len(curves):
            labelled[row] = _mean_curve(curves)
        elif finite:
            left_out = f"{len(curves) - len(finite)}/{len(curves)} seeds diverged, not shown"
            labelled[f"{row} ({left_out})"] = _mean_curve(finite)
        else:
            labelled[f"{row} (diverged)"] = _mean_curve(curves)
    return labelled


def _plot_energy(
    energy: Mapping[str, Sequence[float]],
    truth: Sequence[float] | None,
    path: Path,
    *,
    dt: float,
    env_id: str,
) -> Path:
    """The true energy along each row's predicted rollout against time (mean over seeds)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from physprior.evaluation.plots import distinct_colors, place_legend

    figure, ax = plt.subplots(figsize=(6, 4))
    distinct_colors(ax, len(energy))
    try:
        if truth is not None:
            ax.plot(np.arange(len(truth)) * dt, truth, color="black", linewidth=2, label="true")
        for row, curve in energy.items():
            values = np.asarray(curve, dtype=float)
            finite = np.isfinite(values)
            ax.plot((np.arange(len(values)) * dt)[finite], values[finite], label=row)
        ax.set_xlabel("time (time units)" if dt != 1.0 else "time (steps)")
        ax.set_ylabel("true energy of the predicted state")
        ax.set_title(f"Energy along the rollouts, {env_id}")
        ax.grid(True, alpha=0.3)
        place_legend(ax, len(energy) + (truth is not None))
        return atomic_write(
            path, lambda handle: figure.savefig(handle, format="png", dpi=120, bbox_inches="tight")
        )
    finally:
        plt.close(figure)


def plot_job_frames(
    results: Sequence[JobResult],
    path: Path,
    *,
    frame_shape: tuple[int, ...],
    dt: float,
    title: str,
    skip: Sequence[str] = (),
) -> Path | None:
    """The frames that jobs kept (`trajectory["frames_true"]`, `["frames_predicted"]`,
    `["frame_index"]`), true against each row's, for the smallest seed; rows in `skip` are left
    out. `frame_shape` is one frame's shape (`(S, S)` or `(S, S, 3)`); `title` may hold
    `{seed}`. None when no job kept frames."""
    from physprior.evaluation.plots import plot_frames

    with_frames = [r for r in results if r.trajectory and "frames_true" in r.trajectory]
    if not with_frames:
        return None
    seed = min(r.job.seed for r in with_frames)
    here = [r for r in with_frames if r.job.seed == seed]
    first = here[0].trajectory
    assert first is not None
    shape = (-1, *frame_shape)
    truth = np.asarray(first["frames_true"]).reshape(shape)
    predicted = {
        r.job.row: np.asarray(r.trajectory["frames_predicted"]).reshape(shape)
        for r in here
        if r.trajectory is not None and r.job.row not in skip
    }
    times = [float(t[0]) * dt for t in first["frame_index"]]
    return plot_frames(truth, predicted, times, path, title=title.format(seed=seed))
