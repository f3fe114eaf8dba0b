"""What every benchmark shares: options, processes (Redis, sandboxes, gunicorn, Celery), a pure-Python
HTTP load generator, memory tracking, percentiles and tables.

Only the standard library and the project's own dependencies are used, so `make bench` works on a
fresh machine with nothing but Python. Some helpers here copy ideas from `tests/support/` (process
start/stop, config file, `wait_for`, the sandbox admin call) because the benchmarks must not import
the test suite.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import platform
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests

from sync.redis_server import RedisServer, free_port

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CONNECTION = "b1"
TOKEN = "bench-token"
COMPANY = 1234
QUEUES = "webhooks,sync,reconcile,backfill"
# The Uniconta user-defined fields the flows use (the same list `make run` gives the demo sandbox).
USER_FIELDS = "Debtor:WebcrmId,DebtorOrder:WebcrmDeliveryId,DebtorOrderLine:WebcrmLineId,Employee:WebcrmUserId"
# gunicorn as `make run` starts the receiver (syncctl/run.py), minus the access log and its token
# masking (webhooks/gunicorn_conf.py; its cost is in docs/benchmarks.md).
GUNICORN_WORKERS = 2
GUNICORN_THREADS = 4


# --------------------------------------------------------------------------- options and results


@dataclass
class Options:
    """Command-line options shared by every benchmark. `mode` scales the work: full, quick or smoke."""

    mode: str = "full"
    concurrency: int = 8
    duration: float | None = None   # seconds of load per receiver run
    samples: int | None = None      # syncs per flow and sandbox latency (latency benchmark)
    records: int | None = None      # records to backfill (backfill benchmark)
    limited_seconds: float | None = None  # length of the rate-limited backfill run
    flows: tuple[str, ...] = ()     # latency / api_calls: only these flows (default: every one in the tree)
    keep: bool = False              # keep the temporary directory with logs
    verbose: bool = False

    def pick(self, full: Any, quick: Any, smoke: Any) -> Any:
        return {"full": full, "quick": quick, "smoke": smoke}[self.mode]


@dataclass
class Table:
    title: str
    headers: list[str]
    rows: list[list[Any]]
    notes: list[str] = field(default_factory=list)

    def render(self) -> str:
        cells = [[_cell(v) for v in row] for row in self.rows]
        widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(self.headers)]
        lines = [self.title, "  ".join(h.ljust(w) for h, w in zip(self.headers, widths, strict=True)),
                 "  ".join("-" * w for w in widths)]
        for row in cells:
            lines.append("  ".join(c.rjust(w) if _numeric(c) else c.ljust(w)
                                   for c, w in zip(row, widths, strict=True)))
        lines += [f"  * {n}" for n in self.notes]
        return "\n".join(lines)

    def markdown(self) -> str:
        out = [f"**{self.title}**", "", "| " + " | ".join(self.headers) + " |",
               "|" + "|".join("---" for _ in self.headers) + "|"]
        out += ["| " + " | ".join(_cell(v) for v in row) + " |" for row in self.rows]
        if self.notes:
            out.append("")
            out += [f"- {n}" for n in self.notes]
        return "\n".join(out)


@dataclass
class Report:
    name: str
    tables: list[Table] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)
    seconds: float = 0.0


def _cell(value: Any) -> str:
    if isinstance(value, float):
        if value != value:  # NaN
            return "-"
        if abs(value) >= 100:
            return f"{value:,.0f}"
        if abs(value) >= 10:
            return f"{value:.1f}"
        return f"{value:.2f}"
    if isinstance(value, int) and not isinstance(value, bool):
        return f"{value:,}"
    return "-" if value is None else str(value)


def _numeric(text: str) -> bool:
    return text.replace(",", "").replace(".", "").replace("-", "").replace("%", "").replace("×", "").isdigit()


def ratio(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{value / base:.2f}×"


def percent(value: float | None, base: float | None) -> str:
    if value is None or not base:
        return "-"
    return f"{100 * value / base:.0f} %"


def percentile(values: Sequence[float], p: float) -> float:
    """The p-th percentile (0..100) by linear interpolation; NaN for no values."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    k = (len(ordered) - 1) * p / 100
    lo, hi = int(k), min(int(k) + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


def machine() -> dict[str, Any]:
    """What the numbers were measured on."""
    cpu = ""
    with contextlib.suppress(OSError):
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    mem = ""
    with contextlib.suppress(OSError, ValueError, IndexError):
        kb = int(Path("/proc/meminfo").read_text().split("\n")[0].split()[1])
        mem = f"{kb / 1024 / 1024:.1f} GiB"
    return {"cpu": cpu or platform.processor(), "cores": os.cpu_count(), "memory": mem,
            "os": f"{platform.system()} {platform.release()}", "python": platform.python_version()}


def log(message: str) -> None:
    print(f"[{time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- waiting and admin calls


def wait_for(check: Callable[[], Any], timeout: float = 30.0, interval: float = 0.05, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = check()
        except Exception as err:  # a check that raises is "not yet"
            last = err
        else:
            if last:
                return last
        time.sleep(interval)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}; last value {last!r}")


_admin_session = threading.local()


def admin(base: str, method: str, path: str, **kw: Any) -> Any:
    """A sandbox admin call (`/_sandbox/...`: never faulted, never in the call log)."""
    session = getattr(_admin_session, "s", None)
    if session is None:
        session = _admin_session.s = requests.Session()
    resp = session.request(method, f"{base}/_sandbox{path}", timeout=30, **kw)
    if resp.status_code >= 400:
        raise RuntimeError(f"{method} {path}: {resp.status_code} {resp.text[:300]}")
    return resp.json() if resp.content else None


# --------------------------------------------------------------------------- processes


class Proc:
    """A child process in its own process group, stopped with SIGTERM (then SIGKILL)."""

    def __init__(self, name: str, args: Sequence[str], *, env: dict[str, str] | None = None,
                 log_file: Path | None = None, url: str = "") -> None:
        self.name = name
        self.args = list(args)
        self.env = {**os.environ, **(env or {})}
        self.log_file = log_file
        self.url = url
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def pid(self) -> int:
        assert self.process is not None, f"{self.name} is not running"
        return self.process.pid

    def start(self) -> Proc:
        out = open(self.log_file, "ab") if self.log_file else subprocess.DEVNULL  # noqa: SIM115 - the child owns it
        self.process = subprocess.Popen(self.args, cwd=ROOT, env=self.env, stdout=out, stderr=subprocess.STDOUT,
                                        start_new_session=True)
        return self

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def log_tail(self, chars: int = 2000) -> str:
        if self.log_file is None or not self.log_file.exists():
            return ""
        return self.log_file.read_text(errors="replace")[-chars:]

    def wait_http(self, path: str, timeout: float = 30.0) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited; log {self.log_file}:\n{self.log_tail()}")
            with contextlib.suppress(requests.RequestException):
                if requests.get(self.url + path, timeout=1).status_code < 500:
                    return self
            time.sleep(0.05)
        raise RuntimeError(f"{self.name} did not answer {path} within {timeout:.0f} s; log {self.log_file}")

    def wait_log(self, text: str, timeout: float = 30.0) -> Proc:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if not self.alive():
                raise RuntimeError(f"{self.name} exited:\n{self.log_tail()}")
            if text in self.log_tail(1_000_000):
                return self
            time.sleep(0.1)
        raise RuntimeError(f"{self.name} did not log {text!r} within {timeout:.0f} s:\n{self.log_tail()}")

    def stop(self, timeout: float = 15.0) -> None:
        proc, self.process = self.process, None
        if proc is None or proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def start_sandbox(name: str, workdir: Path, *, port: int | None = None, options: Sequence[str] = ()) -> Proc:
    """`python -m sandbox.<name>` on a free port, ready when /_sandbox/health answers."""
    port = port or free_port()
    args = [PY, "-m", f"sandbox.{name}", "--host", "127.0.0.1", "--port", str(port), *options]
    return Proc(f"{name} sandbox", args, log_file=workdir / f"sandbox-{name}.log",
                url=f"http://127.0.0.1:{port}").start().wait_http("/_sandbox/health")


def start_gunicorn(name: str, app: str, env: dict[str, str], workdir: Path, *, ready: str = "/healthz",
                   workers: int = GUNICORN_WORKERS, threads: int = GUNICORN_THREADS) -> Proc:
    """An app under gunicorn with the receiver's production settings (`make run`)."""
    port = free_port()
    args = [PY, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--threads", str(threads), "--log-level", "warning", app]
    safe = name.replace(" ", "-")
    return Proc(name, args, env=env, log_file=workdir / f"{safe}.log",
                url=f"http://127.0.0.1:{port}").start().wait_http(ready)


def start_worker(env: dict[str, str], workdir: Path, *, concurrency: int, name: str = "worker") -> Proc:
    """`celery -A tasks.app worker` on every queue, as `make run` starts it; returns once it is ready."""
    args = [PY, "-m", "celery", "-A", "tasks.app", "worker", "-Q", QUEUES, "--concurrency", str(concurrency),
            "--without-gossip", "--without-mingle", "--without-heartbeat", "--loglevel", "INFO",
            "-n", f"{name}{free_port()}@%h"]
    return Proc(name, args, env=env, log_file=workdir / f"{name}.log").start().wait_log(" ready.", 60)


def write_config(path: Path, *, webcrm_url: str, uniconta_url: str, flows: Sequence[str] = (
        "organisations", "items", "orders", "users", "persons"), webcrm_rate: int = 250,
        uniconta_budget: int = 5000, extra: str = "", keys: str = "") -> Path:
    """A connections file for the sandboxes (one connection, `b1`); `keys` are more of the connection's own
    settings (`batch_size = 1`), `extra` more tables."""
    reserve = "" if uniconta_budget == 0 else f"live_reserve = {min(1000, uniconta_budget - 1)}"
    path.write_text(f"""
[connections.{CONNECTION}]
flows = {json.dumps(list(flows))}
{keys}
[connections.{CONNECTION}.webhook]
tokens = ["{TOKEN}"]
[connections.{CONNECTION}.webcrm]
base_url = "{webcrm_url}"
auth_code = "sandbox-token"
rate_limit_per_minute = {webcrm_rate}
[connections.{CONNECTION}.uniconta]
base_url = "{uniconta_url}"
company_id = {COMPANY}
username = "sandbox"
password = "sandbox"
daily_call_budget = {uniconta_budget}
{reserve}
[connections.{CONNECTION}.organisations]
{extra}
""", encoding="utf-8")
    return path


# --------------------------------------------------------------------------- memory


def _descendants(root: int) -> list[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        ppid = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(ppid, []).append(int(entry.name))
    out, todo = [], [root]
    while todo:
        pid = todo.pop()
        out.append(pid)
        todo.extend(children.get(pid, []))
    return out


def _status_kb(pid: int, name: str) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(name + ":"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def _pss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
            if line.startswith("Pss:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


@dataclass
class MemoryPeak:
    role: str
    processes: int = 0
    idle_rss_mb: float = 0.0       # largest single process right after start
    peak_rss_mb: float = 0.0       # largest single process's peak (VmHWM, kernel-tracked)
    peak_tree_pss_mb: float = 0.0  # the whole process tree, shared pages counted once (sampled)
    peak_in: str = ""              # "main" (gunicorn master / Celery main process) or "child"


class MemoryTracker:
    """Samples the process trees of named processes (RSS, PSS) and reads each one's kernel peak (VmHWM)."""

    def __init__(self, interval: float = 0.25) -> None:
        self.interval = interval
        self.peaks: dict[str, MemoryPeak] = {}
        self._roots: dict[str, int] = {}
        self._hwm: dict[str, dict[int, int]] = {}
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._run, name="memory-tracker", daemon=True)
        self._thread.start()

    def track(self, role: str, proc: Proc) -> None:
        pids = _descendants(proc.pid)
        idle = max((_status_kb(p, "VmRSS") for p in pids), default=0) / 1024
        with self._lock:
            self._roots[role] = proc.pid
            peak = self.peaks.setdefault(role, MemoryPeak(role))
            peak.idle_rss_mb = max(peak.idle_rss_mb, idle)
            self._hwm.setdefault(role, {})
        self._sample()

    def untrack(self, role: str) -> None:
        self._sample()
        with self._lock:
            self._roots.pop(role, None)

    def _sample(self) -> None:
        with self._lock:
            roots = dict(self._roots)
        for role, root in roots.items():
            pids = _descendants(root)
            pss = sum(_pss_kb(p) for p in pids) / 1024
            with self._lock:
                peak = self.peaks[role]
                hwm = self._hwm[role]
                for pid in pids:
                    hwm[pid] = max(hwm.get(pid, 0), _status_kb(pid, "VmHWM"))
                peak.processes = max(peak.processes, len(pids))
                peak.peak_tree_pss_mb = max(peak.peak_tree_pss_mb, pss)
                if hwm:
                    top = max(hwm, key=lambda p: hwm[p])
                    if hwm[top] / 1024 >= peak.peak_rss_mb:
                        peak.peak_rss_mb = hwm[top] / 1024
                        peak.peak_in = "main" if top == root else "child"

    def _run(self) -> None:
        while not self._stop.wait(self.interval):
            with contextlib.suppress(Exception):
                self._sample()

    def close(self) -> dict[str, MemoryPeak]:
        self._sample()
        self._stop.set()
        self._thread.join(2)
        return self.peaks


# Peaks recorded while benchmarks ran, by benchmark then role (read by the memory benchmark).
MEMORY: dict[str, dict[str, MemoryPeak]] = {}


# --------------------------------------------------------------------------- the stack


class Stack:
    """Redis, both sandboxes, the receiver under gunicorn and a Celery worker for one benchmark.

    Use as a context manager; everything it started is stopped on exit (Redis last).
    """

    def __init__(self, name: str, *, flows: Sequence[str] = ("items",), webcrm_rate: int = 0,
                 uniconta_budget: int = 0, keys: str = "", extra: str = "", workdir: Path | None = None) -> None:
        self.name = name
        self.flows = tuple(flows)
        self.webcrm_rate = webcrm_rate
        self.uniconta_budget = uniconta_budget
        self.keys = keys  # more of the connection's settings, as TOML lines
        self.extra = extra  # TOML lines of [connections.b1.organisations] and the tables after it
        self._own_dir = workdir is None
        safe = "".join(c if c.isalnum() else "-" for c in name)
        self.dir = workdir or Path(tempfile.mkdtemp(prefix=f"bench-{safe}-"))
        self.procs: list[Proc] = []
        self.redis_server: RedisServer | None = None
        self.webcrm: Proc | None = None
        self.uniconta: Proc | None = None
        self.receiver: Proc | None = None
        self.worker: Proc | None = None
        self.memory = MemoryTracker()
        self.env: dict[str, str] = {}
        self._redis: Any = None

    # -- lifecycle
    def __enter__(self) -> Stack:
        try:
            self.start_base()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def start_base(self) -> None:
        """Redis and the two sandboxes, plus the config and environment the service processes use."""
        # REDIS_APPENDFSYNC measures the fsync policies (docs/operations.md, Durability).
        self.redis_server = RedisServer(self.dir / "redis", port=free_port(),
                                        appendfsync=os.environ.get("REDIS_APPENDFSYNC") or "everysec")
        self.redis_server.start()
        self.webcrm = start_sandbox("webcrm", self.dir, options=["--rate-limit", str(self.webcrm_rate)])
        self.uniconta = start_sandbox("uniconta", self.dir, options=[
            "--daily-budget", str(self.uniconta_budget), "--user-fields", USER_FIELDS])
        self.procs += [self.webcrm, self.uniconta]
        config = write_config(self.dir / "sync.toml", webcrm_url=self.webcrm.url, uniconta_url=self.uniconta.url,
                              flows=self.flows, webcrm_rate=self.webcrm_rate, uniconta_budget=self.uniconta_budget,
                              keys=self.keys, extra=self.extra)
        self.env = {"SYNC_CONFIG": str(config), "REDIS_URL": self.redis_server.url, "LOG_LEVEL": "INFO",
                    "SYNC_RETRY_BASE_SECONDS": "0.5", "SYNC_RETRY_MAX_SECONDS": "10",
                    "PYTHONDONTWRITEBYTECODE": "1"}

    def start_receiver(self, app: str = "webhooks.app:create_app()", role: str = "receiver") -> Proc:
        proc = start_gunicorn(role, app, self.env, self.dir)
        self.procs.append(proc)
        self.memory.track(role, proc)
        if role == "receiver":
            self.receiver = proc
        return proc

    def start_worker(self, concurrency: int = 2, role: str = "worker") -> Proc:
        proc = start_worker(self.env, self.dir, concurrency=concurrency, name=role)
        self.procs.append(proc)
        self.memory.track(role, proc)
        if role == "worker":
            self.worker = proc
        return proc

    def stop(self, proc: Proc) -> None:
        for role, root in list(self.memory._roots.items()):
            if proc.process is not None and root == proc.pid:
                self.memory.untrack(role)
        proc.stop()
        if proc in self.procs:
            self.procs.remove(proc)
        if proc is self.worker:
            self.worker = None
        if proc is self.receiver:
            self.receiver = None

    def close(self) -> None:
        peaks = self.memory.close()
        if peaks:
            MEMORY.setdefault(self.name, {}).update(peaks)
        for proc in reversed(self.procs):
            proc.stop()
        self.procs.clear()
        if self._redis is not None:
            self._redis.close()
        if self.redis_server is not None:
            self.redis_server.stop()
        if self._own_dir and not os.environ.get("BENCH_KEEP"):
            import shutil

            shutil.rmtree(self.dir, ignore_errors=True)

    # -- helpers
    @property
    def redis(self) -> Any:
        if self._redis is None:
            import redis

            assert self.redis_server is not None
            self._redis = redis.Redis.from_url(self.redis_server.url, decode_responses=True)
        return self._redis

    def env_all(self) -> dict[str, str]:
        """The environment a service process of this stack gets."""
        return {**os.environ, **self.env}

    def settings(self) -> Any:
        from sync.config import load_settings

        return load_settings(self.env)

    def install_hooks(self, receiver_url: str | None = None) -> list[str]:
        from sync.clients.uniconta import UnicontaClient
        from sync.clients.webcrm import WebcrmClient
        from sync.operations.hooks_setup import install_hooks

        assert self.webcrm and self.uniconta
        url = receiver_url or (self.receiver.url if self.receiver else "")
        conn = self.settings().connections[CONNECTION]
        with WebcrmClient(self.webcrm.url, "sandbox-token") as webcrm, \
                UnicontaClient(self.uniconta.url, COMPANY, "sandbox", "sandbox") as uniconta:
            return install_hooks(conn, webcrm, uniconta, url)

    def remove_hooks(self) -> None:
        """Delete Uniconta's Change-URL rows and webCRM's hooks through the API."""
        from sync.clients.uniconta import UnicontaClient

        assert self.webcrm and self.uniconta
        with UnicontaClient(self.uniconta.url, COMPANY, "sandbox", "sandbox") as uniconta:
            for row in uniconta.odata("TableChangeEventClient"):
                uniconta.delete("TableChangeEventClient", {"RowId": row["RowId"]})
        state = admin(self.webcrm.url, "GET", "/state")
        for table, rows in state["tables"].items():
            if table.startswith("Hooks."):
                for ident in rows:
                    requests.delete(f"{self.webcrm.url}/{table.split('.', 1)[1]}/Hooks/{ident}",
                                    headers=self.webcrm_auth(), timeout=10)

    _token: str | None = None

    def webcrm_auth(self) -> dict[str, str]:
        assert self.webcrm
        if self._token is None:
            resp = requests.post(f"{self.webcrm.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"}, timeout=10)
            self._token = resp.json()["AccessToken"]
        return {"Authorization": f"Bearer {self._token}"}

    def idle(self, timeout: float = 120.0) -> None:
        """Wait until no job is queued, pending, running or scheduled for a retry."""
        r = self.redis

        def quiet() -> bool:
            if any(r.llen(q) for q in QUEUES.split(",")):
                return False
            if r.hlen("unacked"):
                return False
            if next(r.scan_iter(f"sync:{CONNECTION}:pending:*", count=1000), None):
                return False
            return not [k for k in r.scan_iter(f"sync:{CONNECTION}:lock:*", count=1000)
                        if ":lock:reconcile:" not in k and ":lock:backfill:" not in k]

        # Twice in a row, a little apart: a job can sit between two of these states for an instant.
        wait_for(lambda: quiet() and (time.sleep(0.15) or quiet()), timeout=timeout, interval=0.05,
                 what="the queues to drain")

    def settle(self, rounds: int = 3, timeout: float = 120.0) -> None:
        """Until no webhook is on its way and nothing is left to do; the rounds cover a change, the
        sync's write to the other side, and that write's echo."""
        for _ in range(rounds):
            self.flush_webhooks()
            self.idle(timeout)

    def flush_webhooks(self) -> None:
        assert self.webcrm and self.uniconta
        admin(self.uniconta.url, "POST", "/webhooks/flush")
        admin(self.webcrm.url, "POST", "/webhooks/flush")

    def reset_sync_state(self) -> None:
        """Delete the service's keys (not the broker's)."""
        r = self.redis
        for key in r.scan_iter("sync:*", count=1000):
            r.delete(key)

    def calls(self, system: str, since: int = 0) -> list[dict[str, Any]]:
        proc = self.webcrm if system == "webcrm" else self.uniconta
        assert proc
        return admin(proc.url, "GET", f"/calls?since={since}")["calls"]

    def call_count(self, system: str) -> int:
        """Every API call the sandbox answered since its call log was last cleared (the log itself keeps
        only the newest 50,000 entries; its counters keep counting)."""
        proc = self.webcrm if system == "webcrm" else self.uniconta
        assert proc
        counters = admin(proc.url, "GET", "/calls?since=999999999999")["counters"]
        return sum(n for k, n in counters.items() if k.startswith("status:"))

    def last_call_seq(self, system: str) -> int:
        calls = self.calls(system, 0)
        return calls[-1]["seq"] if calls else 0

    def catalogue(self) -> dict[str, dict[str, Any]]:
        """The webCRM catalogue by item number, read from the sandbox's state (no API calls)."""
        assert self.webcrm
        state = admin(self.webcrm.url, "GET", "/state")
        rows = state["tables"].get("QuotationLines/LinkedData") or state["tables"].get("LinkedData") or {}
        return {r["QuotationLineLinkedDataItemData1"]: r for r in rows.values()}

    def journal(self, entity: str, record_id: str) -> list[dict[str, Any]]:
        from sync.state import journal

        return journal.entries(self.redis, CONNECTION, entity, record_id)


def flow_available(system: str, entity: str) -> bool:
    """True when the flow that handles (system, entity) exists in this tree."""
    from sync.flows import handler_for

    try:
        return handler_for(system, entity) is not None
    except Exception:
        return False


@contextlib.contextmanager
def timed() -> Iterator[dict[str, float]]:
    box: dict[str, float] = {}
    start = time.perf_counter()
    try:
        yield box
    finally:
        box["seconds"] = time.perf_counter() - start


# --------------------------------------------------------------------------- HTTP load generator


@dataclass
class LoadResult:
    sent: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    errors: int = 0
    latencies: list[float] = field(default_factory=list)  # seconds, successful (2xx) answers only
    seconds: float = 0.0
    achieved_rate: float = 0.0

    @property
    def ok(self) -> int:
        return sum(n for s, n in self.statuses.items() if 200 <= s < 300)

    @property
    def rps(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def p(self, q: float) -> float:
        return percentile(self.latencies, q) * 1000  # ms


RequestFactory = Callable[[int], bytes]


def http_request(method: str, target: str, host: str, *, body: bytes = b"", headers: dict[str, str] | None = None
                 ) -> bytes:
    """The bytes of one HTTP/1.1 keep-alive request."""
    lines = [f"{method} {target} HTTP/1.1", f"Host: {host}", "Connection: keep-alive",
             f"Content-Length: {len(body)}"]
    lines += [f"{k}: {v}" for k, v in (headers or {}).items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body


class _Conn:
    def __init__(self, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.reader: asyncio.StreamReader | None = None
        self.writer: asyncio.StreamWriter | None = None

    async def request(self, data: bytes) -> int:
        """Send one request and read its response; returns the status (reconnects when needed)."""
        for attempt in (0, 1):
            if self.writer is None:
                self.reader, self.writer = await asyncio.open_connection(self.host, self.port)
            assert self.reader is not None
            try:
                self.writer.write(data)
                head = await self.reader.readuntil(b"\r\n\r\n")
            except (ConnectionError, asyncio.IncompleteReadError):
                self.close()
                if attempt:
                    raise
                continue
            status = int(head[9:12])
            length, close = 0, False
            for line in head.split(b"\r\n")[1:]:
                name, _, value = line.partition(b":")
                name = name.strip().lower()
                if name == b"content-length":
                    length = int(value)
                elif name == b"connection" and value.strip().lower() == b"close":
                    close = True
            if length:
                await self.reader.readexactly(length)
            if close:
                self.close()
            return status
        raise ConnectionError("unreachable")

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
        self.reader = self.writer = None


async def _closed_loop(host: str, port: int, make: RequestFactory, concurrency: int, seconds: float,
                       warmup: float, total: int | None) -> LoadResult:
    result = LoadResult()
    counter = iter(range(10**12))
    start = time.perf_counter()
    measure_from = start + warmup
    stop_at = measure_from + seconds

    async def client() -> None:
        conn = _Conn(host, port)
        while True:
            n = next(counter)
            if total is not None and n >= total:
                break
            t0 = time.perf_counter()
            if total is None and t0 >= stop_at:
                break
            try:
                status = await conn.request(make(n))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = -1
            t1 = time.perf_counter()
            if t0 < measure_from:
                continue
            result.sent += 1
            if status < 0:
                result.errors += 1
            else:
                result.statuses[status] += 1
                if 200 <= status < 300:
                    result.latencies.append(t1 - t0)
        conn.close()

    await asyncio.gather(*(client() for _ in range(concurrency)))
    result.seconds = time.perf_counter() - (measure_from if total is None else start)
    return result


async def _open_loop(host: str, port: int, make: RequestFactory, rate: float, seconds: float | None,
                     total: int | None, max_connections: int) -> LoadResult:
    """Requests on a fixed schedule; latency counts from the scheduled time (no coordinated omission)."""
    result = LoadResult()
    count = total if total is not None else int(rate * (seconds or 0))
    idle: list[_Conn] = []
    sem = asyncio.Semaphore(max_connections)
    start = time.perf_counter() + 0.05

    async def one(n: int, due: float) -> None:
        async with sem:
            conn = idle.pop() if idle else _Conn(host, port)
            try:
                status = await conn.request(make(n))
            except (OSError, asyncio.IncompleteReadError, ValueError):
                status = -1
                conn.close()
            done = time.perf_counter()
            idle.append(conn)
        result.sent += 1
        if status < 0:
            result.errors += 1
        else:
            result.statuses[status] += 1
            if 200 <= status < 300:
                result.latencies.append(done - due)

    tasks = []
    for n in range(count):
        due = start + n / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        tasks.append(asyncio.create_task(one(n, due)))
    last_sent = time.perf_counter()
    await asyncio.gather(*tasks)
    result.seconds = time.perf_counter() - start
    result.achieved_rate = count / max(last_sent - start, 1e-9)
    for conn in idle:
        conn.close()
    return result


def closed_loop(url: str, make: RequestFactory, *, concurrency: int, seconds: float = 0.0, warmup: float = 0.0,
                total: int | None = None) -> LoadResult:
    """`concurrency` keep-alive connections sending back to back for `seconds` (after `warmup`), or `total`."""
    host, port = _host_port(url)
    return asyncio.run(_closed_loop(host, port, make, concurrency, seconds, warmup, total))


def open_loop(url: str, make: RequestFactory, *, rate: float, seconds: float | None = None,
              total: int | None = None, max_connections: int = 64) -> LoadResult:
    """`rate` requests per second on a fixed schedule for `seconds` (or `total` requests)."""
    host, port = _host_port(url)
    return asyncio.run(_open_loop(host, port, make, rate, seconds, total, max_connections))


def _host_port(url: str) -> tuple[str, int]:
    hostport = url.split("://", 1)[1].split("/", 1)[0]
    host, port = hostport.rsplit(":", 1)
    return host, int(port)


def uniconta_webhook(url: str, table: str, key: str, row_id: int, action: str = "update",
                     body: dict[str, Any] | None = None) -> RequestFactory:
    """A factory of Uniconta Change-URL calls (`UsePost`: query string + the record as JSON)."""
    host = url.split("://", 1)[1].split("/", 1)[0]
    payload = json.dumps(body or {}).encode()

    def make(n: int) -> bytes:
        k = key.format(n=n)
        target = (f"/webhook/{CONNECTION}/uniconta?CompanyId={COMPANY}&Table={table}&Key={k}&RowId={row_id + n}"
                  f"&Action={action}&token={TOKEN}")
        return http_request("POST", target, host, body=payload, headers={"Content-Type": "application/json"})

    return make


def stats_row(values_ms: Sequence[float]) -> list[float]:
    return [percentile(values_ms, 50), percentile(values_ms, 95), percentile(values_ms, 99)]


def mean(values: Sequence[float]) -> float:
    return statistics.fmean(values) if values else float("nan")
