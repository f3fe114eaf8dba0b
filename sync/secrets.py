"""Secret values that cannot leak by accident, and the scrubber for logs and Sentry.

A `Secret` prints as `***`; only `.reveal()` gives the value, so a secret that
reaches a log line, an exception or `config show` by mistake stays masked.
Every revealed secret is also registered with `scrub()`, the last line of
defence for text that is about to leave the process.
"""

from __future__ import annotations

import re
import threading
from typing import Any
from urllib.parse import unquote_plus

MASK = "***"

_known: set[str] = set()
_known_lock = threading.Lock()
_known_pattern: re.Pattern[str] | None = None

# Credentials that may appear in text we did not build ourselves (URLs, headers, bodies),
# each with its replacement.
_PATTERNS: list[tuple[re.Pattern[str], str]] = [
    (re.compile(r"(?i)(authorization\s*[:=]\s*)(?:(?:bearer|basic)\s+)?[^\s,;\"']+"), r"\1" + MASK),
    (re.compile(r"(?i)\b(bearer|basic)\s+[A-Za-z0-9._~+/=-]{8,}"), r"\1 " + MASK),
    (re.compile(
        r"(?i)((?:[\w-]*token|authcode|password|passwd|secret|api[_-]?key|signature)[\"']?\s*[:=]\s*[\"']?)"
        r"[^\s&,;\"'}]+"), r"\1" + MASK),
    (re.compile(r"(://[^/\s:@]+:)[^@\s/]+@"), r"\1" + MASK + "@"),
    (re.compile(r"whsec_[A-Za-z0-9+/=]+"), MASK),
]

# One parameter of a URL's query (`?k=v`, `&k=v`, `;k=v`): the key is matched after percent-decoding,
# because Flask decodes it too (`?tok%65n=...` authenticates like `?token=...`).
_URL_PARAM = re.compile(r"(?P<lead>[?&;])(?P<key>[^=&;#?\s\"']+)=(?P<value>[^&;#\s\"']*)")


class Secret:
    """A configuration secret; masked in every representation."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value
        register(value)

    def reveal(self) -> str:
        return self._value

    def __bool__(self) -> bool:
        return bool(self._value)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)

    def __repr__(self) -> str:
        return "Secret('***')"

    def __str__(self) -> str:
        return MASK


def register(value: str) -> None:
    """Remember a secret value so `scrub()` masks it wherever it appears."""
    global _known_pattern
    if len(value) < 4:
        return
    with _known_lock:
        if value not in _known:
            _known.add(value)
            ordered = sorted(_known, key=len, reverse=True)
            _known_pattern = re.compile("|".join(re.escape(v) for v in ordered))


def forget(value: str) -> None:
    """Stop masking a value (the demo's published sandbox credentials, which are no secret and
    would otherwise mask the word "sandbox" in every log line)."""
    global _known_pattern
    with _known_lock:
        _known.discard(value)
        ordered = sorted(_known, key=len, reverse=True)
        _known_pattern = re.compile("|".join(re.escape(v) for v in ordered)) if ordered else None


def scrub(text: str) -> str:
    """Mask registered secrets and anything shaped like a credential (including secret-named URL parameters)."""
    if not text:
        return text
    pattern = _known_pattern
    if pattern is not None:
        text = pattern.sub(MASK, text)
    for rx, replacement in _PATTERNS:
        text = rx.sub(replacement, text)
    return _URL_PARAM.sub(_mask_param, text)


def mask_query(query: str) -> str:
    """A query string (without `?`) with the value of every secret-named parameter masked.

    Uniconta's Change URL can only carry the webhook token in the query, so every access log line and
    every error report that shows a request's query passes through this.
    """
    return _URL_PARAM.sub(_mask_param, "?" + query)[1:] if query else query


def _mask_param(match: re.Match[str]) -> str:
    if match["value"] and is_secret_name(unquote_plus(match["key"])):
        return f"{match['lead']}{match['key']}={MASK}"
    return match[0]


def scrub_data(value: Any) -> Any:
    """`scrub()` applied through dicts, lists and strings (for Sentry events and journal entries)."""
    if isinstance(value, str):
        return scrub(value)
    if isinstance(value, dict):
        return {k: (MASK if is_secret_name(k) else scrub_data(v)) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [scrub_data(v) for v in value]
    return value


def is_secret_name(key: Any) -> bool:
    """True for a field, header or parameter name that holds a credential (`token`, `X-Webhook-Token`...)."""
    return isinstance(key, str) and bool(
        re.search(r"(?i)(password|passwd|secret|token|authcode|authorization|api[_-]?key|cookie|signature)", key)
    )
