"""The e2e helpers of the two-way record flows (users ↔ employees, persons ↔ contacts), written once.

A `RecordPair` names a webCRM collection and the Uniconta table it syncs with, and the fields that link
them; from that it reads both sides from the sandboxes' state (admin routes: no API call, no rate limit
spent), edits them as a person would (the admin "UI" routes fire the real webhooks) and counts the API
writes in the sandboxes' call logs.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sync.state import journal
from tests.e2e.conftest import Stack, settle
from tests.support.stack import CONNECTION, admin, wait_for


@dataclass(frozen=True)
class RecordPair:
    collection: str  # webCRM collection and UI path: "Users"
    id_field: str  # its id: "UserId"
    table: str  # Uniconta table and UI path: "Employee"
    key: str  # its key: "Number"
    link: str  # the Uniconta field that holds the webCRM id: "WebcrmUserId"
    back_link: str  # the webCRM field that holds the Uniconta key: "UserCustom1"
    key_type: type = str  # of the Uniconta key as the tests use it (RowId: int)
    ignore_hooks: bool = False  # writes(): leave out calls to hook paths

    def webcrm_rows(self, stack: Stack) -> dict[int, dict[str, Any]]:
        """The webCRM records by id, read from the sandbox's state."""
        rows = admin(stack.webcrm_url, "GET", "/state")["tables"].get(self.collection) or {}
        return {int(r[self.id_field]): r for r in rows.values()}

    def uniconta_rows(self, stack: Stack) -> dict[Any, dict[str, Any]]:
        """The Uniconta records by key, user fields included, read from the sandbox's state."""
        rows = admin(stack.uniconta_url, "GET", "/state")["tables"].get(self.table) or {}
        return {self.key_type(r[self.key]): {**r, **(r.get("_user") or {})} for r in rows.values()}

    def uniconta_of(self, stack: Stack, webcrm_id: int) -> dict[str, Any] | None:
        """The one Uniconta record linked to the webCRM record (None for none or several)."""
        return _single(self.uniconta_rows(stack).values(), self.link, webcrm_id)

    def webcrm_of(self, stack: Stack, key: Any) -> dict[str, Any] | None:
        """The one webCRM record linked to the Uniconta record (None for none or several)."""
        return _single(self.webcrm_rows(stack).values(), self.back_link, key)

    def ui_webcrm(self, stack: Stack, record: int | None = None, **fields: Any) -> dict[str, Any]:
        """A person creates (no `record`) or edits a webCRM record."""
        if record is None:
            return admin(stack.webcrm_url, "POST", f"/ui/{self.collection}", json=fields)
        return admin(stack.webcrm_url, "PUT", f"/ui/{self.collection}/{record}", json=fields)

    def ui_uniconta(self, stack: Stack, method: str, **fields: Any) -> dict[str, Any]:
        """A person creates (POST) or edits (PUT, the key among `fields`) a Uniconta record."""
        return admin(stack.uniconta_url, method, f"/ui/{self.table}", json=fields)

    def writes(self, stack: Stack) -> dict[str, int]:
        """API writes per side to the pair's records, from the sandboxes' call logs."""
        def count(url: str, word: str) -> int:
            calls = admin(url, "GET", "/calls")["calls"]
            return sum(1 for c in calls if c["method"] in ("POST", "PUT", "DELETE") and word in c["path"]
                       and not (self.ignore_hooks and "Hooks" in c["path"]))
        return {"webcrm": count(stack.webcrm_url, f"/{self.collection}"),
                "uniconta": count(stack.uniconta_url, self.table)}

    def new_linked(self, stack: Stack, **fields: Any) -> tuple[int, dict[str, Any]]:
        """A webCRM record a person creates, once the flow has made its Uniconta record and linked both."""
        record = self.ui_webcrm(stack, **fields)[self.id_field]
        other = wait_for(lambda: self.uniconta_of(stack, record),
                         what=f"{self.table} for the new {self.collection} record")
        wait_for(lambda: self.webcrm_rows(stack)[record][self.back_link] == str(other[self.key]),
                 what=f"link on the {self.collection} record")
        settle(stack)
        return record, other


def _single(rows: Iterable[dict[str, Any]], field: str, value: Any) -> dict[str, Any] | None:
    found = [r for r in rows if str(r.get(field) or "") == str(value)]
    return found[0] if len(found) == 1 else None


def results(stack: Stack, entity: str, record: str | int) -> list[dict[str, Any]]:
    """The journal's "done" entries of a record (each says what the sync did)."""
    return [e for e in journal.entries(stack.redis, CONNECTION, entity, str(record)) if e["kind"] == "done"]
