"""webCRM deliveries with quotation lines → Uniconta debtor orders with lines (one-way).

A delivery marked ready (`orders.ready_field` holds one of `orders.ready_values`) becomes one
`DebtorOrder` with one `DebtorOrderLine` per quotation line; afterwards the delivery shows
the order number (`DeliveryErpId`), `DeliveryErpStatus = Synchronized` and the sync time, and
edits of a synchronized delivery update the order while it exists. The order carries the
delivery id and each line its quotation-line id in user-defined fields: the order is found by
that field before anything is inserted, and lines are reconciled by it, never by position,
so retries, duplicates and crashes never make a second order or line.

Quotation-line events only queue their delivery (coalesced with other triggers); the
delivery job does the work. See docs/flows/orders.md for the rules and the states shown in
webCRM.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from sync.clients.errors import AuthError, Conflict, NotFound, Permanent, Transient
from sync.clients.uniconta import odata_literal
from sync.config import OrderFlow
from sync.events import Event
from sync.flows import FlowError, Result
from sync.flows.orders_deps import Waiting, debtor_account, employee_number, linked_debtor
from sync.flows.orders_map import (
    ERP_ID,
    ERP_STATUS,
    ERP_SYNC_TIME,
    SYNCHRONIZED,
    LinePlan,
    changed_fields,
    cost_price_warnings,
    currency_problem,
    describe,
    input_projection,
    is_ready,
    item_number,
    line_sort_key,
    map_header,
    map_line,
    order_currency,
    plan_lines,
    text,
    was_sent,
    webcrm_totals,
)
from sync.runtime import ConnectionContext
from sync.state import fingerprints, intake, journal, keys, waiting
from sync.totals import Amounts, same_money

ENTITY = "delivery"
LINE_ENTITY = "quotationline"
DELIVERIES = "Deliveries"
ORDER = "DebtorOrderClientUser"
ORDER_LINE = "DebtorOrderLineClientUser"
ITEM = "InvItemClient"
DEBTOR = "DebtorClient"
INVOICE = "DebtorInvoiceClient"
HANDLED = "handled"  # fingerprint side: the webCRM input we last brought to a final state
ITEMS_PER_QUERY = 20  # OData `Item eq 'a' or Item eq 'b' ...`: one call per 20 item numbers
STATUS_MAX = 250
FULL_ORIGINS = ("resync", "backfill", "dlq")  # never take the fingerprint shortcut


# --------------------------------------------------------------------------- quotation lines


def sync_quotation_line(ctx: ConnectionContext, event: Event) -> Result:
    """A line changed: queue its delivery (coalesced with other triggers), never sync inline."""
    line_id = _webcrm_id(event.record_id, "quotation line")
    try:
        line = ctx.webcrm.get("QuotationLines", line_id)
    except NotFound:
        delivery_id = _delivery_of_removed_line(ctx, line_id)
        if delivery_id is None:
            return Result("absent", {"reason": "line deleted in webCRM and never sent to Uniconta"})
    else:
        delivery_id = int(line.get("QuotationLineOpportunityId") or 0)
        if not delivery_id:
            return Result("skipped", {"reason": "line has no delivery"})
        ctx.redis.hset(_parents_key(ctx), str(line_id), str(delivery_id))
    outcome = intake.accept(ctx.redis, Event(ctx.connection.id, "webcrm", ENTITY, str(delivery_id),
                                             origin="dependency"), ctx.enqueue)
    # Deliveries and opportunities share one id sequence: an opportunity's line queues an id that the
    # delivery job finds absent (one read), which is cheaper than asking here first.
    return Result("queued", {"delivery": delivery_id, "intake": outcome.status})


def _delivery_of_removed_line(ctx: ConnectionContext, line_id: int) -> int | None:
    """The delivery a deleted line belonged to: our cache, else the Uniconta line's order."""
    cached = ctx.redis.hget(_parents_key(ctx), str(line_id))
    if cached is not None:
        ctx.redis.hdel(_parents_key(ctx), str(line_id))
        return int(cached)
    cfg = ctx.connection.orders
    rows = list(ctx.uniconta.odata(ORDER_LINE, filter=f"{cfg.uniconta_line_link_field} eq "
                                                      f"{odata_literal(str(line_id))}"))
    for row in rows:
        orders = list(ctx.uniconta.odata(ORDER, filter=f"OrderNumber eq {int(row['OrderNumber'])}"))
        for order in orders:
            link = text(order.get(cfg.uniconta_link_field))
            if link.isdigit():
                return int(link)
    return None


def _parents_key(ctx: ConnectionContext) -> str:
    """Hash: quotation-line id → delivery id, so a deleted line still finds its delivery."""
    return keys.links(ctx.connection.id, LINE_ENTITY, "parent")


# --------------------------------------------------------------------------- deliveries


def sync_delivery(ctx: ConnectionContext, event: Event) -> Result:
    cfg = ctx.connection.orders
    delivery_id = _webcrm_id(event.record_id, "delivery")
    try:
        delivery = ctx.webcrm.get(DELIVERIES, delivery_id)
    except NotFound:
        # Deleted (only a person can, through its organisation), or an opportunity's id. A Uniconta
        # order already made stays: it is a business document, not ours to remove.
        return Result("absent", {"reason": "no delivery with this id in webCRM"})

    ready = is_ready(delivery, cfg)
    synced_before = was_sent(delivery) or text(delivery.get(ERP_STATUS)) == SYNCHRONIZED
    if not ready and not synced_before:
        return Result("skipped", {"reason": f"not marked ready ({cfg.ready_field} = "
                                            f"{text(delivery.get(cfg.ready_field))!r})"})

    lines = sorted(ctx.webcrm.delivery_lines(delivery_id), key=line_sort_key)
    if lines:
        ctx.redis.hset(_parents_key(ctx), mapping={str(line["QuotationLineId"]): str(delivery_id)
                                                   for line in lines})
    employee = employee_number(ctx, delivery.get("DeliveryResponsible"))
    fingerprint = fingerprints.of(input_projection(delivery, lines, cfg, employee))
    shortcut = _shortcut(ctx, event, delivery, fingerprint, ready)
    if shortcut:
        return Result("unchanged", {"reason": shortcut})

    order = _find_order(ctx, cfg, delivery_id)
    if order is None and was_sent(delivery):
        return _order_gone(ctx, cfg, delivery, fingerprint)
    if order is None and not ready:
        return Result("skipped", {"reason": "not marked ready, and no Uniconta order exists for it"})

    org_id = int(delivery.get("DeliveryOrganisationId") or 0)
    if not org_id:
        raise FlowError("the delivery has no organisation")
    try:
        try:
            account = debtor_account(ctx, org_id)
        except Waiting as wait:
            return _wait(ctx, cfg, event, delivery, org_id, wait.reason, fingerprint, recheck=True)
        debtor = ctx.uniconta.get_one(DEBTOR, "Account", account)
        if debtor is None:
            raise Waiting(f"debtor {account} of organisation {org_id} was not found in Uniconta")
        problem = currency_problem(delivery, debtor, cfg)
        if problem:
            raise Waiting(problem)
    except Waiting as wait:
        return _wait(ctx, cfg, event, delivery, org_id, wait.reason, fingerprint)

    wanted = [map_line(line, cfg) for line in lines]
    items = _check_items(ctx, cfg, delivery, lines, fingerprint)
    for warning in cost_price_warnings(wanted, items):
        journal.note("cost-price-from-item", **warning)
    header = map_header(delivery, cfg, account=account, currency=order_currency(debtor), employee=employee)
    order, action, plan = _write_order(ctx, cfg, delivery_id, order, header, wanted)
    number = int(order["OrderNumber"])
    detail = {"order": number, "lines": plan.summary(),
              **_check_totals(ctx, delivery, webcrm_totals(lines), order, plan, reread=action != "unchanged")}
    _mark_synchronized(ctx, cfg, delivery_id, number, touched=action != "unchanged" or ready)
    ctx.links.bind(ENTITY, delivery_id, str(number))
    _remember(ctx, delivery, fingerprint, "synced")
    return Result(action, detail)


# --------------------------------------------------------------------------- reading Uniconta


def _find_order(ctx: ConnectionContext, cfg: OrderFlow, delivery_id: int) -> dict[str, Any] | None:
    """The Uniconta order made for a delivery, found by its link field (the truth, not the cache)."""
    flt = f"{cfg.uniconta_link_field} eq {odata_literal(str(delivery_id))}"
    with _user_field(cfg.uniconta_link_field, "DebtorOrder", "orders.uniconta_link_field"):
        rows = sorted(ctx.uniconta.odata(ORDER, filter=flt), key=lambda r: int(r.get("OrderNumber") or 0))
    if len(rows) > 1:  # never made by this flow; reported, and the oldest one is kept in step
        journal.note("duplicate-orders", orders=[r.get("OrderNumber") for r in rows])
    return rows[0] if rows else None


def _check_items(ctx: ConnectionContext, cfg: OrderFlow, delivery: dict[str, Any], lines: list[dict[str, Any]],
                 fingerprint: str) -> dict[str, dict[str, Any]]:
    """Every item number on the lines, looked up in Uniconta before anything is written.

    An unknown one fails the whole order (no half order): journaled, shown on the delivery, and
    dead-lettered as a FlowError.
    """
    numbers = sorted({n for n in (item_number(line, cfg) for line in lines) if n})
    found: dict[str, dict[str, Any]] = {}
    for start in range(0, len(numbers), ITEMS_PER_QUERY):
        chunk = numbers[start:start + ITEMS_PER_QUERY]
        flt = " or ".join(f"Item eq {odata_literal(n)}" for n in chunk)
        for row in ctx.uniconta.odata(ITEM, filter=flt):
            found[str(row.get("Item"))] = row
    missing = [n for n in numbers if n not in found]
    if not missing:
        return found
    where = {n: [int(line["QuotationLineId"]) for line in lines if item_number(line, cfg) == n] for n in missing}
    reason = (f"item number{'s' if len(missing) > 1 else ''} {', '.join(missing)} unknown in Uniconta; "
              "correct the lines or create the items in Uniconta, then save the delivery again")
    journal.note("items-unknown", items=missing, lines=where)
    _show_status(ctx, cfg, int(delivery["DeliveryId"]), f"Error: {reason}")
    _remember(ctx, delivery, fingerprint, "failed")
    raise FlowError(f"delivery {delivery['DeliveryId']}: {reason}")


# --------------------------------------------------------------------------- writing Uniconta


def _write_order(ctx: ConnectionContext, cfg: OrderFlow, delivery_id: int, order: dict[str, Any] | None,
                 header: dict[str, Any], wanted: list[dict[str, Any]]) -> tuple[dict[str, Any], str, LinePlan]:
    """Insert or update the order header, then reconcile its lines by link.

    Returns (the order as read or written before the lines, action, line plan). A crash anywhere
    in here is repaired by the next attempt: the order is found by its link, and the lines
    already inserted are matched by theirs.
    """
    action = "unchanged"
    existing: list[dict[str, Any]] = []
    if order is None:
        stored = ctx.uniconta.insert(ORDER, {k: v for k, v in header.items() if v is not None})
        if not stored or not stored.get("OrderNumber"):  # 204 or no key: find what we made
            stored = _find_order(ctx, cfg, delivery_id)
            if stored is None:
                raise Transient("the order just inserted is not found by its link yet; retrying is safe",
                                system="uniconta", method="POST", path=f"/api/Entities/Insert/{ORDER}")
        order = stored
        action = "created"
        journal.note("order-created", order=order.get("OrderNumber"), account=header.get("Account"))
    else:
        changes = changed_fields(order, header)
        if changes:
            order = ctx.uniconta.update(ORDER, {**order, **header}) or {**order, **header}
            action = "updated"
            journal.note("order-updated", order=order.get("OrderNumber"), fields=changes)
        existing = list(ctx.uniconta.odata(ORDER_LINE, filter=f"OrderNumber eq {int(order['OrderNumber'])}"))
    number = int(order["OrderNumber"])

    plan = plan_lines(wanted, existing, cfg.uniconta_line_link_field)
    if plan.insert:
        _check_line_link_field(ctx, cfg)
    for line in plan.delete:
        ctx.uniconta.delete(ORDER_LINE, {"RowId": line["RowId"]})
    for current, new in plan.update:
        ctx.uniconta.update(ORDER_LINE, {**current, **new})
    if plan.insert:
        ctx.uniconta.insert_list(ORDER_LINE, [{"OrderNumber": number, **{k: v for k, v in line.items() if v is not None}}
                                              for line in plan.insert])
    if plan.unlinked:
        journal.note("lines-not-from-webcrm", order=number, line_numbers=[r.get("LineNumber") for r in plan.unlinked])
    if plan.writes:
        journal.note("lines", order=number, **plan.summary())
        if action == "unchanged":
            action = "updated"
    return order, action, plan


def _check_line_link_field(ctx: ConnectionContext, cfg: OrderFlow) -> None:
    """Uniconta ignores unknown keys on writes: lines inserted without their link would be inserted
    again by every later sync. So before inserting lines, make sure the field exists (a filter on an
    unknown property is refused); remembered for an hour."""
    marker = keys.counter(ctx.connection.id, f"orders:line-link-field:{cfg.uniconta_line_link_field}")
    if ctx.redis.get(marker):
        return
    with _user_field(cfg.uniconta_line_link_field, "DebtorOrderLine", "orders.uniconta_line_link_field"):
        list(ctx.uniconta.odata(ORDER_LINE, filter=f"{cfg.uniconta_line_link_field} eq {odata_literal('-')}",
                                top=1))
    ctx.redis.set(marker, "1", ex=3600)


@contextmanager
def _user_field(name: str, table: str, setting: str) -> Iterator[None]:
    """A filter on a user-defined field Uniconta does not have is refused (400): say which and where."""
    try:
        yield
    except (AuthError, NotFound, Conflict):
        raise
    except Permanent as err:
        raise FlowError(f"Uniconta refused a filter on the user-defined field {name!r} of {table} ({setting}); "
                        f"does the field exist in Uniconta? {err}") from None


def _check_totals(ctx: ConnectionContext, delivery: dict[str, Any], expected: Amounts, order: dict[str, Any],
                  plan: LinePlan, reread: bool) -> dict[str, Any]:
    """The order's totals as webCRM shows them, as computed here and as Uniconta has them, journaled.

    Uniconta's are re-read after any write; a difference (a line a person added in Uniconta, a
    cost price Uniconta filled in from the item) is journaled, not an error: the order exists.
    """
    if reread:
        order = ctx.uniconta.get_one("DebtorOrderClient", "OrderNumber", int(order["OrderNumber"])) or order
    shown_value, shown_margin = delivery.get("DeliveryOrderValue"), delivery.get("DeliveryOrderGmValue")
    differences = []
    if not (same_money(shown_value, expected.value) and same_money(shown_margin, expected.margin)):
        differences.append(f"webCRM shows value {shown_value}, margin {shown_margin}")
    if not (same_money(order.get("Total"), expected.value) and same_money(order.get("Margin"), expected.margin)):
        differences.append(f"Uniconta has total {order.get('Total')}, margin {order.get('Margin')} "
                           f"({order.get('MarginRatio')} %)")
    if plan.unlinked:
        differences.append(f"the Uniconta order also has {len(plan.unlinked)} line(s) not from webCRM")
    journal.note("totals", expected=describe(expected), uniconta_total=order.get("Total"),
                 uniconta_margin=order.get("Margin"), uniconta_margin_ratio=order.get("MarginRatio"))
    detail: dict[str, Any] = {"totals": expected.as_floats()}
    if differences:
        detail["totals_differ"] = "; ".join(differences)
        journal.note("totals-differ", reasons=differences)
    return detail


# --------------------------------------------------------------------------- writing webCRM


def _mark_synchronized(ctx: ConnectionContext, cfg: OrderFlow, delivery_id: int, number: int, *,
                       touched: bool) -> None:
    """DeliveryErpId = order number, DeliveryErpStatus = Synchronized, the sync time and status text."""
    wanted = {ERP_ID: str(number), ERP_STATUS: SYNCHRONIZED}
    if cfg.status_field:
        wanted[cfg.status_field] = f"Uniconta order {number}"
    _put_delivery(ctx, delivery_id, wanted, stamp=touched)


def _show_status(ctx: ConnectionContext, cfg: OrderFlow, delivery_id: int, status: str,
                 extra: dict[str, str] | None = None) -> None:
    """Show why an order waits, failed or is no longer sent, in the delivery's status field."""
    wanted = dict(extra or {})
    if cfg.status_field:
        wanted[cfg.status_field] = status[:STATUS_MAX]
    if wanted:
        _put_delivery(ctx, delivery_id, wanted, stamp=False)


def _put_delivery(ctx: ConnectionContext, delivery_id: int, wanted: dict[str, str], *, stamp: bool) -> None:
    """GET → modify → PUT the whole delivery (webCRM may clear omitted fields), only if something changes."""
    current = ctx.webcrm.get(DELIVERIES, delivery_id)
    if not stamp and all(text(current.get(k)) == v for k, v in wanted.items()):
        return
    body = {**current, **wanted}
    if stamp:
        body[ERP_SYNC_TIME] = datetime.now(UTC).isoformat(timespec="seconds")
    ctx.webcrm.update(DELIVERIES, delivery_id, body)


# --------------------------------------------------------------------------- states


def _wait(ctx: ConnectionContext, cfg: OrderFlow, event: Event, delivery: dict[str, Any], org_id: int, reason: str,
          fingerprint: str, *, recheck: bool = False) -> Result:
    """Park the delivery on its organisation; the organisation flow queues it again once it is ready
    (after any sync of a linked organisation or its debtor, so a fixed debtor currency counts too).

    `recheck`: the debtor was missing. Its organisation's job may have linked one and released the
    waiting records between our check and our parking; looking again after parking closes that gap.
    """
    dependency = f"organisation:{org_id}"
    waiting.park(ctx.redis, event, dependency)
    if recheck and linked_debtor(ctx, org_id):
        waiting.release(ctx.redis, ctx.connection.id, dependency, ctx.enqueue)
        journal.note("released", reason="the organisation got its debtor meanwhile")
    journal.note("waiting", reason=reason, dependency=dependency)
    _show_status(ctx, cfg, int(delivery["DeliveryId"]), f"Waiting: {reason}")
    _remember(ctx, delivery, fingerprint, "waiting")
    return Result("waiting", {"reason": reason, "dependency": dependency})


def _order_gone(ctx: ConnectionContext, cfg: OrderFlow, delivery: dict[str, Any], fingerprint: str) -> Result:
    """The delivery's order was invoiced or deleted in Uniconta: never re-create it; say so on the delivery."""
    delivery_id = int(delivery["DeliveryId"])
    number = text(delivery.get(ERP_ID))
    invoice = None
    if number.isdigit():
        invoice = next(iter(ctx.uniconta.odata(INVOICE, filter=f"OrderNumber eq {int(number)}", top=1)), None)
    if invoice is not None:
        reason = (f"Uniconta order {number} was invoiced (invoice {invoice.get('InvoiceNumber')}); "
                  "changes are no longer sent")
    else:
        reason = f"Uniconta order {number} was deleted in Uniconta; changes are no longer sent"
    journal.note("order-gone", order=number, invoice=invoice.get("InvoiceNumber") if invoice else None)
    # A delivery marked ready again goes back to Synchronized: the order is not made a second time.
    _show_status(ctx, cfg, delivery_id, reason, extra={ERP_STATUS: SYNCHRONIZED})
    ctx.links.forget(ENTITY, webcrm_id=delivery_id)
    _remember(ctx, delivery, fingerprint, "gone")
    return Result("skipped", {"reason": reason, "order": number,
                              "invoice": invoice.get("InvoiceNumber") if invoice else None})


def _shortcut(ctx: ConnectionContext, event: Event, delivery: dict[str, Any], fingerprint: str, ready: bool
              ) -> str | None:
    """Why this event needs no work, or None. Only when nothing the order uses has changed since the
    delivery was last handled, and never for resync, backfill or a requeued dead letter.

    - our own write-back (UpdatedBy is the API user) → nothing to do, whatever the state;
    - no newer edit of the delivery (a line event that changed nothing, a late duplicate) → nothing;
    - a person touched the delivery: synchronized and not marked ready → nothing the order uses
      changed; marked ready again, or after a failure or a wait → handled again;
    - a waiting delivery queued by its organisation (origin "dependency") is always handled again.
    """
    if event.origin in FULL_ORIGINS:
        return None
    raw = ctx.fingerprints.get(ENTITY, HANDLED, int(delivery["DeliveryId"]))
    try:
        last = json.loads(raw) if raw else None
    except ValueError:
        last = None
    if not isinstance(last, dict) or last.get("fp") != fingerprint:
        return None
    if last.get("state") == "waiting" and event.origin == "dependency":
        return None
    if text(delivery.get("DeliveryUpdatedBy")) == ctx.connection.webcrm.api_user_name:
        return f"our own write to the delivery ({last.get('state')})"
    if text(delivery.get("DeliveryUpdatedAt")) == last.get("updated_at"):
        return f"no change since the delivery was last handled ({last.get('state')})"
    if last.get("state") in ("synced", "gone") and not ready:
        return "nothing the order uses has changed"
    return None


def _remember(ctx: ConnectionContext, delivery: dict[str, Any], fingerprint: str, state: str) -> None:
    """What the delivery looked like when it was last brought to a state (synced, waiting, failed, gone)."""
    ctx.fingerprints.put(ENTITY, HANDLED, int(delivery["DeliveryId"]), json.dumps(
        {"fp": fingerprint, "state": state, "updated_at": text(delivery.get("DeliveryUpdatedAt"))}))


def _webcrm_id(record_id: str, what: str) -> int:
    if not record_id.isdigit() or int(record_id) <= 0:
        raise FlowError(f"not a webCRM {what} id: {record_id!r}")
    return int(record_id)

