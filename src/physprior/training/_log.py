"""The JSON-lines log of a training run: one object per finished epoch."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

from physprior._io import atomic_write_text

LOG_FILE = "log.jsonl"


def read_log(path: Path) -> list[dict[str, Any]]:
    """The epoch records in `path`, skipping a final line a kill left half-written."""
    if not path.exists():
        return []
    records = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and isinstance(record.get("epoch"), int):
            records.append(record)
    return records


class EpochLog:
    """Appends epoch records to `log.jsonl`, flushed to disk line by line.

    Opening it for a run that has finished `epochs_done` epochs keeps exactly those records:
    the lines of an epoch that a kill cut short (and that the resumed run will repeat) go.
    """

    def __init__(self, path: Path, epochs_done: int) -> None:
        self.path = path
        kept = [r for r in read_log(path) if r["epoch"] <= epochs_done]
        if path.exists() or kept:
            atomic_write_text(path, "".join(json.dumps(r) + "\n" for r in kept))

    def append(self, record: dict[str, Any]) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())

    def records(self) -> list[dict[str, Any]]:
        return read_log(self.path)
