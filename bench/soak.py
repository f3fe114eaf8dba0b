"""`python -m bench.soak [--seed N] [--ops N] [--faults | --no-faults] [--keep]`: the convergence soak.

A seeded random walk of edits made as people make them (bench/_soak_walk.py), through the sandboxes'
UI routes, on both sides and across every flow, with faults switched on for part of the run (webhooks
dropped, duplicated, reordered and delayed; API errors, a 429 storm, a short outage of each system;
pool processes and the whole worker killed with SIGKILL). Then:

1. quiescence: no job queued, reserved or waiting for a retry countdown, no record pending or locked,
   no webhook on its way (`tasks.broker.idle`, repeated until a round sends no new webhook);
2. a reconciliation (`syncctl reconcile <c> --since <start> --full`), and quiescence again;
3. the loop check: the sandboxes' write counters are noted, webhooks flushed for `--loop-wait` seconds
   (20), and no further write may happen once nobody edits;
4. the checker (bench/_soak_check.py): both systems read through their APIs with the project's
   clients, every linked pair compared through the flows' mappings and normalizers, duplicates (by
   link and natural key), records missing that the flows' rules say should exist, and the records
   each rule keeps unsynced on purpose.

Every disagreement is printed with both values and the record's timeline (the walk's operations and
the sync's journal). Exit status 0 when there is no disagreement, duplicate or loop, 1 otherwise,
2 on bad usage. `make soak` runs the large run (docs/benchmarks.md, "Convergence soak").
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from dataclasses import asdict
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from bench import _harness as h
from bench._soak_check import Checker, Finding, read_systems
from bench._soak_walk import FAULT_PHASES, NO_FAULTS, Faults, Handle, Walk

FLOWS = ("organisations", "items", "orders", "users", "persons")
# The guide's organisation setup (as sync/demo.toml): a status field, the values Uniconta owns shown in
# webCRM, and every optional source field, so the walk exercises all of them.
ORGANISATIONS = """status_field = "OrganisationExtraCustom2"
shown_fields = { ean = "OrganisationExtraCustom3", payment_terms = "OrganisationExtraCustom4", debtor_group = "OrganisationExtraCustom5" }
source_fields = { cvr = "OrganisationVatNumber", phone = "OrganisationTelephone", currency = "OrganisationCustom1", vat_group = "OrganisationCustom2", invoice_email = "OrganisationCustom3" }
"""
# Retries quick enough for a run of minutes; the broker's visibility timeout follows
# (2 × 4 + 30 + 60 = 98 s: what a whole-worker kill costs before its jobs come back).
WORKER_ENV = {"SYNC_RETRY_BASE_SECONDS": "0.3", "SYNC_RETRY_MAX_SECONDS": "4", "SYNC_MAX_ATTEMPTS": "200",
              "SYNC_RETRY_WINDOW_SECONDS": "3600", "SYNC_TASK_TIME_LIMIT": "30", "SYNC_BATCH_TIME_LIMIT": "30"}
WRITES = ("POST", "PUT", "DELETE", "PATCH")


def parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.soak", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--seed", type=int, default=None, help="the walk's seed (default: random, printed)")
    parser.add_argument("--ops", type=int, default=5000, help="operations in the walk (5000)")
    parser.add_argument("--faults", action=argparse.BooleanOptionalAction, default=True,
                        help="faults for part of the run (default on)")
    parser.add_argument("--kill-worker", action=argparse.BooleanOptionalAction, default=None,
                        help="also SIGKILL the whole worker once (default: on from 1,000 operations; it costs the "
                             "broker's visibility timeout, ~100 s, before the killed jobs come back)")
    parser.add_argument("--rate", type=float, default=10.0, help="operations per second at most (10)")
    parser.add_argument("--sweeps", type=int, default=4, help="reconciliation sweeps during the walk, as beat "
                        "would run them (4)")
    parser.add_argument("--loop-wait", type=float, default=20.0, help="seconds without edits in the loop check (20)")
    parser.add_argument("--quiet-timeout", type=float, default=900.0,
                        help="seconds to wait for quiescence at most (900)")
    parser.add_argument("--keep", action="store_true", help="keep the run directory (logs, state) and print it")
    parser.add_argument("--json", type=Path, help="also write the result as JSON to this file")
    parser.add_argument("--timelines", type=int, default=40, help="print the timelines of at most N findings (40)")
    args = parser.parse_args(argv)
    if args.ops < 1:
        parser.error("--ops must be at least 1")
    if args.rate <= 0:
        parser.error("--rate must be positive")
    return args


# --------------------------------------------------------------------------- processes


class Soak:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.seed = args.seed if args.seed is not None else random.randrange(10**6)
        self.dir = Path(tempfile.mkdtemp(prefix="soak-"))
        self.stack = h.Stack("soak", flows=FLOWS, extra=ORGANISATIONS, workdir=self.dir)
        self.result: dict[str, Any] = {"seed": self.seed, "ops": args.ops, "faults": args.faults}
        self.sweeps: list[subprocess.Popen[bytes]] = []
        self.kills: list[str] = []
        self.not_quiet: list[str] = []  # quiescence never reached: a loop, or work that never ends

    # -- the stack
    def start(self) -> None:
        self.stack.start_base()
        self.stack.env.update(WORKER_ENV)
        self.stack.start_receiver()
        self.stack.start_worker(concurrency=2)
        self.stack.install_hooks()

    def close(self) -> None:
        for sweep in self.sweeps:
            if sweep.poll() is None:
                sweep.kill()
        self.stack.close()
        if self.args.keep:
            print(f"run directory kept: {self.dir}")
        else:
            shutil.rmtree(self.dir, ignore_errors=True)

    def kill(self, kind: str) -> str:
        """SIGKILL a pool process of the worker ("pool") or the whole worker ("worker", restarted at once)."""
        worker = self.stack.worker
        if worker is None or not worker.alive():
            return "no worker to kill"
        if kind == "pool":
            children = [p for p in h._descendants(worker.pid) if p != worker.pid]
            if not children:
                return "no pool process to kill"
            pid = random.Random(self.seed + len(self.kills)).choice(sorted(children))
            os.kill(pid, signal.SIGKILL)
            what = f"SIGKILL pool process {pid}"
        else:
            os.killpg(worker.pid, signal.SIGKILL)
            assert worker.process is not None
            worker.process.wait()
            self.stack.memory.untrack("worker")
            self.stack.procs.remove(worker)
            self.stack.worker = None
            self.stack.start_worker(concurrency=2)
            what = f"SIGKILL the whole worker (pid {worker.pid}) and started a new one"
        self.kills.append(what)
        h.log(f"soak: {what}")
        return what

    def syncctl(self, *args: str, wait: bool = True) -> subprocess.Popen[bytes]:
        log = open(self.dir / "syncctl.log", "ab")  # noqa: SIM115 - the child owns it
        log.write(f"\n$ syncctl {' '.join(args)}\n".encode())
        log.flush()
        proc = subprocess.Popen([h.PY, "-m", "syncctl", *args], cwd=h.ROOT,
                                env={**self.stack.env_all(), "NO_COLOR": "1"}, stdout=log, stderr=subprocess.STDOUT)
        if wait:
            proc.wait()
        return proc

    # -- quiescence
    def _last_webhook(self) -> tuple[int, int]:
        out = []
        for proc in (self.stack.webcrm, self.stack.uniconta):
            assert proc is not None
            deliveries = h.admin(proc.url, "GET", "/webhooks")["deliveries"]
            out.append(deliveries[-1]["seq"] if deliveries else 0)
        return out[0], out[1]

    def quiet(self) -> bool:
        from tasks.broker import idle

        return bool(idle(self.stack.redis, h.CONNECTION))

    def settle(self, what: str) -> float:
        """Until nothing is queued, reserved, waiting for a countdown, pending or locked, and a whole round
        sent no webhook (our writes come back as webhooks); returns the seconds it took."""
        t0 = time.monotonic()
        deadline = t0 + self.args.quiet_timeout
        last = None
        while True:
            for proc in (self.stack.webcrm, self.stack.uniconta):
                assert proc is not None
                h.admin(proc.url, "POST", "/webhooks/flush?timeout=120")
            while not (self.quiet() and (time.sleep(0.3) or self.quiet())):
                if time.monotonic() > deadline:
                    stuck = f"not quiet after {self.args.quiet_timeout:.0f} s ({what}): {self.stuck()}"
                    h.log(f"soak: {stuck}")
                    self.not_quiet.append(stuck)
                    return time.monotonic() - t0
                if self.stack.worker is None or not self.stack.worker.alive():
                    h.log("soak: the worker is gone; starting a new one")
                    self.stack.start_worker(concurrency=2)
                time.sleep(0.5)
            now = self._last_webhook()
            if now == last:
                break
            last = now
        seconds = time.monotonic() - t0
        h.log(f"soak: quiet ({what}) after {seconds:.1f} s")
        return seconds

    def stuck(self) -> str:
        """What keeps the connection from being quiet (for the timeout message)."""
        from sync.state import intake, keys
        from tasks.broker import QUEUES, queue_depth

        r = self.stack.redis
        queues = {q: queue_depth(r, q) for q in QUEUES}
        marks = list(intake.pending_marks(r, h.CONNECTION))[:5]
        locks = [k for k in r.scan_iter(keys.lock(h.CONNECTION, "*", "*"), count=1000)][:5]
        return f"queues {queues}, unacked {r.hlen('unacked')}, pending {marks}, locks {locks}"

    # -- call logs
    def counters(self) -> dict[str, Counter[str]]:
        out = {}
        for name, proc in (("webcrm", self.stack.webcrm), ("uniconta", self.stack.uniconta)):
            assert proc is not None
            out[name] = Counter(h.admin(proc.url, "GET", "/calls?since=999999999999")["counters"])
        return out

    @staticmethod
    def writes(counters: Counter[str]) -> int:
        return sum(n for key, n in counters.items() if key.split(" ", 1)[0] in WRITES and "/Auth" not in key
                   and "/Hooks" not in key)

    @staticmethod
    def total(counters: Counter[str]) -> int:
        return sum(n for key, n in counters.items() if key.startswith("status:"))

    def write_calls_since(self, seqs: dict[str, int]) -> list[str]:
        out = []
        for name, proc in (("webcrm", self.stack.webcrm), ("uniconta", self.stack.uniconta)):
            assert proc is not None
            for call in h.admin(proc.url, "GET", f"/calls?since={seqs[name]}")["calls"]:
                if call["method"] in WRITES and "/Auth" not in call["path"]:
                    out.append(f"{name} {call['method']} {call['path']} → {call['status']}")
        return out

    # -- the run
    def run(self) -> int:
        args = self.args
        started_wall = time.time()
        h.log(f"soak: seed {self.seed}, {args.ops} operations, faults {'on' if args.faults else 'off'}; "
              f"run directory {self.dir}")
        self.start()
        assert self.stack.webcrm and self.stack.uniconta
        walk = Walk(self.seed, self.stack.webcrm.url, self.stack.uniconta.url)
        walk.handles["user"].append(Handle("user", 0, 1, True, {"active": True}))  # the sandbox's own user 1
        # Existing data is the backfill's (docs/operations.md): user 1 is there before the sync.
        self.syncctl("backfill", h.CONNECTION, "user")
        self.settle("after the backfill")
        self.syncctl("reconcile", h.CONNECTION, "--full")  # the first full compare takes its snapshot
        since = datetime.now(UTC) - timedelta(seconds=5)
        whole = args.kill_worker if args.kill_worker is not None else args.ops >= 1000
        faults = Faults(FAULT_PHASES if args.faults else NO_FAULTS, args.ops, self.seed, self.stack.webcrm.url,
                        self.stack.uniconta.url, self.kill, whole_worker=whole)
        sweep_every = max(args.ops // (args.sweeps + 1), 1) if args.sweeps > 0 else 0
        t0 = time.monotonic()
        outcomes: Counter[str] = Counter()
        kinds: Counter[str] = Counter()
        for n in range(1, args.ops + 1):
            walk.phase = faults.at(n)
            op = walk.step(n)
            kinds[op.kind] += 1
            outcomes[op.outcome.split(":", 1)[0]] += 1
            if sweep_every and n % sweep_every == 0 and n < args.ops \
                    and all(p.poll() is not None for p in self.sweeps):
                self.sweeps.append(self.syncctl("reconcile", h.CONNECTION, "--full", wait=False))
            if n % 250 == 0:
                h.log(f"soak: {n}/{args.ops} operations ({dict(outcomes)})")
            ahead = t0 + n / args.rate - time.monotonic()
            if ahead > 0:
                time.sleep(ahead)
        walk_seconds = time.monotonic() - t0
        faults.off()
        for sweep in self.sweeps:
            sweep.wait()
        webhook_stats = self.webhook_stats()
        h.log(f"soak: walk done in {walk_seconds:.0f} s: {dict(outcomes)}")

        quiet1 = self.settle("after the walk")
        # What the webhooks alone left (lost ones included): the reconciliation's work, for the record.
        before_check = self.counters()
        pre = self.check(walk)
        pre_counts = dict(Counter(f"{f.kind} {f.flow}" for f in pre.findings))
        check_calls = {k: self.total(v) - self.total(before_check[k]) for k, v in self.counters().items()}
        h.log(f"soak: before the reconciliation: {pre_counts or 'no finding'}")
        t_rec = time.monotonic()
        code = self.syncctl("reconcile", h.CONNECTION, "--since", since.isoformat(timespec="seconds"), "--full",
                            "--json").returncode
        reconcile_seconds = time.monotonic() - t_rec
        quiet2 = self.settle("after the reconciliation")

        # No loop: once nobody edits, nothing writes.
        before = self.counters()
        seqs = {name: max((c["seq"] for c in h.admin(proc.url, "GET", "/calls")["calls"][-1:]), default=0)
                for name, proc in (("webcrm", self.stack.webcrm), ("uniconta", self.stack.uniconta)) if proc}
        end = time.monotonic() + args.loop_wait
        while time.monotonic() < end:
            for proc in (self.stack.webcrm, self.stack.uniconta):
                assert proc is not None
                h.admin(proc.url, "POST", "/webhooks/flush")
            time.sleep(2)
        self.settle("loop check")
        after = self.counters()
        loop_writes = {k: self.writes(after[k]) - self.writes(before[k]) for k in after}
        loop_calls = self.write_calls_since(seqs) if any(loop_writes.values()) else []

        calls = {k: self.total(v) - check_calls[k] for k, v in after.items()}
        errors = {k: {s: n for s, n in v.items() if s.startswith("status:") and s[7:] in ("429", "500", "502", "503",
                                                                                         "504")}
                  for k, v in after.items()}
        # The checker reads through the APIs (its own calls come after the counts above).
        checker = self.check(walk)
        findings = checker.findings
        for stuck in self.not_quiet:
            findings.append(Finding("loop", "all", stuck))
        if any(loop_writes.values()):
            findings.append(Finding("loop", "all", f"{sum(loop_writes.values())} write(s) after quiescence "
                                    f"while nobody edited: {loop_writes}", note="; ".join(loop_calls[:20])))
        from sync.state import deadletters, review

        letters = list(deadletters.iter_all(self.stack.redis))
        reviews = review.list_reviews(self.stack.redis, h.CONNECTION)
        self.report(walk, checker, findings, letters, reviews)

        by_kind = Counter(f.kind for f in findings)
        self.result.update({
            "seed": self.seed, "ops": args.ops, "faults": args.faults, "whole_worker_killed": whole,
            "rate": args.rate, "walk_seconds": round(walk_seconds, 1),
            "seconds_total": round(time.time() - started_wall, 1),
            "quiet_after_walk_seconds": round(quiet1, 1), "reconcile_seconds": round(reconcile_seconds, 1),
            "reconcile_exit": code, "quiet_after_reconcile_seconds": round(quiet2, 1),
            "operations": dict(sorted(kinds.items())), "outcomes": dict(outcomes),
            "phases": faults.events, "kills": self.kills, "webhooks": webhook_stats, "injected_errors": errors,
            "api_calls": calls, "loop_writes": loop_writes, "before_reconciliation": pre_counts, "pairs": dict(checker.pairs),
            "disagreements": by_kind["disagreement"] + by_kind["missing"] + by_kind["stray"],
            "duplicates": by_kind["duplicate"], "loops": by_kind["loop"],
            "unsynced": len(checker.unsynced), "dead_letters": len(letters), "reviews": len(reviews),
            "findings": [asdict(f) for f in findings],
        })
        if args.json:
            args.json.write_text(json.dumps(self.result, indent=2, default=str, ensure_ascii=False))
        bad = self.result["disagreements"] + self.result["duplicates"] + self.result["loops"]
        return 1 if bad else 0

    def check(self, walk: Walk) -> Checker:
        """Both systems read through their APIs with the project's clients, and compared."""
        from sync.clients.uniconta import UnicontaClient
        from sync.clients.webcrm import WebcrmClient

        assert self.stack.webcrm and self.stack.uniconta
        conn = self.stack.settings().connections[h.CONNECTION]
        with WebcrmClient(self.stack.webcrm.url, "sandbox-token") as webcrm, \
                UnicontaClient(self.stack.uniconta.url, h.COMPANY, "sandbox", "sandbox") as uniconta:
            systems = read_systems(webcrm, uniconta)
        return Checker(conn, systems, walk).run()

    def webhook_stats(self) -> dict[str, dict[str, int]]:
        """Webhooks each sandbox sent, dropped and duplicated (its delivery log keeps the newest 10,000)."""
        out = {}
        for name, proc in (("webcrm", self.stack.webcrm), ("uniconta", self.stack.uniconta)):
            assert proc is not None
            deliveries = h.admin(proc.url, "GET", "/webhooks")["deliveries"]
            out[name] = {"logged": len(deliveries), "dropped": sum(1 for d in deliveries if d.get("dropped")),
                         "duplicated": sum(1 for d in deliveries if d.get("duplicate")),
                         "failed": sum(1 for d in deliveries if d.get("error") or (d.get("status") or 0) >= 400)}
        return out

    # -- the report
    def report(self, walk: Walk, checker: Checker, findings: list[Finding], letters: list[dict[str, Any]],
               reviews: list[dict[str, Any]]) -> None:
        from sync.state import journal

        print(f"\n# soak seed {self.seed}: {len(walk.ops)} operations")
        shown = 0
        for finding in findings:
            print("\n" + finding.line())
            if shown >= self.args.timelines:
                continue
            shown += 1
            for record in finding.records:
                system, entity, ident = record.split(":", 2)
                ops = walk.timeline.get(record, [])
                print(f"  timeline of {entity} {ident} ({system}): {len(ops)} operation(s) of the walk")
                for n in ops[-8:]:
                    print("    " + walk.ops[n - 1].line())
                ids = [f"#{ident}", ident] if entity == "contact" else [ident]
                entries: list[dict[str, Any]] = []
                for key in ids:
                    entries = journal.entries(self.stack.redis, h.CONNECTION, entity, key)
                    if entries:
                        break
                # The sync's journal, oldest first: decisions and writes (its reads left out).
                kept = [e for e in entries if not (e.get("kind") == "api" and e.get("method") == "GET")][:18]
                print(f"  journal of {entity} {ident}: {len(entries)} entries, the newest {len(kept)} "
                      "(reads left out):")
                for entry in reversed(kept):
                    at = time.strftime("%H:%M:%S", time.localtime(entry.get("at", 0)))
                    rest = {k: v for k, v in entry.items() if k not in ("at", "kind")}
                    print(f"    {at} {entry.get('kind')} {json.dumps(rest, ensure_ascii=False, default=str)[:240]}")
        rules = Counter(re.sub(r"\d+|'[^']*'|\([^)]*\)", "…", u.rule).split(":")[0] for u in checker.unsynced)
        print("\n# intentionally unsynced (the rule that keeps each so)")
        for rule, count in rules.most_common():
            print(f"  {count:>5} × {rule}")
        print(f"\n# dead letters: {len(letters)}")
        for letter in letters[:10]:
            event = letter.get("event", {})
            print(f"  {event.get('system')} {event.get('entity')} {event.get('record_id')}: {letter.get('kind')} "
                  f"{str(letter.get('error'))[:160]}")
        print(f"# ambiguities kept for review: {len(reviews)}")
        kinds = Counter(f.kind for f in findings)
        print(f"\n# pairs compared: {dict(checker.pairs)}")
        print(f"# findings: {dict(kinds) or 'none'}")


def main(argv: list[str] | None = None) -> int:
    args = parse(argv)
    soak = Soak(args)
    try:
        code = soak.run()
    except KeyboardInterrupt:
        return 130
    finally:
        soak.close()
    r = soak.result
    print(f"\n# soak result: seed {r['seed']}, {r['ops']} operations, faults {'on' if r['faults'] else 'off'}, "
          f"{r.get('seconds_total', 0):.0f} s; disagreements {r.get('disagreements')}, duplicates "
          f"{r.get('duplicates')}, loops {r.get('loops')}; API calls {r.get('api_calls')}")
    print(f"# reproduce: python -m bench.soak --seed {r['seed']} --ops {r['ops']} "
          f"{'--faults' if r['faults'] else '--no-faults'}")
    return code


if __name__ == "__main__":
    sys.exit(main())
