"""syncctl against a running stack: doctor (incl. a missing custom field), hooks list/remove/install,
resync --wait, timeline, status with a live worker."""

from __future__ import annotations

import pytest

from sync.config import load_settings
from sync.operations import doctor
from tests.e2e.conftest import Stack
from tests.e2e.ops_helpers import dict_of, syncctl
from tests.support.stack import CONNECTION, admin, wait_for

pytestmark = pytest.mark.slow


def label_fields(stack: Stack) -> None:
    """Set up the webCRM custom fields the configuration uses, as an administrator would."""
    conn = load_settings(stack.env).connections[CONNECTION]
    for entity_type, labels in doctor.demo_field_labels(conn).items():
        admin(stack.webcrm_url, "PUT", f"/fields/{entity_type}",
              json={prop: {"Label": label, "DisplayType": "T"} for prop, label in labels.items()})


def test_doctor_passes_on_a_set_up_stack_and_finds_a_missing_custom_field(e2e: Stack,
                                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    label_fields(e2e)
    ok = syncctl(e2e, monkeypatch, "doctor", CONNECTION, "--public-url", e2e.receiver.url)
    assert ok.exit_code == 0, ok.output
    assert "all checks passed" in ok.output and "PROBLEM" not in ok.output
    report = dict_of(syncctl(e2e, monkeypatch, "doctor", CONNECTION, "--json"))
    areas = {c["area"] for c in report["checks"]}
    assert {"webcrm", "uniconta", "webcrm fields", "uniconta fields", "webhooks", "redis"} <= areas

    admin(e2e.webcrm_url, "PUT", "/fields/Organisation", json={"OrganisationExtraCustom1": None})
    admin(e2e.uniconta_url, "PUT", "/userfields/Employee", json=[])
    bad = syncctl(e2e, monkeypatch, "doctor", CONNECTION)
    assert bad.exit_code == 1
    assert "OrganisationExtraCustom1" in bad.output and "not set up in webCRM" in bad.output
    assert "Employee field WebcrmUserId" in bad.output and "fix:" in bad.output
    assert "Traceback" not in bad.output

    elsewhere = syncctl(e2e, monkeypatch, "doctor", CONNECTION, "--public-url", "https://sync.example.com")
    assert elsewhere.exit_code == 1 and "hooks install" in elsewhere.output


def test_hooks_list_remove_and_install(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    listed = dict_of(syncctl(e2e, monkeypatch, "hooks", "list", CONNECTION, "--json"))
    assert {h["system"] for h in listed} == {"webcrm", "uniconta"}
    assert all(h["token_ok"] for h in listed) and all("e2e-token" not in h["url"] for h in listed)
    removed = dict_of(syncctl(e2e, monkeypatch, "hooks", "remove", CONNECTION, "--json"))["removed"]
    assert len(removed) == len(listed)
    assert dict_of(syncctl(e2e, monkeypatch, "hooks", "list", CONNECTION, "--json")) == []
    created = dict_of(syncctl(e2e, monkeypatch, "hooks", "install", CONNECTION, "--public-url", e2e.receiver.url,
                              "--json"))["created"]
    assert len(created) == len(listed)
    again = syncctl(e2e, monkeypatch, "hooks", "install", CONNECTION, "--receiver", e2e.receiver.url)
    assert again.exit_code == 0 and "already registered" in again.output


def test_resync_wait_timeline_and_status(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    admin(e2e.uniconta_url, "PUT", "/faults", json={"webhook_drop_rate": 1.0})
    admin(e2e.uniconta_url, "POST", "/ui/InvItemClient", json={"Item": "RS-1", "Name": "Resynced", "SalesPrice1": 5})
    result = syncctl(e2e, monkeypatch, "resync", CONNECTION, "item", "RS-1", "--wait", "--timeout", "30")
    assert result.exit_code == 0, result.output
    assert "done" in result.output and "created" in result.output
    assert "RS-1" in e2e.catalogue()

    text = syncctl(e2e, monkeypatch, "timeline", CONNECTION, "item", "RS-1")
    assert text.exit_code == 0
    assert "linked to webCRM" in text.output
    lines = [line for line in text.output.splitlines() if line[:4].isdigit()]
    assert "done" in lines[0] and "origin=resync" in text.output and "→ 200" in text.output

    status = dict_of(syncctl(e2e, monkeypatch, "status", CONNECTION, "--json"))
    assert status["workers"], status["workers"]  # the e2e worker's heartbeat
    assert e2e.redis.keys("sync-workers:*")
    assert status["connections"][CONNECTION]["uniconta_budget"]["used"] > 0
    plain = syncctl(e2e, monkeypatch, "status")
    assert plain.exit_code == 0 and "workers:" in plain.output and f"connection {CONNECTION}" in plain.output


def test_dead_letter_requeued_after_fixing_the_cause(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    admin(e2e.webcrm_url, "PUT", "/auth", json={"auth_codes": "someone-else=Other"})
    admin(e2e.webcrm_url, "POST", "/auth/expire")
    admin(e2e.uniconta_url, "POST", "/ui/InvItemClient", json={"Item": "DL-1", "Name": "Doomed", "SalesPrice1": 1})
    letters = wait_for(lambda: dict_of(syncctl(e2e, monkeypatch, "dlq", "list", "--connection", CONNECTION,
                                               "--json")), timeout=20, what="a dead letter")
    assert letters[0]["record_id"] == "DL-1" and letters[0]["kind"] == "permanent"
    shown = syncctl(e2e, monkeypatch, "dlq", "show", letters[0]["id"])
    assert shown.exit_code == 0 and "AuthError" in shown.output and "sandbox-token" not in shown.output

    admin(e2e.webcrm_url, "PUT", "/auth", json={"auth_codes": "sandbox-token=Integration"})
    requeued = dict_of(syncctl(e2e, monkeypatch, "dlq", "requeue", "--kind", "permanent", "--json"))
    assert requeued["requeued"] == [letters[0]["id"]]
    wait_for(lambda: "DL-1" in e2e.catalogue(), timeout=20, what="the requeued item")
    assert dict_of(syncctl(e2e, monkeypatch, "dlq", "list", "--json")) == []


def test_ambiguous_email_is_listed_and_resolved(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("sync.flows.users")
    for number in ("DUP1", "DUP2"):
        admin(e2e.uniconta_url, "POST", "/ui/EmployeeClient", json={"Number": number, "Name": f"Dup {number}",
                                                                    "Email": "same@firma.dk"})
    admin(e2e.webcrm_url, "POST", "/ui/Users", json={"UserName": "Same Person", "UserEmail": "same@firma.dk"})
    entries = wait_for(lambda: dict_of(syncctl(e2e, monkeypatch, "conflicts", "list", CONNECTION, "--json")),
                       timeout=20, what="an ambiguity for review")
    assert entries[0]["email"] == "same@firma.dk" and sorted(entries[0]["uniconta"]) == ["DUP1", "DUP2"]
    text = syncctl(e2e, monkeypatch, "conflicts", "list")
    assert "same@firma.dk" in text.output

    admin(e2e.uniconta_url, "PUT", "/ui/EmployeeClient", json={"Number": "DUP2", "Email": "other@firma.dk"})
    resolved = dict_of(syncctl(e2e, monkeypatch, "conflicts", "resolve", CONNECTION, entries[0]["id"], "--json"))
    assert resolved["resynced"]

    def linked() -> bool:
        state = admin(e2e.uniconta_url, "GET", "/state")["tables"].get("Employee") or {}
        return any((r.get("_user") or {}).get("WebcrmUserId") for r in state.values() if r["Number"] == "DUP1")

    wait_for(linked, timeout=20, what="the user linked to the remaining employee")
    assert dict_of(syncctl(e2e, monkeypatch, "conflicts", "list", CONNECTION, "--json")) == []
