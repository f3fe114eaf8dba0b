"""Persons ↔ contacts handlers on the sandboxes over real HTTP, with the real clients and a real Redis.

Interleavings the e2e tests cannot force: events of one pair in either order, one event while the
other holds its lock, echoes, Redis state lost, the policies, an answer lost on the way. A handler
runs as the job runs it (`tests.support.context.run`: the record's lock held), without Celery.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests
from requests.adapters import HTTPAdapter

from sync.clients.errors import Transient
from sync.clients.webcrm import parse_time
from sync.events import Event
from sync.runtime import ConnectionContext
from sync.state import keys, review, waiting
from sync.state.locks import LockBusy, record_lock
from tests.support.context import MakeCtx, Sandboxes, run, wait_until
from tests.support.stack import CONNECTION

CONTACTS = "ContactClientUser"


def person_event(pid: int, origin: str = "webhook") -> Event:
    return Event(CONNECTION, "webcrm", "person", str(pid), origin=origin)


def contact_event(row: int, origin: str = "webhook") -> Event:
    return Event(CONNECTION, "uniconta", "contact", f"#{row}", origin=origin)


def action(ctx: ConnectionContext, event: Event) -> str:
    return run(ctx, event).action


def person(sb: Sandboxes, pid: int) -> dict[str, Any]:
    return sb.webcrm.record("Persons", pid)


def contacts(sb: Sandboxes) -> dict[int, dict[str, Any]]:
    return sb.uniconta.rows("Contact")


def linked_org(ctx: ConnectionContext, sb: Sandboxes, account: str = "10001") -> int:
    """A webCRM organisation the organisation flow has linked to its Uniconta debtor."""
    org = int(sb.webcrm.ui("Organisations", OrganisationName="Kunde A/S")["OrganisationId"])
    sb.uniconta.ui("DebtorClientUser", Account=account, Name="Kunde A/S", WebcrmId=str(org))
    ctx.links.bind("organisation", org, account)
    return org


def new_person(sb: Sandboxes, org: int, **fields: Any) -> int:
    """A person a webCRM user adds to an organisation."""
    return int(sb.webcrm.ui("Persons", PersonOrganisationId=org, **fields)["PersonId"])


def new_contact(sb: Sandboxes, account: str, **fields: Any) -> int:
    """A contact a Uniconta user adds to a debtor."""
    return int(sb.uniconta.ui(CONTACTS, DCType=1, DCAccount=account, **fields)["RowId"])


def pair(ctx: ConnectionContext, sb: Sandboxes) -> tuple[int, int]:
    """A linked person/contact pair, synced and echoed."""
    org = linked_org(ctx, sb)
    pid = new_person(sb, org, PersonFirstName="Mette", PersonLastName="Holm", PersonEmail="mette@k.dk",
                     PersonTitle="Chef")
    assert action(ctx, person_event(pid)) == "created"
    (row,) = contacts(sb)
    assert action(ctx, contact_event(row)) == "unchanged"  # echo of the insert
    assert action(ctx, person_event(pid)) == "unchanged"  # echo of the link written to webCRM
    return pid, row


@pytest.mark.parametrize("insert_answer", ["record", "empty"])
def test_person_creates_a_contact_and_the_echoes_write_nothing(ctx: ConnectionContext, sandboxes: Sandboxes,
                                                               insert_answer: str) -> None:
    # Uniconta answers an insert with the record or with an empty 204 (sandbox quirk write_response):
    # without the record, the contact is found by its reference.
    sandboxes.uniconta.quirks(write_response=insert_answer)
    pid, row = pair(ctx, sandboxes)
    contact = contacts(sandboxes)[row]
    assert (contact["DCType"], contact["DCAccount"], contact["ReferenceId"], contact["Name"]) == (
        1, "10001", str(pid), "Mette Holm")
    assert (contact["Email"], contact["Title"]) == ("mette@k.dk", "Chef")
    assert person(sandboxes, pid)["PersonCustom1"] == str(row)
    assert sandboxes.writes() == (1, 1)  # the contact insert and the link on the person


@pytest.mark.parametrize("order", ["person-first", "contact-first"])
def test_edits_on_both_sides_give_one_write_per_side_in_either_order(ctx: ConnectionContext, sandboxes: Sandboxes,
                                                                     order: str) -> None:
    pid, row = pair(ctx, sandboxes)
    before = sandboxes.writes()
    sandboxes.webcrm.ui("Persons", pid, PersonTitle="Direktør")
    sandboxes.uniconta.ui_edit(CONTACTS, RowId=row, Mobil="+45 22")
    events = [person_event(pid), contact_event(row)]
    if order == "contact-first":
        events.reverse()
    assert [action(ctx, e) for e in events] == ["updated", "unchanged"]
    assert [action(ctx, e) for e in events] == ["unchanged", "unchanged"]  # the echoes of the two writes
    assert sandboxes.writes() == (before[0] + 1, before[1] + 1)
    assert person(sandboxes, pid)["PersonMobilePhone"] == "+45 22"
    assert contacts(sandboxes)[row]["Title"] == "Direktør"


def test_an_event_waits_while_the_other_side_of_its_pair_is_being_synced(ctx: ConnectionContext,
                                                                         sandboxes: Sandboxes) -> None:
    pid, row = pair(ctx, sandboxes)
    sandboxes.uniconta.ui_edit(CONTACTS, RowId=row, Mobil="+45 33")
    before = sandboxes.writes()
    # A person job runs in another worker.
    with record_lock(ctx.redis, CONNECTION, "person", str(pid)), pytest.raises(LockBusy):
        run(ctx, contact_event(row))
    assert sandboxes.writes() == before
    assert action(ctx, contact_event(row)) == "updated"  # the job's retry
    assert person(sandboxes, pid)["PersonMobilePhone"] == "+45 33"


def test_same_field_conflict_newest_wins_or_the_configured_side(make_ctx: MakeCtx, sandboxes: Sandboxes) -> None:
    for policy, winner in (("newest", "u-title"), ("webcrm", "w-title"), ("uniconta", "u-title")):
        sandboxes.reset()
        ctx = make_ctx(conflict_policy=policy)
        pid, row = pair(ctx, sandboxes)
        sandboxes.webcrm.ui("Persons", pid, PersonTitle="w-title")
        edited = sandboxes.uniconta.ui_edit(CONTACTS, RowId=row, Title="u-title")
        # The Uniconta edit came two seconds after the webCRM one (webCRM stamps whole seconds).
        at = parse_time(edited["UpdatedAt"])
        assert at is not None
        earlier = (at - timedelta(seconds=2)).replace(microsecond=0).isoformat()
        sandboxes.webcrm.stamp("Persons", {pid: {"PersonUpdatedAt": earlier}})
        assert action(ctx, person_event(pid)) == "updated"
        assert person(sandboxes, pid)["PersonTitle"] == winner, policy
        assert contacts(sandboxes)[row]["Title"] == winner, policy
        assert action(ctx, contact_event(row)) == "unchanged"


def test_lost_redis_state_relinks_without_writes_or_duplicates(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    pid, row = pair(ctx, sandboxes)
    before = sandboxes.writes()
    for key in ctx.redis.scan_iter("sync:*"):
        ctx.redis.delete(key)
    org = person(sandboxes, pid)["PersonOrganisationId"]
    ctx.links.bind("organisation", org, "10001")  # the organisation flow's link (not ours)
    assert action(ctx, person_event(pid)) == "unchanged"
    assert action(ctx, contact_event(row)) == "unchanged"
    assert sandboxes.writes() == before
    assert list(contacts(sandboxes)) == [row]


class LosingTheAnswer(HTTPAdapter):
    """Sends every request for real; just before `POST /Persons` it makes the webCRM sandbox hang
    (fault injection) and gives that one request a 0.3 s read timeout (instead of the connection's
    20 s), so the client gives up while the sandbox creates the person once the hang ends: the
    answer is lost on the way, the person exists."""

    def __init__(self, sb: Sandboxes) -> None:
        super().__init__()
        self.sb = sb

    def send(self, request: requests.PreparedRequest, *args: Any, **kwargs: Any) -> requests.Response:
        if request.method == "POST" and urlsplit(str(request.url)).path == "/Persons":
            self.sb.webcrm.faults(hang_rate=1, hang_seconds=30)
            kwargs["timeout"] = (3.05, 0.3)
        return super().send(request, *args, **kwargs)


def test_contact_on_a_linked_debtor_becomes_a_person_and_a_lost_answer_is_found_again(
        ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    org = linked_org(ctx, sandboxes)
    row = new_contact(sandboxes, "10001", Name="Jan van der Berg", Email="jan@k.dk")
    ctx.webcrm.session.mount("http://", LosingTheAnswer(sandboxes))
    with pytest.raises(Transient, match="timeout"):
        run(ctx, contact_event(row))
    ctx.webcrm.session.mount("http://", HTTPAdapter())
    sandboxes.webcrm.faults(hang_rate=0)  # the hang ends: the sandbox finishes the request nobody waits for
    ((pid, created),) = wait_until(lambda: sandboxes.webcrm.table("Persons"), what="the person").items()
    assert (created["PersonFirstName"], created["PersonLastName"], created["PersonOrganisationId"]) == (
        "Jan", "van der Berg", org)
    # The job's retry finds the person it created by the link written in the create body: no second one.
    assert action(ctx, contact_event(row)) == "linked"
    assert list(sandboxes.webcrm.table("Persons")) == [pid]
    assert contacts(sandboxes)[row]["ReferenceId"] == str(pid)
    assert person(sandboxes, pid)["PersonCustom1"] == str(row)
    assert action(ctx, person_event(pid)) == "unchanged"


def test_first_link_by_email_and_duplicates_for_review(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    org = linked_org(ctx, sandboxes)
    sandboxes.uniconta.ui("DebtorClient", Account="99999", Name="Anden kunde")
    a = new_contact(sandboxes, "10001", Name="A", Email=" Dup@K.dk")
    b = new_contact(sandboxes, "10001", Name="B", Email="dup@k.dk")
    single = new_contact(sandboxes, "10001", Name="S", Email="s@k.dk")
    new_contact(sandboxes, "99999", Name="Other debtor", Email="x@k.dk")
    dup = new_person(sandboxes, org, PersonLastName="Dup", PersonEmail="dup@k.dk")
    assert action(ctx, person_event(dup)) == "skipped"
    assert sandboxes.writes() == (0, 0)
    (entry,) = review.list_reviews(ctx.redis, CONNECTION)
    assert entry["email"] == "dup@k.dk" and set(entry["uniconta"]) == {str(a), str(b)}
    s = new_person(sandboxes, org, PersonLastName="S", PersonEmail="S@k.dk ")
    assert action(ctx, person_event(s)) == "linked"
    assert contacts(sandboxes)[single]["ReferenceId"] == str(s)
    x = new_person(sandboxes, org, PersonLastName="X", PersonEmail="x@k.dk")
    assert action(ctx, person_event(x)) == "created"  # the other debtor's contact is no candidate
    (made,) = [c for c in contacts(sandboxes).values() if c.get("ReferenceId") == str(x)]
    assert made["DCAccount"] == "10001"


def test_person_on_an_unlinked_organisation_waits(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    org = int(sandboxes.webcrm.ui("Organisations", OrganisationName="Ikke kunde endnu")["OrganisationId"])
    pid = new_person(sandboxes, org, PersonLastName="Venter")
    assert action(ctx, person_event(pid)) == "waiting"
    assert waiting.parked(ctx.redis, CONNECTION, f"organisation:{org}") == [("webcrm", "person", str(pid))]
    assert sandboxes.writes() == (0, 0)


def test_resign_and_delete_deactivate_the_other_side_once(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    pid, row = pair(ctx, sandboxes)
    sandboxes.webcrm.ui("Persons", pid, PersonStatus="Resigned")
    assert action(ctx, person_event(pid)) == "deleted"
    assert row not in contacts(sandboxes)
    before = sandboxes.writes()
    assert action(ctx, contact_event(row)) == "unchanged"  # the delete's echo
    assert action(ctx, person_event(pid)) == "unchanged"
    assert sandboxes.writes() == before

    sandboxes.webcrm.ui("Persons", pid, PersonStatus="Active")
    assert action(ctx, person_event(pid)) == "created"
    new_row = max(contacts(sandboxes))
    assert new_row != row
    sandboxes.uniconta.ui_delete(CONTACTS, RowId=new_row)
    assert action(ctx, contact_event(new_row)) == "updated"
    resigned = person(sandboxes, pid)
    assert (resigned["PersonStatus"], resigned["PersonCustom1"]) == ("Resigned", "")
    before = sandboxes.writes()
    assert action(ctx, person_event(pid)) == "unchanged"
    assert sandboxes.writes() == before
    assert not ctx.redis.hget(keys.links(CONNECTION, "person", "w2u"), str(pid))


def test_a_person_moved_to_an_organisation_without_a_debtor_moves_its_contact_once_it_has_one(
        ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    """Found by the convergence soak (seed 3): the contact stayed on the old debtor for good."""
    pid, row = pair(ctx, sandboxes)
    other = int(sandboxes.webcrm.ui("Organisations", OrganisationName="Ny kunde")["OrganisationId"])
    sandboxes.webcrm.ui("Persons", pid, PersonOrganisationId=other)
    run(ctx, person_event(pid))
    assert contacts(sandboxes)[row]["DCAccount"] == "10001"  # nowhere to move it yet
    assert waiting.parked(ctx.redis, CONNECTION, f"organisation:{other}") == [("webcrm", "person", str(pid))]

    # The organisation flow links the new organisation and releases what waits on it.
    sandboxes.uniconta.ui("DebtorClientUser", Account="10002", Name="Ny kunde", WebcrmId=str(other))
    ctx.links.bind("organisation", other, "10002")
    assert action(ctx, person_event(pid, origin="dependency")) == "updated"
    assert contacts(sandboxes)[row]["DCAccount"] == "10002"
    before = sandboxes.writes()
    assert action(ctx, contact_event(row)) == "unchanged"  # the move's echo
    assert action(ctx, person_event(pid)) == "unchanged"
    assert sandboxes.writes() == before
