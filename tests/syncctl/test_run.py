"""`make run` (syncctl.run): everything starts, an item flows through, Ctrl-C stops it all."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import requests

from sync.redis_server import free_port, port_in_use
from tests.support.procs import ROOT
from tests.support.stack import wait_for

pytestmark = pytest.mark.slow


def test_run_starts_everything_syncs_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("redis", "webcrm", "uniconta", "receiver", "flower")}
    env = {**os.environ, "SYNC_RUN_DIR": str(tmp_path / "run"), "SYNC_REDIS_PORT": str(ports["redis"]),
           "SYNC_DEMO_WEBCRM_PORT": str(ports["webcrm"]), "SYNC_DEMO_UNICONTA_PORT": str(ports["uniconta"]),
           "SYNC_BIND": f"127.0.0.1:{ports['receiver']}", "FLOWER_PORT": str(ports["flower"])}
    for name in ("SYNC_CONFIG", "REDIS_URL"):
        env.pop(name, None)
    out = open(tmp_path / "out.log", "wb")  # noqa: SIM115
    proc = subprocess.Popen([sys.executable, "-m", "syncctl.run"], cwd=ROOT, env=env, stdout=out,
                            stderr=subprocess.STDOUT, start_new_session=True)
    try:
        wait_for(lambda: "Running (Ctrl-C stops everything)" in (tmp_path / "out.log").read_text(errors="replace"),
                 timeout=60, what="the supervisor to report what runs where")
        text = (tmp_path / "out.log").read_text()
        for name in ("redis", "webcrm sandbox", "uniconta sandbox", "receiver", "worker", "beat", "flower"):
            assert name in text
        uniconta = f"http://127.0.0.1:{ports['uniconta']}"
        requests.post(f"{uniconta}/_sandbox/ui/InvItemClient", json={"Item": "RUN-1", "Name": "Via make run",
                                                                    "SalesPrice1": 12.5}, timeout=5)
        state = f"http://127.0.0.1:{ports['webcrm']}/_sandbox/state"

        def in_catalogue() -> bool:
            rows = requests.get(state, timeout=5).json()["tables"].get("LinkedData", {}).values()
            return any(r["QuotationLineLinkedDataItemData1"] == "RUN-1" for r in rows)

        wait_for(in_catalogue, timeout=30, what="the item to reach the webCRM sandbox")
        assert requests.get(f"http://127.0.0.1:{ports['receiver']}/readyz", timeout=5).status_code == 200
    finally:
        os.killpg(proc.pid, signal.SIGINT) if proc.poll() is None else None
        code = proc.wait(60)
        out.close()
    assert code == 0, (tmp_path / "out.log").read_text()[-3000:]
    time.sleep(0.5)
    for name, port in ports.items():
        assert not port_in_use("127.0.0.1", port), f"{name} still listening on {port}"
    assert list((tmp_path / "run" / "redis").glob("appendonly*")), "Redis data not kept"
    assert "stopped." in (tmp_path / "out.log").read_text()
