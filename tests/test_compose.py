"""docker-compose.yml is valid compose and its commands point at real modules."""

from __future__ import annotations

import importlib
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent


def test_compose_services_and_commands() -> None:
    doc = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    services = doc["services"]
    assert set(services) >= {"redis", "web", "worker", "beat", "flower"}
    for name, svc in services.items():
        assert "healthcheck" in svc, f"{name} has no healthcheck"
        assert isinstance(svc.get("command", []), list)
    assert "--appendonly" in services["redis"]["command"]
    # The fsync policy is a setting (REDIS_APPENDFSYNC in .env), as for the embedded Redis.
    assert "${REDIS_APPENDFSYNC:-everysec}" in services["redis"]["command"]
    assert "REDIS_APPENDFSYNC=" in (ROOT / ".env.example").read_text()
    assert any(v.endswith(":/data") for v in services["redis"]["volumes"])
    web = services["web"]["command"]
    module, _, factory = web[-1].partition(":")
    assert getattr(importlib.import_module(module), factory.rstrip("()"))
    for name in ("worker", "beat", "flower"):
        cmd = services[name]["command"]
        assert cmd[:3] == ["celery", "-A", "tasks.app"], cmd
    assert (ROOT / ".env.example").exists() and (ROOT / "Dockerfile").exists()
    for name in ("web", "worker", "beat", "flower"):
        assert services[name]["env_file"] == ".env"


def test_makefile_help_lists_targets() -> None:
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("install", "run", "test", "lint", "bench", "clean"):
        assert f"make {target}" in out
