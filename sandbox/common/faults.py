"""Fault settings of a sandbox, changed at run time through PUT /_sandbox/faults."""

from __future__ import annotations

import dataclasses
import math
import random
import re
import threading
import time
from dataclasses import dataclass, field
from typing import Any

ERROR_STATUSES = (500, 502, 503, 504, 429)
_RATES = ("error_rate", "hang_rate", "webhook_drop_rate", "webhook_duplicate_rate")
_COUNTS = ("latency_ms", "webhook_reorder_window", "webhook_delay_ms")


@dataclass
class Faults:
    """What goes wrong on purpose; `update()` validates so a typo never silently disables a test."""

    latency_ms: int = 0              # added to every API call
    error_rate: float = 0.0          # 0..1: this share of API calls answers error_status
    error_status: int = 503          # 500 | 502 | 503 | 504 | 429
    error_path: str = ""             # regex searched in the path; empty = every API path (error rate only)
    down_until: float = 0.0          # epoch s; until then every API call answers error_status
    hang_rate: float = 0.0           # share of API calls that sleep hang_seconds before answering
    hang_seconds: float = 30.0
    webhook_drop_rate: float = 0.0
    webhook_duplicate_rate: float = 0.0
    webhook_reorder_window: int = 0  # hold up to N outgoing webhooks and send them shuffled
    webhook_delay_ms: int = 0
    seed: int | None = None          # makes the random choices repeatable
    # Not settings: a lock and the random generators derived from `seed`.
    _lock: threading.RLock = field(default_factory=threading.RLock, init=False, repr=False, compare=False)
    _rngs: dict[str, random.Random] = field(default_factory=dict, init=False, repr=False, compare=False)

    @classmethod
    def field_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls) if not f.name.startswith("_")]

    def update(self, changes: dict) -> None:
        """Apply a partial update, all or nothing; ValueError("<field>: <why>") on bad input.

        `"down_seconds": N` is accepted as a convenience for `down_until = now + N`.
        """
        if not isinstance(changes, dict):
            raise ValueError("body: must be a JSON object of fault settings")
        names = self.field_names()
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name == "down_seconds":
                clean["down_until"] = time.time() + _number(name, value, low=0.0)
            elif name not in names:
                raise ValueError(f"{name}: unknown fault setting (known: {', '.join([*names, 'down_seconds'])})")
            else:
                clean[name] = _check(name, value)
        with self._lock:
            for name, value in clean.items():
                setattr(self, name, value)
            self._rngs.clear()

    def to_dict(self) -> dict:
        """The settings as JSON-safe values; PUT-ing this back is accepted unchanged."""
        with self._lock:
            return {name: getattr(self, name) for name in self.field_names()}

    def reset(self) -> None:
        """Back to no faults at all."""
        defaults = Faults()
        with self._lock:
            for name in self.field_names():
                setattr(self, name, getattr(defaults, name))
            self._rngs.clear()

    def is_down(self, now: float | None = None) -> bool:
        return (time.time() if now is None else now) < self.down_until

    def rng(self, purpose: str) -> random.Random:
        """The random generator for `purpose` ("api", "webhooks"), re-seeded after every update/reset."""
        with self._lock:
            rng = self._rngs.get(purpose)
            if rng is None:
                rng = self._rngs[purpose] = random.Random(self.seed)
            return rng

    def chance(self, purpose: str, rate: float) -> bool:
        """True with probability `rate`; draws nothing when the rate is 0 or 1 (keeps sequences stable)."""
        if rate <= 0:
            return False
        if rate >= 1:
            return True
        rng = self.rng(purpose)
        with self._lock:
            return rng.random() < rate

    def shuffle(self, purpose: str, items: list) -> None:
        """Shuffle `items` in place with the generator for `purpose`."""
        rng = self.rng(purpose)
        with self._lock:
            rng.shuffle(items)


def _check(name: str, value: Any) -> Any:
    if name in _RATES:
        return _number(name, value, low=0.0, high=1.0)
    if name in _COUNTS:
        return _integer(name, value, low=0)
    if name == "error_status":
        status = _integer(name, value)
        if status not in ERROR_STATUSES:
            raise ValueError(f"error_status: must be one of {', '.join(map(str, ERROR_STATUSES))}")
        return status
    if name == "error_path":
        if not isinstance(value, str):
            raise ValueError("error_path: must be a string (a regular expression)")
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"error_path: invalid regular expression: {exc}") from None
        return value
    if name in ("down_until", "hang_seconds"):
        return _number(name, value, low=0.0)
    if name == "seed":
        return None if value is None else _integer(name, value)
    raise ValueError(f"{name}: unknown fault setting")  # pragma: no cover - guarded by update()


def _number(name: str, value: Any, *, low: float | None = None, high: float | None = None) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name}: must be a number")
    if low is not None and value < low:
        raise ValueError(f"{name}: must be >= {low:g}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high:g}")
    return float(value)


def _integer(name: str, value: Any, *, low: int | None = None) -> int:
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer")
    if low is not None and value < low:
        raise ValueError(f"{name}: must be >= {low}")
    return value
