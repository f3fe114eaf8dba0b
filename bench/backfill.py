"""Benchmark 5: backfill of organisations and persons — calls per record, records per second, and a day's budget.

The webCRM sandbox is seeded with N organisations (the seeder gives each 1-3 persons, about 2N in all;
3 of its 5 organisation types are customers here) and `syncctl backfill b1 organisation`, then
`syncctl backfill b1 person`, run as an operator runs them, against a worker with 4 processes, with
the receiver up and the hooks installed (so the webhooks of our own writes are part of the cost, as
in production). A backfill is done when the command has queued everything and the queues are quiet.
Every API call is counted from the sandboxes' call logs (logins left out).

A. Rate limits off: the bulk lane (one batch job per page of `batch_size` records) against two
   baselines measured in the same run:
   * one job per record (`batch_size = 1`, the path before the bulk lane), on a smaller seed;
   * the fewest calls the APIs allow for the same result, made directly by 4 threads - read the
     organisations, debtors and persons in pages, then per customer organisation insert the debtor
     and write its number back, per person of a customer insert the contact and write its RowId back.
     No lookups, no journal, no queue: a one-off load into empty systems, not a safe sync.
C. The real limits on, in the sandboxes and in our limiter: webCRM's 250 calls per rolling minute and
   Uniconta's 5,000 calls a day with the 1,000-call live reserve. The same backfill must finish inside
   one day's budget (the batch share, 4,000 calls) with no 429 and no budget stop.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Callable
from typing import Any

from bench import _harness as h

ALL_FLOWS = ("organisations", "items", "orders", "users", "persons")
WORKER_PROCESSES = 4
LIMIT = 250
DAILY_BUDGET = 5000
SEED = 11


def _seed(stack: h.Stack, organisations: int) -> dict[str, int]:
    assert stack.webcrm
    done = 0
    while done < organisations:
        batch = min(10_000, organisations - done)
        h.admin(stack.webcrm.url, "POST", "/seed", json={"entity": "Organisations", "count": batch,
                                                         "seed": SEED + done})
        done += batch
    return _counts(stack)


def _counts(stack: h.Stack) -> dict[str, int]:
    assert stack.webcrm and stack.uniconta
    webcrm = h.admin(stack.webcrm.url, "GET", "/state")["tables"]
    uniconta = h.admin(stack.uniconta.url, "GET", "/state")["tables"]
    return {"organisations": len(webcrm.get("Organisations") or {}), "persons": len(webcrm.get("Persons") or {}),
            "debtors": len(uniconta.get("Debtor") or {}), "contacts": len(uniconta.get("Contact") or {})}


def _syncctl(stack: h.Stack, *args: str) -> subprocess.Popen[bytes]:
    log = open(stack.dir / "syncctl.log", "ab")  # noqa: SIM115 - the child owns it
    return subprocess.Popen([h.PY, "-m", "syncctl", *args], cwd=h.ROOT, env={**stack.env_all(), "NO_COLOR": "1"},
                            stdout=log, stderr=subprocess.STDOUT)


def _backfill(stack: h.Stack, entity: str) -> int:
    """`syncctl backfill b1 <entity>` until it has queued everything and the workers are done; its exit code."""
    code = _syncctl(stack, "backfill", h.CONNECTION, entity).wait()
    stack.settle(rounds=2, timeout=3600)
    return code


def _clear_calls(stack: h.Stack) -> None:
    assert stack.webcrm and stack.uniconta
    for proc in (stack.webcrm, stack.uniconta):
        h.admin(proc.url, "DELETE", "/calls")


def _api_calls(stack: h.Stack) -> dict[str, int]:
    """Calls answered since the logs were cleared, logins left out, and the 429 answers among them."""
    out: dict[str, int] = {}
    for system in ("webcrm", "uniconta"):
        proc = stack.webcrm if system == "webcrm" else stack.uniconta
        assert proc
        counters = h.admin(proc.url, "GET", "/calls?since=999999999999")["counters"]
        logins = sum(n for k, n in counters.items() if not k.startswith("status:") and "/Auth" in k)
        out[system] = sum(n for k, n in counters.items() if k.startswith("status:")) - logins
        out[f"{system}_429"] = counters.get("status:429", 0)
    return out


def _run(name: str, count: int, *, keys: str = "", webcrm_rate: int = 0, uniconta_budget: int = 0,
         before: Callable[[h.Stack], Any] | None = None) -> dict[str, Any]:
    """Seed `count` organisations, backfill organisations then persons; seconds, calls and results."""
    with h.Stack(name, flows=ALL_FLOWS, webcrm_rate=webcrm_rate, uniconta_budget=uniconta_budget,
                 keys=keys) as stack:
        assert stack.webcrm and stack.uniconta
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": 0})  # seeding and set-up go around it
        seeded = _seed(stack, count)
        stack.start_receiver()
        stack.install_hooks()
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": webcrm_rate})
        if before is not None:
            before(stack)
        stack.start_worker(concurrency=WORKER_PROCESSES)
        _clear_calls(stack)
        codes = {}
        t0 = time.perf_counter()
        codes["organisation"] = _backfill(stack, "organisation")
        org_s = time.perf_counter() - t0
        codes["person"] = _backfill(stack, "person")
        seconds = time.perf_counter() - t0
        calls = _api_calls(stack)
        from sync.state import deadletters

        dead = deadletters.count(stack.redis)
        budget = _budget_used(stack)
        result = _counts(stack)
    records = seeded["organisations"] + seeded["persons"]
    return {"seeded": seeded, "records": records, "org_s": org_s, "seconds": seconds, "result": result,
            "calls": calls, "dead": dead, "exit_codes": codes, "budget_used": budget}


def _budget_used(stack: h.Stack) -> int | None:
    """Today's Uniconta calls as our shared budget counted them (None with the budget off)."""
    from sync.operations.reconcile import budget_of
    from sync.runtime import Runtime

    ctx = Runtime(stack.settings()).context(h.CONNECTION)
    assert ctx is not None
    usage = budget_of(ctx).usage()
    return int(usage["used"]) if usage["budget"] else None


def _direct(opts: h.Options, count: int) -> dict[str, Any]:
    """The API minimum for the same result (see the module docstring), on a stack of its own."""
    from sync.clients.uniconta import UnicontaClient
    from sync.clients.webcrm import WebcrmClient
    from sync.config import OrganisationFlow
    from sync.flows.organisations_mapping import is_customer

    with h.Stack("backfill direct", flows=ALL_FLOWS) as stack:
        assert stack.webcrm and stack.uniconta
        seeded = _seed(stack, count)
        cfg = OrganisationFlow()  # the seeder types its customers with the default keyword
        t0 = time.perf_counter()
        with WebcrmClient(stack.webcrm.url, "sandbox-token", page_size=1000) as webcrm, \
                UnicontaClient(stack.uniconta.url, h.COMPANY, "sandbox", "sandbox") as uniconta:
            organisations = [o for o in webcrm.iter_all("Organisations") if is_customer(o, cfg)]
            list(uniconta.odata("DebtorClient"))
            persons = list(webcrm.iter_all("Persons"))
        accounts: dict[int, str] = {}
        lock = threading.Lock()

        def parallel(work: list[Any], do: Any) -> None:
            todo = iter(work)

            def run() -> None:
                with WebcrmClient(stack.webcrm.url, "sandbox-token") as webcrm, \
                        UnicontaClient(stack.uniconta.url, h.COMPANY, "sandbox", "sandbox") as uniconta:
                    while True:
                        with lock:
                            item = next(todo, None)
                        if item is None:
                            return
                        do(item, webcrm, uniconta)

            pool = [threading.Thread(target=run) for _ in range(WORKER_PROCESSES)]
            for t in pool:
                t.start()
            for t in pool:
                t.join()

        def organisation(org: dict[str, Any], webcrm: Any, uniconta: Any) -> None:
            account = str(20000 + int(org["OrganisationId"]))
            uniconta.insert("DebtorClientUser", {"Account": account, "Name": org["OrganisationName"][:100],
                                                 "Address1": org["OrganisationAddress"][:60],
                                                 "ZipCode": org["OrganisationPostCode"],
                                                 "City": org["OrganisationCity"],
                                                 "WebcrmId": str(org["OrganisationId"])})
            webcrm.update("Organisations", int(org["OrganisationId"]), {**org, cfg.debtor_number_field: account})
            with lock:
                accounts[int(org["OrganisationId"])] = account

        def person(p: dict[str, Any], webcrm: Any, uniconta: Any) -> None:
            account = accounts.get(int(p["PersonOrganisationId"]))
            if account is None:
                return
            row = uniconta.insert("ContactClientUser", {
                "DCType": 1, "DCAccount": account, "Name": f"{p['PersonFirstName']} {p['PersonLastName']}"[:100],
                "Email": p["PersonEmail"], "ReferenceId": str(p["PersonId"])}) or {}
            webcrm.update("Persons", int(p["PersonId"]), {**p, "PersonCustom1": str(row.get("RowId", ""))})

        parallel(organisations, organisation)
        parallel(persons, person)
        seconds = time.perf_counter() - t0
        result = _counts(stack)
    return {"seeded": seeded, "records": seeded["organisations"] + seeded["persons"], "seconds": seconds,
            "result": result}


def _per_record(run: dict[str, Any], system: str) -> float:
    return run["calls"][system] / max(1, run["records"])


def _row(name: str, run: dict[str, Any], base_rate: float | None) -> list[Any]:
    rate = run["records"] / run["seconds"]
    return [name, run["records"], run["seconds"], rate, h.ratio(rate, base_rate) if base_rate else "1.00×",
            _per_record(run, "webcrm"), _per_record(run, "uniconta"),
            f"{run['result']['debtors']:,} debtors, {run['result']['contacts']:,} contacts"]


def run(opts: h.Options) -> h.Report:
    report = h.Report("backfill")
    count = opts.records or opts.pick(10_000, 1_000, 30)
    base_count = max(10, count // 10)
    h.log(f"backfill A: bulk lane, {count:,} organisations (with their persons), {WORKER_PROCESSES} worker processes")
    bulk = _run("backfill bulk", count)
    h.log(f"backfill A: bulk lane {bulk}")
    h.log(f"backfill A: baseline - one job per record, {base_count:,} organisations")
    single = _run("backfill per record", base_count, keys="batch_size = 1")
    h.log(f"backfill A: per record {single}")
    h.log(f"backfill A: baseline - the direct API minimum, {count:,} organisations")
    direct = _direct(opts, count)
    h.log(f"backfill A: direct {direct}")
    single_rate = single["records"] / single["seconds"]
    rows = [
        _row("bulk lane: syncctl backfill → batch jobs → flows", bulk, single_rate),
        _row("one job per record (batch_size = 1), baseline", single, None),
        ["direct API minimum, baseline", direct["records"], direct["seconds"], direct["records"] / direct["seconds"],
         h.ratio(direct["records"] / direct["seconds"], single_rate), "", "",
         f"{direct['result']['debtors']:,} debtors, {direct['result']['contacts']:,} contacts"],
    ]
    report.tables.append(h.Table(
        f"5a. Backfill of {bulk['seeded']['organisations']:,} organisations and {bulk['seeded']['persons']:,} "
        f"persons, rate limits off, {WORKER_PROCESSES} worker processes",
        ["path", "records", "seconds", "records/s", "vs per record", "webCRM calls/record", "Uniconta calls/record",
         "result"], rows,
        notes=["targets: at most 0.05 Uniconta and 0.10 webCRM calls per record, echo jobs included; "
               "at least 10× the records/s of one job per record",
               f"dead letters: bulk {bulk['dead']}, per record {single['dead']}; 429 answers: bulk "
               f"{bulk['calls']['webcrm_429']} webCRM",
               "persons of organisations that are not customers wait for their organisation (no contact); "
               "the receiver and the hooks are up, so the webhooks of our writes are included",
               f"one job per record runs on {base_count:,} organisations (a tenth) to keep the run short; "
               "records/s is compared, not seconds",
               "direct: pages of organisations, debtors and persons read once, then per customer insert + "
               "write-back, per person of a customer insert + write-back (4 threads, no lookups: not a safe sync)"]))

    h.log(f"backfill C: {count:,} organisations under the real limits ({LIMIT}/min, {DAILY_BUDGET:,} a day)")
    limited = _run("backfill limited", count, webcrm_rate=LIMIT, uniconta_budget=DAILY_BUDGET)
    h.log(f"backfill C: {limited}")
    share = DAILY_BUDGET - 1000
    used = limited["budget_used"]
    calls = limited["calls"]
    rows = [["bulk lane under the real limits", limited["records"], limited["seconds"],
             limited["seconds"] / 60, calls["webcrm"], calls["webcrm_429"],
             calls["uniconta"], used, h.percent(used, share) if used is not None else "",
             "yes" if used is not None and used <= share and all(c == 0 for c in limited["exit_codes"].values())
             else "NO", f"{limited['result']['debtors']:,} debtors, {limited['result']['contacts']:,} contacts"]]
    report.tables.append(h.Table(
        f"5c. The same backfill under webCRM's {LIMIT} calls per minute and Uniconta's {DAILY_BUDGET:,} calls a day "
        "(1,000 kept for live changes)",
        ["run", "records", "seconds", "minutes", "webCRM calls", "429 answers", "Uniconta calls",
         "budget used (our counter)", "of the batch share", "inside one day", "result"], rows,
        notes=[f"the batch share is {share:,} calls; backfill jobs may not touch the live reserve",
               f"syncctl backfill exit codes: {limited['exit_codes']} (3 = stopped by the budget)"]))
    report.data = {"bulk": bulk, "per_record": single, "direct": direct, "limited": limited}
    return report
