"""docker-compose.yml is valid compose and its commands point at real modules."""

from __future__ import annotations

import importlib
import os
import subprocess
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def _services() -> dict:
    return yaml.safe_load((ROOT / "docker-compose.yml").read_text())["services"]


def _run(command: list[str], **env: str) -> subprocess.CompletedProcess[str]:
    """A compose command line as the container runs it (the image's PATH holds the project's scripts)."""
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("FLOWER_", "SYNC_CONFIG"))}
    environ["PATH"] = f"{BIN}{os.pathsep}{environ.get('PATH', '')}"
    return subprocess.run(command, cwd=ROOT, env={**environ, **env}, capture_output=True, text=True, timeout=60)


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
    for name in ("worker", "beat"):
        cmd = services[name]["command"]
        assert cmd[:3] == ["celery", "-A", "tasks.app"], cmd
    assert services["flower"]["command"][:3] == ["python", "-m", "tasks.flower"]
    assert (ROOT / ".env.example").exists() and (ROOT / "Dockerfile").exists()
    for name in ("web", "worker", "beat", "flower"):
        assert services[name]["env_file"] == ".env"
        assert services[name]["environment"]["REDIS_URL"] == "redis://redis:6379/0"


def test_compose_metrics_directories_are_per_service_and_start_empty() -> None:
    """prometheus-client's multiprocess files: web and worker each on their own tmpfs; beat and Flower none."""
    services = _services()
    for name in ("web", "worker"):
        path = services[name]["environment"]["PROMETHEUS_MULTIPROC_DIR"]
        assert path in services[name]["tmpfs"]
    for name in ("beat", "flower"):
        assert "PROMETHEUS_MULTIPROC_DIR" not in services[name]["environment"]
    assert services["worker"]["environment"]["SYNC_METRICS_PORT"] in services["worker"]["expose"]
    env_example = (ROOT / ".env.example").read_text().splitlines()
    assert not [line for line in env_example if line.startswith(("PROMETHEUS_MULTIPROC_DIR", "SYNC_METRICS_"))]


def test_makefile_help_lists_targets() -> None:
    import subprocess

    out = subprocess.run(["make", "-s", "help"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    for target in ("install", "run", "test", "lint", "bench", "clean"):
        assert f"make {target}" in out


def test_compose_receiver_refuses_the_demo_configuration() -> None:
    """.env without SYNC_CONFIG would serve the demo, whose token is published, on 0.0.0.0:8000."""
    web = _services()["web"]["command"]
    assert web[:3] == ["gunicorn", "-c", "python:webhooks.gunicorn_conf"] and "0.0.0.0:8000" in web
    result = _run(web)
    assert result.returncode == 2, result.stderr
    assert "refusing to listen on 0.0.0.0" in result.stderr and "Listening at" not in result.stderr


def test_compose_flower_refuses_to_start_without_credentials() -> None:
    """Flower itself would start open to anyone; compose starts it through tasks.flower, which refuses."""
    flower = _services()["flower"]
    assert "5555:5555" in flower["ports"]
    command = [sys.executable if flower["command"][0] == "python" else flower["command"][0], *flower["command"][1:]]
    env_example = (ROOT / ".env.example").read_text()
    assert "\nFLOWER_BASIC_AUTH=\n" in env_example  # the template leaves it empty: it must be chosen
    for env in ({}, {"FLOWER_BASIC_AUTH": ""}, {"FLOWER_BASIC_AUTH": "admin:"}):
        result = _run(command, **env)
        assert result.returncode == 2, (env, result.stderr)
        assert "refusing to start Flower on every interface without authentication" in result.stderr
