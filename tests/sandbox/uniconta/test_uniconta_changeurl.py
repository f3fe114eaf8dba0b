"""Change URL: TableChangeEvent rows and the calls the sandbox makes to them (real HTTP)."""

from __future__ import annotations

import requests


def hook(api, url: str, table_id: int = 50, **fields) -> dict:
    return api.make("TableChangeEventClient", {"TableId": table_id, "Url": url, **fields})


def flush(api) -> None:
    assert api.admin("POST", "webhooks/flush").get_json() == {"flushed": True}


def test_get_calls_for_insert_update_delete(api, receiver):
    hook(api, receiver.url + "/webhook/10/uniconta")
    created = api.debtor("1000")
    api.update("DebtorClient", {"Account": "1000", "Name": "Ny"})
    api.delete("DebtorClient", {"Account": "1000"})
    calls = receiver.wait_for(3)
    assert [c["method"] for c in calls] == ["GET"] * 3
    assert [c["path"] for c in calls] == ["/webhook/10/uniconta"] * 3
    assert [c["args"] for c in calls] == [
        {"CompanyId": "1234", "Table": "Debtor", "Key": "1000", "RowId": str(created["RowId"]), "Action": a}
        for a in ("add", "update", "delete")
    ]
    assert calls[0]["query"].startswith("CompanyId=1234&Table=Debtor&Key=1000&RowId=1&Action=add")
    assert all(c["json"] is None for c in calls)


def test_post_carries_the_record(api, receiver):
    api.admin("PUT", "userfields/InvItem", [{"Name": "WebshopId", "Type": "String"}])
    hook(api, receiver.url + "/items", table_id=23, UsePost=True)
    api.make("InvItemClientUser", {"Item": "A-1", "Name": "Skrue", "SalesPrice1": 2.5, "WebshopId": "w-1"})
    api.update("InvItemClient", {"Item": "A-1", "Name": "Skrue rustfri", "SalesPrice1": 3})
    api.delete("InvItemClient", {"Item": "A-1"})
    calls = receiver.wait_for(3)
    assert [c["method"] for c in calls] == ["POST"] * 3
    assert [c["args"]["Action"] for c in calls] == ["add", "update", "delete"]
    assert calls[0]["json"]["Item"] == "A-1" and calls[0]["json"]["Name"] == "Skrue"
    assert calls[0]["json"]["WebshopId"] == "w-1" and calls[0]["json"]["RowId"] == 1
    assert calls[1]["json"]["Name"] == "Skrue rustfri" and calls[1]["json"]["SalesPrice1"] == 3.0
    assert calls[1]["json"]["WebshopId"] == "w-1"  # kept: the update went through the plain entity
    assert calls[2]["json"]["Name"] == "Skrue rustfri"  # the last state of a deleted record


def test_argument_is_appended_verbatim(api, receiver):
    hook(api, receiver.url + "/hook?conn=10", Argument="token=abc&x=1")
    api.debtor("1000")
    [call] = receiver.wait_for(1)
    assert call["query"] == "conn=10&CompanyId=1234&Table=Debtor&Key=1000&RowId=1&Action=add&token=abc&x=1"


def test_operation_quirk(api, receiver):
    response = api.admin("PUT", "quirks", {"webhook_action_param": "Operation",
                                           "webhook_action_values": "Insert/Update/Delete"})
    assert response.get_json()["webhook_action_param"] == "Operation"
    hook(api, receiver.url + "/hook", table_id=60)
    api.debtor("1000")
    contact = api.make("ContactClient", {"DCAccount": "1000", "Name": "Mette"})
    api.update("ContactClient", {"RowId": contact["RowId"], "DCAccount": "1000", "Name": "Mette H"})
    api.delete("ContactClient", {"RowId": contact["RowId"]})
    calls = receiver.wait_for(3)
    assert [c["args"].get("Operation") for c in calls] == ["Insert", "Update", "Delete"]
    assert all("Action" not in c["args"] for c in calls)
    assert calls[0]["args"]["Table"] == "Contact" and calls[0]["args"]["Key"] == str(contact["RowId"])


def test_bad_quirks_are_400(api):
    for body in ({"webhook_action_param": "Verb"}, {"webhook_action_values": "a/b"}, {"nope": 1},
                 {"odata_page_size": 0}, {"write_response": "maybe"}, {"omit_nulls": "yes"},
                 {"odata_default_format": "csv"}, ["x"]):
        response = api.admin("PUT", "quirks", body)
        assert response.status_code == 400 and "error" in response.get_json()


def test_only_watched_tables_and_matching_rows_fire(api, receiver):
    hook(api, receiver.url + "/debtor", table_id=50)
    hook(api, receiver.url + "/employee", table_id=95)
    hook(api, receiver.url + "/all", table_id=0)
    api.debtor("1000")
    api.make("EmployeeClient", {"Number": "SK"})
    api.make("DebtorOrderClient", {"Account": "1000"})          # transactions: no Change URL
    api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Text": "x"})
    flush(api)
    calls = receiver.wait_for(4)
    assert sorted((c["path"], c["args"]["Table"]) for c in calls) == [
        ("/all", "Debtor"), ("/all", "Employee"), ("/debtor", "Debtor"), ("/employee", "Employee")]


def test_unchanged_update_does_not_fire(api, receiver):
    hook(api, receiver.url + "/hook")
    api.debtor("1000")
    record = api.get("DebtorClient").get_json()[0]
    api.update("DebtorClient", record)
    flush(api)
    assert len(receiver.wait_for(2, timeout=0.3)) == 1


def test_failed_delivery_sets_has_error_and_success_clears_it(api, receiver):
    receiver.status = 500
    row = hook(api, receiver.url + "/hook")
    assert "LastEvent" not in row
    api.debtor("1000")
    flush(api)
    [stored] = api.get("TableChangeEventClient").get_json()
    assert stored["HasError"] is True and stored["ErrorMessage"] == "HTTP 500" and stored["LastEvent"]
    receiver.status = 200
    api.debtor("2000")
    flush(api)
    [stored] = api.get("TableChangeEventClient").get_json()
    assert stored["HasError"] is False and "ErrorMessage" not in stored


def test_unreachable_url_sets_has_error(api):
    hook(api, "http://127.0.0.1:9/closed")
    api.debtor("1000")
    flush(api)
    [stored] = api.get("TableChangeEventClient").get_json()
    assert stored["HasError"] is True and "Connection" in stored["ErrorMessage"]
    deliveries = api.admin("GET", "webhooks").get_json()["deliveries"]
    assert len(deliveries) == 1 and "error" in deliveries[0]


def test_has_error_is_read_only_and_rows_can_be_managed(api, receiver):
    row = hook(api, receiver.url + "/a", HasError=True, ErrorMessage="x")
    assert row["HasError"] is False and "ErrorMessage" not in row
    api.update("TableChangeEventClient", {"RowId": row["RowId"], "TableId": 23, "Url": receiver.url + "/b"})
    [stored] = api.get("TableChangeEventClient", Name="TableId", Value="23").get_json()
    assert stored["Url"].endswith("/b")
    api.delete("TableChangeEventClient", {"RowId": row["RowId"]})
    api.item("X")
    flush(api)
    assert receiver.wait_for(1, timeout=0.2) == []


def test_ui_edits_fire_like_api_writes(api, receiver):
    hook(api, receiver.url + "/hook", UsePost=True)
    response = api.admin("POST", "ui/Debtor", {"Account": "1000", "Name": "Fra UI", "City": "Vejle"})
    assert response.status_code == 200 and response.get_json()["RowId"] == 1
    response = api.admin("PUT", "ui/DebtorClient", {"Account": "1000", "Phone": "+45 70 00 00 00"})
    assert response.get_json()["City"] == "Vejle"  # partial merge keeps the rest
    assert api.admin("DELETE", "ui/Debtor", {"RowId": 1}).status_code == 200
    calls = receiver.wait_for(3)
    assert [c["args"]["Action"] for c in calls] == ["add", "update", "delete"]
    assert calls[1]["json"]["Phone"] == "+45 70 00 00 00" and calls[1]["json"]["City"] == "Vejle"


def test_ui_errors_use_the_uniconta_shape(api):
    response = api.admin("POST", "ui/Debtor", {"Name": "x"})
    assert response.status_code == 400 and response.get_json()["ErrorCode"] == "FieldCannotBeBlank"
    response = api.admin("PUT", "ui/Debtor", {"Account": "nope"})
    assert response.status_code == 404 and response.get_json()["ErrorCode"] == "CouldNotFind"
    assert api.admin("POST", "ui/Nope", {}).status_code == 404
    assert api.admin("POST", "ui/Debtor", None).status_code == 400


def test_webhook_faults_apply(api, receiver):
    api.admin("PUT", "faults", {"webhook_duplicate_rate": 1.0})
    hook(api, receiver.url + "/hook")
    api.debtor("1000")
    flush(api)
    calls = receiver.wait_for(2)
    assert len(calls) == 2 and calls[0]["query"] == calls[1]["query"]


def test_change_url_over_a_live_server(live, receiver):
    base = live()
    auth = ("001234/sandbox", "sandbox")
    response = requests.post(f"{base}/api/Entities/Insert/TableChangeEventClient",
                             json={"TableId": 95, "Url": receiver.url + "/emp", "Argument": "secret=s3"},
                             auth=auth, timeout=5)
    assert response.status_code == 200
    requests.post(f"{base}/api/Entities/Insert/EmployeeClient", json={"Number": "AB", "Name": "Anne Bæk"},
                  auth=auth, timeout=5)
    [call] = receiver.wait_for(1)
    assert call["args"] == {"CompanyId": "1234", "Table": "Employee", "Key": "AB", "RowId": "1", "Action": "add",
                            "secret": "s3"}


