"""The documented install (`scripts/setup.sh`: editable, setuptools' strict mode) is readable
by type checkers: mypy resolves `physprior`, `physprior.envs` and `physprior.agents` in a
user's file, outside the repository."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytest.importorskip("mypy", reason="mypy comes with the dev extra")

USER_CODE = """
from physprior.agents.mpc import CEMPlanner
from physprior.envs import ENV_IDS
from physprior.models import make

reveal_type(ENV_IDS)
reveal_type(make)
reveal_type(CEMPlanner)
"""


def test_mypy_sees_physprior_from_a_users_folder(tmp_path: Path) -> None:
    (tmp_path / "user.py").write_text(USER_CODE)
    done = subprocess.run(
        [sys.executable, "-m", "mypy", "--follow-imports=silent", "--ignore-missing-imports",
         "--cache-dir", str(tmp_path / "cache"), "user.py"],
        cwd=tmp_path, capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert "import-not-found" not in done.stdout, done.stdout
    assert 'Revealed type is "Any"' not in done.stdout, done.stdout  # what an unseen module gives
    assert "physprior.agents.mpc._planners.CEMPlanner" in done.stdout, done.stdout
