"""`python -m bench [NAME ...] [--quick | --smoke]`: run the benchmarks and print their tables.

Every table holds a baseline measured in the same run and a ratio against it. `make bench` runs all
of them at full size (about 40 minutes on 2 cores); `--quick` is a few minutes, `--smoke` seconds
(only proves the benchmark works; its numbers mean little).
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import time
from pathlib import Path

from bench import _harness as h

BENCHMARKS = ("receiver", "latency", "api_calls", "burst", "backfill", "bulk", "memory")
ALIASES = {"api-calls": "api_calls", "calls": "api_calls", "e2e": "latency", "rss": "memory"}


def parse(argv: list[str] | None) -> tuple[list[str], h.Options, argparse.Namespace]:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("names", nargs="*", metavar="NAME",
                        help=f"benchmarks to run (default: all): {', '.join(BENCHMARKS)}")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--quick", action="store_const", dest="mode", const="quick", help="smaller, a few minutes")
    size.add_argument("--smoke", action="store_const", dest="mode", const="smoke",
                      help="tiny, seconds: proves each benchmark runs (numbers not meaningful)")
    parser.add_argument("--concurrency", type=int, default=8, help="receiver: keep-alive connections (8)")
    parser.add_argument("--duration", type=float, help="receiver: seconds of load per app")
    parser.add_argument("--flows", help="latency, api_calls: comma-separated flows (default: every flow in the tree)")
    parser.add_argument("--samples", type=int, help="latency: syncs per flow and sandbox latency")
    parser.add_argument("--records", type=int, help="backfill: records to backfill with rate limits off")
    parser.add_argument("--limited-seconds", type=float, help="backfill: length of the rate-limited run")
    parser.add_argument("--json", type=Path, help="also write the results as JSON to this file")
    parser.add_argument("--markdown", type=Path, help="also write the tables as Markdown to this file")
    args = parser.parse_args(argv)
    names = [ALIASES.get(n, n) for n in args.names] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark {', '.join(unknown)} (known: {', '.join(BENCHMARKS)})")
    opts = h.Options(mode=args.mode or "full", concurrency=args.concurrency, duration=args.duration,
                     samples=args.samples, records=args.records, limited_seconds=args.limited_seconds,
                     flows=tuple(f.strip() for f in (args.flows or "").split(",") if f.strip()))
    return names, opts, args


def main(argv: list[str] | None = None) -> int:
    names, opts, args = parse(argv)
    info = h.machine()
    started = time.time()
    print(f"# benchmarks ({opts.mode}) on {info['cpu']}, {info['cores']} cores, {info['memory']}, "
          f"{info['os']}, Python {info['python']} - {time.strftime('%Y-%m-%d %H:%M')}", flush=True)
    reports: list[h.Report] = []
    failed: list[str] = []
    for name in names:
        module = importlib.import_module(f"bench.{name}")
        t0 = time.perf_counter()
        try:
            report = module.run(opts)
        except Exception as err:  # one broken benchmark must not hide the others' numbers
            h.log(f"{name}: FAILED: {type(err).__name__}: {err}")
            failed.append(name)
            continue
        report.seconds = time.perf_counter() - t0
        reports.append(report)
        for table in report.tables:
            print()
            print(table.render(), flush=True)
        print(f"\n({name}: {report.seconds:.0f} s)", flush=True)
    total = time.time() - started
    print(f"\n# done in {total:.0f} s" + (f"; FAILED: {', '.join(failed)}" if failed else ""), flush=True)
    if args.json:
        args.json.write_text(json.dumps({"machine": info, "mode": opts.mode, "started": started, "seconds": total,
                                         "reports": {r.name: r.data for r in reports}}, indent=2, default=str))
    if args.markdown:
        parts = [t.markdown() for r in reports for t in r.tables]
        args.markdown.write_text("\n\n".join(parts) + "\n", encoding="utf-8")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
