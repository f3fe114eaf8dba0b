"""Benchmarks 7 and 8: the bulk lane beyond the backfill — a burst of item edits, and a full compare.

7. **1,000 Uniconta item edits within one minute**, with the real limits on (webCRM's 250 calls a
   minute in the sandbox and in our shared limiter). 1,000 items are in Uniconta and in the
   catalogue, in sync; a person then changes every price once, paced over one minute, through the
   Uniconta UI route, so Uniconta sends 1,000 Change-URL calls to the receiver. A worker as `make
   run` starts it (2 processes) does the syncs. Measured when every catalogue price is right and the
   queues are quiet: Uniconta and webCRM calls per edit, 429 answers, minutes until done.
   Baseline, same run: the same edits with bursts off (`burst_threshold = 0`: one job and its reads
   per edit), on 200 items to keep the run short.
8. **A full reconciliation compare reads pages only.** N organisations (about 2N persons) and N
   items in webCRM and Uniconta; `sweep(full=True)` reads every id of every source. Counted per
   source from the call logs, against the pages its records fill: calls ≤ records ÷ page size + 2.
"""

from __future__ import annotations

import math
import time
from typing import Any
from urllib.parse import unquote_plus

from bench import _harness as h

ITEMS_FLOWS = ("items",)
EDIT_SECONDS = 60.0
LIMIT = 250


def _items(stack: h.Stack, count: int) -> list[str]:
    """`count` items in Uniconta (their webhooks dropped), then backfilled into the catalogue."""
    assert stack.uniconta
    numbers = [f"P-{n:05d}" for n in range(count)]
    h.admin(stack.uniconta.url, "PUT", "/faults", json={"webhook_drop_rate": 1.0})
    for n, number in enumerate(numbers):
        h.admin(stack.uniconta.url, "POST", "/ui/InvItemClient", json={"Item": number, "Name": f"Vare {n}",
                                                                     "SalesPrice1": 10 + n % 90})
    h.admin(stack.uniconta.url, "POST", "/webhooks/flush")
    h.admin(stack.uniconta.url, "PUT", "/faults", json={"webhook_drop_rate": 0.0})
    return numbers


def _edits(count: int, keys: str, window_wait: float, seconds: float) -> dict[str, Any]:
    with h.Stack(f"item edits {count}", flows=ITEMS_FLOWS, webcrm_rate=LIMIT, keys=keys) as stack:
        assert stack.webcrm and stack.uniconta
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": 0})  # set-up goes around the limit
        numbers = _items(stack, count)
        stack.start_receiver()
        stack.install_hooks()
        stack.start_worker(concurrency=2)
        from bench.backfill import _backfill

        _backfill(stack, "item")
        assert len(stack.catalogue()) == count, "the catalogue was not filled"
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": LIMIT})
        time.sleep(window_wait)  # a fresh minute in both windows: the set-up's calls must not count
        for proc in (stack.webcrm, stack.uniconta):
            h.admin(proc.url, "DELETE", "/calls")
        prices = {number: 500 + n for n, number in enumerate(numbers)}
        t0 = time.perf_counter()
        pace = seconds / count
        for n, number in enumerate(numbers):
            due = t0 + n * pace
            if (wait := due - time.perf_counter()) > 0:
                time.sleep(wait)
            h.admin(stack.uniconta.url, "PUT", "/ui/InvItemClient", json={"Item": number,
                                                                         "SalesPrice1": prices[number]})
        edited_in = time.perf_counter() - t0

        def right() -> bool:
            catalogue = stack.catalogue()
            return all(catalogue.get(n, {}).get("QuotationLineLinkedDataItemPrice") == p for n, p in prices.items())

        h.wait_for(right, timeout=3600, interval=1.0, what="every catalogue price right")
        stack.settle(rounds=2, timeout=600)
        done_in = time.perf_counter() - t0
        calls = {s: [c for c in stack.calls(s) if not c["path"].startswith("/Auth")] for s in ("webcrm", "uniconta")}
        from sync.state import deadletters

        dead = deadletters.count(stack.redis)
    puts = sum(1 for c in calls["webcrm"] if c["method"] == "PUT")
    return {"edits": count, "edited_in": edited_in, "done_in": done_in, "dead": dead,
            "webcrm": len(calls["webcrm"]), "uniconta": len(calls["uniconta"]), "puts": puts,
            "429": sum(1 for c in calls["webcrm"] if c["status"] == 429)}


def _compare(count: int) -> dict[str, Any]:
    """Seeded webCRM organisations and persons, the same number of items in Uniconta and debtors and
    contacts made by a backfill; then one full compare, its calls counted per source."""
    from bench.backfill import _backfill, _clear_calls, _seed

    with h.Stack("full compare", flows=("organisations", "items", "persons")) as stack:
        assert stack.webcrm and stack.uniconta
        _seed(stack, count)
        _items(stack, count)
        stack.start_worker(concurrency=2)
        for entity in ("organisation", "person"):
            _backfill(stack, entity)
        from sync.operations.reconcile import ID_PAGE, sources_for, sweep
        from sync.runtime import Runtime

        ctx = Runtime(stack.settings()).context(h.CONNECTION)
        assert ctx is not None
        state = {s: h.admin(p.url, "GET", "/state")["tables"] for s, p in (("webcrm", stack.webcrm),
                                                                         ("uniconta", stack.uniconta))}
        _clear_calls(stack)
        queued: list[Any] = []
        sweep(ctx, lambda events, countdown=0.0: queued.extend(events), full=True)
        calls = {s: [c for c in stack.calls(s) if not c["path"].startswith("/Auth")] for s in ("webcrm", "uniconta")}
        rows = []
        for source in sources_for(ctx.connection):
            table = {"Organisation": "Organisations", "Person": "Persons", "User": "Users",
                     "Delivery": "Deliveries"}.get(source.table) if source.system == "webcrm" else \
                {"DebtorClient": "Debtor", "InvItemClient": "InvItem", "EmployeeClient": "Employee",
                 "ContactClient": "Contact"}.get(source.table)
            records = len(state[source.system].get(table or "", {}) or {})
            page = ID_PAGE if source.system == "webcrm" else ctx.connection.uniconta.page_size
            needle = source.table if source.system == "uniconta" else f"+FROM+{source.table}+"
            used = [unquote_plus(c["path"] + "?" + c.get("query", "")) for c in calls[source.system]]
            used = [path for path in used if unquote_plus(needle) in path]
            # The sweep's "changed since" read (filtered on UpdatedAt) is not the compare: right after the
            # set-up every record is inside its overlap window, so it reads them all once more.
            since = sum(1 for path in used if "UpdatedAt >=" in path or "UpdatedAt ge" in path)
            rows.append({"source": source.name, "records": records, "page": page, "calls": len(used) - since,
                         "since": since, "bound": math.ceil(records / page) + 2})
    return {"rows": rows, "queued": len(queued)}


def run(opts: h.Options) -> h.Report:
    report = h.Report("bulk")
    count = opts.pick(1000, 300, 20)
    base_count = max(10, count // 5)
    h.log(f"bulk 7: {count:,} item edits within a minute under {LIMIT}/min")
    wait = opts.pick(61.5, 61.5, 0.0)
    seconds = opts.pick(EDIT_SECONDS, EDIT_SECONDS, 2.0)
    burst = _edits(count, "", wait, seconds)
    h.log(f"bulk 7: {burst}")
    h.log(f"bulk 7: baseline, bursts off, {base_count:,} edits")
    single = _edits(base_count, "burst_threshold = 0", wait, seconds * base_count / count)
    h.log(f"bulk 7: baseline {single}")
    rows = []
    for name, r in (("bursts taken into batches", burst), ("one job per edit (burst_threshold = 0), baseline", single)):
        rows.append([name, r["edits"], r["edited_in"], r["done_in"] / 60, r["uniconta"] / r["edits"],
                     r["webcrm"] / r["edits"], r["puts"] / r["edits"], r["429"], r["dead"]])
    report.tables.append(h.Table(
        f"7. {count:,} Uniconta item edits within one minute, webCRM at {LIMIT} calls a minute, 2 worker processes",
        ["run", "edits", "edited in s", "minutes until every price is right", "Uniconta calls/edit",
         "webCRM calls/edit", "catalogue PUTs/edit", "429 answers", "dead letters"], rows,
        notes=["targets: at most 0.05 Uniconta and 1.05 webCRM calls per edit (one catalogue PUT each, reads by "
               "page), no 429, every item right",
               f"the baseline edits {base_count:,} items (a fifth) at the same pace; calls are per edit"]))
    n = opts.pick(2000, 500, 30)
    h.log(f"bulk 8: full compare of {n:,} organisations, their persons and {n:,} items")
    compare = _compare(n)
    h.log(f"bulk 8: {compare}")
    rows = [[r["source"], r["records"], r["page"], r["calls"], r["bound"], "yes" if r["calls"] <= r["bound"] else "NO",
             r["since"]] for r in compare["rows"]]
    report.tables.append(h.Table(
        "8. A full reconciliation compare: calls per source against the pages its records fill",
        ["source", "records", "page size", "compare calls", "records ÷ page + 2", "within",
         "'changed since' calls"], rows,
        notes=["the compare reads ids and UpdatedAt only (webCRM /Queries, Uniconta OData), in pages; the first "
               f"compare takes the snapshot the next ones compare with ({compare['queued']} records queued)",
               "webCRM's /Queries says nothing about the end: a full last page costs one empty page more",
               "'changed since': the same sweep's incremental read; every record of this run is inside its "
               "overlap window, so it pages through them too (in a running connection it reads what changed)"]))
    report.data = {"burst": burst, "single": single, "compare": compare}
    return report
