"""Intake, locks, links, fingerprints, journal and dead letters against a real Redis."""

from __future__ import annotations

import threading
import time

import pytest
import redis

from sync.events import Event
from sync.jobs.retry import backoff
from sync.state import deadletters, fingerprints, intake, journal, keys
from sync.state.fingerprints import FingerprintStore
from sync.state.links import LinkStore
from sync.state.locks import LockBusy, record_lock
from tasks.queues import BACKFILL, SYNC, SYNC_RECORD, WEBHOOKS, route


def ev(**kw: object) -> Event:
    base = {"connection": "c1", "system": "uniconta", "entity": "item", "record_id": "A1"}
    return Event(**{**base, **kw})  # type: ignore[arg-type]


def test_accept_dedupes_by_delivery_and_coalesces_by_record(redis_client: redis.Redis) -> None:
    sent: list[Event] = []
    first = intake.accept(redis_client, ev(delivery_id="d1"), sent.append)
    dup = intake.accept(redis_client, ev(delivery_id="d1"), sent.append)
    other = intake.accept(redis_client, ev(delivery_id="d2"), sent.append)
    assert (first.status, dup.status, other.status) == ("queued", "duplicate", "coalesced")
    assert dup.event_id == first.event_id
    assert len(sent) == 1
    intake.clear_pending(redis_client, sent[0])  # the job started: a new change queues again
    assert intake.accept(redis_client, ev(delivery_id="d3"), sent.append).status == "queued"
    kinds = [e["kind"] for e in journal.entries(redis_client, "c1", "item", "A1")]
    assert kinds == ["queued", "coalesced", "duplicate", "queued"]


def test_accept_raises_unavailable_when_redis_is_gone() -> None:
    from sync.redis_server import free_port

    dead = redis.Redis(port=free_port(), socket_connect_timeout=0.2)
    with pytest.raises(intake.Unavailable):
        intake.accept(dead, ev(), lambda e: None)


def test_lock_is_exclusive_and_released(redis_client: redis.Redis) -> None:
    with record_lock(redis_client, "c1", "item", "A1"):
        with pytest.raises(LockBusy), record_lock(redis_client, "c1", "item", "A1"):
            pass
        with record_lock(redis_client, "c1", "item", "B2"):
            pass
    with record_lock(redis_client, "c1", "item", "A1"):
        pass


def test_lock_is_extended_while_working(redis_client: redis.Redis) -> None:
    with record_lock(redis_client, "c1", "item", "A1", ttl=0.6):
        time.sleep(1.0)  # longer than the ttl: the keep-alive must have extended it
        assert redis_client.exists(keys.lock("c1", "item", "A1"))


def test_lock_admits_one_of_many_threads(redis_client: redis.Redis) -> None:
    inside, errors = [], []
    barrier = threading.Barrier(8)

    def worker() -> None:
        barrier.wait()
        try:
            with record_lock(redis_client, "c1", "item", "A1"):
                inside.append(1)
                time.sleep(0.2)
        except LockBusy:
            errors.append(1)

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(inside) == 1 and len(errors) == 7


def test_links_both_ways_and_rebind(redis_client: redis.Redis) -> None:
    links = LinkStore(redis_client, "c1")
    links.bind("organisation", 145, "10001")
    assert links.uniconta_key("organisation", "145") == "10001" and links.webcrm_id("organisation", "10001") == "145"
    links.bind("organisation", 145, "10002")
    assert links.webcrm_id("organisation", "10001") is None
    links.forget("organisation", uniconta_key="10002")
    assert links.uniconta_key("organisation", 145) is None and links.count("organisation") == 0


def test_fingerprints_ignore_number_format_and_whitespace(redis_client: redis.Redis) -> None:
    assert fingerprints.of({"a": 1.50, "b": " x "}) == fingerprints.of({"b": "x", "a": 1.5})
    assert fingerprints.of({"a": 1.5}) != fingerprints.of({"a": 1.6})
    store = FingerprintStore(redis_client, "c1")
    store.put("item", "webcrm", "A1", "f1")
    assert store.get("item", "webcrm", "A1") == "f1"


def test_journal_is_capped_and_scrubbed(redis_client: redis.Redis) -> None:
    for i in range(journal.MAX_ENTRIES + 20):
        journal.append(redis_client, "c1", "item", "A1", "api", n=i, note="token=abcdefghijk")
    entries = journal.entries(redis_client, "c1", "item", "A1")
    assert len(entries) == journal.MAX_ENTRIES
    assert entries[0]["n"] == journal.MAX_ENTRIES + 19
    assert "abcdefghijk" not in str(entries)


def test_dead_letters_round_trip(redis_client: redis.Redis) -> None:
    letter = deadletters.add(redis_client, event=ev().task_kwargs(), error=ValueError("bad password=xyz123"),
                             kind="permanent", attempts=3)
    stored = deadletters.get(redis_client, letter)
    assert stored is not None and stored["attempts"] == 3 and "xyz123" not in stored["error"]
    assert [d["id"] for d in deadletters.iter_all(redis_client)] == [letter]
    assert deadletters.drop(redis_client, letter) and deadletters.count(redis_client) == 0


def test_routes_by_origin() -> None:
    assert route(SYNC_RECORD, (), {"event": {"origin": "webhook"}}, {}) == {"queue": WEBHOOKS}
    assert route(SYNC_RECORD, (), {"event": {"origin": "backfill"}}, {}) == {"queue": BACKFILL}
    assert route(SYNC_RECORD, (), {"event": {"origin": "resync"}}, {}) == {"queue": SYNC}


def test_backoff_is_capped_jittered_and_honours_retry_after() -> None:
    import random

    rng = random.Random(1)
    delays = [backoff(a, base=2, cap=60, rng=rng) for a in range(12)]
    assert all(0 <= d <= 60 for d in delays)
    assert backoff(0, base=2, cap=60, retry_after=14, rng=rng) >= 14
    assert backoff(0, base=2, cap=10, retry_after=500, rng=rng) == 10
