"""Persons ↔ contacts, the pure parts: name split, mapping, create bodies."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sync.config import PersonFlow
from sync.flows.persons import (
    contact_changes,
    full_name,
    is_debtor_contact,
    is_resigned,
    map_contact,
    map_person,
    name_fields,
    new_contact,
    new_person,
    person_changes,
    split_name,
)


@pytest.mark.parametrize(("full", "first", "last"), [
    ("Anna Jensen", "Anna", "Jensen"),
    ("Anna Marie Jensen", "Anna Marie", "Jensen"),
    ("  Jens   Peter  Hansen-Nielsen ", "Jens Peter", "Hansen-Nielsen"),
    ("Jan van der Berg", "Jan", "van der Berg"),
    ("Karl von Holstein", "Karl", "von Holstein"),
    ("van Berg", "van", "Berg"),
    ("Madonna", "", "Madonna"),
    ("", "", ""),
    (None, "", ""),
])
def test_split_name(full: str | None, first: str, last: str) -> None:
    assert split_name(full) == (first, last)


def test_name_fields_always_give_webcrm_a_last_name() -> None:
    assert name_fields("Anna Jensen") == {"PersonFirstName": "Anna", "PersonMiddleName": "",
                                          "PersonLastName": "Jensen", "PersonName": "Anna Jensen"}
    assert name_fields("")["PersonLastName"] == "-"


def test_full_name_joins_parts_and_drops_the_placeholder() -> None:
    assert full_name({"PersonFirstName": "Anna", "PersonMiddleName": "M.", "PersonLastName": "Jensen"}) == \
        "Anna M. Jensen"
    assert full_name({"PersonFirstName": " Bo ", "PersonLastName": "-"}) == "Bo"
    assert full_name({"PersonLastName": "Madonna"}) == "Madonna"
    # a name written from a contact reads back as the same full name
    for name in ("Jan van der Berg", "Anna Marie Jensen", "Madonna", ""):
        assert full_name(name_fields(name)) == name


def test_mapping_both_sides_to_one_projection() -> None:
    person = {"PersonId": 7, "PersonFirstName": "Mette", "PersonLastName": "Holm", "PersonEmail": "m@k.dk",
              "PersonMobilePhone": "+45 1", "PersonTitle": "Chef", "PersonDirectPhone": "99"}
    assert map_person(person) == {"name": "Mette Holm", "email": "m@k.dk", "mobile": "+45 1", "title": "Chef"}
    contact = {"RowId": 3, "Name": "Mette Holm", "Email": "m@k.dk", "Mobil": "+45 1"}
    assert map_contact(contact) == {"name": "Mette Holm", "email": "m@k.dk", "mobile": "+45 1", "title": None}
    assert person_changes({"name": "Ole Bak", "title": None}) == {
        "PersonFirstName": "Ole", "PersonMiddleName": "", "PersonLastName": "Bak", "PersonName": "Ole Bak",
        "PersonTitle": ""}
    assert contact_changes({"mobile": " 22 ", "title": ""}) == {"Mobil": "22", "Title": None}


def test_create_bodies_carry_the_cross_reference() -> None:
    person = {"PersonId": 7, "PersonFirstName": "Mette", "PersonLastName": "Holm", "PersonEmail": "m@k.dk",
              "PersonMobilePhone": "", "PersonTitle": "Chef"}
    assert new_contact(person, "10001", PersonFlow()) == {
        "DCType": 1, "DCAccount": "10001", "ReferenceId": "7", "Name": "Mette Holm", "Email": "m@k.dk",
        "Mobil": None, "Title": "Chef"}
    contact = {"RowId": 3, "Name": "Jan van der Berg", "Email": "jan@k.dk", "Mobil": "1", "Title": "CEO"}
    body = new_person(contact, 145, replace(PersonFlow(), webcrm_link_field="PersonCustom5"))
    assert body["PersonOrganisationId"] == 145 and body["PersonCustom5"] == "3" and body["PersonId"] == 0
    assert (body["PersonFirstName"], body["PersonLastName"], body["PersonStatus"]) == ("Jan", "van der Berg", "Active")
    assert (body["PersonEmail"], body["PersonMobilePhone"], body["PersonTitle"]) == ("jan@k.dk", "1", "CEO")


def test_status_and_contact_kind() -> None:
    assert is_resigned({"PersonStatus": "Resigned"}) and not is_resigned({"PersonStatus": "Active"})
    assert is_debtor_contact({"DCType": 1}) and is_debtor_contact({}) and not is_debtor_contact({"DCType": 2})
