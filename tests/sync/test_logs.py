"""Logging: text or JSON lines, context attached, secrets never written."""

from __future__ import annotations

import io
import json
import logging

import pytest

from sync.logs import log_context, setup_logging
from sync.secrets import Secret


@pytest.fixture
def stream() -> io.StringIO:
    out = io.StringIO()
    yield out
    setup_logging("WARNING", "text")  # leave the root logger quiet for other tests


def test_json_lines_carry_context(stream: io.StringIO) -> None:
    setup_logging("INFO", "json", stream)
    with log_context(connection="10", entity="organisation", record="145"):
        logging.getLogger("sync.test").info("synced %s", "it")
    line = json.loads(stream.getvalue().strip().splitlines()[-1])
    assert line["message"] == "synced it"
    assert (line["connection"], line["entity"], line["record"]) == ("10", "organisation", "145")
    assert line["level"] == "INFO"


def test_text_lines_carry_context(stream: io.StringIO) -> None:
    setup_logging("INFO", "text", stream)
    with log_context(connection="20", record="A-1"):
        logging.getLogger("sync.test").warning("slow")
    assert "[connection=20] [record=A-1]" in stream.getvalue()


@pytest.mark.parametrize("fmt", ["text", "json"])
def test_secrets_never_reach_the_log(stream: io.StringIO, fmt: str) -> None:
    secret = Secret("s3cr3t-auth-code-xyz")
    setup_logging("DEBUG", fmt, stream)
    log = logging.getLogger("sync.test")
    log.info("login with %s", secret.reveal())
    log.info("headers %s", {"Authorization": "Bearer abc.def.ghijkl"})
    log.info("calling /webhook/10/uniconta?token=tok-123456789")
    try:
        raise RuntimeError(f"failed with password={secret.reveal()}")
    except RuntimeError:
        log.exception("boom")
    text = stream.getvalue()
    for leaked in ("s3cr3t-auth-code-xyz", "abc.def.ghijkl", "tok-123456789"):
        assert leaked not in text
    assert "boom" in text
