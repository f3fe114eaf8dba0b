"""What every syncctl command shares: exit codes, output, clear failures, and the lookups
of settings, connection, Redis, API clients and the job producer."""

from __future__ import annotations

import functools
import json
import re
import sys
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any, NoReturn, TypeVar

import click
import redis

from sync.clients.errors import ApiError, redact
from sync.config import ConfigError, Connection, Settings, load_settings

EXIT_OK, EXIT_PROBLEM, EXIT_USAGE, EXIT_BUDGET, EXIT_INTERRUPTED = 0, 1, 2, 3, 130

F = TypeVar("F", bound=Callable[..., Any])


def fail(message: str, code: int = EXIT_USAGE) -> NoReturn:
    click.echo(f"syncctl: {message}", err=True)
    sys.exit(code)


def show(data: Any, as_json: bool) -> None:
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


def guarded(func: F) -> F:
    """Turn infrastructure failures into one clear line and exit 1 (never a traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except redis.RedisError as err:
            fail(f"Redis is unreachable or failed: {type(err).__name__}: {redact(str(err))}", EXIT_PROBLEM)
        except ApiError as err:
            fail(f"API call failed: {err}", EXIT_PROBLEM)
        except KeyboardInterrupt:
            fail("interrupted", EXIT_INTERRUPTED)

    return wrapper  # type: ignore[return-value]


# --------------------------------------------------------------------------- shared plumbing


def settings_or_exit() -> Settings:
    try:
        return load_settings()
    except ConfigError as err:
        fail(str(err))


def connection_or_exit(settings: Settings, connection: str) -> Connection:
    conn = settings.connection(connection)
    if conn is None:
        fail(f"unknown connection {connection!r} (known: {', '.join(settings.connections)})")
    return conn


def redis_or_exit(settings: Settings) -> redis.Redis:
    from sync.runtime import redis_url

    url = redis_url(settings)
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)
    try:
        client.ping()
    except redis.RedisError as err:
        fail(f"cannot reach Redis at {redact(url)}: {err} (set REDIS_URL, or start it with `make run`)",
              EXIT_PROBLEM)
    return client


def context_or_exit(settings: Settings, connection: str) -> Any:
    """The connection's wired API clients (shared rate limiter and budget), Redis checked."""
    from sync.runtime import Runtime

    connection_or_exit(settings, connection)
    redis_or_exit(settings)
    runtime = Runtime(settings, enqueue=enqueue_for(settings), enqueue_batch=batch_enqueue_for(settings))
    return runtime.context(connection)


def enqueue_for(settings: Settings) -> Callable[[Any], None]:
    """The job publisher for single events (tests replace it)."""
    from tasks.celery_app import make_celery
    from tasks.dispatch import enqueuer

    return enqueuer(make_celery(settings))  # type: ignore[no-any-return]


def batch_enqueue_for(settings: Settings) -> Callable[..., None]:
    """The job publisher for batches of events: one `sync.batch` job per call (tests replace it)."""
    from tasks.celery_app import make_celery
    from tasks.dispatch import batch_enqueuer

    return batch_enqueuer(make_celery(settings))  # type: ignore[no-any-return]


def entity_route(entity: str) -> tuple[str, str]:
    """(system, entity) of an entity name an operator typed; exit 2 if unknown."""
    from sync.flows import ROUTES
    from sync.operations.reconcile import ALIASES

    name = ALIASES.get(entity.lower(), entity.lower())
    for system, known in ROUTES:
        if known == name:
            return system, name
    names = sorted({e for _, e in ROUTES})
    fail(f"unknown entity {entity!r} (one of: {', '.join(names)})")


def parse_record_id(system: str, entity: str, value: str) -> str:
    """An operator's record id in the form events use; exit 2 if it cannot be one."""
    value = value.strip()
    if system == "webcrm":
        if not value.isdigit() or int(value) <= 0:
            fail(f"a webCRM {entity} id is a positive number, not {value!r}")
        return str(int(value))
    if entity == "contact":  # contacts have no key: events name them by RowId
        digits = value.removeprefix("#")
        if not digits.isdigit():
            fail(f"a Uniconta contact is named by its RowId (a number, e.g. 12 or #12), not {value!r}")
        return f"#{int(digits)}"
    if not value or len(value) > 60 or any(ord(c) < 32 for c in value):
        fail(f"not a Uniconta {entity} key: {value!r}")
    return value


def ago(epoch: Any) -> str:
    try:
        seconds = time.time() - float(epoch)
    except (TypeError, ValueError):
        return "never"
    return span(seconds) + " ago"


def span(seconds: float | None) -> str:
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


def when(epoch: Any) -> str:
    try:
        return datetime.fromtimestamp(float(epoch)).astimezone().strftime("%Y-%m-%d %H:%M:%S")
    except (TypeError, ValueError, OSError):
        return str(epoch)


_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhd]?)\s*$")


def duration(text: str) -> float:
    match = _DURATION.match(text or "")
    if not match:
        raise click.BadParameter(f"{text!r}: use a number with s, m, h or d, e.g. 30m or 2d")
    return float(match.group(1)) * {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400}[match.group(2)]


def since_option(text: str | None) -> datetime | None:
    if text is None:
        return None
    from sync.operations.backfill import parse_since

    try:
        return parse_since(text)
    except ValueError:
        raise click.BadParameter(f"{text!r}: use a date (2024-05-01) or an ISO time (2024-05-01T12:00)",
                                 param_hint="--since") from None


def clients_for(settings: Settings, connection: str) -> tuple[Connection, Any, Any]:
    from sync.clients.uniconta import UnicontaClient
    from sync.clients.webcrm import WebcrmClient

    conn = connection_or_exit(settings, connection)
    webcrm = WebcrmClient(conn.webcrm.base_url, conn.webcrm.auth_code.reveal(), timeout=(3.05, 10))
    uniconta = UnicontaClient(conn.uniconta.base_url, conn.uniconta.company_id, conn.uniconta.username,
                              conn.uniconta.password.reveal(), timeout=(3.05, 10))
    return conn, webcrm, uniconta


def public_url_option(value: str | None) -> str | None:
    if value is None:
        return None
    if not re.match(r"^https?://[^\s/?#]+(/[^\s?#]*)?$", value):
        raise click.BadParameter(f"{value!r}: an absolute http(s) URL without query, e.g. https://sync.example.com",
                                 param_hint="--public-url")
    return value.rstrip("/")


_HIDDEN = ("at", "kind", "count")


def entry_line(entry: dict[str, Any]) -> str:
    kind = entry.get("kind", "?")
    if kind == "api":
        status = entry.get("status")
        return (f"api       {entry.get('system', '')} {entry.get('method', '')} {entry.get('path', '')} → "
                f"{status if status is not None else 'no answer'} ({entry.get('ms', '?')} ms)")
    details = " ".join(f"{k}={v}" for k, v in entry.items() if k not in _HIDDEN and v not in (None, ""))
    count = f" ×{entry['count']}" if entry.get("count") else ""
    return f"{kind:<9}{count} {details}".rstrip()
