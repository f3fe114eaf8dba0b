"""What an order depends on: the organisation's debtor (through the organisation flow) and the
salesperson (through the user↔employee link). A dependency that is not ready raises `Waiting`.
"""

from __future__ import annotations

from typing import Any

from sync.flows import organisations
from sync.runtime import ConnectionContext


class Waiting(Exception):
    """The order cannot go to Uniconta yet; `reason` says why, in words for the webCRM user."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


def debtor_account(ctx: ConnectionContext, organisation_id: int) -> str:
    """The Account of the organisation's debtor, created through the organisation flow if it qualifies.

    Raises `Waiting` when the organisation is not a customer or misses required fields.
    """
    try:
        return str(organisations.ensure_debtor(ctx, organisation_id))
    except organisations.NotReady as err:
        raise Waiting(err.reason or f"organisation {organisation_id} has no debtor in Uniconta") from None


def linked_debtor(ctx: ConnectionContext, organisation_id: int) -> str | None:
    """The organisation's debtor Account if it is linked (no lock, no writes), else None."""
    account = organisations.linked_debtor(ctx, organisation_id)
    return str(account) if account else None


def employee_number(ctx: ConnectionContext, user_id: Any) -> str | None:
    """The Uniconta employee (salesperson) linked to a webCRM user, or None (Employee stays empty)."""
    try:
        uid = int(user_id or 0)
    except (TypeError, ValueError):
        return None
    return ctx.links.uniconta_key("user", uid) if uid > 0 else None
