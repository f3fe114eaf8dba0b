"""One logging setup for the receiver and the workers: text or JSON lines, with context, scrubbed.

Every line carries the connection / entity / record id when the code runs
inside `log_context(...)`, and passes through `scrub()`, so a secret that
slips into a message or an exception is masked before it is written.
"""

from __future__ import annotations

import contextlib
import logging
import sys
from collections.abc import Iterator
from contextvars import ContextVar
from typing import Any

from pythonjsonlogger.json import JsonFormatter

from sync.secrets import scrub

CONTEXT_FIELDS = ("connection", "entity", "record", "event")
_context: ContextVar[dict[str, str]] = ContextVar("log_context", default={})  # noqa: B039 - never mutated

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s%(context)s: %(message)s"


@contextlib.contextmanager
def log_context(**values: Any) -> Iterator[None]:
    """Attach connection/entity/record (or other keys) to every log line in this block."""
    merged = {**_context.get(), **{k: str(v) for k, v in values.items() if v is not None}}
    token = _context.set(merged)
    try:
        yield
    finally:
        _context.reset(token)


class ContextFilter(logging.Filter):
    """Adds the log context and scrubs secrets from the rendered message and exception."""

    def filter(self, record: logging.LogRecord) -> bool:
        ctx = _context.get()
        for key in CONTEXT_FIELDS:
            setattr(record, key, ctx.get(key, getattr(record, key, None)))
        record.context = "".join(f" [{k}={v}]" for k, v in ctx.items())
        message = record.getMessage()
        record.msg, record.args = scrub(message), None
        if record.exc_info and not record.exc_text:
            record.exc_text = scrub(logging.Formatter().formatException(record.exc_info))
        elif record.exc_text:
            record.exc_text = scrub(record.exc_text)
        return True


class _ScrubbingJsonFormatter(JsonFormatter):
    def format(self, record: logging.LogRecord) -> str:
        return scrub(super().format(record))


class _ScrubbingTextFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        if not hasattr(record, "context"):
            record.context = ""
        return scrub(super().format(record))


def make_handler(fmt: str, stream: Any = None) -> logging.Handler:
    """A stream handler with our filter and the chosen format."""
    handler = logging.StreamHandler(stream or sys.stderr)
    handler.addFilter(ContextFilter())
    if fmt == "json":
        handler.setFormatter(_ScrubbingJsonFormatter(
            "%(asctime)s %(levelname)s %(name)s %(message)s %(connection)s %(entity)s %(record)s %(event)s",
            rename_fields={"asctime": "time", "levelname": "level", "name": "logger"},
        ))
    else:
        handler.setFormatter(_ScrubbingTextFormatter(TEXT_FORMAT))
    return handler


def setup_logging(level: str = "INFO", fmt: str = "text", stream: Any = None) -> None:
    """Configure the root logger once (idempotent: replaces our previous handler)."""
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_sync_handler", False):
            root.removeHandler(handler)
    handler = make_handler(fmt, stream)
    handler._sync_handler = True  # type: ignore[attr-defined]
    root.addHandler(handler)
    root.setLevel(level)
    # urllib3 logs full URLs (with query strings) at DEBUG; keep it at WARNING.
    logging.getLogger("urllib3").setLevel(logging.WARNING)
