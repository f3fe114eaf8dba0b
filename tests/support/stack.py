"""The running parts of an end-to-end test: config file, receiver over HTTP, a real Celery worker."""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import requests

from sync.config import load_settings
from sync.redis_server import free_port
from tests.support.http import LiveServer
from tests.support.procs import Proc

TOKEN = "e2e-token"
CONNECTION = "t1"


def write_config(path: Path, *, webcrm_url: str, uniconta_url: str, flows: tuple[str, ...] = (
        "organisations", "items", "orders", "users", "persons"), extra: str = "") -> Path:
    """A connections file for the sandboxes on their test ports."""
    path.write_text(f"""
[connections.{CONNECTION}]
flows = {list(flows)!r}
[connections.{CONNECTION}.webhook]
tokens = ["{TOKEN}"]
[connections.{CONNECTION}.webcrm]
base_url = "{webcrm_url}"
auth_code = "sandbox-token"
[connections.{CONNECTION}.uniconta]
base_url = "{uniconta_url}"
company_id = 1234
username = "sandbox"
password = "sandbox"
{extra}
""".replace("'", '"'), encoding="utf-8")
    return path


def worker_env(config: Path, redis_url: str, **extra: str) -> dict[str, str]:
    return {"SYNC_CONFIG": str(config), "REDIS_URL": redis_url, "SYNC_RETRY_BASE_SECONDS": "0.2",
            "SYNC_RETRY_MAX_SECONDS": "2", "SYNC_RETRY_WINDOW_SECONDS": "20", "LOG_LEVEL": "INFO", **extra}


def start_worker(env: dict[str, str], log: Path, concurrency: int = 2) -> Proc:
    """`celery -A tasks.app worker` as a child process; returns once it reports ready."""
    args = [sys.executable, "-m", "celery", "-A", "tasks.app", "worker", "-Q", "webhooks,sync,reconcile,backfill",
            "--concurrency", str(concurrency), "--without-gossip", "--without-mingle", "--without-heartbeat",
            "--loglevel", "INFO", "-n", f"w{free_port()}@%h"]
    proc = Proc(args, env=env, log=log).start()
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if proc.process is not None and proc.process.poll() is not None:
            raise RuntimeError(f"worker exited: {log.read_text()[-2000:]}")
        if log.exists() and " ready." in log.read_text(errors="replace"):
            return proc
        time.sleep(0.1)
    raise RuntimeError(f"worker not ready: {log.read_text()[-2000:]}")


class Receiver:
    """The real receiver app served over HTTP from a thread (the sandboxes call it)."""

    def __init__(self, env: dict[str, str]) -> None:
        from webhooks.app import create_app

        logging.getLogger("werkzeug").setLevel(logging.WARNING)
        self.live = LiveServer(create_app(load_settings(env)))
        self.port, self.url = self.live.port, self.live.url

    def stop(self) -> None:
        self.live.close()


def clean_sync_state(r: redis.Redis) -> None:
    """Delete our keys but not the broker's (kombu keeps queue bindings in the same database)."""
    for key in r.scan_iter("sync:*", count=1000):
        r.delete(key)


def wait_for(check: Callable[[], Any], timeout: float = 15.0, interval: float = 0.1, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as err:
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}; last value {last!r}")


def admin(base: str, method: str, path: str, **kw: Any) -> Any:
    resp = requests.request(method, f"{base}/_sandbox{path}", timeout=10, **kw)
    assert resp.status_code < 400, resp.text
    return resp.json() if resp.content else None
