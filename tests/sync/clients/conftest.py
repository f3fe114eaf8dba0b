"""Fixtures for the API client tests: a `responses` mock, a fake clock, recorded observer calls."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from types import SimpleNamespace
from typing import Any

import pytest
import responses

from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient

CONST = SimpleNamespace(
    webcrm_url="https://api.webcrm.test",
    uniconta_url="https://odata.uniconta.test",
    auth_code="0f8c6c1e-4a1b-4f7e-9d2a-authcode0001",
    token="eyJhbGciOi.token-one.sig1",
    token2="eyJhbGciOi.token-two.sig2",
    company=1234,
    user="sandbox",
    password="Pa55-w0rd-secret!",
)


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self, start: float = 1000.0) -> None:
        self.now = start

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


@pytest.fixture
def const() -> SimpleNamespace:
    return CONST


@pytest.fixture
def rsps() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield mock


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def observed() -> list[tuple[Any, ...]]:
    return []


@pytest.fixture
def add_login(rsps: responses.RequestsMock) -> Callable[..., None]:
    """Register one ApiLogin answer (call again to queue further answers in order)."""

    def add(token: str = CONST.token, expires_in: Any = 3600, status: int = 200, **extra: Any) -> None:
        body = {
            "AccessToken": token,
            "RefreshToken": "refresh-" + token,
            "ExpiresIn": expires_in,
            "TokenType": "Bearer",
            "Error": None,
            "ErrorDescription": None,
            "IsError": False,
            **extra,
        }
        rsps.add("POST", CONST.webcrm_url + "/Auth/ApiLogin", json=body, status=status)

    return add


@pytest.fixture
def webcrm(add_login: Callable[..., None], clock: FakeClock, observed: list[tuple[Any, ...]]) -> WebcrmClient:
    add_login()
    return WebcrmClient(
        CONST.webcrm_url, CONST.auth_code, clock=clock, page_size=3, observer=lambda *a: observed.append(a)
    )


@pytest.fixture
def uniconta(rsps: responses.RequestsMock, observed: list[tuple[Any, ...]]) -> UnicontaClient:
    return UnicontaClient(
        CONST.uniconta_url, CONST.company, CONST.user, CONST.password, observer=lambda *a: observed.append(a)
    )


def login_calls(rsps: responses.RequestsMock) -> list[Any]:
    return [c for c in rsps.calls if c.request.url.endswith("/Auth/ApiLogin")]


@pytest.fixture
def logins(rsps: responses.RequestsMock) -> Callable[[], list[Any]]:
    return lambda: login_calls(rsps)
