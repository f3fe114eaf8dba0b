"""Flower starts only with credentials (or as the demo on loopback), and then really asks for them."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import requests

from sync.redis_server import free_port
from tasks.flower import auth_problem, option
from tests.support.procs import ROOT, Proc
from tests.support.stack import write_config

OAUTH = {"FLOWER_AUTH": ".*@example\\.com", "FLOWER_AUTH_PROVIDER": "flower.views.auth.GithubLoginHandler",
         "FLOWER_OAUTH2_KEY": "k", "FLOWER_OAUTH2_SECRET": "s", "FLOWER_OAUTH2_REDIRECT_URI": "https://f/login"}


def test_option_is_read_as_flower_reads_it() -> None:
    env = {"FLOWER_ADDRESS": "10.0.0.1", "FLOWER_BASIC_AUTH": "a:b"}
    assert option([], env, "address") == "10.0.0.1"
    assert option(["--address=127.0.0.1"], env, "address") == "127.0.0.1"  # the command line wins
    assert option(["--basic-auth=x:y", "--basic_auth=z:w"], {}, "basic_auth") == "z:w"  # the last one
    assert option(["--address", "127.0.0.1"], {}, "address") is None  # Flower ignores `--name value` too


@pytest.mark.parametrize(("args", "env", "demo", "allowed"), [
    ([], {}, True, False),                                         # every interface
    (["--address=0.0.0.0"], {}, True, False),
    (["--address=127.0.0.1"], {}, True, True),                     # make run's demo
    (["--address=::1"], {}, True, True),
    (["--address=127.0.0.1"], {}, False, False),                   # make run with a real configuration
    (["--address=127.0.0.1", "--unix-socket=/tmp/f.sock"], {}, True, False),
    ([], {"FLOWER_BASIC_AUTH": "ops:long-password"}, False, True),
    (["--basic_auth=ops:pw,viewer:pw2"], {}, False, True),
    ([], {"FLOWER_BASIC_AUTH": ""}, False, False),
    ([], {"FLOWER_BASIC_AUTH": "ops:"}, False, False),
    ([], {"FLOWER_BASIC_AUTH": "ops:pw,broken"}, False, False),
    ([], OAUTH, False, True),
    ([], {**OAUTH, "FLOWER_OAUTH2_SECRET": ""}, False, False),     # OAuth needs every part
    ([], {"FLOWER_UNAUTHENTICATED_API": "true"}, False, False),
])
def test_auth_problem(args: list[str], env: dict[str, str], demo: bool, allowed: bool) -> None:
    problem = auth_problem(args, env, demo=demo)
    assert (problem is None) is allowed, problem
    if problem:
        assert "FLOWER_BASIC_AUTH=user:password" in problem


def test_refuses_with_a_real_configuration_even_on_loopback(tmp_path: Path) -> None:
    config = write_config(tmp_path / "sync.toml", webcrm_url="http://127.0.0.1:9", uniconta_url="http://127.0.0.1:9")
    result = subprocess.run([sys.executable, "-m", "tasks.flower", "--address=127.0.0.1", f"--port={free_port()}"],
                            cwd=ROOT, env={"SYNC_CONFIG": str(config), "PATH": ""}, capture_output=True, text=True,
                            timeout=60)
    assert result.returncode == 2
    assert "refusing to start Flower on 127.0.0.1 with a real configuration (SYNC_CONFIG)" in result.stderr


def test_with_credentials_flower_starts_and_asks_for_them(tmp_path: Path, redis_url: str) -> None:
    port = free_port()
    proc = Proc([sys.executable, "-m", "tasks.flower", "--address=127.0.0.1", f"--port={port}"],
                env={"REDIS_URL": redis_url, "FLOWER_BASIC_AUTH": "ops:correct-horse"}, log=tmp_path / "flower.log",
                url=f"http://127.0.0.1:{port}")
    proc.start().wait_http("/healthcheck", timeout=60)
    try:
        assert requests.get(f"{proc.url}/healthcheck", timeout=5).text == "OK"  # compose's healthcheck: no auth
        for path in ("/", "/tasks", "/api/workers"):
            assert requests.get(f"{proc.url}{path}", timeout=5).status_code == 401, path
            assert requests.get(f"{proc.url}{path}", auth=("ops", "wrong"), timeout=5).status_code == 401, path
        assert requests.get(f"{proc.url}/workers", auth=("ops", "correct-horse"), timeout=5).status_code == 200
    finally:
        proc.stop()
