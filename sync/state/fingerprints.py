"""Fingerprints of the mapped projection last written or seen, per side.

If the projection of a record hashes to what we last wrote, the event is an
echo of our own write or a change to fields we do not sync: no write.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

import redis

from sync.state import keys

TTL_SECONDS = 180 * 24 * 3600


def _normal(value: Any) -> Any:
    if isinstance(value, float | Decimal):
        return format(Decimal(str(value)).normalize(), "f")
    if isinstance(value, str):
        return value.strip()
    if isinstance(value, Mapping):
        return {k: _normal(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_normal(v) for v in value]
    return value


def of(projection: Mapping[str, Any]) -> str:
    """A stable hash of a mapped projection (numbers normalised, strings trimmed)."""
    text = json.dumps(_normal(dict(projection)), sort_keys=True, ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:32]


class FingerprintStore:
    def __init__(self, r: redis.Redis, connection: str) -> None:
        self.r = r
        self.connection = connection

    def get(self, entity: str, side: str, record_id: str | int) -> str | None:
        value = self.r.get(keys.fingerprint(self.connection, entity, side, str(record_id)))
        return None if value is None else str(value)

    def put(self, entity: str, side: str, record_id: str | int, fingerprint: str) -> None:
        self.r.set(keys.fingerprint(self.connection, entity, side, str(record_id)), fingerprint, ex=TTL_SECONDS)

    def forget(self, entity: str, side: str, record_id: str | int) -> None:
        self.r.delete(keys.fingerprint(self.connection, entity, side, str(record_id)))
