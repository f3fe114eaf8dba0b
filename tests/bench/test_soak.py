"""The small convergence soak CI runs (the large one is `make soak`, recorded in docs/benchmarks.md).

A fixed seed, so a failure here is reproduced with the command the soak prints. Faults are on (webhooks
dropped, duplicated, reordered and delayed; API errors, a 429 storm, short outages, pool processes
killed); the whole-worker kill is left to the large run, since it costs the broker's visibility timeout.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]


def test_a_small_soak_with_faults_converges_with_no_duplicate_and_no_loop() -> None:
    result = subprocess.run([sys.executable, "-m", "bench.soak", "--seed", "7", "--ops", "250", "--faults",
                             "--no-kill-worker", "--loop-wait", "10", "--quiet-timeout", "120"],
                            cwd=ROOT, capture_output=True, text=True, timeout=240)
    out = result.stdout
    assert result.returncode == 0, f"stdout:\n{out[-6000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert "disagreements 0, duplicates 0, loops 0" in out
    assert "pairs compared:" in out
