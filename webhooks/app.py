"""The webhook receiver: authenticate, validate, dedupe, enqueue, answer — no API calls.

`create_app()` is the gunicorn entry point (`webhooks.app:create_app()`).
Routes are declared here once; errors are mapped to JSON once, so a caller
never sees an HTML page or a stack trace, and bad input never gets a 5xx.
"""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

import redis
from flask import Flask, Response, g, jsonify, request
from marshmallow import ValidationError
from prometheus_client.exposition import choose_encoder
from werkzeug.exceptions import HTTPException

from sync import metrics
from sync.config import ConfigError, Connection, Settings, load_settings
from sync.events import Event
from sync.logs import log_context, setup_logging
from sync.runtime import redis_url
from sync.sentry import init_sentry
from sync.state import intake
from webhooks.auth import TOKEN_HEADER, signature_ok, token_ok
from webhooks.schemas import (
    UNICONTA_OPERATIONS,
    UNICONTA_TABLES,
    WEBCRM_ENTITIES,
    WEBCRM_OPERATIONS,
    UnicontaCallSchema,
    WebcrmHookSchema,
    first_error,
)

log = logging.getLogger("webhooks")

MAX_BODY = 1024 * 1024
RETRY_AFTER_SECONDS = 5

# Built once: a marshmallow schema is costly to construct and safe to share for load().
WEBCRM_HOOK = WebcrmHookSchema()
UNICONTA_CALL = UnicontaCallSchema()


class Rejected(Exception):
    """A request we answer with a 4xx/503 JSON error."""

    def __init__(self, status: int, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.field, self.headers = status, message, field, headers or {}


def create_app(settings: Settings | None = None, *, redis_client: redis.Redis | None = None,
               enqueue: intake.Enqueue | None = None) -> Flask:
    """The receiver for these settings (loaded from the environment when not given)."""
    if settings is None:
        try:
            settings = load_settings()
        except ConfigError as err:
            print(f"configuration error: {err}", file=sys.stderr)
            raise SystemExit(2) from None
        setup_logging(settings.log_level, settings.log_format)
        init_sentry(settings.sentry_dsn)
    if redis_client is None:
        # Short timeouts: when Redis is down the caller gets a 503 at once, not a hung request.
        redis_client = redis.Redis.from_url(redis_url(settings), decode_responses=True, socket_timeout=1,
                                            socket_connect_timeout=1)
    if enqueue is None:
        from tasks.celery_app import make_celery
        from tasks.dispatch import enqueuer

        enqueue = enqueuer(make_celery(settings))

    app = Flask("webhooks")
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY
    app.extensions["sync"] = {"settings": settings, "redis": redis_client, "enqueue": enqueue,
                              "metrics": metrics.registry()}
    _register_routes(app)
    _register_errors(app)
    return app


# --------------------------------------------------------------------------- routes


def _register_routes(app: Flask) -> None:
    app.add_url_rule("/healthz", "healthz", _healthz, methods=["GET"])
    app.add_url_rule("/readyz", "readyz", _readyz, methods=["GET"])
    app.add_url_rule("/metrics", "metrics", _metrics, methods=["GET"])
    app.add_url_rule("/webhook/<connection>/webcrm", "webcrm", _webcrm, methods=["POST"])
    for name in ("uniconta", "invitems"):
        app.add_url_rule(f"/webhook/<connection>/{name}", name, _uniconta, methods=["GET", "POST"],
                         defaults={"alias": name})
    app.after_request(_count_answer)


def _state() -> dict[str, Any]:
    from flask import current_app

    return current_app.extensions["sync"]


def _healthz() -> Response:
    return jsonify(status="ok")


def _readyz() -> Response | tuple[Response, int]:
    state = _state()
    try:
        state["redis"].ping()
    except redis.RedisError:
        return jsonify(status="unavailable", redis="unreachable"), 503
    return jsonify(status="ready", connections=sorted(state["settings"].connections))


def _metrics() -> Response:
    """Prometheus text format (OpenMetrics when asked for, as prometheus-client's own server does): the
    answers of every gunicorn worker in multiprocess mode. The metrics: docs/operations.md."""
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return Response(encode(_state()["metrics"]), headers={"Content-Type": content_type})


# The answer a webhook got, for the metrics: intake's outcome, or "refused" for any error.
ANSWERS = {"queued": "accepted", "coalesced": "coalesced", "duplicate": "duplicate"}
WEBHOOK_ENDPOINTS = {"webcrm": "webcrm", "uniconta": "uniconta", "invitems": "uniconta"}


def _count_answer(response: Response) -> Response:
    """Every webhook's answer passes here once, refusals included (error handlers' responses too)."""
    system = WEBHOOK_ENDPOINTS.get(request.endpoint or "")
    if system is not None:
        given = (request.view_args or {}).get("connection", "")
        connection = given if given in _state()["settings"].connections else "unknown"  # no junk labels
        answer = "refused" if response.status_code >= 400 else ANSWERS.get(g.get("intake", ""), "other")
        metrics.webhook_answered(connection, system, answer, response.status_code)
    return response


def _webcrm(connection: str) -> tuple[Response, int]:
    conn = _authenticate(connection)
    if not request.is_json:
        raise Rejected(415, "expected Content-Type: application/json", "Content-Type")
    try:
        payload = json.loads(request.get_data(cache=True) or b"null")
    except (ValueError, UnicodeDecodeError):
        raise Rejected(400, "body is not valid JSON", "body") from None
    if not isinstance(payload, dict):
        raise Rejected(400, "must be a JSON object", "body")
    try:
        data = WEBCRM_HOOK.load(payload)
    except ValidationError as err:
        field, message = first_error(err)
        raise Rejected(400, message, field) from None
    entity = WEBCRM_ENTITIES[str(data["Entity"]).lower()]
    # Only a Standard Webhooks id is a real delivery id. webCRM's own payload has none (its
    # Timestamp has whole seconds, so two edits in one second would collide and one be lost);
    # bursts are coalesced by the pending mark instead, and a late duplicate is a cheap no-op.
    event = Event(conn.id, "webcrm", entity, str(data["EntityId"]),
                  operation=WEBCRM_OPERATIONS[str(data["EventType"]).lower()],
                  delivery_id=request.headers.get("webhook-id"))
    return _accept(event)


def _uniconta(connection: str, alias: str) -> tuple[Response, int]:
    conn = _authenticate(connection)
    params: dict[str, Any] = dict(request.args.items())
    params.pop("token", None)
    if alias == "invitems" and not any(k.lower() == "table" for k in params):
        params["Table"] = "InvItem"
    body = request.get_data(cache=True)
    if request.method == "POST" and body.strip():
        if not request.is_json:
            raise Rejected(415, "expected Content-Type: application/json for a record body", "Content-Type")
        try:
            json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise Rejected(400, "body is not valid JSON", "body") from None
    try:
        data = UNICONTA_CALL.load(params)
    except ValidationError as err:
        field, message = first_error(err)
        raise Rejected(400, message, _uniconta_name(field)) from None
    if data["companyid"] != conn.uniconta.company_id:
        raise Rejected(400, f"company {data['companyid']} does not belong to connection {conn.id}", "CompanyId")
    entity, ident = UNICONTA_TABLES[data["table"].lower()]
    record_id = str(data["key"]) if ident == "key" and data.get("key") else f"#{data['rowid']}"
    operation = UNICONTA_OPERATIONS[(data.get("action") or data.get("operation")).lower()]
    event = Event(conn.id, "uniconta", entity, record_id, operation=operation,
                  delivery_id=request.headers.get("webhook-id"))
    return _accept(event)


def _uniconta_name(field: str) -> str:
    names = {"companyid": "CompanyId", "table": "Table", "key": "Key", "rowid": "RowId", "action": "Action",
             "operation": "Operation"}
    return names.get(field.lower(), field)


def _authenticate(connection: str) -> Connection:
    state = _state()
    conn = state["settings"].connection(connection)
    if conn is None:
        raise Rejected(404, f"unknown connection {connection!r}")
    given = request.args.get("token") or request.headers.get(TOKEN_HEADER)
    if not token_ok(given, conn.webhook):
        raise Rejected(401, "missing or invalid webhook token")
    if not signature_ok(request.get_data(cache=True), dict(request.headers), conn.webhook):
        raise Rejected(401, "missing or invalid webhook signature")
    return conn


def _accept(event: Event) -> tuple[Response, int]:
    state = _state()
    with log_context(connection=event.connection, entity=event.entity, record=event.record_id,
                     event=event.event_id):
        try:
            conn = state["settings"].connection(event.connection)
            burst = intake.Burst(conn.burst_threshold, max(conn.echo_window_seconds, 1.0)) if conn else None
            outcome = intake.accept(state["redis"], event, state["enqueue"], burst)
        except intake.Unavailable as err:
            log.warning("event not stored: %s", err)
            raise Rejected(503, "temporarily unable to store the event; retry later",
                           headers={"Retry-After": str(RETRY_AFTER_SECONDS)}) from None
    g.intake = outcome.status
    if outcome.status == "duplicate":
        return jsonify(status="duplicate", event=outcome.event_id), 200
    body: dict[str, Any] = {"status": "queued", "event": outcome.event_id}
    if outcome.status == "coalesced":
        body["coalesced"] = True
    return jsonify(body), 202


# --------------------------------------------------------------------------- errors


def _register_errors(app: Flask) -> None:
    @app.errorhandler(Rejected)
    def _rejected(err: Rejected) -> tuple[Response, int, dict[str, str]]:
        body: dict[str, Any] = {"error": err.message}
        if err.field:
            body["field"] = err.field
        return jsonify(body), err.status, err.headers

    @app.errorhandler(HTTPException)
    def _http(err: HTTPException) -> tuple[Response, int, dict[str, str]]:
        status = err.code or 400
        messages = {404: "not found", 405: "method not allowed", 413: f"body larger than {MAX_BODY} bytes",
                    415: "unsupported content type"}
        methods = getattr(err, "valid_methods", None)
        headers = {"Allow": ", ".join(methods)} if methods else {}
        return jsonify(error=messages.get(status, err.description or err.name)), status, headers

    @app.errorhandler(Exception)
    def _bug(err: Exception) -> tuple[Response, int]:
        log.exception("unhandled error in the receiver")
        return jsonify(error="internal error"), 500
