"""The clients against our local sandboxes of both APIs (real HTTP, real processes)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
import requests

from sync.clients.errors import AuthError, Conflict, NotFound, Permanent, RateLimited
from sync.clients.uniconta import UnicontaClient, odata_literal
from sync.clients.webcrm import WebcrmClient, parse_time, sql_literal

pytestmark = pytest.mark.slow

AUTH_CODE = "sandbox-token"  # the sandbox's default account (docs/dev/sandbox-contract.md)


def admin(base: str, method: str, path: str, **kwargs) -> dict:
    response = requests.request(method, f"{base}/_sandbox{path}", timeout=10, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


# --- webCRM -------------------------------------------------------------------------------------------


@pytest.fixture
def wc(webcrm_sandbox: str) -> Iterator[str]:
    admin(webcrm_sandbox, "POST", "/reset")
    yield webcrm_sandbox
    admin(webcrm_sandbox, "POST", "/reset")  # leave no rate limit or quirk behind for other tests


@pytest.fixture
def observed() -> list:
    return []


@pytest.fixture
def webcrm(wc: str, observed: list) -> WebcrmClient:
    return WebcrmClient(wc, AUTH_CODE, page_size=3, observer=lambda *a: observed.append(a))


def test_webcrm_login_and_read(webcrm, wc, observed):
    admin(wc, "POST", "/seed", json={"entity": "Organisations", "count": 2, "seed": 1})
    orgs = list(webcrm.iter_all("Organisations"))
    assert len(orgs) == 2
    assert webcrm.get("Organisations", orgs[0]["OrganisationId"])["OrganisationName"] == orgs[0]["OrganisationName"]
    assert webcrm.auth_info()
    assert observed[0][:3] == ("POST", "/Auth/ApiLogin", 200)
    assert sum(1 for o in observed if o[1] == "/Auth/ApiLogin") == 1


def test_webcrm_wrong_auth_code(wc):
    with pytest.raises(AuthError):
        WebcrmClient(wc, "not-a-code").get("Organisations", 1)


def test_webcrm_crud_round_trip(webcrm):
    new_id = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "Østergaard Smed ApS"})
    assert isinstance(new_id, int)
    org = webcrm.get("Organisations", new_id)
    assert org["OrganisationName"] == "Østergaard Smed ApS"
    assert org["OrganisationUpdatedBy"] == "Integration"
    assert parse_time(org["OrganisationUpdatedAt"]) is not None

    webcrm.update("Organisations", new_id, {**org, "OrganisationCity": "Aarhus C"})
    assert webcrm.get("Organisations", new_id)["OrganisationCity"] == "Aarhus C"

    person_id = webcrm.create(
        "Persons", {"PersonId": 0, "PersonOrganisationId": new_id, "PersonFirstName": "Søren", "PersonLastName": "Kjær"}
    )
    assert webcrm.get("Persons", person_id)["PersonOrganisationId"] == new_id

    with pytest.raises(Permanent) as caught:  # PersonLastName is required
        webcrm.create("Persons", {"PersonId": 0, "PersonOrganisationId": new_id})
    assert caught.value.status == 400 and caught.value.message

    with pytest.raises(Permanent) as caught:  # no DELETE for organisations
        webcrm.delete("Organisations", new_id)
    assert caught.value.status == 405

    item = {f"QuotationLineLinkedDataItemData{i}": "x" for i in range(1, 10)}
    item_id = webcrm.create("QuotationLines/LinkedData", {"QuotationLineLinkedDataItemId": 0, **item})
    assert webcrm.get("QuotationLines/LinkedData", item_id)["QuotationLineLinkedDataItemData1"] == "x"
    webcrm.delete("QuotationLines/LinkedData", item_id)
    with pytest.raises(NotFound):
        webcrm.get("QuotationLines/LinkedData", item_id)


@pytest.mark.parametrize("shape", ["int", "none", "object"])
def test_webcrm_organisation_create_id_shapes(webcrm, wc, shape):
    admin(wc, "PUT", "/quirks", json={"organisation_post_returns": shape})
    new_id = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": f"Shape {shape}"})
    if shape == "none":
        assert new_id is None
    else:
        assert webcrm.get("Organisations", new_id)["OrganisationName"] == f"Shape {shape}"


def test_webcrm_paging(webcrm, wc, observed):
    admin(wc, "POST", "/seed", json={"entity": "Users", "count": 6, "seed": 2})
    users = list(webcrm.iter_all("Users"))
    ids = [u["UserId"] for u in users]
    assert len(ids) == len(set(ids)) >= 6
    pages = [o for o in observed if o[1] == "/Users"]
    assert len(pages) == len(ids) // 3 + 1


def test_webcrm_query_and_update_dates(webcrm):
    before = datetime.now(UTC) - timedelta(seconds=5)
    new_id = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "O'Brien & Co"})
    webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "Someone Else"})

    name = sql_literal("O'Brien & Co")
    rows = list(webcrm.query(f"SELECT * FROM Organisation WHERE OrganisationName = {name}"))
    assert [r["OrganisationId"] for r in rows] == [new_id]
    rows = list(webcrm.query(f"SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= {sql_literal(before)}"))
    assert len(rows) == 2

    changed = list(webcrm.find_organisations_by_update_dates(before, datetime.now(UTC) + timedelta(seconds=5)))
    assert new_id in [o["OrganisationId"] for o in changed]

    with pytest.raises(Permanent):
        list(webcrm.query("DROP TABLE Organisation"))


def test_webcrm_special_endpoints(webcrm):
    assert isinstance(webcrm.linked_setup(), dict)
    assert isinstance(webcrm.fields_metadata("Organisation"), list)
    assert webcrm.active_users()
    org = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "Lines A/S"})
    delivery = webcrm.create("Deliveries", {"DeliveryId": 0, "DeliveryOrganisationId": org})
    line = webcrm.create(
        "QuotationLines",
        {"QuotationLineId": 0, "QuotationLineOpportunityId": delivery, "QuotationLineQuantity": 2,
         "QuotationLinePrice": 10.5},
    )
    assert [ln["QuotationLineId"] for ln in webcrm.delivery_lines(delivery)] == [line]


def test_webcrm_hooks(webcrm):
    hook_id = webcrm.create_hook("Organisations", "http://127.0.0.1:9/hooks/webcrm", "Update")
    assert hook_id
    assert [h["Id"] for h in webcrm.hooks("Organisations")] == [hook_id]
    webcrm.delete_hook("Organisations", hook_id)
    assert webcrm.hooks("Organisations") == []


def test_webcrm_relogin_after_the_token_expired(webcrm, wc, observed):
    webcrm.active_users()
    admin(wc, "POST", "/auth/expire")
    webcrm.active_users()
    logins = [o for o in observed if o[1] == "/Auth/ApiLogin"]
    assert len(logins) == 2
    assert ("GET", "/Users/AllActive", 401) in [o[:3] for o in observed]


def test_webcrm_rate_limit_429(webcrm, wc):
    admin(wc, "PUT", "/auth", json={"rate_limit": 3})
    with pytest.raises(RateLimited) as caught:
        for _ in range(5):
            webcrm.get("Users", 1)
    assert caught.value.status == 429
    assert caught.value.retry_after and 0 < caught.value.retry_after <= 60
    assert caught.value.retryable


# --- Uniconta -----------------------------------------------------------------------------------------


@pytest.fixture
def uc(uniconta_sandbox: str) -> Iterator[str]:
    admin(uniconta_sandbox, "POST", "/reset")
    yield uniconta_sandbox
    admin(uniconta_sandbox, "POST", "/reset")


@pytest.fixture
def uniconta(uc: str, observed: list) -> UnicontaClient:
    return UnicontaClient(uc, 1234, "sandbox", "sandbox", observer=lambda *a: observed.append(a))


def test_uniconta_crud_round_trip(uniconta):
    stored = uniconta.insert("DebtorClient", {"Account": "1001", "Name": "Østergaard Smed ApS"})
    assert stored is not None and stored["RowId"]

    with pytest.raises(Conflict) as caught:
        uniconta.insert("DebtorClient", {"Account": "1001", "Name": "Again"})
    assert caught.value.code in ("RecordExists", "KeyExists")

    found = uniconta.get_one("DebtorClient", "Account", "1001")
    assert found is not None and found["Name"] == "Østergaard Smed ApS"
    uniconta.update("DebtorClient", {**found, "City": "Aarhus C"})
    assert uniconta.find("DebtorClient", "Account", "1001")[0]["City"] == "Aarhus C"

    with pytest.raises(Permanent) as caught:
        uniconta.insert("DebtorClient", {"Account": "1002", "Name": "x" * 101})
    assert (caught.value.code, caught.value.field) == ("CouldNotSave", "Name")

    uniconta.delete("DebtorClient", found)
    assert uniconta.get_one("DebtorClient", "Account", "1001") is None
    with pytest.raises(NotFound):
        uniconta.update("DebtorClient", found)


def test_uniconta_insert_list_and_missing_reference(uniconta):
    uniconta.insert("DebtorClient", {"Account": "2001", "Name": "Ordre ApS"})
    order = uniconta.insert("DebtorOrderClient", {"Account": "2001"})
    assert order is not None and order["OrderNumber"]
    with pytest.raises(NotFound) as caught:
        uniconta.insert("DebtorOrderLineClient", {"OrderNumber": order["OrderNumber"], "Item": "NOPE", "Qty": 1})
    assert caught.value.field == "Item"
    items = uniconta.insert_list("InvItemClient", [{"Item": "A1", "Name": "Bolt"}, {"Item": "A2", "Name": "Møtrik"}])
    assert items is not None and [i["Item"] for i in items] == ["A1", "A2"]


def test_uniconta_odata_paging_and_filters(uniconta, uc, observed):
    admin(uc, "PUT", "/quirks", json={"odata_page_size": 10})
    admin(uc, "POST", "/seed", json={"entity": "Debtors", "count": 25, "seed": 3})
    uniconta.insert("DebtorClient", {"Account": "9001", "Name": "O'Brien ApS"})

    rows = list(uniconta.odata("DebtorClient", orderby="Account"))
    assert len(rows) == 26 and len({r["Account"] for r in rows}) == 26
    assert len([o for o in observed if o[1] == "/odata/1234/DebtorClient"]) == 3

    name = odata_literal("O'Brien ApS")
    named = list(uniconta.odata("DebtorClient", filter=f"Name eq {name}"))
    assert [r["Account"] for r in named] == ["9001"]
    since = datetime.now(UTC) - timedelta(minutes=5)
    assert len(list(uniconta.odata("DebtorClient", filter=f"UpdatedAt ge {odata_literal(since)}", top=12))) == 12


def test_uniconta_wrong_credentials_and_company(uc):
    with pytest.raises(AuthError):
        UnicontaClient(uc, 1234, "sandbox", "wrong-password").find("DebtorClient", "Account", "1")
    with pytest.raises(NotFound):
        list(UnicontaClient(uc, 999, "sandbox", "sandbox").odata("DebtorClient"))
