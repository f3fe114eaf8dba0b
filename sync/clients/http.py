"""Shared HTTP layer of the API clients: session, timeouts, rate-limit hook, observer, errors, paging."""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from importlib import metadata
from types import TracebackType
from typing import Any, ClassVar
from urllib.parse import urlsplit

import requests

from sync.clients import patience
from sync.clients.errors import ApiError, InvalidResponse, Throttled, masked_body, translate

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT: tuple[float, float] = (3.05, 20.0)  # (connect, read) seconds
# Hard stop for any paged read: at 500 per page that is 5 million records, far beyond either
# system's size, so hitting it means the server does not end its pages.
DEFAULT_MAX_PAGES = 10_000

BeforeRequest = Callable[[], object]  # return value ignored (DailyBudget.acquire returns the count)
Observer = Callable[[str, str, "int | None", float], None]


def _version() -> str:
    try:
        return metadata.version("webcrm-uniconta-sync")
    except metadata.PackageNotFoundError:
        return "0.0.0"


USER_AGENT = f"webcrm-uniconta-sync/{_version()}"


class HttpClient:
    """Base of `WebcrmClient` and `UnicontaClient`; one `requests.Session` per client.

    Every HTTP call (logins and page fetches included) first calls `before_request()`, which may
    raise `Throttled`, and afterwards `observer(method, path, status | None, elapsed_ms)`, with the
    path never carrying a query string. Request bodies and headers are never logged or put into
    errors. Not safe for concurrent use from several threads unless the subclass says so.
    """

    system: ClassVar[str] = ""

    def __init__(
        self,
        base_url: str,
        *,
        timeout: float | tuple[float, float] = DEFAULT_TIMEOUT,
        before_request: BeforeRequest | None = None,
        observer: Observer | None = None,
        session: requests.Session | None = None,
        max_pages: int = DEFAULT_MAX_PAGES,
    ) -> None:
        if not base_url.startswith(("http://", "https://")):
            raise ValueError("base_url must be an absolute http(s) URL")
        self.base_url = base_url.rstrip("/")
        self._base_path = urlsplit(self.base_url).path
        self.timeout = timeout
        self.before_request = before_request
        self.observer = observer
        self.session = session or requests.Session()
        self.max_pages = max_pages

    # --- lifecycle ---

    def close(self) -> None:
        self.session.close()

    def __enter__(self) -> HttpClient:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- hooks for subclasses ---

    def _secrets(self) -> tuple[str, ...]:
        """Values that must never show up in an error (credentials, current tokens)."""
        return ()

    # --- the one HTTP call ---

    def _send(self, method: str, path: str, **kw: Any) -> requests.Response:
        """Send one request and return the 2xx response, or raise the mapped `ApiError`.

        `path` is relative to `base_url` and has no query (`params` carries it); `url` overrides
        the target for absolute links handed out by the server (OData next links). Inside
        `patience.waiting_out_rate_limits(...)` a refused call (429, our limiter) is sent again.
        """
        while True:
            try:
                return self._send_once(method, path, **kw)
            except ApiError as err:
                waiting = patience.current()
                if waiting is None or not waiting.wait_out(err):
                    raise

    def _send_once(
        self,
        method: str,
        path: str,
        *,
        url: str | None = None,
        params: dict[str, Any] | None = None,
        json_body: Any = None,
        data: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        auth: Any = None,
        login: bool = False,
    ) -> requests.Response:
        if self.before_request is not None:
            try:
                self.before_request()
            except Throttled as err:
                err.system, err.method, err.path = self.system, method, path
                raise
        send_headers = {"User-Agent": USER_AGENT, "Accept": "application/json"}
        send_headers.update(headers or {})
        status: int | None = None
        started = time.perf_counter()
        try:
            response = self.session.request(
                method,
                url or self.base_url + path,
                params=params,
                json=json_body,
                data=data,
                headers=send_headers,
                auth=auth,
                timeout=self.timeout,
                # A redirected POST silently turns into a GET in requests; neither API documents
                # redirects, so an unexpected 3xx is reported instead of followed.
                allow_redirects=False,
            )
            status = response.status_code
        except requests.RequestException as exc:
            # `from None`: requests' exception carries the full URL and the prepared request
            # (headers included); the translated error has everything worth keeping.
            raise translate(exc, system=self.system, method=method, path=path, secrets=self._secrets()) from None
        finally:
            self._observe(method, path, status, (time.perf_counter() - started) * 1000.0)
        if 200 <= status < 300:
            return response
        raise translate(
            response, system=self.system, method=method, path=path, secrets=self._secrets(), login=login
        )

    def _observe(self, method: str, path: str, status: int | None, elapsed_ms: float) -> None:
        if self.observer is None:
            return
        try:
            self.observer(method, path, status, elapsed_ms)
        except Exception:  # the journal must never break an API call
            log.warning("API call observer failed for %s %s %s", self.system, method, path, exc_info=True)

    def _path_of(self, url: str) -> str:
        """Path of an absolute URL relative to base_url, without query (for errors and observer)."""
        path = urlsplit(url).path
        if self._base_path and path.startswith(self._base_path):
            path = path[len(self._base_path) :]
        return path or "/"

    # --- bodies ---

    def _json(self, response: requests.Response, method: str, path: str, *, required: bool = True) -> Any:
        """The parsed JSON body; None for an empty body unless `required`."""
        text = response.text if response.content else ""
        if not text.strip():
            if required:
                raise self._invalid("empty body where JSON was expected", method, path, response)
            return None
        try:
            return json.loads(text)
        except ValueError:
            if required:
                raise self._invalid("body is not JSON", method, path, response) from None
            return None

    def _invalid(
        self, message: str, method: str, path: str, response: requests.Response | None = None
    ) -> InvalidResponse:
        body = ""
        if response is not None:
            body = masked_body(response.text if response.content else "", self._secrets())
        return InvalidResponse(
            message,
            system=self.system,
            method=method,
            path=path,
            status=response.status_code if response is not None else None,
            body=body,
        )

    # --- paging ---

    def _paginate(
        self, fetch_page: Callable[[int], Any], page_size: int, *, method: str, path: str
    ) -> Iterator[dict[str, Any]]:
        """Yield the items of numbered pages 1, 2, ... until the data ends.

        The end is an empty page or a short one; a page *longer* than `page_size` means the server
        ignores paging and has sent everything. A page identical to the previous one, or more than
        `max_pages` pages, means the server will never end: `InvalidResponse`.
        """
        previous: list[Any] | None = None
        for number in range(1, self.max_pages + 1):
            page = fetch_page(number)
            if not isinstance(page, list):
                raise self._invalid(f"page {number} is not a JSON array", method, path)
            if not page:
                return
            if page == previous:
                raise self._invalid(f"page {number} repeats page {number - 1}; paging does not end", method, path)
            yield from page
            if len(page) != page_size:
                return
            previous = page
        raise self._invalid(f"paging did not end after {self.max_pages} pages", method, path)
