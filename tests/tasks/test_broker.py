"""What the broker holds, read the way `syncctl status` and the orphan sweep read it: a real worker
process holding a job for a retry countdown after webCRM answered 429, and jobs queued for real."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from click.testing import CliRunner

from sync.config import load_settings
from sync.events import Event
from sync.redis_server import RedisServer
from syncctl.main import main
from tasks import broker
from tasks.celery_app import make_celery
from tasks.dispatch import enqueuer
from tests.support.procs import Proc
from tests.support.stack import CONNECTION, admin, start_worker, wait_for, worker_env, write_config

pytestmark = pytest.mark.slow

RETRY_AFTER = 45  # long enough that the job is still held while the test looks


@pytest.fixture
def env(webcrm_sandbox: str, uniconta_sandbox: str, redis_server: RedisServer, tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch) -> Iterator[dict[str, str]]:
    """Connection t1 (items) on the sandboxes and database 2 of the session's Redis (flushed)."""
    for url in (webcrm_sandbox, uniconta_sandbox):
        admin(url, "POST", "/reset")
    url = redis_server.url.rsplit("/", 1)[0] + "/2"
    redis.Redis.from_url(url).flushdb()
    config = write_config(tmp_path / "sync.toml", webcrm_url=webcrm_sandbox, uniconta_url=uniconta_sandbox,
                          flows=("items",))
    # The backoff honours Retry-After up to its cap; the cap must let a 45 s Retry-After through.
    values = worker_env(config, url, SYNC_RETRY_MAX_SECONDS="120")
    for name, value in values.items():
        monkeypatch.setenv(name, value)
    yield values
    admin(webcrm_sandbox, "PUT", "/faults", json={"error_rate": 0})


@pytest.fixture
def worker(env: dict[str, str], tmp_path: Path) -> Iterator[Proc]:
    proc = start_worker(env, tmp_path / "worker.log", concurrency=1)
    yield proc
    proc.stop()


def publish(env: dict[str, str], *events: Event) -> None:
    app = make_celery(load_settings(env))
    try:
        for event in events:
            enqueuer(app)(event)
    finally:
        app.close()


def test_a_job_held_for_a_retry_countdown_is_shown_per_connection_and_queue(
        env: dict[str, str], worker: Proc, webcrm_sandbox: str, uniconta_sandbox: str) -> None:
    admin(uniconta_sandbox, "POST", "/ui/InvItemClient", json={"Item": "R-1", "Name": "Held", "SalesPrice1": 3})
    admin(webcrm_sandbox, "PUT", "/quirks", json={"injected_retry_after": RETRY_AFTER})
    admin(webcrm_sandbox, "PUT", "/faults", json={"error_rate": 1, "error_status": 429})
    publish(env, Event(CONNECTION, "uniconta", "item", "R-1"))
    r = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)

    held = wait_for(lambda: broker.retrying(r, [CONNECTION])["webhooks"]["count"], timeout=30,
                    what="the job held by the worker for its retry")
    assert held == 1 and broker.queue_depth(r, "webhooks") == 0  # neither queued nor pending: only held

    data = json.loads(CliRunner().invoke(main, ["status", CONNECTION, "--json", "--no-ping"]).output)
    assert data["queues"]["webhooks"]["retrying"] == 1
    mine = data["connections"][CONNECTION]["retrying"]["webhooks"]
    assert mine["count"] == 1 and mine["records"][0]["record_id"] == "R-1"
    assert 0 < mine["next_in_seconds"] <= RETRY_AFTER
    text = CliRunner().invoke(main, ["status", CONNECTION, "--no-ping"]).output
    assert "+1 waiting to retry" in text
    assert "retrying:        webhooks 1 held by a worker" in text and "item R-1 in" in text


def test_live_event_ids_cover_queued_and_unacknowledged_jobs(env: dict[str, str]) -> None:
    r = redis.Redis.from_url(env["REDIS_URL"], decode_responses=True)
    queued = [Event(CONNECTION, "uniconta", "item", "Q-1"), Event(CONNECTION, "webcrm", "user", "7", origin="backfill")]
    publish(env, *queued)
    # A message a worker took: kombu moves it from the list into the `unacked` hash.
    taken = Event(CONNECTION, "uniconta", "item", "T-1", origin="resync")
    publish(env, taken)
    raw = r.rpop("sync")
    r.hset(broker.UNACKED, "tag-1", json.dumps([json.loads(raw), "sync", "sync"]))
    assert broker.live_event_ids(r) == {e.event_id for e in [*queued, taken]}
    assert broker.live_event_ids(r, limit=0) is None  # too long to prove anything: no orphan is declared
    assert broker.live_event_ids(r, limit=1) == broker.live_event_ids(r)
    assert broker.retrying(r, [CONNECTION])["sync"]["count"] == 0  # taken, but not waiting for a countdown
