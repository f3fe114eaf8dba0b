"""Reconciliation sweeps against fake clients and a real Redis: watermarks, overlap, limits, budget."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis

from sync import intake, keys, reconcile
from sync.events import Event
from sync.flows import ROUTES
from sync.reconcile import SOURCES, budget_of, source_for, sweep, watermark_key
from tests.sync.fakes_ops import context, stamp

T0 = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
ORG = source_for("organisation")
ITEM = source_for("item")


def org(i: int, at: datetime) -> dict:
    return {"OrganisationId": i, "OrganisationUpdatedAt": stamp(at)}


def item(number: str, row: int, at: datetime) -> dict:
    return {"Item": number, "RowId": row, "UpdatedAt": at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")}


def queued_ids(events: list[Event]) -> list[tuple[str, str]]:
    return [(e.entity, e.record_id) for e in events]


def test_every_synced_entity_has_a_source() -> None:
    covered = {(s.system, s.entity) for s in SOURCES}
    missing = {key for key in ROUTES if key not in covered}
    assert missing == {("webcrm", "quotationline")}  # its delivery's UpdatedAt changes with it
    assert source_for("organisations") is ORG and source_for("nope") is None


def test_first_sweep_reads_the_overlap_window_and_sets_the_watermark(redis_client: redis.Redis) -> None:
    ctx, webcrm, uniconta = context(redis_client, flows=("organisations", "items"))
    webcrm.tables["Organisation"] = [org(1, T0 - timedelta(hours=2)), org(2, T0 - timedelta(minutes=3))]
    uniconta.entities["InvItemClient"] = [item("A", 1, T0 - timedelta(minutes=1))]
    sent: list[Event] = []
    result = sweep(ctx, sent.append, now=T0)
    assert sorted(queued_ids(sent)) == [("item", "A"), ("organisation", "2")]
    assert {e.origin for e in sent} == {"reconcile"}
    assert result["webcrm:organisation"]["queued"] == 1
    assert redis_client.get(watermark_key("c1", ORG)) == T0.isoformat()


def test_changes_are_queued_once_and_again_when_they_change(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client, flows=("organisations",))
    sent: list[Event] = []
    sweep(ctx, sent.append, now=T0)
    webcrm.tables["Organisation"] = [org(5, T0 + timedelta(minutes=2))]
    sweep(ctx, sent.append, now=T0 + timedelta(minutes=5))
    assert queued_ids(sent) == [("organisation", "5")]
    for event in sent:
        intake.clear_pending(redis_client, event)  # the job ran
    # Next sweep: 5 is still inside the overlap window with the same UpdatedAt -> not queued again.
    result = sweep(ctx, sent.append, now=T0 + timedelta(minutes=10))
    assert len(sent) == 1 and result["webcrm:organisation"]["skipped"] == 1
    webcrm.tables["Organisation"] = [org(5, T0 + timedelta(minutes=11))]
    sweep(ctx, sent.append, now=T0 + timedelta(minutes=15))
    assert queued_ids(sent) == [("organisation", "5"), ("organisation", "5")]


def test_a_record_with_a_job_waiting_is_coalesced(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client, flows=("organisations",))
    sent: list[Event] = []
    intake.accept(redis_client, Event("c1", "webcrm", "organisation", "7"), sent.append)  # a webhook
    webcrm.tables["Organisation"] = [org(7, T0 - timedelta(minutes=1))]
    result = sweep(ctx, sent.append, now=T0)
    assert len(sent) == 1 and result["webcrm:organisation"]["coalesced"] == 1


def test_a_failed_read_keeps_the_watermark_and_other_sources_go_on(redis_client: redis.Redis) -> None:
    ctx, webcrm, uniconta = context(redis_client, flows=("organisations", "items"))
    sent: list[Event] = []
    sweep(ctx, sent.append, now=T0)
    before = redis_client.get(watermark_key("c1", ORG))
    webcrm.fail_after = 0
    uniconta.entities["InvItemClient"] = [item("B", 2, T0 + timedelta(minutes=1))]
    result = sweep(ctx, sent.append, now=T0 + timedelta(minutes=10))
    assert "Transient" in result["webcrm:organisation"]["error"]
    assert redis_client.get(watermark_key("c1", ORG)) == before
    assert redis_client.get(watermark_key("c1", ITEM)) == (T0 + timedelta(minutes=10)).isoformat()
    assert ("item", "B") in queued_ids(sent)
    runs = reconcile.last_runs(redis_client, ctx.connection)
    assert runs["webcrm:organisation"]["error"] and not runs["uniconta:item"]["error"]


def test_the_watermark_never_passes_the_sweep_start(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client, flows=("organisations",))
    webcrm.tables["Organisation"] = [org(1, T0 + timedelta(hours=1))]  # the server's clock is ahead
    sweep(ctx, lambda e: None, now=T0)
    assert redis_client.get(watermark_key("c1", ORG)) == T0.isoformat()


def test_a_flood_is_worked_off_in_order_over_several_sweeps(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client, flows=("organisations",), reconcile_max_records=3)
    sweep(ctx, lambda e: None, now=T0)
    webcrm.tables["Organisation"] = [org(i, T0 + timedelta(seconds=i)) for i in range(1, 8)]
    sent: list[Event] = []
    now = T0 + timedelta(minutes=5)
    first = sweep(ctx, sent.append, now=now)
    assert first["webcrm:organisation"]["truncated"] and [e.record_id for e in sent] == ["1", "2", "3"]
    assert redis_client.get(watermark_key("c1", ORG)) == (T0 + timedelta(seconds=3)).isoformat()
    sweep(ctx, sent.append, now=now)
    sweep(ctx, sent.append, now=now)
    assert [e.record_id for e in sent] == [str(i) for i in range(1, 8)]
    assert redis_client.get(watermark_key("c1", ORG)) == now.isoformat()


def test_uniconta_reads_stop_at_the_live_reserve(redis_client: redis.Redis) -> None:
    ctx, webcrm, uniconta = context(redis_client, budget=(100, 20), flows=("organisations", "items"))
    budget = budget_of(ctx)
    sent: list[Event] = []
    sweep(ctx, sent.append, now=T0)
    redis_client.set(f"{keys.uniconta_budget('c1')}:{budget.usage()['day']}", 80)  # batch share used up
    webcrm.tables["Organisation"] = [org(3, T0 + timedelta(minutes=1))]
    uniconta.entities["InvItemClient"] = [item("C", 3, T0 + timedelta(minutes=1))]
    wm = redis_client.get(watermark_key("c1", ITEM))
    result = sweep(ctx, sent.append, now=T0 + timedelta(minutes=10))
    assert "throttled" in result["uniconta:debtor"]["error"]
    assert "skipped" in result["uniconta:item"]["error"]
    assert redis_client.get(watermark_key("c1", ITEM)) == wm
    assert queued_ids(sent)[-1] == ("organisation", "3")  # webCRM went on
    assert budget.usage()["used"] == 80  # a refused batch call is not counted


def test_full_compare_queues_deletions(redis_client: redis.Redis) -> None:
    ctx, _, uniconta = context(redis_client, flows=("items",))
    uniconta.entities["InvItemClient"] = [item("A", 1, T0 - timedelta(days=3)), item("B", 2, T0 - timedelta(days=3))]
    sent: list[Event] = []
    first = sweep(ctx, sent.append, now=T0, full=True)
    assert first["uniconta:item"]["full"] and sent == []  # the first snapshot
    uniconta.entities["InvItemClient"] = [item("B", 2, T0 - timedelta(days=3))]
    sweep(ctx, sent.append, now=T0 + timedelta(minutes=10), full=True)
    assert [(e.record_id, e.operation) for e in sent] == [("A", "delete")]


def test_an_entity_without_updatedat_is_compared_in_full(redis_client: redis.Redis) -> None:
    ctx, _, uniconta = context(redis_client, flows=("items",))
    uniconta.no_updated.add("InvItemClient")
    uniconta.entities["InvItemClient"] = [{"Item": "A", "RowId": 1, "Name": "x"}]
    sent: list[Event] = []
    sweep(ctx, sent.append, now=T0)
    uniconta.entities["InvItemClient"] = [{"Item": "A", "RowId": 1, "Name": "y"}, {"Item": "N", "RowId": 2}]
    result = sweep(ctx, sent.append, now=T0 + timedelta(minutes=10))
    assert result["uniconta:item"]["mode"] == "full"
    assert sorted(e.record_id for e in sent) == ["A", "N"]


def test_contacts_are_named_by_rowid_like_their_webhooks(redis_client: redis.Redis) -> None:
    ctx, _, uniconta = context(redis_client, flows=("persons",))
    uniconta.entities["ContactClient"] = [{"RowId": 12, "UpdatedAt": "2026-05-01T11:59:00.000000Z"}]
    sent: list[Event] = []
    sweep(ctx, sent.append, now=T0)
    assert ("contact", "#12") in queued_ids(sent)


def test_two_sweeps_of_one_connection_do_not_overlap(redis_client: redis.Redis) -> None:
    ctx, _, _ = context(redis_client, flows=("items",))
    lock = redis_client.lock(keys.lock("c1", "reconcile", "sweep"), timeout=10)
    assert lock.acquire(blocking=False)
    try:
        assert "running" in sweep(ctx, lambda e: None, now=T0)["sweep"]["error"]
    finally:
        lock.release()


def extra_sweeper(ctx, since):  # type: ignore[no-untyped-def]
    """A flow's own sweep (like sync.flows.users.sweep_users)."""
    yield Event(ctx.connection.id, "webcrm", "user", "42", origin="reconcile")


def test_flow_specific_sweeps_run_after_the_generic_ones(redis_client: redis.Redis,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(reconcile, "SWEEPERS", {"users": f"{__name__}:extra_sweeper", "persons": "nope.nothing:x"})
    ctx, _, _ = context(redis_client, flows=("users", "persons"))
    sent: list[Event] = []
    result = sweep(ctx, sent.append, now=T0)
    assert ("user", "42") in queued_ids(sent) and result["extra:users"]["queued"] == 1
    assert "not available" in result["extra:persons"]["note"]
    assert "extra:users" not in sweep(ctx, sent.append, now=T0, entities=["item"])
