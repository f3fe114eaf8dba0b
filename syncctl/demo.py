"""`make run`'s demo: seed fresh sandboxes once, let the data sync as a customer's would, say what to try.

The `Demo` data set (sandbox/*/seed.py) is written without webhooks, like the data a real customer
has before installing the sync, so it reaches the other side the way theirs would: one
`syncctl backfill demo <entity>` per entity, in the order docs/operations.md gives (items and users
before the organisations, persons and deliveries that refer to them). Then the supervisor waits,
bounded, until the sync is quiet and prints the "try this" block (syncctl/demo_block.py). Sandboxes
that already hold data (an earlier run's state files) are not seeded again; the block is printed
for what they hold.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from sync.config import Connection
from syncctl import demo_block
from tasks.broker import idle

ENTITIES = ("item", "user", "organisation", "person", "delivery")
CUSTOMERS = 3  # webCRM customers in the demo (plus a prospect and a supplier)
SEED = 1  # the same names and ids on every fresh demo
SETTLE_SECONDS = 180.0


def _admin(base: str, method: str, path: str, **kw: Any) -> Any:
    resp = requests.request(method, f"{base.rstrip('/')}/_sandbox{path}", timeout=60, **kw)
    resp.raise_for_status()
    return resp.json()


def _tables(base: str) -> demo_block.Tables:
    return _admin(base, "GET", "/state")["tables"]  # type: ignore[no-any-return]


def syncctl_command(redis_url: str, default_url: str) -> str:
    """How to call syncctl from the shell `make run` was started in (REDIS_URL only when not the default)."""
    exe = Path(sys.executable).parent / "syncctl"
    path = os.path.relpath(exe) if exe.exists() else "syncctl"
    if exe.exists() and path.startswith(".."):
        path = str(exe)
    return path if redis_url == default_url else f"REDIS_URL={redis_url} {path}"


def is_fresh(conn: Connection) -> bool:
    """Neither sandbox holds business records yet (webCRM's default user does not count)."""
    webcrm, uniconta = _tables(conn.webcrm.base_url), _tables(conn.uniconta.base_url)
    return not any(webcrm.get(t) for t in ("Organisations", "Deliveries", "LinkedData")) \
        and not any(uniconta.get(t) for t in ("Debtor", "InvItem", "Contact"))


def seed(conn: Connection) -> None:
    _admin(conn.uniconta.base_url, "POST", "/seed", json={"entity": "Demo", "count": 1})
    _admin(conn.webcrm.base_url, "POST", "/seed", json={"entity": "Demo", "count": CUSTOMERS, "seed": SEED})


def backfill(conn: Connection, entity: str, env: dict[str, str]) -> str:
    """`syncctl backfill <connection> <entity>`, as an operator runs it; its one-line result."""
    args = [sys.executable, "-m", "syncctl", "backfill", conn.id, entity, "--json"]
    done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=300, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"syncctl backfill {conn.id} {entity} exited {done.returncode}: "
                           f"{(done.stderr or done.stdout).strip()[-300:]}")
    return str(json.loads(done.stdout).get("message", ""))


def settle(conn: Connection, r: redis.Redis, check: Callable[[], None], timeout: float = SETTLE_SECONDS) -> bool:
    """Wait until no job is left and no webhook was sent since the sync was last idle (our own writes
    come back as webhooks); False after `timeout` seconds. `check` raises to give up early."""
    deadline = time.monotonic() + timeout
    sent_before = -1
    while True:
        sent = 0
        for base in (conn.webcrm.base_url, conn.uniconta.base_url):
            _admin(base, "POST", "/webhooks/flush")
            sent += len(_admin(base, "GET", "/webhooks")["deliveries"])
        if sent == sent_before and idle(r, conn.id):
            return True
        sent_before = sent
        while not idle(r, conn.id):
            check()
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)


def show(conn: Connection, env: dict[str, str], r: redis.Redis, *, syncctl: str, flower: str,
         check: Callable[[], None]) -> None:
    """Seed and sync the demo data if the sandboxes are fresh, then print the "try this" block."""
    if is_fresh(conn):
        started = time.monotonic()
        print("\nDemo data: seeding both sandboxes (entity Demo), then the first sync, as a customer's:", flush=True)
        seed(conn)
        for entity in ENTITIES:
            check()
            print(f"  syncctl backfill {conn.id} {entity}: {backfill(conn, entity, env)}", flush=True)
        if settle(conn, r, check):
            print(f"  synced in {time.monotonic() - started:.0f} s", flush=True)
        else:
            print(f"  still syncing after {SETTLE_SECONDS:.0f} s; `{syncctl} status` shows what waits", flush=True)
    else:
        print("\nDemo data: the sandboxes keep what an earlier run left (state files under the run directory); "
              "`make demo` starts over from fresh ones.", flush=True)
    found = demo_block.tries(conn, _tables(conn.webcrm.base_url), _tables(conn.uniconta.base_url), syncctl)
    print(demo_block.render(found, syncctl=syncctl, flower=flower), flush=True)
