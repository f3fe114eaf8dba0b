"""`syncctl backfill`: queue every record of an entity at backfill priority, or dry-run it, with progress."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from typing import Any

import click

from syncctl import common
from syncctl.common import (
    EXIT_BUDGET,
    EXIT_INTERRUPTED,
    connection_or_exit,
    context_or_exit,
    fail,
    guarded,
    settings_or_exit,
    show,
    since_option,
    span,
)


class PlainReporter:
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
        return f"{self.description}: {self.done}/{self.total} ({pct:.0f} %) {counts}; ETA {span(eta)}"

    def note(self, text: str) -> None:
        click.echo(text, err=True)

    def stop(self) -> None:
        if self.total:
            click.echo(self._line(time.monotonic()))


class RichReporter:
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
        return RichReporter()
    return PlainReporter()


@click.command()
@click.argument("connection")
@click.argument("entity")
@click.option("--since", "since_text", help="Only records changed since this date (2024-05-01) or ISO time.")
@click.option("--dry-run", is_flag=True, help="Write nothing; report what the sync would do, with examples.")
@click.option("--limit", type=click.IntRange(min=1), help="Queue (or dry-run) at most N records in this run.")
@click.option("--restart", is_flag=True, help="Ignore an unfinished backfill's checkpoint and start over.")
@click.option("--window", type=click.IntRange(min=0), help="Jobs kept waiting in the backfill queue at most "
              "(default: the connection's backfill_window; 0 = no limit).")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON (no progress bar).")
@guarded
def backfill(connection: str, entity: str, since_text: str | None, dry_run: bool, limit: int | None,
             restart: bool, window: int | None, as_json: bool) -> None:
    """Queue every record of ENTITY (organisation, debtor, item, delivery, user, employee, person,
    contact) at backfill priority; existing pairs are linked by the flows before anything is created.

    Resumes from its checkpoint after a crash or Ctrl-C. Stops with exit code 3 when the
    Uniconta daily budget reaches the live reserve, saying when to run it again.
    """
    from sync.operations import backfill as bf
    from sync.operations.reconcile import source_for

    settings = settings_or_exit()
    conn = connection_or_exit(settings, connection)
    source = source_for(entity)
    if source is None:
        from sync.operations.reconcile import SOURCES

        fail(f"cannot backfill {entity!r} (one of: {', '.join(s.entity for s in SOURCES)})")
    if not conn.enabled(source.flow):
        fail(f"the {source.flow} flow is not enabled for connection {connection!r}")
    since = since_option(since_text)
    ctx = context_or_exit(settings, connection)
    if dry_run:
        _dry_run(ctx, source, since, limit, as_json)
        return
    from tasks.broker import queue_depth
    from tasks.queues import BACKFILL

    try:
        outcome = bf.run(ctx, source, common.batch_enqueue_for(settings), since=since, limit=limit, restart=restart, window=window,
                         queue_depth=lambda: queue_depth(ctx.redis, BACKFILL), reporter=_reporter(as_json))
    except (bf.CheckpointMismatch, bf.Busy) as err:
        fail(str(err))
    if as_json:
        show(outcome.as_dict(), True)
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
        fail(f"the Uniconta budget refuses batch reads: {err}", EXIT_BUDGET)
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
        show(data, True)
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
