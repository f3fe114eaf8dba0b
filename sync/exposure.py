"""What may listen beyond this host: the receiver's well-known tokens and loopback checks.

The demo connection's token (`demo-token`) and the placeholder in `.env.example` are published in
this repository, so a receiver that accepts one of them is open to anyone who can reach it. Such a
receiver may only listen on loopback; every start path (`make run`, gunicorn's config for compose)
asks `public_token_problem` before it binds.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable

from sync.config import Settings

# Tokens anyone can read in this repository: the demo's default and .env.example's placeholder.
WELL_KNOWN_TOKENS = ("demo-token", "change-me-long-random")


def is_loopback(host: str) -> bool:
    """True for addresses only this host can reach (127.0.0.0/8, ::1, localhost); "" and 0.0.0.0 are not."""
    host = host.strip().strip("[]")
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def well_known_token_connections(settings: Settings) -> list[str]:
    """Connections that accept a published token (all of them for the built-in demo configuration)."""
    if settings.demo:
        return sorted(settings.connections)
    return sorted(cid for cid, conn in settings.connections.items()
                  if any(token.reveal() in WELL_KNOWN_TOKENS for token in conn.webhook.tokens))


def public_token_problem(settings: Settings, hosts: Iterable[str]) -> str | None:
    """Why the receiver must not listen on these hosts with these settings, or None when it may."""
    public = [host or "0.0.0.0" for host in hosts if not is_loopback(host)]
    exposed = well_known_token_connections(settings)
    if not public or not exposed:
        return None
    what = ("the built-in demo configuration (SYNC_CONFIG is unset)" if settings.demo
            else f"connection(s) {', '.join(exposed)} accept a token published in this repository")
    return (f"refusing to listen on {', '.join(public)}: {what}, so anyone who reaches the receiver could "
            "send webhooks. Bind to 127.0.0.1, or set SYNC_CONFIG to a connections file with secret tokens.")
