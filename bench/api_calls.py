"""Benchmark 3: API calls per sync, per flow and case, against the minimum a correct sync needs.

Each case is a person's edit in the source sandbox (admin "UI" route → the real webhook → receiver →
one worker process). Both call logs are cleared before the edit and read once everything has settled
(the edit, the sync's writes, and the webhooks those writes cause in turn), so they hold every call
the edit cost. The journal, which records each job's API calls, splits that total between jobs:

* **the sync**: the first job for the edited record (create, update, no-op);
* **echo**: the jobs started by the webhooks our own writes caused (two-way flows only).

The baseline is the minimum for each case, written with its reasoning in `bench/_flows.py` and in
docs/benchmarks.md. A login (once an hour per worker process) is counted apart; the worker logs in
before the first measured case.
"""

from __future__ import annotations

import json
import time
from collections import Counter
from typing import Any

from bench import _flows
from bench import _harness as h

ALL_FLOWS = ("organisations", "items", "orders", "users", "persons")  # dependencies too

LOGIN_PATHS = ("/Auth/ApiLogin", "/Auth/ApiRefresh")


def _jobs_since(stack: h.Stack, since: float) -> list[dict[str, Any]]:
    """Every job that started after `since`, from the journals: record, origin, result and API calls.

    A flow may make calls for another record (the order flow reads the organisation's debtor under
    the organisation's journal); such calls are given to the job that ran at that moment (one worker
    process runs one job at a time).
    """
    jobs: list[dict[str, Any]] = []
    orphans: list[dict[str, Any]] = []
    prefix = f"sync:{h.CONNECTION}:journal:"
    for key in stack.redis.scan_iter(prefix + "*", count=1000):
        entity, _, record = key[len(prefix):].partition(":")
        entries = [json.loads(e) for e in stack.redis.lrange(key, 0, -1)]
        current: dict[str, Any] | None = None
        for e in sorted((e for e in entries if e["at"] >= since), key=lambda e: e["at"]):
            if e["kind"] == "started":
                current = {"entity": entity, "record": record, "origin": e.get("origin"), "at": e["at"],
                           "end": None, "calls": [], "result": None}
                jobs.append(current)
            elif e["kind"] == "api":
                (current["calls"] if current is not None and current["end"] is None else orphans).append(e)
            elif current is not None and e["kind"] in ("done", "dead-letter", "retry", "contended"):
                current["result"] = e.get("action") or e["kind"]
                current["end"] = e["at"]
    for call in orphans:
        owner = next((j for j in jobs if j["at"] <= call["at"] <= (j["end"] or float("inf"))), None)
        if owner is not None:
            owner["calls"].append(call)
    return sorted(jobs, key=lambda j: j["at"])


def _count(calls: list[dict[str, Any]]) -> dict[str, Any]:
    reads = writes = logins = 0
    detail: Counter[str] = Counter()
    for c in calls:
        if c["path"] in LOGIN_PATHS:
            logins += 1
            continue
        if c["method"] == "GET":
            reads += 1
        else:
            writes += 1
        detail[f"{c['system'][0].upper()}: {c['method']} {c.get('rule') or c['path']}"] += 1
    return {"reads": reads, "writes": writes, "logins": logins, "detail": detail}


def _measure(stack: h.Stack, sc: _flows.Scenario, case: str, record: str | None) -> tuple[str, dict[str, Any]]:
    staged = sc.stage() if case == "create" else None
    stack.settle()
    assert stack.webcrm and stack.uniconta
    for proc in (stack.webcrm, stack.uniconta):
        h.admin(proc.url, "DELETE", "/calls")
    since = time.time()
    if case == "create":
        record = sc.create(staged)
    elif case == "update":
        assert record is not None
        sc.update(record)
    else:
        assert record is not None
        sc.noop(record)
    h.wait_for(lambda: any(j["entity"] == sc.entity and j["record"] == record and j["result"] not in (
        None, "retry", "contended") for j in _jobs_since(stack, since)), timeout=60, interval=0.05,
        what=f"{sc.flow} {case} of {record}")
    stack.settle()
    jobs = _jobs_since(stack, since)
    mine = [j for j in jobs if j["entity"] == sc.entity and j["record"] == record]
    first = mine[0]
    echoes = [j for j in jobs if j is not first and j["origin"] == "webhook"]
    other = [j for j in jobs if j is not first and j["origin"] != "webhook"]
    logged = [dict(c, system=system) for system in ("webcrm", "uniconta") for c in stack.calls(system)]
    return record, {"sync": {**_count(first["calls"]), "result": first["result"]},
                    "echo": [_count(j["calls"]) for j in echoes], "other": [_count(j["calls"]) for j in other],
                    "log": _count(logged), "journaled": sum(len(j["calls"]) for j in jobs)}


def run(opts: h.Options) -> h.Report:
    repeats = opts.pick(5, 3, 1)
    report = h.Report("api_calls")
    rows: list[list[Any]] = []
    reasons: list[str] = []
    data: dict[str, Any] = {}
    scenarios = _flows.available(opts.flows)
    with h.Stack("api_calls", flows=ALL_FLOWS) as stack:
        stack.start_receiver()
        stack.start_worker(concurrency=1)
        stack.install_hooks()
        for cls in scenarios:
            sc = cls(stack)
            sc.prepare()
            h.log(f"api_calls: {sc.flow}: {repeats} × create, update, no-op")
            _measure(stack, sc, "create", None)  # the worker logs in here, outside the measured cases
            results: dict[str, list[dict[str, Any]]] = {c: [] for c in ("create", "update", "no-op")}
            for _ in range(repeats):
                record, got = _measure(stack, sc, "create", None)
                results["create"].append(got)
                for case in ("update", "no-op"):
                    _, got = _measure(stack, sc, case, record)
                    results[case].append(got)
            for case in _flows.CASES:
                minimum = sc.minimum.get(case)
                if case == "echo":
                    runs = [e for r in results["create"] + results["update"] for e in r["echo"]]
                    if minimum is None or not sc.echoes:
                        rows.append([sc.flow, "echo", 0, "-", "-", "-", "-", "-", "-", "-",
                                     "n/a: the target fires no webhook for our writes"])
                        continue
                    n = len(runs)
                    if not n:
                        rows.append([sc.flow, "echo", 0, "-", "-", f"{minimum.reads} + {minimum.writes}", "-", "-",
                                     "-", "-", "no echo job seen"])
                        continue
                    reads = sum(r["reads"] for r in runs) / n
                    writes = sum(r["writes"] for r in runs) / n
                    detail = runs[-1]["detail"]
                    rows.append([sc.flow, "echo", n, reads, writes, f"{minimum.reads} + {minimum.writes}",
                                 h.ratio(reads + writes, minimum.calls), "yes" if writes <= minimum.writes else "NO",
                                 "-", "-", "; ".join(f"{k} ×{v}" if v > 1 else k for k, v in sorted(detail.items()))
                                 + " (per echo job)"])
                    data[f"{sc.flow}/echo"] = {"reads": reads, "writes": writes, "jobs": n}
                    reasons.append(f"{sc.flow} echo: minimum {minimum.reads} read + {minimum.writes} writes per echo "
                                   f"webhook - {minimum.why}")
                    continue
                runs = results[case]
                assert minimum is not None
                reads = sum(r["sync"]["reads"] for r in runs) / len(runs)
                writes = sum(r["sync"]["writes"] for r in runs) / len(runs)
                echo_jobs = sum(len(r["echo"]) for r in runs) / len(runs)
                total = sum(r["log"]["reads"] + r["log"]["writes"] for r in runs) / len(runs)
                detail = runs[-1]["sync"]["detail"]
                actions = Counter(r["sync"]["result"] for r in runs)
                rows.append([sc.flow, case, len(runs), reads, writes, f"{minimum.reads} + {minimum.writes}",
                             h.ratio(reads + writes, minimum.calls), "yes" if writes <= minimum.writes else "NO",
                             echo_jobs, total,
                             "; ".join(f"{k} ×{v}" if v > 1 else k for k, v in sorted(detail.items()))
                             + f" ({', '.join(str(a) for a in actions)})"])
                data[f"{sc.flow}/{case}"] = {"reads": reads, "writes": writes, "min_reads": minimum.reads,
                                             "min_writes": minimum.writes, "echo_jobs": echo_jobs, "log_total": total,
                                             "calls": dict(detail),
                                             "journal_matches_log": all(
                                                 r["journaled"] == r["log"]["reads"] + r["log"]["writes"]
                                                 + r["log"]["logins"] for r in runs)}
                reasons.append(f"{sc.flow} {case}: minimum {minimum.reads} read(s) + {minimum.writes} write(s) - "
                               f"{minimum.why}")
            sc.close()
    missing = _flows.missing_flows()
    mismatched = [k for k, v in data.items() if v.get("journal_matches_log") is False]
    report.tables.append(h.Table(
        "3. API calls per sync, against the minimum a correct sync needs (one worker process)",
        ["flow", "case", "n", "reads", "writes", "min r + w", "calls vs min", "writes ≤ min", "echo jobs",
         "all calls (log)", "the sync's calls in the last run (U = Uniconta, W = webCRM; result)"], rows,
        notes=[*reasons,
               "reads/writes: the sync job's own calls (journal); all calls (log): everything the edit cost in both "
               "sandboxes' call logs, echo jobs included",
               "target: no-op and echo 0 writes; create and update at the minimum",
               *([f"journal and call log disagree for: {', '.join(mismatched)}"] if mismatched else []),
               *([f"not measured: {', '.join(missing)} (see docs/benchmarks.md)"] if missing else [])]))
    report.data = data
    return report
