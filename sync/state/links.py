"""Cross-references between webCRM ids and Uniconta keys, cached in Redis.

The truth lives in the two systems (a webCRM custom field and a Uniconta
user-defined field hold each other's key); this cache only saves lookups, so
it can be lost and rebuilt without creating duplicates.
"""

from __future__ import annotations

import redis

from sync.state import keys


class LinkStore:
    """Both directions of one connection's links, per entity."""

    def __init__(self, r: redis.Redis, connection: str) -> None:
        self.r = r
        self.connection = connection

    def uniconta_key(self, entity: str, webcrm_id: str | int) -> str | None:
        value = self.r.hget(keys.links(self.connection, entity, "w2u"), str(webcrm_id))
        return None if value is None else str(value)

    def webcrm_id(self, entity: str, uniconta_key: str) -> str | None:
        value = self.r.hget(keys.links(self.connection, entity, "u2w"), str(uniconta_key))
        return None if value is None else str(value)

    def bind(self, entity: str, webcrm_id: str | int, uniconta_key: str) -> None:
        """Record a link both ways, dropping any stale reverse entry."""
        w, u = str(webcrm_id), str(uniconta_key)
        old = self.uniconta_key(entity, w)
        pipe = self.r.pipeline()
        if old is not None and old != u:
            pipe.hdel(keys.links(self.connection, entity, "u2w"), old)
        pipe.hset(keys.links(self.connection, entity, "w2u"), w, u)
        pipe.hset(keys.links(self.connection, entity, "u2w"), u, w)
        pipe.execute()

    def forget(self, entity: str, *, webcrm_id: str | int | None = None, uniconta_key: str | None = None) -> None:
        w = str(webcrm_id) if webcrm_id is not None else None
        u = uniconta_key
        if w is not None and u is None:
            u = self.uniconta_key(entity, w)
        if u is not None and w is None:
            w = self.webcrm_id(entity, u)
        pipe = self.r.pipeline()
        if w is not None:
            pipe.hdel(keys.links(self.connection, entity, "w2u"), w)
        if u is not None:
            pipe.hdel(keys.links(self.connection, entity, "u2w"), u)
        pipe.execute()

    def linked(self, entity: str, system: str) -> set[str]:
        """Every id of `system` ("webcrm" | "uniconta") that has a link: what reconciliation expects to exist."""
        direction = "w2u" if system == "webcrm" else "u2w"
        return {str(k) for k in self.r.hkeys(keys.links(self.connection, entity, direction))}

    def count(self, entity: str) -> int:
        return int(self.r.hlen(keys.links(self.connection, entity, "w2u")))
