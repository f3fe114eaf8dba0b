"""The order flow's decisions with fake API clients: when an event needs no work, and how a
quotation-line event finds and queues its delivery (also for a deleted line)."""

from __future__ import annotations

from typing import Any

import pytest
import redis

import tasks.dispatch
from sync import fingerprints, keys
from sync.clients.errors import NotFound, Permanent
from sync.config import parse_connections
from sync.events import Event
from sync.flows import FlowError
from sync.flows import orders as flow
from sync.runtime import ConnectionContext


class FakeWebcrm:
    def __init__(self, records: dict[tuple[str, int], dict[str, Any]] | None = None) -> None:
        self.records = records or {}
        self.calls: list[str] = []

    def get(self, entity: str, ident: int) -> dict[str, Any]:
        self.calls.append(f"GET {entity}/{ident}")
        if (entity, ident) not in self.records:
            raise NotFound("gone", system="webcrm", method="GET", path=f"/{entity}/{ident}")
        return dict(self.records[(entity, ident)])


class FakeUniconta:
    def __init__(self, tables: dict[str, list[dict[str, Any]]] | None = None) -> None:
        self.tables = tables or {}
        self.calls: list[str] = []

    unknown: tuple[str, ...] = ()

    def odata(self, entity: str, *, filter: str | None = None, **_: Any) -> list[dict[str, Any]]:
        self.calls.append(f"odata {entity} {filter}")
        prop, _eq, literal = (filter or "").partition(" eq ")
        if prop in self.unknown:
            raise Permanent(f"$filter: could not find a property named {prop!r}", system="uniconta", method="GET",
                            path=f"/odata/1/{entity}", status=400, code="NoSucces")
        value: Any = literal.strip("'") if literal.startswith("'") else int(literal)
        return [r for r in self.tables.get(entity, []) if r.get(prop) == value]


@pytest.fixture
def ctx(redis_client: redis.Redis) -> ConnectionContext:
    doc = {"connections": {"c": {"webhook": {"tokens": ["t"]}, "webcrm": {"base_url": "http://w", "auth_code": "a"},
                                 "uniconta": {"base_url": "http://u", "company_id": 1, "username": "u",
                                              "password": "p"}}}}
    conn = parse_connections(doc, source="test")["c"]
    return ConnectionContext(conn, redis_client, FakeWebcrm(), FakeUniconta())  # type: ignore[arg-type]


@pytest.fixture
def queued(monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    events: list[Event] = []
    monkeypatch.setattr(tasks.dispatch, "enqueue", events.append)
    return events


def delivery(**fields: Any) -> dict[str, Any]:
    return {"DeliveryId": 7, "DeliveryUpdatedAt": "2024-05-01T10:00:00+00:00", "DeliveryUpdatedBy": "Anna Jensen",
            **fields}


def event(origin: str = "webhook") -> Event:
    return Event("c", "webcrm", "delivery", "7", origin=origin)


# --- the shortcut ----------------------------------------------------------------------------------


def test_no_shortcut_without_a_remembered_state_or_with_another_fingerprint(ctx: ConnectionContext) -> None:
    assert flow._shortcut(ctx, event(), delivery(), "fp1", True) is None
    flow._remember(ctx, delivery(), "fp1", "synced")
    assert flow._shortcut(ctx, event(), delivery(), "fp2", False) is None


@pytest.mark.parametrize("state", ["synced", "waiting", "failed", "gone"])
def test_our_own_write_back_is_recognised_in_every_state(ctx: ConnectionContext, state: str) -> None:
    flow._remember(ctx, delivery(), "fp", state)
    echo = delivery(DeliveryUpdatedBy="Integration", DeliveryUpdatedAt="2024-05-01T10:00:05+00:00")
    assert "our own write" in (flow._shortcut(ctx, event(), echo, "fp", True) or "")


def test_an_event_without_a_newer_edit_is_nothing_new(ctx: ConnectionContext) -> None:
    flow._remember(ctx, delivery(), "fp", "failed")
    assert "no change" in (flow._shortcut(ctx, event("dependency"), delivery(), "fp", True) or "")
    assert "no change" in (flow._shortcut(ctx, event("reconcile"), delivery(), "fp", True) or "")


def test_a_person_marking_ready_again_is_handled_again(ctx: ConnectionContext) -> None:
    later = delivery(DeliveryUpdatedAt="2024-05-01T11:00:00+00:00")
    for state in ("synced", "failed", "waiting", "gone"):
        flow._remember(ctx, delivery(), "fp", state)
        assert flow._shortcut(ctx, event(), later, "fp", True) is None, state


def test_synchronized_delivery_edited_outside_the_order_fields_needs_nothing(ctx: ConnectionContext) -> None:
    flow._remember(ctx, delivery(), "fp", "synced")
    later = delivery(DeliveryUpdatedAt="2024-05-01T11:00:00+00:00")
    assert flow._shortcut(ctx, event(), later, "fp", False) == "nothing the order uses has changed"


def test_waiting_delivery_released_by_its_organisation_is_handled_again(ctx: ConnectionContext) -> None:
    flow._remember(ctx, delivery(), "fp", "waiting")
    assert flow._shortcut(ctx, event("dependency"), delivery(DeliveryUpdatedBy="Integration"), "fp", True) is None


@pytest.mark.parametrize("origin", ["resync", "backfill", "dlq"])
def test_resync_backfill_and_requeue_always_compare(ctx: ConnectionContext, origin: str) -> None:
    flow._remember(ctx, delivery(), "fp", "synced")
    assert flow._shortcut(ctx, event(origin), delivery(DeliveryUpdatedBy="Integration"), "fp", False) is None


def test_a_damaged_remembered_state_means_a_full_sync(ctx: ConnectionContext) -> None:
    ctx.fingerprints.put(flow.ENTITY, flow.HANDLED, 7, "not json")
    assert flow._shortcut(ctx, event(), delivery(), "fp", False) is None
    assert fingerprints.of({"a": 1}) != fingerprints.of({"a": 2})


# --- quotation-line events -------------------------------------------------------------------------


def test_line_event_queues_its_delivery_through_intake(ctx: ConnectionContext, queued: list[Event]) -> None:
    ctx.webcrm.records[("QuotationLines", 31)] = {"QuotationLineId": 31, "QuotationLineOpportunityId": 7}
    result = flow.sync_quotation_line(ctx, Event("c", "webcrm", "quotationline", "31"))
    assert result.action == "queued" and result.detail["delivery"] == 7
    assert [(e.entity, e.record_id, e.origin) for e in queued] == [("delivery", "7", "dependency")]
    # a second line event while the delivery job is pending is coalesced into it
    assert flow.sync_quotation_line(ctx, Event("c", "webcrm", "quotationline", "31")).detail["intake"] == "coalesced"
    assert len(queued) == 1


def test_deleted_line_finds_its_delivery_in_the_cache(ctx: ConnectionContext, queued: list[Event]) -> None:
    ctx.redis.hset(keys.links("c", "quotationline", "parent"), "32", "8")
    result = flow.sync_quotation_line(ctx, Event("c", "webcrm", "quotationline", "32", operation="delete"))
    assert result.detail["delivery"] == 8 and queued[0].record_id == "8"
    assert ctx.uniconta.calls == []


def test_deleted_line_finds_its_delivery_through_uniconta(ctx: ConnectionContext, queued: list[Event]) -> None:
    ctx.uniconta.tables = {"DebtorOrderLineClientUser": [{"OrderNumber": 4, "WebcrmLineId": "33"}],
                           "DebtorOrderClientUser": [{"OrderNumber": 4, "WebcrmDeliveryId": "9"}]}
    result = flow.sync_quotation_line(ctx, Event("c", "webcrm", "quotationline", "33", operation="delete"))
    assert result.detail["delivery"] == 9 and queued[0].record_id == "9"


def test_deleted_line_never_sent_is_absent(ctx: ConnectionContext, queued: list[Event]) -> None:
    result = flow.sync_quotation_line(ctx, Event("c", "webcrm", "quotationline", "34", operation="delete"))
    assert result.action == "absent" and queued == []


def test_bad_ids_are_flow_errors(ctx: ConnectionContext) -> None:
    with pytest.raises(FlowError):
        flow.sync_quotation_line(ctx, Event("c", "webcrm", "quotationline", "x"))
    with pytest.raises(FlowError):
        flow.sync_delivery(ctx, Event("c", "webcrm", "delivery", "0"))


# --- deliveries that need no Uniconta call ----------------------------------------------------------


def test_delivery_not_marked_ready_costs_one_read(ctx: ConnectionContext) -> None:
    ctx.webcrm.records[("Deliveries", 7)] = {"DeliveryId": 7, "DeliveryErpStatus": "NotReadyForSynchronization",
                                             "DeliveryErpId": ""}
    result = flow.sync_delivery(ctx, event())
    assert result.action == "skipped" and "not marked ready" in result.detail["reason"]
    assert ctx.webcrm.calls == ["GET Deliveries/7"] and ctx.uniconta.calls == []


def test_deleted_delivery_is_absent(ctx: ConnectionContext) -> None:
    assert flow.sync_delivery(ctx, event()).action == "absent"


# --- user-defined fields that Uniconta does not have --------------------------------------------------


def test_missing_order_link_field_is_a_clear_error(ctx: ConnectionContext) -> None:
    ctx.uniconta.unknown = ("WebcrmDeliveryId",)
    with pytest.raises(FlowError, match=r"WebcrmDeliveryId.*DebtorOrder.*orders\.uniconta_link_field"):
        flow._find_order(ctx, ctx.connection.orders, 7)


def test_line_link_field_is_checked_before_lines_are_inserted_and_remembered(ctx: ConnectionContext) -> None:
    ctx.uniconta.unknown = ("WebcrmLineId",)
    with pytest.raises(FlowError, match=r"WebcrmLineId.*DebtorOrderLine"):
        flow._check_line_link_field(ctx, ctx.connection.orders)
    ctx.uniconta.unknown = ()
    flow._check_line_link_field(ctx, ctx.connection.orders)
    flow._check_line_link_field(ctx, ctx.connection.orders)
    assert len([c for c in ctx.uniconta.calls if "WebcrmLineId" in c]) == 2  # the refused one and one more
