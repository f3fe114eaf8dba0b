"""The receiver: every answer the issue lists, against a real Redis and the real Celery producer."""

from __future__ import annotations

import base64
import json
import time
from dataclasses import replace
from typing import Any

import pytest
import redis
from flask.testing import FlaskClient
from standardwebhooks import Webhook

from sync.config import Settings, WebhookSettings, load_settings
from sync.events import Event
from sync.secrets import Secret
from sync.state import keys
from tasks.queues import WEBHOOKS
from webhooks.app import create_app

TOKEN = "demo-token"


@pytest.fixture
def settings(redis_url: str) -> Settings:
    return replace(load_settings({}), redis_url=redis_url)


@pytest.fixture
def client(settings: Settings, redis_client: redis.Redis) -> FlaskClient:
    return create_app(settings).test_client()


def queued_jobs(r: redis.Redis, queue: str = WEBHOOKS) -> list[dict[str, Any]]:
    return [json.loads(base64.b64decode(json.loads(m)["body"]))[1]["event"] for m in r.lrange(queue, 0, -1)]


def uniconta(client: FlaskClient, **params: Any) -> Any:
    query = {"CompanyId": 1234, "Table": "InvItem", "Key": "A-100", "RowId": 7, "Action": "update",
             "token": TOKEN, **params}
    return client.get("/webhook/demo/uniconta", query_string={k: v for k, v in query.items() if v is not None})


def test_uniconta_call_is_queued_once(client: FlaskClient, redis_client: redis.Redis) -> None:
    resp = uniconta(client)
    assert resp.status_code == 202
    assert resp.json["status"] == "queued" and resp.json["event"]
    jobs = queued_jobs(redis_client)
    assert len(jobs) == 1
    assert jobs[0] | {"event_id": "", "received_at": 0} == {
        "connection": "demo", "system": "uniconta", "entity": "item", "record_id": "A-100", "operation": "update",
        "origin": "webhook", "delivery_id": None, "event_id": "", "received_at": 0}


def test_burst_for_one_record_queues_one_job(client: FlaskClient, redis_client: redis.Redis) -> None:
    answers = [uniconta(client).json for _ in range(50)]
    assert len(queued_jobs(redis_client)) == 1
    assert sum(1 for a in answers if a.get("coalesced")) == 49


@pytest.mark.parametrize(
    ("params", "spelled"),
    [({"Action": None, "Operation": "Insert"}, "create"), ({"Action": "ADD"}, "create"),
     ({"Action": "Delete"}, "delete")],
)
def test_operation_spellings(client: FlaskClient, redis_client: redis.Redis, params: dict, spelled: str) -> None:
    assert uniconta(client, **params).status_code == 202
    assert queued_jobs(redis_client)[0]["operation"] == spelled


def test_lowercase_names_post_body_and_invitems_alias(client: FlaskClient, redis_client: redis.Redis) -> None:
    resp = client.post("/webhook/demo/invitems?companyid=1234&key=B-2&rowid=9&action=update&token=" + TOKEN,
                       json={"Item": "B-2", "Name": "Bolt"})
    assert resp.status_code == 202
    assert queued_jobs(redis_client)[0]["entity"] == "item"


def test_contact_uses_row_id(client: FlaskClient, redis_client: redis.Redis) -> None:
    assert uniconta(client, Table="Contact", Key=None, RowId=55).status_code == 202
    assert queued_jobs(redis_client)[0]["record_id"] == "#55"


@pytest.mark.parametrize(
    ("params", "field"),
    [({"CompanyId": "abc"}, "CompanyId"), ({"CompanyId": 999}, "CompanyId"), ({"Table": "Creditor"}, "Table"),
     ({"Action": "explode"}, "Action"), ({"Key": None, "RowId": None}, "Key"), ({"RowId": "x"}, "RowId"),
     ({"Table": None}, "Table")],
)
def test_bad_uniconta_calls_name_the_field(client: FlaskClient, redis_client: redis.Redis, params: dict,
                                           field: str) -> None:
    resp = uniconta(client, **params)
    assert resp.status_code == 400, resp.json
    assert resp.json["field"] == field
    assert queued_jobs(redis_client) == []


@pytest.mark.parametrize("token", [None, "wrong", "demo-token-but-longer"])
def test_wrong_token_is_401_and_nothing_queued(client: FlaskClient, redis_client: redis.Redis, token: Any) -> None:
    resp = uniconta(client, token=token)
    assert resp.status_code == 401
    assert "token" in resp.json["error"]
    assert redis_client.dbsize() == 0


def test_token_in_header(client: FlaskClient, redis_client: redis.Redis) -> None:
    resp = client.post("/webhook/demo/webcrm", json={"OrganisationId": 5}, headers={"X-Webhook-Token": TOKEN})
    assert resp.status_code == 202


def test_webcrm_documented_payload_is_coalesced_not_deduped(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = {"HookId": 3, "EventType": "Update", "Entity": "Organisation", "EntityId": 145,
            "Timestamp": "2026-11-28T10:00:00+00:00", "Data": {"OrganisationId": 145}}
    first = client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=body)
    # Same hook and second: maybe a redelivery, maybe a second edit. Never dropped as a duplicate;
    # folded into the job that is already waiting for this record.
    again = client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=body)
    assert first.status_code == 202 and again.status_code == 202 and again.json["coalesced"] is True
    jobs = queued_jobs(redis_client)
    assert [(j["entity"], j["record_id"], j["operation"]) for j in jobs] == [("organisation", "145", "update")]


def test_standard_webhooks_id_dedupes_webcrm_calls(client: FlaskClient, redis_client: redis.Redis) -> None:
    body = {"EventType": "Update", "Entity": "Person", "EntityId": 8}
    first = client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=body, headers={"webhook-id": "msg_9"})
    again = client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=body, headers={"webhook-id": "msg_9"})
    assert first.status_code == 202
    assert again.status_code == 200 and again.json == {"status": "duplicate", "event": first.json["event"]}


@pytest.mark.parametrize(
    ("body", "field"),
    [({"EventType": "Update", "Entity": "Organisation"}, "EntityId"), ({"Entity": "Spaceship", "EntityId": 1}, "Entity"),
     ({"EventType": "Explode", "Entity": "Person", "EntityId": 1}, "EventType"), ([1, 2], "body"),
     ({"EntityId": "abc", "Entity": "Person"}, "EntityId")],
)
def test_bad_webcrm_payloads(client: FlaskClient, body: Any, field: str) -> None:
    resp = client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=body)
    assert resp.status_code == 400 and resp.json["field"] == field


def test_webcrm_wrong_content_type_and_bad_json(client: FlaskClient) -> None:
    assert client.post(f"/webhook/demo/webcrm?token={TOKEN}", data="x=1",
                       content_type="application/x-www-form-urlencoded").status_code == 415
    resp = client.post(f"/webhook/demo/webcrm?token={TOKEN}", data="{nope", content_type="application/json")
    assert resp.status_code == 400 and resp.json["field"] == "body"


def test_statuses_for_routing_errors(client: FlaskClient) -> None:
    assert client.post("/webhook/nope/webcrm?token=x", json={}).status_code == 404
    resp = client.put(f"/webhook/demo/webcrm?token={TOKEN}", json={})
    assert resp.status_code == 405 and resp.json["error"] == "method not allowed"
    big = client.post(f"/webhook/demo/webcrm?token={TOKEN}", data=b"{" + b" " * (1024 * 1024 + 10) + b"}",
                      content_type="application/json")
    assert big.status_code == 413
    assert client.get("/nothing-here").status_code == 404


def test_health_and_ready(client: FlaskClient) -> None:
    assert client.get("/healthz").json == {"status": "ok"}
    ready = client.get("/readyz")
    assert ready.status_code == 200 and ready.json["connections"] == ["demo"]


def test_redis_down_is_503_with_retry_after(settings: Settings) -> None:
    from sync.redis_server import free_port

    down = replace(settings, redis_url=f"redis://127.0.0.1:{free_port()}/0")
    client = create_app(down).test_client()
    resp = uniconta(client)
    assert resp.status_code == 503 and resp.headers["Retry-After"] == "5"
    assert client.get("/readyz").status_code == 503
    assert client.get("/healthz").status_code == 200


def test_broker_failure_rolls_back_and_answers_503(settings: Settings, redis_client: redis.Redis) -> None:
    def broken(event: Event) -> None:
        raise ConnectionError("broker gone")

    client = create_app(settings, enqueue=broken).test_client()
    body = {"HookId": 1, "EventType": "Create", "Entity": "Person", "EntityId": 9, "Timestamp": "t1"}
    assert client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=body).status_code == 503
    # nothing left behind that would make the sender's retry look like a duplicate
    assert not redis_client.keys(keys.seen("demo", "*")) and not redis_client.keys(keys.pending("demo", "*", "*", "*"))
    ok = create_app(settings).test_client().post(f"/webhook/demo/webcrm?token={TOKEN}", json=body)
    assert ok.status_code == 202


def test_standard_webhooks_signature(settings: Settings, redis_client: redis.Redis) -> None:
    old, new = "whsec_" + base64.b64encode(b"o" * 24).decode(), "whsec_" + base64.b64encode(b"n" * 24).decode()
    conn = settings.connections["demo"]
    signed = replace(conn, webhook=WebhookSettings(tokens=conn.webhook.tokens,
                                                   signing_secrets=(Secret(old), Secret(new))))
    client = create_app(replace(settings, connections={"demo": signed})).test_client()
    body = json.dumps({"OrganisationId": 12})
    from datetime import UTC, datetime

    def headers(secret: str, msg_id: str, ts: datetime) -> dict[str, str]:
        sig = Webhook(secret).sign(msg_id, ts, body)
        return {"webhook-id": msg_id, "webhook-timestamp": str(int(ts.timestamp())), "webhook-signature": sig,
                "Content-Type": "application/json"}

    now = datetime.now(UTC)
    url = f"/webhook/demo/webcrm?token={TOKEN}"
    assert client.post(url, data=body, headers=headers(new, "msg_1", now)).status_code == 202
    assert client.post(url, data=body, headers=headers(old, "msg_2", now)).status_code == 202  # rotation
    assert client.post(url, data=body, headers=headers(new, "msg_1", now)).status_code == 200  # same id: duplicate
    stale = datetime.fromtimestamp(time.time() - 600, UTC)
    assert client.post(url, data=body, headers=headers(new, "msg_3", stale)).status_code == 401
    wrong = "whsec_" + base64.b64encode(b"x" * 24).decode()
    assert client.post(url, data=body, headers=headers(wrong, "msg_4", now)).status_code == 401
    assert client.post(url, data=body, headers={"Content-Type": "application/json"}).status_code == 401
    garbage = {"webhook-id": "m", "webhook-timestamp": "zz", "webhook-signature": "nocomma",
               "Content-Type": "application/json"}
    assert client.post(url, data=body, headers=garbage).status_code == 401
