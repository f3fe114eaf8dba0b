"""The sync flows and the table that routes an event to its flow.

A flow handler takes the connection's context and the event, re-reads the
record from its source, and returns a `Result`. It raises the clients'
errors (retried or dead-lettered by the task) or `FlowError` for problems no
retry can fix. The job holds the event record's lock while the handler runs.
"""

from __future__ import annotations

import importlib
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

# (system, entity) → (flow name as in the configuration, "module:function").
ROUTES: dict[tuple[str, str], tuple[str, str]] = {
    ("uniconta", "item"): ("items", "sync.flows.items:sync_item"),
    ("webcrm", "organisation"): ("organisations", "sync.flows.organisations:sync_organisation"),
    ("uniconta", "debtor"): ("organisations", "sync.flows.organisations:sync_debtor"),
    ("webcrm", "delivery"): ("orders", "sync.flows.orders:sync_delivery"),
    ("webcrm", "quotationline"): ("orders", "sync.flows.orders:sync_quotation_line"),
    ("webcrm", "user"): ("users", "sync.flows.users:sync_user"),
    ("uniconta", "employee"): ("users", "sync.flows.users:sync_employee"),
    ("webcrm", "person"): ("persons", "sync.flows.persons:sync_person"),
    ("uniconta", "contact"): ("persons", "sync.flows.persons:sync_contact"),
}


def handler_for(system: str, entity: str) -> tuple[str, Handler] | None:
    """(flow name, handler) for an event's system and entity, or None if nothing syncs it."""
    route = ROUTES.get((system, entity))
    if route is None:
        return None
    flow, target = route
    module_name, _, function = target.partition(":")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as err:
        if err.name != module_name:
            raise
        return None  # a flow not built yet behaves like an unknown entity
    return flow, getattr(module, function)
