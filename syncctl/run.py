"""`make run` / `syncctl run`: start the whole service on one machine and stop all of it on Ctrl-C.

Starts, in order: Redis (the embedded one when REDIS_URL is unset), the two
sandboxes (only for the built-in demo connection), the receiver under
gunicorn, a Celery worker, beat and Flower; points the sandboxes' webhooks at
the receiver; prints what runs where. With the demo connection it then seeds
fresh sandboxes, lets the data sync and prints what to try (syncctl/demo.py).
Ctrl-C (or any child dying) stops the children in reverse order, Redis last,
so nothing is left behind and the Redis data (AOF under .run/) is kept.

The receiver and the worker each get a Prometheus multiprocess directory under
.run/metrics/ (emptied as they start); the worker serves its metrics on
127.0.0.1:SYNC_METRICS_PORT (9808).
"""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import click
import requests

from sync.clients.errors import redact
from sync.config import ConfigError, Settings, load_settings
from sync.logs import setup_logging
from sync.redis_server import DEFAULT_HOST, DEFAULT_PORT, RedisServer, RedisServerError
from tasks.flower import auth_problem as flower_auth_problem

log = logging.getLogger("syncctl.run")

RUN_DIR = Path(os.environ.get("SYNC_RUN_DIR", ".run"))
RECEIVER_BIND = os.environ.get("SYNC_BIND", "127.0.0.1:8000")
FLOWER_PORT = int(os.environ.get("FLOWER_PORT", "5555"))
REDIS_PORT = int(os.environ.get("SYNC_REDIS_PORT", str(DEFAULT_PORT)))
METRICS_PORT = int(os.environ.get("SYNC_METRICS_PORT") or "9808")
METRICS_HOST = os.environ.get("SYNC_METRICS_HOST") or "127.0.0.1"
MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"  # one directory per service: never in the shared environment
# Flower stays on loopback; tasks.flower still wants credentials unless this is the demo.
FLOWER_ARGS = ["--address=127.0.0.1", f"--port={FLOWER_PORT}"]


@dataclass
class Service:
    name: str
    args: list[str]
    where: str = ""
    ready_url: str = ""
    console: bool = False  # show its output in the terminal; others log to .run/logs/<name>.log
    env: dict[str, str] = field(default_factory=dict)  # on top of the shared environment
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def log(self) -> Path:
        return RUN_DIR / "logs" / (self.name.replace(" ", "-") + ".log")


def planned_services(settings: Settings) -> list[Service]:
    """The processes `make run` starts for these settings, in start order."""
    py = sys.executable
    services: list[Service] = []
    # The Uniconta user-defined fields the demo connection uses (the guide's; names matter).
    demo_fields = "Debtor:WebcrmId,DebtorOrder:WebcrmDeliveryId,DebtorOrderLine:WebcrmLineId,Employee:WebcrmUserId"
    if settings.demo:
        demo = next(iter(settings.connections.values()))
        for name, base_url in (("webcrm", demo.webcrm.base_url), ("uniconta", demo.uniconta.base_url)):
            hostport = base_url.split("://", 1)[1].rstrip("/")
            host, port = hostport.rsplit(":", 1)
            services.append(Service(
                f"{name} sandbox",
                [py, "-m", f"sandbox.{name}", "--host", host, "--port", port,
                 "--state-file", str(RUN_DIR / f"sandbox-{name}.json"),
                 *(["--user-fields", demo_fields] if name == "uniconta" else [])],
                where=f"http://{hostport}", ready_url=f"http://{hostport}/_sandbox/health"))
    # The demo's token is public knowledge: it only ever listens on loopback.
    bind = RECEIVER_BIND if not settings.demo else "127.0.0.1:" + RECEIVER_BIND.rsplit(":", 1)[-1]
    services.append(Service(
        "receiver",
        [py, "-m", "gunicorn", "-c", "python:webhooks.gunicorn_conf", "--bind", bind, "--workers", "2", "--threads", "4",
         "--access-logfile", "-", "--log-level", "warning", "webhooks.app:create_app()"],
        where=f"http://{bind}  (POST /webhook/<connection>/webcrm|uniconta, GET /metrics)",
        ready_url=f"http://{bind}/healthz", env={MULTIPROC_ENV: str(RUN_DIR / "metrics" / "receiver")}))
    celery = [py, "-m", "celery", "-A", "tasks.app"]
    services.append(Service("worker", [*celery, "worker", "--loglevel", settings.log_level, "--concurrency", "2",
                                       "-Q", "webhooks,sync,reconcile,backfill", "-E", "--without-gossip"],
                            where="queues webhooks, sync, reconcile, backfill; metrics "
                                  f"http://{METRICS_HOST}:{METRICS_PORT}/metrics", console=True,
                            env={MULTIPROC_ENV: str(RUN_DIR / "metrics" / "worker"),
                                 "SYNC_METRICS_PORT": str(METRICS_PORT), "SYNC_METRICS_HOST": METRICS_HOST}))
    services.append(Service("beat", [*celery, "beat", "--loglevel", settings.log_level,
                                     "--schedule", str(RUN_DIR / "celerybeat-schedule")],
                            where="reconciliation schedule"))
    services.append(Service("flower", [py, "-m", "tasks.flower", *FLOWER_ARGS], where=f"http://127.0.0.1:{FLOWER_PORT}"))
    return services


def _wait_ready(service: Service, timeout: float = 30.0) -> None:
    if not service.ready_url:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if service.process is not None and service.process.poll() is not None:
            raise RuntimeError(f"{service.name} exited with {service.process.returncode}")
        try:
            if requests.get(service.ready_url, timeout=1).status_code < 500:
                return
        except requests.RequestException:
            time.sleep(0.1)
    raise RuntimeError(f"{service.name} did not become ready within {timeout:.0f} s")


def _stop(service: Service, timeout: float = 15.0) -> None:
    proc, service.process = service.process, None
    if proc is None or proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    except ProcessLookupError:
        pass


class _Stop(Exception):
    pass


def _dead(started: list[Service]) -> Service | None:
    return next((s for s in started if s.process is not None and s.process.poll() is not None), None)


def _show_demo(settings: Settings, env: dict[str, str], started: list[Service]) -> None:
    """Seed and sync the demo data (fresh sandboxes only), then print what to try; a failure here is
    reported and leaves the running services alone."""
    import redis

    from sync.runtime import EMBEDDED_REDIS_URL
    from syncctl import demo

    def check() -> None:
        if _dead(started) is not None:
            raise _Stop

    url = env.get("REDIS_URL") or EMBEDDED_REDIS_URL
    client = redis.Redis.from_url(url, decode_responses=True, socket_timeout=10)
    try:
        demo.show(next(iter(settings.connections.values())), env, client,
                  syncctl=demo.syncctl_command(url, EMBEDDED_REDIS_URL), flower=f"http://127.0.0.1:{FLOWER_PORT}",
                  check=check)
    except _Stop:
        raise
    except Exception as err:
        print(f"demo: {redact(str(err))} (the services keep running)", file=sys.stderr, flush=True)
    finally:
        client.close()


def supervise() -> int:
    """Start everything, wait for Ctrl-C or a child's death, stop everything; the exit code."""
    try:
        settings = load_settings()
    except ConfigError as err:
        print(f"configuration error: {err}", file=sys.stderr)
        return 2
    setup_logging(settings.log_level, settings.log_format)
    problem = flower_auth_problem(FLOWER_ARGS, os.environ, demo=settings.demo)
    if problem:  # say so before anything starts, not after Flower, the last service, exits
        print(f"error: {problem}", file=sys.stderr)
        return 2
    RUN_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.pop(MULTIPROC_ENV, None)  # Flower and beat keep prometheus-client's ordinary mode
    redis_server: RedisServer | None = None
    if settings.redis_url is None:
        redis_server = RedisServer(RUN_DIR / "redis", host=DEFAULT_HOST, port=REDIS_PORT,
                                   appendfsync=settings.redis_appendfsync)
        try:
            redis_server.start()
        except RedisServerError as err:
            print(f"error: {err}", file=sys.stderr)
            return 1
        env["REDIS_URL"] = redis_server.url
    redis_where = (f"{redis_server.url}, appendfsync {redis_server.appendfsync}" if redis_server
                   else "REDIS_URL (external)")

    def _on_signal(signum: int, frame: object) -> None:
        raise _Stop

    signal.signal(signal.SIGINT, _on_signal)
    signal.signal(signal.SIGTERM, _on_signal)
    services = planned_services(settings)
    started: list[Service] = []
    code = 0
    try:
        for service in services:
            out = None
            if not service.console:
                service.log.parent.mkdir(parents=True, exist_ok=True)
                out = open(service.log, "ab")  # noqa: SIM115 - the child owns it from here
            service.process = subprocess.Popen(service.args, env={**env, **service.env}, start_new_session=True,
                                               stdout=out, stderr=subprocess.STDOUT if out else None)
            started.append(service)
            _wait_ready(service)
        if settings.demo:
            from sync.operations.hooks_setup import install_demo_hooks

            created = install_demo_hooks(settings, receiver=f"http://127.0.0.1:{RECEIVER_BIND.rsplit(':', 1)[-1]}")
            log.info("webhooks installed in the sandboxes: %s", ", ".join(created) or "already there")
            from sync.operations.doctor import install_demo_fields

            install_demo_fields(settings)  # labels for the custom fields the demo uses, so `doctor` passes
        print("\nRunning (Ctrl-C stops everything):", flush=True)
        print(f"  {'redis':<17} {redis_where}  (data in {RUN_DIR / 'redis'})")
        for service in started:
            where = service.where if service.console else f"{service.where}  (log {service.log})"
            print(f"  {service.name:<17} {where}")
        print(f"  {'configuration':<17} {settings.source}; connections: {', '.join(settings.connections)}",
              flush=True)
        if settings.demo:
            _show_demo(settings, env, started)
        while _dead(started) is None:
            time.sleep(0.5)
        raise _Stop
    except _Stop:
        dead = _dead(started)
        if dead is not None and dead.process is not None:
            print(f"{dead.name} exited with {dead.process.returncode}; stopping", file=sys.stderr)
            code = 1
    except Exception as err:
        print(f"error: {err}", file=sys.stderr)
        code = 1
    finally:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        print("\nstopping...", file=sys.stderr, flush=True)
        for service in reversed(started):
            _stop(service)
        if redis_server is not None:
            redis_server.stop()
        print("stopped.", file=sys.stderr, flush=True)
    return code


@click.command()
def run() -> None:
    """Start Redis, the sandboxes (demo connection), the receiver, a worker, beat and Flower; Ctrl-C stops all."""
    sys.exit(supervise())


if __name__ == "__main__":
    sys.exit(supervise())
