"""The sync.record job run in-process (eager) against the sandboxes: dead letters and Sentry, once."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import requests
import sentry_sdk

from sync.events import Event
from sync.runtime import reset_runtime
from sync.secrets import Secret
from sync.sentry import init_sentry
from sync.state import deadletters, journal
from tests.support.stack import CONNECTION, clean_sync_state, write_config
from tests.sync.test_sentry import CapturingTransport


@pytest.fixture
def worker_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path, redis_url: str, webcrm_sandbox: str,
               uniconta_sandbox: str) -> Iterator[redis.Redis]:
    for base in (webcrm_sandbox, uniconta_sandbox):
        requests.post(f"{base}/_sandbox/reset", timeout=5)
    url = redis_url.rsplit("/", 1)[0] + "/2"
    config = write_config(tmp_path / "sync.toml", webcrm_url=webcrm_sandbox, uniconta_url=uniconta_sandbox,
                          flows=("items",))
    for key, value in {"SYNC_CONFIG": str(config), "REDIS_URL": url, "SYNC_RETRY_WINDOW_SECONDS": "1",
                       "SYNC_RETRY_BASE_SECONDS": "0.01", "SYNC_RETRY_MAX_SECONDS": "0.1"}.items():
        monkeypatch.setenv(key, value)
    reset_runtime()
    r = redis.Redis.from_url(url, decode_responses=True)
    clean_sync_state(r)
    yield r
    reset_runtime()
    r.close()


def run(event: Event) -> Any:
    from tasks.record import sync_record

    return sync_record.apply(kwargs={"event": event.task_kwargs()}).get(disable_sync_subtasks=False)


def test_permanent_error_is_one_dead_letter_and_one_sentry_event(worker_env: redis.Redis, webcrm_sandbox: str,
                                                                  uniconta_sandbox: str) -> None:
    requests.post(f"{uniconta_sandbox}/_sandbox/ui/InvItemClient", json={"Item": "X1", "Name": "x"}, timeout=5)
    requests.put(f"{webcrm_sandbox}/_sandbox/auth", json={"auth_codes": "other=Someone"}, timeout=5)
    events: list[Any] = []
    transport = CapturingTransport()
    init_sentry(Secret("https://public@sentry.example/1"), transport=transport)
    try:
        assert run(Event(CONNECTION, "uniconta", "item", "X1")) == "dead-letter"
        sentry_sdk.flush()
        events = [item.payload.json for env in transport.envelopes for item in env.items
                  if item.payload.json and item.payload.json.get("exception")]
    finally:
        sentry_sdk.init()
    letters = list(deadletters.iter_all(worker_env))
    assert [(d["kind"], d["error_type"]) for d in letters] == [("permanent", "AuthError")]
    assert len(events) == 1
    assert "sandbox-token" not in repr(events) and "sandbox-token" not in repr(letters)


def test_transient_errors_retry_until_the_window_closes(worker_env: redis.Redis, webcrm_sandbox: str,
                                                         uniconta_sandbox: str) -> None:
    requests.post(f"{uniconta_sandbox}/_sandbox/ui/InvItemClient", json={"Item": "X2", "Name": "x"}, timeout=5)
    requests.put(f"{webcrm_sandbox}/_sandbox/faults", json={"down_seconds": 30, "error_status": 503}, timeout=5)
    try:
        assert run(Event(CONNECTION, "uniconta", "item", "X2")) == "dead-letter"
    finally:
        requests.post(f"{webcrm_sandbox}/_sandbox/reset", timeout=5)
    kinds = [e["kind"] for e in journal.entries(worker_env, CONNECTION, "item", "X2")]
    assert kinds.count("retry") >= 1 and kinds[0] == "dead-letter"
    assert [d["kind"] for d in deadletters.iter_all(worker_env)] == ["exhausted"]


def test_unknown_connection_and_unrouted_entities(worker_env: redis.Redis) -> None:
    assert run(Event("nope", "uniconta", "item", "X3")) == "dead-letter"
    assert [d["kind"] for d in deadletters.iter_all(worker_env)] == ["config"]
    assert run(Event(CONNECTION, "webcrm", "opportunity", "9")) == "ignored"
    assert run(Event(CONNECTION, "webcrm", "organisation", "9")) == "ignored"  # flow not enabled here
