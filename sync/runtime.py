"""The per-process wiring: settings, the Redis client, and one API client pair per connection.

Built lazily on first use in each worker process (after fork), so clients
and their sessions are never shared between processes.

Flows sometimes need follow-up work queued (a person waiting on its organisation, an order
re-synced once its debtor exists). They ask `ctx.enqueue`, a port the task layer fills
(`provide_enqueue`, called by `tasks.app`): the domain never imports the task layer.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property

import redis

from sync import metrics
from sync.clients.errors import Throttled
from sync.clients.http import Observer
from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient
from sync.config import Connection, Settings, load_settings
from sync.events import Event
from sync.redis_server import DEFAULT_HOST, DEFAULT_PORT
from sync.state import keys
from sync.state.fingerprints import FingerprintStore
from sync.state.intake import Enqueue, EnqueueBatch
from sync.state.journal import observe_call
from sync.state.links import LinkStore
from sync.state.ratelimit import DailyBudget, SlidingWindowLimiter

EMBEDDED_REDIS_URL = f"redis://{DEFAULT_HOST}:{DEFAULT_PORT}/0"
RATE_WAIT_SECONDS = 5.0
# webCRM counts a call when it arrives, a moment after we counted it when we sent it: a window a
# little longer than its minute keeps ours from freeing a slot before webCRM's does (a 429 otherwise).
WEBCRM_WINDOW_SECONDS = 61.5
REDIS_CONNECTIONS = 256  # per process

_enqueue_port: Enqueue | None = None
_enqueue_batch_port: EnqueueBatch | None = None


def provide_enqueue(enqueue: Enqueue | None, enqueue_batch: EnqueueBatch | None = None) -> None:
    """Set the process's job publishers (the task layer does, once, at import)."""
    global _enqueue_port, _enqueue_batch_port
    _enqueue_port, _enqueue_batch_port = enqueue, enqueue_batch


def _missing() -> RuntimeError:
    return RuntimeError("no job publisher in this process: the task layer provides one "
                        "(sync.runtime.provide_enqueue, done by importing tasks.app)")


def publish(event: Event) -> None:
    """Publish a job through the port the task layer provided; raises if there is none."""
    if _enqueue_port is None:
        raise _missing()
    _enqueue_port(event)


def publish_batch(events: list[Event], countdown: float = 0.0) -> None:
    """Publish one batch job for these events (after `countdown` seconds) through the task layer's port."""
    if _enqueue_batch_port is None:
        raise _missing()
    _enqueue_batch_port(events, countdown)


def redis_url(settings: Settings) -> str:
    """REDIS_URL, or the embedded server that `make run` starts."""
    return settings.redis_url or EMBEDDED_REDIS_URL


@dataclass
class ConnectionContext:
    """Everything a flow needs for one connection."""

    connection: Connection
    redis: redis.Redis
    webcrm: WebcrmClient
    uniconta: UnicontaClient
    enqueue: Enqueue = field(default=publish)  # follow-up jobs (see the module's docstring)
    enqueue_batch: EnqueueBatch = field(default=publish_batch)  # follow-up batch jobs

    @cached_property
    def links(self) -> LinkStore:
        return LinkStore(self.redis, self.connection.id)

    @cached_property
    def fingerprints(self) -> FingerprintStore:
        return FingerprintStore(self.redis, self.connection.id)


class Runtime:
    def __init__(self, settings: Settings, enqueue: Enqueue | None = None,
                 enqueue_batch: EnqueueBatch | None = None) -> None:
        self.settings = settings
        self.enqueue = enqueue or publish
        self.enqueue_batch = enqueue_batch or publish_batch
        # A batch job runs one thread per record: they wait for a free connection rather than fail
        # (redis-py's default pool refuses the 101st).
        pool = redis.BlockingConnectionPool.from_url(
            redis_url(settings), max_connections=REDIS_CONNECTIONS, timeout=20, decode_responses=True,
            socket_timeout=5, socket_connect_timeout=2, health_check_interval=30)
        self.redis = redis.Redis(connection_pool=pool)
        self._contexts: dict[str, ConnectionContext] = {}
        self._lock = threading.Lock()

    def context(self, connection_id: str) -> ConnectionContext | None:
        """The wired clients for a connection, or None if it is not configured."""
        conn = self.settings.connection(connection_id)
        if conn is None:
            return None
        with self._lock:
            ctx = self._contexts.get(connection_id)
            if ctx is None:
                ctx = self._contexts[connection_id] = self._build(conn)
            return ctx

    def _build(self, conn: Connection) -> ConnectionContext:
        rate = SlidingWindowLimiter(self.redis, keys.webcrm_rate(conn.id), conn.webcrm.rate_limit_per_minute,
                                    window=WEBCRM_WINDOW_SECONDS)
        budget = DailyBudget(self.redis, keys.uniconta_budget(conn.id), conn.uniconta.daily_call_budget,
                             conn.uniconta.live_reserve)
        webcrm = WebcrmClient(
            conn.webcrm.base_url, conn.webcrm.auth_code.reveal(),
            timeout=(3.05, conn.webcrm.timeout_seconds), page_size=conn.webcrm.page_size,
            before_request=_counted(lambda: rate.wait(RATE_WAIT_SECONDS), conn.id, "webcrm"),
            observer=_observers(metrics.api_observer(conn.id, "webcrm"), observe_call("webcrm")))
        uniconta = UnicontaClient(
            conn.uniconta.base_url, conn.uniconta.company_id, conn.uniconta.username,
            conn.uniconta.password.reveal(), timeout=(3.05, conn.uniconta.timeout_seconds),
            odata_page_size=conn.uniconta.page_size,
            before_request=_counted(budget.acquire, conn.id, "uniconta"),
            observer=_observers(metrics.api_observer(conn.id, "uniconta"), observe_call("uniconta")))
        return ConnectionContext(conn, self.redis, webcrm, uniconta, self.enqueue, self.enqueue_batch)


def _observers(*observers: Observer) -> Observer:
    """Every call of a client goes to the metrics (which never raise), then to the journal."""

    def observe(method: str, path: str, status: int | None, elapsed_ms: float) -> None:
        for observer in observers:
            observer(method, path, status, elapsed_ms)

    return observe


def _counted(before_request: Callable[[], object], connection: str, system: str) -> Callable[[], object]:
    """A `before_request` hook whose refusals (our limiter's `Throttled`) are counted for the metrics."""

    def hook() -> object:
        try:
            return before_request()
        except Throttled:
            metrics.throttled_here(connection, system)
            raise

    return hook


_runtime: Runtime | None = None
_runtime_lock = threading.Lock()


def get_runtime() -> Runtime:
    """The process's Runtime, built from the environment on first use."""
    global _runtime
    with _runtime_lock:
        if _runtime is None:
            _runtime = Runtime(load_settings())
        return _runtime


def reset_runtime() -> None:
    """Forget the process's Runtime (after fork, or in tests)."""
    global _runtime
    with _runtime_lock:
        _runtime = None
