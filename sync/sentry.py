"""Sentry, only when SENTRY_DSN is set: Flask and Celery integrations, secrets scrubbed.

Called from the Flask app factory and from Celery's worker start, so both
report with the same release and the same scrubbing.
"""

from __future__ import annotations

from importlib import metadata
from typing import Any

import sentry_sdk

from sync.secrets import Secret, mask_query, scrub_data


def release() -> str:
    try:
        return f"webcrm-uniconta-sync@{metadata.version('webcrm-uniconta-sync')}"
    except metadata.PackageNotFoundError:
        return "webcrm-uniconta-sync@dev"


def before_send(event: dict[str, Any], hint: dict[str, Any]) -> dict[str, Any] | None:
    """Scrub secrets from everything in the event (messages, frames' vars, request, breadcrumbs).

    The request's query string is masked by parameter name first: a Uniconta Change-URL call carries
    the webhook token there, and the Flask integration copies the query into every receiver event.
    """
    request = event.get("request")
    if isinstance(request, dict) and isinstance(request.get("query_string"), str):
        request["query_string"] = mask_query(request["query_string"])
    return scrub_data(event)  # type: ignore[no-any-return]


def init_sentry(dsn: Secret | None, *, transport: Any = None, environment: str | None = None) -> bool:
    """Initialise Sentry when a DSN is configured; returns whether it was initialised."""
    if not dsn:
        return False
    from sentry_sdk.integrations.celery import CeleryIntegration
    from sentry_sdk.integrations.flask import FlaskIntegration

    options: dict[str, Any] = {
        "dsn": dsn.reveal(),
        "release": release(),
        "environment": environment,
        "integrations": [FlaskIntegration(), CeleryIntegration(monitor_beat_tasks=False)],
        "before_send": before_send,
        "before_breadcrumb": lambda crumb, hint: scrub_data(crumb),
        "max_request_body_size": "never",
        "include_local_variables": False,
    }
    if transport is not None:
        options["transport"] = transport
    sentry_sdk.init(**options)
    return True
