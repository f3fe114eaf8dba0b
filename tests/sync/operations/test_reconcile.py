"""Reconciliation sweeps on the sandboxes over real HTTP, with the real clients and a real Redis:
watermarks, overlap, limits, budget.

Each sweep runs at a fixed time T0 (+ minutes); the records' `UpdatedAt` are set relative to it
through the sandboxes' state (no API can write them), so the overlap windows are exact.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync.clients.uniconta import UnicontaClient
from sync.events import Event
from sync.flows import ROUTES
from sync.operations import reconcile
from sync.operations.reconcile import SOURCES, Source, budget_of, source_for, sweep, watermark_key
from sync.runtime import ConnectionContext
from sync.state import intake, keys
from tests.support.context import MakeCtx, Sandboxes
from tests.support.stack import CONNECTION

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)



def into(sent: list[Event]) -> Any:
    """A page publisher that keeps the events of every page it is given, in order."""
    return lambda events, countdown=0.0: sent.extend(events)

def _source(entity: str) -> Source:
    source = source_for(entity)
    assert source is not None
    return source


ORG = _source("organisation")
ITEM = _source("item")


def orgs(sb: Sandboxes, *changed_at: datetime) -> list[int]:
    """Organisations a person made in webCRM, last changed at the given times; their ids."""
    ids = [int(sb.webcrm.ui("Organisations", OrganisationName=f"Org {n}")["OrganisationId"])
           for n in range(len(changed_at))]
    sb.webcrm.stamp("Organisations", {i: {"OrganisationUpdatedAt": at.isoformat()} for i, at in zip(
        ids, changed_at, strict=True)})
    return ids


def uniconta_time(at: datetime) -> str:
    return at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def items(sb: Sandboxes, *numbers_at: tuple[str, datetime]) -> None:
    """Items a person made in Uniconta, last changed at the given times."""
    rows = {int(sb.uniconta.ui("InvItemClient", Item=number, Name=f"Item {number}")["RowId"]): at
            for number, at in numbers_at}
    sb.uniconta.stamp("InvItem", {row: uniconta_time(at) for row, at in rows.items()})


def queued_ids(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.entity, e.record_id) for e in events]


def test_every_synced_entity_has_a_source() -> None:
    covered = {(s.system, s.entity) for s in SOURCES}
    missing = {key for key in ROUTES if key not in covered}
    assert missing == {("webcrm", "quotationline")}  # its delivery's UpdatedAt changes with it
    assert source_for("organisations") is ORG and source_for("nope") is None


def test_first_sweep_reads_the_overlap_window_and_sets_the_watermark(make_ctx: MakeCtx,
                                                                     sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations", "items"))
    _old, recent = orgs(sandboxes, T0 - timedelta(hours=2), T0 - timedelta(minutes=3))
    items(sandboxes, ("A", T0 - timedelta(minutes=1)))
    sent: list[Event] = []
    result = sweep(ctx, into(sent), now=T0)
    assert sorted(queued_ids(sent)) == [("item", "A"), ("organisation", str(recent))]
    assert {e.origin for e in sent} == {"reconcile"}
    assert result["webcrm:organisation"]["queued"] == 1
    assert ctx.redis.get(watermark_key(CONNECTION, ORG)) == T0.isoformat()


def test_changes_are_queued_once_and_again_when_they_change(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations",))
    sent: list[Event] = []
    sweep(ctx, into(sent), now=T0)
    (oid,) = orgs(sandboxes, T0 + timedelta(minutes=2))
    sweep(ctx, into(sent), now=T0 + timedelta(minutes=5))
    assert queued_ids(sent) == [("organisation", str(oid))]
    for event in sent:
        intake.clear_pending(ctx.redis, event)  # the job ran
    # Next sweep: the organisation is still inside the overlap window with the same UpdatedAt -> not queued again.
    result = sweep(ctx, into(sent), now=T0 + timedelta(minutes=10))
    assert len(sent) == 1 and result["webcrm:organisation"]["skipped"] == 1
    sandboxes.webcrm.ui("Organisations", oid, OrganisationCity="Aarhus C")  # a person edits it
    sandboxes.webcrm.stamp("Organisations", {oid: {"OrganisationUpdatedAt": (T0 + timedelta(minutes=11)).isoformat()}})
    sweep(ctx, into(sent), now=T0 + timedelta(minutes=15))
    assert queued_ids(sent) == [("organisation", str(oid)), ("organisation", str(oid))]


def test_a_record_with_a_job_waiting_is_coalesced(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations",))
    (oid,) = orgs(sandboxes, T0 - timedelta(minutes=1))
    sent: list[Event] = []
    intake.accept(ctx.redis, Event(CONNECTION, "webcrm", "organisation", str(oid)), sent.append)  # a webhook
    result = sweep(ctx, into(sent), now=T0)
    assert len(sent) == 1 and result["webcrm:organisation"]["coalesced"] == 1


def test_a_failed_read_keeps_the_watermark_and_other_sources_go_on(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations", "items"))
    sent: list[Event] = []
    sweep(ctx, into(sent), now=T0)
    before = ctx.redis.get(watermark_key(CONNECTION, ORG))
    sandboxes.webcrm.faults(error_rate=1, error_status=503)  # webCRM answers every API call with a 503
    items(sandboxes, ("B", T0 + timedelta(minutes=1)))
    result = sweep(ctx, into(sent), now=T0 + timedelta(minutes=10))
    assert "Transient" in result["webcrm:organisation"]["error"]
    assert "HTTP 503" in result["webcrm:organisation"]["error"]
    assert ctx.redis.get(watermark_key(CONNECTION, ORG)) == before
    assert ctx.redis.get(watermark_key(CONNECTION, ITEM)) == (T0 + timedelta(minutes=10)).isoformat()
    assert ("item", "B") in queued_ids(sent)
    runs = reconcile.last_runs(ctx.redis, ctx.connection)
    assert runs["webcrm:organisation"]["error"] and not runs["uniconta:item"]["error"]


def test_the_watermark_never_passes_the_sweep_start(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations",))
    orgs(sandboxes, T0 + timedelta(hours=1))  # the server's clock is ahead
    sent: list[Event] = []
    sweep(ctx, into(sent), now=T0)
    assert len(sent) == 1
    assert ctx.redis.get(watermark_key(CONNECTION, ORG)) == T0.isoformat()


def test_a_flood_is_worked_off_in_order_over_several_sweeps(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations",), reconcile_max_records=3)
    sweep(ctx, lambda events, countdown=0.0: None, now=T0)
    ids = orgs(sandboxes, *(T0 + timedelta(seconds=i) for i in range(1, 8)))
    sent: list[Event] = []
    now = T0 + timedelta(minutes=5)
    first = sweep(ctx, into(sent), now=now)
    assert first["webcrm:organisation"]["truncated"] and [e.record_id for e in sent] == [str(i) for i in ids[:3]]
    assert ctx.redis.get(watermark_key(CONNECTION, ORG)) == (T0 + timedelta(seconds=3)).isoformat()
    sweep(ctx, into(sent), now=now)
    sweep(ctx, into(sent), now=now)
    assert [e.record_id for e in sent] == [str(i) for i in ids]
    assert ctx.redis.get(watermark_key(CONNECTION, ORG)) == now.isoformat()


def test_uniconta_reads_stop_at_the_live_reserve(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("organisations", "items"), uniconta={"daily_call_budget": 100, "live_reserve": 20})
    budget = budget_of(ctx)
    sent: list[Event] = []
    sweep(ctx, into(sent), now=T0)
    assert 0 < budget.usage()["used"] < 80  # the sweep's Uniconta reads went through the client's budget
    ctx.redis.set(f"{keys.uniconta_budget(CONNECTION)}:{budget.usage()['day']}", 80)  # batch share used up
    (oid,) = orgs(sandboxes, T0 + timedelta(minutes=1))
    items(sandboxes, ("C", T0 + timedelta(minutes=1)))
    wm = ctx.redis.get(watermark_key(CONNECTION, ITEM))
    sandboxes.uniconta.clear_calls()
    result = sweep(ctx, into(sent), now=T0 + timedelta(minutes=10))
    assert "throttled" in result["uniconta:debtor"]["error"]
    assert "skipped" in result["uniconta:item"]["error"]
    assert ctx.redis.get(watermark_key(CONNECTION, ITEM)) == wm
    assert queued_ids(sent)[-1] == ("organisation", str(oid))  # webCRM went on
    assert budget.usage()["used"] == 80  # a refused batch call is not counted
    assert sandboxes.uniconta.calls() == []  # ... and never sent


def test_full_compare_queues_deletions(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("items",))
    items(sandboxes, ("A", T0 - timedelta(days=3)), ("B", T0 - timedelta(days=3)))
    sent: list[Event] = []
    first = sweep(ctx, into(sent), now=T0, full=True)
    assert first["uniconta:item"]["full"] and sent == []  # the first snapshot
    sandboxes.uniconta.ui_delete("InvItemClient", Item="A")  # a person deletes it; no webhook arrives
    sweep(ctx, into(sent), now=T0 + timedelta(minutes=10), full=True)
    assert [(e.record_id, e.operation) for e in sent] == [("A", "delete")]


def test_full_compare_queues_a_linked_record_no_snapshot_saw_once(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    """Found by the soak: a contact made by the sync and deleted in Uniconta before any full compare,
    its webhook lost. Its link says it existed; it is queued as deleted once (a flow may keep a link to
    a gone record on purpose, so the snapshot keeps a tombstone instead of queueing it every day)."""
    ctx = make_ctx(flows=("persons",))
    sandboxes.uniconta.ui("DebtorClient", Account="10001", Name="Debtor")
    stays = sandboxes.uniconta.ui("ContactClient", DCAccount="10001", Name="Stays")["RowId"]
    ctx.links.bind("person", 60, "55000")  # a contact gone before any snapshot
    ctx.links.bind("person", 61, str(stays))
    sent: list[Event] = []
    sweep(ctx, into(sent), now=T0, full=True)
    # (persons 60 and 61 do not exist in webCRM either: the same rule queues them)
    expected = [("contact", "#55000", "delete"), ("person", "60", "delete"), ("person", "61", "delete")]
    def deletes() -> list[tuple[str, str, str]]:
        return sorted((e.entity, e.record_id, e.operation) for e in sent if e.operation == "delete")

    assert deletes() == expected
    sweep(ctx, into(sent), now=T0 + timedelta(minutes=10), full=True)
    assert deletes() == expected


class FeedWithoutUpdatedAt(UnicontaClient):
    """The real client on the real sandbox, standing for a Uniconta company whose feed has no
    `UpdatedAt` (the sandbox has it on every table, docs/sandbox-uniconta.md, assumption 8, so
    this is the one thing it cannot be): the property is renamed in the request, so the sandbox
    itself refuses it (400 NoSucces "could not find a property"), and left out of the rows read."""

    def odata(self, entity: str, *, filter: str | None = None, orderby: str | None = None,
              top: int | None = None) -> Iterator[dict[str, Any]]:
        def missing(text: str | None) -> str | None:
            return text.replace("UpdatedAt", "UpdatedAtMissing") if text else text

        for row in super().odata(entity, filter=missing(filter), orderby=missing(orderby), top=top):
            yield {k: v for k, v in row.items() if k != "UpdatedAt"}


def test_an_entity_without_updatedat_is_compared_in_full(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    real = make_ctx(flows=("items",))
    u = real.connection.uniconta
    feed = FeedWithoutUpdatedAt(u.base_url, u.company_id, u.username, u.password.reveal())
    try:
        ctx = ConnectionContext(real.connection, real.redis, real.webcrm, feed)
        sandboxes.uniconta.ui("InvItemClient", Item="A", Name="x")
        sent: list[Event] = []
        first = sweep(ctx, into(sent), now=T0)
        assert first["uniconta:item"]["mode"] == "full" and sent == []  # refused, then the first snapshot
        sandboxes.uniconta.ui_edit("InvItemClient", Item="A", Name="y")
        sandboxes.uniconta.ui("InvItemClient", Item="N", Name="n")
        sandboxes.uniconta.clear_calls()
        result = sweep(ctx, into(sent), now=T0 + timedelta(minutes=10))
    finally:
        feed.close()
    assert result["uniconta:item"]["mode"] == "full"
    assert sorted(e.record_id for e in sent) == ["A", "N"]
    # The refusal is remembered: the second sweep did not ask for the filter again.
    assert not [c for c in sandboxes.uniconta.calls() if "UpdatedAt" in c["query"]]


def test_contacts_are_named_by_rowid_like_their_webhooks(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("persons",))
    sandboxes.uniconta.ui("DebtorClient", Account="10001", Name="Debitor")
    row = int(sandboxes.uniconta.ui("ContactClient", DCAccount="10001", Name="Kontakt")["RowId"])
    sandboxes.uniconta.stamp("Contact", {row: "2026-05-01T11:59:00.000000Z"})
    sent: list[Event] = []
    sweep(ctx, into(sent), now=T0)
    assert ("contact", f"#{row}") in queued_ids(sent)


def test_two_sweeps_of_one_connection_do_not_overlap(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(flows=("items",))
    lock = ctx.redis.lock(keys.lock(CONNECTION, "reconcile", "sweep"), timeout=10)
    assert lock.acquire(blocking=False)
    try:
        assert "running" in sweep(ctx, lambda events, countdown=0.0: None, now=T0)["sweep"]["error"]
    finally:
        lock.release()
    assert sandboxes.uniconta.calls() == []


def extra_sweeper(ctx, since):  # type: ignore[no-untyped-def]
    """A flow's own sweep (like sync.flows.users.sweep_users)."""
    yield Event(ctx.connection.id, "webcrm", "user", "42", origin="reconcile")


def test_flow_specific_sweeps_run_after_the_generic_ones(make_ctx: MakeCtx, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "SWEEPERS", {"users": f"{__name__}:extra_sweeper", "persons": "nope.nothing:x"})
    ctx = make_ctx(flows=("users", "persons"))
    sent: list[Event] = []
    result = sweep(ctx, into(sent), now=T0)
    assert ("user", "42") in queued_ids(sent) and result["extra:users"]["queued"] == 1
    assert list(result)[-2:] == ["extra:users", "extra:persons"]  # after the generic sources
    assert "not available" in result["extra:persons"]["note"]
    assert "extra:users" not in sweep(ctx, into(sent), now=T0, entities=["item"])
