"""The collection PATCH (bulk upsert): "Updates or inserts submitted X. Returns assigned ids for inserted X
and error messages if insert/update fails." -> string[] [D S3], in the sandbox's strict reading: one
string per item in input order, each item exactly as PUT (id > 0) or POST (id 0 / none) would do it.
The quirk `patch_result` switches to the other readings.
"""

from __future__ import annotations

import pytest
import requests

PATCH_ENTITIES = ("Organisations", "Persons", "Users", "Deliveries", "Opportunities", "QuotationLines")


def hook(url: str, event: str) -> dict:
    return {"TargetUrl": url, "EventType": event, "IsEnabled": True, "Filter": ["All"]}


def test_mixed_batch_answers_one_string_per_item_in_order(api):
    keep = api.org("Beholdes ApS", OrganisationCity="Odense")
    edit = api.org("Rettes ApS", OrganisationCity="Vejle", OrganisationPostCode="7100")
    before = api.get(f"/Organisations/{edit}").json
    response = api.patch("/Organisations", json=[
        {"OrganisationId": 0, "OrganisationName": "Ny Et ApS"},
        {**before, "OrganisationCity": "Kolding"},
        {"OrganisationId": 999_999, "OrganisationName": "Findes ikke"},
        {"OrganisationName": "x" * 201},
        {"OrganisationName": "Ny To ApS"},  # no id at all: an insert too
        "not an object",
    ])
    assert response.status_code == 200
    assert response.content_type.startswith("application/json")
    answer = response.json
    assert len(answer) == 6 and all(isinstance(s, str) for s in answer)
    first, second = int(answer[0]), int(answer[4])
    assert answer[1] == str(edit)
    assert answer[2] == "Organisation with id 999999 was not found."
    assert answer[3] == "The field OrganisationName must be a string with a maximum length of 200."
    assert answer[5] == "The item must be a JSON object (OrganisationDto)."
    assert second > first > edit
    assert api.get(f"/Organisations/{first}").json["OrganisationName"] == "Ny Et ApS"
    assert api.get(f"/Organisations/{second}").json["OrganisationCreatedBy"] == "Integration"
    updated = api.get(f"/Organisations/{edit}").json
    assert (updated["OrganisationCity"], updated["OrganisationPostCode"]) == ("Kolding", "7100")
    assert updated["OrganisationCreatedAt"] == before["OrganisationCreatedAt"]
    assert api.get(f"/Organisations/{keep}").json["OrganisationCity"] == "Odense"
    assert len(api.get("/Organisations").json) == 4  # the failed items wrote nothing


def test_an_update_is_exactly_a_put(api):
    """Full replacement: omitted fields go back to their defaults, as PUT does (the strict reading)."""
    by_put = api.org("Samme ApS", OrganisationCity="Aarhus", OrganisationTelephone="12345678")
    by_patch = api.org("Samme ApS", OrganisationCity="Aarhus", OrganisationTelephone="12345678")
    assert api.put(f"/Organisations/{by_put}", json={"OrganisationName": "Samme ApS"}).status_code == 200
    assert api.patch("/Organisations", json=[{"OrganisationId": by_patch, "OrganisationName": "Samme ApS"}]
                     ).json == [str(by_patch)]
    put, patched = api.get(f"/Organisations/{by_put}").json, api.get(f"/Organisations/{by_patch}").json
    assert patched["OrganisationCity"] == patched["OrganisationTelephone"] == ""
    ignore = {"OrganisationId", "OrganisationCreatedAt", "OrganisationUpdatedAt"}
    assert {k: v for k, v in put.items() if k not in ignore} == {k: v for k, v in patched.items() if k not in ignore}


def test_an_insert_is_exactly_a_post(api):
    posted = api.create("Persons", {"PersonOrganisationId": api.org(), "PersonFirstName": "Søren",
                                    "PersonLastName": "Kjær"})
    org = api.get(f"/Persons/{posted}").json["PersonOrganisationId"]
    (patched,) = api.patch("/Persons", json=[{"PersonId": "0", "PersonOrganisationId": org,
                                              "PersonFirstName": "Søren", "PersonLastName": "Kjær"}]).json
    a, b = api.get(f"/Persons/{posted}").json, api.get(f"/Persons/{patched}").json
    ignore = {"PersonId", "PersonCreatedAt", "PersonUpdatedAt"}
    assert {k: v for k, v in a.items() if k not in ignore} == {k: v for k, v in b.items() if k not in ignore}
    assert b["PersonName"] == "Søren Kjær"


def test_validation_is_that_of_put_and_post(api):
    org, other = api.org(), api.org("Anden ApS")
    person = api.create("Persons", {"PersonOrganisationId": org, "PersonLastName": "Holm"})
    answer = api.patch("/Persons", json=[
        {"PersonOrganisationId": org},                                   # PersonLastName is required
        {"PersonOrganisationId": 424242, "PersonLastName": "Ø"},         # unknown organisation
        {"PersonId": person, "PersonOrganisationId": other, "PersonLastName": "Holm-Berg"},  # cannot move
        {"PersonId": person, "PersonStatus": "Sometimes", "PersonLastName": "x"},            # bad enum
    ]).json
    assert answer[0] == "The PersonLastName field is required."
    assert answer[1] == "PersonOrganisationId: organisation with id 424242 does not exist."
    assert answer[2] == str(person)
    assert answer[3].startswith("PersonStatus: 'Sometimes' is not one of Active")
    got = api.get(f"/Persons/{person}").json
    assert (got["PersonLastName"], got["PersonOrganisationId"]) == ("Holm-Berg", org)


@pytest.mark.parametrize("plural", PATCH_ENTITIES)
def test_every_entity_with_a_swagger_patch_upserts(api, plural):
    org = api.org()
    delivery = api.delivery(org)
    insert = {
        "Organisations": {"OrganisationName": "Ny ApS"},
        "Persons": {"PersonOrganisationId": org, "PersonLastName": "Bæk"},
        "Users": {"UserName": "Mette Dahl", "UserEmail": "md@example.dk"},
        "Deliveries": {"DeliveryOrganisationId": org, "DeliveryDescription": "Ordre"},
        "Opportunities": {"OpportunityOrganisationId": org},
        "QuotationLines": {"QuotationLineOpportunityId": delivery, "QuotationLineQuantity": 2,
                           "QuotationLinePrice": 10},
    }[plural]
    id_field = {"Organisations": "OrganisationId", "Persons": "PersonId", "Users": "UserId",
                "Deliveries": "DeliveryId", "Opportunities": "OpportunityId",
                "QuotationLines": "QuotationLineId"}[plural]
    (new,) = api.patch(f"/{plural}", json=[insert]).json
    record = api.get(f"/{plural}/{new}").json
    assert record[id_field] == int(new)
    (again,) = api.patch(f"/{plural}", json=[record]).json
    assert again == new
    singular = id_field[:-2]
    assert api.patch(f"/{plural}", json=[{id_field: 987_654}]).json == [f"{singular} with id 987654 was not found."]


def test_quotation_lines_patch_keeps_the_order_totals(api):
    delivery = api.delivery(api.org())
    line = api.create("QuotationLines", {"QuotationLineOpportunityId": delivery, "QuotationLineQuantity": 1,
                                         "QuotationLinePrice": 100})
    dto = api.get(f"/QuotationLines/{line}").json
    answer = api.patch("/QuotationLines", json=[
        {**dto, "QuotationLineQuantity": 3},
        {"QuotationLineOpportunityId": delivery, "QuotationLineQuantity": 1, "QuotationLinePrice": 5},
        {"QuotationLineOpportunityId": 31337},
    ]).json
    assert answer[:1] == [str(line)] and answer[1].isdigit()
    assert answer[2] == "QuotationLineOpportunityId: no delivery or opportunity has id 31337."
    assert api.get(f"/Deliveries/{delivery}").json["DeliveryOrderValue"] == 305.0


def test_empty_array_is_an_empty_answer(api):
    response = api.patch("/Organisations", json=[])
    assert (response.status_code, response.json) == (200, [])


@pytest.mark.parametrize(("body", "content_type", "status", "text"), [
    (b'{"OrganisationName": "x"}', "application/json", 400, "must be a JSON array of OrganisationDto"),
    (b'"text"', "application/json", 400, "must be a JSON array"),
    (b"null", "application/json", 400, "must be a JSON array"),
    (b"[{not json", "application/json", 400, "not valid JSON"),
    (b"", "application/json", 400, "non-empty request body"),
    (b'[{"OrganisationName": "x"}]', "text/plain", 415, "Unsupported Media Type"),
])
def test_bad_bodies(api, body, content_type, status, text):
    response = api.patch("/Organisations", data=body, headers={"Content-Type": content_type})
    assert response.status_code == status
    assert text in response.json["Message"]
    assert api.get("/Organisations").json == []


def test_json_patch_content_type_is_accepted(api):
    """The Swagger lists application/json-patch+json first, though the body is an array of DTOs."""
    response = api.patch("/Organisations", data=b'[{"OrganisationName": "x"}]',
                         headers={"Content-Type": "application/json-patch+json"})
    assert response.status_code == 200 and response.json[0].isdigit()


def test_at_most_1000_items_by_default(api):
    too_many = [{"OrganisationName": f"Org {n}"} for n in range(1001)]
    response = api.patch("/Organisations", json=too_many)
    assert response.status_code == 400
    assert response.json["Message"] == "The request has 1001 items; at most 1000 Organisations can be sent in one PATCH."
    assert api.get("/Organisations").json == []  # nothing written
    assert len(api.patch("/Organisations", json=too_many[:1000]).json) == 1000


def test_the_maximum_is_an_option_an_env_var_and_a_quirk(app_factory, api_factory, monkeypatch, client):
    api = api_factory(app_factory(patch_max_items=2))
    assert api.patch("/Organisations", json=[{}, {}, {}]).status_code == 400
    assert api.client.get("/_sandbox/quirks").json["patch_max_items"] == 2
    api.client.put("/_sandbox/quirks", json={"patch_max_items": 3})
    assert api.patch("/Organisations", json=[{}, {}, {}]).status_code == 200
    api.client.post("/_sandbox/reset")  # back to the option, not to 1000
    assert api.client.get("/_sandbox/quirks").json["patch_max_items"] == 2

    monkeypatch.setenv("WEBCRM_SANDBOX_PATCH_MAX_ITEMS", "5")
    assert app_factory().extensions["webcrm"].quirk("patch_max_items") == 5
    for bad in (0, 100_001, "many", True):
        assert client.put("/_sandbox/quirks", json={"patch_max_items": bad}).status_code == 400
    with pytest.raises(ValueError, match="patch_max_items"):
        app_factory(patch_max_items=0)


def test_patch_result_quirk(api, client):
    existing = api.org("Findes ApS")
    batch = [{"OrganisationName": "Ny"}, {"OrganisationId": existing, "OrganisationName": "Findes ApS"},
             {"OrganisationId": 555, "OrganisationName": "?"}, {"OrganisationName": "Også ny"}]
    client.put("/_sandbox/quirks", json={"patch_result": "inserted_ids_only"})
    answer = api.patch("/Organisations", json=batch).json
    assert answer[0].isdigit() and answer[2].isdigit()
    assert answer[1] == "Organisation with id 555 was not found."
    assert len(answer) == 3  # nothing for the update
    client.put("/_sandbox/quirks", json={"patch_result": "empty"})
    response = api.patch("/Organisations", json=batch)
    assert (response.status_code, response.data) == (200, b"")
    client.put("/_sandbox/quirks", json={"patch_result": "no_content"})
    response = api.patch("/Organisations", json=batch)
    assert (response.status_code, response.data) == (204, b"")
    assert len(api.get("/Organisations").json) == 1 + 3 * 2  # every mode writes the same
    assert client.put("/_sandbox/quirks", json={"patch_result": "sorted"}).status_code == 400
    client.post("/_sandbox/reset")
    assert client.get("/_sandbox/quirks").json["patch_result"] == "strict"


def test_no_patch_on_a_record_or_on_the_catalogue(api):
    for path in ("/Organisations/1", "/QuotationLines/LinkedData", "/Organisations/Hooks"):
        response = api.patch(path, json=[])
        assert response.status_code == 405, path
        assert response.json["Message"] == "The requested resource does not support http method 'PATCH'."
        assert "PATCH" not in response.headers["Allow"]


def test_patch_needs_a_token(client):
    assert client.patch("/Organisations", json=[]).status_code == 401


def test_a_state_saved_before_the_patch_quirks_gets_their_defaults(app_factory, api_factory, tmp_path):
    app = app_factory()
    quirks = app.extensions["webcrm"].settings()["quirks"]
    for name in ("patch_result", "patch_max_items", "linked_data_query_row"):
        del quirks[name]
    api = api_factory(app)
    assert api.patch("/Organisations", json=[{}]).json == ["1"]
    assert api.client.get("/_sandbox/quirks").json["patch_max_items"] == 1000


# -- one call: call log, rate limit, faults, hooks (real HTTP) ----------------------------------------------
@pytest.fixture
def live(live_factory):
    server = live_factory(rate_limit=0)
    session = requests.Session()
    token = session.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"}).json()["AccessToken"]
    session.headers["Authorization"] = f"Bearer {token}"
    session.base = server.url  # type: ignore[attr-defined]
    yield session
    session.close()


def test_one_patch_is_one_call_and_fires_a_hook_per_record(live, receiver):
    base = live.base
    for event in ("Create", "Update"):
        assert live.post(f"{base}/Organisations/Hooks", json=hook(f"{receiver.url}/org", event)).ok
    existing = live.post(f"{base}/Organisations", json={"OrganisationName": "Gammel ApS"}).json()
    live.delete(f"{base}/_sandbox/calls")
    dto = live.get(f"{base}/Organisations/{existing}").json()
    response = live.patch(f"{base}/Organisations", json=[
        {"OrganisationName": "Ny ApS"}, {**dto, "OrganisationCity": "Ribe"}, {"OrganisationId": 77}])
    assert response.status_code == 200
    new = int(response.json()[0])
    calls = live.get(f"{base}/_sandbox/calls").json()
    patch_calls = [c for c in calls["calls"] if c["method"] == "PATCH"]
    assert [(c["path"], c["status"]) for c in patch_calls] == [("/Organisations", 200)]
    assert live.post(f"{base}/_sandbox/webhooks/flush?timeout=10").json()["flushed"] is True
    events = [(p["EventType"], p["EntityId"]) for p in receiver.payloads()]
    assert events == [("Create", existing), ("Create", new), ("Update", existing)]
    assert receiver.payloads()[-1]["Data"]["OrganisationCity"] == "Ribe"


def test_a_patch_counts_once_against_the_rate_limit(live):
    base = live.base
    assert live.put(f"{base}/_sandbox/auth", json={"rate_limit": 3}).ok  # clears the window
    statuses = [live.patch(f"{base}/Organisations", json=[{"OrganisationName": f"O{n}"} for n in range(50)]
                           ).status_code for _ in range(4)]
    assert statuses == [200, 200, 200, 429]
    assert live.get(f"{base}/_sandbox/settings").json()["rate_used"]["sandbox-token"] == 3
    live.put(f"{base}/_sandbox/auth", json={"rate_limit": 0})
    assert len(live.get(f"{base}/Organisations?Size=1000").json()) == 150


def test_an_injected_fault_fails_the_whole_patch_and_writes_nothing(live):
    base = live.base
    live.put(f"{base}/_sandbox/faults", json={"error_rate": 1.0, "error_status": 503, "error_path": "^/Organisations$"})
    response = live.patch(f"{base}/Organisations", json=[{"OrganisationName": "Aldrig"}])
    assert response.status_code == 503
    live.put(f"{base}/_sandbox/faults", json={"error_rate": 0.0})
    assert live.get(f"{base}/Organisations").json() == []
