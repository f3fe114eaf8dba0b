"""Helpers for the ops e2e tests: a stack with chosen flows, the CLI in-process, sandbox call logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from click.testing import CliRunner, Result

from sync.redis_server import RedisServer
from syncctl.main import main
from tests.e2e.conftest import Stack
from tests.support.stack import Receiver, admin, start_worker, worker_env, write_config


def make_stack(webcrm_url: str, uniconta_url: str, redis_server: RedisServer, tmp: Path,
               flows: tuple[str, ...], extra: str = "") -> Iterator[Stack]:
    """Like the `stack` fixture of tests/e2e/conftest.py, with only `flows` enabled."""
    url = redis_server.url.rsplit("/", 1)[0] + "/1"  # own database: unit tests flush database 0
    config = write_config(tmp / "sync.toml", webcrm_url=webcrm_url, uniconta_url=uniconta_url, flows=flows,
                          extra=extra)
    env = worker_env(config, url)
    receiver = Receiver(env)
    worker = start_worker(env, tmp / "worker.log")
    client = redis.Redis.from_url(url, decode_responses=True)
    try:
        yield Stack(webcrm_url, uniconta_url, client, receiver, worker, env, tmp / "worker.log")
    finally:
        worker.stop()
        receiver.stop()
        client.close()


def syncctl(stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """Run `syncctl ARGS` in this process against the stack's configuration and Redis."""
    monkeypatch.setenv("SYNC_CONFIG", stack.env["SYNC_CONFIG"])
    monkeypatch.setenv("REDIS_URL", stack.env["REDIS_URL"])
    return CliRunner().invoke(main, list(args))


def writes(base: str, *, exclude_login: bool = True) -> list[str]:
    """Every call to a sandbox that changes data (per its call log)."""
    calls = admin(base, "GET", "/calls")["calls"]
    out = []
    for c in calls:
        path = c["path"]
        if exclude_login and path.startswith("/Auth"):
            continue
        changing = c["method"] in ("POST", "PUT", "DELETE", "PATCH")
        if changing or any(word in path for word in ("/Insert", "/Update", "/Delete")):
            out.append(f"{c['method']} {path}")
    return out



def catalogue_numbers(stack: Stack) -> list[str]:
    return sorted(stack.catalogue())


def dict_of(result: Result) -> Any:
    import json

    assert result.exit_code == 0, result.output
    return json.loads(result.output)
