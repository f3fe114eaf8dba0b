"""Benchmark 4: burst coalescing - 1,000 webhooks for 10 records, as fast as the receiver takes them.

Ten items exist and are in sync; each is then changed once in Uniconta (no hooks installed, so no
webhook fires by itself), and 1,000 Uniconta Change-URL calls (100 per item, interleaved) are sent
to the receiver over 32 keep-alive connections. One worker as `make run` starts it (2 processes)
does the syncs. Counted once the queues are quiet: syncs (jobs that ran the flow, from the worker's
log), contention retries, writes and all API calls (the sandboxes' call logs).

Baseline, same run and same worker: the naive receiver of benchmark 1 (a job per webhook, no dedupe,
no coalescing) gets the same burst after the items were changed once more.
"""

from __future__ import annotations

import re
import time
from typing import Any

from bench import _flows
from bench import _harness as h

RECORDS = 10
CONNECTIONS = 32
SUCCEEDED = re.compile(r"Task sync\.record\[[^\]]+\] succeeded in [0-9.e-]+s: '([a-z-]+)'")
RETRIED = re.compile(r"Task sync\.record\[[^\]]+\] retry")


def _log_since(proc: h.Proc, offset: int) -> str:
    assert proc.log_file is not None
    with open(proc.log_file, "rb") as fh:
        fh.seek(offset)
        return fh.read().decode(errors="replace")


def _burst(stack: h.Stack, sc: _flows.Items, url: str, records: list[str], total: int) -> dict[str, Any]:
    assert stack.worker and stack.worker.log_file
    for record in records:
        sc.update(record)
    for proc in (stack.webcrm, stack.uniconta):
        assert proc
        h.admin(proc.url, "DELETE", "/calls")
    offset = stack.worker.log_file.stat().st_size
    rows = {r: n + 1 for n, r in enumerate(records)}
    host = url.split("://", 1)[1]

    def make(n: int) -> bytes:
        record = records[n % len(records)]
        target = (f"/webhook/{h.CONNECTION}/uniconta?CompanyId={h.COMPANY}&Table=InvItem&Key={record}"
                  f"&RowId={rows[record]}&Action=update&token={h.TOKEN}")
        return h.http_request("POST", target, host, body=b"{}", headers={"Content-Type": "application/json"})

    started = time.perf_counter()
    load = h.closed_loop(url, make, concurrency=CONNECTIONS, total=total)
    sent_in = time.perf_counter() - started
    stack.idle(timeout=600)
    quiet_in = time.perf_counter() - started
    text = _log_since(stack.worker, offset)
    actions = SUCCEEDED.findall(text)
    calls = {s: stack.calls(s) for s in ("webcrm", "uniconta")}
    writes = sum(1 for c in calls["webcrm"] if sc.is_write(c))
    synced = all(sc.synced(r) for r in records)
    return {"sent": load.sent, "ok": load.ok, "other": load.sent - load.ok, "sent_in": sent_in,
            "quiet_in": quiet_in, "syncs": len(actions), "retries": len(RETRIED.findall(text)),
            "writes": writes, "calls": sum(len(v) for v in calls.values()), "synced": synced,
            "actions": {a: actions.count(a) for a in sorted(set(actions))}}


def run(opts: h.Options) -> h.Report:
    total = opts.pick(1000, 1000, 200)
    report = h.Report("burst")
    with h.Stack("burst", flows=["items"]) as stack:
        receiver = stack.start_receiver()
        naive = stack.start_receiver("bench.receiver:naive_app()", role="naive app")
        stack.start_worker(concurrency=2)
        sc = _flows.Items(stack)
        records = [sc.create() for _ in range(RECORDS)]  # no hooks yet: nothing fires
        for n, record in enumerate(records):  # the first sync of each, then quiet
            h.closed_loop(receiver.url, h.uniconta_webhook(receiver.url, "InvItem", record, n + 1), concurrency=1,
                          total=1)
        stack.idle()
        results = {}
        for name, proc in (("receiver", receiver), ("naive", naive)):
            h.log(f"burst: {total} webhooks for {RECORDS} records through the {name}")
            results[name] = _burst(stack, sc, proc.url, records, total)
            h.log(f"burst: {name}: {results[name]}")
    ours, base = results["receiver"], results["naive"]
    rows = []
    for name, res in (("receiver", ours), ("naive (baseline)", base)):
        rows.append([name, res["sent"], res["sent_in"], res["ok"], res["other"], res["syncs"], res["retries"],
                     res["writes"], res["calls"], res["quiet_in"], "yes" if res["synced"] else "NO",
                     ", ".join(f"{k} {v}" for k, v in res["actions"].items())])
    rows.append(["receiver / naive", h.ratio(ours["sent"], base["sent"]), h.ratio(ours["sent_in"], base["sent_in"]),
                 "", "", h.ratio(ours["syncs"], base["syncs"]), "", h.ratio(ours["writes"], base["writes"]),
                 h.ratio(ours["calls"], base["calls"]), h.ratio(ours["quiet_in"], base["quiet_in"]), "", ""])
    report.tables.append(h.Table(
        f"4. Burst: {total:,} webhooks for {RECORDS} records (each changed once), {CONNECTIONS} connections, "
        "one worker (2 processes)",
        ["receiver", "webhooks", "sent in s", "2xx", "other", "syncs", "lock retries", "writes", "API calls",
         "quiet after s", "final state ok", "sync results"], rows,
        notes=[f"minimum: {RECORDS} syncs and {RECORDS} writes (one per changed record)",
               "syncs = jobs that ran the flow (worker log); a job started while webhooks still arrive is followed "
               "by one more, because the pending mark is cleared before the record is read"]))
    report.data = results
    return report
