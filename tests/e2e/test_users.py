"""webCRM users ↔ Uniconta employees, end to end: sandboxes, webhooks, the receiver and a real worker."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import pytest

from sync.config import load_settings
from sync.flows.users import sweep_users
from sync.runtime import Runtime
from sync.state import intake, journal, review
from tasks.celery_app import make_celery
from tasks.dispatch import enqueuer
from tests.e2e.conftest import Stack, settle
from tests.e2e.pairs import RecordPair, results
from tests.support.stack import CONNECTION, admin, wait_for

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- helpers


USERS = RecordPair("Users", "UserId", "Employee", "Number", link="WebcrmUserId", back_link="UserCustom1")
users, employees, employee_of = USERS.webcrm_rows, USERS.uniconta_rows, USERS.uniconta_of
ui_user, ui_employee, writes = USERS.ui_webcrm, USERS.ui_uniconta, USERS.writes
new_linked_user = USERS.new_linked


def enqueue_reconcile(stack: Stack, since: datetime) -> int:
    """What reconciliation's extra sweep for users does: queue the records `sweep_users` finds."""
    settings = load_settings(stack.env)
    ctx = Runtime(settings).context(CONNECTION)
    assert ctx is not None
    enqueue = enqueuer(make_celery(settings))
    events = list(sweep_users(ctx, since))
    for event in events:
        intake.accept(stack.redis, event, enqueue)
    return len(events)


# --------------------------------------------------------------------------- tests


def test_new_user_becomes_sales_person_and_changes_flow_both_ways(e2e: Stack) -> None:
    uid, employee = new_linked_user(e2e, UserName="Bo Hansen", UserInitials="bh", UserEmail="bo@firma.dk",
                                    UserMobilePhone="+45 20 30 40 50")
    assert employee["Number"] == "BH"
    assert (employee["Name"], employee["Email"], employee["Mobil"]) == ("Bo Hansen", "bo@firma.dk", "+45 20 30 40 50")
    assert employee["Title"] == "Sælger"

    ui_user(e2e, uid, UserName="Bo Holm Hansen")
    wait_for(lambda: employees(e2e)["BH"]["Name"] == "Bo Holm Hansen", what="name in Uniconta")

    ui_employee(e2e, "PUT", Number="BH", Mobil="+45 99 88 77 66")
    wait_for(lambda: users(e2e)[uid]["UserMobilePhone"] == "+45 99 88 77 66", what="mobile in webCRM")

    # After the link, a changed e-mail is an update on the other side, not a new match.
    ui_employee(e2e, "PUT", Number="BH", Email="bo.hansen@nyt-firma.dk")
    wait_for(lambda: users(e2e)[uid]["UserEmail"] == "bo.hansen@nyt-firma.dk", what="e-mail in webCRM")
    ui_user(e2e, uid, UserEmail="bo@tredje.dk")
    wait_for(lambda: employees(e2e)["BH"]["Email"] == "bo@tredje.dk", what="e-mail in Uniconta")
    settle(e2e)
    assert len(employees(e2e)) == 1 and len(users(e2e)) == 2  # Anna Jensen (user 1) and Bo


def test_first_link_by_email_ignores_case_and_spaces_and_uniconta_never_creates_users(e2e: Stack) -> None:
    ui_employee(e2e, "POST", Number="KAL", Name="Karen Lund", Email="  Karen.Lund@Firma.DK ")
    ui_employee(e2e, "POST", Number="NOU", Name="No User", Email="nobody@firma.dk")
    settle(e2e)
    assert len(users(e2e)) == 1  # no webCRM users made from employees
    unmatched = [e for e in journal.entries(e2e.redis, CONNECTION, "employee", "NOU") if e["kind"] == "unmatched"]
    assert unmatched

    uid = ui_user(e2e, UserName="Karen Lund", UserInitials="KL", UserEmail="karen.lund@firma.dk ")["UserId"]
    wait_for(lambda: employee_of(e2e, uid), what="link by e-mail")
    settle(e2e)
    assert employee_of(e2e, uid)["Number"] == "KAL"
    assert users(e2e)[uid]["UserCustom1"] == "KAL"
    assert set(employees(e2e)) == {"KAL", "NOU"}  # linked, not created
    assert results(e2e, "user", uid)[-1]["action"] == "linked"


def test_employee_numbers_from_initials_are_unique(e2e: Stack) -> None:
    ui_employee(e2e, "POST", Number="AJ", Name="Somebody Else", Email="else@firma.dk")
    first = ui_user(e2e, UserName="Anders Juhl", UserInitials="AJ", UserEmail="anders@firma.dk")["UserId"]
    second = ui_user(e2e, UserName="Aase Jul", UserInitials="AJ", UserEmail="aase@firma.dk")["UserId"]
    third = ui_user(e2e, UserName="Ib Olsen", UserEmail="ib@firma.dk")["UserId"]  # no initials: from the name
    wait_for(lambda: all(employee_of(e2e, u) for u in (first, second, third)), what="three employees")
    settle(e2e)
    numbers = {employee_of(e2e, u)["Number"] for u in (first, second)}
    assert numbers == {"AJ2", "AJ3"}
    assert employee_of(e2e, third)["Number"] == "IO"
    assert employees(e2e)["AJ"].get("WebcrmUserId") in (None, "")


def test_duplicate_emails_link_nothing_and_are_kept_for_review(e2e: Stack) -> None:
    ui_employee(e2e, "POST", Number="D1", Name="Dup One", Email="dup@firma.dk")
    ui_employee(e2e, "POST", Number="D2", Name="Dup Two", Email="DUP@firma.dk")
    uid = ui_user(e2e, UserName="Dup User", UserInitials="DU", UserEmail="dup@firma.dk")["UserId"]
    settle(e2e)
    assert employee_of(e2e, uid) is None and "DU" not in employees(e2e)
    assert users(e2e)[uid]["UserCustom1"] == ""
    entries = [e for e in review.list_reviews(e2e.redis, CONNECTION) if e["entity"] == "user"]
    assert entries and entries[0]["email"] == "dup@firma.dk"
    assert set(entries[0]["uniconta"]) == {"D1", "D2"} and entries[0]["webcrm"] == [str(uid)]
    assert any(e["kind"] == "ambiguous-email" for e in journal.entries(e2e.redis, CONNECTION, "user", str(uid)))

    # Two users with one address: the single employee is not guessed at either.
    ui_employee(e2e, "POST", Number="T1", Name="Twin", Email="twin@firma.dk")
    settle(e2e)
    admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_delay_ms": 500})  # both exist before either syncs
    a = ui_user(e2e, UserName="Twin A", UserEmail="twin@firma.dk")["UserId"]
    b = ui_user(e2e, UserName="Twin B", UserEmail="twin@firma.dk")["UserId"]
    admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_delay_ms": 0})
    settle(e2e)
    assert employee_of(e2e, a) is None and employee_of(e2e, b) is None
    assert employees(e2e)["T1"].get("WebcrmUserId") in (None, "")
    assert any(e["email"] == "twin@firma.dk" for e in review.list_reviews(e2e.redis, CONNECTION))


def test_deactivated_user_terminates_the_employee_and_reactivation_undoes_it(e2e: Stack) -> None:
    uid, _ = new_linked_user(e2e, UserName="Eva Moe", UserInitials="EM", UserEmail="eva@firma.dk")
    since = datetime.now(UTC) - timedelta(minutes=1)
    admin(e2e.webcrm_url, "PUT", f"/users/{uid}/active", json={"active": False})  # no hook fires
    assert enqueue_reconcile(e2e, since) >= 1
    wait_for(lambda: employees(e2e)["EM"].get("Terminated") and employees(e2e)["EM"]["Blocked"],
             what="employee terminated")
    settle(e2e)
    assert "EM" in employees(e2e) and uid in users(e2e)  # nothing deleted

    admin(e2e.webcrm_url, "PUT", f"/users/{uid}/active", json={"active": True})
    enqueue_reconcile(e2e, since)
    wait_for(lambda: not employees(e2e)["EM"].get("Terminated") and not employees(e2e)["EM"]["Blocked"],
             what="employee active again")


def test_simultaneous_edits_of_different_fields_keep_both(e2e: Stack) -> None:
    uid, _ = new_linked_user(e2e, UserName="Per Berg", UserInitials="PB", UserEmail="per@firma.dk")
    before = writes(e2e)
    for url in (e2e.webcrm_url, e2e.uniconta_url):  # both edits land before either webhook arrives
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 700})
    ui_user(e2e, uid, UserName="Per Bjerg")
    ui_employee(e2e, "PUT", Number="PB", Mobil="+45 31 31 31 31")
    wait_for(lambda: users(e2e)[uid]["UserMobilePhone"] == "+45 31 31 31 31"
             and employees(e2e)["PB"]["Name"] == "Per Bjerg", timeout=20, what="both edits on both sides")
    for url in (e2e.webcrm_url, e2e.uniconta_url):
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 0})
    settle(e2e)
    after = writes(e2e)
    assert after == {"webcrm": before["webcrm"] + 1, "uniconta": before["uniconta"] + 1}


def test_same_field_changed_on_both_sides_newest_wins_and_is_journaled(e2e: Stack) -> None:
    uid, _ = new_linked_user(e2e, UserName="Lis Krog", UserInitials="LK", UserEmail="lis@firma.dk")
    for url in (e2e.webcrm_url, e2e.uniconta_url):
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 1500})
    ui_user(e2e, uid, UserName="Lis Webcrm")
    time.sleep(1.1)  # webCRM stamps whole seconds: make Uniconta's edit the newer one
    ui_employee(e2e, "PUT", Number="LK", Name="Lis Uniconta")
    wait_for(lambda: users(e2e)[uid]["UserName"] == "Lis Uniconta", timeout=20, what="Uniconta's name in webCRM")
    for url in (e2e.webcrm_url, e2e.uniconta_url):
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 0})
    settle(e2e)
    assert employees(e2e)["LK"]["Name"] == "Lis Uniconta"
    conflicts = [e for kind in (("user", uid), ("employee", "LK"))
                 for e in journal.entries(e2e.redis, CONNECTION, kind[0], str(kind[1])) if e["kind"] == "conflict"]
    assert len(conflicts) == 1
    assert conflicts[0]["field"] == "name" and conflicts[0]["winner"] == "uniconta"
    assert (conflicts[0]["webcrm"], conflicts[0]["uniconta"], conflicts[0]["base"]) == (
        "Lis Webcrm", "Lis Uniconta", "Lis Krog")


def test_no_loops_write_count_equals_real_changes(e2e: Stack) -> None:
    # Four pairs in rotation: each edit is a real change of one field on one side.
    pairs = [new_linked_user(e2e, UserName=f"Loop Tester {n}", UserInitials=f"L{n}", UserEmail=f"loop{n}@firma.dk")
             for n in range(4)]
    before = writes(e2e)
    edits = 100
    for i in range(edits):
        uid, employee = pairs[(i // 2) % len(pairs)]
        if i % 2 == 0:
            ui_user(e2e, uid, UserMobilePhone=f"+45 10 00 {i:04d}")
        else:
            ui_employee(e2e, "PUT", Number=employee["Number"], Mobil=f"+45 20 00 {i:04d}")
        settle(e2e)
    after = writes(e2e)
    # Each edit is one real change on one side: exactly one write to the other side, no echoes.
    assert after["uniconta"] - before["uniconta"] == edits // 2
    assert after["webcrm"] - before["webcrm"] == edits // 2
    for uid, employee in pairs:
        assert users(e2e)[uid]["UserMobilePhone"] == employees(e2e)[employee["Number"]]["Mobil"]
