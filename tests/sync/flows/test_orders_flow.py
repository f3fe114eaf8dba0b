"""The order flow's decisions on the sandboxes over real HTTP, with the real clients, a real Redis and a
real Celery producer: when an event needs no work, and how a quotation-line event finds and queues
its delivery (also for a deleted line)."""

from __future__ import annotations

from typing import Any

import pytest

from sync.events import Event
from sync.flows import FlowError
from sync.flows import orders as flow
from sync.runtime import ConnectionContext
from sync.state import fingerprints, keys
from tests.support.context import Broker, Sandboxes
from tests.support.stack import CONNECTION


def delivery(**fields: Any) -> dict[str, Any]:
    return {"DeliveryId": 7, "DeliveryUpdatedAt": "2024-05-01T10:00:00+00:00", "DeliveryUpdatedBy": "Anna Jensen",
            **fields}


def event(origin: str = "webhook") -> Event:
    return Event(CONNECTION, "webcrm", "delivery", "7", origin=origin)


def line_event(line_id: int | str, operation: str = "update") -> Event:
    return Event(CONNECTION, "webcrm", "quotationline", str(line_id), operation=operation)


def webcrm_delivery(sb: Sandboxes, **fields: Any) -> tuple[int, int]:
    """(organisation id, delivery id) of a delivery a person made in webCRM."""
    org = int(sb.webcrm.ui("Organisations", OrganisationName="Kunde A/S")["OrganisationId"])
    return org, int(sb.webcrm.ui("Deliveries", DeliveryOrganisationId=org, **fields)["DeliveryId"])


def api_calls(calls: list[dict[str, Any]]) -> list[str]:
    """A sandbox's call log without logins, as "METHOD /path"."""
    return [f"{c['method']} {c['path']}" for c in calls if not c["path"].startswith("/Auth")]


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


def test_line_event_queues_its_delivery_through_intake(ctx: ConnectionContext, sandboxes: Sandboxes,
                                                      broker: Broker) -> None:
    _org, did = webcrm_delivery(sandboxes)
    line = int(sandboxes.webcrm.ui("QuotationLines", QuotationLineOpportunityId=did, QuotationLineData1="I1",
                                   QuotationLineQuantity=1)["QuotationLineId"])
    result = flow.sync_quotation_line(ctx, line_event(line))
    assert result.action == "queued" and result.detail["delivery"] == did
    # Published to the broker, on the queue of dependency jobs.
    assert [(q, e.entity, e.record_id, e.origin) for q, e in broker.events()] == [
        ("sync", "delivery", str(did), "dependency")]
    # The line's delivery is remembered, for when the line is deleted.
    assert ctx.redis.hget(keys.links(CONNECTION, "quotationline", "parent"), str(line)) == str(did)
    # a second line event while the delivery job is pending is coalesced into it
    assert flow.sync_quotation_line(ctx, line_event(line)).detail["intake"] == "coalesced"
    assert len(broker.events()) == 1


def test_deleted_line_finds_its_delivery_in_the_cache(ctx: ConnectionContext, sandboxes: Sandboxes,
                                                      broker: Broker) -> None:
    parents = keys.links(CONNECTION, "quotationline", "parent")
    ctx.redis.hset(parents, "32", "8")
    result = flow.sync_quotation_line(ctx, line_event(32, operation="delete"))  # webCRM answers 404 for it
    assert result.detail["delivery"] == 8 and broker.events()[0][1].record_id == "8"
    assert sandboxes.uniconta.calls() == []
    assert api_calls(sandboxes.webcrm.calls()) == ["GET /QuotationLines/32"]
    assert ctx.redis.hget(parents, "32") is None  # used up


def test_deleted_line_finds_its_delivery_through_uniconta(ctx: ConnectionContext, sandboxes: Sandboxes,
                                                          broker: Broker) -> None:
    sandboxes.uniconta.ui("DebtorClient", Account="10001", Name="Kunde A/S")
    order = sandboxes.uniconta.ui("DebtorOrderClientUser", Account="10001", WebcrmDeliveryId="9")["OrderNumber"]
    sandboxes.uniconta.ui("DebtorOrderLineClientUser", OrderNumber=order, Text="Montage", WebcrmLineId="33")
    result = flow.sync_quotation_line(ctx, line_event(33, operation="delete"))
    assert result.detail["delivery"] == 9 and broker.events()[0][1].record_id == "9"


def test_deleted_line_never_sent_is_absent(ctx: ConnectionContext, broker: Broker) -> None:
    result = flow.sync_quotation_line(ctx, line_event(34, operation="delete"))
    assert result.action == "absent" and broker.events() == []


def test_bad_ids_are_flow_errors(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    with pytest.raises(FlowError):
        flow.sync_quotation_line(ctx, line_event("x"))
    with pytest.raises(FlowError):
        flow.sync_delivery(ctx, Event(CONNECTION, "webcrm", "delivery", "0"))
    assert sandboxes.webcrm.calls() == [] and sandboxes.uniconta.calls() == []


# --- deliveries that need no Uniconta call ----------------------------------------------------------


def test_delivery_not_marked_ready_costs_one_read(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    _org, did = webcrm_delivery(sandboxes, DeliveryErpStatus="NotReadyForSynchronization", DeliveryErpId="")
    result = flow.sync_delivery(ctx, Event(CONNECTION, "webcrm", "delivery", str(did)))
    assert result.action == "skipped" and "not marked ready" in result.detail["reason"]
    assert api_calls(sandboxes.webcrm.calls()) == [f"GET /Deliveries/{did}"] and sandboxes.uniconta.calls() == []


def test_deleted_delivery_is_absent(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    org, did = webcrm_delivery(sandboxes, DeliveryErpStatus="ReadyForSynchronization")
    sandboxes.webcrm.ui_delete("Organisations", org)  # a person deletes the organisation: its deliveries go too
    assert flow.sync_delivery(ctx, Event(CONNECTION, "webcrm", "delivery", str(did))).action == "absent"
    assert sandboxes.uniconta.calls() == []


# --- user-defined fields that Uniconta does not have --------------------------------------------------


def test_missing_order_link_field_is_a_clear_error(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    sandboxes.uniconta.user_fields({"DebtorOrder": []})  # never created in this Uniconta company
    with pytest.raises(FlowError, match=r"WebcrmDeliveryId.*DebtorOrder.*orders\.uniconta_link_field"):
        flow._find_order(ctx, ctx.connection.orders, 7)


def test_line_link_field_is_checked_before_lines_are_inserted_and_remembered(ctx: ConnectionContext,
                                                                            sandboxes: Sandboxes) -> None:
    sandboxes.uniconta.user_fields({"DebtorOrderLine": []})
    with pytest.raises(FlowError, match=r"WebcrmLineId.*DebtorOrderLine"):
        flow._check_line_link_field(ctx, ctx.connection.orders)
    sandboxes.uniconta.user_fields({"DebtorOrderLine": ["WebcrmLineId"]})  # created in Uniconta meanwhile
    flow._check_line_link_field(ctx, ctx.connection.orders)
    flow._check_line_link_field(ctx, ctx.connection.orders)
    checks = [c for c in sandboxes.uniconta.calls() if "WebcrmLineId" in c["query"]]
    assert [c["status"] for c in checks] == [400, 200]  # the refused one and one more
