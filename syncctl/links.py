"""`syncctl links rebuild`: the Redis link cache rebuilt from the cross-references in both systems."""

from __future__ import annotations

import click

from syncctl.common import context_or_exit, fail, guarded, settings_or_exit, show


@click.group()
def links() -> None:
    """The Redis cache of cross-references."""


@links.command("rebuild")
@click.argument("connection")
@click.argument("entity", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def links_rebuild(connection: str, entity: str | None, as_json: bool) -> None:
    """Rebuild the link cache from the cross-reference fields in both systems (after losing Redis)."""
    from sync.operations import relink
    from sync.operations.reconcile import ALIASES

    settings = settings_or_exit()
    name = None
    if entity is not None:
        name = ALIASES.get(entity.lower(), entity.lower())
        name = {"debtor": "organisation", "employee": "user", "contact": "person"}.get(name, name)
        if name not in relink.ENTITIES:
            fail(f"cannot rebuild links of {entity!r} (one of: {', '.join(relink.ENTITIES)})")
    ctx = context_or_exit(settings, connection)
    report = relink.rebuild(ctx, name)
    if as_json:
        show(report, True)
        return
    for ent, rep in report.items():
        click.echo(f"{ent}: {rep['linked']} linked ({rep['agreeing']} confirmed by both systems, "
                   f"{rep['one_sided']} by one), {rep['conflicts']} left out")
        for line in rep["conflict_examples"]:
            click.echo(f"  left out: {line}")
