"""`doctor`'s Redis checks against a real Redis: persistence, and the fsync policy it runs with."""

from __future__ import annotations

import redis

from sync.operations.doctor import Check, _check_redis


def redis_checks(r: redis.Redis, wanted: str | None) -> dict[str, Check]:
    checks: list[Check] = []
    _check_redis(r, checks, wanted)
    return {c.name: c for c in checks}


def test_fsync_weaker_than_configured_is_a_problem_with_its_fix(redis_client: redis.Redis) -> None:
    running = redis_client.config_get("appendfsync")["appendfsync"]
    try:
        redis_client.config_set("appendfsync", "everysec")
        checks = redis_checks(redis_client, "always")
        assert checks["persistence"].ok
        assert not checks["fsync"].ok and "about the last second" in checks["fsync"].message
        assert "appendfsync always" in checks["fsync"].fix
        assert redis_checks(redis_client, "everysec")["fsync"].ok
        redis_client.config_set("appendfsync", "always")
        stronger = redis_checks(redis_client, "everysec")["fsync"]  # stricter than asked is fine
        assert stronger.ok and "nothing Redis acknowledged" in stronger.message
    finally:
        redis_client.config_set("appendfsync", running)
