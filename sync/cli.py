"""`syncctl`: the operator's command line.

Exit codes: 0 success, 1 the command ran but found a problem (e.g. a check
failed), 2 bad usage or unusable configuration.
"""

from __future__ import annotations

import json
import sys
from typing import Any

import click

from sync.config import ConfigError, describe, load_file, load_settings

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE = 0, 1, 2


def _fail(message: str, code: int = EXIT_USAGE) -> None:
    click.echo(f"syncctl: {message}", err=True)
    sys.exit(code)


def _print(data: Any, as_json: bool) -> None:
    if as_json:
        click.echo(json.dumps(data, indent=2, ensure_ascii=False, default=str))
        return
    _print_tree(data, 0)


def _print_tree(data: Any, depth: int) -> None:
    pad = "  " * depth
    if isinstance(data, dict):
        for key, value in data.items():
            if isinstance(value, (dict, list)) and value and not _flat_list(value):
                click.echo(f"{pad}{key}:")
                _print_tree(value, depth + 1)
            else:
                click.echo(f"{pad}{key}: {_scalar(value)}")
    elif isinstance(data, list):
        for value in data:
            click.echo(f"{pad}- {_scalar(value)}")


def _flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return "{}"
    return "" if value is None else str(value)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Operate the webCRM ↔ Uniconta sync."""


@main.group()
def config() -> None:
    """Show or check configuration."""


@config.command("show")
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(connection: str | None, as_json: bool) -> None:
    """Print the effective configuration (secrets masked)."""
    try:
        settings = load_settings()
    except ConfigError as err:
        _fail(str(err))
    data = describe(settings)
    if connection is not None:
        if connection not in settings.connections:
            _fail(f"unknown connection {connection!r} (known: {', '.join(settings.connections)})")
        data = data["connections"][connection]
    _print(data, as_json)


@config.command("check")
@click.argument("file", type=click.Path(dir_okay=False))
def config_check(file: str) -> None:
    """Validate a connections file without starting anything."""
    try:
        connections = load_file(file)
    except ConfigError as err:
        _fail(str(err), EXIT_PROBLEM)
    click.echo(f"{file}: ok ({len(connections)} connection(s): {', '.join(connections)})")


if __name__ == "__main__":  # pragma: no cover
    main()
