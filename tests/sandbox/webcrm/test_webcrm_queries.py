"""The /Queries SELECT subset of the webCRM sandbox."""

from __future__ import annotations

import pytest

from sandbox.webcrm.queries import QueryError, parse


def q(api, script: str, **params):
    return api.get("/Queries", query_string={"script": script, **params})


def ids(response, field="OrganisationId"):
    assert response.status_code == 200, response.get_data(as_text=True)
    return [row[field] for row in response.json]


@pytest.fixture
def orgs(api):
    return {
        "smed": api.org("Østergaard Smed ApS", OrganisationType="A Kunde", OrganisationCity="Aarhus C",
                        OrganisationXInt1=10, OrganisationXDate1="2024-01-01T12:00:00+01:00"),
        "quote": api.org("O'Brien's Pub", OrganisationType="B Kunde", OrganisationCity="Odense C",
                         OrganisationXInt1=2, OrganisationXDate1="2024-01-01T11:30:00Z"),
        "vvs": api.org("Nørgaard VVS", OrganisationType="A Kunde", OrganisationCity="Aalborg",
                       OrganisationXInt1=-5),
    }


def test_parse_the_supported_forms():
    query = parse("select * from organisation where OrganisationName = 'It''s' and X >= 5 order by X desc;")
    assert query.table == "organisation"
    assert query.columns is None
    assert [(c.field, c.op, c.value, c.quoted) for c in query.where] == [
        ("OrganisationName", "=", "It's", True), ("X", ">=", "5", False)]
    assert query.order == ("X", True)
    assert parse("SELECT A, B FROM T").columns == ["A", "B"]
    assert parse("SELECT * FROM T ORDER BY A ASC").order == ("A", False)


@pytest.mark.parametrize("script", [
    "",
    "   ",
    "DELETE FROM Organisation",
    "SELECT FROM Organisation",
    "SELECT * Organisation",
    "SELECT * FROM",
    "SELECT * FROM Organisation WHERE",
    "SELECT * FROM Organisation WHERE OrganisationName",
    "SELECT * FROM Organisation WHERE OrganisationName = ",
    "SELECT * FROM Organisation WHERE OrganisationName = 'unterminated",
    "SELECT * FROM Organisation WHERE OrganisationName LIKE 'A%'",
    "SELECT * FROM Organisation WHERE OrganisationName = 'A' OR OrganisationName = 'B'",
    "SELECT * FROM Organisation WHERE (OrganisationName = 'A')",
    "SELECT * FROM Person JOIN Organisation ON (Person.PersonOrganisationId = Organisation.OrganisationId)",
    "SELECT * FROM Organisation WHERE OrganisationName IS NULL",
    "SELECT * FROM Organisation WHERE OrganisationName IN ('a')",
    "SELECT * FROM Organisation WHERE OrganisationName = OrganisationCity",
    "SELECT * FROM Organisation ORDER OrganisationName",
    "SELECT * FROM Organisation ORDER BY",
    "SELECT * FROM Organisation LIMIT 5",
    "SELECT TOP 5 * FROM Organisation",
    "SELECT * FROM Organisation; DROP TABLE Organisation",
    "SELECT * FROM Organisation WHERE OrganisationName == 'x'",
    "SELECT * FROM Organisation WHERE OrganisationName = 'x' AND",
    "SELECT * FROM Organisation # comment",
])
def test_malformed_or_unsupported_scripts_raise(script):
    with pytest.raises(QueryError):
        parse(script)


@pytest.mark.parametrize("script", [
    "SELECT * FROM Organisation WHERE OrganisationName = 'A' OR OrganisationCity = 'B'",
    "SELECT * FROM Nowhere",
    "SELECT * FROM Organisations",
    "SELECT * FROM Organisation WHERE NoSuchField = 'x'",
    "SELECT NoSuchColumn FROM Organisation",
    "SELECT * FROM Organisation ORDER BY NoSuchField",
    "SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= 'last tuesday'",
    "SELECT * FROM Organisation WHERE OrganisationXInt1 > 'ten'",
    "SELECT * FROM Organisation WHERE OrganisationNoAds = 'perhaps'",
    "SELECT * FROM Organisation WHERE Person.PersonId = 1",
    "SELECT * FROM Organisation WHERE OrganisationName = 'x",
    "UPDATE Organisation SET OrganisationName = 'x'",
    "",
])
def test_api_answers_400_with_a_message(api, script):
    response = q(api, script)
    assert response.status_code == 400
    assert response.json["Message"]


def test_missing_script_and_bad_paging_are_400(api):
    assert api.get("/Queries").status_code == 400
    assert q(api, "SELECT * FROM Organisation", Size=0).status_code == 400


def test_equality_with_quotes_and_case_insensitivity(api, orgs):
    assert ids(q(api, "SELECT * FROM Organisation WHERE OrganisationName = 'O''Brien''s Pub'")) == [orgs["quote"]]
    assert ids(q(api, "select * from ORGANISATION where organisationname = 'østergaard smed aps'")) == [orgs["smed"]]
    assert ids(q(api, "SELECT * FROM Organisation WHERE OrganisationName <> 'Nørgaard VVS'")) == \
        [orgs["smed"], orgs["quote"]]


def test_and_and_order_by(api, orgs):
    script = ("SELECT * FROM Organisation WHERE OrganisationType = 'A Kunde' AND OrganisationXInt1 > -10 "
              "ORDER BY OrganisationXInt1 DESC")
    assert ids(q(api, script)) == [orgs["smed"], orgs["vvs"]]
    assert ids(q(api, "SELECT * FROM Organisation ORDER BY OrganisationCity")) == \
        [orgs["vvs"], orgs["smed"], orgs["quote"]]
    assert ids(q(api, "SELECT * FROM Organisation ORDER BY OrganisationName DESC")) == \
        [orgs["smed"], orgs["quote"], orgs["vvs"]]  # Ø sorts after O (casefold code points)


def test_numbers_compare_numerically(api, orgs):
    assert ids(q(api, "SELECT * FROM Organisation WHERE OrganisationXInt1 >= 2")) == [orgs["smed"], orgs["quote"]]
    assert ids(q(api, "SELECT * FROM Organisation WHERE OrganisationXInt1 < '3'")) == [orgs["quote"], orgs["vvs"]]
    assert ids(q(api, "SELECT * FROM Organisation WHERE OrganisationId = 2")) == [orgs["quote"]]


def test_dates_compare_as_instants(api, orgs):
    # smed: 2024-01-01T12:00+01:00 = 11:00Z; quote: 11:30Z; vvs: empty date (smallest)
    script = "SELECT * FROM Organisation WHERE OrganisationXDate1 >= '{}' ORDER BY OrganisationXDate1"
    assert ids(q(api, script.format("2024-01-01T11:00:00Z"))) == [orgs["smed"], orgs["quote"]]
    assert ids(q(api, script.format("2024-01-01T11:00:00.0000010Z"))) == [orgs["quote"]]  # .NET "O" format
    assert ids(q(api, script.format("2024-01-01T12:15:00+01:00"))) == [orgs["quote"]]
    assert ids(q(api, script.format("2024-01-01"))) == [orgs["smed"], orgs["quote"]]  # naive = UTC
    assert ids(q(api, "SELECT * FROM Organisation WHERE OrganisationXDate1 = '0001-01-01T00:00:00+00:00'")) == \
        [orgs["vvs"]]
    assert ids(q(api, "SELECT * FROM Organisation ORDER BY OrganisationXDate1 DESC")) == \
        [orgs["quote"], orgs["smed"], orgs["vvs"]]


def test_delta_query_on_updated_at(api, orgs):
    stamp = api.get(f"/Organisations/{orgs['vvs']}").json["OrganisationUpdatedAt"]
    rows = q(api, f"SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= '{stamp}' "
                  "ORDER BY OrganisationUpdatedAt ASC").json
    assert orgs["vvs"] in [r["OrganisationId"] for r in rows]
    assert q(api, "SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= '2999-01-01T00:00:00Z'").json == []


def test_select_star_rows_are_full_dtos_and_columns_project(api, orgs):
    row = q(api, "SELECT * FROM Organisation WHERE OrganisationId = 1").json[0]
    assert len(row) == 109
    rows = q(api, "SELECT organisationid, OrganisationName FROM Organisation ORDER BY OrganisationId").json
    assert rows[0] == {"OrganisationId": 1, "OrganisationName": "Østergaard Smed ApS"}
    qualified = q(api, "SELECT * FROM Organisation WHERE Organisation.OrganisationCity = 'Aalborg'")
    assert ids(qualified) == [orgs["vvs"]]


def test_paging_of_query_results(api, orgs):
    script = "SELECT * FROM Organisation ORDER BY OrganisationId"
    assert ids(q(api, script, Page=1, Size=2)) == [orgs["smed"], orgs["quote"]]
    assert ids(q(api, script, page=2, size=2)) == [orgs["vvs"]]
    assert q(api, script, Page=3, Size=2).json == []


def test_every_table(api, orgs):
    person = api.create("Persons", {"PersonOrganisationId": orgs["smed"], "PersonLastName": "Kjær",
                                    "PersonEmail": "Soren@Example.dk", "PersonCheckMark1": True})
    delivery = api.delivery(orgs["smed"], DeliveryCustom5="ERP-1")
    opportunity = api.create("Opportunities", {"OpportunityOrganisationId": orgs["quote"]})
    line = api.create("QuotationLines", {"QuotationLineOpportunityId": delivery, "QuotationLineData4": "10-1001"})
    item = api.create("QuotationLines/LinkedData", {f"QuotationLineLinkedDataItemData{n}": f"d{n}"
                                                    for n in range(1, 5)})
    assert ids(q(api, "SELECT PersonId, PersonEmail FROM Person WHERE PersonEmail = 'soren@example.dk'"),
               "PersonId") == [person]
    assert ids(q(api, "SELECT * FROM Person WHERE PersonCheckMark1 = 1"), "PersonId") == [person]
    assert ids(q(api, "SELECT * FROM Person WHERE PersonStatus = 'Active'"), "PersonId") == [person]
    assert ids(q(api, "SELECT * FROM Delivery WHERE DeliveryCustom5 = 'ERP-1'"), "DeliveryId") == [delivery]
    assert ids(q(api, "SELECT * FROM Delivery WHERE DeliveryStatus = 0"), "DeliveryId") == [delivery]
    assert ids(q(api, "SELECT * FROM Opportunity"), "OpportunityId") == [opportunity]
    assert ids(q(api, "SELECT * FROM QuotationLine WHERE QuotationLineData4 = '10-1001'"),
               "QuotationLineId") == [line]
    assert ids(q(api, "SELECT * FROM User WHERE UserName = 'Anna Jensen'"), "UserId") == [1]
    # S4's catalogue lookup: LinkedDataItemDto names, entity type by number (7 = Product)
    rows = q(api, "SELECT * FROM LinkedData WHERE LinkedDataItemEntityType = 7 "
                  "AND QuotationLineLinkedDataItemData1 = 'd1'").json
    assert [r["LinkedDataItemId"] for r in rows] == [item]
    assert rows[0]["QuotationLineLinkedDataItemId"] == item
    assert q(api, "SELECT * FROM LinkedData WHERE LinkedDataItemEntityType = 'Person'").json == []


def test_linked_data_row_columns_follow_the_quirk(api, client):
    item = api.create("QuotationLines/LinkedData", {f"QuotationLineLinkedDataItemData{n}": f"d{n}"
                                                    for n in range(1, 5)} | {"QuotationLineLinkedDataItemCostPrice": 4})
    dto = api.get(f"/QuotationLines/LinkedData/{item}").json
    script = "SELECT * FROM LinkedData WHERE LinkedDataItemId = " + str(item)
    (both,) = q(api, script).json  # default: both spellings
    assert {k: both[k] for k in dto} == dto
    assert set(both) - set(dto) == {k.replace("QuotationLine", "", 1) for k in dto} - set(dto) - {
        "LinkedDataItemCostPrice", "LinkedDataItemVatCode"}  # LinkedDataItemDto has no cost price or VAT code
    client.put("/_sandbox/quirks", json={"linked_data_query_row": "dto"})
    assert q(api, script).json == [dto]
    client.put("/_sandbox/quirks", json={"linked_data_query_row": "linked_data_item"})
    (s4,) = q(api, script).json
    assert s4["LinkedDataItemId"] == item and s4["LinkedDataItemData1"] == "d1"
    assert not any(k.startswith("QuotationLine") for k in s4)
    # the WHERE clause and column lists take both spellings whatever the quirk
    assert q(api, "SELECT QuotationLineLinkedDataItemId FROM LinkedData WHERE QuotationLineLinkedDataItemData2 = 'd2'"
             ).json == [{"QuotationLineLinkedDataItemId": item}]
    assert client.put("/_sandbox/quirks", json={"linked_data_query_row": "all"}).status_code == 400
