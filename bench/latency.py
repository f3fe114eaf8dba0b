"""Benchmark 2: end-to-end latency, webhook accepted → target record written, per flow.

A person edits a record in the source sandbox (its admin "UI" route, which fires the real webhook);
the sandbox calls the receiver (gunicorn, as `make run`), which queues a job for one Celery worker
process (`--concurrency 1`). "Accepted" is the receiver's `queued` journal entry for the record,
"written" the target sandbox's call-log time of the flow's write (both wall clocks of this machine).
Samples run one at a time (create, then update of the same record, alternately), so each measures
the pipeline, not a queue behind other work. Sandbox API latency 0 and 50 ms (fault injection;
applies to every API call, not to webhooks or admin calls).

Baseline, same run: the same minimum API calls (see api_calls) made directly and back to back by
one client in this process - no webhook, receiver, Redis, Celery or worker. The ratio is what the
pipeline adds on top of the API calls it cannot avoid.
"""

from __future__ import annotations

import time
from typing import Any

from bench import _flows
from bench import _harness as h

ALL_FLOWS = ("organisations", "items", "orders", "users", "persons")  # dependencies too

LATENCIES_MS = (0, 50)


def _sample(stack: h.Stack, sc: _flows.Scenario, case: str, record: str | None) -> tuple[str, float, float]:
    """Make one change; returns (record, accepted→written s, change→accepted s)."""
    target = stack.webcrm if sc.target == "webcrm" else stack.uniconta
    assert target is not None
    staged = sc.stage() if case == "create" else None
    since = stack.last_call_seq(sc.target)
    changed_at = time.time()
    if case == "create":
        record = sc.create(staged)
    else:
        assert record is not None
        sc.update(record)

    def written() -> dict[str, Any] | None:
        calls = h.admin(target.url, "GET", f"/calls?since={since}")["calls"]
        return next((c for c in calls if sc.is_write(c)), None)

    call = h.wait_for(written, timeout=60, interval=0.01, what=f"{sc.flow} {case} of {record} to be written")
    queued = [e for e in stack.journal(sc.entity, record) if e["kind"] == "queued" and e["at"] >= changed_at - 0.01]
    if not queued:
        raise RuntimeError(f"no queued journal entry for {sc.entity} {record}")
    accepted_at = min(e["at"] for e in queued)
    stack.settle(rounds=2, timeout=60)
    return record, call["at"] - accepted_at, accepted_at - changed_at


def _baseline(sc: _flows.Scenario, pairs: int) -> dict[str, list[float]]:
    """The minimum calls made directly (hooks not installed: no sync runs meanwhile)."""
    out: dict[str, list[float]] = {"create": [], "update": []}
    for _ in range(pairs):
        record = sc.create(sc.stage())
        for case in ("create", "update"):
            if case == "update":
                sc.update(record)
            call = sc.direct(case, record)
            t0 = time.perf_counter()
            call()
            out[case].append(time.perf_counter() - t0)
    return out


def run(opts: h.Options) -> h.Report:
    samples = opts.samples or opts.pick(100, 30, 2)
    pairs = max(1, samples // 2)
    baseline_pairs = max(1, min(pairs, opts.pick(30, 10, 2)))
    report = h.Report("latency")
    rows: list[list[Any]] = []
    data: dict[str, Any] = {}
    scenarios = _flows.available(opts.flows)
    with h.Stack("latency", flows=ALL_FLOWS) as stack:
        stack.start_receiver()
        stack.start_worker(concurrency=1)
        assert stack.webcrm and stack.uniconta
        measured: dict[tuple[str, int], dict[str, Any]] = {}
        for latency in LATENCIES_MS:
            for sandbox in (stack.webcrm, stack.uniconta):
                h.admin(sandbox.url, "PUT", "/faults", json={"latency_ms": latency})
            for cls in scenarios:
                sc = cls(stack)
                stack.install_hooks()
                sc.prepare()
                h.log(f"latency: {sc.flow} at {latency} ms: baseline ({baseline_pairs} pairs of direct calls)")
                stack.remove_hooks()
                base = _baseline(sc, baseline_pairs)
                sc.close()
                stack.install_hooks()
                h.log(f"latency: {sc.flow} at {latency} ms: {pairs * 2} syncs through the pipeline")
                got: dict[str, list[float]] = {"create": [], "update": []}
                delivery: list[float] = []
                for _ in range(pairs):
                    record, took, delivered = _sample(stack, sc, "create", None)
                    got["create"].append(took)
                    delivery.append(delivered)
                    _, took, delivered = _sample(stack, sc, "update", record)
                    got["update"].append(took)
                    delivery.append(delivered)
                measured[(sc.flow, latency)] = {"pipeline": got, "baseline": base, "delivery": delivery}
        for (flow, latency), res in measured.items():
            for case in ("create", "update", "all"):
                ours = [v * 1000 for v in (res["pipeline"]["create"] + res["pipeline"]["update"] if case == "all"
                                           else res["pipeline"][case])]
                base = [v * 1000 for v in (res["baseline"]["create"] + res["baseline"]["update"] if case == "all"
                                           else res["baseline"][case])]
                p50, p95, p99 = h.stats_row(ours)
                b50, b95, _ = h.stats_row(base)
                rows.append([flow, f"{latency} ms", case, len(ours), p50, p95, p99, max(ours), b50, b95,
                             h.ratio(p95, b95)])
            delivery_ms = [v * 1000 for v in res["delivery"]]
            data[f"{flow}@{latency}ms"] = {
                "p50": h.percentile([v * 1000 for v in res["pipeline"]["create"] + res["pipeline"]["update"]], 50),
                "p95": h.percentile([v * 1000 for v in res["pipeline"]["create"] + res["pipeline"]["update"]], 95),
                "p99": h.percentile([v * 1000 for v in res["pipeline"]["create"] + res["pipeline"]["update"]], 99),
                "webhook_delivery_p50_ms": h.percentile(delivery_ms, 50),
                "baseline_p95": h.percentile([v * 1000 for v in res["baseline"]["create"]
                                              + res["baseline"]["update"]], 95)}
    missing = _flows.missing_flows()
    report.tables.append(h.Table(
        "2. End-to-end latency, webhook accepted → target written (ms), one worker process (concurrency 1)",
        ["flow", "sandbox latency", "case", "n", "p50", "p95", "p99", "max", "direct p50", "direct p95",
         "p95 vs direct"], rows,
        notes=["direct = the minimum API calls made back to back by one client, no webhook/queue/worker",
               "target: p95 < 1,000 ms at 0 ms sandbox latency",
               *([f"not measured: {', '.join(missing)} (no flow or no scenario in this tree)"] if missing else [])]))
    report.data = data
    return report
