"""Users ↔ employees handlers against in-memory fakes of both APIs (and a real Redis)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest
import redis

from sync import review
from sync.events import Event
from sync.flows.users import sweep_users, sync_employee, sync_user
from sync.locks import record_lock
from tests.sync.flows.test_persons_flow import CONN, World

EMPLOYEES = "EmployeeClientUser"


class UserWorld(World):
    def user_event(self, uid: int, origin: str = "webhook") -> Event:
        return Event(CONN, "webcrm", "user", str(uid), origin=origin)

    def employee_event(self, number: str, origin: str = "webhook") -> Event:
        return Event(CONN, "uniconta", "employee", number, origin=origin)

    def run(self, event: Event) -> str:
        handler = sync_user if event.entity == "user" else sync_employee
        with record_lock(self.redis, CONN, event.entity, event.record_id):
            return handler(self.ctx, event).action

    def employee(self, number: str) -> dict[str, Any]:
        (row,) = [e for e in self.uniconta.tables[EMPLOYEES].values() if e["Number"] == number]
        return row

    def new_user(self, **fields: Any) -> int:
        uid = self.webcrm.ui("Users", **fields)
        self.run(self.user_event(uid))
        return uid


@pytest.fixture
def world(redis_client: redis.Redis) -> UserWorld:
    return UserWorld(redis_client)


def test_new_user_gets_a_unique_number_and_echoes_write_nothing(world: UserWorld) -> None:
    world.uniconta.ui(EMPLOYEES, Number="AJ", Name="Other", Email="other@x.dk")
    uid = world.webcrm.ui("Users", UserName="Anders Juhl", UserInitials="aj", UserEmail="anders@x.dk",
                          UserMobilePhone="+45 1")
    assert world.run(world.user_event(uid)) == "created"
    employee = world.employee("AJ2")
    assert (employee["Name"], employee["Email"], employee["Mobil"], employee["Title"], employee["WebcrmUserId"]) == (
        "Anders Juhl", "anders@x.dk", "+45 1", "Sælger", str(uid))
    assert world.webcrm.tables["Users"][uid]["UserCustom1"] == "AJ2"
    before = world.writes()
    assert world.run(world.employee_event("AJ2")) == "unchanged"
    assert world.run(world.user_event(uid)) == "unchanged"
    assert world.writes() == before


def test_a_number_taken_meanwhile_moves_on_to_the_next(world: UserWorld) -> None:
    world.uniconta.ui(EMPLOYEES, Number="BH", Name="Made by another worker just now")
    world.uniconta.odata = lambda entity, **kw: []  # type: ignore[method-assign]  # listed before it existed
    uid = world.new_user(UserName="Bo Hansen", UserInitials="BH", UserEmail="bo@x.dk")
    assert world.webcrm.tables["Users"][uid]["UserCustom1"] == "BH2"


def test_employees_never_create_users_but_link_by_email(world: UserWorld) -> None:
    world.uniconta.ui(EMPLOYEES, Number="NU", Name="No User", Email="nobody@x.dk")
    assert world.run(world.employee_event("NU")) == "skipped"
    assert world.writes() == (0, 0) and len(world.webcrm.tables["Users"]) == 0
    uid = world.webcrm.ui("Users", UserName="Karen", UserEmail=" KAREN@x.dk")
    world.uniconta.ui(EMPLOYEES, Number="KL", Name="Karen Lund", Email="karen@x.dk ")
    assert world.run(world.employee_event("KL")) == "linked"
    assert world.employee("KL")["WebcrmUserId"] == str(uid)
    assert world.webcrm.tables["Users"][uid]["UserCustom1"] == "KL"
    assert world.webcrm.tables["Users"][uid]["UserName"] == "Karen"  # first link: a real difference, policy
    assert world.run(world.user_event(uid)) == "unchanged"


def test_duplicates_on_either_side_are_not_linked(world: UserWorld) -> None:
    world.uniconta.ui(EMPLOYEES, Number="D1", Email="dup@x.dk")
    world.uniconta.ui(EMPLOYEES, Number="D2", Email="DUP@x.dk")
    uid = world.webcrm.ui("Users", UserName="Dup", UserEmail="dup@x.dk")
    assert world.run(world.user_event(uid)) == "skipped"
    assert world.run(world.employee_event("D1")) == "skipped"
    assert world.writes() == (0, 0)
    (entry,) = review.list_reviews(world.redis, CONN)
    assert entry["entity"] == "user" and set(entry["uniconta"]) == {"D1", "D2"}


def test_deactivation_terminates_and_reactivation_clears_only_what_the_sync_set(world: UserWorld) -> None:
    uid = world.new_user(UserName="Eva", UserInitials="EM", UserEmail="eva@x.dk")
    world.webcrm.inactive.add(uid)
    assert world.run(world.user_event(uid)) == "unchanged"  # a hook with the same DTO: not re-checked
    assert world.run(world.user_event(uid, origin="reconcile")) == "updated"
    employee = world.employee("EM")
    assert employee["Blocked"] is True and employee["Terminated"].endswith("T00:00:00")
    before = world.writes()
    assert world.run(world.user_event(uid, origin="reconcile")) == "unchanged"
    assert world.run(world.employee_event("EM")) == "unchanged"
    assert world.writes() == before
    world.webcrm.inactive.discard(uid)
    assert world.run(world.user_event(uid, origin="reconcile")) == "updated"
    assert world.employee("EM")["Blocked"] is False and world.employee("EM").get("Terminated") is None

    # Terminated in Uniconta by someone else: a later deactivation/reactivation leaves it alone.
    row = world.employee("EM")["RowId"]
    world.uniconta.ui(EMPLOYEES, row, Terminated="2024-01-31T00:00:00")
    world.webcrm.inactive.add(uid)
    world.run(world.user_event(uid, origin="reconcile"))
    world.webcrm.inactive.discard(uid)
    world.run(world.user_event(uid, origin="reconcile"))
    assert world.employee("EM")["Terminated"] == "2024-01-31T00:00:00"


def test_deleted_employee_is_not_created_again(world: UserWorld) -> None:
    uid = world.new_user(UserName="Gone", UserInitials="GO", UserEmail="gone@x.dk")
    world.uniconta.ui_delete(EMPLOYEES, world.employee("GO")["RowId"])
    assert world.run(world.employee_event("GO")) == "absent"
    world.clock.tick()
    world.webcrm.ui("Users", uid, UserName="Gone Again")
    assert world.run(world.user_event(uid)) == "skipped"
    assert not world.uniconta.tables[EMPLOYEES]
    assert world.webcrm.tables["Users"][uid]["UserCustom1"] == "GO"


def test_sweep_finds_linked_users_whose_active_state_changed(world: UserWorld) -> None:
    stays = world.new_user(UserName="Stays", UserInitials="ST", UserEmail="s@x.dk")
    leaves = world.new_user(UserName="Leaves", UserInitials="LE", UserEmail="l@x.dk")
    world.webcrm.ui("Users", UserName="Unlinked", UserEmail="u@x.dk")
    world.webcrm.inactive.add(leaves)
    since = datetime(2024, 5, 1, tzinfo=UTC)
    assert [(e.entity, e.record_id, e.origin) for e in sweep_users(world.ctx, since)] == [
        ("user", str(leaves), "reconcile")]
    world.run(world.user_event(leaves, origin="reconcile"))
    assert list(sweep_users(world.ctx, since)) == []
    assert stays
