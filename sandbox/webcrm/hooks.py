"""webCRM Hooks: `/{Entity}/Hooks` CRUD [D S3] and the sandbox's hook delivery (assumed [U]).

Stored per entity in the table `Hooks.<Entity>` as `<Entity>HookDto` records; ids come from one
int64 sequence shared by all entities (so an id names one hook). Hooks are global, not per token
(the Swagger's "own hooks" is unconfirmed [U]).

Delivery (nothing about it is documented - our assumption, see docs/sandbox-webcrm.md): on every
matching change, through API writes and admin "UI" edits alike, the sandbox POSTs JSON

    {"HookId": 7, "EventType": "Update", "Entity": "Organisation", "EntityId": 12,
     "Timestamp": "2024-05-01T10:00:00+00:00", "Data": {...the DTO after the change...}}

to the hook's TargetUrl through the common WebhookDispatcher (faults apply; no retries). For a
Delete, Data is the DTO as it was just before. A hook matches when it is enabled, its EventType is
the event, and its Filter contains "All" (other filter values are stored but never match).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any
from urllib.parse import urlsplit

from sandbox.common.hooks import WebhookDispatcher
from sandbox.common.store import Store
from sandbox.webcrm.dto import render
from sandbox.webcrm.entities import ApiError, EntityDef

HOOK_SEQUENCE = "Hooks"
USER_AGENT = "webCRM-sandbox-hooks/1.0"


def hook_table(e: EntityDef) -> str:
    return f"Hooks.{e.table}"


class Hooks:
    def __init__(self, store: Store, dispatcher: WebhookDispatcher, *, now: Callable[[], str],
                 null_strings: Callable[[], bool]) -> None:
        self.store = store
        self.dispatcher = dispatcher
        self.now = now
        self.null_strings = null_strings

    def table(self, e: EntityDef) -> dict[str, dict]:
        return self.store.table(hook_table(e))

    def must_get(self, e: EntityDef, ident: int) -> dict:
        hook = self.table(e).get(str(ident))
        if hook is None:
            raise ApiError(404, f"{e.singular} hook with id {ident} was not found.")
        return hook

    def _parse(self, e: EntityDef, body: Any) -> dict:
        assert e.hook_dto is not None
        values = e.hook_dto.parse(body)
        lower = {str(k).lower() for k in body}
        for name in ("TargetUrl", "IsEnabled", "Filter"):  # required in the Swagger definition
            if name.lower() not in lower:
                raise ApiError(400, f"The {name} field is required.")
        url = values["TargetUrl"].strip()
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ApiError(400, f"TargetUrl: {url!r} is not an absolute http(s) URL.")
        values["TargetUrl"] = url
        if not values["Filter"]:
            raise ApiError(400, "Filter: at least one value is required (e.g. [\"All\"]).")
        record = e.hook_dto.defaults()
        record.update(values)
        return record

    def create(self, e: EntityDef, body: Any, *, by: str) -> int:
        record = self._parse(e, body)
        ident = self.store.next_id(HOOK_SEQUENCE)
        now = self.now()
        record.update({"Id": ident, "CreatedAt": now, "CreatedBy": by, "UpdatedAt": now, "UpdatedBy": by})
        self.table(e)[str(ident)] = record
        self.store.mark_dirty()
        return ident

    def replace(self, e: EntityDef, ident: int, body: Any, *, by: str) -> None:
        old = self.must_get(e, ident)
        record = self._parse(e, body)
        record.update({"Id": ident, "CreatedAt": old["CreatedAt"], "CreatedBy": old["CreatedBy"],
                       "UpdatedAt": self.now(), "UpdatedBy": by})
        self.table(e)[str(ident)] = record
        self.store.mark_dirty()

    def delete(self, e: EntityDef, ident: int) -> None:
        self.must_get(e, ident)
        del self.table(e)[str(ident)]
        self.store.mark_dirty()

    def fire(self, e: EntityDef, event: str, record: dict) -> None:
        """Queue a delivery to every matching hook (called under the store lock, after the change)."""
        if e.hook_dto is None:
            return
        hooks = [h for h in self.table(e).values()
                 if h["IsEnabled"] and h["EventType"] == event and "All" in h["Filter"]]
        if not hooks:
            return
        data = render(record, e.dto, null_strings=self.null_strings())
        timestamp = self.now()
        for hook in hooks:
            payload = {
                "HookId": hook["Id"],
                "EventType": event,
                "Entity": e.singular,
                "EntityId": record[e.id_field],
                "Timestamp": timestamp,
                "Data": data,
            }
            self.dispatcher.submit("POST", hook["TargetUrl"], json=payload,
                                   headers={"User-Agent": USER_AGENT})
