"""Uniconta HTTP client: REST-like Entities API and OData feed; facts cited from docs/reference/uniconta-api.md."""

from __future__ import annotations

import base64
import math
import re
from collections.abc import Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any
from urllib.parse import urljoin, urlsplit, urlunsplit

import requests
from requests.auth import HTTPBasicAuth

from sync.clients.errors import AmbiguousMatch
from sync.clients.http import DEFAULT_MAX_PAGES, DEFAULT_TIMEOUT, BeforeRequest, HttpClient, Observer

# Entity names are C# class names (DebtorClient, InvItemClientUser, ...) and property names are
# C# identifiers (§1b); anything else could reshape the URL.
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class UnicontaClient(HttpClient):
    """CRUD through `/api/Entities/...` and filtered reads through `/odata/<CompanyId>/...`.

    Auth is HTTP Basic with a dedicated server user (§1b). Records are plain dicts keyed by
    property name (`Account`, `Name`, `RowId`, ...). Each HTTP call counts against the
    company's daily call budget (§4), so prefer one OData read over many `find()` calls.

    Every method may raise:
        Transient: connection error, timeout, 408 or 5xx (`RateLimited` for 429, `Throttled`
            when `before_request` refused the call, e.g. the batch share of the daily budget).
        AuthError: 401/403 or ErrorCode NoRights (wrong user/password, missing rights).
        NotFound: 404 or ErrorCode CouldNotFind; with `.field` set it is a *referenced* record
            (e.g. `Item` on an order line) that is missing.
        Conflict: 409 or ErrorCode RecordExists / KeyExists (duplicate key on insert).
        Permanent: other 4xx, e.g. FieldCannotBeBlank, CouldNotSave, AccountIsMissing,
            CouldNotDeleteRecordThatIsReferred (`.code` and `.field` say which).
        InvalidResponse: a 2xx body we cannot use, or OData paging that does not end.
    """

    system = "uniconta"

    def __init__(
        self,
        base_url: str,
        company_id: int | str,
        username: str,
        password: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        odata_page_size: int | None = None,
        before_request: BeforeRequest | None = None,
        observer: Observer | None = None,
        session: requests.Session | None = None,
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
        company = str(company_id).strip()
        if not company.isdigit():
            raise ValueError("company_id must be numeric")
        if not username or not password:
            raise ValueError("username and password are required")
        if odata_page_size is not None and odata_page_size < 1:
            raise ValueError("odata_page_size must be positive")
        self.company_id = company
        self.odata_page_size = odata_page_size
        self._password = password
        # The Entities API takes the company in the user name: "00<CompanyId>/<user>" (§1b). The
        # padding is unconfirmed (§6.12), so a username that already contains "/" is used as given.
        if "/" in username:
            entities_user, plain_user = username, username.split("/", 1)[1]
        else:
            entities_user, plain_user = f"00{company}/{username}", username
        self._entities_user, self._odata_user = entities_user, plain_user
        self._entities_auth = HTTPBasicAuth(entities_user, password)
        # OData names the company in its path and works with the plain user name (§1b).
        self._odata_auth = HTTPBasicAuth(plain_user, password)
        self._origin = _origin(self.base_url)

    def __repr__(self) -> str:
        return f"UnicontaClient({self.base_url!r}, company={self.company_id})"

    def _secrets(self) -> tuple[str, ...]:
        # The password, and the Basic credentials as they travel (base64 of "user:password").
        return (
            self._password,
            _basic_token(self._entities_user, self._password),
            _basic_token(self._odata_user, self._password),
        )

    # --- Entities API (CRUD) ---

    def _entities(
        self, method: str, path: str, *, params: dict[str, Any] | None = None, json_body: Any = None
    ) -> requests.Response:
        return self._send(method, path, params=params, json_body=json_body, auth=self._entities_auth)

    def insert(self, entity: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Insert a record; returns the stored record (RowId filled) or None on 204/empty (§1b: 200 or 204).

        Raises Conflict for a duplicate key.
        """
        path = f"/api/Entities/Insert/{_identifier(entity)}"
        return _one_record(self._json(self._entities("POST", path, json_body=record), "POST", path, required=False))

    def insert_list(self, entity: str, records: list[dict[str, Any]]) -> list[dict[str, Any]] | None:
        """Insert several records in one call (one call against the daily budget); None without a body."""
        path = f"/api/Entities/InsertList/{_identifier(entity)}"
        body = self._json(self._entities("POST", path, json_body=list(records)), "POST", path, required=False)
        return [r for r in body if isinstance(r, dict)] if isinstance(body, list) else None

    def update(self, entity: str, record: dict[str, Any]) -> dict[str, Any] | None:
        """Replace a record identified by RowId or key. Send the *whole* record: omitted fields may be
        reset, and null properties are left out of reads (§1b "Update semantics").
        """
        path = f"/api/Entities/Update/{_identifier(entity)}"
        return _one_record(self._json(self._entities("PUT", path, json_body=record), "PUT", path, required=False))

    def delete(self, entity: str, record: dict[str, Any]) -> None:
        """Delete the record (RowId or key in the body). A debtor with orders or postings fails with
        Permanent code CouldNotDeleteRecordThatIsReferred; block it instead (§4).
        """
        self._entities("DELETE", f"/api/Entities/Delete/{_identifier(entity)}", json_body=record)

    def find(self, entity: str, prop: str, value: str | int) -> list[dict[str, Any]]:
        """Records whose `prop` equals `value` (`?Name=&Value=`, one property only, §1b)."""
        if isinstance(value, bool) or not isinstance(value, str | int):
            raise TypeError("find() compares against a str or int value")
        path = f"/api/Entities/{_identifier(entity)}"
        response = self._entities("GET", path, params={"Name": _identifier(prop), "Value": str(value)})
        body = self._json(response, "GET", path)
        if isinstance(body, dict) and isinstance(body.get("value"), list):
            body = body["value"]
        if not isinstance(body, list):
            raise self._invalid("expected a JSON array", "GET", path, response)
        return [r for r in body if isinstance(r, dict)]

    def get_one(self, entity: str, prop: str, value: str | int) -> dict[str, Any] | None:
        """The single record whose `prop` equals `value`, or None. Raises AmbiguousMatch for several."""
        records = self.find(entity, prop, value)
        if len(records) > 1:
            raise AmbiguousMatch(
                f"{len(records)} records match {prop}",
                system=self.system,
                method="GET",
                path=f"/api/Entities/{entity}",
                field=prop,
            )
        return records[0] if records else None

    # --- OData (reads) ---

    def odata(
        self,
        entity: str,
        *,
        filter: str | None = None,
        orderby: str | None = None,
        top: int | None = None,
    ) -> Iterator[dict[str, Any]]:
        """Records of an entity, following `@odata.nextLink` (§1b). Build filters with `odata_literal()`,
        e.g. `filter=f"Account eq {odata_literal('1001')}"`.
        """
        path = f"/odata/{self.company_id}/{_identifier(entity)}"
        params: dict[str, Any] = {}
        if filter:
            params["$filter"] = filter
        if orderby:
            params["$orderby"] = orderby
        if top is not None:
            if isinstance(top, bool) or not isinstance(top, int) or top < 0:
                raise ValueError("top must be a non-negative int")
            params["$top"] = top
        headers = {"Accept": "application/json"}  # XML otherwise (§1b)
        if self.odata_page_size:
            # Standard OData page-size preference; servers that do not know it ignore it.
            headers["Prefer"] = f"odata.maxpagesize={self.odata_page_size}"
        return self._odata_pages(path, params, headers, top)

    def _odata_pages(
        self, path: str, params: dict[str, Any], headers: dict[str, str], top: int | None
    ) -> Iterator[dict[str, Any]]:
        url: str | None = None
        seen: set[str] = set()
        yielded = 0
        for _ in range(self.max_pages):
            call_path = self._path_of(url) if url else path
            response = self._send(
                "GET", call_path, url=url, params=None if url else params, headers=headers, auth=self._odata_auth
            )
            body = self._json(response, "GET", call_path)
            items, next_link = _odata_page(body)
            if items is None:
                raise self._invalid("expected an OData collection", "GET", call_path, response)
            for item in items:
                if top is not None and yielded >= top:
                    return
                yield item
                yielded += 1
            if not next_link or not items or (top is not None and yielded >= top):
                return
            url = self._follow(next_link, call_path)
            if url in seen:
                raise self._invalid("OData next link repeats; paging does not end", "GET", call_path)
            seen.add(url)
        raise self._invalid(f"OData paging did not end after {self.max_pages} pages", "GET", path)

    def _follow(self, link: str, path: str) -> str:
        url = urljoin(self.base_url + "/", link)
        origin = _origin(url)
        # A server behind a TLS proxy may hand out http:// links to itself: upgrade, never downgrade.
        if origin[0] == "http" and origin[2] == 80 and self._origin[0] == "https":
            origin = ("https", origin[1], 443)
        # Our Basic credentials go with the request: never follow a link to another origin.
        if origin != self._origin:
            raise self._invalid("OData next link points to another host", "GET", path)
        # Same origin: send it exactly where base_url points (scheme, host spelling, port).
        return urlunsplit(urlsplit(self.base_url)[:2] + urlsplit(url)[2:])


def odata_literal(value: str | int | float | Decimal | bool | date | datetime | None) -> str:
    """An OData v3 literal for `$filter`: `'x'` with `''` escaping, `datetime'...'`, true/false/null.

    Aware datetimes are converted to UTC (the sandbox stores UTC; the real server's zone is
    unconfirmed, §6); naive ones are written as given, i.e. taken to be UTC already. A `date`
    becomes midnight.
    """
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, datetime):
        if value.tzinfo is not None and value.utcoffset() is not None:
            value = value.astimezone(UTC)
        return "datetime'" + value.strftime("%Y-%m-%dT%H:%M:%S") + "'"
    if isinstance(value, date):
        return f"datetime'{value.isoformat()}T00:00:00'"
    if isinstance(value, int | Decimal):
        return str(value)
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("no OData literal for NaN or infinity")
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    raise TypeError(f"no OData literal for {type(value).__name__}")


def _origin(url: str) -> tuple[str, str, int]:
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    try:
        port = parts.port
    except ValueError:
        port = -1
    return scheme, (parts.hostname or "").lower(), port or (443 if scheme == "https" else 80)


def _basic_token(user: str, password: str) -> str:
    return base64.b64encode(f"{user}:{password}".encode()).decode()


def _identifier(name: str) -> str:
    if not isinstance(name, str) or not _IDENTIFIER.match(name):
        raise ValueError(f"not a Uniconta entity or property name: {name!r}")
    return name


def _one_record(body: Any) -> dict[str, Any] | None:
    if isinstance(body, dict):
        return body
    if isinstance(body, list) and len(body) == 1 and isinstance(body[0], dict):
        return body[0]
    return None


def _odata_page(body: Any) -> tuple[list[Any] | None, str | None]:
    """Items and next link of an OData JSON page (v4 `value`/`@odata.nextLink`, v3 and v2 spellings)."""
    if isinstance(body, list):
        return body, None
    if not isinstance(body, dict):
        return None, None
    if isinstance(body.get("d"), dict):  # OData v2 verbose JSON
        body = body["d"]
        items = body.get("results")
        link = body.get("__next")
    else:
        items = body.get("value")
        link = body.get("@odata.nextLink") or body.get("odata.nextLink")
    if not isinstance(items, list):
        return None, None
    return items, link if isinstance(link, str) and link else None
