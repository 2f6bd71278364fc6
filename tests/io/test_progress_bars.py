"""`physprior._progress`: bars only for a person watching a terminal."""

from __future__ import annotations

import sys

import pytest

from physprior._progress import bars_disabled_by_env, progress_bar


def _drawn(capsys: pytest.CaptureFixture[str], **kwargs: object) -> str:
    for _ in progress_bar(range(3), desc="work", **kwargs):  # type: ignore[arg-type]
        pass
    return capsys.readouterr().err


def test_bars_show_on_a_terminal_only(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)
    assert _drawn(capsys) == ""  # captured stderr is a pipe, not a terminal
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert "work: 100%" in _drawn(capsys)
    assert _drawn(capsys, enabled=False) == ""  # --no-progress


@pytest.mark.parametrize(
    ("value", "disabled"),
    [("1", True), ("true", True), ("True", True), ("0", False), ("false", False), ("", False)],
)
def test_tqdm_disable_is_honoured(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    value: str,
    disabled: bool,
) -> None:
    monkeypatch.setenv("TQDM_DISABLE", value)
    monkeypatch.setattr(sys.stderr, "isatty", lambda: True)
    assert bars_disabled_by_env() is disabled
    assert (_drawn(capsys) == "") is disabled
