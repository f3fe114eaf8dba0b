"""Faults: validation, and injection into the API paths of a hosted app (down, hang, error, latency)."""

from __future__ import annotations

import threading
import time

import pytest
import requests
from flask.testing import FlaskClient

from sandbox.common import Faults, Sandbox

USER = {"X-User": "Integration"}


def statuses(client: FlaskClient, n: int, path: str = "/things") -> list[int]:
    return [client.get(path, headers=USER).status_code for _ in range(n)]


@pytest.mark.parametrize(("changes", "message"), [
    ({"nope": 1}, "nope: unknown fault setting"),
    ({"error_rate": 1.5}, "error_rate: must be <= 1"),
    ({"error_rate": "0.5"}, "error_rate: must be a number"),
    ({"error_rate": True}, "error_rate: must be a number"),
    ({"error_status": 418}, "error_status: must be one of"),
    ({"error_path": "(["}, "error_path: invalid regular expression"),
    ({"latency_ms": -1}, "latency_ms: must be >= 0"),
    ({"latency_ms": 1.5}, "latency_ms: must be an integer"),
    ({"webhook_reorder_window": "3"}, "webhook_reorder_window: must be an integer"),
    ({"seed": "x"}, "seed: must be an integer"),
    ({"down_seconds": -5}, "down_seconds: must be >= 0"),
    ({"hang_seconds": float("inf")}, "hang_seconds: must be a number"),
    ([1, 2], "body: must be a JSON object"),
])
def test_update_rejects_bad_values(changes: object, message: str) -> None:
    faults = Faults()
    with pytest.raises(ValueError, match="^" + message.replace("(", r"\(").replace("[", r"\[")):
        faults.update(changes)  # type: ignore[arg-type]
    assert faults.to_dict() == Faults().to_dict()


def test_update_is_all_or_nothing_and_round_trips() -> None:
    faults = Faults()
    with pytest.raises(ValueError):
        faults.update({"latency_ms": 5, "error_rate": 2})
    assert faults.latency_ms == 0
    faults.update({"latency_ms": 5.0, "error_rate": 1, "seed": 7, "down_seconds": 60})
    assert faults.latency_ms == 5 and faults.error_rate == 1.0 and faults.seed == 7
    assert faults.is_down() and 55 < faults.down_until - time.time() <= 60
    copy = Faults()
    copy.update(faults.to_dict())
    assert copy.to_dict() == faults.to_dict()
    faults.reset()
    assert faults.to_dict() == Faults().to_dict()


def test_error_rate_is_repeatable_with_a_seed(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"error_rate": 0.5, "seed": 42})
    first = statuses(client, 40)
    sandbox.update_faults({"seed": 42})  # re-seeding restarts the sequence
    assert statuses(client, 40) == first
    assert set(first) == {200, 503} and 8 < first.count(503) < 32
    assert client.get("/things", headers=USER).get_json(silent=True) is not None


def test_error_status_body_comes_from_the_app(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"error_rate": 1, "error_status": 429})
    response = client.get("/things", headers=USER)
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "7"
    assert response.get_json()["Type"] == "TooManyRequestsException"
    sandbox.update_faults({"error_status": 502})
    assert client.get("/things").get_json() == {"Message": "injected 502"}  # before auth: no 401


def test_error_path_limits_the_error_rate(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"error_rate": 1, "error_path": r"^/things/\d+$"})
    assert client.get("/things/1", headers=USER).status_code == 503
    assert client.get("/things", headers=USER).status_code == 200


def test_down_window_fails_everything_but_admin_until_it_ends(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"down_seconds": 0.6, "error_status": 504})
    assert statuses(client, 3) == [504] * 3
    assert client.post("/things", json={"name": "x"}).status_code == 504  # before auth too
    assert client.get("/_sandbox/health").status_code == 200
    time.sleep(max(0.0, sandbox.faults.down_until - time.time()) + 0.02)
    assert statuses(client, 2) == [200, 200]


def test_latency_is_added(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"latency_ms": 300})
    started = time.perf_counter()
    assert client.get("/things", headers=USER).status_code == 200
    assert time.perf_counter() - started >= 0.3
    assert sandbox.calls.entries()[-1]["ms"] >= 300
    started = time.perf_counter()
    client.get("/_sandbox/faults")
    assert time.perf_counter() - started < 0.25  # admin paths are never delayed


def test_hang_then_answer_normally(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"hang_rate": 1, "hang_seconds": 0.3})
    started = time.perf_counter()
    assert client.get("/things", headers=USER).status_code == 200
    assert time.perf_counter() - started >= 0.3


@pytest.mark.timeout(20)
def test_hang_is_seen_by_a_real_client_and_ends_when_faults_change(live_url: str, sandbox: Sandbox) -> None:
    requests.put(live_url + "/_sandbox/faults", json={"hang_rate": 1, "hang_seconds": 30}, timeout=5)
    with pytest.raises(requests.Timeout):
        requests.get(live_url + "/things", headers=USER, timeout=0.3)
    result: dict[str, object] = {}

    def call() -> None:
        started = time.perf_counter()
        result["status"] = requests.get(live_url + "/things", headers=USER, timeout=10).status_code
        result["seconds"] = time.perf_counter() - started

    thread = threading.Thread(target=call)
    thread.start()
    time.sleep(0.2)
    assert requests.put(live_url + "/_sandbox/faults", json={"hang_rate": 0}, timeout=5).status_code == 200
    thread.join(10)
    assert result["status"] == 200 and result["seconds"] < 5  # type: ignore[operator]


def test_fault_order_down_beats_error_rate(client: FlaskClient, sandbox: Sandbox) -> None:
    sandbox.update_faults({"down_seconds": 60, "error_status": 500, "error_rate": 1, "hang_rate": 1,
                           "hang_seconds": 5})
    started = time.perf_counter()
    assert client.get("/things").status_code == 500
    assert time.perf_counter() - started < 1  # the down window answers before any hang
