"""`syncctl doctor`: check credentials, fields, webhooks and Redis persistence of a connection."""

from __future__ import annotations

import sys

import click

from syncctl.common import (
    EXIT_PROBLEM,
    clients_for,
    guarded,
    public_url_option,
    redis_or_exit,
    settings_or_exit,
    show,
)


@click.command()
@click.argument("connection")
@click.option("--public-url", "--receiver", "public_url", help="The receiver's public base URL the hooks must use.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def doctor(connection: str, public_url: str | None, as_json: bool) -> None:
    """Check credentials, custom and user-defined fields, webhooks and Redis persistence;
    prints how to fix each problem and exits 1 if there is any."""
    from sync.operations import doctor as dr

    settings = settings_or_exit()
    url = public_url_option(public_url)
    conn, webcrm, uniconta = clients_for(settings, connection)
    r = redis_or_exit(settings)
    with webcrm, uniconta:
        checks = dr.run_checks(conn, webcrm, uniconta, r, url, settings.redis_appendfsync)
    problems = [c for c in checks if not c.ok]
    if as_json:
        show({"connection": conn.id, "ok": not problems, "checks": [c.as_dict() for c in checks]}, True)
    else:
        for c in checks:
            mark = "ok     " if c.ok and not c.warning else ("warning" if c.ok else "PROBLEM")
            click.echo(f"{mark}  {c.area:<16} {c.message}")
            if not c.ok or c.warning:
                click.echo(f"{'':9}{'':<16} fix: {c.fix}" if c.fix else "")
        click.echo(f"\n{len(problems)} problem(s)" if problems else "\nall checks passed")
    if problems:
        sys.exit(EXIT_PROBLEM)
