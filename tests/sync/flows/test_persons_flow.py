"""Persons ↔ contacts handlers against in-memory fakes of both APIs (and a real Redis).

Interleavings the e2e tests cannot force: events of one pair in either order, one event
while the other holds its lock, echoes, Redis state lost, the policies.
"""

from __future__ import annotations

import copy
import re
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
import redis

from sync import review, waiting
from sync.clients.errors import Conflict, NotFound
from sync.config import Connection, UnicontaSettings, WebcrmSettings, WebhookSettings
from sync.events import Event
from sync.flows.persons import sync_contact, sync_person
from sync.locks import LockBusy, record_lock
from sync.runtime import ConnectionContext
from sync.secrets import Secret

CONN = "c1"


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC)

    def tick(self, seconds: float = 1) -> datetime:
        self.now += timedelta(seconds=seconds)
        return self.now


class FakeWebcrm:
    """Persons and users by id; PUT replaces the record; `writes` counts POST/PUT."""

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tables: dict[str, dict[int, dict[str, Any]]] = {"Persons": {}, "Users": {}}
        self.inactive: set[int] = set()
        self.writes: list[tuple[str, str, int]] = []

    def _stamp(self, entity: str, record: dict[str, Any], by: str) -> None:
        prefix = entity[:-1]
        record[f"{prefix}UpdatedAt"] = self.clock.now.replace(microsecond=0).isoformat()
        record[f"{prefix}UpdatedBy"] = by

    def ui(self, entity: str, ident: int | None = None, **fields: Any) -> int:
        """A person editing in webCRM (not an API write)."""
        if ident is None:
            ident = max(self.tables[entity], default=0) + 1
            self.tables[entity][ident] = {f"{entity[:-1]}Id": ident, **_empty(entity)}
        self.tables[entity][ident].update(fields)
        self._stamp(entity, self.tables[entity][ident], "Anna Jensen")
        return ident

    def get(self, entity: str, ident: int) -> dict[str, Any]:
        if int(ident) not in self.tables[entity]:
            raise NotFound("gone", system="webcrm")
        return copy.deepcopy(self.tables[entity][int(ident)])

    def update(self, entity: str, ident: int, dto: dict[str, Any]) -> None:
        record = copy.deepcopy(dto)
        if entity == "Persons":
            record["PersonOrganisationId"] = self.tables[entity][int(ident)]["PersonOrganisationId"]
        self._stamp(entity, record, "Integration")
        self.tables[entity][int(ident)] = record
        self.writes.append(("PUT", entity, int(ident)))

    def create(self, entity: str, dto: dict[str, Any]) -> int:
        ident = max(self.tables[entity], default=0) + 1
        record = {**_empty(entity), **copy.deepcopy(dto), f"{entity[:-1]}Id": ident}
        self._stamp(entity, record, "Integration")
        self.tables[entity][ident] = record
        self.writes.append(("POST", entity, ident))
        return ident

    def query(self, script: str) -> list[dict[str, Any]]:
        m = re.match(r"SELECT \* FROM (\w+) WHERE (\w+) = '(.*)'$", script)
        assert m, script
        table, field, value = m.group(1) + "s", m.group(2), m.group(3).replace("''", "'")
        return [copy.deepcopy(r) for r in self.tables[table].values() if str(r.get(field, "")).lower() == value.lower()]

    def iter_all(self, entity: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(r) for r in self.tables[entity].values()]

    def active_users(self) -> list[dict[str, Any]]:
        return [copy.deepcopy(u) for i, u in self.tables["Users"].items() if i not in self.inactive]


def _empty(entity: str) -> dict[str, Any]:
    if entity == "Persons":
        return {"PersonFirstName": "", "PersonMiddleName": "", "PersonLastName": "", "PersonEmail": "",
                "PersonMobilePhone": "", "PersonTitle": "", "PersonStatus": "Active", "PersonCustom1": "",
                "PersonOrganisationId": 0}
    return {"UserName": "", "UserEmail": "", "UserMobilePhone": "", "UserInitials": "", "UserCustom1": ""}


class FakeUniconta:
    """Records by RowId per entity (…ClientUser names); Update replaces; nulls are left out of reads."""

    KEYS = {"EmployeeClientUser": "Number"}

    def __init__(self, clock: Clock) -> None:
        self.clock = clock
        self.tables: dict[str, dict[int, dict[str, Any]]] = {"ContactClientUser": {}, "EmployeeClientUser": {},
                                                             "DebtorClientUser": {}}
        self.writes: list[tuple[str, str, int]] = []
        self.next_row = 1

    def _stamp(self, record: dict[str, Any]) -> None:
        record["UpdatedAt"] = self.clock.now.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def ui(self, entity: str, row: int | None = None, **fields: Any) -> int:
        if row is None:
            row, self.next_row = self.next_row, self.next_row + 1
            self.tables[entity][row] = {"RowId": row}
        self.tables[entity][row].update(fields)
        self._stamp(self.tables[entity][row])
        return row

    def ui_delete(self, entity: str, row: int) -> None:
        del self.tables[entity][row]

    def _read(self, record: dict[str, Any]) -> dict[str, Any]:
        return {k: copy.deepcopy(v) for k, v in record.items() if v is not None}

    def find(self, entity: str, prop: str, value: str | int) -> list[dict[str, Any]]:
        return [self._read(r) for r in self.tables[entity].values() if str(r.get(prop, "")) == str(value)]

    def get_one(self, entity: str, prop: str, value: str | int) -> dict[str, Any] | None:
        rows = self.find(entity, prop, value)
        assert len(rows) <= 1
        return rows[0] if rows else None

    def odata(self, entity: str, **kwargs: Any) -> list[dict[str, Any]]:
        return [self._read(r) for r in self.tables[entity].values()]

    def insert(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        key = self.KEYS.get(entity)
        if key and any(r.get(key) == record.get(key) for r in self.tables[entity].values()):
            raise Conflict("exists", system="uniconta", code="RecordExists")
        row, self.next_row = self.next_row, self.next_row + 1
        stored = {**copy.deepcopy(record), "RowId": row}
        self._stamp(stored)
        self.tables[entity][row] = stored
        self.writes.append(("insert", entity, row))
        return self._read(stored)

    def update(self, entity: str, record: dict[str, Any]) -> dict[str, Any]:
        row = int(record["RowId"])
        if row not in self.tables[entity]:
            raise NotFound("gone", system="uniconta")
        stored = copy.deepcopy(record)
        self._stamp(stored)
        self.tables[entity][row] = stored
        self.writes.append(("update", entity, row))
        return self._read(stored)

    def delete(self, entity: str, record: dict[str, Any]) -> None:
        del self.tables[entity][int(record["RowId"])]
        self.writes.append(("delete", entity, int(record["RowId"])))


def connection(**changes: Any) -> Connection:
    conn = Connection(id=CONN, webhook=WebhookSettings(tokens=(Secret("t"),)),
                      webcrm=WebcrmSettings(base_url="http://w", auth_code=Secret("a")),
                      uniconta=UnicontaSettings(base_url="http://u", company_id=1, username="u",
                                                password=Secret("p")))
    return replace(conn, **changes)


class World:
    def __init__(self, r: redis.Redis, **conn: Any) -> None:
        self.clock = Clock()
        self.webcrm = FakeWebcrm(self.clock)
        self.uniconta = FakeUniconta(self.clock)
        self.redis = r
        self.ctx = ConnectionContext(connection(**conn), r, self.webcrm, self.uniconta)  # type: ignore[arg-type]

    def person_event(self, pid: int, origin: str = "webhook") -> Event:
        return Event(CONN, "webcrm", "person", str(pid), origin=origin)

    def contact_event(self, row: int, origin: str = "webhook") -> Event:
        return Event(CONN, "uniconta", "contact", f"#{row}", origin=origin)

    def run(self, event: Event) -> str:
        """Like the job: hold the event record's lock, call the handler."""
        handler = sync_person if event.entity == "person" else sync_contact
        with record_lock(self.redis, CONN, event.entity, event.record_id):
            return handler(self.ctx, event).action

    def writes(self) -> tuple[int, int]:
        return len(self.webcrm.writes), len(self.uniconta.writes)

    def linked_org(self, account: str = "10001") -> int:
        org = 145
        self.ctx.links.bind("organisation", org, account)
        self.uniconta.ui("DebtorClientUser", Account=account, WebcrmId=str(org))
        return org

    def pair(self) -> tuple[int, int]:
        """A linked person/contact pair, synced and echoed."""
        org = self.linked_org()
        pid = self.webcrm.ui("Persons", PersonOrganisationId=org, PersonFirstName="Mette", PersonLastName="Holm",
                             PersonEmail="mette@k.dk", PersonTitle="Chef")
        assert self.run(self.person_event(pid)) == "created"
        row = next(iter(self.uniconta.tables["ContactClientUser"]))
        assert self.run(self.contact_event(row)) == "unchanged"  # echo of the insert
        assert self.run(self.person_event(pid)) == "unchanged"  # echo of the link written to webCRM
        self.clock.tick()
        return pid, row


@pytest.fixture
def world(redis_client: redis.Redis) -> World:
    return World(redis_client)


def test_person_creates_a_contact_and_the_echoes_write_nothing(world: World) -> None:
    pid, row = world.pair()
    contact = world.uniconta.tables["ContactClientUser"][row]
    assert (contact["DCType"], contact["DCAccount"], contact["ReferenceId"], contact["Name"]) == (
        1, "10001", str(pid), "Mette Holm")
    assert world.webcrm.tables["Persons"][pid]["PersonCustom1"] == str(row)
    assert world.writes() == (1, 1)  # the contact insert and the link on the person


@pytest.mark.parametrize("order", ["person-first", "contact-first"])
def test_edits_on_both_sides_give_one_write_per_side_in_either_order(world: World, order: str) -> None:
    pid, row = world.pair()
    before = world.writes()
    world.webcrm.ui("Persons", pid, PersonTitle="Direktør")
    world.uniconta.ui("ContactClientUser", row, Mobil="+45 22")
    events = [world.person_event(pid), world.contact_event(row)]
    if order == "contact-first":
        events.reverse()
    assert [world.run(e) for e in events] == ["updated", "unchanged"]
    assert [world.run(e) for e in events] == ["unchanged", "unchanged"]  # the echoes of the two writes
    assert world.writes() == (before[0] + 1, before[1] + 1)
    assert world.webcrm.tables["Persons"][pid]["PersonMobilePhone"] == "+45 22"
    assert world.uniconta.tables["ContactClientUser"][row]["Title"] == "Direktør"


def test_an_event_waits_while_the_other_side_of_its_pair_is_being_synced(world: World) -> None:
    pid, row = world.pair()
    world.uniconta.ui("ContactClientUser", row, Mobil="+45 33")
    before = world.writes()
    # A person job runs in another worker.
    with record_lock(world.redis, CONN, "person", str(pid)), pytest.raises(LockBusy):
        world.run(world.contact_event(row))
    assert world.writes() == before
    assert world.run(world.contact_event(row)) == "updated"  # the job's retry


def test_same_field_conflict_newest_wins_or_the_configured_side(redis_client: redis.Redis) -> None:
    for policy, winner in (("newest", "u-title"), ("webcrm", "w-title"), ("uniconta", "u-title")):
        redis_client.flushdb()
        world = World(redis_client, conflict_policy=policy)
        pid, row = world.pair()
        world.webcrm.ui("Persons", pid, PersonTitle="w-title")
        world.clock.tick(2)
        world.uniconta.ui("ContactClientUser", row, Title="u-title")
        assert world.run(world.person_event(pid)) == "updated"
        assert world.webcrm.tables["Persons"][pid]["PersonTitle"] == winner
        assert world.uniconta.tables["ContactClientUser"][row]["Title"] == winner
        assert world.run(world.contact_event(row)) == "unchanged"


def test_lost_redis_state_relinks_without_writes_or_duplicates(world: World) -> None:
    pid, row = world.pair()
    before = world.writes()
    for key in world.redis.scan_iter("sync:*"):
        world.redis.delete(key)
    world.ctx.links.bind("organisation", 145, "10001")  # the organisation flow's link (not ours)
    assert world.run(world.person_event(pid)) == "unchanged"
    assert world.run(world.contact_event(row)) == "unchanged"
    assert world.writes() == before
    assert len(world.uniconta.tables["ContactClientUser"]) == 1


def test_contact_on_a_linked_debtor_becomes_a_person_and_a_lost_answer_is_found_again(world: World) -> None:
    world.linked_org()
    row = world.uniconta.ui("ContactClientUser", DCType=1, DCAccount="10001", Name="Jan van der Berg",
                            Email="jan@k.dk")
    original_create = world.webcrm.create

    def create_losing_the_answer(entity: str, dto: dict[str, Any]) -> None:  # type: ignore[return]
        original_create(entity, dto)

    world.webcrm.create = create_losing_the_answer  # type: ignore[method-assign,assignment]
    assert world.run(world.contact_event(row)) == "created"
    world.webcrm.create = original_create  # type: ignore[method-assign]
    (pid, person), = world.webcrm.tables["Persons"].items()
    assert (person["PersonFirstName"], person["PersonLastName"], person["PersonOrganisationId"]) == (
        "Jan", "van der Berg", 145)
    assert world.uniconta.tables["ContactClientUser"][row]["ReferenceId"] == str(pid)
    assert world.run(world.person_event(pid)) == "unchanged"


def test_first_link_by_email_and_duplicates_for_review(world: World) -> None:
    org = world.linked_org()
    a = world.uniconta.ui("ContactClientUser", DCType=1, DCAccount="10001", Name="A", Email=" Dup@K.dk")
    world.uniconta.ui("ContactClientUser", DCType=1, DCAccount="10001", Name="B", Email="dup@k.dk")
    single = world.uniconta.ui("ContactClientUser", DCType=1, DCAccount="10001", Name="S", Email="s@k.dk")
    world.uniconta.ui("ContactClientUser", DCType=1, DCAccount="99999", Name="Other debtor", Email="x@k.dk")
    dup = world.webcrm.ui("Persons", PersonOrganisationId=org, PersonLastName="Dup", PersonEmail="dup@k.dk")
    assert world.run(world.person_event(dup)) == "skipped"
    assert world.writes() == (0, 0)
    (entry,) = review.list_reviews(world.redis, CONN)
    assert entry["email"] == "dup@k.dk" and set(entry["uniconta"]) == {str(a), str(a + 1)}
    s = world.webcrm.ui("Persons", PersonOrganisationId=org, PersonLastName="S", PersonEmail="S@k.dk ")
    assert world.run(world.person_event(s)) == "linked"
    assert world.uniconta.tables["ContactClientUser"][single]["ReferenceId"] == str(s)
    x = world.webcrm.ui("Persons", PersonOrganisationId=org, PersonLastName="X", PersonEmail="x@k.dk")
    assert world.run(world.person_event(x)) == "created"  # the other debtor's contact is no candidate


def test_person_on_an_unlinked_organisation_waits(world: World) -> None:
    pid = world.webcrm.ui("Persons", PersonOrganisationId=200, PersonLastName="Venter")
    assert world.run(world.person_event(pid)) == "waiting"
    assert waiting.parked(world.redis, CONN, "organisation:200") == [("webcrm", "person", str(pid))]
    assert world.writes() == (0, 0)


def test_resign_and_delete_deactivate_the_other_side_once(world: World) -> None:
    pid, row = world.pair()
    world.webcrm.ui("Persons", pid, PersonStatus="Resigned")
    assert world.run(world.person_event(pid)) == "deleted"
    assert row not in world.uniconta.tables["ContactClientUser"]
    before = world.writes()
    assert world.run(world.contact_event(row)) == "unchanged"  # the delete's echo
    assert world.run(world.person_event(pid)) == "unchanged"
    assert world.writes() == before

    world.clock.tick()
    world.webcrm.ui("Persons", pid, PersonStatus="Active")
    assert world.run(world.person_event(pid)) == "created"
    new_row = max(world.uniconta.tables["ContactClientUser"])
    assert new_row != row
    world.uniconta.ui_delete("ContactClientUser", new_row)
    assert world.run(world.contact_event(new_row)) == "updated"
    person = world.webcrm.tables["Persons"][pid]
    assert (person["PersonStatus"], person["PersonCustom1"]) == ("Resigned", "")
    before = world.writes()
    assert world.run(world.person_event(pid)) == "unchanged"
    assert world.writes() == before
