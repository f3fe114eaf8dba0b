"""Pure mapping for the organisation ↔ debtor flow (no I/O; unit-tested with plain dicts).

Both sides are projected onto the same logical fields, in *Uniconta's* value space (address
split into three lines, country as the enum name, currency upper-case, lengths within
Uniconta's limits), so the three-way merge compares like with like. Values a side cannot
express are reported as *problems* and left out of both projections for that sync, so nothing
is overwritten with a guess.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from sync.config import OrganisationFlow
from sync.countries import Countries

# Logical field → Uniconta Debtor property.
UNICONTA_FIELDS: dict[str, str] = {
    "name": "Name", "address1": "Address1", "address2": "Address2", "address3": "Address3",
    "postcode": "ZipCode", "city": "City", "country": "Country", "cvr": "CompanyRegNo", "phone": "Phone",
    "currency": "Currency", "vat_group": "Vat", "invoice_email": "InvoiceEmail",
}
# Logical field → standard webCRM Organisation property (the others come from `source_fields`).
WEBCRM_STANDARD = {"name": "OrganisationName", "address": "OrganisationAddress", "postcode": "OrganisationPostCode",
                   "city": "OrganisationCity", "country": "OrganisationCountry"}
OPTIONAL = ("cvr", "phone", "currency", "vat_group", "invoice_email")
ADDRESS_LINES = ("address1", "address2", "address3")
# Uniconta → webCRM, shown only (one-way): setting key in `shown_fields` → Debtor property.
SHOWN = {"ean": "EAN", "payment_terms": "Payment", "debtor_group": "Group"}

# Uniconta's maximum lengths. Account 20 and Name 100 are confirmed (uniconta-api.md §2); the others
# are the sandbox's assumptions, used so a too-long value is a decision of ours, not a 400.
ACCOUNT_LIMIT = 20
LIMITS = {"Name": 100, "Address1": 60, "Address2": 60, "Address3": 60, "ZipCode": 20, "City": 50,
          "Phone": 40, "CompanyRegNo": 20, "Vat": 10, "InvoiceEmail": 255}
# Free text is cut at the limit (journaled); identifiers are never cut (a cut CVR or e-mail is wrong
# data): a too-long identifier is a problem shown to the user and the field is not synced.
TRUNCATED = frozenset({"Name", "Address1", "Address2", "Address3", "City"})

# Status texts are English (docs/flows/organisations.md) and fit webCRM's 50-character custom fields.
STATUS_PREFIX = "Uniconta: "
STATUS_MAX = 50
LABELS = {"name": "name", "address": "address", "postcode": "postcode", "city": "city", "country": "country",
          "cvr": "CVR", "phone": "phone", "currency": "currency", "vat_group": "VAT group",
          "invoice_email": "invoice e-mail"}
_CURRENCY = re.compile(r"^[A-Z]{3}$")


def text(value: Any) -> str:
    """A field value as trimmed text; None (Uniconta leaves nulls out) is ""."""
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


@dataclass
class Mapped:
    """One side's projection: values by logical field, plus what could not be mapped."""

    values: dict[str, str] = field(default_factory=dict)
    missing: list[str] = field(default_factory=list)        # required fields (setting names) that are empty
    problems: dict[str, str] = field(default_factory=dict)  # logical field → text for the user
    notes: list[dict[str, Any]] = field(default_factory=list)  # decisions to journal when the value is written

    def fields(self) -> set[str]:
        return set(self.values)


def synced_fields(cfg: OrganisationFlow) -> tuple[str, ...]:
    """The logical fields this connection syncs: the standard ones and every configured source."""
    optional = tuple(f for f in OPTIONAL if cfg.source_fields.get(f))
    return ("name", *ADDRESS_LINES, "postcode", "city", "country", *optional)


def webcrm_field(cfg: OrganisationFlow, logical: str) -> str:
    """The webCRM property of a logical field (address lines all live in OrganisationAddress)."""
    if logical in ADDRESS_LINES:
        return WEBCRM_STANDARD["address"]
    return WEBCRM_STANDARD.get(logical) or cfg.source_fields[logical]


def _lines(address: str) -> list[str]:
    return [line.strip() for line in address.replace("\r", "\n").split("\n") if line.strip()]


def split_address(address: str) -> tuple[list[str], dict[str, Any] | None]:
    """webCRM's `\\n`-separated address → at most three lines (blank lines dropped).

    A fourth and further line are joined into the third with ", " (journaled) rather than lost.
    """
    lines = _lines(address)
    note = None
    if len(lines) > 3:
        note = {"kind": "address-lines-joined", "lines": len(lines), "into": "Address3"}
        lines = [*lines[:2], ", ".join(lines[2:])]
    return lines, note


def _limit(prop: str, logical: str, value: str, mapped: Mapped) -> str | None:
    limit = LIMITS.get(prop)
    if limit is None or len(value) <= limit:
        return value
    if prop in TRUNCATED:
        mapped.notes.append({"kind": "truncated", "field": prop, "length": len(value), "limit": limit})
        return value[:limit].rstrip()
    label = LABELS.get(logical, logical)
    mapped.problems[logical] = f"{label} too long ({len(value)} > {limit})"
    return None


def map_webcrm(org: Mapping[str, Any], cfg: OrganisationFlow, countries: Countries) -> Mapped:
    """An organisation's synced fields in Uniconta's value space, with what is missing or unmappable."""
    mapped = Mapped()
    fields = synced_fields(cfg)
    raw: dict[str, str] = {}
    for logical in fields:
        if logical in ADDRESS_LINES:
            continue
        raw[logical] = text(org.get(webcrm_field(cfg, logical)))
    lines, note = split_address(text(org.get(WEBCRM_STANDARD["address"])))
    if note:
        mapped.notes.append(note)
    for logical in cfg.required_fields:
        empty = not lines if logical == "address" else not raw.get(logical)
        if empty and logical not in mapped.missing:
            mapped.missing.append(logical)
    for index, logical in enumerate(ADDRESS_LINES):
        value = _limit(UNICONTA_FIELDS[logical], logical, lines[index] if index < len(lines) else "", mapped)
        if value is not None:
            mapped.values[logical] = value
    for logical, value in raw.items():
        prop = UNICONTA_FIELDS[logical]
        if logical == "country":
            if not value:
                mapped.values[logical] = ""
                continue
            enum = countries.to_uniconta(value)
            if enum is None:
                mapped.problems[logical] = f"unknown country '{value}'"
            else:
                mapped.values[logical] = enum
            continue
        if logical == "currency":
            value = value.upper()
            if value and not _CURRENCY.match(value):
                mapped.problems[logical] = f"currency '{value}' is not a 3-letter code"
                continue
        limited = _limit(prop, logical, value, mapped)
        if limited is not None:
            mapped.values[logical] = limited
    return mapped


def map_uniconta(debtor: Mapping[str, Any], cfg: OrganisationFlow) -> dict[str, str]:
    """A debtor's synced fields (already in Uniconta's value space)."""
    values: dict[str, str] = {}
    for logical in synced_fields(cfg):
        value = text(debtor.get(UNICONTA_FIELDS[logical]))
        if logical == "country":
            value = Countries.canonical_enum(value) if value else ""
        elif logical == "currency":
            value = value.upper()
        values[logical] = value
    return values


def uniconta_changes(changes: Mapping[str, str]) -> dict[str, Any]:
    """Logical changes → Debtor properties (an empty value is sent as null: Uniconta's "not set")."""
    return {UNICONTA_FIELDS[k]: (v if v != "" else None) for k, v in changes.items()}


def webcrm_changes(changes: Mapping[str, str], org: Mapping[str, Any], cfg: OrganisationFlow,
                   countries: Countries) -> tuple[dict[str, str], dict[str, str]]:
    """Logical changes coming from Uniconta → (webCRM property values, problems).

    Address lines replace only the lines that changed, so a fourth line the user keeps in webCRM
    (joined into Address3 on the way out) survives a change of Address1.
    """
    out: dict[str, str] = {}
    problems: dict[str, str] = {}
    if any(k in changes for k in ADDRESS_LINES):
        original = _lines(text(org.get(WEBCRM_STANDARD["address"])))
        lines, _note = split_address(text(org.get(WEBCRM_STANDARD["address"])))
        lines = [*lines, "", "", ""][:3]
        for index, logical in enumerate(ADDRESS_LINES):
            if logical in changes:
                lines[index] = changes[logical]
        if len(original) > 3 and "address3" not in changes:
            lines = [*lines[:2], *original[2:]]  # the user's own lines 3.. stay as they are
        out[WEBCRM_STANDARD["address"]] = "\n".join(line for line in lines if line)
    for logical, value in changes.items():
        if logical in ADDRESS_LINES:
            continue
        if logical == "country" and value:
            name = countries.to_webcrm(value)
            if name is None:
                problems[logical] = f"no webCRM name for country '{value}'"
                continue
            value = name
        out[webcrm_field(cfg, logical)] = value
    return out, problems


def uniconta_insert_body(values: Mapping[str, str]) -> dict[str, Any]:
    """The Debtor properties of a new debtor (empty values left out: Uniconta's defaults apply)."""
    return {UNICONTA_FIELDS[k]: v for k, v in values.items() if v != ""}


def is_customer(org: Mapping[str, Any], cfg: OrganisationFlow) -> bool:
    value = text(org.get(cfg.trigger_field)).casefold()
    return bool(value) and value in {k.strip().casefold() for k in cfg.trigger_keywords}


def shown_values(debtor: Mapping[str, Any] | None, cfg: OrganisationFlow) -> dict[str, str]:
    """webCRM property → value for the fields that show Uniconta's EAN, payment terms and group."""
    return {prop: (text(debtor.get(SHOWN[key])) if debtor is not None else "")
            for key, prop in cfg.shown_fields.items() if key in SHOWN}


def next_free_account(prefix: str, start: int, used: Iterable[str]) -> tuple[str, int]:
    """The first `prefix + n` (n ≥ start) not in `used`; returns (account, n)."""
    taken = set(used)
    n = start
    while f"{prefix}{n}" in taken:
        n += 1
    return f"{prefix}{n}", n


def check_account(account: str) -> str | None:
    """Why `account` cannot be a Uniconta debtor number, or None if it can."""
    if len(account) > ACCOUNT_LIMIT:
        return f"debtor number too long ({len(account)} > {ACCOUNT_LIMIT})"
    return None


def missing_text(missing: Iterable[str]) -> str:
    return "missing " + ", ".join(LABELS.get(m, m) for m in missing)


def status_text(account: str | None = None, missing: Iterable[str] = (), problems: Iterable[str] = (),
                state: str = "") -> str:
    """The short status shown in webCRM, e.g. "Uniconta: missing CVR, postcode" (≤ 50 characters).

    `state` replaces the standard text (e.g. "debtor 10001 was deleted"). The full lists are in the
    record's journal; the status is cut with "…" when it would not fit the field.
    """
    parts: list[str] = []
    missing = list(missing)
    if state:
        parts.append(state)
    elif account:
        parts.append(f"debtor {account}")
    if missing:
        parts.append(missing_text(missing))
    parts.extend(problems)
    message = STATUS_PREFIX + "; ".join(parts)
    if len(message) > STATUS_MAX:
        message = message[:STATUS_MAX - 1].rstrip(" ,;") + "…"
    return message
