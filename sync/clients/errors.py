"""API client errors: one hierarchy for both systems, split on what the caller should do.

Everything the clients raise is an `ApiError`, and every `ApiError` is either `Transient`
(retry later; `retryable = True`) or `Permanent` (retrying cannot help). `translate()` is the
only place that turns an HTTP response or a transport exception into one of these classes.

Error texts never contain secrets: bodies are masked (known secrets of the client plus
anything that looks like a token, password or auth code) before they are trimmed, and paths
carry no query string.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Iterable
from email.utils import parsedate_to_datetime
from typing import Any, ClassVar
from urllib.parse import quote, quote_plus

import requests

BODY_LIMIT = 500
MASK = "***"
_MASK_MARGIN = 1000

__all__ = [
    "AmbiguousMatch",
    "ApiError",
    "AuthError",
    "Conflict",
    "InvalidResponse",
    "NotFound",
    "Permanent",
    "RateLimited",
    "Throttled",
    "Transient",
    "masked_body",
    "redact",
    "translate",
]


class ApiError(Exception):
    """A call to webCRM or Uniconta failed; attributes say where and why (never with secrets)."""

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        message: str = "",
        *,
        system: str = "",
        method: str = "",
        path: str = "",
        status: int | None = None,
        body: str = "",
        code: str | None = None,
        field: str | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.system = system
        self.method = method
        self.path = path
        self.status = status
        self.body = body
        self.code = code
        self.field = field
        self.retry_after = retry_after

    def __str__(self) -> str:
        where = " ".join(part for part in (self.system, self.method, self.path) if part)
        parts = [where or type(self).__name__]
        parts.append(f"HTTP {self.status}" if self.status is not None else "no response")
        if self.code:
            parts.append(self.code)
        if self.field:
            parts.append(f"field={self.field}")
        detail = self.message or self.body[:200]
        text = " ".join(parts) + (f": {detail}" if detail else "")
        if self.retry_after is not None:
            text += f" (retry after {self.retry_after:.1f} s)"
        return _one_line(text)


class Transient(ApiError):
    """Connection error, timeout, 408 or 5xx: the same call may succeed later."""

    retryable = True


class RateLimited(Transient):
    """The API answered 429; wait `retry_after` seconds (None if the API did not say)."""


class Throttled(Transient):
    """Our own rate limiter refused the call before it was sent; `retry_after` is set."""


class Permanent(ApiError):
    """A 4xx or a validation error: sending the same request again will fail again."""


class NotFound(Permanent):
    """404, or Uniconta ErrorCode CouldNotFind.

    With Uniconta, `field` names a *referenced* record that is missing (e.g. `Item` on an order
    line); without `field` the addressed record or company itself is missing.
    """


class Conflict(Permanent):
    """409, or Uniconta ErrorCode RecordExists / KeyExists: the record already exists."""


class AmbiguousMatch(Permanent):
    """A lookup that must find at most one record found several (not an HTTP status)."""


class AuthError(Permanent):
    """401/403 that survived one re-login, or a rejected login: fix the credentials."""


class InvalidResponse(Permanent):
    """A 2xx (or 3xx) answer we cannot use: unparseable body, wrong shape, endless paging."""


# Uniconta ErrorCodes that decide the class whatever HTTP status carries them: proxies and
# possibly the real REST API put any non-`Succes` result in a 400, 422 or 500 (uniconta-api.md
# §4 "HTTP errors"), but these names are facts about the data, not about the server's health.
# Every other code falls back to the status (so `Exception`/`SQLException` on a 5xx stays
# Transient, `FieldCannotBeBlank` on a 400 is Permanent).
_DEFINITE_CODES: dict[str, type[ApiError]] = {
    "CouldNotFind": NotFound,
    "RecordExists": Conflict,
    "KeyExists": Conflict,
    "NoRights": AuthError,
}

_STATUS_CLASSES: dict[int, type[ApiError]] = {
    401: AuthError,
    403: AuthError,
    404: NotFound,
    408: Transient,
    409: Conflict,
    429: RateLimited,
}


def translate(
    source: requests.Response | BaseException,
    *,
    system: str,
    method: str,
    path: str,
    secrets: Iterable[str] = (),
    login: bool = False,
) -> ApiError:
    """Map a failed HTTP response or a transport exception to an `ApiError` subclass.

    `secrets` are the client's own credentials, masked wherever they might be echoed.
    `login=True` marks the credential exchange itself: a 400/401/403 there means the
    credentials were rejected, which is an `AuthError` rather than a plain `Permanent`.
    """
    secrets = tuple(secrets)
    path = redact(path, secrets)
    if isinstance(source, BaseException):
        return _from_exception(source, system=system, method=method, path=path, secrets=secrets)

    status = source.status_code
    text = _text(source)
    parsed = _json_or_none(text)
    body = masked_body(text, secrets)
    code = field = message = None
    body_retry_after = None
    if isinstance(parsed, dict):
        code = _str_or_none(_get(parsed, "ErrorCode"))
        field = _str_or_none(_get(parsed, "Field"))
        message = _str_or_none(
            _get(parsed, "Message") or _get(parsed, "ErrorDescription") or _get(parsed, "error_description")
        )
        # webCRM's 429 body: {"RetryAfterSeconds": 14, "Message": ..., "Type": "TooManyRequestsException"}
        # (webcrm-api.md §9); the header is preferred, the body field is the fallback.
        body_retry_after = _seconds(_get(parsed, "RetryAfterSeconds"))
    retry_after = _retry_after_header(source.headers.get("Retry-After"))
    if retry_after is None:
        retry_after = body_retry_after

    cls: type[ApiError]
    if status == 429:
        cls = RateLimited
    elif login and status in (400, 401, 403):
        cls = AuthError
    elif code in _DEFINITE_CODES:
        cls = _DEFINITE_CODES[code]
    elif status in _STATUS_CLASSES:
        cls = _STATUS_CLASSES[status]
    elif status >= 500:
        cls = Transient
    elif status >= 400:
        cls = Permanent
    else:  # 1xx/3xx reach us only as "not a success we understand"
        cls = InvalidResponse
        message = message or f"unexpected HTTP {status}"
    # Everything taken from the body is masked raw, before whitespace is normalised; only the
    # classification above looks at the unmasked ErrorCode.
    return cls(
        _masked_line(message, secrets, 300) or "",
        system=system,
        method=method,
        path=path,
        status=status,
        body=body,
        code=_masked_line(code, secrets, 100),
        field=_masked_line(field, secrets, 100),
        retry_after=retry_after,
    )


def _from_exception(exc: BaseException, *, system: str, method: str, path: str, secrets: tuple[str, ...]) -> ApiError:
    # requests' messages embed the full URL (query included), so strip queries and mask.
    detail = _strip_queries(masked_body(str(exc), secrets, 300))[:200]
    kind = type(exc).__name__
    if isinstance(exc, requests.Timeout):
        cls: type[ApiError] = Transient
        message = f"timeout ({kind}): {detail}"
    elif isinstance(exc, requests.ConnectionError | requests.exceptions.ChunkedEncodingError):
        cls = Transient
        message = f"connection error ({kind}): {detail}"
    else:  # InvalidURL, TooManyRedirects, ...: a bug or bad configuration
        cls = Permanent
        message = f"request failed ({kind}): {detail}"
    return cls(message, system=system, method=method, path=path)


# --- masking ---------------------------------------------------------------------------------

_SECRET_WORDS = r"(?:token|password|passwd|pwd|authcode|auth_code|secret|apikey|api_key|authorization|signature)"  # noqa: S105 - a pattern, not a password
# "AccessToken": "x", authCode=x, 'password': 'x', refresh_token=x ... in JSON, forms, queries, logs.
# Bounded quantifiers and the look-behind (a key starts a word) keep this linear on long bodies.
_KEY_VALUE = re.compile(
    r"""(?P<key>["']?(?<![\w\-])[\w\-]{0,40}?""" + _SECRET_WORDS + r"""[\w\-]{0,40}["']?\s*[:=]\s*)"""
    r"""(?P<value>"(?:[^"\\]|\\.)*"|'[^']*'|[^\s&,;}\]"']+)""",
    re.IGNORECASE,
)
_SCHEME_CREDENTIALS = re.compile(r"\b(Bearer|Basic)\s+[\w\-.~+/=]+", re.IGNORECASE)
_QUERY_VALUE = re.compile(r"([?&][^=\s&#\"'<>?]{1,100}=)[^&\s#\"'<>]*")
_QUERY = re.compile(r"\?[^\s\"'<>)]*")


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    """Mask known secrets (also URL- and JSON-escaped) and anything that looks like one."""
    if not text:
        return text
    variants: set[str] = set()
    for secret in secrets:
        if secret and len(secret) >= 4:  # shorter "secrets" would mask half the text
            variants.update(
                {
                    secret,
                    quote(secret, safe=""),
                    quote_plus(secret),
                    json.dumps(secret)[1:-1],
                    json.dumps(secret, ensure_ascii=False)[1:-1],
                }
            )
    for variant in sorted(variants, key=len, reverse=True):
        text = text.replace(variant, MASK)
    text = _SCHEME_CREDENTIALS.sub(lambda m: f"{m.group(1)} {MASK}", text)
    text = _KEY_VALUE.sub(_mask_value, text)
    return _QUERY_VALUE.sub(lambda m: m.group(1) + MASK, text)


def masked_body(text: str, secrets: Iterable[str] = (), limit: int = BODY_LIMIT) -> str:
    """The first `limit` characters of a body, masked.

    Only a bounded head is masked (masking is the slow part); the margin makes sure a secret that
    starts before the cut is masked whole rather than surviving in part.
    """
    return redact(text[: limit + _MASK_MARGIN], secrets)[:limit]


def _mask_value(match: re.Match[str]) -> str:
    value = match.group("value")
    quote_char = value[0] if value[:1] in ("'", '"') else ""
    return match.group("key") + quote_char + MASK + quote_char


def _strip_queries(text: str) -> str:
    return _QUERY.sub("?…", text)


# --- small parsers -----------------------------------------------------------------------------


def _text(response: requests.Response) -> str:
    try:
        return response.text or ""
    except Exception:  # undecodable body: status code is all we need
        return ""


def _json_or_none(text: str) -> Any:
    if not text or text.lstrip()[:1] not in ("{", "["):
        return None
    try:
        return json.loads(text)
    except ValueError:
        return None


def _get(data: dict[str, Any], key: str) -> Any:
    """Case-insensitive key lookup: neither API documents the casing of its error bodies."""
    if key in data:
        return data[key]
    lowered = key.lower()
    for name, value in data.items():
        if isinstance(name, str) and name.lower() == lowered:
            return value
    return None


def _str_or_none(value: Any) -> str | None:
    if value is None or value == "":
        return None
    return str(value)


def _masked_line(value: str | None, secrets: Iterable[str], limit: int) -> str | None:
    if value is None:
        return None
    return _one_line(masked_body(value, secrets, limit)) or None


def _seconds(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, seconds) if seconds == seconds else None  # NaN guard


def _retry_after_header(value: str | None) -> float | None:
    """`Retry-After` is delta-seconds or an HTTP-date (RFC 9110 §10.2.3)."""
    if not value:
        return None
    seconds = _seconds(value.strip())
    if seconds is not None:
        return seconds
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None or when.tzinfo is None:
        return None
    return max(0.0, when.timestamp() - time.time())


def _one_line(text: str) -> str:
    return " ".join(text.split())
