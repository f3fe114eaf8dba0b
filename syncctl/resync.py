"""`syncctl resync`: sync one record now, optionally waiting for the job's result."""

from __future__ import annotations

import sys
import time
from typing import Any

import click
import redis

from syncctl import common
from syncctl.common import (
    EXIT_PROBLEM,
    connection_or_exit,
    entity_route,
    entry_line,
    fail,
    guarded,
    parse_record_id,
    redis_or_exit,
    settings_or_exit,
    show,
)


@click.command()
@click.argument("connection")
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Wait for the job's result and print it.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds --wait waits at most.")
@click.option("--force", is_flag=True, help="Queue a separate job even if one for the record is already waiting.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def resync(connection: str, entity: str, record_id: str, wait: bool, timeout: float, force: bool,
           as_json: bool) -> None:
    """Sync one record now (ENTITY: organisation, debtor, item, delivery, user, employee, person,
    contact; ID: the webCRM id, the Uniconta key, or a contact's RowId)."""
    from sync.events import Event
    from sync.state import intake, keys

    settings = settings_or_exit()
    conn = connection_or_exit(settings, connection)
    system, name = entity_route(entity)
    rid = parse_record_id(system, name, record_id)
    r = redis_or_exit(settings)
    pending_key = keys.pending(conn.id, system, name, rid)
    if force:
        r.delete(pending_key)
    mark = intake.pending_mark(r, conn.id, system, name, rid)
    waiting_event = mark.event_id if mark is not None else ""
    started = time.time()
    try:
        outcome = intake.accept(r, Event(conn.id, system, name, rid, origin="resync"), common.enqueue_for(settings))
    except intake.Unavailable as err:
        fail(f"could not queue the job: {err}", EXIT_PROBLEM)
    result: dict[str, Any] = {"connection": conn.id, "system": system, "entity": name, "id": rid,
                              "status": outcome.status, "event": outcome.event_id}
    if outcome.status == "coalesced":
        result["note"] = f"a job for this record is already waiting (event {waiting_event}); it will do the sync"
    if not wait:
        if as_json:
            show(result, True)
        else:
            click.echo(f"{outcome.status}: {system} {name} {rid} (event {outcome.event_id})"
                       + (f" — {result['note']}" if "note" in result else ""))
        return
    final = _wait_for_result(r, conn.id, name, rid, started, timeout)
    result["result"] = final
    if as_json:
        show(result, True)
    elif final is None:
        click.echo(f"{outcome.status}; no result within {timeout:.0f} s — is a worker running? "
                   f"(`syncctl timeline {conn.id} {name} {rid}`)")
    else:
        click.echo(f"{name} {rid}: {entry_line(final)}")
    if final is None or final.get("kind") == "dead-letter":
        sys.exit(EXIT_PROBLEM)


def _wait_for_result(r: redis.Redis, connection: str, entity: str, record_id: str, since: float,
                     timeout: float) -> dict[str, Any] | None:
    from sync.state import journal

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in journal.entries(r, connection, entity, record_id, limit=50):
            if float(entry.get("at", 0)) < since - 0.5:
                break
            if entry.get("kind") in ("done", "dead-letter", "ignored"):
                return entry
        time.sleep(0.2)
    return None
