"""The receiver under gunicorn with webhooks.gunicorn_conf: tokens masked in every log line, the demo kept local."""

from __future__ import annotations

import http.client
import logging
import subprocess
import sys
from pathlib import Path

from gunicorn.config import Config

from sync.redis_server import free_port, port_in_use
from tests.support.procs import ROOT, Proc
from webhooks.gunicorn_conf import ScrubbingLogger, mask_atom

TOKEN = "demo-token"  # published, so never registered as a secret: only masking by name hides it
GUNICORN = [sys.executable, "-m", "gunicorn", "-c", "python:webhooks.gunicorn_conf"]
APP = "webhooks.app:create_app()"


def test_access_lines_mask_the_token_in_every_atom(tmp_path: Path, redis_url: str) -> None:
    port, access = free_port(), tmp_path / "access.log"
    fmt = ('"%(r)s" %(s)s q=%(q)s hdr=%({x-webhook-token}i)s auth=%({authorization}i)s '
           'env=%({query_string}e)s uri=%({raw_uri}e)s ref="%(f)s"')
    proc = Proc([*GUNICORN, "--bind", f"127.0.0.1:{port}", "--workers", "1", "--access-logfile", str(access),
                 "--access-logformat", fmt, APP],
                env={"REDIS_URL": redis_url}, log=tmp_path / "gunicorn.log", url=f"http://127.0.0.1:{port}")
    proc.start().wait_http("/healthz")
    try:
        query = "CompanyId=1234&Table=InvItem&RowId=7&Action=update"
        for path in (f"/webhook/demo/invitems?{query}&token={TOKEN}",
                     f"/webhook/demo/invitems?tok%65n={TOKEN}&{query}",  # sent as is (requests would normalise it)
                     f"/webhook/demo/invitems?{query}&token={TOKEN}x"):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
            conn.request("GET", path, headers={"X-Webhook-Token": TOKEN, "Authorization": f"Bearer {TOKEN}",
                                               "Referer": f"https://uniconta.example/?token={TOKEN}"})
            assert conn.getresponse().status in (202, 401)
            conn.close()
    finally:
        proc.stop()
    lines = access.read_text().splitlines()
    assert len([line for line in lines if "/webhook/" in line]) == 3
    assert not [line for line in lines if TOKEN in line], lines
    assert f"q={query}&token=*** hdr=*** auth=*** env={query}&token=***" in lines[-3]
    assert f'"GET /webhook/demo/invitems?tok%65n=***&{query} HTTP/1.1" 202' in lines[-2]
    assert 'ref="https://uniconta.example/?token=***"' in lines[-1]


def test_error_lines_mask_the_token(tmp_path: Path) -> None:
    """gunicorn's worker logs `Error handling request <uri>` with the query when an app call fails."""
    cfg = Config()
    cfg.set("errorlog", str(tmp_path / "error.log"))
    logger = ScrubbingLogger(cfg)
    uri = f"/webhook/demo/invitems?CompanyId=1234&token={TOKEN}"
    try:
        raise RuntimeError(f"failed on {uri}")
    except RuntimeError:
        logger.exception("Error handling request %s", uri)
    logger.warning("closing %s", f"http://h{uri}")
    for handler in logging.getLogger("gunicorn.error").handlers:
        handler.flush()
    text = (tmp_path / "error.log").read_text()
    assert "Error handling request /webhook/demo/invitems?CompanyId=1234&token=***" in text
    assert "RuntimeError: failed on /webhook/demo/invitems?CompanyId=1234&token=***" in text
    assert TOKEN not in text


def test_mask_atom() -> None:
    assert mask_atom("q", f"tok%65n={TOKEN}&a=1") == "tok%65n=***&a=1"
    assert mask_atom("{x-webhook-token}i", TOKEN) == "***"
    assert mask_atom("{http_x_webhook_token}e", TOKEN) == "***"
    assert mask_atom("{user-agent}i", "curl/8") == "curl/8"
    assert mask_atom("B", 12) == 12


def test_the_demo_refuses_to_listen_beyond_loopback() -> None:
    port = free_port()
    result = subprocess.run([*GUNICORN, "--bind", f"0.0.0.0:{port}", APP], cwd=ROOT, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2, result.stderr
    assert "refusing to listen on 0.0.0.0: the built-in demo configuration" in result.stderr
    assert "Listening at" not in result.stderr and not port_in_use("127.0.0.1", port)
