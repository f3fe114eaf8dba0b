"""webCRM REST API client (https://api.webcrm.com); facts cited from docs/reference/webcrm-api.md."""

from __future__ import annotations

import json
import logging
import math
import re
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any, Literal
from urllib.parse import quote

import requests

from sync.clients.errors import AuthError, masked_body
from sync.clients.http import DEFAULT_MAX_PAGES, DEFAULT_TIMEOUT, BeforeRequest, HttpClient, Observer

log = logging.getLogger(__name__)

# Tokens live 1 hour (§2). Re-login 5 minutes early, but never later than half-way through a
# (possibly short) lifetime, so a token is not used right up to its expiry.
TOKEN_MARGIN = 300.0
DEFAULT_TOKEN_LIFETIME = 3600.0
MAX_PAGE_SIZE = 1000  # Swagger maximum for Size (§3 Paging)

HOOK_EVENT_TYPES = ("Create", "Update", "Delete")  # §8

# "Organisations", "QuotationLines/LinkedData", "Persons/Hooks": letters only, so an entity can
# never smuggle "..", a query string or another host into the URL.
_ENTITY = re.compile(r"^[A-Za-z]+(?:/[A-Za-z]+)*$")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")

# Name of the id property in a create response object, where it is not "<singular>Id".
_ID_FIELDS = {
    "QuotationLines/LinkedData": "QuotationLineLinkedDataItemId",
}
PATCH_ERROR_LIMIT = 300  # characters of one PATCH error message kept (masked)
_DIGITS = re.compile(r"^\s*\d{1,10}\s*$")

PatchStatus = Literal["ok", "failed", "unknown"]


@dataclass(frozen=True)
class PatchOutcome:
    """What a collection PATCH said about one item sent, at the same position as the item.

    status "ok": the record was written and `id` is its id (the new one for an insert).
    status "failed": webCRM refused the item; `error` is its message (masked, one line).
    status "unknown": the answer did not say (a shorter or reordered list, an empty or unparseable
        body). The item may or may not have been written: read it back before sending it again.
    """

    status: PatchStatus
    id: int | None = None
    error: str | None = None


class WebcrmClient(HttpClient):
    """Generic access to webCRM entities by path, with login, paging and id tolerance.

    `entity` arguments are collection paths as in the API: "Organisations", "Persons", "Users",
    "Deliveries", "Opportunities", "QuotationLines", "QuotationLines/LinkedData".
    The client is safe to share between threads (the token is guarded by a lock).

    Every method may raise:
        Transient: connection error, timeout, 408 or 5xx (`RateLimited` for 429, with
            `retry_after`; `Throttled` when `before_request` refused the call).
        AuthError: the auth code was rejected, or a 401/403 survived one re-login.
        NotFound: 404 (unknown id).
        Conflict: 409.
        Permanent: any other 4xx, e.g. a validation error (the body is in `.body`).
        InvalidResponse: a 2xx body we cannot use, or paging that does not end.
    """

    system = "webcrm"

    def __init__(
        self,
        base_url: str,
        auth_code: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        page_size: int = 500,
        before_request: BeforeRequest | None = None,
        observer: Observer | None = None,
        session: requests.Session | None = None,
        clock: Callable[[], float] = time.monotonic,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        super().__init__(
            base_url,
            timeout=timeout,
            before_request=before_request,
            observer=observer,
            session=session,
            max_pages=max_pages,
        )
        if not auth_code:
            raise ValueError("auth_code is required")
        self.page_size = _page_size(page_size)
        self._auth_code = auth_code
        self._clock = clock
        self._token: str | None = None
        self._refresh_token: str | None = None
        self._renew_at = 0.0
        self._lock = threading.Lock()

    def __repr__(self) -> str:
        return f"WebcrmClient({self.base_url!r})"

    def _secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self._auth_code, self._token, self._refresh_token) if s)

    # --- authentication (§2) ---

    def login(self) -> None:
        """Exchange the auth code for an access token now (normally done lazily)."""
        with self._lock:
            self._login()

    def _login(self) -> None:
        started = self._clock()
        # Form field authCode; urlencoded is observed to work (S5, S6) like multipart (§2).
        response = self._send("POST", "/Auth/ApiLogin", data={"authCode": self._auth_code}, login=True)
        body = self._json(response, "POST", "/Auth/ApiLogin")
        token = body.get("AccessToken") if isinstance(body, dict) else None
        if not isinstance(token, str) or not token or (isinstance(body, dict) and body.get("IsError")):
            detail = ""
            if isinstance(body, dict):
                detail = " ".join(str(body.get(k) or "") for k in ("Error", "ErrorDescription"))
            raise AuthError(
                " ".join(f"login returned no access token {masked_body(detail, self._secrets(), 200)}".split()),
                system=self.system,
                method="POST",
                path="/Auth/ApiLogin",
                status=response.status_code,
            )
        lifetime = _positive_number(body.get("ExpiresIn")) or DEFAULT_TOKEN_LIFETIME
        self._token = token
        refresh = body.get("RefreshToken")
        self._refresh_token = refresh if isinstance(refresh, str) and refresh else None
        self._renew_at = started + max(lifetime - TOKEN_MARGIN, lifetime / 2)

    def _current_token(self) -> str:
        with self._lock:
            if self._token is None or self._clock() >= self._renew_at:
                self._login()
            assert self._token is not None
            return self._token

    def _drop_token(self, token: str) -> None:
        with self._lock:
            if self._token == token:  # another thread may already have logged in again
                self._token = None

    def _call(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None
    ) -> requests.Response:
        """An authenticated call; on 401/403 log in once more and repeat it once (§9, S5)."""
        token = self._current_token()
        try:
            return self._send(
                method, path, params=params, json_body=json_body, headers={"Authorization": f"Bearer {token}"}
            )
        except AuthError as err:
            if err.status not in (401, 403):
                raise
            log.info("webcrm %s %s answered %s; logging in again", method, path, err.status)
            self._drop_token(token)
        token = self._current_token()
        return self._send(
            method, path, params=params, json_body=json_body, headers={"Authorization": f"Bearer {token}"}
        )

    def _get_json(self, path: str, params: dict[str, Any] | None = None) -> Any:
        return self._json(self._call("GET", path, params=params), "GET", path)

    def _get_object(self, path: str) -> dict[str, Any]:
        body = self._get_json(path)
        if not isinstance(body, dict):
            raise self._invalid("expected a JSON object", "GET", path)
        return body

    def _get_pages(
        self, path: str, params: dict[str, Any] | None = None, page_size: int | None = None
    ) -> Iterator[dict[str, Any]]:
        size = _page_size(page_size) if page_size is not None else self.page_size

        def fetch(number: int) -> Any:
            return self._get_json(path, {**(params or {}), "Page": number, "Size": size})

        return self._paginate(fetch, size, method="GET", path=path)

    # --- generic entity access ---

    def get(self, entity: str, id: int) -> dict[str, Any]:
        """One record, e.g. `get("Organisations", 145)`. Raises NotFound for an unknown id."""
        return self._get_object(f"{_entity(entity)}/{_id(id)}")

    def iter_all(self, entity: str, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Every record of a collection, page by page (the list endpoints cannot filter, §3)."""
        return self._get_pages(_entity(entity), page_size=page_size)

    def create(self, entity: str, dto: dict[str, Any]) -> int | None:
        """Create a record and return its new id, or None if the API did not say which.

        Most POSTs return the id as a bare int; `POST /Organisations` declares no body in the
        Swagger but returned `{"OrganisationId": ...}` to S6, so the id is unconfirmed there
        (§3, §12.4). None means: look the record up by its ERP key before writing again.
        """
        path = _entity(entity)
        response = self._call("POST", path, json_body=dto)
        new_id = _created_id(entity, response.text if response.content else "")
        if new_id is None and response.content:
            log.warning("webcrm POST %s: could not read the new id from the %s-byte response", path, len(response.content))
        return new_id

    def update(self, entity: str, id: int, dto: dict[str, Any]) -> None:
        """Replace a record. Send the full DTO (GET, modify, PUT): omitted fields may be cleared (§7)."""
        self._call("PUT", f"{_entity(entity)}/{_id(id)}", json_body=dto)

    def delete(self, entity: str, id: int) -> None:
        """Delete a record; only QuotationLines, LinkedData, Products and Hooks allow it (§7)."""
        self._call("DELETE", f"{_entity(entity)}/{_id(id)}")

    def patch(self, entity: str, dtos: Sequence[dict[str, Any]]) -> list[PatchOutcome]:
        """Update or insert many records in ONE call: `PATCH /<entity>` with the DTOs as an array (§7).

        A DTO whose id field (`OrganisationId`, ...) is > 0 updates that record, one with id 0 inserts.
        Send whole DTOs, as for `update`: an update may clear omitted fields. Returns one
        `PatchOutcome` per DTO, in the order sent. The answer's format is unconfirmed (§12.3), so it
        is read tolerantly:

        * a list of strings as long as `dtos`: position by position, a decimal string is the
          record's id ("ok") and anything else an error message ("failed"). If an id contradicts
          the id a DTO was sent with, positions cannot be trusted and the rule below applies;
        * any other list (shorter, e.g. only the ids of inserted records): a DTO sent with id N is
          "ok" when N is in the list; everything else is "unknown" (inserted ids and error messages
          cannot be told apart from each other's items);
        * an empty (200/204), non-JSON or non-list answer: every item "unknown".

        An empty `dtos` sends nothing. HTTP errors raise as for every other call (nothing can be
        said about the items then, except after a 4xx that the whole batch was refused).
        """
        path = _entity(entity)
        items = list(dtos)
        for item in items:
            if not isinstance(item, dict):
                raise TypeError("patch() takes a sequence of DTO dicts")
        if not items:
            return []
        sent_ids = [_sent_id(entity, item) for item in items]
        response = self._call("PATCH", path, json_body=items)
        body = self._json(response, "PATCH", path, required=False)
        if not isinstance(body, list):
            if response.content:
                log.warning("webcrm PATCH %s: the %s-byte answer is not a JSON list; %d items unknown",
                            path, len(response.content), len(items))
            return [PatchOutcome("unknown") for _ in items]
        if len(body) == len(items):
            positional = [self._patch_entry(entry, sent) for entry, sent in zip(body, sent_ids, strict=True)]
            known = [o for o in positional if o is not None]
            if len(known) == len(items):
                return known
            log.warning("webcrm PATCH %s: an id in the answer contradicts the item at its position; "
                        "matching by id instead", path)
        else:
            log.warning("webcrm PATCH %s: %d answers for %d items; matching by id", path, len(body), len(items))
        return _match_by_id(body, sent_ids)

    def _patch_entry(self, entry: Any, sent_id: int) -> PatchOutcome | None:
        """The outcome of one positional answer; None when it names another record than was sent."""
        answered = _answer_id(entry)
        if answered is not None:
            if sent_id > 0 and answered != sent_id:
                return None
            return PatchOutcome("ok", id=answered)
        if isinstance(entry, str) and entry.strip() and not _DIGITS.match(entry):
            text = " ".join(masked_body(entry, self._secrets(), PATCH_ERROR_LIMIT).split())
            return PatchOutcome("failed", error=text)
        return PatchOutcome("unknown")

    # --- queries and special endpoints ---

    def query(self, script: str, *, page_size: int | None = None) -> Iterator[dict[str, Any]]:
        """Rows of a `/Queries` SQL script (§5), paged. Build literals with `sql_literal()`.

        A projection of non-unique columns could yield two identical full pages, which the pager
        takes for a server that repeats itself; select an id column to be safe.
        """
        if not script.strip():
            raise ValueError("empty query script")
        return self._get_pages("/Queries", {"script": script}, page_size)

    def find_organisations_by_update_dates(self, start: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        """Organisations with start <= OrganisationUpdatedAt < end (§4), a polling fallback to /Queries.

        Naive datetimes are taken as UTC.
        """
        path = f"/Organisations/FindByUpdateDates/{_path_time(start)}/{_path_time(end)}"
        return self._get_pages(path)

    def delivery_lines(self, delivery_id: int) -> list[dict[str, Any]]:
        """The QuotationLines of a delivery (their QuotationLineOpportunityId is the delivery id, §6)."""
        return list(self._get_pages(f"/Deliveries/{_id(delivery_id)}/QuotationLines"))

    def active_users(self) -> list[dict[str, Any]]:
        """`GET /Users/AllActive`: candidates for responsible / salesperson mapping."""
        return list(self._get_pages("/Users/AllActive"))

    def linked_setup(self) -> dict[str, Any]:
        """Which QuotationLineLinkedDataItemData1..9 fields the catalogue uses, and their labels (§6)."""
        body = self._get_json("/QuotationLines/LinkedSetup")
        if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
            return body[0]
        if not isinstance(body, dict):
            raise self._invalid("expected a JSON object", "GET", "/QuotationLines/LinkedSetup")
        return body

    def fields_metadata(self, entity: str) -> list[dict[str, Any]]:
        """Custom-field labels and dropdown values; `entity` is the singular type, e.g. "Organisation"."""
        path = f"/FieldsMetadata{_entity(entity)}"
        body = self._get_json(path)
        if not isinstance(body, list):
            raise self._invalid("expected a JSON array", "GET", path)
        return body

    def auth_info(self) -> dict[str, Any]:
        """`GET /Auth`: who the API user is (its display name is what webCRM writes to `...UpdatedBy`)."""
        return self._get_object("/Auth")

    # --- hooks (§8) ---

    def hooks(self, entity: str) -> list[dict[str, Any]]:
        """This token's hooks on an entity, e.g. `hooks("Organisations")`."""
        return list(self._get_pages(f"{_entity(entity)}/Hooks"))

    def create_hook(
        self, entity: str, target_url: str, event_type: str, filter: Iterable[str] = ("All",)
    ) -> int | None:
        """Register a hook (one per event type); returns its id (int64) if the API returned one."""
        if event_type not in HOOK_EVENT_TYPES:
            raise ValueError(f"event_type must be one of {HOOK_EVENT_TYPES}")
        if not target_url.startswith(("http://", "https://")):
            raise ValueError("target_url must be an absolute http(s) URL")
        dto = {"Id": 0, "TargetUrl": target_url, "EventType": event_type, "IsEnabled": True, "Filter": list(filter)}
        return self.create(f"{_entity(entity)[1:]}/Hooks", dto)

    def delete_hook(self, entity: str, hook_id: int) -> None:
        self._call("DELETE", f"{_entity(entity)}/Hooks/{_id(hook_id)}")


# --- module helpers ------------------------------------------------------------------------------


def sql_literal(value: str | int | Decimal | float | date | datetime) -> str:
    """A quoted literal for a `/Queries` script: `'` doubled (S6), control characters refused.

    Numbers are quoted too (the sandbox compares quoted numbers numerically); datetimes are
    written in UTC as `'YYYY-MM-DDTHH:MM:SSZ'`, a naive one being taken as UTC (as `parse_time`
    does).
    """
    if isinstance(value, bool) or value is None:
        raise TypeError("no SQL literal for bool or None; compare with the field's own text value")
    if isinstance(value, datetime):
        text = _utc_text(value)
    elif isinstance(value, date):
        text = value.isoformat()
    elif isinstance(value, int | Decimal):
        text = str(value)
    elif isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("no SQL literal for NaN or infinity")
        text = repr(value)
    elif isinstance(value, str):
        text = value
    else:
        raise TypeError(f"no SQL literal for {type(value).__name__}")
    if _CONTROL.search(text):
        raise ValueError("control characters are not allowed in a query literal")
    return "'" + text.replace("'", "''") + "'"


def parse_time(value: str | datetime | None) -> datetime | None:
    """An offset-aware datetime from a webCRM timestamp; None for empty and year-1 values.

    webCRM mixes offsets (`+00:00` and Danish local `+02:00`) and writes empty dates as
    `0001-01-01T00:00:00+00:00` (§3). A naive value is taken as UTC. Raises ValueError for text
    that is not ISO-8601.
    """
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    else:
        text = value.strip()
        if not text:
            return None
        parsed = datetime.fromisoformat(text)
    if parsed.year == 1:
        return None
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed


def _entity(entity: str) -> str:
    if not isinstance(entity, str) or not _ENTITY.match(entity):
        raise ValueError(f"not an entity path: {entity!r}")
    return "/" + entity


def _id(value: int | str) -> int:
    if isinstance(value, bool):
        raise TypeError("an id must be an int")
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    if not isinstance(value, int) or value < 0:
        raise ValueError(f"not a webCRM id: {value!r}")
    return value


def _page_size(size: int) -> int:
    if isinstance(size, bool) or not isinstance(size, int) or not 1 <= size <= MAX_PAGE_SIZE:
        raise ValueError(f"page_size must be 1..{MAX_PAGE_SIZE}")
    return size


def _positive_number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) and number > 0 else None


def _utc_text(value: datetime) -> str:
    if value.tzinfo is None or value.utcoffset() is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _path_time(value: datetime) -> str:
    # UTC "Z" avoids a "+" in the path; ":" is escaped for servers that refuse it in paths.
    return quote(_utc_text(value), safe="")


def _singular(word: str) -> str:
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith("s"):
        return word[:-1]
    return word


def _id_field(entity: str) -> str:
    if entity in _ID_FIELDS:
        return _ID_FIELDS[entity]
    last = entity.split("/")[-1]
    return "Id" if last == "Hooks" else _singular(entity.split("/")[0]) + "Id"


def _sent_id(entity: str, dto: dict[str, Any]) -> int:
    """The id a PATCH item was sent with (0 = an insert); the id field's name in any case."""
    wanted = _id_field(entity).lower()
    for key, value in dto.items():
        if isinstance(key, str) and key.lower() == wanted:
            if isinstance(value, bool):
                return 0
            if isinstance(value, str) and _DIGITS.match(value):
                return int(value)
            if isinstance(value, int):
                return max(value, 0)
            return 0
    return 0


def _answer_id(entry: Any) -> int | None:
    """An id in a PATCH answer: a decimal string (or, tolerantly, a JSON integer) > 0."""
    if isinstance(entry, bool):
        return None
    if isinstance(entry, int):
        return entry if entry > 0 else None
    if isinstance(entry, str) and _DIGITS.match(entry):
        value = int(entry)
        return value if value > 0 else None
    return None


def _match_by_id(body: list[Any], sent_ids: list[int]) -> list[PatchOutcome]:
    """Outcomes when the answer cannot be read by position: only updates whose id came back are known.

    An id sent k times counts only if it came back at least k times, so a lost update is never
    reported as written.
    """
    answered = Counter(i for i in (_answer_id(entry) for entry in body) if i is not None)
    sent = Counter(i for i in sent_ids if i > 0)
    return [
        PatchOutcome("ok", id=i) if i > 0 and answered[i] >= sent[i] else PatchOutcome("unknown")
        for i in sent_ids
    ]


def _created_id(entity: str, text: str) -> int | None:
    """The id in a create response: bare int, numeric string, object with <Entity>Id/Id, or nothing."""
    text = text.strip()
    if not text:
        return None
    try:
        body: Any = json.loads(text)
    except ValueError:
        body = text
    if isinstance(body, dict):
        lowered = {str(k).lower(): v for k, v in body.items()}
        for key in (_id_field(entity), "Id"):
            if key.lower() in lowered:
                body = lowered[key.lower()]
                break
        else:
            return None
    if isinstance(body, bool):
        return None
    if isinstance(body, str) and body.strip().isdigit():
        body = int(body.strip())
    if isinstance(body, float) and body.is_integer():
        body = int(body)
    if isinstance(body, int) and body > 0:
        return body
    return None
