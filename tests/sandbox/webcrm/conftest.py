"""Fixtures for the webCRM sandbox tests.

Every app made here is checked at teardown: no API call answered 500 (the call log counts statuses),
and the test client itself refuses any 500 (admin routes included).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask.testing import FlaskClient

from sandbox.webcrm.app import create_app
from tests.support.http import LiveServer, WebhookSink

AUTH_CODE = "sandbox-token"


class NoServerErrorClient(FlaskClient):
    """A test client that fails the test on any 500 (bad input must never crash the sandbox)."""

    def open(self, *args: Any, **kwargs: Any):  # type: ignore[override]
        response = super().open(*args, **kwargs)
        assert response.status_code != 500, f"500 from the sandbox: {response.get_data(as_text=True)}"
        return response


def make_app(**options: Any):
    options.setdefault("auth_codes", f"{AUTH_CODE}=Integration")
    options.setdefault("token_lifetime", 3600)
    options.setdefault("rate_limit", 0)
    app = create_app(**options)
    app.test_client_class = NoServerErrorClient
    return app


def close_app(app) -> None:
    sandbox = app.extensions["sandbox"]
    try:
        counters = sandbox.calls.counters()
        assert counters.get("status:500", 0) == 0, f"the sandbox answered 500: {sandbox.calls.entries()}"
    finally:
        sandbox.hooks.stop()


@pytest.fixture
def app() -> Iterator[Any]:
    app = make_app()
    yield app
    close_app(app)


@pytest.fixture
def client(app) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def token(client) -> str:
    response = client.post("/Auth/ApiLogin", data={"authCode": AUTH_CODE})
    assert response.status_code == 200
    return response.json["AccessToken"]


class Api:
    """The test client with the Bearer header added."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def _call(self, method: str, path: str, **kwargs: Any):
        headers = {**self.headers, **kwargs.pop("headers", {})}
        return self.client.open(path, method=method, headers=headers, **kwargs)

    def get(self, path: str, **kwargs: Any):
        return self._call("GET", path, **kwargs)

    def post(self, path: str, **kwargs: Any):
        return self._call("POST", path, **kwargs)

    def put(self, path: str, **kwargs: Any):
        return self._call("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs: Any):
        return self._call("DELETE", path, **kwargs)

    def patch(self, path: str, **kwargs: Any):
        return self._call("PATCH", path, **kwargs)

    # shortcuts
    def create(self, plural: str, body: dict) -> int:
        response = self.post(f"/{plural}", json=body)
        assert response.status_code == 200, response.get_data(as_text=True)
        return response.json

    def org(self, name: str = "Østergaard Smed ApS", **extra: Any) -> int:
        return self.create("Organisations", {"OrganisationName": name, **extra})

    def delivery(self, org_id: int, **extra: Any) -> int:
        return self.create("Deliveries", {"DeliveryOrganisationId": org_id, **extra})


@pytest.fixture
def api(client, token) -> Api:
    return Api(client, token)


# -- real HTTP ------------------------------------------------------------------------------------
@pytest.fixture
def live_factory() -> Iterator[Any]:
    servers: list[LiveServer] = []

    def start(**options: Any) -> LiveServer:
        server = LiveServer(make_app(**options))
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.close()
        close_app(server.app)


Receiver = WebhookSink  # records every outgoing hook delivery


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    r = Receiver()
    yield r
    r.close()


@pytest.fixture
def app_factory() -> Iterator[Any]:
    """make(**options) -> a fresh app (closed and checked for 500s at teardown)."""
    apps: list[Any] = []

    def make(**options: Any):
        app = make_app(**options)
        apps.append(app)
        return app

    yield make
    for app in apps:
        close_app(app)


@pytest.fixture
def api_factory() -> Any:
    """Api(client, token) for an app made by app_factory."""

    def make(app) -> Api:
        client = app.test_client()
        response = client.post("/Auth/ApiLogin", data={"authCode": AUTH_CODE})
        assert response.status_code == 200
        return Api(client, response.json["AccessToken"])

    return make
