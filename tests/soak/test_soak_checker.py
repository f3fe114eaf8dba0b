"""The soak's checker on hand-made data: a consistent world gives no finding, and each kind of damage
is found as what it is (a disagreement with both values, a missing or stray record, a duplicate).

Guards the checker itself: a soak that reports "0 disagreements" is only worth something if the
checker would have said otherwise.
"""

from __future__ import annotations

import copy
from collections import defaultdict
from typing import Any

import pytest

from bench import _harness as h
from bench._soak_check import Checker, Systems
from bench.soak import ORGANISATIONS
from sync.config import load_settings


class Walk:
    """What the checker reads of the walk: nothing was deleted, moved or invoiced."""

    def __init__(self) -> None:
        self.deleted: dict[str, dict[str, int]] = defaultdict(dict)
        self.handles: dict[str, list[Any]] = defaultdict(list)
        self.debtor_deleted: dict[int, int] = {}
        self.moved_in_uniconta: dict[int, int] = {}
        self.moved_in_webcrm: dict[int, int] = {}
        self.ever_ready: set[int] = set()


@pytest.fixture(scope="module")
def conn(tmp_path_factory: pytest.TempPathFactory) -> Any:
    path = h.write_config(tmp_path_factory.mktemp("soak") / "sync.toml", webcrm_url="http://127.0.0.1:1",
                          uniconta_url="http://127.0.0.1:2", extra=ORGANISATIONS)
    return load_settings({"SYNC_CONFIG": str(path)}).connections[h.CONNECTION]


def world() -> Systems:
    """One of each pair, synced as the flows leave them."""
    org = {"OrganisationId": 1, "OrganisationName": "Holm Smed ApS", "OrganisationAddress": "Østergade 1\n2. sal",
           "OrganisationPostCode": "8000", "OrganisationCity": "Aarhus C", "OrganisationCountry": "Danmark",
           "OrganisationVatNumber": "12345678", "OrganisationTelephone": "+45 20 30 40 50",
           "OrganisationCustom1": "", "OrganisationCustom2": "", "OrganisationCustom3": "f@holm.dk",
           "OrganisationType": "Kunde", "OrganisationExtraCustom1": "10000",
           "OrganisationExtraCustom2": "Uniconta: debtor 10000", "OrganisationExtraCustom3": "5790000000001",
           "OrganisationExtraCustom4": "Netto 8", "OrganisationExtraCustom5": "Indland"}
    debtor = {"Account": "10000", "WebcrmId": "1", "Name": "Holm Smed ApS", "Address1": "Østergade 1",
              "Address2": "2. sal", "ZipCode": "8000", "City": "Aarhus C", "Country": "Denmark",
              "CompanyRegNo": "12345678", "Phone": "+45 20 30 40 50", "InvoiceEmail": "F@holm.dk",
              "EAN": "5790000000001", "Payment": "Netto 8", "Group": "Indland", "RowId": 1}
    person = {"PersonId": 5, "PersonOrganisationId": 1, "PersonFirstName": "Mette", "PersonMiddleName": "",
              "PersonLastName": "Holm", "PersonName": "Mette Holm", "PersonEmail": "mette@holm.dk",
              "PersonMobilePhone": "+45 11 22 33 44", "PersonTitle": "Indkøber", "PersonStatus": "Active",
              "PersonCustom1": "7", "PersonCreatedBy": "Anna Jensen"}
    contact = {"RowId": 7, "DCType": 1, "DCAccount": "10000", "Name": "Mette Holm", "Email": "Mette@Holm.dk",
               "Mobil": "+4511223344", "Title": "Indkøber", "ReferenceId": "5"}
    user = {"UserId": 1, "UserName": "Anna Jensen", "UserEmail": "anna@firma.dk", "UserMobilePhone": "",
            "UserCustom1": "AJ"}
    employee = {"Number": "AJ", "WebcrmUserId": "1", "Name": "Anna Jensen", "Email": "anna@firma.dk", "RowId": 1}
    item = {"Item": "10-0001", "Name": "Beslag pro", "CostPrice": 10.0, "SalesPrice1": 15.5, "Unit": "Piece",
            "Group": "Beslag"}
    row = {"QuotationLineLinkedDataItemId": 3, "QuotationLineLinkedDataItemData1": "10-0001",
           "QuotationLineLinkedDataItemData2": "Beslag pro", "QuotationLineLinkedDataItemData3": "Piece",
           "QuotationLineLinkedDataItemData4": "Beslag", "QuotationLineLinkedDataItemPrice": 15.5,
           "QuotationLineLinkedDataItemCostPrice": 10.0, "QuotationLineLinkedDataItemItemGroup": "Beslag"}
    delivery = {"DeliveryId": 20, "DeliveryOrganisationId": 1, "DeliveryNumber": "L-1", "DeliveryDescription": "Ordre",
                "DeliveryResponsible": 1, "DeliveryCurrencyName": "", "DeliveryErpStatus": "Synchronized",
                "DeliveryErpId": "1", "DeliveryCustom15": "Uniconta order 1", "DeliveryOrderValue": 31.0,
                "DeliveryOrderGmValue": 11.0}
    line = {"QuotationLineId": 30, "QuotationLineOpportunityId": 20, "QuotationLineData1": "10-0001",
            "QuotationLineData2": "Beslag pro", "QuotationLineQuantity": 2, "QuotationLinePrice": 15.5,
            "QuotationLineDiscount": 0, "QuotationLineCostPrice": 10.0, "QuotationLineMemo": "",
            "QuotationLineComment": "", "QuotationLineSortOrder": 0}
    order = {"OrderNumber": 1, "WebcrmDeliveryId": "20", "Account": "10000", "OurRef": "L-1", "Remark": "Ordre",
             "Employee": "AJ", "Total": 31.0, "Margin": 11.0}
    order_line = {"OrderNumber": 1, "LineNumber": 1, "RowId": 1, "WebcrmLineId": "30", "Item": "10-0001",
                  "Text": "Beslag pro", "Qty": 2.0, "Price": 15.5, "DiscountPct": 0.0, "CostPrice": 10.0}
    return Systems(orgs={1: org}, persons={5: person}, users={1: user}, active_users={1}, deliveries={20: delivery},
                   lines={20: [line]}, catalogue=[row], debtors=[debtor], items={"10-0001": item}, orders=[order],
                   order_lines={1: [order_line]}, employees=[employee], contacts=[contact], invoices=[])


def check(conn: Any, systems: Systems, walk: Walk | None = None) -> Checker:
    return Checker(conn, systems, walk or Walk()).run()


def test_a_consistent_world_has_no_finding_and_every_pair_is_compared(conn: Any) -> None:
    checker = check(conn, world())
    assert [f.line() for f in checker.findings] == []
    assert dict(checker.pairs) == {"organisations": 1, "items": 1, "users": 1, "persons": 1, "orders": 1}


def test_a_synced_field_that_differs_is_a_disagreement_with_both_values(conn: Any) -> None:
    s = world()
    s.debtors[0]["City"] = "Odense C"
    s.contacts[0]["Title"] = "Direktør"
    s.employees[0]["Email"] = "anna.j@firma.dk"
    found = {(f.kind, f.flow, f.prop, f.webcrm, f.uniconta) for f in check(conn, s).findings}
    assert found == {("disagreement", "organisations", "city", "Aarhus C", "Odense C"),
                     ("disagreement", "persons", "title", "Indkøber", "Direktør"),
                     ("disagreement", "users", "email", "anna@firma.dk", "anna.j@firma.dk")}


def test_missing_and_stray_records_are_found(conn: Any) -> None:
    s = world()
    s.contacts.clear()  # the person is active on a linked organisation: it should have its contact
    s.catalogue.clear()  # the item is not blocked: it should be in the catalogue
    s.orders.append({"OrderNumber": 9, "WebcrmDeliveryId": "99"})  # its delivery never existed
    kinds = sorted((f.kind, f.flow) for f in check(conn, s).findings)
    assert kinds == [("missing", "items"), ("missing", "persons"), ("stray", "orders")]


def test_duplicates_by_link_and_by_natural_key_are_found(conn: Any) -> None:
    s = world()
    s.catalogue.append(copy.deepcopy(s.catalogue[0]) | {"QuotationLineLinkedDataItemId": 4})
    s.debtors.append(copy.deepcopy(s.debtors[0]) | {"Account": "10001", "RowId": 2})
    s.employees.append(copy.deepcopy(s.employees[0]) | {"Number": "AJ2", "RowId": 2})
    s.contacts.append(copy.deepcopy(s.contacts[0]) | {"RowId": 8})
    duplicates = sorted(f.flow for f in check(conn, s).findings if f.kind == "duplicate")
    assert duplicates == ["items", "organisations", "persons", "users"]


def test_order_lines_totals_and_the_write_back_are_compared(conn: Any) -> None:
    s = world()
    s.order_lines[1][0]["Qty"] = 3.0
    s.orders[0]["Total"] = 46.5
    s.deliveries[20]["DeliveryErpStatus"] = "ReadyForSynchronization"
    props = {f.prop for f in check(conn, s).findings if f.flow == "orders"}
    assert props == {"line 30", "Total", "DeliveryErpStatus"}


def test_rules_that_keep_records_unsynced_are_named_not_failed(conn: Any) -> None:
    s = world()
    s.orgs[2] = {**s.orgs[1], "OrganisationId": 2, "OrganisationType": "Emne", "OrganisationExtraCustom1": "",
                 "OrganisationExtraCustom2": ""}
    s.persons[5]["PersonStatus"] = "Resigned"
    s.contacts.clear()
    checker = check(conn, s)
    assert checker.findings == []
    rules = " | ".join(u.rule for u in checker.unsynced)
    assert "not a customer" in rules and "resigned" in rules


def test_a_resigned_person_whose_contact_stays_is_stray(conn: Any) -> None:
    s = world()
    s.persons[5]["PersonStatus"] = "Resigned"
    assert [(f.kind, f.flow) for f in check(conn, s).findings] == [("stray", "persons")]
