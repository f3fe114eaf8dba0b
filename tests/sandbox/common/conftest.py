"""Fixtures for the sandbox/common tests: the demo app, a live server and a webhook receiver."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient

from sandbox.common import Sandbox
from tests.sandbox.common.sandbox_common_demo import create_app
from tests.support.http import LiveServer, WebhookSink

Receiver = WebhookSink


@pytest.fixture
def app() -> Iterator[Flask]:
    app = create_app()
    yield app
    app.extensions["sandbox"].hooks.stop()


@pytest.fixture
def sandbox(app: Flask) -> Sandbox:
    return app.extensions["sandbox"]


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


@pytest.fixture
def live_url(app: Flask) -> Iterator[str]:
    """The demo app over real HTTP."""
    live = LiveServer(app)
    yield live.url
    live.close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()
