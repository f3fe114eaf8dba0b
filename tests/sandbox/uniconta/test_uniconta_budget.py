"""The daily call budget per user: counting, slow-down past it, the admin view, midnight reset."""

from __future__ import annotations

import time

import pytest
import requests

from sandbox.common.store import Store
from sandbox.uniconta.budget import Budget


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def test_delay_grows_per_budget_exceeded():
    budget = Budget(Store(), budget=3, slowdown=0.5, clock=Clock(1_700_000_000))
    delays = [budget.count("sandbox") for _ in range(10)]
    assert delays == [0, 0, 0, 0.5, 0.5, 0.5, 1.0, 1.0, 1.0, 1.5]
    assert budget.count("other") == 0  # per user
    view = budget.view()
    assert view["calls"] == {"sandbox": 10, "other": 1} and view["budget"] == 3
    assert view["delay"]["sandbox"] == 1.5


def test_counter_resets_at_midnight_copenhagen():
    clock = Clock(1_700_000_000)  # 2023-11-14 23:13 Europe/Copenhagen
    budget = Budget(Store(), budget=1, slowdown=1, clock=clock)
    budget.count("u")
    assert budget.count("u") == 1
    clock.now += 47 * 60  # 00:00 next day
    assert budget.view()["calls"] == {}
    assert budget.count("u") == 0


def test_zero_budget_or_slowdown_is_off():
    budget = Budget(Store(), budget=0, slowdown=1)
    assert max(budget.count("u") for _ in range(20)) == 0
    budget.update({"budget": 1, "slowdown": 0}, "u")
    assert max(budget.count("u") for _ in range(5)) == 0


def test_update_validation():
    budget = Budget(Store(), budget=5, slowdown=1)
    budget.update({"calls": 4}, "sandbox")
    budget.update({"calls": {"other": 2}}, "sandbox")
    assert budget.view()["calls"] == {"sandbox": 4, "other": 2}
    for bad in ({"budget": -1}, {"budget": "x"}, {"slowdown": "slow"}, {"slowdown": -1}, {"calls": -3},
                {"calls": {"u": "x"}}, {"user": ""}, {"nope": 1}, [1]):
        with pytest.raises(ValueError):
            budget.update(bad, "sandbox")


def test_admin_budget_endpoint(api):
    api.get("DebtorClient")
    api.odata("DebtorClient")
    api.client.get("/api/Entities/DebtorClient")  # unauthenticated: not counted
    view = api.admin("GET", "budget").get_json()
    assert view["calls"] == {"sandbox": 2} and view["budget"] == 0 and view["slowdown"] == 1.0
    view = api.admin("PUT", "budget", {"budget": 10, "slowdown": 0.25, "calls": 25}).get_json()
    assert view["budget"] == 10 and view["delay"]["sandbox"] == 0.5
    assert api.admin("PUT", "budget", {"budget": "x"}).status_code == 400
    api.admin("POST", "reset")
    assert api.admin("GET", "budget").get_json()["calls"] == {}


def test_slowdown_over_real_http(live):
    base = live(daily_budget=2, slowdown=0.2, users="other=pw")
    auth = ("001234/sandbox", "sandbox")

    def timed(user_auth=auth) -> float:
        started = time.perf_counter()
        response = requests.get(f"{base}/api/Entities/DebtorClient", auth=user_auth, timeout=10)
        assert response.status_code == 200
        return time.perf_counter() - started

    fast = [timed() for _ in range(2)]
    assert max(fast) < 0.15
    assert 0.19 <= timed() < 0.5          # third call: 1 budget exceeded
    assert timed(("001234/other", "pw")) < 0.15  # other users are not slowed
    requests.put(f"{base}/_sandbox/budget", json={"calls": 4}, timeout=5)
    assert 0.39 <= timed() < 0.8          # 4 calls before this one: 2 budgets exceeded
    view = requests.get(f"{base}/_sandbox/budget", timeout=5).json()
    assert view["calls"] == {"sandbox": 5, "other": 1}
