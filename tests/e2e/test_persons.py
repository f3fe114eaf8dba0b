"""webCRM persons ↔ Uniconta debtor contacts, end to end: sandboxes, webhooks, the receiver, a real worker."""

from __future__ import annotations

import time
from typing import Any

import pytest

from sync.config import load_settings
from sync.state import journal, review, waiting
from sync.state.links import LinkStore
from tasks.celery_app import make_celery
from tasks.dispatch import enqueuer
from tests.e2e.conftest import Stack, settle
from tests.e2e.pairs import RecordPair, results
from tests.support.stack import CONNECTION, admin, wait_for

pytestmark = pytest.mark.slow


# --------------------------------------------------------------------------- helpers


PERSONS = RecordPair("Persons", "PersonId", "Contact", "RowId", link="ReferenceId", back_link="PersonCustom1",
                     key_type=int, ignore_hooks=True)
persons, contacts = PERSONS.webcrm_rows, PERSONS.uniconta_rows
contact_of, person_of = PERSONS.uniconta_of, PERSONS.webcrm_of
ui_person, ui_contact, writes = PERSONS.ui_webcrm, PERSONS.ui_uniconta, PERSONS.writes


def without_organisation_flow(stack: Stack) -> None:
    """These tests link organisations by hand (as the organisation flow would): take its hooks away."""
    with stack.webcrm() as webcrm:
        for hook in webcrm.hooks("Organisations"):
            webcrm.delete_hook("Organisations", int(hook["Id"]))
    with stack.uniconta() as uniconta:
        for row in uniconta.odata("TableChangeEventClient"):
            if int(row.get("TableId") or 0) == 50:
                uniconta.delete("TableChangeEventClient", {"RowId": row["RowId"]})


def organisation(stack: Stack, name: str, account: str) -> int:
    """An organisation and a debtor, not linked yet."""
    org = admin(stack.webcrm_url, "POST", "/ui/Organisations", json={"OrganisationName": name})["OrganisationId"]
    admin(stack.uniconta_url, "POST", "/ui/Debtor", json={"Account": account, "Name": name})
    return int(org)


def link(stack: Stack, org: int, account: str) -> None:
    """What the organisation flow does when it links: both cross-references, the cache, the release."""
    admin(stack.uniconta_url, "PUT", "/ui/Debtor", json={"Account": account, "WebcrmId": str(org)})
    admin(stack.webcrm_url, "PUT", f"/ui/Organisations/{org}", json={"OrganisationExtraCustom1": account})
    LinkStore(stack.redis, CONNECTION).bind("organisation", org, account)
    enqueue = enqueuer(make_celery(load_settings(stack.env)))
    waiting.release(stack.redis, CONNECTION, f"organisation:{org}", enqueue)
    waiting.release(stack.redis, CONNECTION, f"debtor:{account}", enqueue)


def linked_organisation(stack: Stack, name: str = "Kunde A/S", account: str = "10001") -> int:
    without_organisation_flow(stack)
    org = organisation(stack, name, account)
    link(stack, org, account)
    return org


def new_linked_person(stack: Stack, org: int, **fields: Any) -> tuple[int, int]:
    fields.setdefault("PersonLastName", "Person")
    pid, contact = PERSONS.new_linked(stack, PersonOrganisationId=org, **fields)
    return pid, int(contact["RowId"])


# --------------------------------------------------------------------------- tests


def test_person_becomes_a_contact_and_changes_flow_both_ways(e2e: Stack) -> None:
    org = linked_organisation(e2e)
    pid, rowid = new_linked_person(e2e, org, PersonFirstName="Mette", PersonLastName="Holm",
                                   PersonEmail="mette@kunde.dk", PersonMobilePhone="+45 40 50 60 70",
                                   PersonTitle="Indkøber")
    contact = contacts(e2e)[rowid]
    assert (contact["DCType"], contact["DCAccount"]) == (1, "10001")
    assert (contact["Name"], contact["Email"], contact["Mobil"], contact["Title"]) == (
        "Mette Holm", "mette@kunde.dk", "+45 40 50 60 70", "Indkøber")

    ui_person(e2e, pid, PersonTitle="Indkøbschef")
    wait_for(lambda: contacts(e2e)[rowid]["Title"] == "Indkøbschef", what="title in Uniconta")

    ui_contact(e2e, "PUT", RowId=rowid, Name="Mette Holm Jensen", Mobil="+45 11 11 11 11")
    wait_for(lambda: persons(e2e)[pid]["PersonLastName"] == "Jensen", what="name in webCRM")
    person = persons(e2e)[pid]
    assert (person["PersonFirstName"], person["PersonMobilePhone"]) == ("Mette Holm", "+45 11 11 11 11")

    # After the link, a changed e-mail is an update, not a new match.
    ui_contact(e2e, "PUT", RowId=rowid, Email="mette.jensen@kunde.dk")
    wait_for(lambda: persons(e2e)[pid]["PersonEmail"] == "mette.jensen@kunde.dk", what="e-mail in webCRM")
    ui_person(e2e, pid, PersonEmail="mj@kunde.dk")
    wait_for(lambda: contacts(e2e)[rowid]["Email"] == "mj@kunde.dk", what="e-mail in Uniconta")
    settle(e2e)
    assert len(contacts(e2e)) == 1 and len(persons(e2e)) == 1


def test_contact_added_on_a_linked_debtor_becomes_a_person(e2e: Stack) -> None:
    org = linked_organisation(e2e)
    rowid = ui_contact(e2e, "POST", DCAccount="10001", Name="Jan van der Berg", Email="jan@kunde.dk",
                       Mobil="+45 22 33 44 55", Title="Direktør")["RowId"]
    person = wait_for(lambda: person_of(e2e, rowid), what="person for the new contact")
    assert person["PersonOrganisationId"] == org
    assert (person["PersonFirstName"], person["PersonLastName"]) == ("Jan", "van der Berg")
    assert (person["PersonEmail"], person["PersonMobilePhone"], person["PersonTitle"]) == (
        "jan@kunde.dk", "+45 22 33 44 55", "Direktør")
    wait_for(lambda: contacts(e2e)[rowid].get("ReferenceId") == str(person["PersonId"]), what="link on the contact")

    single = ui_contact(e2e, "POST", DCAccount="10001", Name="Madonna")["RowId"]
    person = wait_for(lambda: person_of(e2e, single), what="person for a one-word name")
    assert (person["PersonFirstName"], person["PersonLastName"]) == ("", "Madonna")
    settle(e2e)
    assert len(persons(e2e)) == 2 and len(contacts(e2e)) == 2


def test_person_on_unlinked_organisation_waits_then_links_by_email_or_creates(e2e: Stack) -> None:
    without_organisation_flow(e2e)
    org = organisation(e2e, "Venter ApS", "20002")
    existing = ui_contact(e2e, "POST", DCAccount="20002", Name="Sofie Dahl", Email="  Sofie.Dahl@Kunde.DK ")["RowId"]
    sofie = ui_person(e2e, PersonOrganisationId=org, PersonFirstName="Sofie", PersonLastName="Dahl",
                      PersonEmail="sofie.dahl@kunde.dk")["PersonId"]
    ole = ui_person(e2e, PersonOrganisationId=org, PersonFirstName="Ole", PersonLastName="Bak",
                    PersonEmail="ole@kunde.dk")["PersonId"]
    settle(e2e)
    assert len(contacts(e2e)) == 1 and all(not p["PersonCustom1"] for p in persons(e2e).values())
    assert results(e2e, "person", sofie)[0]["action"] == "waiting"
    assert results(e2e, "contact", f"#{existing}")[0]["action"] == "waiting"  # its debtor is not linked

    link(e2e, org, "20002")
    wait_for(lambda: contact_of(e2e, sofie) and contact_of(e2e, ole), what="both persons synced after the link")
    settle(e2e)
    assert contact_of(e2e, sofie)["RowId"] == existing  # matched by e-mail (case and spaces ignored)
    assert persons(e2e)[sofie]["PersonCustom1"] == str(existing)
    assert len(contacts(e2e)) == 2  # Ole got a new contact
    assert "linked" in [r["action"] for r in results(e2e, "person", sofie)]


def test_person_waits_until_the_organisation_flow_links_its_organisation(e2e: Stack) -> None:
    """With the real organisation flow: the organisation becomes a customer, gets a debtor, and
    releases the person parked on it."""
    org = admin(e2e.webcrm_url, "POST", "/ui/Organisations", json={
        "OrganisationName": "Bliver Kunde A/S", "OrganisationAddress": "Havnegade 1", "OrganisationPostCode": "8000",
        "OrganisationCity": "Aarhus", "OrganisationCountry": "Danmark"})["OrganisationId"]
    pid = ui_person(e2e, PersonOrganisationId=org, PersonFirstName="Vera", PersonLastName="Vent",
                    PersonEmail="vera@kunde.dk")["PersonId"]
    settle(e2e)
    assert results(e2e, "person", pid)[0]["action"] == "waiting" and not contacts(e2e)

    admin(e2e.webcrm_url, "PUT", f"/ui/Organisations/{org}", json={"OrganisationType": "Kunde"})
    contact = wait_for(lambda: contact_of(e2e, pid), timeout=20, what="contact once the organisation is a debtor")
    debtors = admin(e2e.uniconta_url, "GET", "/state")["tables"]["Debtor"].values()
    (debtor,) = [d for d in debtors if (d.get("_user") or {}).get("WebcrmId") == str(org)]
    assert contact["DCAccount"] == debtor["Account"] and contact["Name"] == "Vera Vent"


def test_duplicate_emails_link_nothing_and_are_kept_for_review(e2e: Stack) -> None:
    without_organisation_flow(e2e)
    org = organisation(e2e, "Dublet A/S", "30003")
    ui_contact(e2e, "POST", DCAccount="30003", Name="Dup One", Email="dup@kunde.dk")
    ui_contact(e2e, "POST", DCAccount="30003", Name="Dup Two", Email="DUP@kunde.dk")
    ui_contact(e2e, "POST", DCAccount="30003", Name="Twin", Email="twin@kunde.dk")
    pid = ui_person(e2e, PersonOrganisationId=org, PersonLastName="Dup", PersonEmail="dup@kunde.dk")["PersonId"]
    a = ui_person(e2e, PersonOrganisationId=org, PersonLastName="Twin A", PersonEmail="twin@kunde.dk")["PersonId"]
    b = ui_person(e2e, PersonOrganisationId=org, PersonLastName="Twin B", PersonEmail="twin@kunde.dk")["PersonId"]
    settle(e2e)
    link(e2e, org, "30003")
    settle(e2e)
    assert len(contacts(e2e)) == 3  # nothing created
    assert all(not c.get("ReferenceId") for c in contacts(e2e).values())  # nothing linked
    assert all(not persons(e2e)[p]["PersonCustom1"] for p in (pid, a, b))
    entries = {e["email"]: e for e in review.list_reviews(e2e.redis, CONNECTION) if e["entity"] == "person"}
    assert set(entries) == {"dup@kunde.dk", "twin@kunde.dk"}
    assert len(entries["dup@kunde.dk"]["uniconta"]) == 2 and entries["dup@kunde.dk"]["webcrm"] == [str(pid)]
    assert set(entries["twin@kunde.dk"]["webcrm"]) == {str(a), str(b)}


def test_resigned_person_deletes_the_contact_and_a_deleted_contact_resigns_the_person(e2e: Stack) -> None:
    org = linked_organisation(e2e)
    pid, rowid = new_linked_person(e2e, org, PersonFirstName="Rie", PersonLastName="Lund", PersonEmail="rie@kunde.dk")
    ui_person(e2e, pid, PersonStatus="Resigned")
    wait_for(lambda: rowid not in contacts(e2e), what="contact deleted")
    settle(e2e)
    assert persons(e2e)[pid]["PersonStatus"] == "Resigned"  # persons are never deleted

    ui_person(e2e, pid, PersonStatus="Active")  # back again: a new contact
    wait_for(lambda: contact_of(e2e, pid), what="contact for the reactivated person")
    settle(e2e)
    new_rowid = int(contact_of(e2e, pid)["RowId"])
    assert new_rowid != rowid and persons(e2e)[pid]["PersonCustom1"] == str(new_rowid)

    ui_contact(e2e, "DELETE", RowId=new_rowid)
    wait_for(lambda: persons(e2e)[pid]["PersonStatus"] == "Resigned", what="person resigned")
    settle(e2e)
    assert pid in persons(e2e) and persons(e2e)[pid]["PersonCustom1"] == ""
    assert not contacts(e2e)


def test_simultaneous_edits_of_different_fields_keep_both(e2e: Stack) -> None:
    org = linked_organisation(e2e)
    pid, rowid = new_linked_person(e2e, org, PersonFirstName="Kim", PersonLastName="Vad", PersonEmail="kim@kunde.dk")
    before = writes(e2e)
    for url in (e2e.webcrm_url, e2e.uniconta_url):  # both edits land before either webhook arrives
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 700})
    ui_person(e2e, pid, PersonTitle="Sælger")
    ui_contact(e2e, "PUT", RowId=rowid, Mobil="+45 70 70 70 70")
    wait_for(lambda: persons(e2e)[pid]["PersonMobilePhone"] == "+45 70 70 70 70"
             and contacts(e2e)[rowid]["Title"] == "Sælger", timeout=20, what="both edits on both sides")
    for url in (e2e.webcrm_url, e2e.uniconta_url):
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 0})
    settle(e2e)
    assert writes(e2e) == {"webcrm": before["webcrm"] + 1, "uniconta": before["uniconta"] + 1}


def test_same_field_changed_on_both_sides_newest_wins_and_is_journaled(e2e: Stack) -> None:
    org = linked_organisation(e2e)
    pid, rowid = new_linked_person(e2e, org, PersonFirstName="Ida", PersonLastName="Ravn", PersonTitle="Chef",
                                   PersonEmail="ida@kunde.dk")
    for url in (e2e.webcrm_url, e2e.uniconta_url):
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 1500})
    ui_contact(e2e, "PUT", RowId=rowid, Title="Uniconta-titel")
    time.sleep(1.1)  # webCRM stamps whole seconds: make webCRM's edit the newer one
    ui_person(e2e, pid, PersonTitle="webCRM-titel")
    wait_for(lambda: contacts(e2e)[rowid]["Title"] == "webCRM-titel", timeout=20, what="webCRM's title in Uniconta")
    for url in (e2e.webcrm_url, e2e.uniconta_url):
        admin(url, "PUT", "/faults", json={"webhook_delay_ms": 0})
    settle(e2e)
    assert persons(e2e)[pid]["PersonTitle"] == "webCRM-titel"
    conflicts = [e for entity, record in (("person", pid), ("contact", f"#{rowid}"))
                 for e in journal.entries(e2e.redis, CONNECTION, entity, str(record)) if e["kind"] == "conflict"]
    assert len(conflicts) == 1
    assert (conflicts[0]["field"], conflicts[0]["winner"]) == ("title", "webcrm")
    assert (conflicts[0]["webcrm"], conflicts[0]["uniconta"], conflicts[0]["base"]) == (
        "webCRM-titel", "Uniconta-titel", "Chef")


def test_no_loops_write_count_equals_real_changes(e2e: Stack) -> None:
    org = linked_organisation(e2e)
    # Four pairs in rotation: each edit is a real change of one field on one side.
    pairs = [new_linked_person(e2e, org, PersonFirstName="Loop", PersonLastName=f"Nr{n}",
                               PersonEmail=f"loop{n}@kunde.dk") for n in range(4)]
    before = writes(e2e)
    edits = 100
    for i in range(edits):
        pid, rowid = pairs[(i // 2) % len(pairs)]
        if i % 2 == 0:
            ui_person(e2e, pid, PersonMobilePhone=f"+45 10 00 {i:04d}")
        else:
            ui_contact(e2e, "PUT", RowId=rowid, Mobil=f"+45 20 00 {i:04d}")
        settle(e2e)
    after = writes(e2e)
    # Each edit is one real change on one side: exactly one write to the other side, no echoes.
    assert after["uniconta"] - before["uniconta"] == edits // 2
    assert after["webcrm"] - before["webcrm"] == edits // 2
    for pid, rowid in pairs:
        assert persons(e2e)[pid]["PersonMobilePhone"] == contacts(e2e)[rowid]["Mobil"]
