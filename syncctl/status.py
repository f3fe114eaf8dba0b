"""`syncctl status`: queues, workers, dead letters, limits, reconciliation, backfills and reviews per connection."""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from syncctl.common import (
    EXIT_PROBLEM,
    ago,
    connection_or_exit,
    guarded,
    redis_or_exit,
    settings_or_exit,
    show,
    span,
)


@click.command()
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Exit 1 if something needs attention (for monitoring).")
@click.option("--no-ping", is_flag=True, help="Do not ask the workers (faster).")
@guarded
def status(connection: str | None, as_json: bool, check: bool, no_ping: bool) -> None:
    """Queues, workers, dead letters, limits, reconciliation and reviews, per connection."""
    from sync.operations import status as st
    from tasks import broker

    settings = settings_or_exit()
    ids = [connection] if connection else list(settings.connections)
    if connection:
        connection_or_exit(settings, connection)
    r = redis_or_exit(settings)
    data = {**st.gather(settings, r, ids, queue_info=broker.queues(r, ids), retrying=broker.retrying(r, ids),
                        seen=broker.workers(settings, r) if not no_ping else None), "ping": not no_ping}
    found = st.problems(data)
    if as_json:
        show({**data, "problems": found}, True)
    else:
        _print_status(data, found)
    if check and found:
        sys.exit(EXIT_PROBLEM)


def _print_status(data: dict[str, Any], found: list[str]) -> None:
    workers = data["workers"]
    if workers is None:
        click.echo("workers:      (not asked)" if data.get("ping") is False else
                   "workers:      (could not ask; is the broker reachable?)")
    else:
        click.echo(f"workers:      {', '.join(workers) if workers else 'NONE answered a ping'}")
    parts = []
    for name, q in data["queues"].items():
        age = f" (oldest {span(q['oldest_age_seconds'])})" if q.get("oldest_age_seconds") is not None else ""
        held = f" +{q['retrying']} waiting to retry" if q.get("retrying") else ""
        parts.append(f"{name} {q['depth']}{age}{held}")
    click.echo(f"queues:       {' · '.join(parts)}")
    letters = data["dead_letters"]
    kinds = ", ".join(f"{k} {v}" for k, v in letters["by_kind"].items())
    click.echo(f"dead letters: {letters['total']}" + (f" ({kinds}; `syncctl dlq list`)" if kinds else ""))
    for conn_id, conn in data["connections"].items():
        click.echo(f"\nconnection {conn_id}  (flows: {', '.join(conn['flows'])})")
        queued = " · ".join(f"{q} {v['depth']}" + (f" (oldest {span(v['oldest_age_seconds'])})"
                                                    if v.get("oldest_age_seconds") is not None else "")
                            for q, v in conn["queues"].items())
        click.echo(f"  queued:          {queued}; records pending: {conn['pending_records']}")
        for queue, held in conn.get("retrying", {}).items():
            records = ", ".join(f"{rec['entity']} {rec['record_id']} in {span(rec['in_seconds'])}"
                                for rec in held["records"][:3])
            more = f", +{held['count'] - 3} more" if held["count"] > 3 else ""
            click.echo(f"  retrying:        {queue} {held['count']} held by a worker until their countdown ends "
                       f"({records}{more})")
        click.echo(f"  dead letters:    {conn['dead_letters']}")
        rate = conn["webcrm_rate"]
        limit = rate["limit_per_minute"] or "no limit"
        click.echo(f"  webCRM rate:     {rate['used_last_minute']} calls in the last minute (limit {limit})")
        budget = conn["uniconta_budget"]
        if budget["budget"]:
            click.echo(f"  Uniconta budget: {budget['used']} of {budget['budget']} calls today ({budget['percent']} %),"
                       f" {budget['remaining_for_batch']} left for batch work (reserve {budget['reserve']})")
        else:
            click.echo(f"  Uniconta budget: off ({budget['used']} calls today)")
        click.echo("  reconciliation:")
        for source, run in conn["reconciliation"].items():
            if not run:
                click.echo(f"    {source:<22} never ran")
                continue
            result = json.loads(run.get("last_result") or "{}") if isinstance(run.get("last_result"), str) else {}
            line = f"    {source:<22} {'ERROR' if run.get('error') else 'ok'} {ago(run.get('last_run_at'))}"
            line += f", queued {result.get('queued', 0)}"
            if result.get("coalesced"):
                line += f" (+{result['coalesced']} already waiting)"
            if run.get("error"):
                line += f": {run['error']}"
            elif run.get("last_ok_at"):
                line += f"; watermark {run.get('watermark', '-')}"
            click.echo(line)
        for source, cp in conn["backfills"].items():
            click.echo(f"  backfill {source}: {cp.get('state')} (queued {cp.get('queued', 0)}, at "
                       f"{cp.get('position') or '-'}, updated {ago(cp.get('updated_at'))})")
        reviews = conn["reviews"]
        if reviews is not None:
            click.echo(f"  reviews:         {reviews['count']} waiting"
                       + (f" (`syncctl conflicts list {conn_id}`)" if reviews["count"] else ""))
    if found:
        click.echo("\nneeds attention:")
        for problem in found:
            click.echo(f"  - {problem}")
