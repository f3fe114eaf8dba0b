"""The resilience suite N times in a row with CPU-bound processes beside it (issue 14).

    .venv/bin/python tests/resilience/under_load.py               # 10 runs, 2 burners
    .venv/bin/python tests/resilience/under_load.py --runs 2 --burners 2 --out /tmp/under-load

An accepted webhook was once lost only when the machine was busy (a fresh clone's `.ci/run` on two
cores with other work beside it), so a pass on a quiet machine proves little. This script keeps the
machine busy with `--burners` processes spinning `while True: pass` and runs `pytest tests/resilience`
`--runs` times, one after another. Each run gets its own `--basetemp` under `--out`, so the logs the
suite keeps (receiver and worker logs, sandbox logs, redis.log) survive for every failing run; those
of passing runs are deleted unless `--keep`. Exit 0 only if every run passed.

Not part of `make test`: ten runs take about an hour on two cores.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BURN = "while True: pass"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=10, help="runs of the suite (10)")
    parser.add_argument("--burners", type=int, default=2, help="CPU-bound processes beside it (2)")
    parser.add_argument("--out", type=Path, help="where run logs go (default: a new directory in /tmp)")
    parser.add_argument("--keep", action="store_true", help="keep the logs of passing runs too")
    parser.add_argument("pytest_args", nargs="*", help="extra pytest arguments (after --)")
    args = parser.parse_args(argv)
    out = args.out or Path(tempfile.mkdtemp(prefix="resilience-under-load-"))
    out.mkdir(parents=True, exist_ok=True)
    burners = [subprocess.Popen([sys.executable, "-c", BURN]) for _ in range(args.burners)]
    print(f"{args.burners} CPU burner(s): pids {' '.join(str(b.pid) for b in burners)}; logs in {out}", flush=True)
    results: list[tuple[int, int, float, list[str]]] = []
    try:
        for run in range(1, args.runs + 1):
            results.append(_run_suite(run, out, args.keep, args.pytest_args))
    except KeyboardInterrupt:
        print("interrupted", flush=True)
    finally:
        for burner in burners:  # only the processes this script started
            burner.kill()
            burner.wait()
    failed = [r for r in results if r[1] != 0]
    print(f"\n{len(results) - len(failed)} of {len(results)} runs passed, {args.burners} burner(s) beside them")
    for run, code, seconds, failures in results:
        print(f"  run {run:>2}: {'ok    ' if code == 0 else f'FAILED (exit {code})'} {seconds:6.0f} s"
              + "".join(f"\n          {f}" for f in failures))
    return 0 if results and not failed and len(results) == args.runs else 1


def _run_suite(run: int, out: Path, keep: bool, extra: list[str]) -> tuple[int, int, float, list[str]]:
    base = out / f"run-{run:02d}"
    log = out / f"run-{run:02d}.log"
    cmd = [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-rfE", f"--basetemp={base}",
           "tests/resilience", *extra]
    started = time.monotonic()
    with open(log, "wb") as fh:
        code = subprocess.run(cmd, cwd=ROOT, stdout=fh, stderr=subprocess.STDOUT, check=False).returncode
    seconds = time.monotonic() - started
    text = log.read_text(errors="replace")
    failures = re.findall(r"^(?:FAILED|ERROR) (\S+.*)$", text, flags=re.M)
    tail = text.strip().splitlines()[-1] if text.strip() else "(no output)"
    print(f"run {run}: exit {code} in {seconds:.0f} s: {tail}", flush=True)
    if code == 0 and not keep:
        shutil.rmtree(base, ignore_errors=True)
        log.unlink(missing_ok=True)
    return run, code, seconds, failures


if __name__ == "__main__":
    sys.exit(main())
