"""Local simulator of Uniconta's HTTP APIs: the Entities API and OData feed of odata.uniconta.com,
plus Change-URL webhooks. See docs/sandbox-uniconta.md."""

from __future__ import annotations

from sandbox.uniconta.app import create_app

__all__ = ["create_app"]
