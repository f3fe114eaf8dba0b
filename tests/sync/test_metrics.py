"""sync.metrics: bounded labels, recorders that never raise, intake outcomes, the registry to serve."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY

from sync import metrics


def sample(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.mark.parametrize(("given", "expected"), [
    ("t1", "t1"), ("organisations", "organisations"), ("dead-letter", "dead-letter"),
    ("/Organisations/123", "other"), ("a b", "other"), ("x" * 41, "other"), (None, "other"), ("", "other")])
def test_labels_are_names_from_code_never_ids_or_paths(given: Any, expected: str) -> None:
    assert metrics.label(given) == expected


def test_api_calls_are_counted_by_method_and_status_never_by_path() -> None:
    observe = metrics.api_observer("m1", "webcrm")
    before = sample("sync_api_throttled_total", connection="m1", system="webcrm", source="api")
    observe("GET", "/Organisations/145", 429, 12.0)
    observe("get", "/Organisations/146", None, 3000.0)  # no answer: a timeout
    observe("BREW", "/x", 999, 1.0)
    assert sample("sync_api_calls_total", connection="m1", system="webcrm", method="GET", status="429") == 1
    assert sample("sync_api_calls_total", connection="m1", system="webcrm", method="GET", status="error") == 1
    assert sample("sync_api_calls_total", connection="m1", system="webcrm", method="other", status="other") == 1
    assert sample("sync_api_call_duration_seconds_sum", connection="m1", system="webcrm", method="GET") == pytest.approx(3.012)
    assert sample("sync_api_throttled_total", connection="m1", system="webcrm", source="api") == before + 1


def test_a_failing_metric_is_swallowed_with_a_debug_line(monkeypatch: pytest.MonkeyPatch,
                                                        caplog: pytest.LogCaptureFixture) -> None:
    def broken(*args: Any) -> Any:
        raise RuntimeError("disk full")

    monkeypatch.setattr(metrics.RECORDS, "labels", broken)
    with caplog.at_level(logging.DEBUG, logger="sync.metrics"):
        assert metrics.synced("m1", "items", "created", "webhook", 0.0) is None
    assert "metric synced not recorded" in caplog.text


@dataclass
class _Event:
    connection: str
    origin: str


@dataclass
class _Outcome:
    status: str


def test_intake_outcomes_are_counted_per_event_and_unavailable_when_it_raised() -> None:
    @metrics.counts_intake
    def accept(r: object, event: _Event) -> _Outcome:
        return _Outcome("coalesced")

    @metrics.counts_intake
    def accept_many(r: object, events: list[_Event]) -> list[_Outcome]:
        raise ConnectionError("broker down")

    before = sample("sync_intake_total", connection="m2", origin="reconcile", outcome="unavailable")
    assert accept(None, _Event("m2", "reconcile")) == _Outcome("coalesced")
    with pytest.raises(ConnectionError):
        accept_many(None, [_Event("m2", "reconcile"), _Event("m2", "reconcile")])
    assert sample("sync_intake_total", connection="m2", origin="reconcile", outcome="coalesced") >= 1
    assert sample("sync_intake_total", connection="m2", origin="reconcile", outcome="unavailable") == before + 2


def test_lag_runs_from_received_at_to_now() -> None:
    import time

    metrics.synced("m3", "orders", "updated", "webhook", time.time() - 90)
    assert sample("sync_records_total", connection="m3", flow="orders", action="updated") == 1
    assert sample("sync_lag_seconds_bucket", connection="m3", flow="orders", origin="webhook", le="60.0") == 0
    assert sample("sync_lag_seconds_bucket", connection="m3", flow="orders", origin="webhook", le="120.0") == 1


def test_the_served_registry_is_this_process_or_the_multiprocess_directory(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    metrics.put_off("m4", "items", "transient")
    assert metrics.registry().get_sample_value("sync_retries_total", {"connection": "m4", "flow": "items",
                                                                      "kind": "transient"}) == 1
    monkeypatch.setenv(metrics.MULTIPROC_ENV, str(tmp_path / "mp"))
    metrics.prepare_multiprocess_dir()  # creates it
    (tmp_path / "mp" / "counter_99.db").write_bytes(b"")
    metrics.prepare_multiprocess_dir()  # and empties it: a previous run's values are not this run's
    assert list((tmp_path / "mp").iterdir()) == []
    assert list(metrics.registry().collect()) == []  # nothing recorded there yet
