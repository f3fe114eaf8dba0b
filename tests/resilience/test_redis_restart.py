"""Redis (broker and state, AOF on) killed with SIGKILL mid-stream and restarted on the same data.

The sender here plays Uniconta: one Change-URL call per item, at a steady pace, answered 202 when the
event is stored and queued, 503 with Retry-After when it is not (and re-sent later, as a sender that
honours 503 would; Uniconta itself does not retry, which reconciliation covers).
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from sync.config import load_settings
from sync.events import Event
from sync.state import intake
from tasks.celery_app import make_celery
from tasks.dispatch import enqueuer
from tests.resilience.conftest import Stack, expect_catalogue
from tests.support.http import LiveServer
from tests.support.stack import CONNECTION, TOKEN, admin, wait_for
from webhooks.app import create_app

pytestmark = pytest.mark.slow

ITEMS = 90


def seed_items(res: Stack, count: int) -> dict[str, dict[str, Any]]:
    """Items that exist in Uniconta before the stream (seeding fires no webhooks)."""
    admin(res.uniconta.url, "POST", "/seed", json={"entity": "InvItems", "count": count, "seed": 42})
    return {str(r["Item"]): r for r in res.uniconta_items()}


def send(res: Stack, item: dict[str, Any], session: requests.Session) -> requests.Response | None:
    params = {"CompanyId": 1234, "Table": "InvItem", "Key": item["Item"], "RowId": item["RowId"],
              "Action": "update", "token": TOKEN}
    try:
        return session.get(f"{res.receiver.url}/webhook/{CONNECTION}/uniconta", params=params, timeout=10)
    except requests.RequestException:
        return None


class Sender(threading.Thread):
    """Sends one webhook per item, `pace` seconds apart, and keeps every answer."""

    def __init__(self, res: Stack, items: list[dict[str, Any]], pace: float) -> None:
        super().__init__(name="sender")
        self.res, self.items, self.pace = res, items, pace
        self.answers: dict[str, requests.Response | None] = {}
        self.sent = 0

    def run(self) -> None:
        session = requests.Session()
        for item in self.items:
            self.answers[str(item["Item"])] = send(self.res, item, session)
            self.sent += 1
            time.sleep(self.pace)


def expected_prices(items: dict[str, dict[str, Any]], numbers: list[str]) -> dict[str, float]:
    return {n: round(float(items[n].get("SalesPrice1") or 0), 2) for n in numbers}


def test_receiver_answers_503_while_redis_is_down_and_no_accepted_event_is_lost(res: Stack) -> None:
    """The worker is stopped around the crash, so every accepted event is queued (not running) when
    Redis dies: the queue must survive the SIGKILL through the AOF, and a worker started afterwards
    must sync every accepted item."""
    items = seed_items(res, ITEMS)
    sender = Sender(res, list(items.values()), pace=0.04)
    sender.start()
    wait_for(lambda: sender.sent >= ITEMS // 3, timeout=30, what="a third of the webhooks")
    res.redis_server.kill()
    wait_for(lambda: sender.sent >= 2 * ITEMS // 3, timeout=30, what="webhooks while Redis is down")
    ready = requests.get(f"{res.receiver.url}/readyz", timeout=5)
    res.redis_server.start()
    sender.join(60)

    answers = sender.answers
    statuses = {n: (a.status_code if a is not None else None) for n, a in answers.items()}
    assert set(statuses.values()) <= {202, 503}, statuses
    unavailable = [n for n, s in statuses.items() if s == 503]
    assert unavailable, "no webhook was refused while Redis was down"
    assert all(answers[n].headers.get("Retry-After") for n in unavailable)  # type: ignore[union-attr]
    assert ready.status_code == 503
    accepted = [n for n, s in statuses.items() if s == 202]
    assert len(accepted) >= ITEMS // 3

    res.start_worker(concurrency=2)
    expect_catalogue(res, expected_prices(items, accepted), timeout=90, what="every accepted item synced")

    # The sender re-sends what was refused; the receiver and the worker work as before.
    session = requests.Session()
    for number in unavailable:
        answer = send(res, items[number], session)
        assert answer is not None and answer.status_code == 202
    expect_catalogue(res, expected_prices(items, list(items)), timeout=90, what="every item synced")
    assert res.dead_letters() == []


def test_a_webhook_refused_because_redis_died_mid_publish_is_synced_when_re_sent(res: Stack) -> None:
    """The lost event of issue 14, made deterministic: Redis dies after the receiver wrote the record's
    pending mark and before the job's publish, so the answer is 503 and the rollback fails too. The
    mark comes back from the AOF without a job; until the fix, the sender's retry and every later
    webhook for the record were answered 202 "coalesced" into that missing job and never synced."""
    items = seed_items(res, 2)
    victim, other = (str(n) for n in items)
    settings = load_settings(res.env)
    celery = make_celery(settings)
    publish = enqueuer(celery)

    def redis_dies_mid_publish(event: Event) -> None:
        if event.record_id == victim:
            res.redis_server.kill()
        publish(event)

    dying = LiveServer(create_app(settings, enqueue=redis_dies_mid_publish))
    try:
        refused = requests.get(f"{dying.url}/webhook/{CONNECTION}/uniconta", timeout=30, params={
            "CompanyId": 1234, "Table": "InvItem", "Key": victim, "RowId": items[victim]["RowId"],
            "Action": "update", "token": TOKEN})
    finally:
        dying.close()
        celery.close()
    assert refused.status_code == 503 and refused.headers.get("Retry-After")
    res.redis_server.start()
    left = intake.pending_mark(res.redis, CONNECTION, "uniconta", "item", victim)
    assert left is not None and not left.confirmed, "no orphaned mark came back: the test proves nothing"

    res.start_worker(concurrency=2)
    session = requests.Session()
    answers = [send(res, items[number], session) for number in (victim, other)]
    assert [(a.status_code, a.json().get("coalesced")) for a in answers if a is not None] == [(202, None)] * 2
    expect_catalogue(res, expected_prices(items, [victim, other]), timeout=90, what="both items synced")
    assert res.dead_letters() == []


def test_jobs_running_when_redis_dies_are_not_lost(res: Stack) -> None:
    """Redis dies while both pool processes are inside a sync (a slow Uniconta read); after the
    restart every accepted item must still be synced.

    This lost both events until 53fbe3c: the job's retry could not be published, Celery acked the
    failed task, and the event was gone. Now the job is requeued; it then waits for the lock its
    dead run left in Redis (TTL 60 s), so this test takes about a minute.
    """
    items = seed_items(res, 20)
    admin(res.uniconta.url, "PUT", "/faults", json={"latency_ms": 1500})
    res.start_worker(concurrency=2)
    sender = Sender(res, list(items.values()), pace=0.02)
    sender.start()
    sender.join(60)
    assert {a.status_code for a in sender.answers.values() if a is not None} == {202}
    wait_for(lambda: len(res.redis.keys(f"sync:{CONNECTION}:lock:*")) >= 2, timeout=30,
             what="two syncs in progress")
    res.redis_server.kill()
    time.sleep(2)
    res.redis_server.start()
    admin(res.uniconta.url, "PUT", "/faults", json={"latency_ms": 0})

    prices = expected_prices(items, list(items))
    # Either every item arrives, or nothing is left that could still bring the missing ones: no job
    # queued, reserved or scheduled for a retry (a dead job's lock only delays, for its 60 s TTL).
    wait_for(lambda: set(res.catalogue()) >= set(prices) or res.nothing_to_redeliver(), timeout=240, interval=0.5,
             what="the syncs to finish")
    missing = sorted(set(prices) - set(res.catalogue()))
    assert missing == [], f"accepted (202) but never synced, and nothing left to redeliver: {missing}"
    assert res.dead_letters() == []
