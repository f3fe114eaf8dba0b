"""Fixtures for the sandbox/common tests: the demo app, a live server and a webhook receiver."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.serving import BaseWSGIServer, make_server
from werkzeug.wrappers import Request, Response

from sandbox.common import Sandbox
from tests.sandbox.common.sandbox_common_demo import create_app


def serve(app: Callable) -> tuple[BaseWSGIServer, threading.Thread]:
    """`app` on a free local port in a daemon thread."""
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    return server, thread


class Receiver:
    """A real HTTP server that records what webhooks reach it."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self._cond = threading.Condition()
        self.server, self._thread = serve(self._app)
        self.url = f"http://127.0.0.1:{self.server.port}"

    def _app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        entry = {"method": request.method, "path": request.path, "args": request.args.to_dict(),
                 "json": request.get_json(silent=True), "headers": dict(request.headers)}
        with self._cond:
            self.received.append(entry)
            self._cond.notify_all()
        return Response("", status=self.status)(environ, start_response)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self._cond.wait(deadline - time.monotonic())
            return list(self.received)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


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
    server, _ = serve(app)
    yield f"http://127.0.0.1:{server.port}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()
