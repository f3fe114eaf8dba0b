"""`python -m sandbox.webcrm` as a real process: start line, HTTP, SIGTERM, state file, options."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import requests

REPO = Path(__file__).resolve().parents[3]


def start(*args: str, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith("WEBCRM_SANDBOX_")}
    full_env.update(env or {})
    proc = subprocess.Popen([sys.executable, "-m", "sandbox.webcrm", "--port", "0", *args], cwd=REPO,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=full_env)
    assert proc.stdout is not None
    line = proc.stdout.readline()
    match = re.fullmatch(r"sandbox webcrm listening on (http://127\.0\.0\.1:\d+)\n", line)
    if not match:
        proc.kill()
        raise AssertionError(f"unexpected start line {line!r}; stderr: {proc.communicate()[1]}")
    return proc, match.group(1)


def stop(proc: subprocess.Popen) -> int:
    proc.send_signal(signal.SIGTERM)
    try:
        return proc.wait(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()


def login(url: str, code: str = "sandbox-token") -> dict:
    response = requests.post(f"{url}/Auth/ApiLogin", data={"authCode": code}, timeout=5)
    assert response.status_code == 200
    return {"Authorization": f"Bearer {response.json()['AccessToken']}"}


def test_serves_seeds_and_saves_state_on_sigterm(tmp_path):
    state = tmp_path / "state.json"
    proc, url = start("--state-file", str(state), "--seed", "Organisations=3,LinkedData=2",
                      env={"WEBCRM_SANDBOX_AUTH_CODES": "cli-code=CLI Sync", "WEBCRM_SANDBOX_RATE_LIMIT": "0"})
    try:
        headers = login(url, "cli-code")
        assert len(requests.get(f"{url}/Organisations", headers=headers, timeout=5).json()) == 3
        org = requests.post(f"{url}/Organisations", json={"OrganisationName": "Fra CLI"}, headers=headers,
                            timeout=5).json()
        assert requests.get(f"{url}/Organisations/{org}", headers=headers, timeout=5).json()[
            "OrganisationCreatedBy"] == "CLI Sync"
    finally:
        assert stop(proc) == 0
    assert state.exists()
    # a restart reads the state file (and does not seed again)
    proc, url = start("--state-file", str(state), "--seed", "Organisations=3",
                      env={"WEBCRM_SANDBOX_AUTH_CODES": "cli-code=CLI Sync"})
    try:
        headers = login(url, "cli-code")
        names = [o["OrganisationName"] for o in requests.get(f"{url}/Organisations", headers=headers,
                                                               timeout=5).json()]
        assert len(names) == 4
        assert names[-1] == "Fra CLI"
    finally:
        assert stop(proc) == 0


def test_options_override_env_and_help_lists_env_vars():
    proc, url = start("--token-lifetime", "77", "--auth-codes", "x=Xavier",
                      env={"WEBCRM_SANDBOX_TOKEN_LIFETIME": "5"})
    try:
        response = requests.post(f"{url}/Auth/ApiLogin", data={"authCode": "x"}, timeout=5)
        assert response.json()["ExpiresIn"] == 77
    finally:
        assert stop(proc) == 0
    help_text = subprocess.run([sys.executable, "-m", "sandbox.webcrm", "--help"], cwd=REPO, capture_output=True,
                               text=True, timeout=30)
    assert help_text.returncode == 0
    for name in ("WEBCRM_SANDBOX_AUTH_CODES", "WEBCRM_SANDBOX_TOKEN_LIFETIME", "WEBCRM_SANDBOX_RATE_LIMIT",
                 "WEBCRM_SANDBOX_PORT", "WEBCRM_SANDBOX_SEED"):
        assert name in help_text.stdout


def test_bad_options_exit_2():
    for args in (["--rate-limit", "lots"], ["--auth-codes", "nope"], ["--seed", "Spaceships=3"]):
        result = subprocess.run([sys.executable, "-m", "sandbox.webcrm", "--port", "0", *args], cwd=REPO,
                                capture_output=True, text=True, timeout=30)
        assert result.returncode == 2, (args, result.stderr)
        assert "error" in result.stderr
