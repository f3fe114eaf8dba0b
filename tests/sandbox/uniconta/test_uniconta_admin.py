"""The /_sandbox admin API as installed on the Uniconta app: seeders, reset, state, faults, call log."""

from __future__ import annotations

import time

from sandbox.common import demo, fake
from tests.sandbox.uniconta.uniconta_helpers import API_AUTH


def test_seeders_create_valid_danish_records(api):
    employees = api.admin("POST", "seed", {"entity": "Employees", "count": 3, "seed": 1}).get_json()["created"]
    debtors = api.admin("POST", "seed", {"entity": "Debtors", "count": 5, "seed": 1}).get_json()["created"]
    items = api.admin("POST", "seed", {"entity": "InvItems", "count": 5, "seed": 1}).get_json()["created"]
    contacts = api.admin("POST", "seed", {"entity": "Contacts", "count": 4, "seed": 1}).get_json()["created"]
    assert debtors == ["10000", "10001", "10002", "10003", "10004"]
    assert len(set(items)) == 5 and len(set(employees)) == 3 and len(contacts) == 4
    rows = api.get("DebtorClient").get_json()
    assert all(fake.is_valid_cvr(r["CompanyRegNo"]) for r in rows)
    assert all(r["Employee"] in employees for r in rows)
    assert all(fake.is_valid_ean13(r["EAN"]) for r in rows if "EAN" in r)
    for contact in api.get("ContactClient").get_json():
        assert contact["DCAccount"] in debtors and "@" in contact["Email"]
    for item in api.get("InvItemClient").get_json():
        assert item["SalesPrice1"] > item["CostPrice"] > 0
    # the same seed gives the same data
    again = api.admin("POST", "seed", {"entity": "Debtors", "count": 1, "seed": 1}).get_json()["created"]
    assert again == ["10005"]
    assert api.get("DebtorClient").get_json()[-1]["Name"] == rows[0]["Name"]


def test_demo_seeder_holds_the_items_the_webcrm_demo_orders_and_anna(api):
    created = api.admin("POST", "seed", {"entity": "Demo", "count": 1}).get_json()["created"]
    assert created == [item["number"] for item in demo.items()] + ["AJ"]
    items = {i["Item"]: i for i in api.get("InvItemClient").get_json()}
    assert all(items[item["number"]]["SalesPrice1"] == item["price"] > 0 for item in demo.items())
    anna = api.get("EmployeeClient").get_json()
    assert [(e["Number"], e["Email"]) for e in anna] == [("AJ", demo.ANNA["email"])]
    assert api.admin("POST", "seed", {"entity": "Demo", "count": 1}).get_json()["created"] == []  # once


def test_contacts_need_debtors_and_unknown_seeders_are_400(api):
    response = api.admin("POST", "seed", {"entity": "Contacts", "count": 1})
    assert response.status_code == 400 and "Debtors first" in response.get_json()["error"]
    assert api.admin("POST", "seed", {"entity": "Nope", "count": 1}).status_code == 400


def test_seeding_does_not_fire_change_urls(api, receiver):
    api.make("TableChangeEventClient", {"TableId": 0, "Url": receiver.url})
    api.admin("POST", "seed", {"entity": "Debtors", "count": 2})
    api.admin("POST", "webhooks/flush")
    assert receiver.wait_for(1, timeout=0.2) == []


def test_reset_restores_defaults(api):
    api.debtor("1000")
    api.admin("PUT", "quirks", {"webhook_action_param": "Operation"})
    api.admin("PUT", "userfields/Debtor", [{"Name": "X"}])
    assert api.admin("POST", "reset").status_code == 200
    assert api.get("DebtorClient").get_json() == []
    assert api.admin("GET", "quirks").get_json()["webhook_action_param"] == "Action"
    assert api.admin("GET", "userfields/Debtor").get_json() == []
    assert api.debtor("1000")["RowId"] == 1  # sequences start again


def test_state_round_trip_rebuilds_indexes(api):
    api.debtor("1000")
    api.make("DebtorOrderClient", {"Account": "1000"})
    state = api.admin("GET", "state").get_json()
    api.delete("DebtorOrderClient", {"OrderNumber": 1})
    api.delete("DebtorClient", {"Account": "1000"})
    api.debtor("2000")
    assert api.admin("PUT", "state", state).status_code == 200
    accounts = [r["Account"] for r in api.get("DebtorClient").get_json()]
    assert accounts == ["1000"]
    # the restored order refers to the restored debtor, and the key index knows the old keys
    response = api.delete("DebtorClient", {"Account": "1000"})
    assert response.get_json()["ErrorCode"] == "CouldNotDeleteRecordThatIsReferred"
    assert api.insert("DebtorClient", {"Account": "1000"}).get_json()["ErrorCode"] == "RecordExists"
    assert api.debtor("2000")["RowId"] == 2


def test_hand_written_state_without_sequences(api):
    record = {"Account": "1000", "Name": "Håndskrevet", "RowId": 1, "KeyStr": "1000"}
    assert api.admin("PUT", "state", {"tables": {"Debtor": {"1": record}}}).status_code == 200
    assert api.get("DebtorClient").get_json()[0]["Name"] == "Håndskrevet"
    assert api.debtor("2000")["RowId"] == 2  # RowId 1 is taken
    assert api.admin("PUT", "state", {"tables": []}).status_code == 400


def test_garbage_state_never_gives_500(api):
    tables = {
        "Debtor": {"x": {"Account": None, "Name": ["no"], "RowId": "abc"}, "7": {"Created": 5, "CreditMax": "lots"}},
        "DebtorOrder": {"1": {"OrderNumber": None, "Account": "7"}},
        "DebtorOrderLine": {"1": {"OrderNumber": 1, "LineNumber": None, "Qty": "x"}},
        "Contact": {"1": {"DCType": None, "DCAccount": "7"}},
        "TableChangeEvent": {"1": {"Url": None, "TableId": "50"}},
    }
    assert api.admin("PUT", "state", {"tables": tables}).status_code == 200
    for entity in ("DebtorClient", "DebtorOrderClient", "DebtorOrderLineClient", "ContactClient",
                   "TableChangeEventClient"):
        assert api.get(entity).status_code == 200
        assert api.odata(entity, **{"$orderby": "RowId desc"}).status_code == 200
    api.debtor("1000")
    api.make("DebtorOrderLineClient", {"OrderNumber": 1, "Qty": 1, "Price": 1})
    api.delete("DebtorClient", {"Account": "7"})
    api.delete("DebtorOrderClient", {"OrderNumber": 1})


def test_company_info(api):
    api.debtor("1000")
    info = api.admin("GET", "company").get_json()
    assert info["CompanyId"] == 1234 and info["users"] == ["sandbox"] and info["rows"]["Debtor"] == 1
    assert "DebtorClientUser" in info["entities"]
    assert api.admin("GET", "health").get_json() == {"status": "ok", "name": "uniconta"}


def test_injected_faults_use_the_error_shape(api):
    api.admin("PUT", "faults", {"error_rate": 1.0, "error_status": 503})
    response = api.client.get("/api/Entities/DebtorClient", headers=API_AUTH)
    assert response.status_code == 503
    assert response.get_json() == {"ErrorCode": "Exception", "Message": "The service is unavailable", "Field": None}
    api.admin("PUT", "faults", {"error_status": 429})
    response = api.client.get("/odata/1234/DebtorClient")  # before authentication
    assert response.status_code == 429 and response.headers["Retry-After"] == "1"
    api.admin("PUT", "faults", {"error_rate": 0, "error_path": ""})
    assert api.get("DebtorClient").status_code == 200


def test_call_log_names_the_user_and_rule(api):
    api.get("DebtorClient")
    api.insert("DebtorClient", {"Account": "1"})
    api.client.get("/odata/1234/DebtorClient", headers={"Authorization": "Basic c2FuZGJveDpzYW5kYm94"})
    body = api.admin("GET", "calls").get_json()
    assert [c["user"] for c in body["calls"]] == ["sandbox"] * 3
    assert body["counters"]["POST /api/Entities/Insert/<entity>"] == 1
    assert body["counters"]["GET /odata/<segment>/<entity>"] == 1


def test_ten_thousand_records_stay_fast(api):
    started = time.perf_counter()
    response = api.insert_list("DebtorClient", [{"Account": str(100000 + i), "Name": f"Kunde {i}",
                                                 "City": "Aarhus C" if i % 2 else "Vejle"} for i in range(10_000)])
    assert response.status_code == 200 and len(response.get_json()) == 10_000
    api.admin("POST", "seed", {"entity": "Debtors", "count": 200})
    for i in range(200):  # single inserts and key lookups do not scan the table
        api.insert("ContactClient", {"DCAccount": str(100000 + i), "Name": "P"})
    body = api.odata("DebtorClient", **{"$filter": "City eq 'Vejle' and Account ge '105000'",
                                        "$orderby": "Name desc", "$top": "5"}).get_json()
    assert len(body["value"]) == 5
    assert api.get("DebtorClient", Name="Account", Value="109999").get_json()[0]["Name"] == "Kunde 9999"
    assert api.delete("DebtorClient", {"Account": "100000"}).status_code == 400  # referred by a contact
    assert time.perf_counter() - started < 10
