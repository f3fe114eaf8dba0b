"""The running parts of an end-to-end test: config file, receiver over HTTP, a real Celery worker."""

from __future__ import annotations

import json
import logging
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import redis
import requests

from sync.config import FLOWS, load_settings
from sync.redis_server import free_port
from tests.support.http import LiveServer
from tests.support.procs import Proc

TOKEN = "e2e-token"
CONNECTION = "t1"


def write_config(path: Path, *, webcrm_url: str, uniconta_url: str, flows: Sequence[str] = FLOWS, extra: str = "",
                 webcrm: Mapping[str, object] | None = None, uniconta: Mapping[str, object] | None = None,
                 connections: Mapping[str, Sequence[str]] | None = None,
                 settings: Mapping[str, object] | None = None) -> Path:
    """A connections file for the sandboxes on their test ports: connection CONNECTION with `flows`, then
    the further `connections` (name → flows) on the same sandboxes, then `extra` (flow settings).
    `webcrm` / `uniconta` are further settings of every connection's client sections, `settings` of
    the connections themselves (`batch_size`, ...)."""
    blocks = [_connection(name, names, webcrm_url=webcrm_url, uniconta_url=uniconta_url, webcrm=webcrm or {},
                          uniconta=uniconta or {}, settings=settings or {})
              for name, names in {CONNECTION: flows, **(connections or {})}.items()]
    path.write_text("".join(blocks) + extra + "\n", encoding="utf-8")
    return path


def _connection(name: str, flows: Sequence[str], *, webcrm_url: str, uniconta_url: str,
                webcrm: Mapping[str, object], uniconta: Mapping[str, object], settings: Mapping[str, object]) -> str:
    return f"""
[connections.{name}]
flows = {_toml(list(flows))}
{_settings(settings)}[connections.{name}.webhook]
tokens = ["{TOKEN}"]
[connections.{name}.webcrm]
base_url = "{webcrm_url}"
auth_code = "sandbox-token"
{_settings(webcrm)}[connections.{name}.uniconta]
base_url = "{uniconta_url}"
company_id = 1234
username = "sandbox"
password = "sandbox"
{_settings(uniconta)}"""


def _settings(values: Mapping[str, object]) -> str:
    return "".join(f"{key} = {_toml(value)}\n" for key, value in values.items())


def _toml(value: object) -> str:
    """A TOML value for a string, number, boolean or a list of them (JSON spells these as TOML does)."""
    return json.dumps(value, ensure_ascii=False)


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
