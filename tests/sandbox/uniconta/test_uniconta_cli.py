"""`python -m sandbox.uniconta`: serving, options and environment, state file across restarts."""

from __future__ import annotations

import subprocess
import sys

import requests

from tests.support.procs import ROOT, start_sandbox

AUTH = ("001234/sandbox", "sandbox")


def run(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "sandbox.uniconta", *args], cwd=ROOT, capture_output=True,
                          text=True, timeout=30, env=env)


def test_help_lists_every_option_with_its_environment_variable():
    result = run("--help")
    assert result.returncode == 0
    for env in ("UNICONTA_SANDBOX_COMPANY", "UNICONTA_SANDBOX_USER", "UNICONTA_SANDBOX_PASSWORD",
                "UNICONTA_SANDBOX_DAILY_BUDGET", "UNICONTA_SANDBOX_SLOWDOWN", "UNICONTA_SANDBOX_ODATA_PAGE_SIZE",
                "UNICONTA_SANDBOX_USER_FIELDS", "UNICONTA_SANDBOX_STATE_FILE", "UNICONTA_SANDBOX_PORT"):
        assert env in result.stdout
    assert "8102" in result.stdout


def test_bad_option_values_exit_2():
    result = run("--company", "abc", "--port", "0")
    assert result.returncode == 2 and "company" in result.stderr
    assert run("--no-such-option").returncode == 2


def test_serves_persists_state_and_stops_cleanly(tmp_path):
    state = tmp_path / "uniconta.json"
    proc = start_sandbox("uniconta", tmp_path, state_file=state,
                         env={"UNICONTA_SANDBOX_PASSWORD": "pw", "UNICONTA_SANDBOX_USER_FIELDS": "Debtor:WebcrmId"})
    try:
        auth = ("001234/sandbox", "pw")
        response = requests.post(f"{proc.url}/api/Entities/Insert/DebtorClientUser",
                                 json={"Account": "1000", "Name": "Bæk & Søn", "WebcrmId": "17"}, auth=auth, timeout=5)
        assert response.status_code == 200
        assert requests.get(f"{proc.url}/api/Entities/DebtorClient", auth=AUTH, timeout=5).status_code == 401
    finally:
        process = proc.process
        proc.stop()
    assert process is not None and process.returncode == 0
    log = (tmp_path / "sandbox-uniconta.log").read_text()
    assert f"sandbox uniconta listening on {proc.url}" in log
    assert state.exists()

    again = start_sandbox("uniconta", tmp_path, state_file=state, env={"UNICONTA_SANDBOX_PASSWORD": "pw"})
    try:
        rows = requests.get(f"{again.url}/api/Entities/DebtorClientUser", auth=("001234/sandbox", "pw"),
                            timeout=5).json()
        assert [(r["Account"], r["Name"], r["WebcrmId"]) for r in rows] == [("1000", "Bæk & Søn", "17")]
        response = requests.post(f"{again.url}/api/Entities/Insert/DebtorClient", json={"Account": "1000"},
                                 auth=("001234/sandbox", "pw"), timeout=5)
        assert response.json()["ErrorCode"] == "RecordExists"
        second = requests.post(f"{again.url}/api/Entities/Insert/DebtorClient", json={"Account": "2000"},
                               auth=("001234/sandbox", "pw"), timeout=5).json()
        assert second["RowId"] == 2
    finally:
        again.stop()
