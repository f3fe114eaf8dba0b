"""The worker's Celery app: `celery -A tasks.app worker|beat|flower`.

Configuration is loaded once at import; a bad configuration stops the
process with one line naming the file, the key and the problem.
"""

from __future__ import annotations

import logging
import os
import sys
from typing import Any

from celery import signals

from sync import metrics
from sync.config import ConfigError, load_settings
from sync.logs import setup_logging
from sync.runtime import provide_enqueue, reset_runtime
from sync.sentry import init_sentry
from tasks import metrics as metrics_server
from tasks.celery_app import make_celery
from tasks.dispatch import enqueue, enqueue_batch

log = logging.getLogger(__name__)

try:
    settings = load_settings()
except ConfigError as err:  # pragma: no cover - exercised through the CLI tests
    print(f"configuration error: {err}", file=sys.stderr)
    sys.exit(2)

app = make_celery(settings)
provide_enqueue(enqueue, enqueue_batch)  # the flows' ports for follow-up jobs (sync/runtime.py)


@signals.setup_logging.connect
def _logging(**kwargs: Any) -> None:
    setup_logging(settings.log_level, settings.log_format)


@signals.worker_init.connect
def _sentry(**kwargs: Any) -> None:
    init_sentry(settings.sentry_dsn)


@signals.worker_process_init.connect
def _fresh_runtime(**kwargs: Any) -> None:
    # Sockets and sessions must not be shared with the parent after fork.
    reset_runtime()
    init_sentry(settings.sentry_dsn)


# Metrics (docs/operations.md): the pool's children record into PROMETHEUS_MULTIPROC_DIR; the main
# process empties it before they start and serves it, with the state in Redis, on SYNC_METRICS_PORT.
@signals.worker_init.connect
def _metrics_dir(**kwargs: Any) -> None:
    try:
        metrics.prepare_multiprocess_dir()
    except OSError as err:  # syncs matter more than metrics: say so and go on
        log.error("metrics directory unusable, metrics will be incomplete: %s", err)


@signals.worker_ready.connect
def _metrics_server(**kwargs: Any) -> None:
    metrics_server.start(settings)


@signals.worker_shutdown.connect
def _metrics_server_stop(**kwargs: Any) -> None:
    metrics_server.stop()


@signals.worker_process_shutdown.connect
def _metrics_child_exit(pid: int | None = None, **kwargs: Any) -> None:
    metrics.process_exited(pid or os.getpid())
