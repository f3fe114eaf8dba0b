"""End-to-end fixtures: both sandbox processes, the receiver over HTTP, a real Celery worker process."""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import redis

from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient
from sync.config import FLOWS, load_settings
from sync.operations.hooks_setup import install_hooks
from sync.redis_server import RedisServer
from tests.support.procs import Proc
from tests.support.stack import (
    CONNECTION,
    Receiver,
    admin,
    clean_sync_state,
    start_worker,
    wait_for,
    worker_env,
    write_config,
)

pytestmark = pytest.mark.slow

# The Uniconta user-defined fields the guide asks for (names matter in Uniconta).
USER_FIELDS = {"Debtor": ["WebcrmId"], "DebtorOrder": ["WebcrmDeliveryId"], "DebtorOrderLine": ["WebcrmLineId"],
               "Employee": ["WebcrmUserId"]}


@dataclass
class Stack:
    webcrm_url: str
    uniconta_url: str
    redis: redis.Redis
    receiver: Receiver
    worker: Proc
    env: dict[str, str]
    log: Path

    def webcrm(self) -> WebcrmClient:
        return WebcrmClient(self.webcrm_url, "sandbox-token")

    def catalogue(self) -> dict[str, dict]:
        """The webCRM catalogue by item number, read from the sandbox's state (no API calls:
        polling through the API would spend the rate limit the worker needs)."""
        state = admin(self.webcrm_url, "GET", "/state")
        rows = state["tables"].get("QuotationLines/LinkedData") or state["tables"].get("LinkedData") or {}
        return {r["QuotationLineLinkedDataItemData1"]: r for r in rows.values()}

    def uniconta(self) -> UnicontaClient:
        return UnicontaClient(self.uniconta_url, 1234, "sandbox", "sandbox")


def quiet(stack: Stack) -> bool:
    """Nothing pending, queued, locked or held unacknowledged by a worker (a job retried after
    lock contention waits inside the worker, in kombu's "unacked" hash). A reconciliation
    sweep's own lock does not count: it is held for the sweep interval, not while working."""
    r = stack.redis
    return (not r.keys("sync:*:pending:*")
            and not [k for k in r.keys("sync:*:lock:*") if ":lock:reconcile:" not in k]
            and all(r.llen(q) == 0 for q in ("webhooks", "sync", "reconcile", "backfill"))
            and not r.hlen("unacked"))


def settle(stack: Stack, timeout: float = 30.0, rounds: int = 3) -> None:
    """Until no webhook is on its way and the worker has nothing left. Three rounds cover an edit,
    the sync's write to the other side, and that write's echo (which must not write again)."""
    for _ in range(rounds):
        admin(stack.uniconta_url, "POST", "/webhooks/flush")
        admin(stack.webcrm_url, "POST", "/webhooks/flush")
        wait_for(lambda: quiet(stack), timeout=timeout, interval=0.02, what="queues to drain")


@dataclass(frozen=True)
class StackConfig:
    """What a module's stack runs. A module that needs other flows or settings overrides the
    `stack_config` fixture; the `stack` fixture stays the one way to start the receiver and worker."""

    name: str = "e2e"  # of its temporary directory
    flows: tuple[str, ...] = FLOWS  # of connection CONNECTION
    extra: str = ""  # TOML after the connections (flow settings)
    connections: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # more connections: name → flows


@pytest.fixture(scope="module")
def stack_config() -> StackConfig:
    return StackConfig()


@pytest.fixture(scope="module")
def stack(stack_config: StackConfig, webcrm_sandbox: str, uniconta_sandbox: str, redis_server: RedisServer,
          tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    tmp = tmp_path_factory.mktemp(stack_config.name)
    url = redis_server.url.rsplit("/", 1)[0] + "/1"  # own database: unit tests flush database 0
    config = write_config(tmp / "sync.toml", webcrm_url=webcrm_sandbox, uniconta_url=uniconta_sandbox,
                          flows=stack_config.flows, extra=stack_config.extra, connections=stack_config.connections)
    env = worker_env(config, url)
    receiver = Receiver(env)
    worker = start_worker(env, tmp / "worker.log")
    client = redis.Redis.from_url(url, decode_responses=True)
    made = Stack(webcrm_sandbox, uniconta_sandbox, client, receiver, worker, env, tmp / "worker.log")
    try:
        yield made
    finally:
        made.worker.stop()  # the one running now: a test may have replaced the first
        if made.worker is not worker:
            worker.stop()
        receiver.stop()
        client.close()


def clean_slate(stack: Stack, connection: str = CONNECTION) -> Stack:
    """Sandboxes reset, our Redis state gone, the hooks of `connection` pointing at the receiver."""
    admin(stack.webcrm_url, "POST", "/reset")
    admin(stack.uniconta_url, "POST", "/reset")
    for table, fields in USER_FIELDS.items():
        admin(stack.uniconta_url, "PUT", f"/userfields/{table}", json=[{"Name": f, "Type": "String"} for f in fields])
    clean_sync_state(stack.redis)
    settings = load_settings(stack.env)
    with stack.webcrm() as webcrm, stack.uniconta() as uniconta:
        install_hooks(settings.connections[connection], webcrm, uniconta, stack.receiver.url)
    return stack


@pytest.fixture
def e2e(stack: Stack) -> Stack:
    """A clean slate with the hooks of connection CONNECTION."""
    return clean_slate(stack)
