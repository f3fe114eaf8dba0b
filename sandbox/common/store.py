"""Thread-safe in-memory tables for the sandboxes, optionally persisted to one JSON file.

Apps keep references to the dicts returned by `table()` and to `meta`, so `reset()` and
`restore()` change those objects in place instead of replacing them.
"""

from __future__ import annotations

import contextlib
import copy
import json
import logging
import os
import tempfile
import threading
import time
from typing import Any

log = logging.getLogger(__name__)

FORMAT_VERSION = 1
SAVE_DELAY = 0.25  # seconds the saver waits after mark_dirty() so a burst of writes is saved once


class Store:
    """Thread-safe in-memory tables, optionally persisted to a JSON file."""

    def __init__(self, path: str | None = None) -> None:
        self.path = os.fspath(path) if path else None
        self.lock = threading.RLock()
        self.meta: dict[str, Any] = {}
        self._tables: dict[str, dict[str, dict]] = {}
        self._sequences: dict[str, int] = {}
        self._save_lock = threading.Lock()  # one writer of the file at a time
        self._start_lock = threading.Lock()
        self._dirty = threading.Event()
        self._saver: threading.Thread | None = None
        if self.path and os.path.exists(self.path):
            self.load()

    # -- data ---------------------------------------------------------------------------------
    def table(self, name: str) -> dict[str, dict]:
        """The table `name` (key -> record), created empty on first use; the same dict every time."""
        with self.lock:
            return self._tables.setdefault(name, {})

    def tables(self) -> list[str]:
        """Names of the tables created so far."""
        with self.lock:
            return sorted(self._tables)

    def next_id(self, name: str, start: int = 1) -> int:
        """The next number of the sequence `name`: `start` first, then one more than the last one."""
        with self.lock:
            last = self._sequences.get(name)
            value = start if last is None else max(last + 1, start)
            self._sequences[name] = value
        self.mark_dirty()
        return value

    def reset(self) -> None:
        """Forget every record, sequence and meta setting (tables stay the same dict objects)."""
        with self.lock:
            for table in self._tables.values():
                table.clear()
            self._sequences.clear()
            self.meta.clear()
        self.mark_dirty()

    def snapshot(self) -> dict:
        """A deep copy of everything, in the persisted JSON shape."""
        with self.lock:
            return {
                "version": FORMAT_VERSION,
                "tables": copy.deepcopy(self._tables),
                "sequences": dict(self._sequences),
                "meta": copy.deepcopy(self.meta),
            }

    def restore(self, data: dict) -> None:
        """Replace everything with `data` (a snapshot); ValueError("<field>: <why>") if malformed."""
        self._replace(data)
        self.mark_dirty()

    def _replace(self, data: Any) -> None:
        tables, sequences, meta = _validate_snapshot(data)
        with self.lock:
            for name, table in self._tables.items():
                table.clear()
                table.update(tables.pop(name, {}))
            self._tables.update(tables)
            self._sequences.clear()
            self._sequences.update(sequences)
            self.meta.clear()
            self.meta.update(meta)

    # -- persistence ----------------------------------------------------------------------------
    def load(self) -> None:
        """Read the state file; ValueError naming the file when it is not a valid snapshot."""
        if not self.path:
            return
        try:
            with open(self.path, encoding="utf-8") as fh:
                data = json.load(fh)
            self._replace(data)  # not restore(): what we just read needs no saving
        except (OSError, ValueError) as exc:
            raise ValueError(f"state file {self.path}: {exc}") from exc

    def mark_dirty(self) -> None:
        """Note a change; the background saver writes the file within ~0.5 s (when a path is set)."""
        if not self.path:
            return
        self._dirty.set()
        if self._saver is None:
            with self._start_lock:
                if self._saver is None:
                    self._saver = threading.Thread(target=self._save_loop, name="store-saver", daemon=True)
                    self._saver.start()

    def save(self) -> None:
        """Write the state file now, atomically (temporary file in the same directory + os.replace)."""
        if not self.path:
            return
        self._dirty.clear()
        text = json.dumps(self.snapshot(), ensure_ascii=False, separators=(",", ":"))
        directory = os.path.dirname(os.path.abspath(self.path))
        with self._save_lock:
            os.makedirs(directory, exist_ok=True)
            fd, tmp = tempfile.mkstemp(prefix=".state-", suffix=".tmp", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(text)
                    fh.flush()
                    os.fsync(fh.fileno())
                os.replace(tmp, self.path)
            except BaseException:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
                raise

    def _save_loop(self) -> None:
        while True:
            self._dirty.wait()
            time.sleep(SAVE_DELAY)  # the flag stays set; save() clears it before taking the snapshot
            try:
                self.save()
            except Exception:
                log.exception("saving sandbox state to %s failed", self.path)


def _validate_snapshot(data: Any) -> tuple[dict[str, dict[str, dict]], dict[str, int], dict[str, Any]]:
    """Check the snapshot shape and return deep copies of its parts."""
    if not isinstance(data, dict):
        raise ValueError("state: must be a JSON object")
    tables = data.get("tables", {})
    sequences = data.get("sequences", {})
    meta = data.get("meta", {})
    if not isinstance(tables, dict):
        raise ValueError("tables: must be an object of tables")
    for name, table in tables.items():
        if not isinstance(table, dict):
            raise ValueError(f"tables.{name}: must be an object of records")
        for key, record in table.items():
            if not isinstance(record, dict):
                raise ValueError(f"tables.{name}.{key}: must be an object")
    if not isinstance(sequences, dict):
        raise ValueError("sequences: must be an object of integers")
    for name, value in sequences.items():
        if not isinstance(value, int) or isinstance(value, bool):
            raise ValueError(f"sequences.{name}: must be an integer")
    if not isinstance(meta, dict):
        raise ValueError("meta: must be an object")
    return copy.deepcopy(tables), dict(sequences), copy.deepcopy(meta)
