"""kill -9 of the worker in the middle of syncs, ten times at random points → every item once, right.

Two kinds of kill, both SIGKILL:

* a **pool process** (the prefork child running a job): the worker's main process sees it die and
  puts the job back at once (`task_reject_on_worker_lost`); the record's lock stays behind until its
  TTL (60 s), and the redelivered job waits for it as lock contention;
* the **whole worker** (main process and pool, as the OOM killer or a lost machine would), restarted
  at once as a supervisor would. Its reserved and running jobs sit in the broker's `unacked` hash
  until the visibility timeout (2 × SYNC_RETRY_MAX_SECONDS + the longer of SYNC_TASK_TIME_LIMIT and
  SYNC_BATCH_TIME_LIMIT + 60 s = 74 s here)
  has passed *and* a restore sweep runs: kombu sweeps every `unacked_restore_interval` (10 s) ×
  `unacked_restore_throttle` (10) = 100 s, first when the worker starts. So the last whole-worker kill
  costs about 100 s of this test (measured: docs/benchmarks.md); with the default settings the
  visibility timeout is 780 s.

A person keeps creating and editing items in Uniconta meanwhile (webhooks → receiver → queue).
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import Counter

import pytest

from tests.resilience.conftest import NUMBER, Stack, expect_catalogue
from tests.support.stack import admin

pytestmark = pytest.mark.slow

ITEMS = 30
KILLS = 10
WHOLE_WORKER_KILLS = 3


def test_worker_killed_ten_times_at_random_points_every_item_synced_exactly_once(res: Stack) -> None:
    seed = int(os.environ.get("RESILIENCE_SEED", random.randrange(10**6)))
    print(f"RESILIENCE_SEED={seed}")
    rng = random.Random(seed)
    # Slow API calls, so a random kill usually lands in the middle of a sync.
    admin(res.webcrm.url, "PUT", "/faults", json={"latency_ms": 120})
    admin(res.uniconta.url, "PUT", "/faults", json={"latency_ms": 40})
    res.start_worker(concurrency=2)
    prices = {f"K-{n:03d}": 10.0 + n for n in range(ITEMS)}
    errors: list[BaseException] = []

    def person() -> None:
        try:
            for number, price in prices.items():
                res.ui_item("POST", Item=number, Name=f"Kill test {number}", SalesPrice1=price, CostPrice=1)
                time.sleep(rng.uniform(0.05, 0.3))
            for number in list(prices)[::2]:  # edit every other item once more
                prices[number] = round(prices[number] + 0.5, 2)
                res.ui_item("PUT", Item=number, SalesPrice1=prices[number])
                time.sleep(rng.uniform(0.05, 0.3))
        except BaseException as err:  # surfaced below
            errors.append(err)

    editor = threading.Thread(target=person, name="person")
    editor.start()
    kinds = ["whole"] * WHOLE_WORKER_KILLS + ["pool"] * (KILLS - WHOLE_WORKER_KILLS)
    done: Counter[str] = Counter()
    last_restart = time.monotonic()
    for kind in kinds:
        time.sleep(rng.uniform(0.3, 2.0))
        worker = res.worker
        if kind == "whole":
            res.kill_worker(worker)
            res.start_worker(concurrency=2)
            last_restart = time.monotonic()
            done[kind] += 1
        else:
            pool = res.pool_processes(worker)
            if pool:
                res.kill_pool_process(worker, rng.choice(pool))
                done[kind] += 1
    editor.join(60)
    assert not errors, errors
    assert done["whole"] + done["pool"] >= KILLS, done
    res.flush_webhooks()
    admin(res.webcrm.url, "PUT", "/faults", json={"latency_ms": 0})
    admin(res.uniconta.url, "PUT", "/faults", json={"latency_ms": 0})

    expect_catalogue(res, prices, timeout=240, what="every item in the catalogue once, at its price")
    print(f"recovered {time.monotonic() - last_restart:.0f} s after the last whole-worker restart; kills {dict(done)}")

    rows = Counter(r[NUMBER] for r in res.catalogue_rows())
    assert {n: c for n, c in rows.items() if c != 1} == {}, "duplicates in the webCRM catalogue"
    assert set(rows) == set(prices)
    items = Counter(r["Item"] for r in res.uniconta_items())
    assert items == Counter(prices.keys()), "Uniconta items changed or duplicated"
    assert res.dead_letters() == []
