"""API clients for webCRM and Uniconta, and the errors they raise."""

from __future__ import annotations

from sync.clients.errors import (
    AmbiguousMatch,
    ApiError,
    AuthError,
    Conflict,
    InvalidResponse,
    NotFound,
    Permanent,
    RateLimited,
    Throttled,
    Transient,
)
from sync.clients.uniconta import UnicontaClient, odata_literal
from sync.clients.webcrm import PatchOutcome, WebcrmClient, parse_time, sql_literal

__all__ = [
    "AmbiguousMatch",
    "ApiError",
    "AuthError",
    "Conflict",
    "InvalidResponse",
    "NotFound",
    "PatchOutcome",
    "Permanent",
    "RateLimited",
    "Throttled",
    "Transient",
    "UnicontaClient",
    "WebcrmClient",
    "odata_literal",
    "parse_time",
    "sql_literal",
]
