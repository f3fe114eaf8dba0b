"""The sync flows and the table that routes an event to its flow.

A flow handler takes the connection's context and the event, re-reads the
record from its source, and returns a `Result`. It raises the clients'
errors (retried or dead-lettered by the task) or `FlowError` for problems no
retry can fix.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from sync.events import Event
    from sync.runtime import ConnectionContext


class FlowError(Exception):
    """A problem in the data that retrying cannot fix (the event is dead-lettered)."""


@dataclass(frozen=True)
class Result:
    action: str  # created | updated | deleted | unchanged | absent | waiting | linked | skipped
    detail: dict[str, Any] = field(default_factory=dict)


Handler = Callable[["ConnectionContext", "Event"], Result]


def handler_for(system: str, entity: str) -> tuple[str, Handler] | None:
    """(flow name, handler) for an event's system and entity, or None if nothing syncs it."""
    from sync.flows import items

    table: dict[tuple[str, str], tuple[str, Handler]] = {
        ("uniconta", "item"): ("items", items.sync_item),
    }
    return table.get((system, entity))
