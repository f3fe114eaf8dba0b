"""The bulk lane's building blocks against the sandbox processes (real HTTP): webCRM's collection PATCH
through `WebcrmClient.patch`, `/Queries` rows as stand-ins for GETs, and Uniconta's OData limits."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
import requests

from sync.clients.errors import Permanent, RateLimited
from sync.clients.uniconta import UnicontaClient, odata_literal
from sync.clients.webcrm import PatchOutcome, WebcrmClient

pytestmark = pytest.mark.slow

AUTH_CODE = "sandbox-token"


def admin(base: str, method: str, path: str, **kwargs) -> dict:
    response = requests.request(method, f"{base}/_sandbox{path}", timeout=10, **kwargs)
    assert response.status_code < 300, response.text
    return response.json() if response.content else {}


@pytest.fixture
def wc(webcrm_sandbox: str) -> Iterator[str]:
    admin(webcrm_sandbox, "POST", "/reset")
    yield webcrm_sandbox
    admin(webcrm_sandbox, "POST", "/reset")  # no quirk, limit or data left for other tests


@pytest.fixture
def observed() -> list:
    return []


@pytest.fixture
def webcrm(wc: str, observed: list) -> WebcrmClient:
    return WebcrmClient(wc, AUTH_CODE, page_size=50, observer=lambda *a: observed.append(a))


def statuses(outcomes: list[PatchOutcome]) -> list[str]:
    return [o.status for o in outcomes]


# --- PATCH ---------------------------------------------------------------------------------------------


def test_patch_writes_a_mixed_batch_in_one_call(webcrm, wc, observed):
    existing = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "Gammel ApS"})
    dto = webcrm.get("Organisations", existing)
    admin(wc, "DELETE", "/calls")
    observed.clear()

    result = webcrm.patch("Organisations", [
        {"OrganisationId": 0, "OrganisationName": "Ny ApS", "OrganisationCity": "Ribe"},
        {**dto, "OrganisationCity": "Vejle"},
        {"OrganisationId": 999_999, "OrganisationName": "Findes ikke"},
        {"OrganisationId": 0, "OrganisationName": "x" * 201},
    ])

    assert [o[:3] for o in observed] == [("PATCH", "/Organisations", 200)]
    calls = admin(wc, "GET", "/calls")["calls"]
    assert [(c["method"], c["path"]) for c in calls] == [("PATCH", "/Organisations")]
    assert statuses(result) == ["ok", "ok", "failed", "failed"]
    assert result[1] == PatchOutcome("ok", id=existing)
    assert result[2].error == "Organisation with id 999999 was not found."
    assert result[3].error and "maximum length of 200" in result[3].error
    assert webcrm.get("Organisations", result[0].id)["OrganisationCity"] == "Ribe"
    assert webcrm.get("Organisations", existing)["OrganisationCity"] == "Vejle"


def test_patch_every_entity_the_bulk_lane_writes(webcrm):
    org = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "Alt ApS"})
    delivery = webcrm.create("Deliveries", {"DeliveryId": 0, "DeliveryOrganisationId": org})
    inserts = {
        "Persons": {"PersonId": 0, "PersonOrganisationId": org, "PersonLastName": "Kjær"},
        "Users": {"UserId": 0, "UserName": "Mette Dahl"},
        "Deliveries": {"DeliveryId": 0, "DeliveryOrganisationId": org},
        "Opportunities": {"OpportunityId": 0, "OpportunityOrganisationId": org},
        "QuotationLines": {"QuotationLineId": 0, "QuotationLineOpportunityId": delivery,
                           "QuotationLineQuantity": 2, "QuotationLinePrice": 10},
    }
    for entity, insert in inserts.items():
        (created,) = webcrm.patch(entity, [insert])
        assert created.status == "ok" and created.id, entity
        record = webcrm.get(entity, created.id)
        (updated,) = webcrm.patch(entity, [record])
        assert updated == created, entity
    assert webcrm.get("Deliveries", delivery)["DeliveryOrderValue"] == 20.0


def test_patch_answer_readings(webcrm, wc):
    existing = webcrm.create("Organisations", {"OrganisationId": 0, "OrganisationName": "Findes ApS"})
    mixed = [{"OrganisationId": 0, "OrganisationName": "Ny"},
             {"OrganisationId": existing, "OrganisationName": "Findes ApS"},
             {"OrganisationId": 888_888, "OrganisationName": "?"}]
    inserts = [{"OrganisationId": 0, "OrganisationName": "A"}, {"OrganisationId": 0, "OrganisationName": "B"}]
    updates = [{"OrganisationId": existing, "OrganisationName": "Findes ApS"}]

    admin(wc, "PUT", "/quirks", json={"patch_result": "inserted_ids_only"})
    assert statuses(webcrm.patch("Organisations", mixed)) == ["unknown"] * 3  # ["<id>", "<error>"]: unmappable
    assert statuses(webcrm.patch("Organisations", inserts)) == ["ok", "ok"]   # as long as the batch
    assert statuses(webcrm.patch("Organisations", updates)) == ["unknown"]    # []
    for mode in ("empty", "no_content"):
        admin(wc, "PUT", "/quirks", json={"patch_result": mode})
        assert statuses(webcrm.patch("Organisations", mixed)) == ["unknown"] * 3
    names = [o["OrganisationName"] for o in webcrm.iter_all("Organisations")]
    assert names.count("Ny") == 3 and names.count("A") == 1  # written whatever the answer said


def test_patch_limits_raise_like_any_call(webcrm, wc):
    admin(wc, "PUT", "/quirks", json={"patch_max_items": 2})
    with pytest.raises(Permanent) as caught:
        webcrm.patch("Organisations", [{"OrganisationId": 0, "OrganisationName": str(n)} for n in range(3)])
    assert caught.value.status == 400 and "at most 2" in caught.value.message
    admin(wc, "PUT", "/auth", json={"rate_limit": 1})  # a fresh window (the client is logged in already)
    webcrm.patch("Organisations", [{"OrganisationId": 0, "OrganisationName": "En"}])
    with pytest.raises(RateLimited):
        webcrm.patch("Organisations", [{"OrganisationId": 0, "OrganisationName": "To"}])


# --- /Queries rows answer GETs -------------------------------------------------------------------------

TABLES = {  # /Queries table -> (collection, id field)
    "Organisation": ("Organisations", "OrganisationId"),
    "Person": ("Persons", "PersonId"),
    "User": ("Users", "UserId"),
    "Delivery": ("Deliveries", "DeliveryId"),
    "Opportunity": ("Opportunities", "OpportunityId"),
    "QuotationLine": ("QuotationLines", "QuotationLineId"),
    "LinkedData": ("QuotationLines/LinkedData", "QuotationLineLinkedDataItemId"),
}


def seed_everything(wc: str, webcrm: WebcrmClient) -> None:
    for entity, count in (("Users", 4), ("Organisations", 6), ("LinkedData", 6), ("Deliveries", 4),
                          ("Opportunities", 3)):
        admin(wc, "POST", "/seed", json={"entity": entity, "count": count, "seed": 11})
    # API writes too (a PUT, a line from a catalogue item, dates with an offset)
    org = next(iter(webcrm.iter_all("Organisations")))
    webcrm.update("Organisations", org["OrganisationId"],
                  {**org, "OrganisationXDate1": "2024-05-01T10:00:00+02:00", "OrganisationCity": "Æbeltoft"})
    delivery = next(iter(webcrm.iter_all("Deliveries")))["DeliveryId"]
    item = webcrm.iter_all("QuotationLines/LinkedData").__next__()["QuotationLineLinkedDataItemId"]
    webcrm.create("QuotationLines", {"QuotationLineOpportunityId": delivery, "QuotationLineLinkedDataId": item,
                                     "QuotationLineQuantity": 1.5})


def check_rows_against_gets(webcrm: WebcrmClient, table: str, *, extra: set[str] = frozenset()) -> int:
    entity, id_field = TABLES[table]
    ids = sorted(r[id_field] for r in webcrm.iter_all(entity))
    assert len(ids) >= 3, table
    low, high = ids[1], ids[-1]  # a range that leaves the first record out
    rows = list(webcrm.query(f"SELECT * FROM {table} WHERE {id_field} >= {low} AND {id_field} <= {high}"))
    assert sorted(r[id_field] for r in rows) == ids[1:], table
    for row in rows:
        dto = webcrm.get(entity, row[id_field])
        assert set(row) - set(dto) == extra, (table, set(row) ^ set(dto))
        assert {k: row[k] for k in dto} == dto, table
    return len(rows)


@pytest.mark.parametrize("quirks", [{}, {"empty_strings_as_null": True, "timestamp_offset_minutes": 120}])
def test_query_rows_carry_what_get_serves(webcrm, wc, quirks):
    admin(wc, "PUT", "/quirks", json=quirks)
    seed_everything(wc, webcrm)
    aliases = {k.replace("QuotationLine", "", 1) for k in webcrm.get("QuotationLines/LinkedData", 1)} - {
        "LinkedDataItemCostPrice", "LinkedDataItemVatCode"}
    for table in TABLES:
        check_rows_against_gets(webcrm, table, extra=aliases if table == "LinkedData" else set())


def test_linked_data_rows_in_each_reading(webcrm, wc):
    """LinkedData rows: by default the GET DTO plus S4's LinkedDataItemDto names; the quirk narrows them."""
    admin(wc, "POST", "/seed", json={"entity": "LinkedData", "count": 4, "seed": 5})
    admin(wc, "PUT", "/quirks", json={"linked_data_query_row": "dto"})
    assert check_rows_against_gets(webcrm, "LinkedData") == 3
    admin(wc, "PUT", "/quirks", json={"linked_data_query_row": "linked_data_item"})
    rows = list(webcrm.query("SELECT * FROM LinkedData WHERE LinkedDataItemId >= 1"))
    assert len(rows) == 4
    for row in rows:
        dto = webcrm.get("QuotationLines/LinkedData", row["LinkedDataItemId"])
        assert "QuotationLineLinkedDataItemId" not in row
        assert {k: row[k] for k in row} == {k.replace("QuotationLine", "", 1): v for k, v in dto.items()
                                            if k.replace("QuotationLine", "", 1) in row}


# --- Uniconta ------------------------------------------------------------------------------------------


@pytest.fixture
def uc(uniconta_sandbox: str) -> Iterator[str]:
    admin(uniconta_sandbox, "POST", "/reset")
    yield uniconta_sandbox
    admin(uniconta_sandbox, "POST", "/reset")


def test_uniconta_page_size_preference_is_honoured(uc, observed):
    client = UnicontaClient(uc, 1234, "sandbox", "sandbox", odata_page_size=250,
                            observer=lambda *a: observed.append(a))
    client.insert_list("InvItemClient", [{"Item": f"V{i:04d}", "Name": f"Vare {i}"} for i in range(600)])
    observed.clear()
    assert len(list(client.odata("InvItemClient"))) == 600
    assert len(observed) == 3  # 250 + 250 + 100, where the default would take 6 pages of 100
    capped = UnicontaClient(uc, 1234, "sandbox", "sandbox", odata_page_size=5000,
                            observer=lambda *a: observed.append(a))
    observed.clear()
    assert len(list(capped.odata("InvItemClient"))) == 600
    assert len(observed) == 1  # 1000 is the server maximum, above 600


def test_uniconta_or_lists_stop_at_40(uc):
    client = UnicontaClient(uc, 1234, "sandbox", "sandbox")
    client.insert_list("DebtorClient", [{"Account": f"{i}", "Name": f"Kunde {i}"} for i in range(1000, 1041)])
    accounts = [odata_literal(f"{i}") for i in range(1000, 1041)]
    forty = " or ".join(f"Account eq {a}" for a in accounts[:40])
    assert len(list(client.odata("DebtorClient", filter=forty))) == 40
    with pytest.raises(Permanent) as caught:
        list(client.odata("DebtorClient", filter=forty + f" or Account eq {accounts[40]}"))
    assert caught.value.status == 400 and caught.value.code == "NoSucces"
    assert "41 values are joined with 'or'" in caught.value.message
