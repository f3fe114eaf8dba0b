"""The convergence soak, small (issue 14): a few hundred operations of the seeded walk with faults, run as
`make soak` runs the large one (`python -m bench.soak`, in a child process), must end with no
disagreement, no duplicate and no loop.

About a minute and a half on 2 cores: the walk (300 operations at 10 a second), quiescence, a
reconciliation, the 20-second loop check and the checker. The whole worker is not killed here (that
waits out the broker's visibility timeout, ~100 s); pool processes are. `SOAK_SEED` picks another seed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parents[2]
SEED = int(os.environ.get("SOAK_SEED", "14"))
OPS = 300


def test_small_soak_with_faults_converges(tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    result = subprocess.run([sys.executable, "-m", "bench.soak", "--seed", str(SEED), "--ops", str(OPS), "--faults",
                             "--no-kill-worker", "--rate", "10", "--json", str(out)], cwd=ROOT, capture_output=True,
                            text=True, timeout=280)
    tail = f"stdout:\n{result.stdout[-6000:]}\nstderr:\n{result.stderr[-3000:]}"
    assert out.exists(), tail
    soak = json.loads(out.read_text())
    assert (soak["disagreements"], soak["duplicates"], soak["loops"]) == (0, 0, 0), tail
    assert result.returncode == 0, tail
    # It was a soak of every flow, with the faults on.
    assert set(soak["pairs"]) == {"organisations", "items", "orders", "users", "persons"}, soak["pairs"]
    assert all(soak["pairs"].values()), soak["pairs"]
    webhooks = soak["webhooks"]
    assert sum(w["dropped"] for w in webhooks.values()) > 0 and sum(w["duplicated"] for w in webhooks.values()) > 0
    assert any("status:429" in errors for errors in soak["injected_errors"].values())
    assert any("pool process" in kill for kill in soak["kills"]), soak["kills"]
    assert soak["reconcile_exit"] == 0
