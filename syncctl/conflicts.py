"""`syncctl conflicts list|resolve` (alias `review`): ambiguous e-mail matches waiting for a person."""

from __future__ import annotations

from typing import Any

import click

from syncctl import common
from syncctl.common import (
    EXIT_PROBLEM,
    ago,
    connection_or_exit,
    fail,
    guarded,
    redis_or_exit,
    settings_or_exit,
    show,
)


@click.group()
def conflicts() -> None:
    """Ambiguous e-mail matches waiting for a person (field conflicts are settled by
    conflict_policy and journaled: see `syncctl timeline`)."""


def _review_module() -> Any:
    try:
        from sync.state import review
    except ImportError:
        fail("this installation keeps no reviews (sync.state.review is missing)", EXIT_PROBLEM)
    return review


@conflicts.command("list")
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def conflicts_list(connection: str | None, as_json: bool) -> None:
    """Open ambiguities, most recently seen first."""
    review = _review_module()
    settings = settings_or_exit()
    if connection:
        connection_or_exit(settings, connection)
    r = redis_or_exit(settings)
    data = {c: review.list_reviews(r, c) for c in ([connection] if connection else settings.connections)}
    if as_json:
        show(data if not connection else data[connection], True)
        return
    for conn_id, entries in data.items():
        if not entries:
            click.echo(f"{conn_id}: nothing waiting for review")
            continue
        click.echo(f"{conn_id}: {len(entries)} waiting for review")
        for e in entries:
            click.echo(f"  {e.get('id')}  {e.get('reason', '')}; webCRM {e.get('webcrm_entity', '')} "
                       f"{', '.join(e.get('webcrm', [])) or '-'} ↔ Uniconta {e.get('uniconta_entity', '')} "
                       f"{', '.join(e.get('uniconta', [])) or '-'}; seen {e.get('seen', 1)}×, last {ago(e.get('last_seen'))}")


@conflicts.command("resolve")
@click.argument("connection")
@click.argument("review_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def conflicts_resolve(connection: str, review_id: str, as_json: bool) -> None:
    """After fixing the data (e.g. removing a duplicate e-mail): drop the review entry and
    resync the records it names, which links them or records the ambiguity again."""
    from sync.events import Event
    from sync.flows import ROUTES
    from sync.state import intake, keys

    review = _review_module()
    settings = settings_or_exit()
    conn = connection_or_exit(settings, connection)
    r = redis_or_exit(settings)
    entry = next((e for e in review.list_reviews(r, conn.id) if e.get("id") == review_id), None)
    if entry is None:
        fail(f"no review {review_id!r} on {conn.id} (`syncctl conflicts list {conn.id}`)")
    queued: list[str] = []
    enqueue = common.enqueue_for(settings)
    for system in ("webcrm", "uniconta"):
        entity = entry.get(f"{system}_entity") or (entry.get("entity") if system == "webcrm" else None)
        if not entity or (system, entity) not in ROUTES:
            continue
        for rid in entry.get(system, []):
            record_id = f"#{rid}" if entity == "contact" and not str(rid).startswith("#") else str(rid)
            intake.accept(r, Event(conn.id, system, entity, record_id, origin="resync"), enqueue)
            queued.append(f"{system} {entity} {record_id}")
    r.hdel(keys.counter(conn.id, "reviews"), review_id)
    result = {"resolved": review_id, "resynced": queued}
    if as_json:
        show(result, True)
    else:
        click.echo(f"resolved {review_id}; resync queued for: {', '.join(queued) or 'nothing'}")
