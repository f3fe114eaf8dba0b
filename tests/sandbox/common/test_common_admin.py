"""The /_sandbox admin API: every route, and 400 with a JSON message naming the field on bad input."""

from __future__ import annotations

import pytest
import requests
from flask.testing import FlaskClient

from sandbox.common import Sandbox
from tests.sandbox.common.conftest import Receiver

USER = {"X-User": "Integration"}


def test_health(client: FlaskClient) -> None:
    assert client.get("/_sandbox/health").get_json() == {"status": "ok", "name": "demo"}


def test_seed_is_deterministic_with_a_seed(client: FlaskClient) -> None:
    created = client.post("/_sandbox/seed", json={"entity": "things", "count": 3, "seed": 5}).get_json()
    assert created == {"created": [2, 3, 4]}
    names = [t["name"] for t in client.get("/things", headers=USER).get_json()[1:]]
    client.post("/_sandbox/reset")
    client.post("/_sandbox/seed", json={"entity": "things", "count": 3, "seed": 5})
    assert [t["name"] for t in client.get("/things", headers=USER).get_json()[1:]] == names


@pytest.mark.parametrize(("body", "field"), [
    ({"count": 1}, "entity"),
    ({"entity": "widgets", "count": 1}, "entity"),
    ({"entity": "things"}, "count"),
    ({"entity": "things", "count": 0}, "count"),
    ({"entity": "things", "count": "2"}, "count"),
    ({"entity": "things", "count": 100_001}, "count"),
    ({"entity": "things", "count": 1, "seed": "x"}, "seed"),
    ([], "body"),
])
def test_seed_rejects_bad_input(client: FlaskClient, body: object, field: str) -> None:
    response = client.post("/_sandbox/seed", json=body)
    assert response.status_code == 400
    assert response.get_json()["error"].startswith(field + ":")


def test_unknown_entity_lists_the_known_ones(client: FlaskClient) -> None:
    error = client.post("/_sandbox/seed", json={"entity": "x", "count": 1}).get_json()["error"]
    assert error == "entity: unknown entity 'x' (known: things)"


@pytest.mark.parametrize(("kwargs", "field"), [
    ({"data": "{broken", "content_type": "application/json"}, "body"),
    ({"data": "", "content_type": "application/json"}, "body"),
    ({"data": "[1]", "content_type": "text/plain"}, "body"),
])
def test_bad_json_is_a_400_not_html(client: FlaskClient, kwargs: dict, field: str) -> None:
    response = client.post("/_sandbox/seed", **kwargs)
    assert response.status_code == 400 and response.is_json
    assert response.get_json()["error"].startswith(field + ":")


def test_faults_get_put(client: FlaskClient, sandbox: Sandbox) -> None:
    assert client.get("/_sandbox/faults").get_json()["error_status"] == 503
    body = client.put("/_sandbox/faults", json={"latency_ms": 10, "error_status": 429}).get_json()
    assert body["latency_ms"] == 10 and body["error_status"] == 429 and sandbox.faults.latency_ms == 10
    assert client.put("/_sandbox/faults", json=body).status_code == 200  # GET output is valid PUT input
    bad = client.put("/_sandbox/faults", json={"error_rate": 3})
    assert bad.status_code == 400 and bad.get_json() == {"error": "error_rate: must be <= 1"}
    assert client.put("/_sandbox/faults", data="nope", content_type="application/json").status_code == 400
    assert client.put("/_sandbox/faults").status_code == 200  # empty body: no change


def test_webhooks_routes(client: FlaskClient, receiver: Receiver) -> None:
    assert client.put("/_sandbox/hook", json={"url": receiver.url + "/in"}).status_code == 200
    client.post("/things", json={"name": "Søren Smed"}, headers=USER)
    assert client.post("/_sandbox/webhooks/flush?timeout=5").get_json() == {"flushed": True}
    (delivery,) = client.get("/_sandbox/webhooks").get_json()["deliveries"]
    assert delivery["status"] == 200 and delivery["json"]["name"] == "Søren Smed"
    assert receiver.received[0]["json"]["name"] == "Søren Smed"
    assert client.delete("/_sandbox/webhooks").status_code == 200
    assert client.get("/_sandbox/webhooks").get_json() == {"deliveries": []}
    for bad in ("abc", "-1", "1000"):
        response = client.post(f"/_sandbox/webhooks/flush?timeout={bad}")
        assert response.status_code == 400 and response.get_json()["error"].startswith("timeout:")


def test_calls_since_must_be_a_number(client: FlaskClient) -> None:
    for bad in ("x", "-1"):
        response = client.get(f"/_sandbox/calls?since={bad}")
        assert response.status_code == 400 and response.get_json()["error"].startswith("since:")


def test_state_get_put(client: FlaskClient) -> None:
    client.post("/things", json={"name": "Ågesen VVS"}, headers=USER)
    state = client.get("/_sandbox/state").get_json()
    assert state["tables"]["things"]["2"]["name"] == "Ågesen VVS" and state["sequences"] == {"things": 2}
    client.post("/_sandbox/reset")
    assert len(client.get("/things", headers=USER).get_json()) == 1
    assert client.put("/_sandbox/state", json=state).get_json() == {"status": "ok", "tables": {"things": 2}}
    assert client.get("/_sandbox/state").get_json() == state
    bad = client.put("/_sandbox/state", json={"tables": {"things": []}})
    assert bad.status_code == 400 and bad.get_json()["error"].startswith("tables.things:")


def test_reset_wipes_everything_and_restores_defaults(client: FlaskClient, sandbox: Sandbox,
                                                      receiver: Receiver) -> None:
    client.put("/_sandbox/hook", json={"url": receiver.url})
    client.post("/_sandbox/seed", json={"entity": "things", "count": 2})
    client.get("/things", headers=USER)
    client.put("/_sandbox/faults", json={"latency_ms": 5})
    assert sandbox.hooks.flush(5) and sandbox.hooks.deliveries()
    assert client.post("/_sandbox/reset").status_code == 200
    assert client.get("/_sandbox/state").get_json()["tables"] == {"things": {"1": {"id": 1, "name": "Default ApS"}}}
    assert sandbox.faults.latency_ms == 0 and sandbox.hooks.deliveries() == []
    assert sandbox.calls.entries() == [] and "hook_url" not in sandbox.store.meta


def test_app_specific_admin_routes_share_the_error_handler(client: FlaskClient) -> None:
    response = client.put("/_sandbox/hook", json={"url": 5})
    assert response.status_code == 400 and response.get_json() == {"error": "url: required, a string"}


def test_admin_errors_over_real_http(live_url: str) -> None:
    response = requests.post(live_url + "/_sandbox/seed", data="{", timeout=5)
    assert response.status_code == 400 and response.json()["error"].startswith("body:")
    response = requests.get(live_url + "/_sandbox/health", timeout=5)
    assert response.json()["status"] == "ok"
    response = requests.delete(live_url + "/_sandbox/health", timeout=5)
    assert response.status_code == 405
