"""Start and stop the project's own processes (sandboxes, receiver, worker) for tests."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import requests

from sync.redis_server import free_port

ROOT = Path(__file__).resolve().parents[2]


class Proc:
    """A child process with a base URL, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, args: Sequence[str], *, env: dict[str, str] | None = None, log: Path | None = None,
                 url: str = "") -> None:
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.log = log
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Proc:
        out = open(self.log, "ab") if self.log else subprocess.DEVNULL  # noqa: SIM115 - kept open by the child
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return self

    def wait_http(self, path: str, timeout: float = 20.0) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"{self.args} exited with {self.process.returncode}; log {self.log}")
            try:
                if requests.get(self.url + path, timeout=1).status_code < 500:
                    return self
            except requests.RequestException:
                pass
            time.sleep(0.05)
        raise RuntimeError(f"{self.args} did not answer {path} within {timeout} s; log {self.log}")

    def stop(self, timeout: float = 10.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()

    def kill(self) -> None:
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_sandbox(name: str, log_dir: Path, *, state_file: Path | None = None, port: int | None = None,
                  env: dict[str, str] | None = None) -> Proc:
    """`python -m sandbox.<name>` on a free port, ready when /_sandbox/health answers."""
    port = port or free_port()
    args = [sys.executable, "-m", f"sandbox.{name}", "--host", "127.0.0.1", "--port", str(port)]
    if state_file is not None:
        args += ["--state-file", str(state_file)]
    proc = Proc(args, env=env, log=log_dir / f"sandbox-{name}.log", url=f"http://127.0.0.1:{port}")
    return proc.start().wait_http("/_sandbox/health")
