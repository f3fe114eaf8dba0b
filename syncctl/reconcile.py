"""`syncctl reconcile`: run a reconciliation sweep now (what beat runs every `reconcile_minutes`)."""

from __future__ import annotations

import sys

import click

from syncctl import common
from syncctl.common import (
    EXIT_PROBLEM,
    context_or_exit,
    entity_route,
    guarded,
    settings_or_exit,
    show,
    since_option,
)


@click.command()
@click.argument("connection")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
@click.option("--since", "since_text", help="Sweep from this time instead of the watermark (date or ISO time).")
@click.option("--full", is_flag=True, help="Also compare every record with the last snapshot (catches deletions).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def reconcile(connection: str, entities: tuple[str, ...], since_text: str | None, full: bool, as_json: bool) -> None:
    """Run a reconciliation sweep now (what beat runs every reconcile_minutes). A 429 from webCRM is
    waited out (Retry-After; at most reconcile_max_wait_seconds in total), with a line on stderr."""
    from sync.clients.patience import waiting_out_rate_limits
    from sync.operations.reconcile import sweep
    from tasks import orphans

    settings = settings_or_exit()
    names = [entity_route(e)[1] for e in entities] or None
    since = since_option(since_text)
    ctx = context_or_exit(settings, connection)
    enqueue = common.enqueue_for(settings)
    # Progress goes to stderr, so --json output stays one document.
    with waiting_out_rate_limits(ctx.connection.reconcile_max_wait_seconds, lambda line: click.echo(line, err=True)):
        result = sweep(ctx, common.batch_enqueue_for(settings), entities=names, since=since,
                       full=True if full else None)
    result["pending-marks"] = orphans.release(ctx.redis, connection, enqueue)
    show(result, as_json)
    if any(r.get("error") for r in result.values()):
        sys.exit(EXIT_PROBLEM)
