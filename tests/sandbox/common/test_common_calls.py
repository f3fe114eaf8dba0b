"""Call log: entries and counters, recorded for every API call including injected faults."""

from __future__ import annotations

from flask.testing import FlaskClient

from sandbox.common import CallLog, Sandbox

USER = {"X-User": "Integration"}


def test_call_log_unit() -> None:
    log = CallLog()
    log.record(method="GET", path="/o/1", rule="/o/<int:id>", status=200, ms=1.23456, query="a=1", user="u")
    log.record(method="GET", path="/o/2", rule="/o/<int:id>", status=404, ms=2)
    assert log.counters() == {"GET /o/<int:id>": 2, "status:200": 1, "status:404": 1}
    first, second = log.entries()
    assert first["seq"] == 1 and first["ms"] == 1.235 and first["query"] == "a=1" and first["user"] == "u"
    assert set(first) == {"seq", "method", "path", "rule", "status", "ms", "query", "user", "at"}
    assert log.entries(since=1) == [second]
    log.clear()
    assert log.entries() == [] and log.counters() == {}
    log.record(method="POST", path="/o", rule="/o", status=200, ms=0)
    assert log.entries()[0]["seq"] == 3  # seq keeps growing so pollers never miss calls


def test_app_calls_are_logged_with_rule_query_user_status(client: FlaskClient, sandbox: Sandbox) -> None:
    client.get("/things/1?Page=2&Size=5", headers=USER)
    client.get("/things/99", headers=USER)
    client.get("/things")  # 401 from the app's auth
    client.get("/nowhere", headers=USER)  # no rule matched: the path is the rule
    client.get("/boom", headers=USER)  # unhandled exception -> 500
    client.get("/_sandbox/health")  # never logged
    calls = sandbox.calls.entries()
    assert [(c["method"], c["rule"], c["status"]) for c in calls] == [
        ("GET", "/things/<int:thing_id>", 200), ("GET", "/things/<int:thing_id>", 404),
        ("GET", "/things", 401), ("GET", "/nowhere", 404), ("GET", "/boom", 500)]
    assert calls[0]["path"] == "/things/1" and calls[0]["query"] == "Page=2&Size=5"
    assert calls[0]["user"] == "Integration" and calls[2]["user"] == ""
    assert all(c["ms"] >= 0 for c in calls)
    assert sandbox.calls.counters() == {
        "GET /things/<int:thing_id>": 2, "GET /things": 1, "GET /nowhere": 1, "GET /boom": 1,
        "status:200": 1, "status:404": 2, "status:401": 1, "status:500": 1}


def test_injected_faults_are_logged(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"error_rate": 1, "error_status": 429})
    client.post("/things", json={}, headers=USER)
    (call,) = sandbox.calls.entries()
    assert (call["method"], call["rule"], call["status"], call["user"]) == ("POST", "/things", 429, "Integration")


def test_calls_admin_route(client: FlaskClient) -> None:
    for _ in range(3):
        client.get("/things", headers=USER)
    body = client.get("/_sandbox/calls?since=1").get_json()
    assert [c["seq"] for c in body["calls"]] == [2, 3]
    assert body["counters"]["GET /things"] == 3
    assert client.delete("/_sandbox/calls").status_code == 200
    assert client.get("/_sandbox/calls").get_json() == {"calls": [], "counters": {}}
