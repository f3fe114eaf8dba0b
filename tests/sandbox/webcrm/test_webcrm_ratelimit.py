"""The 250-per-rolling-minute limit per application token, and injected faults."""

from __future__ import annotations

import requests

from sandbox.webcrm.ratelimit import RollingWindowLimiter

THROTTLED = "The request was throttled. The limit of {} requests per minute is reached"


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_rolling_window_unit():
    clock = Clock()
    limit = [3]
    limiter = RollingWindowLimiter(lambda: limit[0], clock=clock)
    assert [limiter.hit("a") for _ in range(3)] == [None, None, None]
    clock.now += 10
    assert limiter.hit("a") == 50          # the first hit leaves the window at t+60
    assert limiter.hit("b") is None       # per key
    clock.now += 49.5
    assert limiter.hit("a") == 1           # never less than 1 s
    clock.now += 0.5
    assert limiter.hit("a") is None       # rolling, not fixed minutes
    assert limiter.used("a") == 1          # all three first hits (t=1000) left together
    limit[0] = 0
    assert all(limiter.hit("a") is None for _ in range(100))  # 0 = off


def test_rate_limit_over_http_with_retry_after(live_factory):
    server = live_factory(rate_limit=250, auth_codes="sandbox-token=Integration,other=Other")
    admin = requests.put(f"{server.url}/_sandbox/auth", json={"rate_limit": 4})
    assert admin.status_code == 200
    assert admin.json()["rate_limit"] == 4
    login = requests.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"})  # counts: 1
    headers = {"Authorization": f"Bearer {login.json()['AccessToken']}"}
    statuses = [requests.get(f"{server.url}/Organisations", headers=headers).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    throttled = requests.get(f"{server.url}/Users", headers=headers)
    assert throttled.status_code == 429
    retry_after = int(throttled.headers["Retry-After"])
    assert 1 <= retry_after <= 60
    assert throttled.json() == {"RetryAfterSeconds": retry_after, "Message": THROTTLED.format(4),
                                "Type": "TooManyRequestsException"}
    # ApiLogin itself is throttled for that code
    assert requests.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"}).status_code == 429
    # another application token has its own quota; admin and unauthenticated calls do not count
    other = requests.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "other"})
    assert other.status_code == 200
    assert requests.get(f"{server.url}/Users", headers={
        "Authorization": f"Bearer {other.json()['AccessToken']}"}).status_code == 200
    assert requests.get(f"{server.url}/_sandbox/settings").json()["rate_used"] == {"sandbox-token": 4, "other": 2}
    assert requests.get(f"{server.url}/Users").status_code == 401
    # raising the limit through admin lets the client continue at once
    requests.put(f"{server.url}/_sandbox/auth", json={"rate_limit": 0})
    assert requests.get(f"{server.url}/Users", headers=headers).status_code == 200


def test_default_limit_is_250(app_factory, api_factory):
    app = app_factory(rate_limit=None)
    assert app.extensions["webcrm"].settings()["rate_limit"] == 250
    api = api_factory(app)
    statuses = [api.get("/Users/1").status_code for _ in range(250)]
    assert statuses.count(200) == 249  # the login was request 1
    response = api.get("/Users/1")
    assert response.status_code == 429
    assert response.json["Message"] == THROTTLED.format(250)


def test_injected_429_uses_the_throttle_body(live_factory):
    server = live_factory()
    requests.put(f"{server.url}/_sandbox/faults", json={"error_rate": 1.0, "error_status": 429})
    requests.put(f"{server.url}/_sandbox/quirks", json={"injected_retry_after": 3})
    response = requests.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"})
    assert response.status_code == 429
    assert response.headers["Retry-After"] == "3"
    assert response.json()["Type"] == "TooManyRequestsException"
    assert response.json()["RetryAfterSeconds"] == 3


def test_injected_errors_and_down_window(client, api):
    client.put("/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503, "error_path": "^/Deliveries"})
    response = api.get("/Deliveries")
    assert response.status_code == 503
    assert response.json["Message"]
    assert api.get("/Organisations").status_code == 200
    client.put("/_sandbox/faults", json={"error_rate": 0.0, "down_seconds": 30, "error_status": 502})
    assert api.get("/Organisations").status_code == 502
    assert client.get("/_sandbox/health").status_code == 200  # admin is never faulted
    client.post("/_sandbox/reset")
    assert api.get("/Organisations").status_code == 200
