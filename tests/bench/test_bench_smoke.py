"""Each benchmark runs in its tiny "smoke" mode and prints its table.

Only that it works is checked - never a number: benchmarks measure, tests do not time things.
They run in a child process (`python -m bench NAME --smoke`), exactly as `make bench` runs them.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]

# benchmark → the start of the title of each table it prints
TABLES = {
    "receiver": ["1a. Receiver throughput", "1b. Receiver latency"],
    "latency": ["2. End-to-end latency"],
    "api_calls": ["3. API calls per sync"],
    "burst": ["4. Burst"],
    "backfill": ["5a. Backfill", "5c. The same backfill"],
    "bulk": ["7. ", "8. A full reconciliation compare"],
}


def run_bench(*args: str, timeout: float = 240) -> str:
    result = subprocess.run([sys.executable, "-m", "bench", *args, "--smoke"], cwd=ROOT, capture_output=True,
                            text=True, timeout=timeout)
    assert result.returncode == 0, f"stdout:\n{result.stdout[-3000:]}\nstderr:\n{result.stderr[-3000:]}"
    return result.stdout


@pytest.mark.parametrize("name", sorted(TABLES))
def test_benchmark_prints_its_tables(name: str) -> None:
    out = run_bench(name)
    for title in TABLES[name]:
        assert title in out, out[-3000:]
    assert "FAILED" not in out


def test_memory_benchmark_runs_what_it_needs_and_prints_its_table() -> None:
    out = run_bench("memory", "--flows", "items", "--records", "10")
    assert "6. Peak memory" in out
    assert "receiver (gunicorn 2×4)" in out and "worker (Celery prefork)" in out


def test_unknown_benchmark_is_a_usage_error() -> None:
    result = subprocess.run([sys.executable, "-m", "bench", "nonsense"], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "unknown benchmark nonsense" in result.stderr
