"""Real HTTP servers for tests: serve a WSGI app from a thread, or record the webhooks that arrive."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response


class LiveServer:
    """A WSGI app on a free local port, served by werkzeug's threaded server in a daemon thread."""

    def __init__(self, app: Callable, port: int = 0) -> None:
        self.app = app
        self.server = make_server("127.0.0.1", port, app, threaded=True)
        self.port = self.server.port
        self.url = f"http://127.0.0.1:{self.port}"
        self.thread = threading.Thread(target=self.server.serve_forever, kwargs={"poll_interval": 0.05},
                                       daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class WebhookSink:
    """Records every request that reaches it (the target of a sandbox's outgoing webhooks)."""

    def __init__(self) -> None:
        self.received: list[dict[str, Any]] = []
        self.status = 200
        self._cond = threading.Condition()
        self._live = LiveServer(self._app)
        self.server, self.url = self._live.server, self._live.url

    def _app(self, environ: dict, start_response: Callable) -> Any:
        request = Request(environ)
        entry = {"method": request.method, "path": request.path, "query": request.query_string.decode(),
                 "args": request.args.to_dict(), "json": request.get_json(silent=True),
                 "headers": dict(request.headers)}
        with self._cond:
            self.received.append(entry)
            self._cond.notify_all()
        return Response("", status=self.status)(environ, start_response)

    def wait_for(self, count: int, timeout: float = 5.0) -> list[dict[str, Any]]:
        """The requests received once there are `count` of them (or at the timeout)."""
        deadline = time.monotonic() + timeout
        with self._cond:
            while len(self.received) < count and time.monotonic() < deadline:
                self._cond.wait(max(0.0, deadline - time.monotonic()))
            return list(self.received)

    def payloads(self) -> list[Any]:
        with self._cond:
            return [r["json"] for r in self.received]

    def close(self) -> None:
        self._live.close()
