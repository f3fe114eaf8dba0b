"""Resilience fixtures: a stack per module that the tests may break on purpose.

Unlike `tests/e2e`, nothing here is shared with other modules: each module gets its own Redis (AOF on,
so it can be killed and restarted on the same data directory and port; `appendfsync always`, the
policy under which Redis itself promises that nothing it acknowledged is lost to a kill: with
`everysec` it answers writes it has not yet written while an fsync is slow, see docs/operations.md),
its own sandbox processes
with state files (so they can be stopped and started again from their state on the same port), the
real receiver over HTTP and a real Celery worker process that can be killed.

Copied idea (to merge later): `tests/support/procs.start_sandbox` (this one passes CLI options and
reuses a port).
"""

from __future__ import annotations

import os
import signal
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from sync.config import load_settings
from sync.operations.hooks_setup import install_hooks
from sync.redis_server import RedisServer, free_port
from sync.state import deadletters, intake
from tests.support.procs import Proc
from tests.support.stack import (
    CONNECTION,
    Receiver,
    admin,
    clean_sync_state,
    start_worker,
    wait_for,
    write_config,
)

NUMBER = "QuotationLineLinkedDataItemData1"
QUEUES = ("webhooks", "sync", "reconcile", "backfill")
# Small enough that a test sees retries and redeliveries, large enough that a slow CI machine does
# not trip the time limit. The broker's visibility timeout follows (2 × 2 + 10 + 60 = 74 s; a batch job's
# limit counts too, so it is as short here).
WORKER_TUNING = {"SYNC_RETRY_BASE_SECONDS": "0.2", "SYNC_RETRY_MAX_SECONDS": "2", "SYNC_TASK_TIME_LIMIT": "10",
                 "SYNC_BATCH_TIME_LIMIT": "10",
                 "SYNC_RETRY_WINDOW_SECONDS": "120", "SYNC_MAX_ATTEMPTS": "100", "LOG_LEVEL": "INFO"}


def start_sandbox(name: str, workdir: Path, port: int, options: list[str]) -> Proc:
    """`python -m sandbox.<name>` on `port` with its state file in `workdir`."""
    args = [sys.executable, "-m", f"sandbox.{name}", "--host", "127.0.0.1", "--port", str(port),
            "--state-file", str(workdir / f"{name}-state.json"), *options]
    proc = Proc(args, log=workdir / f"sandbox-{name}.log", url=f"http://127.0.0.1:{port}")
    return proc.start().wait_http("/_sandbox/health")


@dataclass
class Stack:
    dir: Path
    redis_server: RedisServer
    redis: redis.Redis
    env: dict[str, str]
    webcrm: Proc
    uniconta: Proc
    receiver: Receiver
    workers: list[Proc] = field(default_factory=list)
    _sandbox_options: dict[str, list[str]] = field(default_factory=dict)

    # -- processes
    def start_worker(self, concurrency: int = 2) -> Proc:
        log = self.dir / f"worker-{len(self.workers) + 1}.log"
        worker = start_worker(self.env, log, concurrency=concurrency)
        self.workers.append(worker)
        return worker

    @property
    def worker(self) -> Proc:
        return self.workers[-1]

    def kill_worker(self, worker: Proc) -> None:
        """kill -9 of the whole worker: the main process and its pool, as the OOM killer or a lost node."""
        worker.kill()

    def pool_processes(self, worker: Proc) -> list[int]:
        """Pids of the worker's pool (prefork child) processes."""
        assert worker.process is not None
        parent = worker.process.pid
        children = []
        for entry in Path("/proc").iterdir():
            if entry.name.isdigit():
                try:
                    stat = (entry / "stat").read_text()
                except OSError:
                    continue
                if int(stat.rsplit(")", 1)[1].split()[1]) == parent:
                    children.append(int(entry.name))
        return children

    def kill_pool_process(self, worker: Proc, pid: int) -> None:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass

    def sandbox(self, name: str) -> Proc:
        return self.webcrm if name == "webcrm" else self.uniconta

    def stop_sandbox(self, name: str) -> None:
        """Stop the sandbox process (SIGTERM: it saves its state file, as a real API keeps its data)."""
        self.sandbox(name).stop()

    def start_sandbox(self, name: str) -> None:
        old = self.sandbox(name)
        port = int(old.url.rsplit(":", 1)[1])
        proc = start_sandbox(name, self.dir, port, self._sandbox_options[name])
        if name == "webcrm":
            self.webcrm = proc
        else:
            self.uniconta = proc

    # -- observations
    def catalogue_rows(self) -> list[dict[str, Any]]:
        """Every webCRM catalogue row (from the sandbox's state: no API calls)."""
        state = admin(self.webcrm.url, "GET", "/state")
        rows = state["tables"].get("QuotationLines/LinkedData") or state["tables"].get("LinkedData") or {}
        return list(rows.values())

    def catalogue(self) -> dict[str, dict[str, Any]]:
        return {r[NUMBER]: r for r in self.catalogue_rows()}

    def uniconta_items(self) -> list[dict[str, Any]]:
        state = admin(self.uniconta.url, "GET", "/state")
        return [r for name, rows in state["tables"].items() if "InvItem" in name for r in rows.values()]

    def quiet(self) -> bool:
        """Nothing queued, reserved, pending, locked or waiting for a retry."""
        return self.nothing_to_redeliver() and not self.redis.keys(f"sync:{CONNECTION}:lock:*")

    def nothing_to_redeliver(self) -> bool:
        """No job queued, reserved (unacked) or promised by a pending mark: nothing more will run.

        A mark still `publishing` promises nothing (its publish was never acknowledged, e.g. Redis
        died during it), so it does not count."""
        r = self.redis
        return (not any(r.llen(q) for q in QUEUES) and not r.hlen("unacked")
                and not any(mark.confirmed for mark in intake.pending_marks(r, CONNECTION).values()))

    def dead_letters(self) -> list[dict[str, Any]]:
        return list(deadletters.iter_all(self.redis))

    # -- people editing items in Uniconta (admin "UI" routes: they fire the real Change-URL webhooks)
    def ui_item(self, method: str, **fields: Any) -> dict[str, Any]:
        return admin(self.uniconta.url, method, "/ui/InvItemClient", json=fields)

    def flush_webhooks(self) -> None:
        admin(self.uniconta.url, "POST", "/webhooks/flush")


def expect_catalogue(stack: Stack, prices: dict[str, float], timeout: float, what: str) -> None:
    """Wait until every item is in the catalogue once, at its price, and the service is quiet."""
    def done() -> bool:
        rows = stack.catalogue_rows()
        have = {r[NUMBER]: r["QuotationLineLinkedDataItemPrice"] for r in rows if r[NUMBER] in prices}
        return have == prices and stack.quiet()

    wait_for(done, timeout=timeout, interval=0.5, what=what)
    time.sleep(0.5)
    assert stack.quiet()


@dataclass(frozen=True)
class StackOptions:
    """What a module's stack syncs; a module overrides the `stack_options` fixture to change it."""

    flows: tuple[str, ...] = ("items",)
    settings: dict[str, object] = field(default_factory=dict)  # the connection's own keys (batch_size, ...)


@pytest.fixture(scope="module")
def stack_options() -> StackOptions:
    return StackOptions()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, stack_options: StackOptions) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp("resilience")
    server = RedisServer(tmp / "redis", port=free_port(), appendfsync="always")
    server.start()
    options = {"webcrm": ["--rate-limit", "0"], "uniconta": ["--daily-budget", "0"]}
    webcrm = start_sandbox("webcrm", tmp, free_port(), options["webcrm"])
    uniconta = start_sandbox("uniconta", tmp, free_port(), options["uniconta"])
    config = write_config(tmp / "sync.toml", webcrm_url=webcrm.url, uniconta_url=uniconta.url,
                          flows=stack_options.flows, settings=stack_options.settings,
                          webcrm={"rate_limit_per_minute": 0}, uniconta={"daily_call_budget": 0})
    env = {"SYNC_CONFIG": str(config), "REDIS_URL": server.url, **WORKER_TUNING}
    receiver = Receiver(env)
    client = redis.Redis.from_url(server.url, decode_responses=True, socket_timeout=5, socket_connect_timeout=2)
    built = Stack(tmp, server, client, env, webcrm, uniconta, receiver, _sandbox_options=options)
    try:
        yield built
    finally:
        for worker in built.workers:
            worker.stop()
        receiver.stop()
        built.webcrm.stop()
        built.uniconta.stop()
        client.close()
        server.stop()


@pytest.fixture
def res(stack: Stack) -> Iterator[Stack]:
    """A clean slate: sandboxes reset, no faults, our Redis state and queues empty, hooks installed."""
    for worker in stack.workers:
        worker.stop()
    stack.workers.clear()
    admin(stack.webcrm.url, "POST", "/reset")
    admin(stack.uniconta.url, "POST", "/reset")
    stack.redis.flushdb()
    clean_sync_state(stack.redis)
    settings = load_settings(stack.env)
    from sync.clients.uniconta import UnicontaClient
    from sync.clients.webcrm import WebcrmClient

    with WebcrmClient(stack.webcrm.url, "sandbox-token") as webcrm, \
            UnicontaClient(stack.uniconta.url, 1234, "sandbox", "sandbox") as uniconta:
        install_hooks(settings.connections[CONNECTION], webcrm, uniconta, stack.receiver.url)
    yield stack
