"""`syncctl hooks install|list|remove`: this connection's webhooks in webCRM and Uniconta."""

from __future__ import annotations

import click

from syncctl.common import clients_for, guarded, public_url_option, settings_or_exit, show


@click.group()
def hooks() -> None:
    """Register, list or remove this connection's webhooks in webCRM and Uniconta."""


@hooks.command("install")
@click.argument("connection")
@click.option("--public-url", "--receiver", "public_url", required=True,
              help="The receiver's public base URL, e.g. https://sync.example.com.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def hooks_install(connection: str, public_url: str, as_json: bool) -> None:
    """Create the webCRM hooks and Uniconta Change-URL rows the enabled flows need (idempotent)."""
    from sync.operations.hooks_setup import install_hooks

    settings = settings_or_exit()
    url = public_url_option(public_url)
    assert url is not None
    conn, webcrm, uniconta = clients_for(settings, connection)
    with webcrm, uniconta:
        created = install_hooks(conn, webcrm, uniconta, url)
    if as_json:
        show({"created": created}, True)
    else:
        click.echo(f"created: {', '.join(created)}" if created else "all hooks were already registered")


@hooks.command("list")
@click.argument("connection")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def hooks_list(connection: str, as_json: bool) -> None:
    """The hooks in both systems that point at this connection (tokens masked)."""
    from sync.operations.doctor import list_hooks

    settings = settings_or_exit()
    conn, webcrm, uniconta = clients_for(settings, connection)
    with webcrm, uniconta:
        found = list_hooks(conn, webcrm, uniconta)
    if as_json:
        show(found, True)
        return
    if not found:
        click.echo(f"no hooks point at connection {conn.id} (`syncctl hooks install {conn.id} --public-url URL`)")
    for h in found:
        flags = [] if h["token_ok"] else ["BAD TOKEN"]
        if not h["enabled"]:
            flags.append("DISABLED")
        if h.get("has_error"):
            flags.append(f"LAST CALL FAILED: {h.get('error')}")
        event = f" {h['event']}" if h.get("event") else ""
        click.echo(f"{h['system']:<8} {h['entity']}{event} #{h['id']}  {h['url']}  {' '.join(flags)}".rstrip())


@hooks.command("remove")
@click.argument("connection")
@click.option("--public-url", "--receiver", "public_url", help="Only hooks pointing at this base URL.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def hooks_remove(connection: str, public_url: str | None, as_json: bool) -> None:
    """Delete this connection's hooks from both systems."""
    from sync.operations.doctor import remove_hooks

    settings = settings_or_exit()
    url = public_url_option(public_url)
    conn, webcrm, uniconta = clients_for(settings, connection)
    with webcrm, uniconta:
        removed = remove_hooks(conn, webcrm, uniconta, url)
    if as_json:
        show({"removed": removed}, True)
    else:
        click.echo(f"removed: {', '.join(removed)}" if removed else "nothing to remove")
