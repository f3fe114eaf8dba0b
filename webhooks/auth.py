"""Webhook authentication, failing closed.

Every call needs one of the connection's secret tokens (query `token=` or
header `X-Webhook-Token`), compared in constant time against all of them.
When signing secrets are configured, a Standard Webhooks signature over the
raw body is required as well (±5 min, several secrets for rotation).
"""

from __future__ import annotations

import hmac
from collections.abc import Mapping

from standardwebhooks import Webhook

from sync.config import WebhookSettings

TOKEN_HEADER = "X-Webhook-Token"  # noqa: S105 - a header name, not a secret


def token_ok(given: str | None, settings: WebhookSettings) -> bool:
    """True if `given` equals one of the tokens; checks all of them so timing reveals nothing."""
    if not given:
        return False
    supplied = given.encode()
    ok = False
    for token in settings.tokens:
        ok |= hmac.compare_digest(supplied, token.reveal().encode())
    return ok


def signature_ok(body: bytes, headers: Mapping[str, str], settings: WebhookSettings) -> bool:
    """True if no signing secret is configured, or the Standard Webhooks signature verifies."""
    if not settings.signing_secrets:
        return True
    wanted = {k.lower(): v for k, v in headers.items()
              if k.lower() in ("webhook-id", "webhook-timestamp", "webhook-signature")}
    for secret in settings.signing_secrets:
        try:
            Webhook(secret.reveal()).verify(body, wanted, json_parse=False)
            return True
        except Exception:  # noqa: S112 - malformed headers raise assorted errors: all mean "not verified"
            continue
    return False
