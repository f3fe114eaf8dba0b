"""`syncctl`: the operator's command line (docs/operations.md has every command with examples).

    syncctl status [CONNECTION] [--json] [--check]
    syncctl reconcile CONNECTION [--entity E] [--since T] [--full] [--json]
    syncctl backfill CONNECTION ENTITY [--since DATE] [--dry-run] [--limit N] [--restart] [--window N] [--json]
    syncctl resync CONNECTION ENTITY ID [--wait] [--timeout S] [--force] [--json]
    syncctl timeline CONNECTION ENTITY ID [--limit N] [--json]
    syncctl dlq list|show|requeue|drop ...
    syncctl conflicts list [CONNECTION] | resolve CONNECTION ID        (alias: review)
    syncctl doctor CONNECTION [--public-url URL] [--json]
    syncctl hooks install|list|remove CONNECTION [--public-url URL]
    syncctl links rebuild CONNECTION [ENTITY] [--json]
    syncctl config show [CONNECTION] [--json] | check FILE

Every read command takes `--json`. Exit codes:
    0    success
    1    the command ran but found a problem (doctor/status --check found problems, a
         resync ended as a dead letter, some letters could not be requeued), or a service
         it needs is unreachable (Redis, webCRM, Uniconta)
    2    bad usage or unusable configuration (unknown connection, entity or id, bad option)
    3    backfill stopped because the Uniconta daily budget reached the live reserve: run
         the same command after the time it prints (local midnight) to resume
    130  interrupted (Ctrl-C); a backfill resumes from its checkpoint when run again
"""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click
import redis

from sync.clients.errors import ApiError, redact
from sync.config import ConfigError, Connection, Settings, describe, load_file, load_settings

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_BUDGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


def _fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
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
            if isinstance(value, dict):
                click.echo(f"{pad}-")
                _print_tree(value, depth + 1)
            else:
                click.echo(f"{pad}- {_scalar(value)}")


def _flat_list(value: Any) -> bool:
    return isinstance(value, list) and all(not isinstance(v, (dict, list)) for v in value)


def _scalar(value: Any) -> str:
    if isinstance(value, list):
        return ", ".join(str(v) for v in value) if value else "[]"
    if isinstance(value, dict):
        return "{}"
    return "" if value is None else str(value)


def _guarded(func: F) -> F:
    """Turn infrastructure failures into one clear line and exit 1 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except redis.RedisError as err:
            _fail(f"Redis is unreachable or failed: {type(err).__name__}: {redact(str(err))}", EXIT_PROBLEM)
        except ApiError as err:
            _fail(f"API call failed: {err}", EXIT_PROBLEM)
        except KeyboardInterrupt:
            _fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- shared plumbing


def _settings() -> Settings:
    try:
        return load_settings()
    except ConfigError as err:
        _fail(str(err))


def _connection(settings: Settings, connection: str) -> Connection:
    conn = settings.connection(connection)
    if conn is None:
        _fail(f"unknown connection {connection!r} (known: {', '.join(settings.connections)})")
    return conn


def _redis(settings: Settings) -> redis.Redis:
    from sync.runtime import redis_url

    url = redis_url(settings)
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        _fail(f"cannot reach Redis at {redact(url)}: {err} (set REDIS_URL, or start it with `make run`)",
              EXIT_PROBLEM)
    return client


def _context(settings: Settings, connection: str) -> Any:
    """The connection's wired API clients (shared rate limiter and budget), Redis checked."""
    from sync.runtime import Runtime

    _connection(settings, connection)
    _redis(settings)
    runtime = Runtime(settings)
    return runtime.context(connection)


def _enqueue(settings: Settings) -> Callable[[Any], None]:
    from tasks.celery_app import make_celery
    from tasks.dispatch import enqueuer

    return enqueuer(make_celery(settings))  # type: ignore[no-any-return]


def _entity_route(entity: str) -> tuple[str, str]:
    """(system, entity) of an entity name an operator typed; exit 2 if unknown."""
    from sync.flows import ROUTES
    from sync.operations.reconcile import ALIASES

    name = ALIASES.get(entity.lower(), entity.lower())
    for system, known in ROUTES:
        if known == name:
            return system, name
    names = sorted({e for _, e in ROUTES})
    _fail(f"unknown entity {entity!r} (one of: {', '.join(names)})")


def _record_id(system: str, entity: str, value: str) -> str:
    """An operator's record id in the form events use; exit 2 if it cannot be one."""
    value = value.strip()
    if system == "webcrm":
        if not value.isdigit() or int(value) <= 0:
            _fail(f"a webCRM {entity} id is a positive number, not {value!r}")
        return str(int(value))
    if entity == "contact":  # contacts have no key: events name them by RowId
        digits = value.removeprefix("#")
        if not digits.isdigit():
            _fail(f"a Uniconta contact is named by its RowId (a number, e.g. 12 or #12), not {value!r}")
        return f"#{int(digits)}"
    if not value or len(value) > 60 or any(ord(c) < 32 for c in value):
        _fail(f"not a Uniconta {entity} key: {value!r}")
    return value


def _ago(epoch: Any) -> str:
    try:
        seconds = time.time() - float(epoch)
    except (TypeError, ValueError):
        return "never"
    return _span(seconds) + " ago"


def _span(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    seconds = max(0.0, seconds)
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    if seconds < 2 * 86400:
        return f"{seconds / 3600:.1f} h"
    return f"{seconds / 86400:.1f} d"


def _when(epoch: Any) -> str:
    try:
        return datetime.fromtimestamp(float(epoch)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OSError):
        return str(epoch)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def _duration(text: str) -> float:
    match = _DURATION.match(text or "")
    if not match:
        raise click.BadParameter(f"{text!r}: use a number with s, m, h or d, e.g. 30m or 2d")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def _since(text: str | None) -> datetime | None:
    if text is None:
        return None
    from sync.operations.backfill import parse_since

    try:
        return parse_since(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a date (2024-05-01) or an ISO time (2024-05-01T12:00)",
                                 param_hint="--since") from None


# --------------------------------------------------------------------------- the group


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Operate the webCRM ↔ Uniconta sync. Exit codes: 0 ok, 1 problem found or service
    unreachable, 2 bad usage, 3 backfill paused by the Uniconta budget, 130 interrupted."""


# --------------------------------------------------------------------------- config


@main.group()
def config() -> None:
    """Show or check configuration."""


@config.command("show")
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
def config_show(connection: str | None, as_json: bool) -> None:
    """Print the effective configuration (secrets masked)."""
    settings = _settings()
    data = describe(settings)
    if connection is not None:
        _connection(settings, connection)
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


# --------------------------------------------------------------------------- status


@main.command()
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@click.option("--check", is_flag=True, help="Exit 1 if something needs attention (for monitoring).")
@click.option("--no-ping", is_flag=True, help="Do not ask the workers (faster).")
@_guarded
def status(connection: str | None, as_json: bool, check: bool, no_ping: bool) -> None:
    """Queues, workers, dead letters, limits, reconciliation and reviews, per connection."""
    from sync.operations import status as st

    settings = _settings()
    ids = [connection] if connection else list(settings.connections)
    if connection:
        _connection(settings, connection)
    r = _redis(settings)
    data = {**st.gather(settings, r, ids, ping=not no_ping), "ping": not no_ping}
    found = st.problems(data)
    if as_json:
        _print({**data, "problems": found}, True)
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
        age = f" (oldest {_span(q['oldest_age_seconds'])})" if q.get("oldest_age_seconds") is not None else ""
        parts.append(f"{name} {q['depth']}{age}")
    click.echo(f"queues:       {' · '.join(parts)}")
    letters = data["dead_letters"]
    kinds = ", ".join(f"{k} {v}" for k, v in letters["by_kind"].items())
    click.echo(f"dead letters: {letters['total']}" + (f" ({kinds}; `syncctl dlq list`)" if kinds else ""))
    for conn_id, conn in data["connections"].items():
        click.echo(f"\nconnection {conn_id}  (flows: {', '.join(conn['flows'])})")
        queued = " · ".join(f"{q} {v['depth']}" + (f" (oldest {_span(v['oldest_age_seconds'])})"
                                                    if v.get("oldest_age_seconds") is not None else "")
                            for q, v in conn["queues"].items())
        click.echo(f"  queued:          {queued}; records pending: {conn['pending_records']}")
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
            line = f"    {source:<22} {'ERROR' if run.get('error') else 'ok'} {_ago(run.get('last_run_at'))}"
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
                       f"{cp.get('position') or '-'}, updated {_ago(cp.get('updated_at'))})")
        reviews = conn["reviews"]
        if reviews is not None:
            click.echo(f"  reviews:         {reviews['count']} waiting"
                       + (f" (`syncctl conflicts list {conn_id}`)" if reviews["count"] else ""))
    if found:
        click.echo("\nneeds attention:")
        for problem in found:
            click.echo(f"  - {problem}")


# --------------------------------------------------------------------------- reconcile


@main.command()
@click.argument("connection")
@click.option("--entity", "entities", multiple=True, help="Only this entity (repeatable).")
@click.option("--since", "since_text", help="Sweep from this time instead of the watermark (date or ISO time).")
@click.option("--full", is_flag=True, help="Also compare every record with the last snapshot (catches deletions).")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def reconcile(connection: str, entities: tuple[str, ...], since_text: str | None, full: bool, as_json: bool) -> None:
    """Run a reconciliation sweep now (what beat runs every reconcile_minutes)."""
    from sync.operations.reconcile import sweep

    settings = _settings()
    names = [_entity_route(e)[1] for e in entities] or None
    since = _since(since_text)
    ctx = _context(settings, connection)
    result = sweep(ctx, _enqueue(settings), entities=names, since=since, full=True if full else None)
    _print(result, as_json)
    if any(r.get("error") for r in result.values()):
        sys.exit(EXIT_PROBLEM)


# --------------------------------------------------------------------------- backfill


class _PlainReporter:
    """Progress as plain lines (not a terminal): at most one every 5 s, plus the last."""

    def __init__(self, interval: float = 5.0) -> None:
        self.interval = interval
        self.total = self.done = 0
        self.started = self.last = 0.0
        self.description = ""
        self.counts: dict[str, int] = {}

    def start(self, total: int, done: int, description: str) -> None:
        self.total, self.done, self.description = total, done, description
        self.started = self.last = time.monotonic()
        click.echo(f"{description}: {total} record(s)")

    def advance(self, counts: dict[str, int]) -> None:
        self.done += 1
        self.counts = counts
        now = time.monotonic()
        if now - self.last >= self.interval:
            self.last = now
            click.echo(self._line(now))

    def _line(self, now: float) -> str:
        rate = self.done / max(now - self.started, 1e-6)
        eta = (self.total - self.done) / rate if rate else None
        counts = ", ".join(f"{k} {v}" for k, v in self.counts.items())
        pct = 100 * self.done / self.total if self.total else 100
        return f"{self.description}: {self.done}/{self.total} ({pct:.0f} %) {counts}; ETA {_span(eta)}"

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def stop(self) -> None:
        if self.total:
            click.echo(self._line(time.monotonic()))


class _RichReporter:
    """A rich progress bar with counts and ETA (on a terminal)."""

    def __init__(self, console: Any = None) -> None:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.console = console or Console(stderr=True)
        self.progress = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[counts]}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=self.console)
        self.task: Any = None

    def start(self, total: int, done: int, description: str) -> None:
        self.progress.start()
        self.task = self.progress.add_task(description, total=total, completed=done, counts="")

    def advance(self, counts: dict[str, int]) -> None:
        self.progress.update(self.task, advance=1, counts=" ".join(f"{k} {v}" for k, v in counts.items()))

    def note(self, text: str) -> None:
        self.progress.console.print(text)

    def stop(self) -> None:
        self.progress.stop()


def _reporter(as_json: bool) -> Any:
    from sync.operations.backfill import SilentReporter

    if as_json:
        return SilentReporter()
    if sys.stderr.isatty() and sys.stdout.isatty():
        return _RichReporter()
    return _PlainReporter()


@main.command()
@click.argument("connection")
@click.argument("entity")
@click.option("--since", "since_text", help="Only records changed since this date (2024-05-01) or ISO time.")
@click.option("--dry-run", is_flag=True, help="Write nothing; report what the sync would do, with examples.")
@click.option("--limit", type=click.IntRange(min=1), help="Queue (or dry-run) at most N records in this run.")
@click.option("--restart", is_flag=True, help="Ignore an unfinished backfill's checkpoint and start over.")
@click.option("--window", type=click.IntRange(min=0), help="Jobs kept waiting in the backfill queue at most "
              "(default: the connection's backfill_window; 0 = no limit).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress bar).")
@_guarded
def backfill(connection: str, entity: str, since_text: str | None, dry_run: bool, limit: int | None,
             restart: bool, window: int | None, as_json: bool) -> None:
    """Queue every record of ENTITY (organisation, debtor, item, delivery, user, employee, person,
    contact) at backfill priority; existing pairs are linked by the flows before anything is created.

    Resumes from its checkpoint after a crash or Ctrl-C. Stops with exit code 3 when the
    Uniconta daily budget reaches the live reserve, saying when to run it again.
    """
    from sync.operations import backfill as bf
    from sync.operations.reconcile import source_for

    settings = _settings()
    conn = _connection(settings, connection)
    source = source_for(entity)
    if source is None:
        from sync.operations.reconcile import SOURCES

        _fail(f"cannot backfill {entity!r} (one of: {', '.join(s.entity for s in SOURCES)})")
    if not conn.enabled(source.flow):
        _fail(f"the {source.flow} flow is not enabled for connection {connection!r}")
    since = _since(since_text)
    ctx = _context(settings, connection)
    if dry_run:
        _dry_run(ctx, source, since, limit, as_json)
        return
    from sync.operations.status import queue_depth
    from tasks.queues import BACKFILL

    try:
        outcome = bf.run(ctx, source, _enqueue(settings), since=since, limit=limit, restart=restart, window=window,
                         queue_depth=lambda: queue_depth(ctx.redis, BACKFILL), reporter=_reporter(as_json))
    except (bf.CheckpointMismatch, bf.Busy) as err:
        _fail(str(err))
    if as_json:
        _print(outcome.as_dict(), True)
    else:
        if outcome.resumed_from is not None:
            click.echo(f"resumed after position {outcome.resumed_from}")
        click.echo(outcome.message)
    if outcome.state == "budget":
        sys.exit(EXIT_BUDGET)
    if outcome.state == "interrupted":
        sys.exit(EXIT_INTERRUPTED)


def _dry_run(ctx: Any, source: Any, since: datetime | None, limit: int | None, as_json: bool) -> None:
    from sync.clients.errors import Throttled
    from sync.operations import backfill as bf
    from sync.operations import dryrun

    try:
        todo = bf.plan(ctx, source, after=None, since=since, limit=limit)
    except Throttled as err:
        _fail(f"the Uniconta budget refuses batch reads: {err}", EXIT_BUDGET)
    reporter = _reporter(as_json)
    reporter.start(len(todo), 0, f"dry run {ctx.connection.id} {source.entity}")
    counts: dict[str, int] = {}

    def progress(cls: str) -> None:
        counts[cls] = counts.get(cls, 0) + 1
        reporter.advance(counts)

    try:
        report = dryrun.run(ctx, source, [record_id for record_id, _ in todo], progress=progress)
    finally:
        reporter.stop()
    data = {"connection": ctx.connection.id, "entity": source.entity, "dry_run": True, **report.as_dict()}
    if as_json:
        _print(data, True)
    else:
        click.echo(f"dry run of {len(todo)} {source.entity} record(s) on {ctx.connection.id}: nothing was written")
        for cls, n in data["counts"].items():
            click.echo(f"  {cls:<13} {n}")
        for cls, examples in report.examples.items():
            click.echo(f"\n{cls}, e.g.:")
            for ex in examples:
                what = "; ".join(ex.get("writes", [])) or ex.get("error") or ex.get("action", "")
                reason = ex.get("detail", {}).get("reason")
                click.echo(f"  {source.entity} {ex['id']}: {what}" + (f" ({reason})" if reason else ""))
        if report.stopped:
            click.echo(f"\n{report.stopped}")
    if report.stopped.startswith("stopped"):
        sys.exit(EXIT_BUDGET)


# --------------------------------------------------------------------------- resync and timeline


@main.command()
@click.argument("connection")
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@click.option("--wait", is_flag=True, help="Wait for the job's result and print it.")
@click.option("--timeout", type=click.FloatRange(min=1), default=60.0, show_default=True,
              help="Seconds --wait waits at most.")
@click.option("--force", is_flag=True, help="Queue a separate job even if one for the record is already waiting.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def resync(connection: str, entity: str, record_id: str, wait: bool, timeout: float, force: bool,
           as_json: bool) -> None:
    """Sync one record now (ENTITY: organisation, debtor, item, delivery, user, employee, person,
    contact; ID: the webCRM id, the Uniconta key, or a contact's RowId)."""
    from sync.events import Event
    from sync.state import intake, keys

    settings = _settings()
    conn = _connection(settings, connection)
    system, name = _entity_route(entity)
    rid = _record_id(system, name, record_id)
    r = _redis(settings)
    pending_key = keys.pending(conn.id, system, name, rid)
    if force:
        r.delete(pending_key)
    waiting_event = str(r.get(pending_key) or "")
    started = time.time()
    try:
        outcome = intake.accept(r, Event(conn.id, system, name, rid, origin="resync"), _enqueue(settings))
    except intake.Unavailable as err:
        _fail(f"could not queue the job: {err}", EXIT_PROBLEM)
    result: dict[str, Any] = {"connection": conn.id, "system": system, "entity": name, "id": rid,
                              "status": outcome.status, "event": outcome.event_id}
    if outcome.status == "coalesced":
        result["note"] = f"a job for this record is already waiting (event {waiting_event}); it will do the sync"
    if not wait:
        if as_json:
            _print(result, True)
        else:
            click.echo(f"{outcome.status}: {system} {name} {rid} (event {outcome.event_id})"
                       + (f" — {result['note']}" if "note" in result else ""))
        return
    final = _wait_for_result(r, conn.id, name, rid, started, timeout)
    result["result"] = final
    if as_json:
        _print(result, True)
    elif final is None:
        click.echo(f"{outcome.status}; no result within {timeout:.0f} s — is a worker running? "
                   f"(`syncctl timeline {conn.id} {name} {rid}`)")
    else:
        click.echo(f"{name} {rid}: {_entry_line(final)}")
    if final is None or final.get("kind") == "dead-letter":
        sys.exit(EXIT_PROBLEM)


def _wait_for_result(r: redis.Redis, connection: str, entity: str, record_id: str, since: float,
                     timeout: float) -> dict[str, Any] | None:
    from sync.state import journal

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for entry in journal.entries(r, connection, entity, record_id, limit=50):
            if float(entry.get("at", 0)) < since - 0.5:
                break
            if entry.get("kind") in ("done", "dead-letter", "ignored"):
                return entry
        time.sleep(0.2)
    return None


_HIDDEN = ("at", "kind", "count")


def _entry_line(entry: dict[str, Any]) -> str:
    kind = entry.get("kind", "?")
    if kind == "api":
        status = entry.get("status")
        return (f"api       {entry.get('system', '')} {entry.get('method', '')} {entry.get('path', '')} → "
                f"{status if status is not None else 'no answer'} ({entry.get('ms', '?')} ms)")
    details = " ".join(f"{k}={v}" for k, v in entry.items() if k not in _HIDDEN and v not in (None, ""))
    count = f" ×{entry['count']}" if entry.get("count") else ""
    return f"{kind:<9}{count} {details}".rstrip()


@main.command()
@click.argument("connection")
@click.argument("entity")
@click.argument("record_id", metavar="ID")
@click.option("--limit", type=click.IntRange(min=1, max=200), default=200, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def timeline(connection: str, entity: str, record_id: str, limit: int, as_json: bool) -> None:
    """A record's journal, newest first: what arrived, what was decided and why, which API
    calls, the result — plus its link, waiting job and dead letters."""
    from sync.state import deadletters, journal, keys
    from sync.state.links import LinkStore

    settings = _settings()
    conn = _connection(settings, connection)
    system, name = _entity_route(entity)
    rid = _record_id(system, name, record_id)
    r = _redis(settings)
    entries = journal.entries(r, conn.id, name, rid, limit)
    links = LinkStore(r, conn.id)
    link = links.uniconta_key(name, rid) if system == "webcrm" else links.webcrm_id(name, rid)
    letters = [d for d in deadletters.iter_all(r) if d.get("connection") == conn.id and d.get("entity") == name
               and str(d.get("record_id")) == rid]
    pending = str(r.get(keys.pending(conn.id, system, name, rid)) or "") or None
    data = {"connection": conn.id, "system": system, "entity": name, "id": rid, "linked_to": link,
            "job_waiting": pending, "dead_letters": [d["id"] for d in letters], "entries": entries}
    if as_json:
        _print(data, True)
        return
    other = "Uniconta" if system == "webcrm" else "webCRM"
    click.echo(f"{system} {name} {rid} — linked to {other} {link}" if link else
               f"{system} {name} {rid} — no link in the cache")
    if pending:
        click.echo(f"a sync job is waiting (event {pending})")
    for letter in letters:
        click.echo(f"DEAD LETTER {letter['id']} ({letter['kind']}, {_ago(letter['failed_at'])}): {letter['error']}"
                   f" — `syncctl dlq requeue {letter['id']}` after fixing the cause")
    if not entries:
        click.echo("no journal entries: nothing about this record reached the sync (no webhook, reconciliation "
                   f"or backfill). Try `syncctl resync {conn.id} {name} {rid} --wait`.")
        return
    for entry in entries:
        click.echo(f"{_when(entry.get('at'))}  {_entry_line(entry)}")


# --------------------------------------------------------------------------- dead letters


@main.group()
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
    age = _duration(older_than) if older_than else None
    entity_name = _entity_route(entity)[1] if entity else None
    letters = []
    if ids:
        for letter_id in ids:
            letter = deadletters.get(r, letter_id)
            if letter is None:
                _fail(f"no dead letter {letter_id!r} (`syncctl dlq list`)")
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


@dlq.command("list")
@_filter_options
@click.option("--limit", type=click.IntRange(min=1), default=100, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def dlq_list(connection: str | None, flow: str | None, entity: str | None, kind: str | None,
             older_than: str | None, limit: int, as_json: bool) -> None:
    """Dead letters, newest first (filters optional)."""
    settings = _settings()
    r = _redis(settings)
    letters = _matching(r, [], connection, flow, entity, kind, older_than, True)[:limit]
    if as_json:
        _print(letters, True)
        return
    if not letters:
        click.echo("no dead letters")
        return
    for d in letters:
        error = str(d.get("error", "")).replace("\n", " ")
        click.echo(f"{d['id']}  {_ago(d.get('failed_at')):>10}  {d.get('connection')}  {d.get('system')} "
                   f"{d.get('entity')} {d.get('record_id')}  [{d.get('kind')}] {error[:100]}")


@dlq.command("show")
@click.argument("letter_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def dlq_show(letter_id: str, as_json: bool) -> None:
    """Everything stored with one dead letter."""
    from sync.state import deadletters

    settings = _settings()
    r = _redis(settings)
    letter = deadletters.get(r, letter_id)
    if letter is None:
        _fail(f"no dead letter {letter_id!r} (`syncctl dlq list`)")
    if not as_json:
        letter = {**letter, "failed_at": _when(letter.get("failed_at")),
                  "first_attempt_at": _when(letter.get("first_attempt_at"))}
    _print(letter, as_json)


@dlq.command("requeue")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def dlq_requeue(ids: tuple[str, ...], connection: str | None, flow: str | None, entity: str | None,
                kind: str | None, older_than: str | None, everything: bool, as_json: bool) -> None:
    """Queue dead letters again through the normal path (origin "dlq"); each is removed once queued."""
    from sync.events import Event
    from sync.state import deadletters, intake

    settings = _settings()
    r = _redis(settings)
    letters = _matching(r, ids, connection, flow, entity, kind, older_than, everything)
    enqueue = _enqueue(settings) if letters else None
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
        _print({"requeued": done, "failed": failed}, True)
    else:
        click.echo(f"requeued {len(done)} dead letter(s)")
        for line in failed:
            click.echo(f"not requeued: {line}", err=True)
    if failed:
        sys.exit(EXIT_PROBLEM)


@dlq.command("drop")
@click.argument("ids", nargs=-1, metavar="[ID]...")
@_filter_options
@click.option("--all", "everything", is_flag=True, help="Every dead letter.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def dlq_drop(ids: tuple[str, ...], connection: str | None, flow: str | None, entity: str | None,
             kind: str | None, older_than: str | None, everything: bool, as_json: bool) -> None:
    """Delete dead letters without retrying them."""
    from sync.state import deadletters

    settings = _settings()
    r = _redis(settings)
    letters = _matching(r, ids, connection, flow, entity, kind, older_than, everything)
    dropped = [d["id"] for d in letters if deadletters.drop(r, d["id"])]
    if as_json:
        _print({"dropped": dropped}, True)
    else:
        click.echo(f"dropped {len(dropped)} dead letter(s)")


# --------------------------------------------------------------------------- conflicts / reviews


@main.group()
def conflicts() -> None:
    """Ambiguous e-mail matches waiting for a person (field conflicts are settled by
    conflict_policy and journaled: see `syncctl timeline`)."""


def _review_module() -> Any:
    try:
        from sync.state import review
    except ImportError:
        _fail("this installation keeps no reviews (sync.state.review is missing)", EXIT_PROBLEM)
    return review


@conflicts.command("list")
@click.argument("connection", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def conflicts_list(connection: str | None, as_json: bool) -> None:
    """Open ambiguities, most recently seen first."""
    review = _review_module()
    settings = _settings()
    if connection:
        _connection(settings, connection)
    r = _redis(settings)
    data = {c: review.list_reviews(r, c) for c in ([connection] if connection else settings.connections)}
    if as_json:
        _print(data if not connection else data[connection], True)
        return
    for conn_id, entries in data.items():
        if not entries:
            click.echo(f"{conn_id}: nothing waiting for review")
            continue
        click.echo(f"{conn_id}: {len(entries)} waiting for review")
        for e in entries:
            click.echo(f"  {e.get('id')}  {e.get('reason', '')}; webCRM {e.get('webcrm_entity', '')} "
                       f"{', '.join(e.get('webcrm', [])) or '-'} ↔ Uniconta {e.get('uniconta_entity', '')} "
                       f"{', '.join(e.get('uniconta', [])) or '-'}; seen {e.get('seen', 1)}×, last {_ago(e.get('last_seen'))}")


@conflicts.command("resolve")
@click.argument("connection")
@click.argument("review_id", metavar="ID")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def conflicts_resolve(connection: str, review_id: str, as_json: bool) -> None:
    """After fixing the data (e.g. removing a duplicate e-mail): drop the review entry and
    resync the records it names, which links them or records the ambiguity again."""
    from sync.events import Event
    from sync.flows import ROUTES
    from sync.state import intake, keys

    review = _review_module()
    settings = _settings()
    conn = _connection(settings, connection)
    r = _redis(settings)
    entry = next((e for e in review.list_reviews(r, conn.id) if e.get("id") == review_id), None)
    if entry is None:
        _fail(f"no review {review_id!r} on {conn.id} (`syncctl conflicts list {conn.id}`)")
    queued: list[str] = []
    enqueue = _enqueue(settings)
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
        _print(result, True)
    else:
        click.echo(f"resolved {review_id}; resync queued for: {', '.join(queued) or 'nothing'}")


main.add_command(conflicts, "review")


# --------------------------------------------------------------------------- doctor, hooks, links


def _clients(settings: Settings, connection: str) -> tuple[Connection, Any, Any]:
    from sync.clients.uniconta import UnicontaClient
    from sync.clients.webcrm import WebcrmClient

    conn = _connection(settings, connection)
    webcrm = WebcrmClient(conn.webcrm.base_url, conn.webcrm.auth_code.reveal(), timeout=(3.05, 10))
    uniconta = UnicontaClient(conn.uniconta.base_url, conn.uniconta.company_id, conn.uniconta.username,
                              conn.uniconta.password.reveal(), timeout=(3.05, 10))
    return conn, webcrm, uniconta


def _public_url(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
        raise click.BadParameter(f"{value!r}: an absolute http(s) URL without query, e.g. https://sync.example.com",
                                 param_hint="--public-url")
    return value.rstrip("/")


@main.command()
@click.argument("connection")
@click.option("--public-url", "--receiver", "public_url", help="The receiver's public base URL the hooks must use.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def doctor(connection: str, public_url: str | None, as_json: bool) -> None:
    """Check credentials, custom and user-defined fields, webhooks and Redis persistence;
    prints how to fix each problem and exits 1 if there is any."""
    from sync.operations import doctor as dr

    settings = _settings()
    url = _public_url(public_url)
    conn, webcrm, uniconta = _clients(settings, connection)
    r = _redis(settings)
    with webcrm, uniconta:
        checks = dr.run_checks(conn, webcrm, uniconta, r, url)
    problems = [c for c in checks if not c.ok]
    if as_json:
        _print({"connection": conn.id, "ok": not problems, "checks": [c.as_dict() for c in checks]}, True)
    else:
        for c in checks:
            mark = "ok     " if c.ok and not c.warning else ("warning" if c.ok else "PROBLEM")
            click.echo(f"{mark}  {c.area:<16} {c.message}")
            if not c.ok or c.warning:
                click.echo(f"{'':9}{'':<16} fix: {c.fix}" if c.fix else "")
        click.echo(f"\n{len(problems)} problem(s)" if problems else "\nall checks passed")
    if problems:
        sys.exit(EXIT_PROBLEM)


@main.group()
def hooks() -> None:
    """Register, list or remove this connection's webhooks in webCRM and Uniconta."""


@hooks.command("install")
@click.argument("connection")
@click.option("--public-url", "--receiver", "public_url", required=True,
              help="The receiver's public base URL, e.g. https://sync.example.com.")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def hooks_install(connection: str, public_url: str, as_json: bool) -> None:
    """Create the webCRM hooks and Uniconta Change-URL rows the enabled flows need (idempotent)."""
    from sync.operations.hooks_setup import install_hooks

    settings = _settings()
    url = _public_url(public_url)
    assert url is not None
    conn, webcrm, uniconta = _clients(settings, connection)
    with webcrm, uniconta:
        created = install_hooks(conn, webcrm, uniconta, url)
    if as_json:
        _print({"created": created}, True)
    else:
        click.echo(f"created: {', '.join(created)}" if created else "all hooks were already registered")


@hooks.command("list")
@click.argument("connection")
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def hooks_list(connection: str, as_json: bool) -> None:
    """The hooks in both systems that point at this connection (tokens masked)."""
    from sync.operations.doctor import list_hooks

    settings = _settings()
    conn, webcrm, uniconta = _clients(settings, connection)
    with webcrm, uniconta:
        found = list_hooks(conn, webcrm, uniconta)
    if as_json:
        _print(found, True)
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
@_guarded
def hooks_remove(connection: str, public_url: str | None, as_json: bool) -> None:
    """Delete this connection's hooks from both systems."""
    from sync.operations.doctor import remove_hooks

    settings = _settings()
    url = _public_url(public_url)
    conn, webcrm, uniconta = _clients(settings, connection)
    with webcrm, uniconta:
        removed = remove_hooks(conn, webcrm, uniconta, url)
    if as_json:
        _print({"removed": removed}, True)
    else:
        click.echo(f"removed: {', '.join(removed)}" if removed else "nothing to remove")


@main.group()
def links() -> None:
    """The Redis cache of cross-references."""


@links.command("rebuild")
@click.argument("connection")
@click.argument("entity", required=False)
@click.option("--json", "as_json", is_flag=True, help="Print JSON.")
@_guarded
def links_rebuild(connection: str, entity: str | None, as_json: bool) -> None:
    """Rebuild the link cache from the cross-reference fields in both systems (after losing Redis)."""
    from sync.operations import relink
    from sync.operations.reconcile import ALIASES

    settings = _settings()
    name = None
    if entity is not None:
        name = ALIASES.get(entity.lower(), entity.lower())
        name = {"debtor": "organisation", "employee": "user", "contact": "person"}.get(name, name)
        if name not in relink.ENTITIES:
            _fail(f"cannot rebuild links of {entity!r} (one of: {', '.join(relink.ENTITIES)})")
    ctx = _context(settings, connection)
    report = relink.rebuild(ctx, name)
    if as_json:
        _print(report, True)
        return
    for ent, rep in report.items():
        click.echo(f"{ent}: {rep['linked']} linked ({rep['agreeing']} confirmed by both systems, "
                   f"{rep['one_sided']} by one), {rep['conflicts']} left out")
        for line in rep["conflict_examples"]:
            click.echo(f"  left out: {line}")


if __name__ == "__main__":  # pragma: no cover
    main()
