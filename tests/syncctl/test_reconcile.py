"""`syncctl reconcile` waits out webCRM's 429 (Retry-After) with a progress line instead of failing
the sweep, up to `reconcile_max_wait_seconds` in total; against the webCRM sandbox's real 429s."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from syncctl.main import main
from tests.support.context import Sandboxes
from tests.support.stack import CONNECTION


def configure(tmp_path: Path, sandboxes: Sandboxes, redis_url: str, monkeypatch: pytest.MonkeyPatch,
              max_wait: int) -> None:
    path = tmp_path / "sync.toml"
    path.write_text(f"""
[connections.{CONNECTION}]
flows = ["organisations"]
reconcile_max_wait_seconds = {max_wait}
[connections.{CONNECTION}.webhook]
tokens = ["t"]
[connections.{CONNECTION}.webcrm]
base_url = "{sandboxes.webcrm.url}"
auth_code = "sandbox-token"
[connections.{CONNECTION}.uniconta]
base_url = "{sandboxes.uniconta.url}"
company_id = 1234
username = "sandbox"
password = "sandbox"
""", encoding="utf-8")
    monkeypatch.setenv("SYNC_CONFIG", str(path))
    monkeypatch.setenv("REDIS_URL", redis_url)


def reconcile() -> tuple[Result, dict]:
    result = CliRunner().invoke(main, ["reconcile", CONNECTION, "--entity", "organisation", "--json"])
    return result, json.loads(result.stdout)


def test_reconcile_waits_out_a_429_with_a_progress_line(sandboxes: Sandboxes, redis_url: str, tmp_path: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, sandboxes, redis_url, monkeypatch, max_wait=120)
    sandboxes.webcrm.ui("Organisations", OrganisationName="Changed just now")
    sandboxes.webcrm.quirks(injected_retry_after=1)
    sandboxes.webcrm.faults(error_status=429, down_seconds=2)  # webCRM refuses everything for a while
    result, data = reconcile()
    assert result.exit_code == 0, result.output
    assert not data["webcrm:organisation"].get("error") and data["webcrm:organisation"]["queued"] == 1
    assert "rate limited" in result.stderr and "waiting 1 s before webcrm" in result.stderr
    assert "of at most 120 s" in result.stderr
    assert 429 in {c["status"] for c in sandboxes.webcrm.calls()}


def test_reconcile_stops_waiting_at_its_bound_with_a_clear_error(sandboxes: Sandboxes, redis_url: str,
                                                                tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    configure(tmp_path, sandboxes, redis_url, monkeypatch, max_wait=2)
    sandboxes.webcrm.quirks(injected_retry_after=1)
    sandboxes.webcrm.faults(error_status=429, down_seconds=600)
    result, data = reconcile()
    assert result.exit_code == 1
    error = data["webcrm:organisation"]["error"]
    assert "HTTP 429" in error and "gave up waiting after 2 s (at most 2 s per sweep)" in error
    assert "Traceback" not in result.output
    sandboxes.webcrm.faults(down_until=0)
