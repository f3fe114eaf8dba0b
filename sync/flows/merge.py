"""Field-level three-way merge for two-way flows, with the last synced state as the base.

A field changed on one side only is copied to the other; the same field
changed on both sides since the last sync is a conflict, resolved by the
connection's policy ("newest" change wins by default) and reported with both
values. After a sync the base equals both sides, so our own write coming back
as a webhook finds nothing to do: that is the echo suppression of two-way flows.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import redis

from sync.state import keys

Normalizer = Callable[[Any], Any]
POLICIES = ("newest", "webcrm", "uniconta")


def plain(value: Any) -> Any:
    """Default comparison form: None and "" are the same; strings are trimmed."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value.strip()
    return value


def email(value: Any) -> str:
    """E-mail addresses compare trimmed and case-insensitively."""
    return str(value or "").strip().lower()


@dataclass(frozen=True)
class Conflict:
    field: str
    webcrm: Any
    uniconta: Any
    base: Any
    winner: str  # "webcrm" | "uniconta"


@dataclass
class MergeResult:
    merged: dict[str, Any] = field(default_factory=dict)
    to_webcrm: dict[str, Any] = field(default_factory=dict)
    to_uniconta: dict[str, Any] = field(default_factory=dict)
    conflicts: list[Conflict] = field(default_factory=list)

    @property
    def changed(self) -> bool:
        return bool(self.to_webcrm or self.to_uniconta)


def merge(base: Mapping[str, Any] | None, webcrm: Mapping[str, Any], uniconta: Mapping[str, Any], *,
          policy: str = "newest", webcrm_changed_at: datetime | None = None,
          uniconta_changed_at: datetime | None = None,
          normalizers: Mapping[str, Normalizer] | None = None) -> MergeResult:
    """Merge two projections with the same field names. Without a base (first sync) every
    difference is treated as a conflict and resolved by the policy."""
    if policy not in POLICIES:
        raise ValueError(f"unknown conflict policy {policy!r}")
    normalizers = normalizers or {}
    result = MergeResult()
    for name in sorted(set(webcrm) | set(uniconta)):
        norm = normalizers.get(name, plain)
        w, u = webcrm.get(name), uniconta.get(name)
        if norm(w) == norm(u):
            result.merged[name] = w
            continue
        b = None if base is None else base.get(name)
        if base is not None and norm(w) == norm(b):
            winner = "uniconta"  # only Uniconta changed since the last sync
        elif base is not None and norm(u) == norm(b):
            winner = "webcrm"
        else:
            winner = _resolve(policy, webcrm_changed_at, uniconta_changed_at)
            result.conflicts.append(Conflict(name, w, u, b, winner))
        if winner == "webcrm":
            result.merged[name] = w
            result.to_uniconta[name] = w
        else:
            result.merged[name] = u
            result.to_webcrm[name] = u
    return result


def _resolve(policy: str, webcrm_at: datetime | None, uniconta_at: datetime | None) -> str:
    if policy in ("webcrm", "uniconta"):
        return policy
    if webcrm_at is not None and uniconta_at is not None:
        return "uniconta" if uniconta_at > webcrm_at else "webcrm"
    # Without both timestamps the side that has one is the one we know changed recently.
    return "uniconta" if uniconta_at is not None and webcrm_at is None else "webcrm"


class BaseStore:
    """The last synced projection of each linked pair (the merge base)."""

    def __init__(self, r: redis.Redis, connection: str) -> None:
        self.r = r
        self.connection = connection

    def _key(self, entity: str, pair: str) -> str:
        return keys.counter(self.connection, f"base:{entity}:{pair}")

    def get(self, entity: str, pair: str | int) -> dict[str, Any] | None:
        raw = self.r.get(self._key(entity, str(pair)))
        return None if raw is None else json.loads(raw)

    def put(self, entity: str, pair: str | int, projection: Mapping[str, Any]) -> None:
        self.r.set(self._key(entity, str(pair)), json.dumps(dict(projection), ensure_ascii=False, default=str))

    def forget(self, entity: str, pair: str | int) -> None:
        self.r.delete(self._key(entity, str(pair)))
