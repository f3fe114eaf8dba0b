"""Backfill walks, checkpoints, flow control and the budget stop; dry-run plumbing. Fake clients, real Redis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from sync import backfill, dryrun, intake, keys
from sync.clients.errors import AmbiguousMatch, Permanent, Transient
from sync.events import Event
from sync.flows import FlowError
from sync.reconcile import budget_of, source_for
from tests.sync.fakes_ops import context

ORG = source_for("organisation")
ITEM = source_for("item")
T0 = datetime(2026, 5, 1, tzinfo=UTC)


def orgs(n: int) -> list[dict[str, Any]]:
    return [{"OrganisationId": i, "OrganisationUpdatedAt": (T0 + timedelta(days=i)).isoformat()}
            for i in range(1, n + 1)]


class Interrupting:
    """An enqueue that is interrupted (Ctrl-C) after `n` events."""

    def __init__(self, n: int) -> None:
        self.n, self.events = n, []

    def __call__(self, event: Event) -> None:
        if len(self.events) >= self.n:
            raise KeyboardInterrupt
        self.events.append(event)


def test_backfill_queues_everything_in_order_at_backfill_origin(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client)
    webcrm.tables["Organisation"] = orgs(5)
    sent: list[Event] = []
    outcome = backfill.run(ctx, ORG, sent.append)
    assert outcome.state == "done" and outcome.queued == 5 and outcome.total == 5
    assert [e.record_id for e in sent] == ["1", "2", "3", "4", "5"]
    assert {e.origin for e in sent} == {"backfill"}
    cp = backfill.load_checkpoint(redis_client, "c1", ORG)
    assert cp["state"] == "done" and cp["position"] == "5"
    # Done: the next run starts over (records whose jobs still wait are coalesced).
    again = backfill.run(ctx, ORG, sent.append)
    assert again.resumed_from is None and again.coalesced == 5


def test_interrupted_backfill_resumes_after_its_checkpoint(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client)
    webcrm.tables["Organisation"] = orgs(10)
    first = Interrupting(4)
    outcome = backfill.run(ctx, ORG, first)
    assert outcome.state == "interrupted" and outcome.position == 4
    assert backfill.load_checkpoint(redis_client, "c1", ORG)["state"] == "interrupted"
    rest: list[Event] = []
    resumed = backfill.run(ctx, ORG, rest.append)
    assert resumed.resumed_from == 4 and resumed.state == "done"
    ids = [e.record_id for e in first.events + rest]
    assert ids == [str(i) for i in range(1, 11)]  # each once, in order
    assert backfill.load_checkpoint(redis_client, "c1", ORG)["queued"] == "10"


def test_limit_stops_and_the_next_run_continues(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client)
    webcrm.tables["Organisation"] = orgs(7)
    sent: list[Event] = []
    assert backfill.run(ctx, ORG, sent.append, limit=3).state == "limit"
    assert backfill.run(ctx, ORG, sent.append, limit=3).state == "limit"
    assert backfill.run(ctx, ORG, sent.append, limit=3).state == "done"
    assert [e.record_id for e in sent] == [str(i) for i in range(1, 8)]


def test_since_filters_and_must_match_an_unfinished_checkpoint(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client)
    webcrm.tables["Organisation"] = orgs(6)
    sent: list[Event] = []
    since = T0 + timedelta(days=4)
    backfill.run(ctx, ORG, sent.append, since=since, limit=1)
    assert [e.record_id for e in sent] == ["4"]
    with pytest.raises(backfill.CheckpointMismatch):
        backfill.run(ctx, ORG, sent.append)
    backfill.run(ctx, ORG, sent.append, since=since)
    assert [e.record_id for e in sent] == ["4", "5", "6"]
    backfill.run(ctx, ORG, sent.append, restart=True, limit=1)
    assert sent[-1].record_id == "1"


def test_flow_control_waits_for_room_in_the_backfill_queue(redis_client: redis.Redis) -> None:
    ctx, webcrm, _ = context(redis_client)
    webcrm.tables["Organisation"] = orgs(3)
    depths = iter([5, 5, 1] + [0] * 50)
    sleeps: list[float] = []
    outcome = backfill.run(ctx, ORG, lambda e: None, window=2, queue_depth=lambda: next(depths),
                           sleep=sleeps.append)
    assert outcome.state == "done" and len(sleeps) == 2


def test_budget_stop_says_when_to_resume_and_resume_works(redis_client: redis.Redis) -> None:
    ctx, _, uniconta = context(redis_client, budget=(100, 20))
    budget = budget_of(ctx)
    uniconta.entities["InvItemClient"] = [{"Item": f"I{i}", "RowId": i} for i in range(1, 21)]
    day_key = f"{keys.uniconta_budget('c1')}:{budget.usage()['day']}"
    redis_client.set(day_key, 60)  # 20 batch calls left; a record is estimated at 3
    sent: list[Event] = []
    outcome = backfill.run(ctx, ITEM, sent.append)
    assert outcome.state == "budget" and 0 < len(sent) < 20
    assert outcome.resume_after_seconds and outcome.resume_after_seconds > 0
    assert "Resume after" in outcome.message and "same command" in outcome.message
    cp = backfill.load_checkpoint(redis_client, "c1", ITEM)
    assert cp["state"] == "budget"
    # None of the queued jobs started, so the checkpoint went back to before the first.
    assert cp["position"] == ""
    redis_client.delete(day_key)  # midnight
    for event in sent:
        intake.clear_pending(redis_client, event)  # the jobs ran meanwhile
    again: list[Event] = []
    done = backfill.run(ctx, ITEM, again.append)
    assert done.state == "done" and len(again) == 20


def test_budget_refusing_the_plan_reads_stops_at_once(redis_client: redis.Redis) -> None:
    ctx, _, _ = context(redis_client, budget=(100, 20))
    budget = budget_of(ctx)
    redis_client.set(f"{keys.uniconta_budget('c1')}:{budget.usage()['day']}", 80)
    outcome = backfill.run(ctx, ITEM, lambda e: None)
    assert outcome.state == "budget" and outcome.queued == 0


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


def test_scratch_context_copies_links_records_writes_and_leaves_nothing(redis_client: redis.Redis) -> None:
    ctx, _, _ = context(redis_client)
    ctx.links.bind("item", 5, "A")
    with dryrun.scratch(ctx) as (dry, writes, queued):
        assert dry.connection.id == "c1~dryrun"
        assert dry.links.webcrm_id("item", "A") == "5"
        dry.links.bind("item", 6, "B")
        new_id = dry.webcrm.create("QuotationLines/LinkedData", {"Data1": "B"})
        assert new_id >= dryrun.PLACEHOLDER_START and dry.webcrm.get("QuotationLines/LinkedData", new_id)["Data1"] == "B"
        dry.uniconta.insert("DebtorClientUser", {"Account": "1", "WebcrmId": "9"})
        assert dry.uniconta.get_one("DebtorClient", "Account", "1")["WebcrmId"] == "9"
        intake.accept(redis_client, Event(dry.connection.id, "webcrm", "organisation", "1"), lambda e: None)
        assert [w.operation for w in writes] == ["create", "insert"] and len(queued) == 1
    assert not list(redis_client.scan_iter("sync:c1~dryrun:*"))
    assert ctx.links.webcrm_id("item", "B") is None and ctx.links.webcrm_id("item", "A") == "5"


def test_backfill_jobs_run_as_batch_work_in_the_worker() -> None:
    from celery import signals

    import tasks.reconcile  # noqa: F401 - connects the signal handlers, as the worker's include does
    from sync.ratelimit import current_priority
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

    from sync import cli

    out = io.StringIO()
    rich = cli._RichReporter(Console(file=out, force_terminal=True, width=100))
    rich.start(3, 0, "backfill c1 item")
    rich.advance({"queued": 1})
    rich.note("waiting for workers")
    rich.stop()
    assert "backfill c1 item" in out.getvalue()
    plain = cli._PlainReporter(interval=0)
    plain.start(2, 0, "backfill c1 item")
    plain.advance({"queued": 1})
    plain.stop()


def test_dry_run_retries_a_rate_limited_record_and_stops_at_the_budget(redis_client: redis.Redis,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    from sync.clients.errors import Throttled
    from sync.flows import Result

    ctx, _, _ = context(redis_client)
    calls: list[str] = []

    def handler(c: Any, event: Event) -> Result:
        calls.append(event.record_id)
        c.webcrm.create("Organisations", {"OrganisationName": event.record_id})
        if event.record_id == "1" and calls.count("1") == 1:
            raise Throttled("window", system="webcrm", retry_after=0.5)
        if event.record_id == "3":
            raise Throttled("budget", system="uniconta", retry_after=3600)
        if event.record_id == "2":
            raise FlowError("no name")
        return Result("created")

    monkeypatch.setattr(dryrun, "handler_for", lambda system, entity: ("organisations", handler))
    slept: list[float] = []
    report = dryrun.run(ctx, ORG, ["1", "2", "3", "4"], sleep=slept.append)
    assert calls == ["1", "1", "2", "3"] and slept == [0.5]
    assert report.counts["would-create"] == 1 and report.counts["invalid"] == 1 and report.records == 2
    assert report.examples["would-create"][0]["writes"] == ["webcrm create Organisations 900000001: "
                                                            "OrganisationName='1'"]
    assert report.stopped.startswith("stopped")


def test_one_backfill_per_source_at_a_time(redis_client: redis.Redis) -> None:
    from sync.locks import record_lock

    ctx, webcrm, _ = context(redis_client)
    webcrm.tables["Organisation"] = orgs(2)
    with record_lock(redis_client, "c1", "backfill", ORG.name), pytest.raises(backfill.Busy):
        backfill.run(ctx, ORG, lambda e: None)
    assert backfill.run(ctx, ORG, lambda e: None).state == "done"
