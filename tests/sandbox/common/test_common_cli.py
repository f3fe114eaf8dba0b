"""run_cli in a real process: listening line, env fallbacks, clean errors, SIGTERM saves the state."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

pytestmark = pytest.mark.timeout(60)
ROOT = Path(__file__).resolve().parents[3]
MODULE = "tests.sandbox.common.sandbox_common_demo"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", MODULE, *args], cwd=ROOT, env={**os.environ, **(env or {})},
                          capture_output=True, text=True, timeout=30)


class Running:
    def __init__(self, *args: str, env: dict[str, str] | None = None) -> None:
        self.proc = subprocess.Popen([sys.executable, "-m", MODULE, *args], cwd=ROOT,
                                     env={**os.environ, **(env or {})}, stdout=subprocess.PIPE,
                                     stderr=subprocess.PIPE, text=True)
        assert self.proc.stdout is not None
        self.line = self.proc.stdout.readline().strip()
        self.url = self.line.rsplit(" ", 1)[-1]

    def stop(self) -> int:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        try:
            return self.proc.wait(15)
        finally:
            if self.proc.poll() is None:
                self.proc.kill()
            self.proc.communicate()


@pytest.fixture
def started() -> Iterator[list[Running]]:
    procs: list[Running] = []
    yield procs
    for proc in procs:
        proc.stop()


def test_serves_until_sigterm_and_saves_state(tmp_path: Path, started: list[Running]) -> None:
    state = tmp_path / "state.json"
    port = free_port()
    first = Running("--port", str(port), "--state-file", str(state), "--greeting", "goddag")
    started.append(first)
    assert first.line == f"sandbox demo listening on http://127.0.0.1:{port}"
    assert requests.get(first.url + "/_sandbox/health", timeout=5).json() == {"status": "ok", "name": "demo"}
    assert requests.get(first.url + "/open", timeout=5).json() == {"greeting": "goddag"}
    created = requests.post(first.url + "/_sandbox/seed", json={"entity": "things", "count": 2}, timeout=5)
    assert created.json() == {"created": [2, 3]}
    assert first.stop() == 0
    saved = json.loads(state.read_text(encoding="utf-8"))
    assert sorted(saved["tables"]["things"]) == ["1", "2", "3"]

    second = Running("--port", "0", "--state-file", str(state))  # port 0: the line names the real port
    started.append(second)
    assert not second.url.endswith(":0")
    things = requests.get(second.url + "/things", headers={"X-User": "u"}, timeout=5).json()
    assert [t["id"] for t in things] == [1, 2, 3]
    assert second.stop() == 0


def test_environment_fallbacks(tmp_path: Path, started: list[Running]) -> None:
    port = free_port()
    state = tmp_path / "env-state.json"
    proc = Running(env={"DEMO_SANDBOX_PORT": str(port), "DEMO_SANDBOX_STATE_FILE": str(state),
                        "DEMO_SANDBOX_GREETING": "hejsa"})
    started.append(proc)
    assert proc.url == f"http://127.0.0.1:{port}"
    assert requests.get(proc.url + "/open", timeout=5).json() == {"greeting": "hejsa"}
    proc.proc.send_signal(signal.SIGINT)
    assert proc.stop() == 0 and state.exists()


def test_port_in_use_is_a_one_line_error() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        result = run("--port", str(sock.getsockname()[1]))
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "cannot listen" in result.stderr and "Traceback" not in result.stderr


@pytest.mark.parametrize("args", [["--port", "abc"], ["--port", "70000"], ["--bogus"]])
def test_bad_arguments_are_a_one_line_error(args: list[str]) -> None:
    result = run(*args)
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "error:" in result.stderr


def test_bad_state_file_is_a_one_line_error(tmp_path: Path) -> None:
    state = tmp_path / "state.json"
    state.write_text("[]", encoding="utf-8")
    result = run("--port", "0", "--state-file", str(state))
    assert result.returncode == 2 and result.stderr.count("\n") == 1 and "state file" in result.stderr


def test_help_names_the_environment_variables() -> None:
    result = run("--help")
    assert result.returncode == 0
    for name in ("DEMO_SANDBOX_HOST", "DEMO_SANDBOX_PORT", "DEMO_SANDBOX_STATE_FILE", "DEMO_SANDBOX_GREETING"):
        assert name in result.stdout


def test_listening_line_comes_quickly() -> None:
    started = time.monotonic()
    proc = Running("--port", "0")
    try:
        assert proc.line.startswith("sandbox demo listening on http://127.0.0.1:")
        assert time.monotonic() - started < 10
    finally:
        assert proc.stop() == 0
