"""The thin event every change becomes: which record of which system changed, and how we heard."""

from __future__ import annotations

import time
import uuid
from dataclasses import asdict, dataclass, field
from typing import Any

SYSTEMS = ("webcrm", "uniconta")
OPERATIONS = ("create", "update", "delete")
ORIGINS = ("webhook", "reconcile", "backfill", "resync", "dependency", "dlq", "echo")


@dataclass(frozen=True)
class Event:
    connection: str
    system: str
    entity: str
    record_id: str
    operation: str = "update"
    origin: str = "webhook"
    delivery_id: str | None = None
    event_id: str = field(default_factory=lambda: uuid.uuid4().hex)
    received_at: float = field(default_factory=time.time)
    delay: float = 0.0  # seconds its job waits before it runs (the webhook of a record a batch just wrote)

    def task_kwargs(self) -> dict[str, Any]:
        """Primitive kwargs for the Celery job (JSON only); `delay` only when set."""
        kwargs = asdict(self)
        if not self.delay:
            del kwargs["delay"]
        return kwargs
