"""Run-time settings of the webCRM sandbox, kept in `store.meta["webcrm"]` (so a state file keeps them).

    auth_codes      {authCode: API user display name}
    token_lifetime  seconds an access token lives (ExpiresIn)
    rate_limit      requests per rolling minute per authCode; 0 = off
    quirks          see QUIRKS
    fields          FieldsMetadata: {EntityType: {Property: {Id, Label, DisplayType, ...}}}
    linked_setup    {"1": "Varenummer", ...}: the enabled catalogue Data fields and their labels
    inactive_users  [UserId, ...] left out of /Users/AllActive

A state saved before a quirk existed gets that quirk's default when it is loaded (`fill_quirks`).
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from typing import Any

from sandbox.webcrm.auth import parse_auth_codes
from sandbox.webcrm.entities import DEFAULT_LINKED_LABELS

META_KEY = "webcrm"
DEFAULT_AUTH_CODES = {"sandbox-token": "Integration"}
DEFAULT_TOKEN_LIFETIME = 3600
DEFAULT_RATE_LIMIT = 250
DEFAULT_UI_USER = "Anna Jensen"
DEFAULT_PATCH_MAX_ITEMS = 1000
MAX_PATCH_MAX_ITEMS = 100_000
PATCH_RESULTS = ("strict", "inserted_ids_only", "empty", "no_content")
LINKED_DATA_QUERY_ROWS = ("both", "dto", "linked_data_item")

# name -> (default, allowed values or a type)
QUIRKS: dict[str, tuple[Any, Any]] = {
    # What POST /Organisations answers. The Swagger declares no body; S6 (2026) reads
    # data.OrganisationId from it. int = bare id, none = empty 200, object = {"OrganisationId": id}.
    "organisation_post_returns": ("int", ("int", "none", "object")),
    # Same for POST /Users (also no body in the 2020 Swagger).
    "user_post_returns": ("int", ("int", "none", "object")),
    # Serve "" strings as null (the Swagger does not allow null; a real instance might send it).
    "empty_strings_as_null": (False, bool),
    # A quotation-line write also bumps the parent delivery/opportunity's UpdatedAt/By and fires its
    # Update hook when the order totals change [U].
    "line_change_touches_parent": (True, bool),
    # Offset of the timestamps the sandbox writes (0 = UTC "+00:00"; 120 = Danish summer time "+02:00").
    "timestamp_offset_minutes": (0, int),
    # RetryAfterSeconds / Retry-After of a 429 injected through the faults API.
    "injected_retry_after": (1, int),
    # What the collection PATCH (bulk upsert) answers; the Swagger says only "string[]: assigned ids
    # for inserted X and error messages" [D S3], the mapping to the items is unconfirmed [U].
    # strict = one string per item in input order (the id, or the error message);
    # inserted_ids_only = the ids of inserted items and the error messages, nothing for updates;
    # empty = 200 without a body; no_content = 204.
    "patch_result": ("strict", PATCH_RESULTS),
    # Most items one PATCH accepts (more: 400). Unknown for the real API [U]; the default mirrors the
    # maximum page Size. The option --patch-max-items sets the default.
    "patch_max_items": (DEFAULT_PATCH_MAX_ITEMS, int),
    # The columns of a `SELECT * FROM LinkedData` row. S4 maps such a row to LinkedDataItemDto
    # (LinkedDataItemId, ...) and then GETs the catalogue item by id [O S4]; whether the row also has
    # the QuotationLineLinkedDataItem... names is unknown [U]. both = both spellings (default);
    # dto = QuotationLineLinkedDataItemDto only (as GET); linked_data_item = LinkedDataItemDto only.
    "linked_data_query_row": ("both", LINKED_DATA_QUERY_ROWS),
}


@dataclass
class Options:
    """create_app options after env fallbacks; `reset` restores these, not later admin changes."""

    auth_codes: dict[str, str] = field(default_factory=lambda: dict(DEFAULT_AUTH_CODES))
    token_lifetime: int = DEFAULT_TOKEN_LIFETIME
    rate_limit: int = DEFAULT_RATE_LIMIT
    patch_max_items: int = DEFAULT_PATCH_MAX_ITEMS

    @classmethod
    def build(cls, auth_codes: Any = None, token_lifetime: Any = None, rate_limit: Any = None,
              patch_max_items: Any = None) -> Options:
        env = os.environ.get
        codes_raw = auth_codes if auth_codes is not None else env("WEBCRM_SANDBOX_AUTH_CODES")
        lifetime_raw = token_lifetime if token_lifetime is not None else env("WEBCRM_SANDBOX_TOKEN_LIFETIME")
        limit_raw = rate_limit if rate_limit is not None else env("WEBCRM_SANDBOX_RATE_LIMIT")
        patch_raw = patch_max_items if patch_max_items is not None else env("WEBCRM_SANDBOX_PATCH_MAX_ITEMS")
        opts = cls()
        if codes_raw not in (None, ""):
            opts.auth_codes = parse_auth_codes(codes_raw)
        if lifetime_raw not in (None, ""):
            opts.token_lifetime = to_int("token_lifetime", lifetime_raw, low=1)
        if limit_raw not in (None, ""):
            opts.rate_limit = to_int("rate_limit", limit_raw, low=0)
        if patch_raw not in (None, ""):
            opts.patch_max_items = to_int("patch_max_items", patch_raw, low=1, high=MAX_PATCH_MAX_ITEMS)
        return opts


def to_int(name: str, value: Any, *, low: int | None = None, high: int | None = None) -> int:
    if isinstance(value, bool):
        raise ValueError(f"{name}: must be an integer")
    if isinstance(value, float) and math.isfinite(value) and value.is_integer():
        value = int(value)
    if isinstance(value, str):
        try:
            value = int(value.strip())
        except ValueError:
            raise ValueError(f"{name}: must be an integer, got {value!r}") from None
    if not isinstance(value, int):
        raise ValueError(f"{name}: must be an integer")
    if low is not None and value < low:
        raise ValueError(f"{name}: must be >= {low}")
    if high is not None and value > high:
        raise ValueError(f"{name}: must be <= {high}")
    return value


def default_settings(opts: Options) -> dict:
    return {
        "auth_codes": dict(opts.auth_codes),
        "token_lifetime": opts.token_lifetime,
        "rate_limit": opts.rate_limit,
        "quirks": default_quirks(opts),
        "fields": {},
        "linked_setup": dict(DEFAULT_LINKED_LABELS),
        "inactive_users": [],
    }


def default_quirks(opts: Options) -> dict[str, Any]:
    quirks = {name: default for name, (default, _) in QUIRKS.items()}
    quirks["patch_max_items"] = opts.patch_max_items
    return quirks


def fill_quirks(settings: dict, opts: Options) -> None:
    """Give a loaded state the quirks it lacks (it was saved before they existed)."""
    quirks = settings.get("quirks")
    if not isinstance(quirks, dict):
        settings["quirks"] = default_quirks(opts)
    elif len(quirks) < len(QUIRKS):
        for name, value in default_quirks(opts).items():
            quirks.setdefault(name, value)


INT_QUIRK_RANGES = {"timestamp_offset_minutes": (-900, 900), "patch_max_items": (1, MAX_PATCH_MAX_ITEMS)}


def check_quirks(changes: Any) -> dict:
    """Validated partial quirk changes; ValueError("<quirk>: <why>")."""
    if not isinstance(changes, dict):
        raise ValueError("body: must be a JSON object of quirks")
    clean: dict[str, Any] = {}
    for name, value in changes.items():
        if name not in QUIRKS:
            raise ValueError(f"{name}: unknown quirk (known: {', '.join(QUIRKS)})")
        _, allowed = QUIRKS[name]
        if allowed is bool:
            if not isinstance(value, bool):
                raise ValueError(f"{name}: must be true or false")
        elif allowed is int:
            low, high = INT_QUIRK_RANGES.get(name, (0, 3600))
            value = to_int(name, value, low=low, high=high)
        elif value not in allowed:
            raise ValueError(f"{name}: must be one of {', '.join(allowed)}")
        clean[name] = value
    return clean
