"""Uniconta items → webCRM product catalogue (`QuotationLines/LinkedData`), one-way.

Matched by item number: the link cache first (verified), then a query on the
catalogue's item-number field, so a retried or duplicated event never makes a
second catalogue item. An item deleted or blocked in Uniconta leaves the
catalogue.
"""

from __future__ import annotations

from typing import Any

from sync.clients.errors import NotFound, Permanent, Transient
from sync.clients.webcrm import sql_literal
from sync.config import ItemFlow
from sync.events import Event
from sync.flows import Result
from sync.runtime import ConnectionContext
from sync.state import fingerprints, journal
from sync.totals import dec, money, same_money

CATALOGUE = "QuotationLines/LinkedData"
ENTITY = "item"
ITEM_ENTITY = "InvItemClient"
ID_FIELD = "QuotationLineLinkedDataItemId"
PLACEHOLDER = "-"  # webCRM refuses empty Data fields; webCRM's own integration writes "-" (S4)


def map_item(item: dict[str, Any], cfg: ItemFlow) -> dict[str, Any]:
    """The catalogue fields an item owns (pure: unit-tested without I/O)."""
    def text(value: Any) -> str:
        value = "" if value is None else str(value).strip()
        return value or PLACEHOLDER

    projection: dict[str, Any] = {
        cfg.number_field: str(item.get("Item", "")).strip(),
        cfg.name_field: text(item.get("Name")),
        "QuotationLineLinkedDataItemPrice": _money(item.get(cfg.price_field)),
        "QuotationLineLinkedDataItemCostPrice": _money(item.get("CostPrice")),
        "QuotationLineLinkedDataItemItemGroup": text(item.get("Group")),
    }
    if cfg.unit_field:
        unit = item.get("Unit")
        # `ItemUnit.None` is Uniconta's "no unit"; REST serialises enums by name.
        projection[cfg.unit_field] = text(None if unit == "None" else unit)
    if cfg.group_field:
        projection[cfg.group_field] = text(item.get("Group"))
    return projection


def _money(value: Any) -> float:
    return float(money(dec(value)))


def sync_item(ctx: ConnectionContext, event: Event) -> Result:
    cfg = ctx.connection.items
    item = _read_item(ctx, event.record_id)
    number = str(item["Item"]) if item else _number_of(event.record_id)
    if number is None:
        return Result("absent", {"reason": "item not found in Uniconta"})
    target_id = _find_catalogue_item(ctx, cfg, number)
    if item is None or item.get("Blocked"):
        reason = "blocked" if item else "deleted"
        if target_id is None:
            return Result("absent", {"reason": f"{reason} in Uniconta, not in the catalogue"})
        ctx.webcrm.delete(CATALOGUE, target_id)
        ctx.links.forget(ENTITY, uniconta_key=number)
        ctx.fingerprints.forget(ENTITY, "webcrm", number)
        return Result("deleted", {"catalogue_id": target_id, "reason": reason})

    projection = map_item(item, cfg)
    fingerprint = fingerprints.of(projection)
    if target_id is not None and ctx.fingerprints.get(ENTITY, "webcrm", number) == fingerprint \
            and event.origin not in ("resync", "backfill"):
        return Result("unchanged", {"catalogue_id": target_id})

    if target_id is not None:
        try:
            current = ctx.webcrm.get(CATALOGUE, target_id)
        except NotFound:
            ctx.links.forget(ENTITY, uniconta_key=number)
            target_id, current = None, None
    if target_id is not None and current is not None:
        if all(_same(current.get(k), v) for k, v in projection.items()):
            action = "unchanged"
        else:
            # GET-modify-PUT: the API may clear omitted fields (reference §7, unconfirmed).
            ctx.webcrm.update(CATALOGUE, target_id, {**current, **projection})
            action = "updated"
    else:
        body = {ID_FIELD: 0, "QuotationLineLinkedDataItemEntityType": "Product",
                **{f"QuotationLineLinkedDataItemData{i}": PLACEHOLDER for i in range(1, 10)}, **projection}
        target_id = ctx.webcrm.create(CATALOGUE, body)
        if target_id is None:  # the create answered without an id: find what we made
            target_id = _find_catalogue_item(ctx, cfg, number, use_cache=False)
            if target_id is None:
                # Retrying is safe: the next attempt looks the item up again before creating.
                raise Transient("created catalogue item not found by its number yet", system="webcrm",
                                method="POST", path=f"/{CATALOGUE}")
        action = "created"
    ctx.links.bind(ENTITY, target_id, number)
    ctx.fingerprints.put(ENTITY, "webcrm", number, fingerprint)
    return Result(action, {"catalogue_id": target_id, "item": number})


def _same(current: Any, wanted: Any) -> bool:
    if isinstance(wanted, float):
        return same_money(current, wanted)
    return str(current if current is not None else "").strip() == str(wanted).strip()


def _number_of(record_id: str) -> str | None:
    """An event's record id is the item number, or `#<RowId>` when the webhook had no Key."""
    return None if record_id.startswith("#") else record_id


def _read_item(ctx: ConnectionContext, record_id: str) -> dict[str, Any] | None:
    if record_id.startswith("#"):
        return ctx.uniconta.get_one(ITEM_ENTITY, "RowId", record_id[1:])
    return ctx.uniconta.get_one(ITEM_ENTITY, "Item", record_id)


def _find_catalogue_item(ctx: ConnectionContext, cfg: ItemFlow, number: str, *, use_cache: bool = True) -> int | None:
    """The catalogue id for an item number: cached link (verified by the query result) or a query."""
    if use_cache:
        cached = ctx.links.webcrm_id(ENTITY, number)
        if cached is not None:
            return int(cached)
    try:
        script = f"SELECT * FROM LinkedData WHERE {cfg.number_field} = {sql_literal(number)}"  # noqa: S608 - escaped
        rows = list(ctx.webcrm.query(script))
    except Permanent as err:
        journal.note("query-failed", error=str(err))
        rows = [row for row in ctx.webcrm.iter_all(CATALOGUE) if str(row.get(cfg.number_field, "")) == number]
    ids = sorted(int(row.get(ID_FIELD) or row.get("LinkedDataItemId") or 0) for row in rows)
    ids = [i for i in ids if i]
    if len(ids) > 1:
        journal.note("duplicates-in-catalogue", item=number, ids=ids)
    return ids[0] if ids else None
