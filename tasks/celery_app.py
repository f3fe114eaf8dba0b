"""Celery configured for at-least-once delivery on Redis.

- acks_late + reject_on_worker_lost: a job whose worker dies goes back to the queue;
  flows are idempotent, so running twice is safe, losing one is not.
- prefetch 1: a slow sync does not hold other jobs hostage in a worker's buffer.
- visibility_timeout above the longest countdown and the hard time limit: otherwise
  the Redis transport redelivers a job a worker still holds (celery#4400, kombu#337).
- JSON only, explicit task names, no results (the journal is our record).
"""

from __future__ import annotations

from celery import Celery
from kombu import Queue

from sync.config import Settings
from sync.runtime import redis_url
from tasks import queues


def visibility_timeout(settings: Settings) -> int:
    """Longer than any countdown we schedule plus the longest a task may run."""
    return int(2 * settings.retry_max_seconds + max(settings.task_time_limit, settings.batch_time_limit) + 60)


def make_celery(settings: Settings) -> Celery:
    """A Celery app for these settings (workers and the receiver's producer alike)."""
    app = Celery("webcrm_uniconta_sync", broker=redis_url(settings), include=["tasks.record", "tasks.batch", "tasks.reconcile"])
    app.conf.update(
        task_serializer="json",
        accept_content=["json"],
        result_serializer="json",
        task_ignore_result=True,
        result_backend=None,
        task_acks_late=True,
        task_reject_on_worker_lost=True,
        task_acks_on_failure_or_timeout=True,
        worker_prefetch_multiplier=1,
        task_soft_time_limit=settings.task_time_limit,
        task_time_limit=settings.task_time_limit + 30,
        # A batch job does the work of many single jobs: it gets its own, longer limit.
        task_annotations={queues.SYNC_BATCH: {"soft_time_limit": settings.batch_time_limit,
                                              "time_limit": settings.batch_time_limit + 30}},
        task_queues=[Queue(name) for name in queues.ALL],
        task_default_queue=queues.SYNC,
        task_routes=(queues.route,),
        task_create_missing_queues=False,
        broker_transport_options={
            "visibility_timeout": visibility_timeout(settings),
            "socket_connect_timeout": 2,
            "socket_timeout": 5,
        },
        broker_connection_retry_on_startup=True,
        # A publish must fail fast (the receiver answers 503), not hang the request.
        task_publish_retry=True,
        task_publish_retry_policy={"max_retries": 1, "interval_start": 0, "interval_step": 0.2,
                                   "interval_max": 0.2},
        worker_cancel_long_running_tasks_on_connection_loss=True,
        worker_hijack_root_logger=False,
        worker_send_task_events=True,
        task_send_sent_event=False,
        beat_schedule={
            f"reconcile-{conn_id}": {
                "task": queues.RECONCILE_SWEEP,
                "schedule": float(conn.reconcile_minutes * 60),
                "kwargs": {"connection": conn_id},
            }
            for conn_id, conn in settings.connections.items()
        },
        timezone="Europe/Copenhagen",
    )
    return app
