"""Benchmark 6: peak memory of the receiver and a worker during benchmarks 2 (latency) and 5 (backfill).

Every benchmark's stack samples the process trees it starts (every 0.25 s) and reads each process's
kernel-tracked peak resident set (`VmHWM`), so this benchmark only reports - it runs latency and
backfill first when they were not run in this invocation. Per role:

* peak RSS: the largest single process's peak (a gunicorn worker, a Celery pool process ...);
* tree PSS: the whole process tree at its sampled peak, shared pages counted once - what the role
  costs the machine (RSS summed over forked processes would count the shared pages several times);
* baseline (same run): the same process right after start, before any load.
"""

from __future__ import annotations

import importlib

from bench import _harness as h

TARGET_MB = 150.0
SOURCES = ("latency", "backfill")
LABELS = {"receiver": "receiver (gunicorn 2×4)", "worker": "worker (Celery prefork)"}


def run(opts: h.Options) -> h.Report:
    report = h.Report("memory")
    extra: list[str] = []
    for name in SOURCES:
        if not any(b.split(" ", 1)[0] == name for b in h.MEMORY):
            h.log(f"memory: running the {name} benchmark to measure it")
            importlib.import_module(f"bench.{name}").run(opts)
            extra.append(name)
    rows = []
    for bench_name, roles in h.MEMORY.items():
        source = bench_name.split(" ", 1)[0] in SOURCES
        for role, peak in roles.items():
            if role not in LABELS and source:
                continue
            label = LABELS.get(role, role)
            verdict = "yes" if peak.peak_rss_mb < TARGET_MB else "NO"
            rows.append([label, bench_name, peak.processes, peak.idle_rss_mb, peak.peak_rss_mb, peak.peak_in,
                         h.ratio(peak.peak_rss_mb, peak.idle_rss_mb), peak.peak_tree_pss_mb,
                         verdict if source else "-"])
    order = {name: i for i, name in enumerate((*SOURCES, "receiver", "api_calls", "burst"))}
    rows.sort(key=lambda r: (order.get(r[1].split(" ", 1)[0], 9), r[1], r[0]))
    report.tables.append(h.Table(
        "6. Peak memory (MB) of the receiver and the worker",
        ["process", "during", "processes", "idle RSS (baseline)", "peak RSS, largest process", "in", "peak vs idle",
         "peak PSS, whole tree", f"process < {TARGET_MB:.0f} MB"], rows,
        notes=["target: < 150 MB per process (the issue counts the backfill's 4 pool processes as 4 worker "
               "processes); the whole tree is shown for sizing a container",
               "latency: receiver under gunicorn and a worker with 1 pool process; backfill: syncctl backfill with "
               "the receiver taking the echoes and a worker with 4 pool processes (A: limits off; 'backfill our "
               "limiter ...': the runs under webCRM's 250/min)",
               "in: where the largest process is - main (gunicorn master, Celery main process) or child "
               "(gunicorn worker, Celery pool process)",
               *( [f"ran {', '.join(extra)} to measure it (their tables are not repeated here)"] if extra else [])]))
    report.data = {b: {role: vars(p) for role, p in roles.items()} for b, roles in h.MEMORY.items()}
    return report
