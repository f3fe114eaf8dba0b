"""Reconciliation: find records changed since a watermark and queue them like webhooks.

Catches webhooks that never came (Uniconta's are unsigned and not retried).
The watermark advances only after a whole successful sweep, and only to the
sweep's start time minus nothing: the next sweep re-reads an overlap window
because `UpdatedAt` granularity and clock skew can hide a change at the edge.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta

from sync import intake, keys
from sync.clients.uniconta import odata_literal
from sync.events import Event
from sync.ratelimit import priority
from sync.runtime import ConnectionContext

OVERLAP = timedelta(minutes=10)

Sweeper = Callable[[ConnectionContext, datetime], Iterator[Event]]


def _items(ctx: ConnectionContext, since: datetime) -> Iterator[Event]:
    naive = since.astimezone(UTC).replace(tzinfo=None, microsecond=0)
    for row in ctx.uniconta.odata("InvItemClient", filter=f"UpdatedAt ge {odata_literal(naive)}",
                                  orderby="UpdatedAt"):
        if row.get("Item"):
            yield Event(ctx.connection.id, "uniconta", "item", str(row["Item"]), origin="reconcile")


SWEEPERS: dict[str, Sweeper] = {"items": _items}


def watermark_key(connection: str, flow: str) -> str:
    return keys.counter(connection, f"watermark:{flow}")


def sweep(ctx: ConnectionContext, enqueue: intake.Enqueue, *, now: datetime | None = None) -> dict[str, int]:
    """One sweep of every enabled flow; returns how many records each queued."""
    started = now or datetime.now(UTC)
    counts: dict[str, int] = {}
    for flow, sweeper in SWEEPERS.items():
        if not ctx.connection.enabled(flow):
            continue
        key = watermark_key(ctx.connection.id, flow)
        raw = ctx.redis.get(key)
        if raw is None:
            # First run: nothing to catch up on; backfill handles existing records.
            ctx.redis.set(key, started.isoformat())
            counts[flow] = 0
            continue
        since = datetime.fromisoformat(str(raw)) - OVERLAP
        queued = 0
        with priority("batch"):
            for event in sweeper(ctx, since):
                if intake.accept(ctx.redis, event, enqueue).status == "queued":
                    queued += 1
        ctx.redis.set(key, started.isoformat())
        ctx.redis.set(keys.counter(ctx.connection.id, f"reconciled-at:{flow}"), str(time.time()))
        counts[flow] = queued
    return counts
