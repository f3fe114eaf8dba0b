"""Sentry: off without a DSN; with one, events are captured locally and scrubbed."""

from __future__ import annotations

from typing import Any

import sentry_sdk
from sentry_sdk.transport import Transport

from sync.secrets import Secret
from sync.sentry import init_sentry, release


class CapturingTransport(Transport):
    def __init__(self, options: Any = None) -> None:
        super().__init__(options)
        self.envelopes: list[Any] = []

    def capture_envelope(self, envelope: Any) -> None:
        self.envelopes.append(envelope)


def test_not_initialised_without_dsn() -> None:
    assert init_sentry(None) is False


def test_events_are_scrubbed() -> None:
    transport = CapturingTransport()
    secret = Secret("very-secret-password-9")
    assert init_sentry(Secret("https://public@sentry.example/1"), transport=transport)
    try:
        try:
            raise ValueError(f"login failed for password={secret.reveal()} Authorization: Bearer tok.en.value")
        except ValueError as err:
            sentry_sdk.capture_exception(err)
        sentry_sdk.flush()
        payloads = [item.payload.json for env in transport.envelopes for item in env.items if item.payload.json]
        assert payloads, "no event captured"
        text = repr(payloads)
        assert "very-secret-password-9" not in text and "tok.en.value" not in text
        assert payloads[0]["release"] == release()
    finally:
        sentry_sdk.init()  # disable again for the other tests


def test_receiver_events_carry_no_webhook_token(redis_url: str, redis_client: Any) -> None:
    """A receiver failure during a Change-URL call: the token is in the URL, the message, the query and a header.

    The demo token is published, so it is never registered as a secret: only masking by parameter and
    header name keeps it out of the event (request data from the Flask integration included).
    """
    from dataclasses import replace

    from flask import request

    from sync.config import load_settings
    from webhooks.app import create_app

    token = "demo-token"
    transport = CapturingTransport()
    assert init_sentry(Secret("https://public@sentry.example/1"), transport=transport)
    try:
        app = create_app(replace(load_settings({}), redis_url=redis_url), enqueue=lambda event: None)

        @app.before_request
        def _fault() -> None:  # a bug while handling the call, whose message quotes the URL
            raise RuntimeError(f"cannot handle {request.url}")

        client = app.test_client()
        query = "CompanyId=1234&Table=InvItem&RowId=7&Action=update"
        for url in (f"/webhook/demo/invitems?{query}&token={token}", f"/webhook/demo/invitems?tok%65n={token}&{query}"):
            assert client.get(url, headers={"X-Webhook-Token": token, "Referer": url}).status_code == 500
        sentry_sdk.flush()
        events = [item.payload.json for env in transport.envelopes for item in env.items
                  if item.headers.get("type") == "event"]
        assert len(events) == 2
        assert all(e["request"]["url"].endswith("/webhook/demo/invitems") for e in events)
        assert "&token=***" in events[0]["request"]["query_string"]
        assert events[1]["request"]["query_string"].startswith("tok%65n=***&")
        assert "cannot handle http://localhost/webhook/demo/invitems?" in repr(events[0])
        assert token not in repr(events)
    finally:
        sentry_sdk.init()
