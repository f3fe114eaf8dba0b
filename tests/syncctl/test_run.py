"""`make run` (syncctl.run): everything starts, an item flows through, Ctrl-C stops it all, and the
webhook token (in the query, as Uniconta's Change URL sends it) is in no log file and nowhere in Redis."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import redis
import requests

from sync.redis_server import free_port, port_in_use
from tests.support.procs import ROOT
from tests.support.stack import wait_for

pytestmark = pytest.mark.slow

# The demo's token: published, so never registered as a secret; only masking by name keeps it out.
TOKEN = "demo-token"


def _send_webhooks_with_the_token(receiver: str) -> None:
    """Every way a token reaches the receiver: query, referer, header, a wrong one, and calls the receiver refuses;
    no answer (error messages included) repeats it."""
    uniconta = f"{receiver}/webhook/demo/invitems?CompanyId=1234&Table=InvItem&Key=RUN-2&RowId=99&Action=Update"
    calls = [("GET", f"{uniconta}&token={TOKEN}", {}, None, 202),
             ("GET", f"{uniconta}&token={TOKEN}", {"Referer": f"{uniconta}&token={TOKEN}"}, None, 202),
             ("GET", f"{uniconta}&token={TOKEN}-wrong", {}, None, 401),
             ("GET", f"{receiver}/webhook/demo/invitems?CompanyId=99&token={TOKEN}", {}, None, 400),
             ("POST", f"{receiver}/webhook/demo/webcrm?token={TOKEN}", {"X-Webhook-Token": TOKEN}, {"EntityId": 1}, 400),
             ("GET", f"{receiver}/webhook/nope/uniconta?token={TOKEN}", {}, None, 404)]
    for method, url, headers, body, status in calls:
        resp = requests.request(method, url, headers=headers, json=body, timeout=5)
        assert resp.status_code == status and TOKEN not in resp.text, (url, resp.status_code, resp.text)


def _redis_text(url: str) -> str:
    """Every key and value in Redis (journal, dead letters, broker messages, marks) as one text."""
    client = redis.Redis.from_url(url, decode_responses=True)
    parts = []
    for key in client.scan_iter(count=1000):
        kind = client.type(key)
        value = {"string": lambda k: client.get(k), "list": lambda k: client.lrange(k, 0, -1),
                 "hash": lambda k: client.hgetall(k), "set": lambda k: client.smembers(k),
                 "zset": lambda k: client.zrange(k, 0, -1), "stream": lambda k: client.xrange(k)}.get(kind)
        parts.append(f"{key} {value(key) if value else kind}")
    client.close()
    return "\n".join(parts)


def test_run_starts_everything_syncs_and_stops_cleanly(tmp_path: Path) -> None:
    ports = {name: free_port() for name in ("redis", "webcrm", "uniconta", "receiver", "flower", "metrics")}
    env = {**os.environ, "SYNC_RUN_DIR": str(tmp_path / "run"), "SYNC_REDIS_PORT": str(ports["redis"]),
           "SYNC_DEMO_WEBCRM_PORT": str(ports["webcrm"]), "SYNC_DEMO_UNICONTA_PORT": str(ports["uniconta"]),
           "SYNC_BIND": f"127.0.0.1:{ports['receiver']}", "FLOWER_PORT": str(ports["flower"]),
           "SYNC_METRICS_PORT": str(ports["metrics"])}
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
        receiver = f"http://127.0.0.1:{ports['receiver']}"
        assert requests.get(f"{receiver}/readyz", timeout=5).status_code == 200
        _send_webhooks_with_the_token(receiver)
        # Both metrics endpoints, each merging its processes' values from its own directory under .run/metrics/.
        answered = requests.get(f"{receiver}/metrics", timeout=5).text
        assert 'sync_webhooks_total{answer="refused",code="401",connection="demo",system="uniconta"} 1.0' in answered
        worker = requests.get(f"http://127.0.0.1:{ports['metrics']}/metrics", timeout=5).text
        assert 'sync_records_total{action="created",connection="demo",flow="items"}' in worker
        assert {p.name for p in (tmp_path / "run" / "metrics").iterdir()} == {"receiver", "worker"}
        redis_text = _redis_text(f"redis://127.0.0.1:{ports['redis']}/0")
        assert "sync:demo:journal:" in redis_text and TOKEN not in redis_text
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
    logs = [*sorted((tmp_path / "run" / "logs").glob("*.log")), tmp_path / "out.log"]
    assert {p.name for p in logs} >= {"receiver.log", "beat.log", "flower.log", "out.log"}  # worker: out.log
    leaks = [f"{p.name}: {line}" for p in logs for line in p.read_text(errors="replace").splitlines() if TOKEN in line]
    assert leaks == []
    receiver_log = (tmp_path / "run" / "logs" / "receiver.log").read_text()
    assert "&Action=Update&token=*** HTTP/1.1\" 202" in receiver_log and "&token=***\" \"python" in receiver_log


def test_run_with_a_real_configuration_needs_flower_credentials_before_starting_anything(tmp_path: Path) -> None:
    from tests.support.stack import write_config

    config = write_config(tmp_path / "sync.toml", webcrm_url="http://127.0.0.1:9", uniconta_url="http://127.0.0.1:9")
    env = {**os.environ, "SYNC_CONFIG": str(config), "SYNC_RUN_DIR": str(tmp_path / "run")}
    result = subprocess.run([sys.executable, "-m", "syncctl.run"], cwd=ROOT, env=env, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "refusing to start Flower on 127.0.0.1 with a real configuration" in result.stderr
    assert not (tmp_path / "run").exists()
