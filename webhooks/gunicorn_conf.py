"""gunicorn settings for the receiver: `gunicorn -c python:webhooks.gunicorn_conf ... 'webhooks.app:create_app()'`.

* Uniconta's Change URL can only carry the webhook token in the query string, and gunicorn's access
  log prints the request line, so the logger masks secret-named query parameters, credential headers
  and registered secrets in every access and error line.
* A receiver that accepts a token published in this repository (the demo's) refuses to start on an
  address beyond loopback, before it binds (`sync.exposure`).
* With `PROMETHEUS_MULTIPROC_DIR` set, `/metrics` merges every worker's values: the directory is
  emptied before the workers start, and a worker that exits is marked dead (`sync.metrics`).

`make run` and docker-compose.yml both start the receiver with this file.
"""

from __future__ import annotations

import re
import sys
from typing import Any

from gunicorn import glogging

from sync import metrics
from sync.config import ConfigError, load_settings
from sync.exposure import public_token_problem
from sync.logs import ContextFilter
from sync.secrets import MASK, is_secret_name, mask_query, scrub

# `{name}i` (request header), `{name}o` (response header), `{name}e` (WSGI environ) atoms.
_NAMED_ATOM = re.compile(r"^\{(?P<name>.+)\}[ioe]$")
_QUERY_ATOMS = {"q", "{query_string}e"}
# Atoms the server makes up itself (address, time, status, sizes, durations, pid): nothing to mask.
_SERVER_ATOMS = {"h", "l", "t", "s", "m", "H", "b", "B", "T", "D", "M", "L", "p"}


def mask_atom(key: str, value: Any) -> Any:
    """One access-log atom as it may be written: query values, credential headers and secrets masked."""
    if not isinstance(value, str) or key in _SERVER_ATOMS:
        return value
    if key in _QUERY_ATOMS:
        return scrub(mask_query(value))
    named = _NAMED_ATOM.match(key)
    if named and is_secret_name(named["name"]):
        return MASK
    return scrub(value)


class _MaskedAtoms(glogging.SafeAtoms):
    """Masks each atom when the access-log format reads it, so unused atoms cost nothing."""

    def __getitem__(self, key: str) -> Any:
        return mask_atom(key.lower() if key.startswith("{") else key, super().__getitem__(key))


class ScrubbingLogger(glogging.Logger):
    """gunicorn's logger with secrets masked in access lines (per atom) and error lines (whole message)."""

    atoms_wrapper_class = _MaskedAtoms

    def setup(self, cfg: Any) -> None:
        super().setup(cfg)
        # "Error handling request /webhook/...?token=...": error lines are masked whole.
        if not any(isinstance(f, ContextFilter) for f in self.error_log.filters):
            self.error_log.addFilter(ContextFilter())


def _hosts(addresses: list[Any]) -> list[str]:
    return [addr[0] if isinstance(addr, tuple) else f"unix:{addr}" for addr in addresses]


def on_starting(server: Any) -> None:
    """Refuse, before binding, to expose a receiver that accepts a well-known token."""
    try:
        settings = load_settings()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr, flush=True)
        raise SystemExit(2) from None
    problem = public_token_problem(settings, _hosts(server.cfg.address))
    if problem:
        print(f"receiver: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(2)
    try:
        metrics.prepare_multiprocess_dir()
    except OSError as err:  # webhooks matter more than metrics: say so and serve them
        print(f"receiver: metrics directory unusable, /metrics will be incomplete: {err}", file=sys.stderr, flush=True)


def child_exit(server: Any, worker: Any) -> None:
    metrics.process_exited(worker.pid)


logger_class = ScrubbingLogger
