"""`make run` (syncctl.run): everything starts, the demo data is seeded and synced, every command of the
printed "try this" block works as printed (its edit arrives on the other side, its timeline shows it),
Ctrl-C stops it all, and the webhook token (in the query, as Uniconta's Change URL sends it) is in no
log file and nowhere in Redis."""

from __future__ import annotations

import json
import os
import shlex
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

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


def _tables(base: str) -> dict[str, dict[str, dict[str, Any]]]:
    return requests.get(f"{base}/_sandbox/state", timeout=10).json()["tables"]  # type: ignore[no-any-return]


def _user_field(row: dict[str, Any], name: str) -> Any:
    return (row.get("_user") or {}).get(name)


def _assert_demo_synced(webcrm: str, uniconta: str) -> None:
    """What `make run` promises before the block: the demo data reached the other side, every flow."""
    wc, uc = _tables(webcrm), _tables(uniconta)
    customers = {k for k, o in wc["Organisations"].items() if o["OrganisationType"] == "Kunde"}
    assert len(customers) >= 2 and len(customers) < len(wc["Organisations"])  # non-customers too
    assert {_user_field(d, "WebcrmId") for d in uc["Debtor"].values()} == customers
    persons = {k for k, p in wc["Persons"].items() if str(p["PersonOrganisationId"]) in customers}
    assert {c.get("ReferenceId") for c in uc["Contact"].values()} == persons
    assert {_user_field(e, "WebcrmUserId") for e in uc["Employee"].values()} == set(wc["Users"])
    catalogue = {r["QuotationLineLinkedDataItemData1"]: r for r in wc["LinkedData"].values()}
    assert {i["Item"]: i["SalesPrice1"] for i in uc["InvItem"].values()} == \
        {n: r["QuotationLineLinkedDataItemPrice"] for n, r in catalogue.items()}
    sent = {k for k, d in wc["Deliveries"].items() if d["DeliveryErpStatus"] == "Synchronized"}
    assert sent and {_user_field(o, "WebcrmDeliveryId") for o in uc["DebtorOrder"].values()} == sent


def _block(text: str) -> list[tuple[str, str, str]]:
    """(what, edit, watch) per flow, as printed between "Try this:" and "Watch:"."""
    lines = [line.strip() for line in text.split("Try this:", 1)[1].split("\nWatch:", 1)[0].splitlines()]
    edits = [i for i, line in enumerate(lines) if line.startswith("curl ")]
    return [(lines[i - 1], lines[i], lines[i + 1]) for i in edits]


def _arrived(edit: str, webcrm: str, uniconta: str) -> bool:
    """Whether the edit of one printed command reached the other system."""
    words = shlex.split(edit)
    url, body = words[words.index("-X") + 2], json.loads(words[words.index("-d") + 1])
    wc, uc = _tables(webcrm), _tables(uniconta)
    path = url.split("/_sandbox/ui/", 1)[1]
    if path.startswith("Organisations/"):
        return any(_user_field(d, "WebcrmId") == path.split("/")[1] for d in uc["Debtor"].values())
    if path == "InvItem":
        return any(r["QuotationLineLinkedDataItemData1"] == body["Item"]
                   and r["QuotationLineLinkedDataItemPrice"] == body["SalesPrice1"] for r in wc["LinkedData"].values())
    if path.startswith("Deliveries/"):
        return any(_user_field(o, "WebcrmDeliveryId") == path.split("/")[1] for o in uc["DebtorOrder"].values())
    if path.startswith("Users/"):
        return any(_user_field(e, "WebcrmUserId") == path.split("/")[1] and e.get("Mobil") == body["UserMobilePhone"]
                   for e in uc["Employee"].values())
    if path == "Contact":
        return any(p["PersonCustom1"] == str(body["RowId"]) and p["PersonTitle"] == body["Title"]
                   for p in wc["Persons"].values())
    raise AssertionError(f"a command the test does not know: {edit}")


def _try_the_block(text: str, env: dict[str, str], webcrm: str, uniconta: str) -> None:
    """Run every printed command as printed, in a shell in the repository, as a newcomer would."""
    block = _block(text)
    assert [what.split(":")[0] for what, _, _ in block] == [
        "organisation → debtor", "item → catalogue", "delivery → order", "user → employee", "contact → person"]
    for what, edit, watch in block:
        done = subprocess.run(edit, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
        assert done.returncode == 0 and done.stdout == "", (edit, done.stdout, done.stderr)
        wait_for(lambda edit=edit: _arrived(edit, webcrm, uniconta), timeout=60, what=what)  # type: ignore[misc]
        shown = subprocess.run(watch, shell=True, cwd=ROOT, env=env, capture_output=True, text=True, timeout=60)
        assert shown.returncode == 0 and " done " in shown.stdout and "origin=webhook" in shown.stdout, \
            (watch, shown.stdout, shown.stderr)


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
        wait_for(lambda: "\nWatch: " in (tmp_path / "out.log").read_text(errors="replace"),
                 timeout=300, what="the supervisor to sync the demo data and print the try-this block")
        text = (tmp_path / "out.log").read_text()
        for name in ("redis", "webcrm sandbox", "uniconta sandbox", "receiver", "worker", "beat", "flower"):
            assert name in text
        assert "  synced in " in text, text[-3000:]
        webcrm, uniconta = (f"http://127.0.0.1:{ports[name]}" for name in ("webcrm", "uniconta"))
        _assert_demo_synced(webcrm, uniconta)
        _try_the_block(text, env, webcrm, uniconta)
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
