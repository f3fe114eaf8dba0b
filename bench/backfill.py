"""Benchmark 5: backfill of organisations and persons, and the use of webCRM's rate limit under it.

The webCRM sandbox is seeded with N organisations (the seeder gives each 1-3 persons, about 2N in all;
3 of its 5 organisation types are customers here) and `syncctl backfill b1 organisation`, then
`syncctl backfill b1 person`, run as an operator runs them, against a worker with 4 processes, with
the receiver up and the hooks installed (so the echoes of our writes are part of the cost, as in
production). A backfill is done when the command has queued everything and the queues are quiet.

A. Rate limits off (webCRM sandbox and our limiter at 0, Uniconta budget off): records/s.
   Baseline, same run, same seeded data: the fewest calls the APIs allow for the same result, made
   directly by 4 threads - read the organisations, debtors and persons in pages, then per customer
   organisation insert the debtor and write its number back, per person of a customer insert the
   contact and write its RowId back. No lookups, no journal, no queue: a one-off load into empty
   systems, not a safe sync.
B. webCRM's 250 calls per rolling minute on (sandbox and our shared limiter), 4 worker processes, an
   organisation backlog larger than the run: 429 answers, the most calls in any 60 s window, and the
   share of the allowed rate used after the first minute. Baseline, same run: the same with our
   limiter off (`rate_limit_per_minute = 0`), so only the sandbox's 429s hold the workers back.
"""

from __future__ import annotations

import subprocess
import threading
import time
from collections.abc import Iterator
from typing import Any

from bench import _harness as h

ALL_FLOWS = ("organisations", "items", "orders", "users", "persons")
WORKER_PROCESSES = 4
LIMIT = 250
MARGIN_LIMIT = 245
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


def _backfill(stack: h.Stack, entity: str) -> float:
    """`syncctl backfill b1 <entity>` until it has queued everything and the workers are done."""
    t0 = time.perf_counter()
    proc = _syncctl(stack, "backfill", h.CONNECTION, entity)
    code = proc.wait()
    if code != 0:
        raise RuntimeError(f"syncctl backfill {entity} exited with {code}; see {stack.dir / 'syncctl.log'}")
    stack.settle(rounds=2, timeout=3600)
    return time.perf_counter() - t0


def _direct(stack: h.Stack, threads: int) -> float:
    """The API minimum for the same result (see the module docstring)."""
    from sync.clients.uniconta import UnicontaClient
    from sync.clients.webcrm import WebcrmClient
    from sync.config import OrganisationFlow
    from sync.flows.organisations_mapping import is_customer

    assert stack.webcrm and stack.uniconta
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

        pool = [threading.Thread(target=run) for _ in range(threads)]
        for t in pool:
            t.start()
        for t in pool:
            t.join()

    def organisation(org: dict[str, Any], webcrm: Any, uniconta: Any) -> None:
        account = str(20000 + int(org["OrganisationId"]))
        uniconta.insert("DebtorClientUser", {"Account": account, "Name": org["OrganisationName"][:100],
                                             "Address1": org["OrganisationAddress"][:60],
                                             "ZipCode": org["OrganisationPostCode"], "City": org["OrganisationCity"],
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
    return time.perf_counter() - t0


def _unlimited(opts: h.Options) -> dict[str, Any]:
    count = opts.records or opts.pick(10_000, 1_000, 30)
    with h.Stack("backfill", flows=ALL_FLOWS, webcrm_rate=0, uniconta_budget=0) as stack:
        assert stack.webcrm and stack.uniconta
        h.log(f"backfill A: seeding {count:,} organisations (with their persons) in webCRM")
        seeded = _seed(stack, count)
        h.log(f"backfill A: baseline - the API minimum made directly by {WORKER_PROCESSES} threads ({seeded})")
        base_s = _direct(stack, WORKER_PROCESSES)
        base_result = _counts(stack)
        for proc in (stack.webcrm, stack.uniconta):
            h.admin(proc.url, "POST", "/reset")
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": 0})
        _seed(stack, count)
        stack.start_receiver()
        stack.install_hooks()
        stack.start_worker(concurrency=WORKER_PROCESSES)
        h.log(f"backfill A: syncctl backfill organisation, {WORKER_PROCESSES} worker processes")
        org_s = _backfill(stack, "organisation")
        after_orgs = _counts(stack)
        h.log(f"backfill A: {org_s:.0f} s; syncctl backfill person ({after_orgs})")
        person_s = _backfill(stack, "person")
        result = _counts(stack)
        calls = {s: stack.call_count(s) for s in ("webcrm", "uniconta")}
        from sync.state import deadletters

        dead = deadletters.count(stack.redis)
    return {"seeded": seeded, "org_s": org_s, "person_s": person_s, "base_s": base_s, "result": result,
            "base_result": base_result, "calls": calls, "dead": dead}


def _windows(times: list[float], width: float = 60.0) -> Iterator[tuple[float, int]]:
    """(start, calls) for every `width`-second window starting at a call."""
    j = 0
    for i, start in enumerate(times):
        while j < len(times) and times[j] < start + width:
            j += 1
        yield start, j - i


def _limited(opts: h.Options, *, limit: int) -> dict[str, Any]:
    """The organisation backfill for a while under the sandbox's 250/min, our limiter at `limit` (0 = off)."""
    seconds = opts.limited_seconds or opts.pick(125.0, 65.0, 6.0)
    backlog = opts.pick(2_000, 1_000, 100)
    label = f"our limiter at {limit}/min" if limit else "our limiter off"
    with h.Stack(f"backfill {label}", flows=ALL_FLOWS, webcrm_rate=limit, uniconta_budget=0) as stack:
        assert stack.webcrm
        # Set-up calls (hook installation) go around our limiter: keep them out of the sandbox's window.
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": 0})
        _seed(stack, backlog)
        stack.start_receiver()
        stack.install_hooks()
        h.admin(stack.webcrm.url, "PUT", "/auth", json={"rate_limit": LIMIT})  # the sandbox limits in both runs
        h.log(f"backfill B ({label}): {seconds:g} s, {WORKER_PROCESSES} worker processes, backlog {backlog:,}")
        stack.start_worker(concurrency=WORKER_PROCESSES)
        start = time.time()
        command = _syncctl(stack, "backfill", h.CONNECTION, "organisation")
        time.sleep(max(0.0, seconds - (time.time() - start)))
        end = time.time()
        command.terminate()
        command.wait(30)
        calls = [c for c in stack.calls("webcrm") if start <= c["at"] <= end]
        debtors = _counts(stack)["debtors"]
    granted = sorted(c["at"] for c in calls if c["status"] != 429)
    throttled = sum(1 for c in calls if c["status"] == 429)
    busiest = max((n for _, n in _windows(granted)), default=0)
    # The limit is per rolling minute and a limiter may spend it in bursts, so the rate used is
    # measured over whole minutes from the start (over the run itself when it is shorter).
    minutes = int((end - start) // 60)
    span = minutes * 60.0 if minutes else end - start
    steady = [t for t in granted if t < start + span]
    refused = [round(c["at"] - start, 1) for c in calls if c["status"] == 429][:20]
    return {"seconds": seconds, "calls": len(calls), "throttled": throttled, "busiest_window": busiest,
            "limit": limit, "first_429s_at": refused,
            "used_per_min": len(steady) / span * 60 if span > 0 else float("nan"), "debtors": debtors,
            "debtors_per_min": debtors / (end - start) * 60, "measured_seconds": span}


def run(opts: h.Options) -> h.Report:
    report = h.Report("backfill")
    a = _unlimited(opts)
    h.log(f"backfill A: {a}")
    seeded, result, base = a["seeded"], a["result"], a["base_result"]
    records = seeded["organisations"] + seeded["persons"]
    ours_s = a["org_s"] + a["person_s"]
    rows = [
        ["syncctl backfill → queue → flows: organisations", seeded["organisations"], a["org_s"],
         seeded["organisations"] / a["org_s"], "", f"{result['debtors']:,} debtors"],
        ["syncctl backfill → queue → flows: persons", seeded["persons"], a["person_s"],
         seeded["persons"] / a["person_s"], "", f"{result['contacts']:,} contacts"],
        ["syncctl backfill, both", records, ours_s, records / ours_s, h.ratio(records / ours_s, records / a["base_s"]),
         f"{a['calls']['webcrm'] / records:.2f} webCRM + {a['calls']['uniconta'] / records:.2f} Uniconta calls/record"],
        ["direct API minimum (baseline), both", records, a["base_s"], records / a["base_s"], "1.00×",
         f"{base['debtors']:,} debtors, {base['contacts']:,} contacts"],
    ]
    report.tables.append(h.Table(
        f"5a. Backfill of {seeded['organisations']:,} organisations and {seeded['persons']:,} persons, rate limits "
        f"off, {WORKER_PROCESSES} worker processes",
        ["path", "records", "seconds", "records/s", "vs direct", "result"], rows,
        notes=[f"dead letters after the backfill: {a['dead']}",
               "persons of organisations that are not customers wait for their organisation (no contact); "
               "the receiver and the hooks are up, so the echoes of our writes are included",
               "direct: pages of organisations, debtors and persons read once, then per customer insert + write-back, "
               "per person of a customer insert + write-back (4 threads, no lookups: not a safe sync)"]))
    b = _limited(opts, limit=LIMIT)
    h.log(f"backfill B ours: {b}")
    c = _limited(opts, limit=0)
    h.log(f"backfill B baseline: {c}")
    runs = [(f"our shared limiter at {LIMIT}/min", b), ("our limiter off (baseline)", c)]
    if opts.mode != "smoke":
        d = _limited(opts, limit=MARGIN_LIMIT)
        h.log(f"backfill B with a margin: {d}")
        runs.append((f"our limiter at {MARGIN_LIMIT}/min (2 % margin)", d))
    rows = []
    for name, res in runs:
        rows.append([name, res["seconds"], res["calls"], res["throttled"], res["busiest_window"],
                     res["used_per_min"], h.percent(res["used_per_min"], LIMIT), res["debtors_per_min"]])
    report.tables.append(h.Table(
        f"5b. Organisation backfill under webCRM's {LIMIT} calls per rolling minute, {WORKER_PROCESSES} worker "
        "processes",
        ["run", "seconds", "webCRM calls", "429 answers", "most calls in a 60 s window", "calls/min let through",
         "of allowed", "debtors/min"], rows,
        notes=["target: zero 429s and ≥ 90 % of the allowed rate used",
               f"calls/min let through: answered other than 429 in the first {b['measured_seconds']:.0f} s (whole "
               "minutes from the start: our limiter spends a minute's calls in a burst when the window rolls)",
               f"429s of the {LIMIT}/min run at (s into the run): {b['first_429s_at'] or 'none'}"]))
    report.data = {"unlimited": a, "limited": dict(runs)}
    return report
