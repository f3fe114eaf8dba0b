"""Pending and seen marks never swallow events (issue 14), against a real Redis.

The case that lost an event under load: Redis dies between a record's pending mark and its job's
publish, so the publish fails, the receiver answers 503, and the rollback fails too; the mark comes
back from the AOF without a job. Before the fix every later event for the record was coalesced into
it ("202", then nothing) for an hour.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sync.config import Settings
from sync.events import Event
from sync.redis_server import RedisServer, free_port
from sync.state import intake, journal, keys
from tasks.celery_app import make_celery
from tasks.dispatch import enqueue as publish


def ev(**kw: object) -> Event:
    base = {"connection": "c1", "system": "uniconta", "entity": "item", "record_id": "A1"}
    return Event(**{**base, **kw})  # type: ignore[arg-type]


@pytest.fixture
def crashable(tmp_path: Path) -> Iterator[RedisServer]:
    """A Redis of this test's own that may be killed; `always` so what it acknowledged is on disk."""
    server = RedisServer(tmp_path / "redis", port=free_port(), appendfsync="always")
    server.start()
    yield server
    server.stop()


def test_a_mark_left_by_a_publish_that_died_with_redis_swallows_nothing(crashable: RedisServer) -> None:
    r = redis.Redis.from_url(crashable.url, decode_responses=True, socket_timeout=2, socket_connect_timeout=1)
    app = make_celery(Settings(connections={}, source="tests", redis_url=crashable.url))
    first = ev(delivery_id="d1")

    def die_then_publish(event: Event) -> None:
        crashable.kill()  # Redis dies after the marks were written, before the job is published
        publish(event, app)  # the real kombu publish, which now fails

    with pytest.raises(intake.Unavailable, match="broker"):
        intake.accept(r, first, die_then_publish)
    crashable.start()  # same data directory: the marks come back from the AOF, the job does not
    mark = intake.pending_mark(r, "c1", "uniconta", "item", "A1")
    assert mark == intake.Mark(first.event_id, confirmed=False), "the orphaned mark did not survive; no test"

    sent: list[Event] = []
    again = intake.accept(r, ev(delivery_id="d1"), sent.append)  # the sender retries the refused delivery
    later = intake.accept(r, ev(), sent.append)  # and the next change of the record arrives
    assert (again.status, later.status) == ("queued", "coalesced")
    assert sent and sent[0].delivery_id == "d1"
    assert intake.pending_mark(r, "c1", "uniconta", "item", "A1") == intake.Mark(sent[0].event_id, True)
    app.close()
    r.close()


def test_an_event_joins_a_job_only_once_its_publish_was_acknowledged(redis_client: redis.Redis,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "CONFIRM_WAIT", 60.0)  # the second event waits for the first's publish
    sent: list[Event] = []
    second: list[intake.Outcome] = []
    arrived = threading.Thread(target=lambda: second.append(intake.accept(redis_client, ev(), sent.append)))

    def slow_publish(event: Event) -> None:
        arrived.start()  # a second change arrives while this job is being published
        sent.append(event)

    first = intake.accept(redis_client, ev(), slow_publish)
    arrived.join()
    assert (first.status, second[0].status) == ("queued", "coalesced")
    assert len(sent) == 1


def test_a_publish_that_never_confirms_is_taken_over(redis_client: redis.Redis,
                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(intake, "CONFIRM_WAIT", 0.0)
    sent: list[Event] = []
    second: list[intake.Outcome] = []

    def stuck_publish(event: Event) -> None:
        # Still publishing when the next change arrives: that change must not trust this publish.
        second.append(intake.accept(redis_client, ev(), sent.append))
        sent.append(event)

    first = intake.accept(redis_client, ev(), stuck_publish)
    assert (first.status, second[0].status) == ("queued", "queued")
    later_job, first_job = sent
    mark = intake.pending_mark(redis_client, "c1", "uniconta", "item", "A1")
    assert mark == intake.Mark(later_job.event_id, True)
    intake.clear_pending(redis_client, first_job)  # a job never clears a mark promising another job
    assert intake.pending_mark(redis_client, "c1", "uniconta", "item", "A1") == mark
    intake.clear_pending(redis_client, later_job)
    assert intake.pending_mark(redis_client, "c1", "uniconta", "item", "A1") is None


def test_a_refused_publish_rolls_both_marks_back(redis_client: redis.Redis) -> None:
    def refuse(event: Event) -> None:
        raise ConnectionError("broker gone")

    with pytest.raises(intake.Unavailable):
        intake.accept(redis_client, ev(delivery_id="d1"), refuse)
    assert not redis_client.exists(keys.pending("c1", "uniconta", "item", "A1"), keys.seen("c1", "d1"))
    sent: list[Event] = []
    assert intake.accept(redis_client, ev(delivery_id="d1"), sent.append).status == "queued"
    assert intake.accept(redis_client, ev(delivery_id="d1"), sent.append).status == "duplicate"


def test_release_orphans_queues_records_whose_job_the_broker_lost(redis_client: redis.Redis) -> None:
    lost: list[Event] = []
    intake.accept(redis_client, ev(record_id="A1"), lost.append)  # its job is purged from the queue later
    kept: list[Event] = []
    intake.accept(redis_client, ev(record_id="B2"), kept.append)
    marks = intake.pending_marks(redis_client, "c1")
    assert set(marks) == {keys.pending("c1", "uniconta", "item", r) for r in ("A1", "B2")}

    again: list[Event] = []
    released = intake.release_orphans(redis_client, "c1", marks, {kept[0].event_id}, again.append)
    assert released == [keys.pending("c1", "uniconta", "item", "A1")]
    assert [(e.record_id, e.origin) for e in again] == [("A1", "reconcile")]
    assert intake.pending_mark(redis_client, "c1", "uniconta", "item", "A1") == intake.Mark(again[0].event_id, True)
    kinds = [e["kind"] for e in journal.entries(redis_client, "c1", "item", "A1")]
    assert kinds[:2] == ["queued", "orphan"]
    # A mark whose job started meanwhile is left alone (the compare-and-delete sees the change).
    intake.clear_pending(redis_client, again[0])
    assert intake.release_orphans(redis_client, "c1", marks, {kept[0].event_id}, again.append) == []


def test_a_burst_takes_waiting_single_jobs_of_its_entity_into_a_batch(redis_client: redis.Redis) -> None:
    r = redis_client
    sent: list[Event] = []
    events = [ev(record_id=f"A{n}") for n in range(6)]
    for event in events:
        assert intake.accept(r, event, sent.append).status == "queued"
    intake.accept(r, ev(entity="debtor", record_id="D1"), sent.append)  # another entity: never taken
    assert intake.on_start(r, events[0])[1] == 6

    intake.clear_pending(r, events[1])  # its job started: no longer waiting, not taken
    taken = intake.adopt(r, events[0], limit=3)

    by_id = {e.event_id: e for e in events}
    assert len(taken) == 3 and all(by_id[e.event_id] == e for e in taken)  # the jobs' own events
    assert {e.record_id for e in taken} <= {"A2", "A3", "A4", "A5"}
    for event in taken:  # the marks stay: the batch job carries these same events
        assert intake.pending_mark(r, "c1", "uniconta", "item", event.record_id) == intake.Mark(event.event_id, True)
        assert not intake.on_start(r, event)[0]  # not before the batch job is published
    intake.drain(r, taken, into=events[0])
    for event in taken:
        assert intake.on_start(r, event)[0] and not intake.on_start(r, event)[0]  # told once: its job does nothing
    left = [e for e in events[2:] if e not in taken]
    assert not intake.on_start(r, left[0])[0]  # not taken: its job runs as usual
    assert intake.on_start(r, events[0])[1] == 2  # the taker's own and the one left
    assert intake.adopt(r, events[0], limit=10) == left  # the taker's own record is never taken
    assert [e["kind"] for e in journal.entries(r, "c1", "item", taken[0].record_id)][:1] == ["batched"]
    intake.clear_pending_many(r, taken)  # what the batch job does first
    assert all(intake.pending_mark(r, "c1", "uniconta", "item", e.record_id) is None for e in taken)


def test_a_record_whose_event_is_only_reserved_is_not_taken(redis_client: redis.Redis) -> None:
    r = redis_client
    intake.accept(r, ev(record_id="A1"), lambda e: None)
    r.set(keys.pending("c1", "uniconta", "item", "A1"), "publishing someone-else")  # a publish in flight
    assert intake.adopt(r, ev(record_id="A0"), limit=10) == []


def test_a_webhook_for_a_record_a_batch_just_wrote_waits_for_its_echoes(redis_client: redis.Redis) -> None:
    r = redis_client
    r.set(keys.echo("c1", "uniconta", "item", "A1"), 2.0)  # what a batch sets when it writes the record
    sent: list[Event] = []
    intake.accept(r, ev(record_id="A1"), sent.append)
    intake.accept(r, ev(record_id="A2"), sent.append)  # a record nobody wrote: at once
    assert [e.delay for e in sent] == [2.0, 0.0]
    assert "delay" not in sent[1].task_kwargs()


def test_a_burst_of_webhooks_of_one_entity_makes_its_jobs_wait_so_they_gather(redis_client: redis.Redis) -> None:
    r = redis_client
    burst = intake.Burst(threshold=3, delay=1.5)
    sent: list[Event] = []
    for n in range(6):
        intake.accept(r, ev(record_id=f"A{n}"), sent.append, burst)
    intake.accept(r, ev(entity="debtor", record_id="D1"), sent.append, burst)  # another entity: not a burst
    intake.accept(r, ev(record_id="B1"), sent.append)  # no burst settings (not a webhook): never delayed
    assert [e.delay for e in sent] == [0.0, 0.0, 1.5, 1.5, 1.5, 1.5, 0.0, 0.0]


def test_one_record_edited_quickly_is_not_a_burst(redis_client: redis.Redis) -> None:
    """A person's edits of one record and the echoes of our writes to it come fast, but they are one
    record: its jobs are never delayed (benchmark 2 once showed single edits waiting the gathering window)."""
    burst = intake.Burst(threshold=3, delay=1.5)
    sent: list[Event] = []
    for _ in range(6):
        intake.accept(redis_client, ev(record_id="A"), sent.append, burst)
        intake.clear_pending(redis_client, sent[-1])  # its job ran: the next webhook is queued again
    assert len(sent) == 6 and all(e.delay == 0.0 for e in sent)
