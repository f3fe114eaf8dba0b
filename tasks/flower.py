"""Start Flower only with authentication: `python -m tasks.flower [Flower options]`.

Flower shows every job's arguments and its API can shut workers down, yet it starts without any
authentication. docker-compose.yml and `make run` start it through here: credentials must be given
(`FLOWER_BASIC_AUTH=user:password[,...]`, or Flower's OAuth options), and only the built-in demo
bound to loopback may go without. Otherwise this exits 2 with a message before Flower starts.
Options are read as Flower reads them: `--name=value` on the command line wins over `FLOWER_NAME`.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping, Sequence

from sync.config import ConfigError, load_settings
from sync.exposure import is_loopback

OAUTH_OPTIONS = ("auth_provider", "oauth2_key", "oauth2_secret", "oauth2_redirect_uri")


def option(args: Sequence[str], environ: Mapping[str, str], name: str) -> str | None:
    """A Flower option's value: the last `--name=value` (or `--na-me=value`), else FLOWER_NAME."""
    value = None
    for arg in args:
        key, eq, given = arg.partition("=")
        if eq and key.lstrip("-").replace("-", "_") == name and key.startswith("--"):
            value = given
    return value if value is not None else environ.get(f"FLOWER_{name.upper()}")


def _basic_auth_ok(value: str | None) -> bool:
    entries = [entry for entry in (value or "").split(",") if entry.strip()]
    return bool(entries) and all(user and password for user, _, password in (e.partition(":") for e in entries))


def _oauth_ok(args: Sequence[str], environ: Mapping[str, str]) -> bool:
    return all(option(args, environ, name) for name in ("auth", *OAUTH_OPTIONS))


def auth_problem(args: Sequence[str], environ: Mapping[str, str], *, demo: bool) -> str | None:
    """Why Flower must not start with these options, or None when it may."""
    if _basic_auth_ok(option(args, environ, "basic_auth")) or _oauth_ok(args, environ):
        return None
    address = option(args, environ, "address") or ""
    socket = option(args, environ, "unix_socket")
    if demo and is_loopback(address) and not socket:
        return None
    where = f"unix socket {socket}" if socket else f"{address or 'every interface'}"
    why = "" if demo else " with a real configuration (SYNC_CONFIG)"
    return (f"refusing to start Flower on {where}{why} without authentication: anyone who reaches it sees every "
            "job's arguments and can shut workers down. Set FLOWER_BASIC_AUTH=user:password (several: comma-"
            "separated), or Flower's OAuth options (FLOWER_AUTH, FLOWER_AUTH_PROVIDER, FLOWER_OAUTH2_KEY, "
            "FLOWER_OAUTH2_SECRET, FLOWER_OAUTH2_REDIRECT_URI).")


def main(argv: Sequence[str] | None = None) -> int:
    """Check, then replace this process with `celery -A tasks.app flower ARGS` (signals go straight to it)."""
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = load_settings()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    problem = auth_problem(args, os.environ, demo=settings.demo)
    if problem:
        print(f"flower: {problem}", file=sys.stderr)
        return 2
    os.execv(sys.executable, [sys.executable, "-m", "celery", "-A", "tasks.app", "flower", *args])  # noqa: S606
    return 0  # not reached


if __name__ == "__main__":
    raise SystemExit(main())
