"""Fixtures for the Uniconta sandbox tests: the app, an authenticated client, live servers, a receiver."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient

from tests.sandbox.uniconta.uniconta_helpers import Api, Receiver, make_app
from tests.support.http import LiveServer


@pytest.fixture(autouse=True)
def _no_uniconta_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in list(os.environ):
        if name.startswith("UNICONTA_SANDBOX_"):
            monkeypatch.delenv(name)


@pytest.fixture
def app() -> Iterator[Flask]:
    app = make_app()
    yield app
    app.extensions["sandbox"].hooks.stop()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    rec = Receiver()
    yield rec
    rec.close()


@pytest.fixture
def live() -> Iterator[Callable[..., str]]:
    """Start the app on a real port: `url = live(**options)`."""
    started: list[LiveServer] = []

    def start(**options: Any) -> str:
        server = LiveServer(make_app(**options))
        started.append(server)
        return server.url

    yield start
    for server in started:
        server.close()
        server.app.extensions["sandbox"].hooks.stop()
