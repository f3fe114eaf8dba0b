"""`syncctl config show|check`: the effective configuration (secrets masked), and a file validated before use."""

from __future__ import annotations

import click

from sync.config import ConfigError, describe, load_file
from syncctl.common import EXIT_PROBLEM, connection_or_exit, fail, settings_or_exit, show


@click.group()
def config() -> None:
    """Show or check configuration."""


@config.command("show")
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(connection: str | None, as_json: bool) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = settings_or_exit()
    data = describe(settings)
    if connection is not None:
        connection_or_exit(settings, connection)
        data = data["connections"][connection]
    show(data, as_json)


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate a connections file without starting anything."""
    try:
        connections = load_file(file)
    except ConfigError as err:
        fail(str(err), EXIT_PROBLEM)
    click.echo(f"{file}: ok ({len(connections)} connection(s): {', '.join(connections)})")
