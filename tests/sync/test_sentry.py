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
