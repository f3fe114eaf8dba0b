"""syncctl config show / check."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from syncctl.main import main


def test_config_show_masks_secrets() -> None:
    result = CliRunner().invoke(main, ["config", "show", "demo", "--json"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    assert data["webcrm"]["auth_code"] == "***"
    assert data["uniconta"]["password"] == "***"
    assert "sandbox-token" not in result.output and "demo-token" not in result.output


def test_config_show_text_and_unknown_connection() -> None:
    runner = CliRunner()
    ok = runner.invoke(main, ["config", "show"])
    assert ok.exit_code == 0 and "connections:" in ok.output and "demo:" in ok.output
    bad = runner.invoke(main, ["config", "show", "nope"])
    assert bad.exit_code == 2 and "unknown connection 'nope'" in bad.output


def test_config_check(tmp_path: Path) -> None:
    runner = CliRunner()
    bad = tmp_path / "bad.toml"
    bad.write_text("[connections.x]\nflows = 1\n")
    result = runner.invoke(main, ["config", "check", str(bad)])
    assert result.exit_code == 1
    assert f"{bad}: connections.x" in result.output
    assert "Traceback" not in result.output


def test_bad_environment_exits_2(monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setenv("LOG_FORMAT", "yaml")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 2 and "LOG_FORMAT" in result.output
