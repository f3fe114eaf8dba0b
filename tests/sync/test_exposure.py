"""Well-known tokens stay on loopback: what counts as loopback, and which settings are refused beyond it."""

from __future__ import annotations

from pathlib import Path

import pytest

from sync.config import load_settings
from sync.exposure import is_loopback, public_token_problem, well_known_token_connections


@pytest.mark.parametrize(("host", "loopback"), [
    ("127.0.0.1", True), ("127.8.9.10", True), ("::1", True), ("[::1]", True), ("localhost", True),
    ("", False), ("0.0.0.0", False), ("::", False), ("192.168.1.5", False), ("sync.example.com", False),
    ("unix:/run/sync.sock", False),
])
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


def _config(tmp_path: Path, token: str) -> Path:
    path = tmp_path / "sync.toml"
    path.write_text(f"""
[connections.c1.webhook]
tokens = ["{token}", "another-long-secret-token"]
[connections.c1.webcrm]
base_url = "https://api.webcrm.com"
auth_code = "code-123456"
[connections.c1.uniconta]
base_url = "https://odata.uniconta.com"
company_id = 1
username = "u"
password = "p-123456"
""", encoding="utf-8")
    return path


def test_demo_is_refused_beyond_loopback_whatever_its_token() -> None:
    for environ in ({}, {"DEMO_WEBHOOK_TOKEN": "not-the-published-one"}):
        settings = load_settings(environ)
        assert well_known_token_connections(settings) == ["demo"]
        assert public_token_problem(settings, ["127.0.0.1", "::1"]) is None
        problem = public_token_problem(settings, ["127.0.0.1", ""])
        assert problem and "0.0.0.0" in problem and "demo configuration" in problem


@pytest.mark.parametrize("token", ["demo-token", "change-me-long-random"])
def test_a_config_file_with_a_published_token_is_refused_beyond_loopback(tmp_path: Path, token: str) -> None:
    settings = load_settings({"SYNC_CONFIG": str(_config(tmp_path, token))})
    problem = public_token_problem(settings, ["0.0.0.0"])
    assert problem and "c1" in problem and token not in problem
    assert public_token_problem(settings, ["127.0.0.1"]) is None


def test_secret_tokens_may_listen_anywhere(tmp_path: Path) -> None:
    settings = load_settings({"SYNC_CONFIG": str(_config(tmp_path, "a-real-secret-0f9e8d7c"))})
    assert public_token_problem(settings, ["0.0.0.0", "10.0.0.5"]) is None
