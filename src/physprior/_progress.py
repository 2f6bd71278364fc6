"""Progress bars that stay out of pipes and logs unless a person is watching.

Every long-running loop in physprior draws its bar through `progress_bar`, so that three
switches apply everywhere: the caller's `enabled` flag (`--no-progress`), the environment
variable `TQDM_DISABLE` (tqdm's own convention; set to anything but `0`/`false`/empty), and
the terminal: a bar is drawn only when stderr is a terminal, never into a pipe or a file.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any, TypeVar

from tqdm.auto import tqdm

T = TypeVar("T")


def bars_disabled_by_env() -> bool:
    """Whether `TQDM_DISABLE` asks for no bars (`1`, `true`, anything but `0`/`false`/empty)."""
    value = os.environ.get("TQDM_DISABLE", "").strip().lower()
    return value not in ("", "0", "false", "no")


def progress_bar(
    iterable: Iterable[T] | None = None, *, enabled: bool = True, **kwargs: Any
) -> Any:
    """A `tqdm` bar over `iterable` (or a manual one with `total=`), shown only when
    `enabled`, `TQDM_DISABLE` is unset and stderr is a terminal. `kwargs` go to `tqdm`."""
    # disable=None is tqdm's "only on a terminal"; an explicit value would ignore the terminal.
    disable = True if not enabled or bars_disabled_by_env() else None
    return tqdm(iterable, disable=disable, **kwargs)
