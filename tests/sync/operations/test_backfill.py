"""Backfill walks, checkpoints, flow control and the budget stop; dry-run plumbing. On the sandboxes over
real HTTP, with the real clients, their real limiters and a real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from sync.clients.errors import AmbiguousMatch, Permanent, Transient
from sync.events import Event
from sync.flows import FlowError
from sync.operations import backfill, dryrun
from sync.operations.reconcile import Source, budget_of, source_for
from sync.runtime import ConnectionContext
from sync.state import intake, keys
from sync.state.ratelimit import SlidingWindowLimiter
from tests.support.context import MakeCtx, Sandboxes
from tests.support.stack import CONNECTION


def _source(entity: str) -> Source:
    source = source_for(entity)
    assert source is not None
    return source


ORG = _source("organisation")
ITEM = _source("item")
T0 = datetime(2026, 5, 1, tzinfo=UTC)
BUDGET = {"daily_call_budget": 100, "live_reserve": 20}


def orgs(sb: Sandboxes, n: int) -> list[int]:
    """`n` organisations a person made in webCRM, the i-th last changed at T0 + i days; their ids."""
    ids = [int(sb.webcrm.ui("Organisations", OrganisationName=f"Org {i}")["OrganisationId"]) for i in range(n)]
    sb.webcrm.stamp("Organisations", {oid: {"OrganisationUpdatedAt": (T0 + timedelta(days=i)).isoformat()}
                                      for i, oid in enumerate(ids, 1)})
    return ids


def names(ids: list[int]) -> list[str]:
    return [str(i) for i in ids]


def budget_day_key(ctx: ConnectionContext) -> str:
    return f"{keys.uniconta_budget(CONNECTION)}:{budget_of(ctx).usage()['day']}"


class Interrupting:
    """A batch publisher that is interrupted (Ctrl-C) when a page would take it past `n` events."""

    def __init__(self, n: int) -> None:
        self.n = n
        self.events: list[Event] = []

    def __call__(self, events: list[Event], countdown: float = 0.0) -> None:
        if len(self.events) + len(events) > self.n:
            raise KeyboardInterrupt
        self.events.extend(events)


def into(sent: list[Event]) -> Any:
    """A batch publisher that keeps the events of every page it is given, in order."""
    return lambda events, countdown=0.0: sent.extend(events)


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> ConnectionContext:
    """Pages of one record: each record's own checkpoint, limit and budget step, as before pages."""
    return make_ctx(batch_size=1)


def test_backfill_queues_everything_in_order_at_backfill_origin(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    ids = orgs(sandboxes, 5)
    sent: list[Event] = []
    outcome = backfill.run(ctx, ORG, into(sent))
    assert outcome.state == "done" and outcome.queued == 5 and outcome.total == 5
    assert [e.record_id for e in sent] == names(ids)
    assert {e.origin for e in sent} == {"backfill"}
    cp = backfill.load_checkpoint(ctx.redis, CONNECTION, ORG)
    assert cp["state"] == "done" and cp["position"] == str(ids[-1])
    # Done: the next run starts over (records whose jobs still wait are coalesced).
    again = backfill.run(ctx, ORG, into(sent))
    assert again.resumed_from is None and again.coalesced == 5


def test_interrupted_backfill_resumes_after_its_checkpoint(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    ids = orgs(sandboxes, 10)
    first = Interrupting(4)
    outcome = backfill.run(ctx, ORG, first)
    assert outcome.state == "interrupted" and outcome.position == ids[3]
    assert backfill.load_checkpoint(ctx.redis, CONNECTION, ORG)["state"] == "interrupted"
    # The record interrupted inside the intake keeps no pending mark (it would hold it back for an hour).
    assert not ctx.redis.exists(keys.pending(CONNECTION, "webcrm", "organisation", str(ids[4])))
    rest: list[Event] = []
    resumed = backfill.run(ctx, ORG, into(rest))
    assert resumed.resumed_from == ids[3] and resumed.state == "done"
    assert [e.record_id for e in first.events + rest] == names(ids)  # each once, in order
    assert backfill.load_checkpoint(ctx.redis, CONNECTION, ORG)["queued"] == "10"


def test_limit_stops_and_the_next_run_continues(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    ids = orgs(sandboxes, 7)
    sent: list[Event] = []
    assert backfill.run(ctx, ORG, into(sent), limit=3).state == "limit"
    assert backfill.run(ctx, ORG, into(sent), limit=3).state == "limit"
    assert backfill.run(ctx, ORG, into(sent), limit=3).state == "done"
    assert [e.record_id for e in sent] == names(ids)


def test_since_filters_and_must_match_an_unfinished_checkpoint(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    ids = orgs(sandboxes, 6)
    sent: list[Event] = []
    since = T0 + timedelta(days=4)
    backfill.run(ctx, ORG, into(sent), since=since, limit=1)
    assert [e.record_id for e in sent] == names(ids[3:4])
    with pytest.raises(backfill.CheckpointMismatch):
        backfill.run(ctx, ORG, into(sent))
    backfill.run(ctx, ORG, into(sent), since=since)
    assert [e.record_id for e in sent] == names(ids[3:])
    backfill.run(ctx, ORG, into(sent), restart=True, limit=1)
    assert sent[-1].record_id == str(ids[0])


def test_flow_control_waits_for_room_in_the_backfill_queue(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    orgs(sandboxes, 3)
    depths = iter([5, 5, 1] + [0] * 50)
    sleeps: list[float] = []
    outcome = backfill.run(ctx, ORG, lambda events, countdown=0.0: None, window=2, queue_depth=lambda: next(depths),
                           sleep=sleeps.append)
    assert outcome.state == "done" and len(sleeps) == 2


def test_budget_stop_says_when_to_resume_and_resume_works(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(uniconta=BUDGET, batch_size=1)
    budget = budget_of(ctx)
    for i in range(1, 21):
        sandboxes.uniconta.ui("InvItemClient", Item=f"I{i}", Name=f"Vare {i}")
    day_key = budget_day_key(ctx)
    ctx.redis.set(day_key, 60)  # 20 batch calls left; a record is estimated at 3
    sent: list[Event] = []
    outcome = backfill.run(ctx, ITEM, into(sent))
    assert outcome.state == "budget" and 0 < len(sent) < 20
    assert outcome.resume_after_seconds and outcome.resume_after_seconds > 0
    assert "Resume after" in outcome.message and "same command" in outcome.message
    assert budget.usage()["used"] == 61  # the plan's one OData read, counted by the client's own budget
    cp = backfill.load_checkpoint(ctx.redis, CONNECTION, ITEM)
    assert cp["state"] == "budget"
    # None of the queued jobs started, so the checkpoint went back to before the first.
    assert cp["position"] == ""
    ctx.redis.delete(day_key)  # midnight
    for event in sent:
        intake.clear_pending(ctx.redis, event)  # the jobs ran meanwhile
    again: list[Event] = []
    done = backfill.run(ctx, ITEM, into(again))
    assert done.state == "done" and [e.record_id for e in again] == [f"I{i}" for i in range(1, 21)]


def test_budget_refusing_the_plan_reads_stops_at_once(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(uniconta=BUDGET, batch_size=1)
    sandboxes.uniconta.ui("InvItemClient", Item="I1", Name="Vare")
    ctx.redis.set(budget_day_key(ctx), 80)
    outcome = backfill.run(ctx, ITEM, lambda events, countdown=0.0: None)
    assert outcome.state == "budget" and outcome.queued == 0
    assert sandboxes.uniconta.calls() == []  # the refused read was never sent


@pytest.mark.parametrize(("action", "writes", "error", "expected"), [
    ("created", [dryrun.Write("webcrm", "create", "X")], None, "would-create"),
    ("linked", [dryrun.Write("webcrm", "update", "X")], None, "would-link"),
    ("updated", [dryrun.Write("uniconta", "update", "X")], None, "would-update"),
    ("deleted", [dryrun.Write("webcrm", "delete", "X")], None, "would-delete"),
    ("unchanged", [], None, "unchanged"),
    ("waiting", [], None, "waiting"),
    (None, [], FlowError("bad"), "invalid"),
    (None, [], Permanent("400"), "invalid"),
    (None, [], AmbiguousMatch("2"), "ambiguous"),
    (None, [], Transient("down"), "error"),
    ("skipped", [], None, "skipped"),
])
def test_classify(action: str | None, writes: list, error: BaseException | None, expected: str) -> None:
    assert dryrun.classify(action, writes, error) == expected


def test_ambiguous_results_are_classified_as_such() -> None:
    assert dryrun.classify("skipped", [], None, {"reason": "ambiguous e-mail: kept for review"}) == "ambiguous"


def test_scratch_context_copies_links_records_writes_and_leaves_nothing(ctx: ConnectionContext,
                                                                        sandboxes: Sandboxes) -> None:
    ctx.links.bind("item", 5, "A")
    with dryrun.scratch(ctx) as (dry, writes, queued):
        assert dry.connection.id == f"{CONNECTION}~dryrun"
        assert dry.links.webcrm_id("item", "A") == "5"
        dry.links.bind("item", 6, "B")
        new_id = dry.webcrm.create("QuotationLines/LinkedData", {"Data1": "B"})
        assert new_id is not None and new_id >= dryrun.PLACEHOLDER_START
        assert dry.webcrm.get("QuotationLines/LinkedData", new_id)["Data1"] == "B"
        dry.uniconta.insert("DebtorClientUser", {"Account": "1", "WebcrmId": "9"})
        debtor = dry.uniconta.get_one("DebtorClient", "Account", "1")  # a real read, plus ours
        assert debtor is not None and debtor["WebcrmId"] == "9"
        # A flow queues follow-up work through the context's port: recorded, never published.
        intake.accept(ctx.redis, Event(dry.connection.id, "webcrm", "organisation", "1"), dry.enqueue)
        intake.accept(ctx.redis, Event(dry.connection.id, "webcrm", "organisation", "1"), dry.enqueue)
        assert [w.operation for w in writes] == ["create", "insert"] and len(queued) == 2
    assert not list(ctx.redis.scan_iter(f"sync:{CONNECTION}~dryrun:*"))
    assert ctx.links.webcrm_id("item", "B") is None and ctx.links.webcrm_id("item", "A") == "5"
    # Nothing reached either system: the reads did, the writes did not.
    assert [c["path"] for c in sandboxes.uniconta.calls()] == ["/api/Entities/DebtorClient"]
    assert sandboxes.writes() == (0, 0)
    assert sandboxes.uniconta.rows("Debtor") == {} and sandboxes.webcrm.table("LinkedData") == {}


def test_backfill_jobs_run_as_batch_work_in_the_worker() -> None:
    from celery import signals

    import tasks.reconcile  # noqa: F401 - connects the signal handlers, as the worker's include does
    from sync.state.ratelimit import current_priority
    from tasks.queues import SYNC_RECORD

    class Task:
        name = SYNC_RECORD

    for origin, expected in (("backfill", "batch"), ("webhook", "live"), ("reconcile", "live")):
        kwargs = {"event": {"origin": origin}}
        signals.task_prerun.send(sender=Task, task_id=f"t-{origin}", task=Task(), args=(), kwargs=kwargs)
        assert current_priority() == expected
        signals.task_postrun.send(sender=Task, task_id=f"t-{origin}", task=Task(), args=(), kwargs=kwargs)
        assert current_priority() == "live"


def test_progress_reporters_render() -> None:
    import io

    from rich.console import Console

    from syncctl.backfill import PlainReporter, RichReporter

    out = io.StringIO()
    rich = RichReporter(Console(file=out, force_terminal=True, width=100))
    rich.start(3, 0, "backfill c1 item")
    rich.advance({"queued": 1})
    rich.note("waiting for workers")
    rich.stop()
    assert "backfill c1 item" in out.getvalue()
    plain = PlainReporter(interval=0)
    plain.start(2, 0, "backfill c1 item")
    plain.advance({"queued": 1})
    plain.stop()


def test_dry_run_retries_a_rate_limited_record_and_stops_at_the_budget(make_ctx: MakeCtx, sandboxes: Sandboxes,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sync.flows import Result

    ctx = make_ctx(webcrm={"rate_limit_per_minute": 10}, uniconta=BUDGET)
    named, unnamed, third, fourth = (int(sandboxes.webcrm.ui("Organisations", OrganisationName=n)["OrganisationId"])
                                     for n in ("Named", "", "Third", "Fourth"))
    # webCRM's sliding minute is full (ten calls just now), and one batch call is left of today's Uniconta budget.
    window_key = keys.webcrm_rate(CONNECTION)
    window = SlidingWindowLimiter(ctx.redis, window_key, 10)
    assert all(window.acquire() == 0 for _ in range(10))
    ctx.redis.set(budget_day_key(ctx), 79)
    calls: list[str] = []
    slept: list[float] = []

    def handler(c: Any, event: Event) -> Result:
        calls.append(event.record_id)
        c.webcrm.create("Organisations", {"OrganisationName": event.record_id})  # recorded, never sent
        org = c.webcrm.get("Organisations", int(event.record_id))  # through the webCRM window
        if not org["OrganisationName"]:
            raise FlowError("no name")
        c.uniconta.find("DebtorClient", "Account", event.record_id)  # batch work against the daily budget
        return Result("created")

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        ctx.redis.delete(window_key)  # the minute passes: the window's calls age out

    monkeypatch.setattr(dryrun, "handler_for", lambda system, entity: ("organisations", handler))
    report = dryrun.run(ctx, ORG, names([named, unnamed, third, fourth]), sleep=sleep)
    assert calls == names([named, named, unnamed, third])
    assert slept == [30.0]  # the window's retry-after (~60 s), capped at 30 s
    assert report.counts["would-create"] == 1 and report.counts["invalid"] == 1 and report.records == 2
    # Only the retry's write is reported (the throttled try's was dropped; its placeholder id 900000000 is not reused).
    assert report.examples["would-create"][0]["writes"] == [f"webcrm create Organisations 900000001: "
                                                            f"OrganisationName='{named}'"]
    assert report.stopped.startswith("stopped")
    assert budget_of(ctx).usage()["used"] == 80  # the one batch call left was used, the next refused
    assert sandboxes.writes() == (0, 0)


def test_one_backfill_per_source_at_a_time(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    from sync.state.locks import record_lock

    orgs(sandboxes, 2)
    with record_lock(ctx.redis, CONNECTION, "backfill", ORG.name), pytest.raises(backfill.Busy):
        backfill.run(ctx, ORG, lambda events, countdown=0.0: None)
    assert backfill.run(ctx, ORG, lambda events, countdown=0.0: None).state == "done"


def test_backfill_queues_one_batch_job_per_page_of_records(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    ctx = make_ctx(batch_size=4)
    ids = orgs(sandboxes, 10)
    pages: list[list[Event]] = []
    outcome = backfill.run(ctx, ORG, lambda events, countdown=0.0: pages.append(events))
    assert outcome.state == "done" and outcome.queued == 10
    assert [[e.record_id for e in page] for page in pages] == [names(ids[:4]), names(ids[4:8]), names(ids[8:])]
    assert all(ctx.redis.exists(keys.pending(CONNECTION, "webcrm", "organisation", str(i))) for i in ids)
    assert backfill.load_checkpoint(ctx.redis, CONNECTION, ORG)["position"] == str(ids[-1])


def test_an_interrupted_page_leaves_no_pending_marks_and_resumes_at_its_start(make_ctx: MakeCtx,
                                                                              sandboxes: Sandboxes) -> None:
    ctx = make_ctx(batch_size=4)
    ids = orgs(sandboxes, 10)
    first = Interrupting(5)  # the second page would take it past five
    outcome = backfill.run(ctx, ORG, first)
    assert outcome.state == "interrupted" and outcome.position == ids[3]
    assert not any(ctx.redis.exists(keys.pending(CONNECTION, "webcrm", "organisation", str(i))) for i in ids[4:])
    rest: list[Event] = []
    backfill.run(ctx, ORG, into(rest))
    assert [e.record_id for e in first.events + rest] == names(ids)
