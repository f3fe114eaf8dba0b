"""Shared rate limits against a real Redis: sliding window across processes and threads, daily budget."""

from __future__ import annotations

import multiprocessing
import threading
import time
from datetime import datetime
from zoneinfo import ZoneInfo

import pytest
import redis

from sync.clients.errors import Throttled
from sync.state.ratelimit import DailyBudget, SlidingWindowLimiter, combine, current_priority, priority

CPH = ZoneInfo("Europe/Copenhagen")


class Clock:
    def __init__(self, now: float) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


def at(*args: int) -> float:
    """Epoch seconds of a Copenhagen wall-clock time."""
    return datetime(*args, tzinfo=CPH).timestamp()


@pytest.fixture(params=[True, False], ids=["decoded", "bytes"])
def any_redis(request, redis_url, redis_client):
    """The same server through a client with and without decode_responses."""
    if request.param:
        yield redis_client
        return
    client = redis.Redis.from_url(redis_url, decode_responses=False)
    yield client
    client.close()


# --- sliding window -----------------------------------------------------------------------------


def test_window_grants_limit_then_reports_the_wait(any_redis):
    clock = Clock(1000.0)
    limiter = SlidingWindowLimiter(any_redis, "t:win", 3, window=60, clock=clock)
    assert [limiter.acquire() for _ in range(3)] == [0.0, 0.0, 0.0]
    clock.now = 1010.0
    assert limiter.acquire() == pytest.approx(50.0)
    clock.now = 1059.9
    assert limiter.acquire() == pytest.approx(0.1)
    clock.now = 1060.0  # the first three leave the window together
    assert limiter.acquire() == 0.0
    assert any_redis.zcard("t:win") == 1
    assert 0 < any_redis.pttl("t:win") <= 61_000


def test_window_slides_rather_than_resets(redis_client):
    clock = Clock(0.0)
    limiter = SlidingWindowLimiter(redis_client, "t:slide", 2, window=10, clock=clock)
    limiter.acquire()
    clock.now = 6.0
    limiter.acquire()
    clock.now = 10.5  # only the first call has left
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == pytest.approx(5.5)


def test_window_uses_redis_time_by_default(redis_client):
    limiter = SlidingWindowLimiter(redis_client, "t:srv", 2, window=0.3)
    assert limiter.acquire() == 0.0
    assert limiter.acquire() == 0.0
    wait = limiter.acquire()
    assert 0 < wait <= 0.3
    time.sleep(wait + 0.02)
    assert limiter.acquire() == 0.0


def test_limit_zero_is_off(redis_client):
    limiter = SlidingWindowLimiter(redis_client, "t:off", 0)
    assert all(limiter.acquire() == 0.0 for _ in range(100))
    assert not redis_client.exists("t:off")


def test_wait_sleeps_until_a_slot_frees(redis_client):
    clock = Clock(0.0)
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        clock.now += seconds

    limiter = SlidingWindowLimiter(redis_client, "t:wait", 1, window=2, clock=clock, sleep=sleep)
    limiter.wait(5)
    limiter.wait(5)  # sleeps ~2 s of fake time, then gets the slot
    assert len(slept) == 1 and 2.0 <= slept[0] <= 2.02


def test_wait_raises_throttled_when_max_wait_is_too_short(redis_client):
    clock = Clock(0.0)
    slept: list[float] = []
    limiter = SlidingWindowLimiter(redis_client, "t:short", 1, window=30, clock=clock, sleep=slept.append)
    limiter.wait(0)
    with pytest.raises(Throttled) as caught:
        limiter.wait(5)
    assert caught.value.retry_after == pytest.approx(30.0)
    assert caught.value.retryable
    assert not slept


def test_hook_and_combine(redis_client):
    limiter = SlidingWindowLimiter(redis_client, "t:hook", 1, window=30)
    calls: list[str] = []
    hook = combine(lambda: calls.append("first"), None, limiter.hook(max_wait=0))
    hook()
    with pytest.raises(Throttled):
        hook()
    assert calls == ["first", "first"]


@pytest.mark.parametrize(("limit", "window", "key"), [(-1, 60, "k"), (1, 0, "k"), (1, 60, "")])
def test_window_validation(redis_client, limit, window, key):
    with pytest.raises(ValueError):
        SlidingWindowLimiter(redis_client, key, limit, window)


def _grab(url: str, key: str, attempts: int, start: threading.Event | None, out) -> None:
    client = redis.Redis.from_url(url)
    limiter = SlidingWindowLimiter(client, key, 20, window=30)
    if start is not None:
        start.wait(5)
    out.put(sum(1 for _ in range(attempts) if limiter.acquire() == 0.0))
    client.close()


def test_window_is_shared_between_processes(redis_url, redis_client):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    start = ctx.Event()
    procs = [ctx.Process(target=_grab, args=(redis_url, "t:procs", 15, start, out)) for _ in range(2)]
    for proc in procs:
        proc.start()
    start.set()
    grants = [out.get(timeout=10) for _ in procs]
    for proc in procs:
        proc.join(10)
        assert proc.exitcode == 0
    assert sum(grants) == 20  # 30 attempts, one shared limit of 20
    # and this (third) process sees the window as full
    assert SlidingWindowLimiter(redis_client, "t:procs", 20, window=30).acquire() > 0


def test_a_process_sees_the_slots_another_took(redis_url, redis_client):
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    proc = ctx.Process(target=_grab, args=(redis_url, "t:seq", 20, None, out))
    proc.start()
    assert out.get(timeout=10) == 20
    proc.join(10)
    assert SlidingWindowLimiter(redis_client, "t:seq", 20, window=30).acquire() > 0


def test_lua_is_atomic_under_threads(redis_url):
    pool = redis.ConnectionPool.from_url(redis_url, max_connections=32)
    client = redis.Redis(connection_pool=pool)
    limiter = SlidingWindowLimiter(client, "t:threads", 50, window=30)
    grants: list[int] = []
    barrier = threading.Barrier(16)
    lock = threading.Lock()

    def worker() -> None:
        barrier.wait()
        mine = sum(1 for _ in range(25) if limiter.acquire() == 0.0)
        with lock:
            grants.append(mine)

    threads = [threading.Thread(target=worker) for _ in range(16)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(grants) == 50  # 400 attempts, never more than the limit
    assert client.zcard("t:threads") == 50
    pool.disconnect()


def test_threads_never_exceed_the_limit_in_any_window(redis_url):
    """Short real window; a sampler counts, atomically at server time, the grants of the last window."""
    client = redis.Redis.from_url(redis_url)
    window, limit = 0.25, 5
    limiter = SlidingWindowLimiter(client, "t:spans", limit, window=window)
    in_window = client.register_script(
        "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1000000 "
        "return redis.call('ZCOUNT', KEYS[1], '(' .. tostring(now - ARGV[1]), '+inf')"
    )
    grants: list[int] = []
    samples: list[int] = []
    lock = threading.Lock()
    stop = time.monotonic() + 0.8

    def worker() -> None:
        mine = 0
        while time.monotonic() < stop:
            mine += limiter.acquire() == 0.0
            time.sleep(0.002)
        with lock:
            grants.append(mine)

    def sampler() -> None:
        while time.monotonic() < stop:
            samples.append(int(in_window(keys=["t:spans"], args=[window])))

    threads = [threading.Thread(target=worker) for _ in range(6)] + [threading.Thread(target=sampler)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(grants) >= 2 * limit  # the window slid and granted again
    assert len(samples) > 50
    assert max(samples) <= limit
    client.close()


# --- daily budget -----------------------------------------------------------------------------------


def test_batch_stops_at_the_reserve_live_goes_on(any_redis):
    clock = Clock(at(2024, 6, 3, 12, 0))
    budget = DailyBudget(any_redis, "t:budget", budget=10, reserve=4, clock=clock)
    with priority("batch"):
        assert [budget.acquire() for _ in range(6)] == [1, 2, 3, 4, 5, 6]
        with pytest.raises(Throttled) as caught:
            budget.acquire()
    assert caught.value.retry_after == pytest.approx(12 * 3600)
    assert budget.usage() == {"day": "2024-06-03", "used": 6, "budget": 10, "reserve": 4, "remaining_for_batch": 0}

    assert [budget.acquire() for _ in range(6)] == [7, 8, 9, 10, 11, 12]  # live: past the budget too
    assert budget.usage()["used"] == 12
    with priority("batch"), pytest.raises(Throttled):
        budget.acquire()
    assert budget.usage()["used"] == 12  # refused calls are not counted


def test_usage_before_any_call(redis_client):
    budget = DailyBudget(redis_client, "t:fresh", budget=5000, reserve=1000, clock=Clock(at(2024, 1, 1, 8, 0)))
    assert budget.usage() == {"day": "2024-01-01", "used": 0, "budget": 5000, "reserve": 1000,
                              "remaining_for_batch": 4000}


def test_day_rolls_over_at_local_midnight(redis_client):
    clock = Clock(at(2024, 6, 3, 23, 59, 59))
    budget = DailyBudget(redis_client, "t:roll", budget=2, reserve=1, clock=clock)
    with priority("batch"):
        budget.acquire()
        with pytest.raises(Throttled) as caught:
            budget.acquire()
        assert caught.value.retry_after == pytest.approx(1.0)
        clock.now = at(2024, 6, 4, 0, 0, 0)  # 22:00 UTC: a new day in Copenhagen
        assert budget.acquire() == 1
    assert budget.usage()["day"] == "2024-06-04"
    ttl = redis_client.ttl("t:roll:2024-06-04")
    assert 0 < ttl <= 2 * 24 * 3600
    assert redis_client.get("t:roll:2024-06-03") == "1"


def test_seconds_to_midnight_follows_daylight_saving(redis_client):
    budget = DailyBudget(redis_client, "t:dst", budget=1, reserve=0)
    assert budget.seconds_to_midnight(at(2024, 3, 31, 0, 0)) == 23 * 3600  # spring forward
    assert budget.seconds_to_midnight(at(2024, 10, 27, 0, 0)) == 25 * 3600  # fall back
    utc_budget = DailyBudget(redis_client, "t:utc", budget=1, reserve=0, tz="UTC")
    assert utc_budget.seconds_to_midnight(at(2024, 6, 3, 12, 0)) == 14 * 3600


def test_budget_zero_is_off(redis_client):
    budget = DailyBudget(redis_client, "t:none", budget=0, reserve=0)
    with priority("batch"):
        assert all(budget.acquire() == 0 for _ in range(10))
    assert not redis_client.keys("t:none*")
    assert budget.usage()["used"] == 0


def test_budget_is_shared_between_clients(redis_url, redis_client):
    clock = Clock(at(2024, 6, 3, 9, 0))
    other = redis.Redis.from_url(redis_url)
    a = DailyBudget(redis_client, "t:shared", budget=3, reserve=0, clock=clock)
    b = DailyBudget(other, "t:shared", budget=3, reserve=0, clock=clock)
    with priority("batch"):
        a.acquire()
        b.acquire()
        a.acquire()
        with pytest.raises(Throttled):
            b.acquire()
    other.close()


@pytest.mark.parametrize(("budget", "reserve"), [(-1, 0), (10, 11), (10, -1)])
def test_budget_validation(redis_client, budget, reserve):
    with pytest.raises(ValueError):
        DailyBudget(redis_client, "t:bad", budget=budget, reserve=reserve)


def test_priority_context_nests_and_resets():
    assert current_priority() == "live"
    with priority("batch"):
        assert current_priority() == "batch"
        with priority("live"):
            assert current_priority() == "live"
        assert current_priority() == "batch"
    assert current_priority() == "live"
    with pytest.raises(ValueError), priority("urgent"):  # type: ignore[arg-type]
        pass


def test_priority_is_per_thread(redis_client):
    seen: list[str] = []
    with priority("batch"):
        thread = threading.Thread(target=lambda: seen.append(current_priority()))
        thread.start()
        thread.join()
    assert seen == ["live"]


def test_budget_as_client_hook_labels_the_refusal(redis_client):
    """Throttled raised by the hook names the call it stopped."""
    import responses

    from sync.clients.uniconta import UnicontaClient

    budget = DailyBudget(redis_client, "t:hook", budget=1, reserve=0)
    client = UnicontaClient("https://odata.uniconta.test", 1234, "u", "password-1", before_request=budget.acquire)
    with responses.RequestsMock() as rsps:
        rsps.add("GET", "https://odata.uniconta.test/odata/1234/DebtorClient", json={"value": []})
        with priority("batch"):
            assert list(client.odata("DebtorClient")) == []
            with pytest.raises(Throttled) as caught:
                list(client.odata("DebtorClient"))
    assert (caught.value.system, caught.value.path) == ("uniconta", "/odata/1234/DebtorClient")
    assert caught.value.retry_after > 0
