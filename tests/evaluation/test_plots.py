"""PNG plots: files are written, and many lines stay distinguishable."""

from __future__ import annotations

from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt

from physprior.evaluation.plots import distinct_colors, plot_error_curves


def test_twelve_lines_get_twelve_colours() -> None:
    figure, ax = plt.subplots()
    try:
        distinct_colors(ax, 12)
        for k in range(12):
            ax.plot([0, 1], [k, k])
        assert len({line.get_color() for line in ax.lines}) == 12
    finally:
        plt.close(figure)


def test_error_curves_write_a_png_under_any_label(tmp_path: Path) -> None:
    curves = {f"model {k}": [0.0, 0.1 * (k + 1), 0.2 * (k + 1)] for k in range(12)}
    path = plot_error_curves(curves, tmp_path / "violation.png", ylabel="energy violation")
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
