"""The lock files pin, with hashes, every dependency setup.cfg names, and every install uses them.

`make lock` writes requirements-dev.txt (everything, for make install and so CI) and requirements.txt
(what the image needs, at the same versions). A dependency added to setup.cfg without `make lock`
fails here, before an install quietly takes whatever version the index has that day.
"""

from __future__ import annotations

import configparser
import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

ROOT = Path(__file__).resolve().parent.parent


def _pins(name: str) -> dict[str, tuple[str, int]]:
    """{package: (version, number of hashes)} of a pip-compile output."""
    pins: dict[str, tuple[str, int]] = {}
    current = ""
    for line in (ROOT / name).read_text().splitlines():
        if match := re.match(r"^([A-Za-z0-9._-]+)==(\S+) \\$", line):
            current = canonicalize_name(match[1])
            pins[current] = (match[2], 0)
        elif line.strip().startswith("--hash=sha256:") and current:
            pins[current] = (pins[current][0], pins[current][1] + 1)
        elif line.strip() and not line.startswith((" ", "#")):
            raise AssertionError(f"{name}: unexpected line {line!r}")
    return pins


def _setup_requirements() -> tuple[list[Requirement], list[Requirement], list[Requirement]]:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    runtime = [Requirement(r) for r in cfg["options"]["install_requires"].split("\n") if r.strip()]
    dev = [Requirement(r) for r in cfg["options.extras_require"]["dev"].split("\n") if r.strip()]
    build = [Requirement(r) for r in tomllib.loads((ROOT / "pyproject.toml").read_text())["build-system"]["requires"]]
    return runtime, dev, build


def _satisfied(requirements: list[Requirement], pins: dict[str, tuple[str, int]], lock: str) -> list[str]:
    problems = []
    for req in requirements:
        pinned = pins.get(canonicalize_name(req.name))
        if pinned is None:
            problems.append(f"{req} is not in {lock}")
        elif not req.specifier.contains(pinned[0], prereleases=True):
            problems.append(f"{req} but {lock} pins {pinned[0]}")
    return problems


def test_every_dependency_is_pinned_with_hashes() -> None:
    runtime, dev, build = _setup_requirements()
    dev_pins, pins = _pins("requirements-dev.txt"), _pins("requirements.txt")
    problems = _satisfied(runtime + dev + build, dev_pins, "requirements-dev.txt")
    problems += _satisfied(runtime + build, pins, "requirements.txt")
    assert problems == [], "run `make lock`:\n" + "\n".join(problems)
    assert all(count for _, count in [*dev_pins.values(), *pins.values()]), "a pin without a hash"
    # The image runs exactly what CI tested: the runtime lock is a subset of the dev lock.
    assert {name: v for name, (v, _) in pins.items()} == {name: dev_pins[name][0] for name in pins}
    assert not {"pytest", "mypy", "ruff"} & set(pins)


def test_installs_use_the_lock() -> None:
    make = (ROOT / "Makefile").read_text()
    assert "pip install --quiet --require-hashes -r $(LOCK_DEV)" in make
    assert "pip install --quiet --no-deps --no-build-isolation -e ." in make
    assert re.search(r"^\$\(STAMP\): .*\$\(LOCK_DEV\)", make, re.M), "a new lock must reinstall"
    docker = (ROOT / "Dockerfile").read_text()
    assert "pip install --no-cache-dir --require-hashes -r requirements.txt" in docker
    assert "pip install --no-cache-dir --no-deps --no-build-isolation ." in docker
    assert "make lint" in (ROOT / ".ci/run").read_text() and "make test" in (ROOT / ".ci/run").read_text()


def test_the_image_copies_every_package() -> None:
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    packages = {p.strip() for p in cfg["options.packages.find"]["include"].split("\n") if p.strip() and "." not in p}
    copied = set(re.findall(r"^COPY (\w+) \./\1$", (ROOT / "Dockerfile").read_text(), re.M))
    assert packages == copied
