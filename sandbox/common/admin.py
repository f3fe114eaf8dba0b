"""What every sandbox app shares: fault injection, the call log, the /_sandbox admin API and the CLI."""

from __future__ import annotations

import argparse
import logging
import os
import random
import re
import signal
import socket
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NoReturn

from flask import Blueprint, Flask, Response, g, jsonify, make_response, request
from werkzeug.exceptions import HTTPException
from werkzeug.serving import make_server

from sandbox.common.calls import CallLog
from sandbox.common.faults import Faults
from sandbox.common.hooks import WebhookDispatcher
from sandbox.common.store import Store

log = logging.getLogger(__name__)

ADMIN_PREFIX = "/_sandbox"
MAX_SEED_COUNT = 10_000
MAX_FLUSH_SECONDS = 300.0


def is_admin_path(path: str) -> bool:
    """Admin paths are never subject to faults and never in the call log."""
    return path == ADMIN_PREFIX or path.startswith(ADMIN_PREFIX + "/")


def json_body(*, required: bool = True) -> Any:
    """The request's JSON (any content type); ValueError("body: ...") instead of werkzeug's HTML 400.

    An empty body is None when not `required`.
    """
    raw = request.get_data(cache=True)
    if not raw.strip():
        if required:
            raise ValueError("body: a JSON body is required")
        return None
    data = request.get_json(force=True, silent=True)
    if data is None:
        raise ValueError("body: not valid JSON")
    return data


def json_object(*, required: bool = True) -> dict:
    """The request's JSON object ({} for an empty body when not `required`)."""
    data = json_body(required=required)
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ValueError("body: must be a JSON object")
    return data


def int_arg(name: str, default: int, *, low: int | None = 0, high: int | None = None) -> int:
    """Integer query parameter with a 400-friendly ValueError naming it."""
    raw = request.args.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"{name}: must be an integer, got {raw!r}") from None
    if (low is not None and value < low) or (high is not None and value > high):
        raise ValueError(f"{name}: must be between {low} and {high}" if high is not None else f"{name}: must be >= {low}")
    return value


class Sandbox:
    """Installs fault injection, the call log and the /_sandbox admin API on an app."""

    def __init__(self, app: Flask, *, name: str, store: Store,
                 reset: Callable[[], None],
                 seeders: dict[str, Callable[[int, random.Random], list]],
                 fault_response: Callable[[int], Response],
                 user_of_request: Callable[[], str] = lambda: "") -> None:
        self.app = app
        self.name = name
        self.store = store
        self.reset_defaults = reset
        self.seeders = seeders
        self.fault_response = fault_response
        self.user_of_request = user_of_request
        self.faults = Faults()
        self.calls = CallLog()
        self.hooks = WebhookDispatcher(self.faults)
        self.admin = Blueprint("sandbox", __name__, url_prefix=ADMIN_PREFIX)
        self._hang_wake = threading.Event()  # set (and replaced) when faults change, ending current hangs
        self._hang_lock = threading.Lock()
        self._add_routes()
        self.admin.register_error_handler(ValueError, _value_error)
        self.admin.register_error_handler(HTTPException, _http_error)
        self.admin.register_error_handler(Exception, _unexpected_error)

    def register(self) -> None:
        """Attach everything to the app; call after adding app-specific routes to `self.admin`.

        The fault hook is put first so it runs before any authentication the app registered, and
        the call-log hook first in the after-request list so it runs last and sees the final status.
        """
        self.app.register_blueprint(self.admin)
        self.app.before_request_funcs.setdefault(None, []).insert(0, self._before_request)
        self.app.after_request_funcs.setdefault(None, []).insert(0, self._after_request)
        self.app.extensions["sandbox"] = self

    def reset(self) -> None:
        """Wipe data, faults, call log and webhook log, then let the app restore its defaults."""
        self.faults.reset()
        self._end_hangs()
        self.calls.clear()
        self.hooks.clear()
        with self.store.lock:
            self.store.reset()
            self.reset_defaults()
        self.store.mark_dirty()

    def update_faults(self, changes: dict) -> dict:
        """Validate and apply a partial fault update; hangs in progress end at once."""
        self.faults.update(changes)
        self._end_hangs()
        return self.faults.to_dict()

    def seed(self, entity: str, count: int, seed: int | None = None) -> list:
        """Create `count` fake `entity` records through the app's seeder."""
        seeder = self.seeders.get(entity)
        if seeder is None:
            known = ", ".join(sorted(self.seeders)) or "none"
            raise ValueError(f"entity: unknown entity {entity!r} (known: {known})")
        rng = random.Random(seed)
        with self.store.lock:
            created = list(seeder(count, rng))
        self.store.mark_dirty()
        return created

    # -- request hooks ------------------------------------------------------------------------
    def _before_request(self) -> Response | None:
        if is_admin_path(request.path):
            return None
        g.sandbox_started = time.perf_counter()
        faults = self.faults
        if faults.is_down():
            return self._injected(faults.error_status)
        if faults.chance("api", faults.hang_rate):
            with self._hang_lock:
                wake = self._hang_wake
            wake.wait(faults.hang_seconds)
        if faults.error_rate > 0 and (not faults.error_path or re.search(faults.error_path, request.path)) \
                and faults.chance("api", faults.error_rate):
            return self._injected(faults.error_status)
        if faults.latency_ms > 0:
            time.sleep(faults.latency_ms / 1000)
        return None

    def _injected(self, status: int) -> Response:
        response = make_response(self.fault_response(status))
        response.status_code = status
        return response

    def _after_request(self, response: Response) -> Response:
        if is_admin_path(request.path):
            return response
        started = g.get("sandbox_started")
        ms = (time.perf_counter() - started) * 1000 if started is not None else 0.0
        try:
            user = self.user_of_request() or ""
        except Exception:
            log.exception("user_of_request failed")
            user = ""
        self.calls.record(
            method=request.method, path=request.path,
            rule=request.url_rule.rule if request.url_rule is not None else request.path,
            status=response.status_code, ms=ms,
            query=request.query_string.decode("utf-8", "replace"), user=str(user),
        )
        return response

    def _end_hangs(self) -> None:
        with self._hang_lock:
            wake, self._hang_wake = self._hang_wake, threading.Event()
        wake.set()

    # -- admin API ------------------------------------------------------------------------------
    def _add_routes(self) -> None:
        bp = self.admin

        @bp.get("/health")
        def health() -> Any:
            return {"status": "ok", "name": self.name}

        @bp.post("/reset")
        def reset() -> Any:
            self.reset()
            return {"status": "ok"}

        @bp.post("/seed")
        def seed() -> Any:
            body = json_object()
            entity = body.get("entity")
            if not isinstance(entity, str) or not entity:
                raise ValueError("entity: required, a string")
            count = body.get("count")
            if isinstance(count, bool) or not isinstance(count, int) or not 1 <= count <= MAX_SEED_COUNT:
                raise ValueError(f"count: required, an integer from 1 to {MAX_SEED_COUNT}")
            seed_value = body.get("seed")
            if seed_value is not None and (isinstance(seed_value, bool) or not isinstance(seed_value, int)):
                raise ValueError("seed: must be an integer")
            return {"created": self.seed(entity, count, seed_value)}

        @bp.get("/calls")
        def calls() -> Any:
            since = int_arg("since", 0)
            return {"calls": self.calls.entries(since), "counters": self.calls.counters()}

        @bp.delete("/calls")
        def clear_calls() -> Any:
            self.calls.clear()
            return {"status": "ok"}

        @bp.get("/faults")
        def get_faults() -> Any:
            return self.faults.to_dict()

        @bp.put("/faults")
        def put_faults() -> Any:
            return self.update_faults(json_object(required=False))

        @bp.get("/webhooks")
        def webhooks() -> Any:
            return {"deliveries": self.hooks.deliveries()}

        @bp.delete("/webhooks")
        def clear_webhooks() -> Any:
            self.hooks.clear()
            return {"status": "ok"}

        @bp.post("/webhooks/flush")
        def flush_webhooks() -> Any:
            raw = request.args.get("timeout", "10")
            try:
                timeout = float(raw)
            except ValueError:
                raise ValueError(f"timeout: must be a number of seconds, got {raw!r}") from None
            if not 0 <= timeout <= MAX_FLUSH_SECONDS:
                raise ValueError(f"timeout: must be between 0 and {MAX_FLUSH_SECONDS:g} seconds")
            return {"flushed": self.hooks.flush(timeout)}

        @bp.get("/state")
        def get_state() -> Any:
            return self.store.snapshot()

        @bp.put("/state")
        def put_state() -> Any:
            self.store.restore(json_body())
            with self.store.lock:
                counts = {name: len(self.store.table(name)) for name in self.store.tables()}
            return {"status": "ok", "tables": counts}


def _error(status: int, message: str) -> tuple[Response, int]:
    return jsonify({"error": message}), status


def _value_error(exc: ValueError) -> tuple[Response, int]:
    return _error(400, str(exc) or "bad request")


def _http_error(exc: HTTPException) -> tuple[Response, int]:
    return _error(exc.code or 500, exc.description or exc.name)


def _unexpected_error(exc: Exception) -> tuple[Response, int]:
    log.exception("sandbox admin request failed")
    return _error(500, f"internal error: {type(exc).__name__}: {exc}")


# -- command line -------------------------------------------------------------------------------
class _Parser(argparse.ArgumentParser):
    """argparse whose errors are one line (no usage block) and exit 2."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message}\n")


def _port(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {text!r}") from None
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError(f"port {value} out of range 0-65535")
    return value


def _listen(host: str, port: int) -> socket.socket:
    """Bind ourselves so a port in use is a clean error, not werkzeug's exit(1)."""
    family, kind, proto, _, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
    sock = socket.socket(family, kind, proto)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError:
        sock.close()
        raise
    return sock


def run_cli(argv: list[str] | None, *, prog: str, create_app: Callable[..., Flask], default_port: int,
            add_arguments: Callable[[argparse.ArgumentParser], None] | None = None,
            env_prefix: str) -> int:
    """Parse options, serve the app with werkzeug's threaded server until SIGINT/SIGTERM, save state.

    Every option other than --host/--port reaches `create_app` as a keyword (`state_file` included).
    Returns the exit status: 0 after a signal, 2 on bad arguments or when it cannot listen.
    """
    env = os.environ.get
    parser = _Parser(prog=f"python -m sandbox.{prog}", description=f"Local {prog} API sandbox.")
    parser.add_argument("--host", default=env(f"{env_prefix}HOST", "127.0.0.1"),
                        help=f"interface to listen on (env {env_prefix}HOST, default 127.0.0.1)")
    parser.add_argument("--port", type=_port, default=env(f"{env_prefix}PORT", str(default_port)),
                        help=f"TCP port, 0 = any free one (env {env_prefix}PORT, default {default_port})")
    parser.add_argument("--state-file", default=env(f"{env_prefix}STATE_FILE") or None,
                        help=f"JSON file the state is loaded from and saved to (env {env_prefix}STATE_FILE)")
    if add_arguments is not None:
        add_arguments(parser)
    try:
        options = vars(parser.parse_args(argv))
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 2  # --help is 0, a bad argument 2
    host, port = options.pop("host"), options.pop("port")

    try:
        app = create_app(**options)
    except (ValueError, OSError) as exc:
        print(f"{parser.prog}: error: {exc}", file=sys.stderr, flush=True)
        return 2
    try:
        sock = _listen(host, port)
    except OSError as exc:
        print(f"{parser.prog}: error: cannot listen on {host}:{port}: {exc.strerror or exc}",
              file=sys.stderr, flush=True)
        return 2
    try:
        server = make_server(host, port, app, threaded=True, fd=sock.fileno())
    finally:
        sock.close()  # the server works on its own duplicate of the descriptor

    stop = threading.Event()
    previous = {sig: signal.signal(sig, lambda *_: stop.set()) for sig in (signal.SIGINT, signal.SIGTERM)}
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1},
                              name="sandbox-server", daemon=True)
    thread.start()
    print(f"sandbox {prog} listening on http://{host}:{server.port}", flush=True)
    try:
        while not stop.wait(0.5):
            pass
    finally:
        server.shutdown()
        server.server_close()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        _shut_down_app(app)
    return 0


def _shut_down_app(app: Flask) -> None:
    """Save the state file and stop the webhook worker of the app's Sandbox, if any."""
    sandbox = app.extensions.get("sandbox")
    if not isinstance(sandbox, Sandbox):
        return
    sandbox.hooks.flush(1.0)  # give webhooks already submitted a moment to go out
    sandbox.hooks.stop()
    try:
        sandbox.store.save()
    except OSError as exc:
        print(f"sandbox {sandbox.name}: could not save state: {exc}", file=sys.stderr, flush=True)
