"""`syncctl timeline`: one record's journal, link, waiting job and dead letters."""

from __future__ import annotations

import click

from syncctl.common import (
    ago,
    connection_or_exit,
    entity_route,
    entry_line,
    guarded,
    parse_record_id,
    redis_or_exit,
    settings_or_exit,
    show,
    when,
)

# The webCRM entity whose link cache holds a Uniconta entity's pair (sync/flows: links.bind).
LINKED_AS = {"debtor": "organisation", "employee": "user", "contact": "person"}


@click.command()
@click.argument("connection")
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@click.option("--limit", type=click.IntRange(min=1, max=200), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def timeline(connection: str, entity: str, record_id: str, limit: int, as_json: bool) -> None:
    """A record's journal, newest first: what arrived, what was decided and why, which API
    calls, the result — plus its link, waiting job and dead letters."""
    from sync.state import deadletters, intake, journal
    from sync.state.links import LinkStore

    settings = settings_or_exit()
    conn = connection_or_exit(settings, connection)
    system, name = entity_route(entity)
    rid = parse_record_id(system, name, record_id)
    r = redis_or_exit(settings)
    entries = journal.entries(r, conn.id, name, rid, limit)
    links = LinkStore(r, conn.id)
    if system == "webcrm":
        link = links.uniconta_key(name, rid)
    else:  # a pair's link is kept under its webCRM entity, a contact by its bare RowId
        link = links.webcrm_id(LINKED_AS.get(name, name), rid.removeprefix("#"))
    letters = [d for d in deadletters.iter_all(r) if d.get("connection") == conn.id and d.get("entity") == name
               and str(d.get("record_id")) == rid]
    mark = intake.pending_mark(r, conn.id, system, name, rid)
    pending = mark.event_id if mark is not None and mark.confirmed else None
    data = {"connection": conn.id, "system": system, "entity": name, "id": rid, "linked_to": link,
            "job_waiting": pending, "dead_letters": [d["id"] for d in letters], "entries": entries}
    if as_json:
        show(data, True)
        return
    other = "Uniconta" if system == "webcrm" else "webCRM"
    click.echo(f"{system} {name} {rid} — linked to {other} {link}" if link else
               f"{system} {name} {rid} — no link in the cache")
    if pending:
        click.echo(f"a sync job is waiting (event {pending})")
    for letter in letters:
        click.echo(f"DEAD LETTER {letter['id']} ({letter['kind']}, {ago(letter['failed_at'])}): {letter['error']}"
                   f" — `syncctl dlq requeue {letter['id']}` after fixing the cause")
    if not entries:
        click.echo("no journal entries: nothing about this record reached the sync (no webhook, reconciliation "
                   f"or backfill). Try `syncctl resync {conn.id} {name} {rid} --wait`.")
        return
    for entry in entries:
        click.echo(f"{when(entry.get('at'))}  {entry_line(entry)}")
