"""The layers point one way (docs/architecture.md), checked by import-linter's contracts in setup.cfg.

`make lint` runs the same check; these tests also prove that the contract catches what it is for:
a module under sync/ that imports the task layer, even inside a function.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("sync", "syncctl", "tasks", "webhooks", "sandbox")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def _lint_imports(where: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT_IMPORTS), "--config", str(where / "setup.cfg"), "--no-cache"], cwd=where,
                          capture_output=True, text=True, timeout=120, env={"PYTHONPATH": str(where), "PATH": ""})


def _copy_tree(tmp: Path) -> Path:
    for name in PACKAGES:
        shutil.copytree(ROOT / name, tmp / name, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "setup.cfg", tmp / "setup.cfg")
    return tmp


def test_the_contracts_hold_for_the_tree() -> None:
    result = _lint_imports(ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_a_flow_importing_tasks_inside_a_function_breaks_the_layers_contract(tmp_path: Path) -> None:
    tree = _copy_tree(tmp_path)
    flow = tree / "sync" / "flows" / "items.py"
    flow.write_text(flow.read_text() + "\n\ndef _later() -> None:\n    from tasks.dispatch import enqueue  # noqa\n")
    result = _lint_imports(tree)
    assert result.returncode != 0
    assert "sync.flows.items -> tasks.dispatch" in result.stdout


def test_no_module_under_sync_names_the_task_layer() -> None:
    pattern = re.compile(r"^\s*(import tasks\b|from tasks\b)", re.M)
    offenders = [str(p.relative_to(ROOT)) for p in (ROOT / "sync").rglob("*.py") if pattern.search(p.read_text())]
    assert offenders == []
