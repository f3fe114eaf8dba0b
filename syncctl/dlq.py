"""`syncctl dlq list|show|requeue|drop`: the dead letters, by id or by filter."""

from __future__ import annotations

import functools
import sys
import time
from collections.abc import Callable, Iterable
from typing import Any

import click
import redis

from sync.config import Settings
from syncctl import common
from syncctl.common import (
    EXIT_PROBLEM,
    F,
    ago,
    duration,
    entity_route,
    fail,
    guarded,
    redis_or_exit,
    settings_or_exit,
    show,
    when,
)


@click.group()
def dlq() -> None:
    """Dead letters: list, show, requeue or drop them (by id, by filter, or --all)."""


def _filter_options(func: F) -> F:
    options = [
        click.option("--connection", "-c", help="Only this connection."),
        click.option("--flow", help="Only this flow (organisations, items, orders, users, persons)."),
        click.option("--entity", help="Only this entity (organisation, debtor, item, ...)."),
        click.option("--kind", help="Only this kind: permanent, exhausted, invalid, bug or config."),
        click.option("--older-than", "older_than", help="Only letters that failed longer ago than this (30m, 2h, 3d)."),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _matching(r: redis.Redis, ids: Iterable[str], connection: str | None, flow: str | None, entity: str | None,
              kind: str | None, older_than: str | None, everything: bool) -> list[dict[str, Any]]:
    from sync.flows import ROUTES
    from sync.state import deadletters

    ids = list(ids)
    age = duration(older_than) if older_than else None
    entity_name = entity_route(entity)[1] if entity else None
    letters = []
    if ids:
        for letter_id in ids:
            letter = deadletters.get(r, letter_id)
            if letter is None:
                fail(f"no dead letter {letter_id!r} (`syncctl dlq list`)")
            letters.append(letter)
        return letters
    if not (everything or connection or flow or entity or kind or older_than):
        raise click.UsageError("give letter ids, a filter (--connection, --flow, --entity, --kind, --older-than) "
                               "or --all")
    now = time.time()
    for letter in deadletters.iter_all(r):
        route = ROUTES.get((str(letter.get("system")), str(letter.get("entity"))))
        if connection and letter.get("connection") != connection:
            continue
        if flow and (route is None or route[0] != flow):
            continue
        if entity_name and letter.get("entity") != entity_name:
            continue
        if kind and letter.get("kind") != kind:
            continue
        if age is not None and now - float(letter.get("failed_at") or now) < age:
            continue
        letters.append(letter)
    return letters


def _selected(func: Callable[..., None]) -> Callable[..., None]:
    """The options of a command that acts on dead letters (ids, filters or --all); the command gets
    (settings, redis, the matching letters, as_json)."""

    @functools.wraps(func)
    def command(ids: tuple[str, ...], connection: str | None, flow: str | None, entity: str | None,
                kind: str | None, older_than: str | None, everything: bool, as_json: bool) -> None:
        settings = settings_or_exit()
        r = redis_or_exit(settings)
        func(settings, r, _matching(r, ids, connection, flow, entity, kind, older_than, everything), as_json)

    for option in (guarded, click.option("--json", "as_json", is_flag=True, help="Print JSON."),
                   click.option("--all", "everything", is_flag=True, help="Every dead letter."), _filter_options,
                   click.argument("ids", nargs=-1, metavar="[ID]...")):
        command = option(command)
    return command


@dlq.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def dlq_list(connection: str | None, flow: str | None, entity: str | None, kind: str | None,
             older_than: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first (filters optional)."""
    settings = settings_or_exit()
    r = redis_or_exit(settings)
    letters = _matching(r, [], connection, flow, entity, kind, older_than, True)[:limit]
    if as_json:
        show(letters, True)
        return
    if not letters:
        click.echo("no dead letters")
        return
    for d in letters:
        error = str(d.get("error", "")).replace("\n", " ")
        click.echo(f"{d['id']}  {ago(d.get('failed_at')):>10}  {d.get('connection')}  {d.get('system')} "
                   f"{d.get('entity')} {d.get('record_id')}  [{d.get('kind')}] {error[:100]}")


@dlq.command("show")
@click.argument("letter_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@guarded
def dlq_show(letter_id: str, as_json: bool) -> None:
    """Everything stored with one dead letter."""
    from sync.state import deadletters

    settings = settings_or_exit()
    r = redis_or_exit(settings)
    letter = deadletters.get(r, letter_id)
    if letter is None:
        fail(f"no dead letter {letter_id!r} (`syncctl dlq list`)")
    if not as_json:
        letter = {**letter, "failed_at": when(letter.get("failed_at")),
                  "first_attempt_at": when(letter.get("first_attempt_at"))}
    show(letter, as_json)


@dlq.command("requeue")
@_selected
def dlq_requeue(settings: Settings, r: redis.Redis, letters: list[dict[str, Any]], as_json: bool) -> None:
    """Queue dead letters again through the normal path (origin "dlq"); each is removed once queued."""
    from sync.events import Event
    from sync.state import deadletters, intake

    enqueue = common.enqueue_for(settings) if letters else None
    done: list[str] = []
    failed: list[str] = []
    for letter in letters:
        ev = letter.get("event") or {}
        conn_id = str(letter.get("connection"))
        if settings.connection(conn_id) is None:
            failed.append(f"{letter['id']}: connection {conn_id!r} is not configured")
            continue
        try:
            event = Event(conn_id, str(ev.get("system") or letter.get("system")),
                          str(ev.get("entity") or letter.get("entity")),
                          str(ev.get("record_id") or letter.get("record_id")),
                          operation=str(ev.get("operation") or "update"), origin="dlq")
            intake.accept(r, event, enqueue)  # type: ignore[arg-type]
        except intake.Unavailable as err:
            failed.append(f"{letter['id']}: {err}")
            continue
        deadletters.drop(r, letter["id"])
        done.append(letter["id"])
    if as_json:
        show({"requeued": done, "failed": failed}, True)
    else:
        click.echo(f"requeued {len(done)} dead letter(s)")
        for line in failed:
            click.echo(f"not requeued: {line}", err=True)
    if failed:
        sys.exit(EXIT_PROBLEM)


@dlq.command("drop")
@_selected
def dlq_drop(settings: Settings, r: redis.Redis, letters: list[dict[str, Any]], as_json: bool) -> None:
    """Delete dead letters without retrying them."""
    from sync.state import deadletters

    dropped = [d["id"] for d in letters if deadletters.drop(r, d["id"])]
    if as_json:
        show({"dropped": dropped}, True)
    else:
        click.echo(f"dropped {len(dropped)} dead letter(s)")
