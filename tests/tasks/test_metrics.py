"""The worker's metrics server: gauges read from Redis at scrape time, and no failure when Redis is gone."""

from __future__ import annotations

from dataclasses import replace

import redis
import requests
from prometheus_client import CollectorRegistry
from prometheus_client.parser import text_string_to_metric_families

from sync.config import Settings, load_settings
from sync.redis_server import free_port
from sync.state import deadletters, keys
from tasks import metrics as server
from tasks.metrics import StateCollector


def gauges(collector: StateCollector) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    registry = CollectorRegistry()
    registry.register(collector)
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for family in registry.collect() for s in family.samples}


def test_state_is_read_from_redis_at_scrape_time(redis_client: redis.Redis) -> None:
    settings = load_settings({})
    redis_client.lpush("webhooks", "{}", "{}")
    deadletters.add(redis_client, event={"connection": "demo"}, error="boom", kind="bug", attempts=1)
    redis_client.zadd(keys.webcrm_rate("demo"), {"a": float(redis_client.time()[0])})
    collector = StateCollector(settings, redis_client)
    collector_values = gauges(collector)
    assert collector_values[("sync_queue_depth", (("queue", "webhooks"),))] == 2
    assert collector_values[("sync_queue_depth", (("queue", "backfill"),))] == 0
    assert collector_values[("sync_dead_letters_waiting", ())] == 1
    assert collector_values[("sync_webcrm_calls_last_minute", (("connection", "demo"),))] == 1
    assert collector_values[("sync_webcrm_rate_used_ratio", (("connection", "demo"),))] == 1 / 250
    assert collector_values[("sync_uniconta_calls_today", (("connection", "demo"),))] == 0
    assert collector_values[("sync_uniconta_daily_budget", (("connection", "demo"),))] == 5000
    assert collector_values[("sync_redis_up", ())] == 1


def test_no_redis_is_a_gauge_not_a_failed_scrape() -> None:
    settings = replace(load_settings({}), redis_url=f"redis://127.0.0.1:{free_port()}/0")
    assert gauges(StateCollector(settings)) == {("sync_redis_up", ()): 0}


def test_the_server_answers_on_its_port_and_only_once(redis_url: str) -> None:
    settings: Settings = replace(load_settings({}), redis_url=redis_url, metrics_port=free_port())
    server.start(settings)
    try:
        server.start(settings)  # a second start is a no-op, not a bind error
        text = requests.get(f"http://127.0.0.1:{settings.metrics_port}/metrics", timeout=5).text
        assert {f.name for f in text_string_to_metric_families(text)} >= {"sync_redis_up", "sync_queue_depth"}
    finally:
        server.stop()
