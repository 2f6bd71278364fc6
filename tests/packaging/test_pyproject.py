"""The wheel's package list: a regular (non-editable) install must ship every subpackage."""

from __future__ import annotations

from pathlib import Path

import pytest

tomllib = pytest.importorskip("tomllib", reason="reading pyproject.toml needs Python 3.11+")

ROOT = Path(__file__).resolve().parents[2]


def _declared() -> tuple[list[str], dict[str, str]]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    setuptools = config["tool"]["setuptools"]
    return list(setuptools["packages"]), dict(setuptools["package-dir"])


def _on_disk(package_dirs: dict[str, str]) -> set[str]:
    """Every package (folder with `__init__.py`) under each mapped package root."""
    found = set()
    for name, folder in package_dirs.items():
        root = ROOT / folder
        for init in root.rglob("__init__.py"):
            parts = init.parent.relative_to(root).parts
            if "__pycache__" in parts:
                continue
            found.add(".".join((name, *parts)))
    return found


def test_every_package_on_disk_is_in_the_wheel() -> None:
    packages, package_dirs = _declared()
    missing = sorted(_on_disk(package_dirs) - set(packages))
    assert not missing, f"pyproject.toml [tool.setuptools] packages lacks {missing}"


def test_every_declared_package_exists() -> None:
    packages, package_dirs = _declared()
    assert not sorted(set(packages) - _on_disk(package_dirs))
