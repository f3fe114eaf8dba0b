"""Entity endpoints of the webCRM sandbox: list/get/POST/PUT/DELETE, paging, validation, finders."""

from __future__ import annotations

import pytest

from sandbox.webcrm.dto import EMPTY_DATE

NO_DELETE = ("Organisations", "Persons", "Deliveries", "Opportunities", "Users")


# -- paging ---------------------------------------------------------------------------------------
def test_list_paging_with_short_last_page(api):
    ids = [api.org(f"Org {i}") for i in range(7)]
    pages = [api.get(f"/Organisations?Page={p}&Size=3").json for p in (1, 2, 3, 4)]
    assert [len(p) for p in pages] == [3, 3, 1, 0]
    assert [o["OrganisationId"] for p in pages for o in p] == ids  # ordered by id
    # names are case-insensitive, defaults Page=1 Size=50
    assert [o["OrganisationId"] for o in api.get("/Organisations?page=2&size=3").json] == ids[3:6]
    assert len(api.get("/Organisations").json) == 7
    assert api.get("/Organisations?Size=1000").status_code == 200


@pytest.mark.parametrize("query", ["Size=0", "Size=1001", "Page=0", "Page=1000001", "Size=abc", "Page=-1",
                                   "size=2.5"])
def test_out_of_range_paging_is_400(api, query):
    response = api.get(f"/Organisations?{query}")
    assert response.status_code == 400
    assert response.json["Message"]


def test_list_is_a_bare_array_and_empty_when_nothing(api):
    response = api.get("/Deliveries")
    assert response.status_code == 200
    assert response.json == []
    assert response.headers["Content-Type"].startswith("application/json")


# -- create / get ---------------------------------------------------------------------------------
def test_post_returns_bare_int_ids_for_every_entity(api):
    org = api.org()
    assert isinstance(org, int)
    person = api.create("Persons", {"PersonOrganisationId": org, "PersonLastName": "Kjærgaard"})
    user = api.create("Users", {"UserName": "Bo Bæk"})
    delivery = api.delivery(org)
    opportunity = api.create("Opportunities", {"OpportunityOrganisationId": org})
    item = api.create("QuotationLines/LinkedData", {f"QuotationLineLinkedDataItemData{n}": "x" for n in range(1, 5)})
    line = api.create("QuotationLines", {"QuotationLineOpportunityId": delivery})
    assert all(isinstance(i, int) and i > 0 for i in (person, user, delivery, opportunity, item, line))
    assert delivery != opportunity  # one id sequence for deliveries and opportunities
    for path, field, ident in (("Persons", "PersonId", person), ("Users", "UserId", user),
                               ("Deliveries", "DeliveryId", delivery),
                               ("Opportunities", "OpportunityId", opportunity),
                               ("QuotationLines/LinkedData", "QuotationLineLinkedDataItemId", item),
                               ("QuotationLines", "QuotationLineId", line)):
        got = api.get(f"/{path}/{ident}")
        assert got.status_code == 200
        assert got.json[field] == ident


def test_every_dto_property_is_present_with_defaults(api):
    org = api.get(f"/Organisations/{api.org()}").json
    assert len(org) == 109
    assert org["OrganisationCity"] == ""
    assert org["OrganisationXInt1"] == 0
    assert org["OrganisationNoAds"] is False
    assert org["OrganisationXDate1"] == EMPTY_DATE
    assert org["OrganisationLastItemType"] == "Undefined"


def test_audit_fields_on_create_and_update(api):
    org = api.org()
    created = api.get(f"/Organisations/{org}").json
    assert created["OrganisationCreatedBy"] == created["OrganisationUpdatedBy"] == "Integration"
    assert created["OrganisationCreatedAt"].endswith("+00:00")
    assert created["OrganisationCreatedAt"] == created["OrganisationUpdatedAt"]
    api.put(f"/Organisations/{org}", json={**created, "OrganisationName": "Nyt navn",
                                           "OrganisationCreatedBy": "Hacker", "OrganisationUpdatedBy": "Hacker"})
    updated = api.get(f"/Organisations/{org}").json
    assert updated["OrganisationCreatedBy"] == "Integration"
    assert updated["OrganisationUpdatedBy"] == "Integration"
    assert updated["OrganisationCreatedAt"] == created["OrganisationCreatedAt"]
    assert updated["OrganisationUpdatedAt"] >= created["OrganisationUpdatedAt"]


def test_post_with_existing_id_is_400_and_unknown_id_is_ignored(api):
    org = api.org()
    response = api.post("/Organisations", json={"OrganisationId": org, "OrganisationName": "Dup"})
    assert response.status_code == 400
    assert "already exists" in response.json["Message"]
    new = api.create("Organisations", {"OrganisationId": 999, "OrganisationName": "New"})
    assert new == org + 1
    assert api.post("/Organisations", json={"OrganisationId": "0", "OrganisationName": "S6 style"}).status_code == 200


def test_unknown_ids_are_404_with_message(api):
    for path in ("/Organisations/4242", "/Persons/1", "/Deliveries/9", "/Opportunities/9", "/QuotationLines/9",
                 "/QuotationLines/LinkedData/9", "/Users/99", "/Organisations/9999999999",
                 "/Organisations/9/Persons", "/Deliveries/9/QuotationLines", "/Organisations/Hooks/5"):
        response = api.get(path)
        assert response.status_code == 404, path
        assert response.json["Message"]
    assert api.put("/Organisations/4242", json={"OrganisationName": "x"}).status_code == 404
    assert api.get("/Organisations/abc").status_code == 404
    assert api.get("/NoSuchThing").status_code == 404


# -- PUT is a full replacement -----------------------------------------------------------------------
def test_put_replaces_all_writable_fields(api):
    org = api.org("Full ApS", OrganisationCity="Aarhus C", OrganisationExtraCustom1="D1001",
                  OrganisationOwner=1)
    response = api.put(f"/Organisations/{org}", json={"OrganisationName": "Partial ApS"})
    assert response.status_code == 200
    assert response.data == b""
    after = api.get(f"/Organisations/{org}").json
    assert after["OrganisationName"] == "Partial ApS"
    assert after["OrganisationCity"] == ""          # omitted -> default
    assert after["OrganisationExtraCustom1"] == ""
    assert after["OrganisationOwner"] == 0
    assert after["OrganisationId"] == org          # the URL's id wins


def test_get_modify_put_round_trip_keeps_everything(api):
    org = api.org("Round ApS", OrganisationCity="Odense C", OrganisationXDate1="2024-03-01T12:00:00+01:00")
    dto = api.get(f"/Organisations/{org}").json
    dto["OrganisationTelephone"] = "+45 12 34 56 78"
    assert api.put(f"/Organisations/{org}", json=dto).status_code == 200
    after = api.get(f"/Organisations/{org}").json
    changed = {k for k in dto if dto[k] != after[k]}
    assert changed <= {"OrganisationUpdatedAt"}
    assert after["OrganisationXDate1"] == "2024-03-01T12:00:00+01:00"  # the offset is kept


# -- persons ------------------------------------------------------------------------------------------
def test_person_rules(api):
    org, other = api.org("A"), api.org("B")
    missing = api.post("/Persons", json={"PersonOrganisationId": org, "PersonFirstName": "Søren"})
    assert missing.status_code == 400
    assert "PersonLastName" in missing.json["Message"]
    assert api.post("/Persons", json={"PersonOrganisationId": 999, "PersonLastName": "X"}).status_code == 400
    person = api.create("Persons", {"PersonOrganisationId": org, "PersonFirstName": "Søren",
                                    "PersonLastName": "Kjærgaard", "PersonStatus": "active"})
    got = api.get(f"/Persons/{person}").json
    assert got["PersonName"] == "Søren Kjærgaard"
    assert got["PersonStatus"] == "Active"  # enums are matched case-insensitively
    # the organisation cannot change through the API
    assert api.put(f"/Persons/{person}", json={"PersonOrganisationId": other, "PersonLastName": "K",
                                               "PersonStatus": "Resigned"}).status_code == 200
    got = api.get(f"/Persons/{person}").json
    assert got["PersonOrganisationId"] == org
    assert got["PersonStatus"] == "Resigned"
    assert api.put(f"/Persons/{person}", json={"PersonLastName": " "}).status_code == 400
    listed = api.get(f"/Organisations/{org}/Persons").json
    assert [p["PersonId"] for p in listed] == [person]
    assert api.get(f"/Organisations/{other}/Persons").json == []


# -- DELETE only where the real API has one ----------------------------------------------------------
@pytest.mark.parametrize("plural", NO_DELETE)
def test_no_delete_where_the_real_api_has_none(api, plural):
    response = api.delete(f"/{plural}/1")
    assert response.status_code == 405
    assert "DELETE" in response.json["Message"]
    assert "DELETE" not in response.headers["Allow"]


def test_delete_lines_items_and_all_items(api):
    org = api.org()
    delivery = api.delivery(org)
    line = api.create("QuotationLines", {"QuotationLineOpportunityId": delivery})
    assert api.delete(f"/QuotationLines/{line}").status_code == 200
    assert api.get(f"/QuotationLines/{line}").status_code == 404
    assert api.delete(f"/QuotationLines/{line}").status_code == 404
    data = {f"QuotationLineLinkedDataItemData{n}": "v" for n in range(1, 5)}
    items = [api.create("QuotationLines/LinkedData", data) for _ in range(3)]
    assert api.delete(f"/QuotationLines/LinkedData/{items[0]}").status_code == 200
    assert len(api.get("/QuotationLines/LinkedData").json) == 2
    assert api.delete("/QuotationLines/LinkedData").status_code == 200  # "deletes ALL"
    assert api.get("/QuotationLines/LinkedData").json == []


# -- bad input never 500 --------------------------------------------------------------------------------
@pytest.mark.parametrize(("body", "content_type", "status"), [
    (b"{not json", "application/json", 400),
    (b"", "application/json", 400),
    (b"[1, 2]", "application/json", 400),
    (b'"text"', "application/json", 400),
    (b"null", "application/json", 400),
    (b'{"OrganisationName": "x"}', "text/plain", 415),
    (b"OrganisationName=x", "application/x-www-form-urlencoded", 415),
    (b"\xff\xfe", "application/json", 400),
    (b'{"OrganisationOwner": "abc"}', "application/json", 400),
    (b'{"OrganisationOwner": 1.5}', "application/json", 400),
    (b'{"OrganisationOwner": 99999999999}', "application/json", 400),
    (b'{"OrganisationOwner": null}', "application/json", 400),
    (b'{"OrganisationOwner": [1]}', "application/json", 400),
    (b'{"OrganisationName": {"a": 1}}', "application/json", 400),
    (b'{"OrganisationNoAds": "maybe"}', "application/json", 400),
    (b'{"OrganisationXDate1": "yesterday"}', "application/json", 400),
    (b'{"OrganisationXDate1": 5}', "application/json", 400),
    (b'{"OrganisationLastItemType": "Nope"}', "application/json", 400),
    (b'{"OrganisationVatCountry": "12345678901"}', "application/json", 400),
])
def test_bad_bodies_are_4xx_with_message(api, body, content_type, status):
    for method, path in (("POST", "/Organisations"), ("PUT", f"/Organisations/{api.org()}")):
        response = api.client.open(path, method=method, data=body, content_type=content_type,
                                   headers=api.headers)
        assert response.status_code == status, (method, body, response.get_data(as_text=True))
        assert response.json["Message"]


def test_lenient_conversions_like_newtonsoft(api):
    org = api.create("Organisations", {
        "organisationname": "lower-case names",   # property names are case-insensitive
        "OrganisationOwner": "7",                   # numbers as strings
        "OrganisationXInt1": 3.0,
        "OrganisationNoAds": "true",
        "OrganisationCity": None,                   # null string -> ""
        "OrganisationTelephone": 12345678,          # number -> string
        "OrganisationLastItemType": 2,              # enum by number
        "OrganisationXDate1": "2024-05-01T10:00:00",  # naive = UTC
        "OrganisationXDate2": None,
        "NotAField": {"ignored": True},             # unknown properties are ignored
    })
    got = api.get(f"/Organisations/{org}").json
    assert got["OrganisationName"] == "lower-case names"
    assert (got["OrganisationOwner"], got["OrganisationXInt1"], got["OrganisationNoAds"]) == (7, 3, True)
    assert got["OrganisationCity"] == ""
    assert got["OrganisationTelephone"] == "12345678"
    assert got["OrganisationLastItemType"] == "Opportunity"
    assert got["OrganisationXDate1"] == "2024-05-01T10:00:00+00:00"
    assert got["OrganisationXDate2"] == EMPTY_DATE
    assert "NotAField" not in got


def test_max_length_from_the_swagger(api):
    assert api.post("/Organisations", json={"OrganisationName": "x" * 200}).status_code == 200
    response = api.post("/Organisations", json={"OrganisationName": "x" * 201})
    assert response.status_code == 400
    assert "maximum length of 200" in response.json["Message"]


# -- deliveries / opportunities ------------------------------------------------------------------------
def test_orders_need_an_existing_organisation(api):
    assert api.post("/Deliveries", json={"DeliveryDescription": "no org"}).status_code == 400
    assert api.post("/Opportunities", json={"OpportunityOrganisationId": 77}).status_code == 400
    org = api.org()
    assert api.post("/Deliveries", json={"DeliveryOrganisationId": org, "DeliveryPersonId": 5}).status_code == 400


def test_delivery_finders(api):
    a, b = api.org("A"), api.org("B")
    d1 = api.delivery(a, DeliveryStatus="Planned")
    d2 = api.delivery(b)
    o1 = api.create("Opportunities", {"OpportunityOrganisationId": a})
    assert [d["DeliveryId"] for d in api.get(f"/Deliveries/ByOrganisation/{a}").json] == [d1]
    assert [d["DeliveryId"] for d in api.get("/Deliveries/ByStatus/planned").json] == [d1]
    assert [d["DeliveryId"] for d in api.get("/Deliveries/ByStatus/New").json] == [d2]
    assert api.get("/Deliveries/ByStatus/Bogus").status_code == 400
    assert [o["OpportunityId"] for o in api.get(f"/Opportunities/ByOrganisation/{a}").json] == [o1]
    assert api.get(f"/Opportunities/{o1}/QuotationLines").json == []


def test_find_by_update_dates_is_half_open(api):
    first = api.org("First")
    stamp = api.get(f"/Organisations/{first}").json["OrganisationUpdatedAt"]
    hits = api.get(f"/Organisations/FindByUpdateDates/{stamp}/2999-01-01T00:00:00Z").json
    assert first in [o["OrganisationId"] for o in hits]                       # start <= UpdatedAt
    assert api.get(f"/Organisations/FindByUpdateDates/2000-01-01/{stamp}").json == []  # UpdatedAt < end
    created = api.get("/Organisations/FindByCreateDates/2000-01-01/2999-01-01?Size=1").json
    assert [o["OrganisationId"] for o in created] == [first]
    assert api.get("/Deliveries/FindByCreateDates/2000-01-01/2999-01-01").json == []
    assert api.get("/Organisations/FindByUpdateDates/notadate/2999-01-01").status_code == 400


# -- users ----------------------------------------------------------------------------------------------
def test_users_all_active_follows_the_admin_flag(api, client):
    default_users = api.get("/Users").json
    assert [u["UserName"] for u in default_users] == ["Anna Jensen"]
    bo = api.create("Users", {"UserName": "Bo Bæk", "UserEmail": "bo@example.dk"})
    assert {u["UserId"] for u in api.get("/Users/AllActive").json} == {1, bo}
    assert client.put(f"/_sandbox/users/{bo}/active", json={"active": False}).status_code == 200
    assert [u["UserId"] for u in api.get("/Users/AllActive").json] == [1]
    assert len(api.get("/Users").json) == 2
    client.put(f"/_sandbox/users/{bo}/active", json={"active": True})
    assert len(api.get("/Users/AllActive").json) == 2
    assert client.put("/_sandbox/users/99/active", json={"active": False}).status_code == 400
    assert client.put(f"/_sandbox/users/{bo}/active", json={"active": "no"}).status_code == 400
    assert api.put(f"/Users/{bo}", json={"UserName": "Bo B."}).status_code == 200
    assert api.get(f"/Users/{bo}").json["UserEmail"] == ""  # full replacement


@pytest.mark.parametrize(("mode", "expected"), [("int", "int"), ("none", b""), ("object", "object")])
def test_post_organisation_answer_quirk(api, client, mode, expected):
    assert client.put("/_sandbox/quirks", json={"organisation_post_returns": mode}).status_code == 200
    response = api.post("/Organisations", json={"OrganisationName": "Q"})
    assert response.status_code == 200
    if expected == "int":
        assert isinstance(response.json, int)
    elif expected == "object":
        assert response.json == {"OrganisationId": 1}
    else:
        assert response.data == b""
    client.put("/_sandbox/quirks", json={"user_post_returns": "object"})
    assert "UserId" in api.post("/Users", json={"UserName": "U"}).json


def test_empty_strings_as_null_quirk(api, client):
    org = api.org()
    assert api.get(f"/Organisations/{org}").json["OrganisationCity"] == ""
    client.put("/_sandbox/quirks", json={"empty_strings_as_null": True})
    got = api.get(f"/Organisations/{org}").json
    assert got["OrganisationCity"] is None
    assert got["OrganisationName"] == "Østergaard Smed ApS"
    assert api.get("/Organisations").json[0]["OrganisationCity"] is None


def test_timestamp_offset_quirk(api, client):
    client.put("/_sandbox/quirks", json={"timestamp_offset_minutes": 120})
    org = api.org()
    assert api.get(f"/Organisations/{org}").json["OrganisationCreatedAt"].endswith("+02:00")


# -- catalogue -------------------------------------------------------------------------------------------
def test_catalogue_items_need_the_enabled_data_fields(api, client):
    response = api.post("/QuotationLines/LinkedData", json={"QuotationLineLinkedDataItemData1": "1001"})
    assert response.status_code == 400
    assert "Navn" in response.json["Message"]
    body = {"QuotationLineLinkedDataItemData1": "1001", "QuotationLineLinkedDataItemData2": "Skrue",
            "QuotationLineLinkedDataItemData3": "stk", "QuotationLineLinkedDataItemData4": "Beslag",
            "QuotationLineLinkedDataItemPrice": 2.5, "QuotationLineLinkedDataItemEntityType": "Person"}
    item = api.create("QuotationLines/LinkedData", body)
    got = api.get(f"/QuotationLines/LinkedData/{item}").json
    assert got["QuotationLineLinkedDataItemEntityType"] == "Product"
    assert api.put(f"/QuotationLines/LinkedData/{item}", json={**body, "QuotationLineLinkedDataItemData2": ""}
                   ).status_code == 400
    setup = api.get("/QuotationLines/LinkedSetup").json
    assert [setup[f"QuotationLineLinkedSetupUseLinkedField{n}"] for n in range(1, 6)] == [True] * 4 + [False]
    client.put("/_sandbox/linkedsetup", json={"1": "Varenummer"})
    assert api.post("/QuotationLines/LinkedData", json={"QuotationLineLinkedDataItemData1": "1"}).status_code == 200
    assert client.put("/_sandbox/linkedsetup", json={"10": "x"}).status_code == 400


def test_fields_metadata(api, client):
    assert api.get("/FieldsMetadata").json == []
    response = client.put("/_sandbox/fields/Organisation", json={
        "OrganisationExtraCustom1": "Debitornummer",
        "organisationtype": {"Label": "Kundetype", "Options": ["A Kunde", "B Kunde"]},
    })
    assert response.status_code == 200
    client.put("/_sandbox/fields/Persons", json={"PersonCustom4": "Primær kontakt"})
    orgs = api.get("/FieldsMetadata/Organisation").json
    assert [(f["FieldMetadataDbFieldName"], f["FieldMetadataLabel"]) for f in orgs] == [
        ("OrganisationExtraCustom1", "Debitornummer"), ("OrganisationType", "Kundetype")]
    assert orgs[0]["FieldMetadataTextFieldMaxLength"] == 50
    assert orgs[1]["FieldMetadataDisplayType"] == "DI"
    assert [d["Text"] for d in orgs[1]["FieldMetadataDropdownListData"]] == ["A Kunde", "B Kunde"]
    assert len(api.get("/FieldsMetadata").json) == 3
    assert len(api.get("/FieldsMetadata/All").json) == 3
    assert len(api.get("/FieldsMetadata/Person,Organisation").json) == 3
    assert api.get("/FieldsMetadata/Delivery").json == []
    assert api.get("/FieldsMetadata/Nope").status_code == 400
    client.put("/_sandbox/fields/Organisation", json={"OrganisationType": None})
    assert len(api.get("/FieldsMetadata/Organisation").json) == 1
    assert client.put("/_sandbox/fields/Organisation", json={"PersonCustom1": "x"}).status_code == 400
    assert client.put("/_sandbox/fields/Spaceship", json={}).status_code == 400
    assert client.put("/_sandbox/fields/Organisation", json={"OrganisationCustom1": {"Label": ""}}).status_code == 400


# -- PUT on every entity ------------------------------------------------------------------------------
def test_put_is_a_full_replacement_on_every_entity(api):
    org = api.org()
    delivery = api.delivery(org, DeliveryDescription="desc", DeliveryCustom5="ERP-9")
    opportunity = api.create("Opportunities", {"OpportunityOrganisationId": org, "OpportunityNumber": "77"})
    person = api.create("Persons", {"PersonOrganisationId": org, "PersonLastName": "L", "PersonEmail": "a@b.dk"})
    user = api.create("Users", {"UserName": "U", "UserTitle": "Chef"})
    line = api.create("QuotationLines", {"QuotationLineOpportunityId": delivery, "QuotationLineMemo": "memo"})
    data = {f"QuotationLineLinkedDataItemData{n}": "d" for n in range(1, 5)}
    item = api.create("QuotationLines/LinkedData", {**data, "QuotationLineLinkedDataItemVatCode": "25"})
    cases = [
        ("Deliveries", delivery, {"DeliveryOrganisationId": org}, "DeliveryCustom5", ""),
        ("Opportunities", opportunity, {"OpportunityOrganisationId": org}, "OpportunityNumber", ""),
        ("Persons", person, {"PersonLastName": "L2"}, "PersonEmail", ""),
        ("Users", user, {"UserName": "U2"}, "UserTitle", ""),
        ("QuotationLines", line, {"QuotationLineOpportunityId": delivery}, "QuotationLineMemo", ""),
        ("QuotationLines/LinkedData", item, data, "QuotationLineLinkedDataItemVatCode", ""),
    ]
    for plural, ident, body, reset_field, default in cases:
        response = api.put(f"/{plural}/{ident}", json=body)
        assert response.status_code == 200, (plural, response.get_data(as_text=True))
        assert api.get(f"/{plural}/{ident}").json[reset_field] == default, plural
        assert api.put(f"/{plural}/98765", json=body).status_code == 404


def test_empty_dates_in_any_offset_normalise(api):
    org = api.org(OrganisationXDate1="0001-01-01T01:00:00+01:00", OrganisationXDate2="")
    got = api.get(f"/Organisations/{org}").json
    assert got["OrganisationXDate1"] == got["OrganisationXDate2"] == EMPTY_DATE


def test_a_genuine_bug_is_a_json_500_not_a_stack_trace(monkeypatch):
    from flask.testing import FlaskClient

    from sandbox.webcrm.app import create_app

    app = create_app(rate_limit=0, auth_codes="c=C")
    try:
        client = FlaskClient(app)
        token = client.post("/Auth/ApiLogin", data={"authCode": "c"}).json["AccessToken"]
        crm = app.extensions["webcrm"].crm
        monkeypatch.setattr(crm, "rows", lambda e: 1 / 0)
        response = client.get("/Organisations", headers={"Authorization": f"Bearer {token}"})
        assert response.status_code == 500
        assert response.json["Message"].startswith("Internal sandbox error (ZeroDivisionError)")
        assert "Traceback" not in response.get_data(as_text=True)
    finally:
        app.extensions["sandbox"].hooks.stop()
