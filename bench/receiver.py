"""Benchmark 1: the receiver under gunicorn against a bare endpoint (the ceiling) and a naive receiver.

All three run under the same gunicorn settings as `make run` (2 workers × 4 threads, gthread) and get
the same requests: a Uniconta Change-URL call (`POST /webhook/b1/uniconta?...&token=...` with the
record as JSON), each for a different record, so our receiver can never answer from its dedupe or
coalescing shortcuts - every request is authenticated, validated, marked and published.

* **bare**: a Flask route that answers 202 with a small JSON body and does nothing else.
* **naive**: a Flask route that reads the query and calls `sync_record.delay(...)` - no token check,
  no validation, no dedupe, no coalescing, no journal.
* **receiver**: `webhooks.app:create_app()`, the real one.

Two measurements per app: closed loop (`--concurrency` keep-alive connections sending back to back:
requests/s and latency) and open loop at a fixed 200 requests/s (latency from the scheduled send time,
so a stall is not hidden by the generator waiting for it).
"""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, request

from bench import _harness as h

APPS = {
    "bare": "bench.receiver:bare_app()",
    "naive": "bench.receiver:naive_app()",
    "receiver": "webhooks.app:create_app()",
}
FIXED_RATE = 200.0


def bare_app() -> Flask:
    """The ceiling: Flask under the same gunicorn, answering 202 and doing nothing."""
    app = Flask("bare")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.route("/webhook/<connection>/uniconta", methods=["GET", "POST"])
    def hook(connection: str) -> Any:
        return jsonify(status="queued"), 202

    return app


def naive_app() -> Flask:
    """What a first version would do: publish a job per call, trusting the caller."""
    import tasks.record  # noqa: F401 - registers the shared task
    from sync.config import load_settings
    from sync.events import Event
    from tasks.celery_app import make_celery

    celery = make_celery(load_settings())
    sync_record = celery.tasks["sync.record"]  # bound to this app in every gunicorn thread

    app = Flask("naive")

    @app.get("/healthz")
    def healthz() -> Any:
        return jsonify(status="ok")

    @app.route("/webhook/<connection>/uniconta", methods=["GET", "POST"])
    def hook(connection: str) -> Any:
        args = request.args
        event = Event(connection, "uniconta", "item", str(args.get("Key") or f"#{args.get('RowId')}"))
        sync_record.delay(event=event.task_kwargs())
        return jsonify(status="queued"), 202

    return app


def _requests(url: str, tag: str) -> h.RequestFactory:
    return h.uniconta_webhook(url, "InvItem", f"{tag}-{{n}}", 1, body={"Item": "x", "Name": "Bench item"})


def run(opts: h.Options) -> h.Report:
    seconds = opts.duration or opts.pick(10.0, 4.0, 1.0)
    warmup = opts.pick(2.0, 1.0, 0.3)
    fixed_seconds = opts.pick(10.0, 4.0, 1.0)
    report = h.Report("receiver")
    results: dict[str, dict[str, Any]] = {}
    with h.Stack("receiver") as stack:
        r = stack.redis
        for name, spec in APPS.items():
            h.log(f"receiver: {name} under gunicorn ({h.GUNICORN_WORKERS}×{h.GUNICORN_THREADS}), "
                  f"{opts.concurrency} connections for {seconds:g} s")
            r.flushall()
            proc = stack.start_receiver(spec, role=f"{name} app")
            try:
                closed = h.closed_loop(proc.url, _requests(proc.url, f"{name}-c"), concurrency=opts.concurrency,
                                       seconds=seconds, warmup=warmup)
                r.flushall()
                fixed = h.open_loop(proc.url, _requests(proc.url, f"{name}-o"), rate=FIXED_RATE,
                                    seconds=fixed_seconds)
                queued = sum(r.llen(q) for q in h.QUEUES.split(","))
            finally:
                stack.stop(proc)
            results[name] = {"closed": closed, "fixed": fixed, "queued_in_fixed": queued}
            h.log(f"receiver: {name}: {closed.rps:,.0f} req/s, p99 {closed.p(99):.1f} ms; at {FIXED_RATE:g}/s "
                  f"p99 {fixed.p(99):.1f} ms")
    bare = results["bare"]["closed"].rps
    naive = results["naive"]["closed"].rps
    rows = []
    for name, res in results.items():
        closed, fixed = res["closed"], res["fixed"]
        bad = sum(n for s, n in closed.statuses.items() if not 200 <= s < 300) + closed.errors
        rows.append([name, closed.rps, closed.p(50), closed.p(99), h.percent(closed.rps, bare),
                     h.ratio(closed.rps, naive), bad])
    report.tables.append(h.Table(
        f"1a. Receiver throughput, closed loop: {opts.concurrency} keep-alive connections, {seconds:g} s "
        f"(gunicorn {h.GUNICORN_WORKERS} workers × {h.GUNICORN_THREADS} threads)",
        ["app", "req/s", "p50 ms", "p99 ms", "of bare", "vs naive", "non-2xx"], rows,
        notes=["every request is a different record: no dedupe or coalescing shortcut",
               "target: receiver ≥ 50 % of bare"]))
    rows = []
    for name, res in results.items():
        fixed = res["fixed"]
        bad = sum(n for s, n in fixed.statuses.items() if not 200 <= s < 300) + fixed.errors
        rows.append([name, fixed.achieved_rate, fixed.p(50), fixed.p(95), fixed.p(99), max(fixed.latencies or [0]) * 1000,
                     h.ratio(fixed.p(99), results["bare"]["fixed"].p(99)), bad])
    report.tables.append(h.Table(
        f"1b. Receiver latency at a fixed {FIXED_RATE:g} req/s, open loop, {fixed_seconds:g} s",
        ["app", "sent/s", "p50 ms", "p95 ms", "p99 ms", "max ms", "p99 vs bare", "non-2xx"], rows,
        notes=["latency counted from each request's scheduled time", "target: receiver p99 < 20 ms"]))
    report.data = {name: {"rps": res["closed"].rps, "p50": res["closed"].p(50), "p99": res["closed"].p(99),
                          "fixed_p50": res["fixed"].p(50), "fixed_p99": res["fixed"].p(99),
                          "statuses": dict(res["closed"].statuses)} for name, res in results.items()}
    return report
