"""The Entities API: Insert, InsertList, Update (full replacement), Delete, GET with ?Name=&Value=."""

from __future__ import annotations

import json

import pytest

from sandbox.uniconta.entities import TABLES, entity_names
from tests.sandbox.uniconta.uniconta_helpers import API_AUTH

ERROR_KEYS = {"ErrorCode", "Message", "Field"}


def error(response, status: int, code: str, field: str | None = "<any>") -> dict:
    assert response.status_code == status, response.get_data(as_text=True)
    body = response.get_json()
    assert set(body) == ERROR_KEYS
    assert body["ErrorCode"] == code
    if field != "<any>":
        assert body["Field"] == field
    return body


# -- insert / read ------------------------------------------------------------------------------
def test_insert_returns_the_record_with_server_fields(api):
    body = api.debtor("1000", Address1="Nørregade 1", ZipCode="8000", City="Aarhus C", Country="Denmark",
                      Phone="+45 12 34 56 78", CompanyRegNo="12345674", Currency="DKK", Vat="U25",
                      VatZone="Domestic", InvoiceEmail="faktura@x.dk", EAN="5790000000001", Payment="Netto8",
                      Group="Indland", Blocked=False)
    assert body["RowId"] == 1 and body["KeyStr"] == "1000"
    assert body["Created"].endswith("Z") and body["UpdatedAt"] == body["Created"]
    assert body["Name"] == "Kunde 1000" and body["Country"] == "Denmark" and body["CountryName"] == "Denmark"
    assert body["Currency"] == "DKK" and body["EAN"] == "5790000000001"
    assert "Address2" not in body  # null properties are left out (Postman article)
    [listed] = api.get("DebtorClient").get_json()
    assert listed == body
    assert api.client.get("/api/Entities/Read/DebtorClient", headers=API_AUTH).get_json() == [body]


def test_every_entity_can_be_listed_and_its_user_variant_exists(api):
    for name in entity_names():
        response = api.get(name)
        assert response.status_code == 200 and response.get_json() == [], name
    assert "TableChangeEventClientUser" not in entity_names()
    assert len(entity_names()) == len(TABLES) * 2 - 1  # TableChangeEvent has no ...User variant


def test_insert_of_each_writable_entity(api):
    api.debtor("1000")
    assert api.item("A-1")["Item"] == "A-1"
    employee = api.make("EmployeeClient", {"Number": "SK", "Name": "Søren Kjærgaard", "Title": "Sælger",
                                           "Email": "sk@firma.dk", "Mobil": "+45 20 30 40 50", "Group": "Salg",
                                           "Terminated": "2030-01-31"})
    assert employee["KeyStr"] == "SK" and employee["Terminated"] == "2030-01-31T00:00:00"
    assert employee["Blocked"] is False
    contact = api.make("ContactClient", {"DCType": 1, "DCAccount": "1000", "Name": "Mette Høj",
                                         "Email": "mette@kunde.dk", "Mobil": "+45 11 22 33 44", "Title": "Indkøber"})
    assert contact["KeyStr"] == str(contact["RowId"]) and contact["DCType"] == 1
    order = api.make("DebtorOrderClient", {"Account": "1000", "YourRef": "PO-1", "OurRef": "SK",
                                           "Remark": "Leveres fredag", "Employee": "SK"})
    assert order["OrderNumber"] == 1 and order["KeyStr"] == "1" and order["Total"] == 0.0
    line = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "A-1", "Qty": 2, "Price": 25})
    assert line["LineNumber"] == 1 and line["Total"] == 50.0 and line["CostPrice"] == 10.0
    hook = api.make("TableChangeEventClient", {"TableId": 50, "Url": "http://127.0.0.1:9/hook"})
    assert hook["HasError"] is False and hook["UsePost"] is False


def test_insert_list_inserts_all_and_returns_an_array(api):
    response = api.insert_list("InvItemClient", [{"Item": f"I-{i}", "Name": f"Vare {i}"} for i in range(5)])
    assert response.status_code == 200
    body = response.get_json()
    assert [r["Item"] for r in body] == [f"I-{i}" for i in range(5)]
    assert [r["RowId"] for r in body] == [1, 2, 3, 4, 5]


def test_insert_list_is_all_or_nothing(api):
    api.item("DUP")
    response = api.insert_list("InvItemClient", [{"Item": "NEW-1"}, {"Item": "DUP"}, {"Item": "NEW-2"}])
    body = error(response, 400, "RecordExists", "Item")
    assert body["Message"].startswith("[1]")
    assert [r["Item"] for r in api.get("InvItemClient").get_json()] == ["DUP"]
    error(api.insert_list("InvItemClient", {"Item": "X"}), 400, "NoSucces")
    error(api.insert_list("InvItemClient", [{"Item": "A"}, "nope"]), 400, "NoSucces")


def test_order_numbers_are_assigned_and_explicit_ones_respected(api):
    api.debtor("1000")
    assert api.make("DebtorOrderClient", {"Account": "1000", "OrderNumber": 2})["OrderNumber"] == 2
    assert api.make("DebtorOrderClient", {"Account": "1000"})["OrderNumber"] == 1
    assert api.make("DebtorOrderClient", {"Account": "1000", "OrderNumber": 0})["OrderNumber"] == 3
    error(api.insert("DebtorOrderClient", {"Account": "1000", "OrderNumber": 3}), 400, "RecordExists", "OrderNumber")


def test_line_numbers_are_assigned_per_order(api):
    api.debtor("1000")
    api.make("DebtorOrderClient", {"Account": "1000"})
    api.make("DebtorOrderClient", {"Account": "1000"})
    numbers = [api.make("DebtorOrderLineClient", {"OrderNumber": o, "Text": "x"})["LineNumber"] for o in (1, 1, 2, 1)]
    assert numbers == [1, 2, 1, 3]
    assert api.make("DebtorOrderLineClient", {"OrderNumber": 2, "LineNumber": 10})["LineNumber"] == 10
    error(api.insert("DebtorOrderLineClient", {"OrderNumber": 2, "LineNumber": 10}), 400, "RecordExists",
          "LineNumber")


# -- update -------------------------------------------------------------------------------------
def test_update_is_a_full_replacement(api):
    created = api.debtor("1000", Phone="111", City="Odense C", Blocked=True, CreditMax=5000)
    response = api.update("DebtorClient", {"RowId": created["RowId"], "Account": "1000", "Name": "Nyt Navn"})
    assert response.status_code == 200
    body = response.get_json()
    assert body["Name"] == "Nyt Navn"
    assert "Phone" not in body and "City" not in body  # omitted -> default (null, left out)
    assert body["Blocked"] is False and body["CreditMax"] == 0.0 and body["Country"] == "Denmark"
    assert body["RowId"] == created["RowId"] and body["Created"] == created["Created"]
    assert body["UpdatedAt"] > created["UpdatedAt"]
    assert api.get("DebtorClient").get_json() == [body]


def test_get_modify_put_round_trip_keeps_everything(api):
    created = api.debtor("1000", Phone="111", City="Odense C", Blocked=True)
    record = api.get("DebtorClient", Name="Account", Value="1000").get_json()[0]
    record["Phone"] = "222"
    body = api.update("DebtorClient", record).get_json()
    assert body["City"] == "Odense C" and body["Phone"] == "222" and body["Blocked"] is True
    assert body["RowId"] == created["RowId"]


def test_update_by_key_without_rowid(api):
    api.debtor("1000")
    body = api.update("DebtorClient", {"Account": "1000", "Name": "Via nøgle"}).get_json()
    assert body["Name"] == "Via nøgle"
    order_line = None
    api.make("DebtorOrderClient", {"Account": "1000"})
    order_line = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Qty": 1, "Price": 10})
    body = api.update("DebtorOrderLineClient", {"OrderNumber": 1, "LineNumber": 1, "Qty": 3, "Price": 10}).get_json()
    assert body["RowId"] == order_line["RowId"] and body["Total"] == 30.0


def test_update_cannot_change_the_key_but_may_omit_it(api):
    created = api.debtor("1000")
    error(api.update("DebtorClient", {"RowId": created["RowId"], "Account": "2000", "Name": "x"}), 400,
          "CouldNotSave", "Account")
    body = api.update("DebtorClient", {"RowId": created["RowId"], "Name": "uden nøgle"}).get_json()
    assert body["Account"] == "1000"


def test_update_without_changes_keeps_updated_at(api):
    created = api.debtor("1000")
    record = api.get("DebtorClient").get_json()[0]
    again = api.update("DebtorClient", record).get_json()
    assert again["UpdatedAt"] == created["UpdatedAt"]


def test_update_and_delete_of_unknown_records_are_404(api):
    error(api.update("DebtorClient", {"RowId": 99, "Name": "x"}), 404, "CouldNotFind", "RowId")
    error(api.update("DebtorClient", {"Account": "nope", "Name": "x"}), 404, "CouldNotFind", "Account")
    error(api.delete("DebtorClient", {"Account": "nope"}), 404, "CouldNotFind", "Account")
    error(api.delete("ContactClient", {"RowId": 5}), 404, "CouldNotFind", "RowId")
    error(api.update("DebtorClient", {"Name": "no key"}), 400, "FieldCannotBeBlank", "RowId")
    error(api.delete("ContactClient", {"Name": "no key"}), 400, "FieldCannotBeBlank", "RowId")
    error(api.update("DebtorOrderLineClient", {"OrderNumber": 1}), 400, "FieldCannotBeBlank", "RowId")
    error(api.update("DebtorOrderLineClient", {"OrderNumber": 1, "LineNumber": 4}), 404, "CouldNotFind")


# -- delete ---------------------------------------------------------------------------------------
def test_delete_by_rowid_and_by_key(api):
    a = api.debtor("1000")
    api.debtor("2000")
    response = api.delete("DebtorClient", {"RowId": a["RowId"]})
    assert response.status_code == 200 and response.get_json()["Account"] == "1000"
    assert api.delete("DebtorClient", {"Account": "2000"}).status_code == 200
    assert api.get("DebtorClient").get_json() == []
    # the key is free again
    assert api.debtor("1000")["RowId"] == 3


@pytest.mark.parametrize("referrer", ["order", "contact"])
def test_delete_of_a_referred_debtor_fails(api, referrer):
    api.debtor("1000")
    if referrer == "order":
        ref = api.make("DebtorOrderClient", {"Account": "1000"})
        entity, key = "DebtorOrderClient", {"OrderNumber": ref["OrderNumber"]}
    else:
        ref = api.make("ContactClient", {"DCType": 1, "DCAccount": "1000", "Name": "P"})
        entity, key = "ContactClient", {"RowId": ref["RowId"]}
    body = error(api.delete("DebtorClient", {"Account": "1000"}), 400, "CouldNotDeleteRecordThatIsReferred", "Account")
    assert "Blocked" in body["Message"]
    assert api.delete(entity, key).status_code == 200
    assert api.delete("DebtorClient", {"Account": "1000"}).status_code == 200


def test_delete_of_an_order_deletes_its_lines_and_an_item_on_lines_is_referred(api):
    api.debtor("1000")
    api.item("A-1")
    api.make("DebtorOrderClient", {"Account": "1000"})
    api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "A-1", "Qty": 1, "Price": 1})
    error(api.delete("InvItemClient", {"Item": "A-1"}), 400, "CouldNotDeleteRecordThatIsReferred", "Item")
    assert api.delete("DebtorOrderClient", {"OrderNumber": 1}).status_code == 200
    assert api.get("DebtorOrderLineClient").get_json() == []
    assert api.delete("InvItemClient", {"Item": "A-1"}).status_code == 200


# -- rules ----------------------------------------------------------------------------------------
def test_duplicate_key_is_record_exists(api):
    api.debtor("1000")
    body = error(api.insert("DebtorClient", {"Account": "1000", "Name": "igen"}), 400, "RecordExists", "Account")
    assert "1000" in body["Message"]
    api.make("EmployeeClient", {"Number": "SK"})
    error(api.insert("EmployeeClient", {"Number": "SK"}), 400, "RecordExists", "Number")


@pytest.mark.parametrize(("entity", "body", "field", "limit"), [
    ("DebtorClient", {"Account": "1" * 21}, "Account", 20),
    ("DebtorClient", {"Account": "1", "Name": "n" * 101}, "Name", 100),
    ("InvItemClient", {"Item": "i", "Name": "n" * 101}, "Name", 100),
    ("EmployeeClient", {"Number": "e", "Name": "n" * 101}, "Name", 100),
])
def test_too_long_values_are_could_not_save(api, entity, body, field, limit):
    result = error(api.insert(entity, body), 400, "CouldNotSave", field)
    assert result["Message"] == f"{field} exceeds {limit} characters"


def test_exactly_max_length_is_fine(api):
    body = api.make("DebtorClient", {"Account": "1" * 20, "Name": "æ" * 100})
    assert len(body["Name"]) == 100


@pytest.mark.parametrize(("entity", "body", "field"), [
    ("DebtorClient", {"Name": "uden konto"}, "Account"),
    ("DebtorClient", {"Account": "", "Name": "tom"}, "Account"),
    ("DebtorClient", {"Account": None}, "Account"),
    ("InvItemClient", {"Name": "x"}, "Item"),
    ("EmployeeClient", {"Name": "x"}, "Number"),
    ("TableChangeEventClient", {"TableId": 50}, "Url"),
])
def test_blank_required_fields(api, entity, body, field):
    error(api.insert(entity, body), 400, "FieldCannotBeBlank", field)


def test_order_and_contact_need_an_existing_debtor(api):
    error(api.insert("DebtorOrderClient", {"Account": "nope"}), 400, "AccountIsMissing", "Account")
    error(api.insert("DebtorOrderClient", {"YourRef": "x"}), 400, "AccountIsMissing", "Account")
    error(api.insert("ContactClient", {"DCType": 1, "DCAccount": "nope"}), 400, "AccountIsMissing", "DCAccount")
    error(api.insert("ContactClient", {"DCType": 1}), 400, "FieldCannotBeBlank", "DCAccount")
    error(api.insert("ContactClient", {"DCType": 7, "DCAccount": "x"}), 400, "CouldNotSave", "DCType")
    # creditor / prospect contacts are not checked against debtors
    assert api.make("ContactClient", {"DCType": 2, "DCAccount": "K-1", "Name": "Lev"})["DCType"] == 2


def test_order_lines_need_an_existing_order_and_item(api):
    api.debtor("1000")
    api.make("DebtorOrderClient", {"Account": "1000"})
    error(api.insert("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "GHOST", "Qty": 1}), 400, "CouldNotFind",
          "Item")
    error(api.insert("DebtorOrderLineClient", {"OrderNumber": 77, "Qty": 1}), 400, "CouldNotFind", "OrderNumber")
    error(api.insert("DebtorOrderLineClient", {"Qty": 1}), 400, "FieldCannotBeBlank", "OrderNumber")
    api.item("A-1")
    line = api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Item": "A-1", "Qty": 1, "Price": 5})
    error(api.update("DebtorOrderLineClient", {"RowId": line["RowId"], "Item": "GHOST"}), 400, "CouldNotFind", "Item")


def test_change_url_rows_need_an_absolute_http_url(api):
    error(api.insert("TableChangeEventClient", {"TableId": 50, "Url": "ftp://x/y"}), 400, "CouldNotSave", "Url")
    error(api.insert("TableChangeEventClient", {"TableId": 50, "Url": "/relative"}), 400, "CouldNotSave", "Url")
    error(api.insert("TableChangeEventClient", {"TableId": -1, "Url": "http://x/"}), 400, "CouldNotSave", "TableId")


def test_invoices_are_read_only(api):
    for call in (api.insert, api.update, api.delete):
        error(call("DebtorInvoiceClient", {"InvoiceNumber": 1}), 400, "NoRights")


# -- values and types -------------------------------------------------------------------------------
def test_lenient_json_conversions(api):
    body = api.make("InvItemClient", {"Item": 4711, "Name": "tal", "CostPrice": "12.5", "SalesPrice1": 20,
                                      "Blocked": "true", "Unit": "piece"})
    assert body["Item"] == "4711" and body["CostPrice"] == 12.5 and body["SalesPrice1"] == 20.0
    assert body["Blocked"] is True and body["Unit"] == "Piece"


@pytest.mark.parametrize(("field", "value"), [
    ("CostPrice", "abc"), ("CostPrice", True), ("CostPrice", {"a": 1}), ("Name", ["x"]), ("Blocked", "yes"),
    ("Blocked", 2), ("Unit", "Furlong"), ("Unit", 3), ("Weight", [1]),
])
def test_wrong_types_are_400_could_not_save(api, field, value):
    body = error(api.insert("InvItemClient", {"Item": "X", field: value}), 400, "CouldNotSave", field)
    assert field in body["Message"]


@pytest.mark.parametrize(("entity", "field", "value"), [
    ("DebtorOrderClient", "OrderNumber", 1.5), ("DebtorOrderClient", "OrderNumber", "1x"),
    ("DebtorOrderClient", "OrderNumber", True), ("DebtorOrderClient", "DeliveryDate", "31-12-2024"),
    ("DebtorOrderClient", "DeliveryDate", 20240101), ("DebtorClient", "Country", "Atlantis"),
    ("DebtorOrderClient", "OrderNumber", 10**30), ("DebtorOrderClient", "Currency", "Kroner"),
])
def test_more_wrong_types(api, entity, field, value):
    api.debtor("1000")
    error(api.insert(entity, {"Account": "1000", field: value}), 400, "CouldNotSave", field)


def test_unknown_keys_are_ignored_and_property_names_are_case_insensitive(api):
    body = api.make("DebtorClient", {"account": "1000", "NAME": "Små bogstaver", "NoSuchField": 1, "_Account": "x",
                                     "RowId": 999, "CurBalance": 5})
    assert body["Account"] == "1000" and body["Name"] == "Små bogstaver"
    assert "NoSuchField" not in body and body["RowId"] == 1 and body["CurBalance"] == 0.0


def test_dates_are_normalised(api):
    api.debtor("1000")
    body = api.make("DebtorOrderClient", {"Account": "1000", "DeliveryDate": "2024-12-24T15:30:00+01:00"})
    assert body["DeliveryDate"] == "2024-12-24T00:00:00"
    body = api.make("DebtorOrderClient", {"Account": "1000", "DeliveryDate": "0001-01-01T00:00:00"})
    assert "DeliveryDate" not in body


def test_omit_nulls_quirk_shows_every_property(api):
    api.admin("PUT", "quirks", {"omit_nulls": False})
    body = api.debtor("1000")
    assert body["Address2"] is None and "DeliveryCountry" in body


def test_write_response_quirk_gives_204(api):
    api.admin("PUT", "quirks", {"write_response": "empty"})
    response = api.insert("DebtorClient", {"Account": "1000"})
    assert response.status_code == 204 and response.data == b""
    assert api.update("DebtorClient", {"Account": "1000", "Name": "x"}).status_code == 204
    assert api.delete("DebtorClient", {"Account": "1000"}).status_code == 204


# -- GET ?Name=&Value= ------------------------------------------------------------------------------
def test_filter_by_name_and_value(api):
    api.debtor("1000", City="Aarhus C", Blocked=True, CreditMax=100)
    api.debtor("2000", City="Odense C")
    api.debtor("2001", City="Aarhus C")

    def accounts(**params):
        response = api.get("DebtorClient", **params)
        assert response.status_code == 200
        return [r["Account"] for r in response.get_json()]

    assert accounts(Name="Account", Value="2001") == ["2001"]
    assert accounts(Name="city", Value="Aarhus C") == ["1000", "2001"]
    assert accounts(Name="City", Value="aarhus c") == []  # exact value
    assert accounts(Name="Blocked", Value="true") == ["1000"]
    assert accounts(Name="CreditMax", Value="100") == ["1000"]
    assert accounts(Name="RowId", Value="2") == ["2000"]
    assert accounts(Name="Phone", Value="") == ["1000", "2000", "2001"]
    created = api.get("DebtorClient").get_json()[0]["Created"]
    assert accounts(Name="Created", Value=created) == ["1000"]
    error(api.get("DebtorClient", Name="Nope", Value="1"), 400, "CouldNotFind", "Nope")
    error(api.get("DebtorClient", Name="RowId", Value="abc"), 400, "NoSucces", "RowId")
    error(api.get("DebtorClient", Name="Blocked", Value="maybe"), 400, "NoSucces")
    error(api.get("DebtorClient", Name="Created", Value="yesterday"), 400, "NoSucces")
    error(api.get("DebtorClient", Value="1"), 400, "NoSucces", "Name")


# -- bad requests never 500 -------------------------------------------------------------------------
def test_unknown_entity_is_404(api):
    for response in (api.get("NopeClient"), api.insert("NopeClient", {}), api.update("Debtor", {}),
                     api.odata("NopeClient")):
        error(response, 404, "CouldNotFind", None)


def test_malformed_bodies(api):
    for raw in (b"{not json", b"", b"   ", b"\xff\xfe", b"[1,", b"null", b"42", b'"text"'):
        response = api.client.post("/api/Entities/Insert/DebtorClient", data=raw, headers=API_AUTH,
                                   content_type="application/json")
        error(response, 400, "NoSucces")
    response = api.client.put("/api/Entities/Update/DebtorClient", data=json.dumps([{"Account": "1"}]),
                              headers=API_AUTH)
    error(response, 400, "NoSucces")


def test_wrong_methods_and_paths(api):
    for method, path in (("DELETE", "/api/Entities/DebtorClient"), ("GET", "/api/Entities/Insert/DebtorClient"),
                         ("PATCH", "/api/Entities/Update/DebtorClient"), ("POST", "/odata/1234/DebtorClient")):
        response = api.client.open(path, method=method, headers=API_AUTH)
        assert response.status_code == 405, (method, path)
        assert set(response.get_json()) == ERROR_KEYS
    response = api.client.get("/api/nothing/here", headers=API_AUTH)
    error(response, 404, "CouldNotFind")


def test_paths_are_case_insensitive(api):
    response = api.client.post("/API/entities/INSERT/debtorclient", json={"Account": "1"}, headers=API_AUTH)
    assert response.status_code == 200
    assert api.client.get("/api/entities/read/DEBTORCLIENT", headers=API_AUTH).get_json()[0]["Account"] == "1"
    assert api.client.get("/ODATA/1234/DebtorClient", headers={**API_AUTH, "Accept": "application/json"}) \
        .status_code == 200


def test_no_request_shape_gives_a_500(api):
    bodies = [None, {}, [], "x", 1, {"RowId": "abc"}, {"RowId": [1]}, {"Account": {"x": 1}}, [{"Account": 1}],
              {"OrderNumber": -1, "Account": "x"}, {"Url": 5, "TableId": "x"}, {"DCType": None}]
    for entity in [*entity_names(), "Nope"]:
        for verb, method in (("Insert", "POST"), ("InsertList", "POST"), ("Update", "PUT"), ("Delete", "DELETE")):
            for body in bodies:
                response = api.client.open(f"/api/Entities/{verb}/{entity}", method=method, json=body,
                                           headers=API_AUTH)
                assert response.status_code < 500, (entity, verb, body, response.get_data(as_text=True))
                if response.status_code >= 400:
                    assert set(response.get_json()) == ERROR_KEYS
