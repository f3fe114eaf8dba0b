"""Helpers for the ops e2e tests: the CLI in-process, sandbox call logs."""

from __future__ import annotations

from typing import Any

import pytest
from click.testing import CliRunner, Result

from syncctl.main import main
from tests.e2e.conftest import Stack
from tests.support.stack import admin


def syncctl(stack: Stack, monkeypatch: pytest.MonkeyPatch, *args: str) -> Result:
    """Run `syncctl ARGS` in this process against the stack's configuration and Redis."""
    monkeypatch.setenv("SYNC_CONFIG", stack.env["SYNC_CONFIG"])
    monkeypatch.setenv("REDIS_URL", stack.env["REDIS_URL"])
    return CliRunner().invoke(main, list(args))


def writes(base: str, *, exclude_login: bool = True) -> list[str]:
    """Every call to a sandbox that changes data (per its call log)."""
    calls = admin(base, "GET", "/calls")["calls"]
    out = []
    for c in calls:
        path = c["path"]
        if exclude_login and path.startswith("/Auth"):
            continue
        changing = c["method"] in ("POST", "PUT", "DELETE", "PATCH")
        if changing or any(word in path for word in ("/Insert", "/Update", "/Delete")):
            out.append(f"{c['method']} {path}")
    return out



def catalogue_numbers(stack: Stack) -> list[str]:
    return sorted(stack.catalogue())


def dict_of(result: Result) -> Any:
    import json

    assert result.exit_code == 0, result.output
    return json.loads(result.output)
