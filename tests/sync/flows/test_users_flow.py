"""Users ↔ employees handlers on the sandboxes over real HTTP, with the real clients and a real Redis.

A handler runs as the job runs it (`tests.support.context.run`: the record's lock held), without Celery.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any
from urllib.parse import urlsplit

import pytest
import requests

from sync.clients.webcrm import parse_time
from sync.events import Event
from sync.flows.users import sweep_users
from sync.runtime import ConnectionContext
from sync.state import review
from tests.support.context import Sandboxes, run
from tests.support.stack import CONNECTION

EMPLOYEES = "EmployeeClientUser"


def user_event(uid: int, origin: str = "webhook") -> Event:
    return Event(CONNECTION, "webcrm", "user", str(uid), origin=origin)


def employee_event(number: str, origin: str = "webhook") -> Event:
    return Event(CONNECTION, "uniconta", "employee", number, origin=origin)


def action(ctx: ConnectionContext, event: Event) -> str:
    return run(ctx, event).action


def employee(sb: Sandboxes, number: str) -> dict[str, Any]:
    (row,) = [e for e in sb.uniconta.rows("Employee").values() if e["Number"] == number]
    return row


def user(sb: Sandboxes, uid: int) -> dict[str, Any]:
    return sb.webcrm.record("Users", uid)


def webcrm_user(sb: Sandboxes, **fields: Any) -> int:
    """A user an administrator adds in webCRM (active)."""
    return int(sb.webcrm.ui("Users", **fields)["UserId"])


def new_user(ctx: ConnectionContext, sb: Sandboxes, **fields: Any) -> int:
    """A webCRM user, synced to a new employee."""
    uid = webcrm_user(sb, **fields)
    assert action(ctx, user_event(uid)) == "created"
    return uid


@pytest.mark.parametrize("insert_answer", ["record", "empty"])
def test_new_user_gets_a_unique_number_and_echoes_write_nothing(ctx: ConnectionContext, sandboxes: Sandboxes,
                                                                insert_answer: str) -> None:
    # Uniconta answers an insert with the record or with an empty 204 (sandbox quirk write_response):
    # without the record, the employee is read back by its number.
    sandboxes.uniconta.quirks(write_response=insert_answer)
    sandboxes.uniconta.ui(EMPLOYEES, Number="AJ", Name="Other", Email="other@x.dk")
    uid = webcrm_user(sandboxes, UserName="Anders Juhl", UserInitials="aj", UserEmail="anders@x.dk",
                      UserMobilePhone="+45 1")
    assert action(ctx, user_event(uid)) == "created"
    made = employee(sandboxes, "AJ2")
    assert (made["Name"], made["Email"], made["Mobil"], made["Title"], made["WebcrmUserId"]) == (
        "Anders Juhl", "anders@x.dk", "+45 1", "Sælger", str(uid))
    assert user(sandboxes, uid)["UserCustom1"] == "AJ2"
    before = sandboxes.writes()
    assert action(ctx, employee_event("AJ2")) == "unchanged"
    assert action(ctx, user_event(uid)) == "unchanged"
    assert sandboxes.writes() == before


def test_a_number_taken_meanwhile_moves_on_to_the_next(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    made: list[dict[str, Any]] = []

    def another_worker(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
        """Right after the flow listed the employees, another worker creates BH in Uniconta."""
        if not made and response.request.method == "GET" \
                and urlsplit(str(response.request.url)).path.endswith(f"/odata/1234/{EMPLOYEES}"):
            made.append(sandboxes.uniconta.ui(EMPLOYEES, Number="BH", Name="Made by another worker just now"))
        return response

    ctx.uniconta.session.hooks["response"].append(another_worker)
    uid = new_user(ctx, sandboxes, UserName="Bo Hansen", UserInitials="BH", UserEmail="bo@x.dk")
    assert made, "the flow did not list the employees"
    assert user(sandboxes, uid)["UserCustom1"] == "BH2"
    assert employee(sandboxes, "BH2")["WebcrmUserId"] == str(uid)
    assert "WebcrmUserId" not in employee(sandboxes, "BH")  # the other worker's employee is left alone
    inserts = [c["status"] for c in sandboxes.uniconta.calls() if "/Insert/" in c["path"]]
    assert inserts == [400, 200]  # BH refused as existing (RecordExists), then BH2


def test_employees_never_create_users_but_link_by_email(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    users_before = set(sandboxes.webcrm.table("Users"))
    sandboxes.uniconta.ui(EMPLOYEES, Number="NU", Name="No User", Email="nobody@x.dk")
    assert action(ctx, employee_event("NU")) == "skipped"
    assert sandboxes.writes() == (0, 0) and set(sandboxes.webcrm.table("Users")) == users_before
    uid = webcrm_user(sandboxes, UserName="Karen", UserEmail=" KAREN@x.dk")
    row = sandboxes.uniconta.ui(EMPLOYEES, Number="KL", Name="Karen Lund", Email="karen@x.dk ")["RowId"]
    # Both made in the same second: a tie, which the newest-wins policy gives to webCRM.
    made_at = parse_time(user(sandboxes, uid)["UserUpdatedAt"])
    assert made_at is not None
    sandboxes.uniconta.stamp("Employee", {row: made_at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")})
    assert action(ctx, employee_event("KL")) == "linked"
    assert employee(sandboxes, "KL")["WebcrmUserId"] == str(uid)
    assert user(sandboxes, uid)["UserCustom1"] == "KL"
    assert user(sandboxes, uid)["UserName"] == "Karen"  # first link: a real difference, policy
    assert employee(sandboxes, "KL")["Name"] == "Karen"
    assert action(ctx, user_event(uid)) == "unchanged"


def test_duplicates_on_either_side_are_not_linked(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    sandboxes.uniconta.ui(EMPLOYEES, Number="D1", Email="dup@x.dk")
    sandboxes.uniconta.ui(EMPLOYEES, Number="D2", Email="DUP@x.dk")
    uid = webcrm_user(sandboxes, UserName="Dup", UserEmail="dup@x.dk")
    assert action(ctx, user_event(uid)) == "skipped"
    assert action(ctx, employee_event("D1")) == "skipped"
    assert sandboxes.writes() == (0, 0)
    (entry,) = review.list_reviews(ctx.redis, CONNECTION)
    assert entry["entity"] == "user" and set(entry["uniconta"]) == {"D1", "D2"}


def test_deactivation_terminates_and_reactivation_clears_only_what_the_sync_set(ctx: ConnectionContext,
                                                                                sandboxes: Sandboxes) -> None:
    uid = new_user(ctx, sandboxes, UserName="Eva", UserInitials="EM", UserEmail="eva@x.dk")
    sandboxes.webcrm.set_active(uid, False)
    assert action(ctx, user_event(uid)) == "unchanged"  # a hook with the same DTO: not re-checked
    assert action(ctx, user_event(uid, origin="reconcile")) == "updated"
    terminated = employee(sandboxes, "EM")
    assert terminated["Blocked"] is True and terminated["Terminated"].endswith("T00:00:00")
    before = sandboxes.writes()
    assert action(ctx, user_event(uid, origin="reconcile")) == "unchanged"
    assert action(ctx, employee_event("EM")) == "unchanged"
    assert sandboxes.writes() == before
    sandboxes.webcrm.set_active(uid, True)
    assert action(ctx, user_event(uid, origin="reconcile")) == "updated"
    assert employee(sandboxes, "EM")["Blocked"] is False and employee(sandboxes, "EM").get("Terminated") is None

    # Terminated in Uniconta by someone else: a later deactivation/reactivation leaves it alone.
    sandboxes.uniconta.ui_edit(EMPLOYEES, RowId=employee(sandboxes, "EM")["RowId"], Terminated="2024-01-31T00:00:00")
    sandboxes.webcrm.set_active(uid, False)
    action(ctx, user_event(uid, origin="reconcile"))
    sandboxes.webcrm.set_active(uid, True)
    action(ctx, user_event(uid, origin="reconcile"))
    assert employee(sandboxes, "EM")["Terminated"] == "2024-01-31T00:00:00"


def test_deleted_employee_is_not_created_again(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    uid = new_user(ctx, sandboxes, UserName="Gone", UserInitials="GO", UserEmail="gone@x.dk")
    sandboxes.uniconta.ui_delete(EMPLOYEES, Number="GO")
    assert action(ctx, employee_event("GO")) == "absent"
    sandboxes.webcrm.ui("Users", uid, UserName="Gone Again")
    assert action(ctx, user_event(uid)) == "skipped"
    assert sandboxes.uniconta.rows("Employee") == {}
    assert user(sandboxes, uid)["UserCustom1"] == "GO"


def test_sweep_finds_linked_users_whose_active_state_changed(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    stays = new_user(ctx, sandboxes, UserName="Stays", UserInitials="ST", UserEmail="s@x.dk")
    leaves = new_user(ctx, sandboxes, UserName="Leaves", UserInitials="LE", UserEmail="l@x.dk")
    webcrm_user(sandboxes, UserName="Unlinked", UserEmail="u@x.dk")
    sandboxes.webcrm.set_active(leaves, False)
    since = datetime(2024, 5, 1, tzinfo=UTC)
    assert [(e.entity, e.record_id, e.origin) for e in sweep_users(ctx, since)] == [
        ("user", str(leaves), "reconcile")]
    action(ctx, user_event(leaves, origin="reconcile"))
    assert list(sweep_users(ctx, since)) == []
    assert stays
