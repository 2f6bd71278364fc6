"""Benchmark suites that reproduce published tables, and the runner that runs them.

Every public module of this package that defines a module-level ``SUITE`` is a suite; `SUITES`
maps suite names to them, in the order of the module names. Importing a suite module runs
nothing: the work happens in `run_bench`.
"""

from __future__ import annotations

import importlib
import pkgutil

from physprior.suites._framework import (
    SCALES,
    Claim,
    Job,
    JobResult,
    PaperRow,
    Scale,
    Suite,
)


def _discover() -> dict[str, Suite]:
    """Import each public submodule (sorted by name, so the order is stable) and collect SUITE."""
    suites: dict[str, Suite] = {}
    for info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{info.name}")
        suite = getattr(module, "SUITE", None)
        if not isinstance(suite, Suite):
            continue
        if suite.name in suites:
            raise ValueError(f"two benchmark modules define suite {suite.name!r}")
        suites[suite.name] = suite
    return suites


SUITES: dict[str, Suite] = _discover()


def get_suite(name: str) -> Suite:
    """The suite called `name`; ValueError listing the valid names otherwise."""
    try:
        return SUITES[name]
    except KeyError:
        raise ValueError(
            f"unknown benchmark suite {name!r}; expected one of {sorted(SUITES)}"
        ) from None


# These need SUITES defined above.
from physprior.suites._report import findings  # noqa: E402
from physprior.suites._runner import read_results, run_bench  # noqa: E402

__all__ = [
    "SCALES",
    "SUITES",
    "Claim",
    "Job",
    "JobResult",
    "PaperRow",
    "Scale",
    "Suite",
    "findings",
    "get_suite",
    "read_results",
    "run_bench",
]
