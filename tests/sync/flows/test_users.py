"""Users ↔ employees, the pure parts: employee numbers from initials, mapping, activity."""

from __future__ import annotations

from dataclasses import replace
from datetime import date

from sync.config import UserFlow
from sync.flows.users import (
    deactivation,
    employee_changes,
    employee_number,
    is_inactive,
    map_employee,
    map_user,
    new_employee,
    number_stem,
    user_changes,
)


def test_number_stem_from_initials_then_name_then_user_id() -> None:
    assert number_stem("aj", "Anna Jensen", 5) == "AJ"
    assert number_stem(" A.J. ", "", 5) == "AJ"
    assert number_stem("", "Ib  Olsen", 5) == "IO"
    assert number_stem("", "Øjvind Åberg", 5) == "ØÅ"
    assert number_stem("", "", 7) == "U7"
    assert number_stem("-", "  ", 7) == "U7"
    assert len(number_stem("X" * 40, "", 1)) <= 17  # room for a collision suffix within Uniconta's 20


def test_employee_number_resolves_collisions_case_insensitively() -> None:
    assert employee_number("AJ", "", 1, set()) == "AJ"
    assert employee_number("AJ", "", 1, {"AJ"}) == "AJ2"
    assert employee_number("aj", "", 1, {"aj", "AJ2"}) == "AJ3"
    assert employee_number("AJ", "", 1, {"AJ", "AJ3"}) == "AJ2"
    assert employee_number("BH", "", 1, {"AJ", "AJ2"}) == "BH"


def test_new_employee_is_a_sales_person_with_the_link_in_the_body() -> None:
    user = {"UserId": 12, "UserName": " Bo Hansen ", "UserEmail": "bo@firma.dk", "UserMobilePhone": "",
            "UserInitials": "BH"}
    body = new_employee(user, UserFlow(), "BH")
    assert body == {"Number": "BH", "Name": "Bo Hansen", "Email": "bo@firma.dk", "Mobil": None,
                    "WebcrmUserId": "12", "Title": "Sælger"}
    cfg = replace(UserFlow(), uniconta_link_field="CrmUser", sales_title="", employee_group="SALG")
    body = new_employee(user, cfg, "BH")
    assert body["CrmUser"] == "12" and body["Group"] == "SALG" and "Title" not in body


def test_mapping_both_sides_to_one_projection() -> None:
    assert map_user({"UserName": "A", "UserEmail": "a@x", "UserMobilePhone": "1", "UserTitle": "x"}) == {
        "name": "A", "email": "a@x", "mobile": "1"}
    assert map_employee({"Name": "A", "Email": "a@x"}) == {"name": "A", "email": "a@x", "mobile": None}
    assert user_changes({"name": " B ", "mobile": None}) == {"UserName": "B", "UserMobilePhone": ""}
    assert employee_changes({"email": "b@x", "mobile": ""}) == {"Email": "b@x", "Mobil": None}


def test_inactive_employee_is_terminated_or_blocked() -> None:
    assert not is_inactive({"Number": "A"})
    assert not is_inactive({"Terminated": "0001-01-01T00:00:00", "Blocked": False})
    assert is_inactive({"Terminated": "2024-05-01T00:00:00"})
    assert is_inactive({"Blocked": True})
    assert deactivation(date(2024, 5, 1)) == {"Terminated": "2024-05-01T00:00:00", "Blocked": True}
