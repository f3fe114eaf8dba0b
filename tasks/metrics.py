"""The worker's Prometheus endpoint: what its pool processes recorded, plus state read from Redis.

Started once, in Celery's main process, when `SYNC_METRICS_PORT` is set (tasks/app.py's signals).
The pool processes record into `PROMETHEUS_MULTIPROC_DIR` (sync/metrics.py) and this server merges
their files. What lives in Redis — queue depths, dead letters waiting, the Uniconta budget, the
webCRM window — is shared by every worker, so it is read when Prometheus scrapes instead of being
pushed by jobs: right even when no job runs, and a few cheap reads per scrape (no message decoding).
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Iterator
from typing import Any

import redis
from prometheus_client import start_http_server
from prometheus_client.core import GaugeMetricFamily, Metric
from redis.backoff import NoBackoff
from redis.retry import Retry

from sync import metrics
from sync.config import Settings
from sync.operations.status import uniconta_budget, webcrm_rate
from sync.runtime import redis_url
from sync.state import deadletters
from tasks.broker import queue_depth
from tasks.queues import ALL as QUEUES

log = logging.getLogger(__name__)


class StateCollector:
    """Gauges of the shared state in Redis, read at each scrape (`sync_redis_up` 0 when it cannot be read)."""

    def __init__(self, settings: Settings, client: redis.Redis | None = None) -> None:
        self.settings = settings
        # No retries: a scrape while Redis is down answers at once, with sync_redis_up 0.
        self.redis = client or redis.Redis.from_url(redis_url(settings), decode_responses=True, socket_timeout=2,
                                                    socket_connect_timeout=2, retry=Retry(NoBackoff(), 0))

    def collect(self) -> Iterator[Metric]:
        up = 1
        try:
            families = list(self._read())
        except redis.RedisError as err:
            log.debug("metrics: redis unreadable: %s", err)
            families, up = [], 0
        yield from families
        yield GaugeMetricFamily("sync_redis_up", "1 when the worker's metrics server could read Redis.", value=up)

    def _read(self) -> Iterator[Metric]:
        r = self.redis
        depth = GaugeMetricFamily("sync_queue_depth", "Jobs waiting in a broker queue.", labels=["queue"])
        for queue in QUEUES:
            depth.add_metric([queue], queue_depth(r, queue))
        yield depth
        yield GaugeMetricFamily("sync_dead_letters_waiting", "Dead letters stored, waiting for an operator.",
                                value=deadletters.count(r))
        gauges = {
            "uniconta_used": ("sync_uniconta_calls_today", "Uniconta calls counted today (Copenhagen day)."),
            "uniconta_limit": ("sync_uniconta_daily_budget", "Uniconta daily call budget (0 = off)."),
            "uniconta_ratio": ("sync_uniconta_budget_used_ratio", "Share of the Uniconta daily budget used."),
            "webcrm_used": ("sync_webcrm_calls_last_minute", "webCRM calls in the shared sliding minute."),
            "webcrm_limit": ("sync_webcrm_rate_limit_per_minute", "webCRM calls allowed per minute (0 = off)."),
            "webcrm_ratio": ("sync_webcrm_rate_used_ratio", "Share of the webCRM minute used."),
        }
        families = {key: GaugeMetricFamily(name, text, labels=["connection"]) for key, (name, text) in gauges.items()}
        for conn_id, conn in self.settings.connections.items():
            budget, rate = uniconta_budget(r, conn), webcrm_rate(r, conn)
            _add(families, "uniconta", conn_id, budget["used"], budget["budget"])
            _add(families, "webcrm", conn_id, rate["used_last_minute"], rate["limit_per_minute"])
        yield from families.values()


def _add(families: dict[str, GaugeMetricFamily], system: str, connection: str, used: int, limit: int) -> None:
    families[f"{system}_used"].add_metric([connection], used)
    families[f"{system}_limit"].add_metric([connection], limit)
    if limit:  # no ratio for a limit that is off, so an alert on it never fires for nothing
        families[f"{system}_ratio"].add_metric([connection], used / limit)


_server: Any = None
_lock = threading.Lock()


def start(settings: Settings) -> None:
    """Serve the metrics on SYNC_METRICS_HOST:SYNC_METRICS_PORT (once per process; no port, no server).

    A port that cannot be bound is logged, not raised: the worker's syncs matter more than its metrics.
    """
    global _server
    if not settings.metrics_port:
        return
    with _lock:
        if _server is not None:
            return
        if metrics.multiprocess_dir() is None:
            log.warning("metrics: PROMETHEUS_MULTIPROC_DIR is not set, so only this process's metrics are "
                        "served (right for --pool solo or threads, not for the prefork pool's children)")
        served = metrics.registry()
        served.register(StateCollector(settings))
        try:
            _server, _thread = start_http_server(settings.metrics_port, settings.metrics_host, registry=served)
        except OSError as err:
            log.error("metrics: cannot serve on %s:%s: %s", settings.metrics_host, settings.metrics_port, err)
            return
    log.info("metrics on http://%s:%s/metrics", settings.metrics_host, settings.metrics_port)


def stop() -> None:
    global _server
    with _lock:
        server, _server = _server, None
    if server is not None:
        server.shutdown()
        server.server_close()
