"""Prometheus metrics end to end: the receiver under gunicorn (2 workers) and a real Celery worker (prefork),
each in multiprocess mode, scraped after webhooks were answered and records synced, retried and dead-lettered.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
import requests
from prometheus_client.parser import text_string_to_metric_families

from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient
from sync.config import load_settings
from sync.operations.hooks_setup import install_hooks
from sync.redis_server import RedisServer, free_port
from sync.state import deadletters, journal
from tests.support.procs import Proc
from tests.support.stack import (
    CONNECTION,
    TOKEN,
    admin,
    clean_sync_state,
    start_worker,
    wait_for,
    worker_env,
    write_config,
)

pytestmark = pytest.mark.slow

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


@dataclass
class Running:
    webcrm: str
    uniconta: str
    receiver: str
    worker_metrics: str
    redis: redis.Redis


@pytest.fixture(scope="module")
def running(webcrm_sandbox: str, uniconta_sandbox: str, redis_server: RedisServer,
            tmp_path_factory: pytest.TempPathFactory) -> Iterator[Running]:
    tmp = tmp_path_factory.mktemp("metrics")
    for base in (webcrm_sandbox, uniconta_sandbox):
        admin(base, "POST", "/reset")
    url = redis_server.url.rsplit("/", 1)[0] + "/3"  # own database: unit tests flush 0, the e2e stack uses 1
    config = write_config(tmp / "sync.toml", webcrm_url=webcrm_sandbox, uniconta_url=uniconta_sandbox, flows=("items",))
    env = worker_env(config, url)
    port, metrics_port = free_port(), free_port()
    receiver = Proc([sys.executable, "-m", "gunicorn", "-c", "python:webhooks.gunicorn_conf", "--bind",
                     f"127.0.0.1:{port}", "--workers", "2", "--threads", "2", "webhooks.app:create_app()"],
                    env={**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "receiver")}, log=tmp / "receiver.log",
                    url=f"http://127.0.0.1:{port}")
    (tmp / "receiver").mkdir()
    (tmp / "receiver" / "counter_1.db").write_bytes(b"")  # a previous run's file: emptied at start
    worker = None
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        receiver.start().wait_http("/healthz")
        assert not (tmp / "receiver" / "counter_1.db").exists()
        worker = start_worker({**env, "PROMETHEUS_MULTIPROC_DIR": str(tmp / "worker"),
                               "SYNC_METRICS_PORT": str(metrics_port)}, tmp / "worker.log")
        clean_sync_state(client)
        with WebcrmClient(webcrm_sandbox, "sandbox-token") as webcrm, \
                UnicontaClient(uniconta_sandbox, 1234, "sandbox", "sandbox") as uniconta:
            install_hooks(load_settings(env).connections[CONNECTION], webcrm, uniconta, receiver.url)
        yield Running(webcrm_sandbox, uniconta_sandbox, receiver.url, f"http://127.0.0.1:{metrics_port}", client)
    finally:
        if worker is not None:
            worker.stop()
        receiver.stop()
        client.close()
        for base in (webcrm_sandbox, uniconta_sandbox):
            admin(base, "POST", "/reset")


def scrape(url: str) -> Samples:
    """Every sample of a /metrics answer, parsed by prometheus-client's own text parser."""
    resp = requests.get(f"{url}/metrics", timeout=10)
    assert resp.status_code == 200 and resp.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    return {(s.name, frozenset(s.labels.items())): s.value
            for family in text_string_to_metric_families(resp.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    """The sum of `name`'s samples whose labels include these."""
    wanted = set(labels.items())
    return sum(v for (n, lbls), v in samples.items() if n == name and wanted <= lbls)


def names(samples: Samples) -> set[str]:
    return {n for n, _ in samples}


def item(stack: Running, number: str) -> None:
    admin(stack.uniconta, "POST", "/ui/InvItemClient", json={"Item": number, "Name": f"Metric {number}",
                                                            "SalesPrice1": 5})


def test_receiver_and_worker_answer_in_prometheus_text_format_with_the_listed_metrics(running: Running) -> None:
    # A 429 from webCRM: the record is retried, then synced once the fault is gone.
    admin(running.webcrm, "PUT", "/faults", json={"error_rate": 1, "error_status": 429})
    item(running, "M-1")
    wait_for(lambda: any(e["kind"] == "retry" for e in journal.entries(running.redis, CONNECTION, "item", "M-1")),
             timeout=30, what="a retry after the 429")
    admin(running.webcrm, "PUT", "/faults", json={"error_rate": 0})
    wait_for(lambda: any(e["kind"] == "done" for e in journal.entries(running.redis, CONNECTION, "item", "M-1")),
             timeout=30, what="the item synced")
    # A permanent error (webCRM refuses our auth code): a dead letter.
    admin(running.webcrm, "PUT", "/auth", json={"auth_codes": "other=Someone"})
    admin(running.webcrm, "POST", "/auth/expire")
    item(running, "M-2")
    wait_for(lambda: deadletters.count(running.redis) == 1, timeout=30, what="a dead letter")
    # The receiver's other answers: a wrong token, then one delivery twice.
    hook = f"{running.receiver}/webhook/{CONNECTION}/webcrm"
    body = {"EventType": "Update", "Entity": "Organisation", "EntityId": 7, "Timestamp": "2026-05-01T10:00:00"}
    assert requests.post(f"{hook}?token=wrong", json=body, timeout=5).status_code == 401
    for status in (202, 200):
        resp = requests.post(f"{hook}?token={TOKEN}", json=body, headers={"webhook-id": "msg-1"}, timeout=5)
        assert resp.status_code == status, resp.text

    receiver = scrape(running.receiver)
    assert value(receiver, "sync_webhooks_total", connection=CONNECTION, system="uniconta", answer="accepted",
                 code="202") >= 2
    assert value(receiver, "sync_webhooks_total", system="webcrm", answer="refused", code="401") == 1
    assert value(receiver, "sync_webhooks_total", system="webcrm", answer="duplicate", code="200") == 1
    assert value(receiver, "sync_intake_total", connection=CONNECTION, origin="webhook", outcome="queued") >= 3
    assert not any(n.startswith(("sync_records", "sync_api")) for n in names(receiver))  # the worker's own

    worker = wait_for(lambda: (s := scrape(running.worker_metrics))
                      and value(s, "sync_records_total", flow="organisations", action="ignored") and s,
                      what="the ignored organisation counted")  # the webCRM hook's job (flow not enabled)
    assert value(worker, "sync_records_total", connection=CONNECTION, flow="items", action="created") == 1
    assert value(worker, "sync_lag_seconds_count", connection=CONNECTION, flow="items", origin="webhook") >= 1
    assert value(worker, "sync_lag_seconds_sum", flow="items") > 0
    assert value(worker, "sync_lag_seconds_bucket", flow="items", le="+Inf") >= 1
    assert value(worker, "sync_retries_total", flow="items", kind="transient") >= 1
    assert value(worker, "sync_dead_letters_total", flow="items", kind="permanent") == 1
    assert value(worker, "sync_api_calls_total", connection=CONNECTION, system="webcrm", status="429") >= 1
    assert value(worker, "sync_api_calls_total", system="uniconta", method="GET", status="200") >= 1
    assert value(worker, "sync_api_calls_total", system="webcrm", status="401") >= 1
    assert value(worker, "sync_api_call_duration_seconds_count", system="uniconta", method="GET") >= 1
    assert value(worker, "sync_api_throttled_total", system="webcrm", source="api") >= 1
    statuses = {dict(lbls)["status"] for n, lbls in worker if n == "sync_api_calls_total"}
    assert all(re.fullmatch(r"\d{3}|error", s) for s in statuses), statuses  # codes, never paths or ids
    # Read from Redis at scrape time.
    assert value(worker, "sync_redis_up") == 1
    assert value(worker, "sync_dead_letters_waiting") == 1
    assert {dict(lbls)["queue"] for n, lbls in worker if n == "sync_queue_depth"} == \
        {"webhooks", "sync", "reconcile", "backfill"}
    assert value(worker, "sync_uniconta_calls_today", connection=CONNECTION) >= 1
    assert value(worker, "sync_uniconta_daily_budget", connection=CONNECTION) == 5000
    assert 0 < value(worker, "sync_uniconta_budget_used_ratio", connection=CONNECTION) < 1
    assert value(worker, "sync_webcrm_calls_last_minute", connection=CONNECTION) >= 1
    assert value(worker, "sync_webcrm_rate_limit_per_minute", connection=CONNECTION) == 250
    assert 0 < value(worker, "sync_webcrm_rate_used_ratio", connection=CONNECTION) <= 1
