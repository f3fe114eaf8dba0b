"""Run-time switches for the points the reference leaves open (admin `GET|PUT /_sandbox/quirks`).

Kept in the store's meta, so they persist with a state file and `POST /_sandbox/reset` restores the
defaults given to `create_app`.
"""

from __future__ import annotations

import re
from typing import Any

from sandbox.common.store import Store

META_KEY = "uniconta.quirks"
ACTION_PARAMS = ("Action", "Operation")
_WORD = re.compile(r"^[A-Za-z]{1,20}$")


class Quirks:
    def __init__(self, store: Store, *, odata_page_size: int = 100, omit_nulls: bool = True,
                 odata_max_or: int = 40, odata_max_page_size: int = 1000) -> None:
        self.store = store
        self.defaults: dict[str, Any] = {
            # Change URL: the two receivers in public code read `Action` with add/update/delete; the
            # documentation example spells it `Operation=Update` (reference §3, §6.1).
            "webhook_action_param": "Action",
            "webhook_action_values": "add/update/delete",
            # OData page size before @odata.nextLink (the real one is not documented, §6.8).
            "odata_page_size": odata_page_size,
            # The most a `Prefer: odata.maxpagesize=N` request may ask for (OData's standard page-size
            # preference; whether Uniconta honours it is not documented, §6.8).
            "odata_max_page_size": odata_max_page_size,
            # "At most 40 OR values per server-side filter" (§1a/§4, conf. M); 0 = no limit.
            "odata_max_or": odata_max_or,
            # Insert/Update/Delete answer 200 with the record(s) ("record") or 204 without a body
            # ("empty"): one public client handles both for Insert (reference §1b).
            "write_response": "record",
            # Null properties are left out of responses (Postman article, reference §1b).
            "omit_nulls": omit_nulls,
            # The OData feed answers XML unless asked for JSON (`Accept: application/json` or
            # `$format=json`), as one public client found (reference §1b, conf. M).
            "odata_default_format": "xml",
        }

    def get(self) -> dict[str, Any]:
        with self.store.lock:
            stored = self.store.meta.get(META_KEY)
            return {**self.defaults, **(stored if isinstance(stored, dict) else {})}

    def __getitem__(self, name: str) -> Any:
        return self.get()[name]

    def update(self, changes: Any) -> dict[str, Any]:
        """Partial update, all or nothing; ValueError("<name>: <why>")."""
        if not isinstance(changes, dict):
            raise ValueError("body: must be a JSON object")
        clean: dict[str, Any] = {}
        for name, value in changes.items():
            if name not in self.defaults:
                raise ValueError(f"{name}: unknown quirk (known: {', '.join(self.defaults)})")
            clean[name] = _check(name, value)
        with self.store.lock:
            stored = self.store.meta.setdefault(META_KEY, {})
            stored.update(clean)
        self.store.mark_dirty()
        return self.get()

    def reset(self) -> None:
        with self.store.lock:
            self.store.meta.pop(META_KEY, None)
        self.store.mark_dirty()

    def action_value(self, action: str) -> str:
        """add | update | delete -> the spelling currently configured."""
        values = self["webhook_action_values"].split("/")
        return values[("add", "update", "delete").index(action)]


def _check(name: str, value: Any) -> Any:
    if name == "webhook_action_param":
        if value not in ACTION_PARAMS:
            raise ValueError(f"webhook_action_param: must be one of {', '.join(ACTION_PARAMS)}")
        return value
    if name == "webhook_action_values":
        parts = value.split("/") if isinstance(value, str) else []
        if len(parts) != 3 or not all(_WORD.match(p) for p in parts):
            raise ValueError("webhook_action_values: must be three words for insert/update/delete, "
                             "e.g. 'add/update/delete' or 'Insert/Update/Delete'")
        return value
    if name == "odata_page_size":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise ValueError("odata_page_size: must be an integer from 1 to 100000")
        return value
    if name == "odata_max_page_size":
        if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 100_000:
            raise ValueError("odata_max_page_size: must be an integer from 1 to 100000")
        return value
    if name == "odata_max_or":
        if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 100_000:
            raise ValueError("odata_max_or: must be an integer from 0 (no limit) to 100000")
        return value
    if name == "write_response":
        if value not in ("record", "empty"):
            raise ValueError("write_response: must be 'record' or 'empty'")
        return value
    if name == "odata_default_format":
        if value not in ("xml", "json"):
            raise ValueError("odata_default_format: must be 'xml' or 'json'")
        return value
    if name == "omit_nulls":
        if not isinstance(value, bool):
            raise ValueError("omit_nulls: must be true or false")
        return value
    raise ValueError(f"{name}: unknown quirk")  # pragma: no cover
