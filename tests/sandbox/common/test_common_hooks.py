"""WebhookDispatcher against a real local HTTP server: delivery, drop, duplicate, reorder, delay."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator

import pytest

from sandbox.common import Faults, WebhookDispatcher, hooks
from sandbox.common.hooks import REORDER_IDLE
from tests.sandbox.common.conftest import Receiver
from tests.support.http import LiveServer

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def faults() -> Faults:
    return Faults()


@pytest.fixture
def dispatcher(faults: Faults) -> Iterator[WebhookDispatcher]:
    dispatcher = WebhookDispatcher(faults, timeout=2.0)
    yield dispatcher
    dispatcher.stop()


def submit_n(dispatcher: WebhookDispatcher, receiver: Receiver, n: int) -> None:
    for i in range(1, n + 1):
        dispatcher.submit("post", receiver.url + "/hook", params={"n": i}, json={"n": i},
                          headers={"X-Test": "yes"})


def test_delivers_in_order_with_params_json_and_headers(dispatcher: WebhookDispatcher,
                                                        receiver: Receiver) -> None:
    submit_n(dispatcher, receiver, 5)
    assert dispatcher.flush(5)
    got = receiver.received
    assert [r["json"]["n"] for r in got] == [1, 2, 3, 4, 5]
    assert got[0]["method"] == "POST" and got[0]["args"] == {"n": "1"} and got[0]["headers"]["X-Test"] == "yes"
    deliveries = dispatcher.deliveries()
    assert [d["seq"] for d in deliveries] == [1, 2, 3, 4, 5]
    first = deliveries[0]
    assert first["status"] == 200 and "error" not in first and not first["dropped"] and not first["duplicate"]
    assert first["method"] == "POST" and first["url"] == receiver.url + "/hook" and first["params"] == {"n": 1}


def test_get_and_failures_are_recorded_without_retry(dispatcher: WebhookDispatcher, receiver: Receiver) -> None:
    results: list[dict] = []
    receiver.status = 500
    dispatcher.submit("GET", receiver.url + "/change", params={"Table": "Debtor"}, on_result=results.append)
    closed = LiveServer(lambda environ, start_response: [])
    dead = f"{closed.url}/gone"
    closed.close()  # nothing listens there any more
    dispatcher.submit("POST", dead, json={}, on_result=results.append)
    assert dispatcher.flush(5)
    assert len(receiver.received) == 1 and receiver.received[0]["args"] == {"Table": "Debtor"}
    assert [r["status"] for r in results[:1]] == [500]
    assert "ConnectionError" in results[1]["error"] and "status" not in results[1]
    assert len(dispatcher.deliveries()) == 2  # no retries


def test_drop(dispatcher: WebhookDispatcher, faults: Faults, receiver: Receiver) -> None:
    faults.update({"webhook_drop_rate": 1})
    submit_n(dispatcher, receiver, 3)
    assert dispatcher.flush(5)
    assert receiver.received == []
    assert [(d["dropped"], "status" in d) for d in dispatcher.deliveries()] == [(True, False)] * 3


def test_drop_rate_is_repeatable_with_a_seed(dispatcher: WebhookDispatcher, faults: Faults,
                                             receiver: Receiver) -> None:
    runs = []
    for _ in range(2):
        faults.update({"webhook_drop_rate": 0.5, "seed": 3})
        dispatcher.clear()
        submit_n(dispatcher, receiver, 20)
        assert dispatcher.flush(5)
        runs.append([d["dropped"] for d in dispatcher.deliveries()])
    assert runs[0] == runs[1] and 0 < sum(runs[0]) < 20


def test_duplicate(dispatcher: WebhookDispatcher, faults: Faults, receiver: Receiver) -> None:
    faults.update({"webhook_duplicate_rate": 1})
    submit_n(dispatcher, receiver, 2)
    assert dispatcher.flush(5)
    assert [r["json"]["n"] for r in receiver.received] == [1, 1, 2, 2]
    assert [(d["seq"], d["duplicate"]) for d in dispatcher.deliveries()] == [(1, False), (1, True), (2, False),
                                                                            (2, True)]


def test_reorder_window_shuffles_with_the_seed(dispatcher: WebhookDispatcher, faults: Faults,
                                               receiver: Receiver) -> None:
    faults.update({"webhook_reorder_window": 6, "seed": 11})
    submit_n(dispatcher, receiver, 6)  # the window fills: released at once
    got = receiver.wait_for(6, timeout=2)
    expected = [1, 2, 3, 4, 5, 6]
    random.Random(11).shuffle(expected)
    assert expected != [1, 2, 3, 4, 5, 6]
    assert [r["json"]["n"] for r in got] == expected
    assert dispatcher.flush(5)
    assert [d["seq"] for d in dispatcher.deliveries()] == expected


def test_reorder_releases_held_items_when_idle(dispatcher: WebhookDispatcher, faults: Faults,
                                               receiver: Receiver) -> None:
    faults.update({"webhook_reorder_window": 10})
    submit_n(dispatcher, receiver, 3)
    time.sleep(REORDER_IDLE / 4)
    assert receiver.received == []  # held
    got = receiver.wait_for(3, timeout=3)
    assert sorted(r["json"]["n"] for r in got) == [1, 2, 3]


def test_flush_releases_held_items_at_once(dispatcher: WebhookDispatcher, faults: Faults,
                                           receiver: Receiver, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hooks, "REORDER_IDLE", 30.0)  # only flush() can release them in time
    faults.update({"webhook_reorder_window": 10})
    submit_n(dispatcher, receiver, 4)
    started = time.perf_counter()
    assert dispatcher.flush(10)
    assert time.perf_counter() - started < 5
    assert len(receiver.received) == 4


def test_delay_and_flush_timeout(dispatcher: WebhookDispatcher, faults: Faults, receiver: Receiver) -> None:
    faults.update({"webhook_delay_ms": 150})
    started = time.perf_counter()
    submit_n(dispatcher, receiver, 2)
    assert not dispatcher.flush(0.05)
    assert dispatcher.flush(5)
    assert time.perf_counter() - started >= 0.3
    assert len(receiver.received) == 2


def test_clear_discards_pending_and_forgets_the_log(dispatcher: WebhookDispatcher, faults: Faults,
                                                    receiver: Receiver) -> None:
    submit_n(dispatcher, receiver, 1)
    assert dispatcher.flush(5)
    faults.update({"webhook_reorder_window": 10})
    submit_n(dispatcher, receiver, 3)
    dispatcher.clear()
    assert dispatcher.flush(5)
    assert len(receiver.received) == 1 and dispatcher.deliveries() == []


def test_stop_ignores_later_submissions(faults: Faults, receiver: Receiver) -> None:
    dispatcher = WebhookDispatcher(faults)
    dispatcher.stop()
    dispatcher.submit("POST", receiver.url, json={})
    assert dispatcher.flush(1)
    assert receiver.received == []
