"""User-defined fields: defined per table through admin, visible as plain keys on ...ClientUser only."""

from __future__ import annotations

import pytest

from tests.sandbox.uniconta.uniconta_helpers import Api, make_app

FIELDS = [{"Name": "WebcrmId", "Type": "String"}, {"Name": "Score", "Type": "Double"},
          {"Name": "Vip", "Type": "Boolean"}, {"Name": "Visits", "Type": "Int"}, {"Name": "Since", "Type": "Date"}]


def test_define_and_read_back(api):
    response = api.admin("PUT", "userfields/Debtor", FIELDS)
    assert response.status_code == 200 and response.get_json() == FIELDS
    assert api.admin("GET", "userfields/DebtorClient").get_json() == FIELDS
    everything = api.admin("GET", "userfields").get_json()
    assert everything["Debtor"] == FIELDS and everything["InvItem"] == []


def test_user_fields_only_on_client_user(api):
    api.admin("PUT", "userfields/Debtor", FIELDS)
    body = api.make("DebtorClientUser", {"Account": "1000", "Name": "A", "WebcrmId": "42", "Score": 1.5, "Vip": True,
                                         "Visits": "3", "Since": "2024-02-01"})
    assert body["WebcrmId"] == "42" and body["Score"] == 1.5 and body["Vip"] is True and body["Visits"] == 3
    assert body["Since"] == "2024-02-01T00:00:00"
    [plain] = api.get("DebtorClient").get_json()
    assert "WebcrmId" not in plain and "Score" not in plain
    [user] = api.get("DebtorClientUser").get_json()
    assert user["WebcrmId"] == "42"
    assert api.get("DebtorClientUser", Name="webcrmid", Value="42").get_json() == [user]
    assert api.odata("DebtorClientUser", **{"$filter": "WebcrmId eq '42'"}).get_json()["value"] == [user]
    response = api.odata("DebtorClient", **{"$filter": "WebcrmId eq '42'"})
    assert response.status_code == 400


def test_user_fields_sent_to_the_plain_entity_are_ignored(api):
    api.admin("PUT", "userfields/Debtor", FIELDS)
    api.make("DebtorClient", {"Account": "1000", "WebcrmId": "42"})
    [user] = api.get("DebtorClientUser").get_json()
    assert "WebcrmId" not in user  # null, left out
    assert user["Score"] == 0.0 and user["Vip"] is False


def test_undefined_user_fields_are_silently_ignored(api):
    body = api.make("DebtorClientUser", {"Account": "1000", "WebcrmId": "42"})
    assert "WebcrmId" not in body


def test_update_through_plain_entity_keeps_user_fields(api):
    api.admin("PUT", "userfields/Debtor", FIELDS)
    created = api.make("DebtorClientUser", {"Account": "1000", "WebcrmId": "42", "Vip": True})
    api.update("DebtorClient", {"RowId": created["RowId"], "Name": "Nyt"})
    [user] = api.get("DebtorClientUser").get_json()
    assert user["WebcrmId"] == "42" and user["Vip"] is True and user["Name"] == "Nyt"
    # full replacement through ...User resets omitted user fields too
    api.update("DebtorClientUser", {"RowId": created["RowId"], "Name": "Nyt", "Vip": True})
    [user] = api.get("DebtorClientUser").get_json()
    assert "WebcrmId" not in user and user["Vip"] is True


def test_user_field_types_are_checked(api):
    api.admin("PUT", "userfields/InvItem", [{"Name": "Weight2", "Type": "Double"}])
    response = api.insert("InvItemClientUser", {"Item": "A", "Weight2": "heavy"})
    assert response.status_code == 400 and response.get_json()["Field"] == "Weight2"
    response = api.insert("InvItemClientUser", {"Item": "A", "Weight2": "2.5"})
    assert response.get_json()["Weight2"] == 2.5


def test_changing_a_type_resets_the_values(api):
    api.admin("PUT", "userfields/Employee", [{"Name": "Ext", "Type": "String"}])
    api.make("EmployeeClientUser", {"Number": "E1", "Ext": "abc"})
    api.admin("PUT", "userfields/Employee", [{"Name": "Ext", "Type": "Int"}])
    assert api.get("EmployeeClientUser").get_json()[0]["Ext"] == 0


def test_every_user_field_table(api):
    api.debtor("1000")
    api.make("DebtorOrderClient", {"Account": "1000"})
    for table, entity, body in (
        ("Debtor", "DebtorClientUser", {"Account": "2000"}),
        ("InvItem", "InvItemClientUser", {"Item": "I"}),
        ("DebtorOrder", "DebtorOrderClientUser", {"Account": "1000"}),
        ("DebtorOrderLine", "DebtorOrderLineClientUser", {"OrderNumber": 1}),
        ("Employee", "EmployeeClientUser", {"Number": "E"}),
        ("Contact", "ContactClientUser", {"DCType": 1, "DCAccount": "1000"}),
    ):
        api.admin("PUT", f"userfields/{table}", [{"Name": "Link", "Type": "String"}])
        assert api.make(entity, {**body, "Link": f"x-{table}"})["Link"] == f"x-{table}"


@pytest.mark.parametrize("body", [
    {"Name": "x"}, [{"Name": "has space"}], [{"Name": "Name"}], [{"Name": "A"}, {"Name": "a"}],
    [{"Name": "A", "Type": "Blob"}], ["A"], [{"Type": "String"}],
])
def test_bad_definitions_are_400(api, body):
    response = api.admin("PUT", "userfields/Debtor", body)
    assert response.status_code == 400 and "error" in response.get_json()


def test_unknown_or_unsupported_tables_are_400(api):
    assert api.admin("PUT", "userfields/Nope", []).status_code == 400
    assert api.admin("PUT", "userfields/TableChangeEvent", []).status_code == 400
    assert api.admin("GET", "userfields/Nope").status_code == 400


def test_default_user_fields_option_survives_reset():
    app = make_app(user_fields="Debtor:WebcrmId,Employee:WebcrmUserId:String")
    try:
        client = app.test_client()
        assert client.get("/_sandbox/userfields/Debtor").get_json() == [{"Name": "WebcrmId", "Type": "String"}]
        api = Api(client)
        assert api.make("DebtorClientUser", {"Account": "1", "WebcrmId": "7"})["WebcrmId"] == "7"
        client.put("/_sandbox/userfields/Debtor", json=[])
        client.post("/_sandbox/reset")
        assert client.get("/_sandbox/userfields/Debtor").get_json() == [{"Name": "WebcrmId", "Type": "String"}]
        assert client.get("/_sandbox/userfields/Employee").get_json()[0]["Name"] == "WebcrmUserId"
    finally:
        app.extensions["sandbox"].hooks.stop()
