"""The repository carries what it needs: no file points outside it, and a copy with nothing beside it works.

A newcomer's clone has no sibling directories and none of this machine's paths, so a file that reads
or cites one (the team's notes beside the checkout, a local package index, a home directory) works here
and fails there. The Swagger the sandbox is checked against is the project's own copy for that reason.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
THIS = Path(__file__).resolve().relative_to(ROOT).as_posix()

# Each pattern names a place outside the repository; the message says what to do instead.
OUTSIDE = [
    (re.compile(r"\.\./shared\b|\bshared/(reference|DESIGN|mission|hooks)\b"),
     "the team's notes beside the checkout: copy what is needed into the repository"),
    (re.compile(r"""\.parents?\b[^\n]*["']shared["']"""), "a path to a directory beside the checkout"),
    (re.compile(r"(?<![\w.-])/(work|home|root|opt|srv|mnt)/[\w.-]"), "an absolute path of this machine"),
    (re.compile(r"/etc/xdg/|file:///"), "a local path of this machine's package setup"),
]


def _files() -> list[str]:
    """Tracked and new (not ignored) files: what a commit of this tree would carry."""
    out = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard", "-z"], cwd=ROOT,
                         capture_output=True, check=True).stdout.decode()
    return [name for name in out.split("\0") if name and (ROOT / name).is_file()]


def test_no_file_points_outside_the_repository() -> None:
    offenders = []
    for name in _files():
        if name == THIS:
            continue
        try:
            text = (ROOT / name).read_text(encoding="utf-8")
        except UnicodeDecodeError:
            continue
        for number, line in enumerate(text.splitlines(), 1):
            for pattern, why in OUTSIDE:
                if pattern.search(line):
                    offenders.append(f"{name}:{number}: {why}: {line.strip()[:120]}")
    assert offenders == [], "\n".join(offenders)


def test_the_patterns_catch_what_they_are_for() -> None:
    caught = ['SWAGGER = ROOT.parent / "shared" / "reference" / "x.json"', "see ../shared/DESIGN.md",
              "facts from shared/reference/webcrm-api.md", "open('/work/shared/x')",
              "--extra-index-url file:///opt/pypi/simple", "cat /home/dev/notes"]
    fine = ["</workspace></service>", "the shared limiter", "sync/state/ratelimit.py", "http://127.0.0.1:5555/x",
            "docs/reference/webcrm-api.md"]
    assert all(any(p.search(line) for p, _ in OUTSIDE) for line in caught)
    assert not any(p.search(line) for line in fine for p, _ in OUTSIDE)


def test_a_copy_with_nothing_beside_it_passes_the_swagger_tests(tmp_path: Path) -> None:
    """The tree alone (no sibling directories) runs the tests that used to need the team's notes."""
    copy = tmp_path / "lone" / "project"
    for name in _files():
        (copy / name).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / name, copy / name)
    assert [p.name for p in copy.parent.iterdir()] == ["project"]
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "-n", "0",
         "tests/sandbox/webcrm/test_webcrm_swagger.py"],
        cwd=copy, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert re.search(r"\b\d+ passed\b", result.stdout) and "skipped" not in result.stdout, result.stdout[-2000:]
