"""What a failed attempt leads to (pure: no I/O)."""

from __future__ import annotations

import time

from sync.clients.errors import NotFound, Permanent, Transient
from sync.config import load_settings
from sync.jobs.step import after_failure

SETTINGS = load_settings({})


def verdict(err: BaseException, attempt: int = 0) -> str:
    return after_failure(SETTINGS, err, attempt=attempt, first_attempt_at=time.time(), backoff_delay=1.0).action


def test_a_write_to_a_record_deleted_meanwhile_is_tried_once_more_then_dead() -> None:
    """The next attempt reads the record again and takes its flow's path for a deleted record (found by
    the soak: a person deleted while its contact's RowId was written back was a dead letter)."""
    gone = NotFound("not found", system="webcrm", method="PUT", path="/Persons/5", status=404)
    assert verdict(gone) == "retry"
    assert verdict(gone, attempt=1) == "dead"


def test_other_refusals_are_dead_at_once_and_transient_errors_retried() -> None:
    assert verdict(NotFound("no such debtor", system="uniconta", method="GET", path="/x", status=404)) == "dead"
    assert verdict(Permanent("bad value", system="webcrm", method="PUT", path="/Persons/5", status=400)) == "dead"
    assert verdict(Transient("timeout", system="webcrm", method="PUT", path="/Persons/5")) == "retry"
