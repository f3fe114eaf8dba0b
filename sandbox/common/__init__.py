"""Shared, API-agnostic machinery of the webCRM and Uniconta sandboxes.

Store (tables + JSON persistence), Faults, CallLog, WebhookDispatcher, Sandbox (fault injection,
call log and the /_sandbox admin API on a Flask app), run_cli, and `fake` (Danish test data).
"""

from __future__ import annotations

from sandbox.common.admin import Sandbox, is_admin_path, json_body, json_object, run_cli
from sandbox.common.calls import CallLog
from sandbox.common.faults import Faults
from sandbox.common.hooks import WebhookDispatcher
from sandbox.common.store import Store

__all__ = [
    "CallLog",
    "Faults",
    "Sandbox",
    "Store",
    "WebhookDispatcher",
    "is_admin_path",
    "json_body",
    "json_object",
    "run_cli",
]
