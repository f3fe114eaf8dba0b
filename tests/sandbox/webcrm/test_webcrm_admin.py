"""webCRM-specific admin routes, seeders, reset, state persistence and thread safety."""

from __future__ import annotations

import concurrent.futures

import pytest
import requests

from sandbox.common import demo


def test_settings_and_validation(client):
    settings = client.get("/_sandbox/settings").json
    assert settings["auth_codes"] == {"sandbox-token": "Integration"}
    assert settings["token_lifetime"] == 3600
    assert settings["quirks"]["organisation_post_returns"] == "int"
    assert settings["linked_setup"] == {"1": "Varenummer", "2": "Navn", "3": "Enhed", "4": "Varegruppe"}
    for body in ({"rate_limit": -1}, {"token_lifetime": 0}, {"token_lifetime": "soon"}, {"auth_codes": ""},
                 {"auth_codes": "no-equals-sign"}, {"auth_codes": {"": "x"}}, {"colour": "red"}, ["x"]):
        response = client.put("/_sandbox/auth", json=body)
        assert response.status_code == 400, body
        assert response.json["error"]
    for body in ({"organisation_post_returns": "string"}, {"nope": 1}, {"empty_strings_as_null": "yes"},
                 {"timestamp_offset_minutes": 5000}):
        assert client.put("/_sandbox/quirks", json=body).status_code == 400, body
    assert client.put("/_sandbox/auth", json={"token_lifetime": 60}).json["token_lifetime"] == 60
    assert client.put("/_sandbox/auth", data=b"{bad", content_type="application/json").status_code == 400


def test_ui_edits_merge_and_use_the_ui_user(api, client):
    org = api.org("API ApS", OrganisationCity="Aarhus C", OrganisationExtraCustom1="D-1")
    response = client.put(f"/_sandbox/ui/Organisations/{org}", json={"OrganisationCity": "Horsens"})
    assert response.status_code == 200
    after = api.get(f"/Organisations/{org}").json
    assert after["OrganisationCity"] == "Horsens"
    assert after["OrganisationExtraCustom1"] == "D-1"       # a partial merge, not a replacement
    assert after["OrganisationUpdatedBy"] == "Anna Jensen"
    assert after["OrganisationCreatedBy"] == "Integration"
    client.put(f"/_sandbox/ui/organisations/{org}?by=Mette%20Dahl", json={"OrganisationName": "UI ApS"})
    assert api.get(f"/Organisations/{org}").json["OrganisationUpdatedBy"] == "Mette Dahl"
    created = client.post("/_sandbox/ui/QuotationLines/LinkedData", json={
        f"QuotationLineLinkedDataItemData{n}": "v" for n in range(1, 5)})
    assert created.status_code == 200
    assert created.json["QuotationLineLinkedDataItemId"] == 1
    assert client.post("/_sandbox/ui/Spaceships", json={}).status_code == 400
    assert client.put("/_sandbox/ui/Organisations/999", json={}).status_code == 404
    assert client.put(f"/_sandbox/ui/Organisations/{org}", json={"OrganisationOwner": "x"}).status_code == 400
    assert client.put(f"/_sandbox/ui/Organisations/{org}", json=[1]).status_code == 400


def test_ui_can_move_a_person_and_delete_with_cascade(api, client):
    a, b = api.org("A"), api.org("B")
    person = api.create("Persons", {"PersonOrganisationId": a, "PersonLastName": "Flyt"})
    assert client.put(f"/_sandbox/ui/Persons/{person}", json={"PersonOrganisationId": b}).status_code == 200
    assert api.get(f"/Persons/{person}").json["PersonOrganisationId"] == b
    assert client.put(f"/_sandbox/ui/Persons/{person}", json={"PersonOrganisationId": 99}).status_code == 400
    delivery = api.delivery(b)
    line = api.create("QuotationLines", {"QuotationLineOpportunityId": delivery})
    assert client.delete(f"/_sandbox/ui/Organisations/{b}").status_code == 200
    for path in (f"/Organisations/{b}", f"/Persons/{person}", f"/Deliveries/{delivery}", f"/QuotationLines/{line}"):
        assert api.get(path).status_code == 404, path
    assert api.get(f"/Organisations/{a}").status_code == 200
    assert client.delete("/_sandbox/ui/Organisations/12345").status_code == 404


@pytest.mark.parametrize("entity", ["Organisations", "Persons", "Users", "LinkedData", "Deliveries",
                                    "Opportunities"])
def test_seeders(client, api, entity):
    if entity in ("Persons", "Deliveries", "Opportunities"):
        assert client.post("/_sandbox/seed", json={"entity": entity, "count": 2}).status_code == 400
        client.post("/_sandbox/seed", json={"entity": "Organisations", "count": 3, "seed": 1})
    response = client.post("/_sandbox/seed", json={"entity": entity, "count": 4, "seed": 42})
    assert response.status_code == 200
    created = response.json["created"]
    assert len(created) == 4
    path = {"LinkedData": "QuotationLines/LinkedData"}.get(entity, entity)
    for ident in created:
        record = api.get(f"/{path}/{ident}").json
        if entity in ("Organisations", "Persons", "Users", "Deliveries", "Opportunities"):
            prefix = {"Organisations": "Organisation", "Persons": "Person", "Users": "User",
                      "Deliveries": "Delivery", "Opportunities": "Opportunity"}[entity]
            assert record[f"{prefix}CreatedBy"] == "Anna Jensen"
    assert client.post("/_sandbox/seed", json={"entity": "Spaceships", "count": 1}).status_code == 400


def test_demo_seeder_gives_every_flow_something_to_sync(client, api):
    created = client.post("/_sandbox/seed", json={"entity": "Demo", "count": 2, "seed": 1}).json["created"]
    assert created[:2] == ["Users/2", "Users/3"] and created[-2:] == ["Deliveries/1", "Deliveries/2"]
    orgs = api.get("/Organisations").json
    assert [o["OrganisationType"] for o in orgs] == ["Kunde", "Kunde", "Emne", "Leverandør"]
    assert all(o["OrganisationAddress"] and o["OrganisationPostCode"] and o["OrganisationCity"] for o in orgs)
    for org in orgs:
        persons = api.get(f"/Organisations/{org['OrganisationId']}/Persons").json
        assert 1 <= len(persons) <= 2 and all("@" in p["PersonEmail"] for p in persons)
    users = api.get("/Users").json
    assert len(users) == 3 and all("@" in u["UserEmail"] for u in users)
    numbers = {item["number"] for item in demo.items()}  # what the Uniconta demo seeder creates
    ready, later = (api.get(f"/{d}").json for d in created[-2:])
    assert (ready["DeliveryErpStatus"], later["DeliveryErpStatus"]) == ("ReadyForSynchronization",
                                                                      "NotReadyForSynchronization")
    for delivery in (ready, later):
        assert delivery["DeliveryOrganisationId"] in {o["OrganisationId"] for o in orgs[:2]}
        lines = api.get(f"/Deliveries/{delivery['DeliveryId']}/QuotationLines").json
        assert lines and {line["QuotationLineData1"] for line in lines} <= numbers
        assert all(line["QuotationLinePrice"] > 0 for line in lines)


def test_seeding_is_deterministic(app_factory, api_factory):
    names = []
    for _ in range(2):
        app = app_factory()
        app.test_client().post("/_sandbox/seed", json={"entity": "Organisations", "count": 5, "seed": 9})
        names.append([o["OrganisationName"] for o in api_factory(app).get("/Organisations").json])
    assert names[0] == names[1]
    assert any(ch in "".join(names[0]) for ch in "æøåÆØÅ")


def test_big_seed_list_and_query_stay_fast(client, api):
    import time

    started = time.perf_counter()
    assert client.post("/_sandbox/seed", json={"entity": "Organisations", "count": 10000, "seed": 1}).status_code == 200
    page = api.get("/Organisations?Page=10&Size=1000").json
    rows = api.get("/Queries", query_string={
        "script": "SELECT * FROM Organisation WHERE OrganisationUpdatedAt >= '2000-01-01' "
                  "ORDER BY OrganisationName DESC", "Size": 1000}).json
    assert len(page) == 1000
    assert len(rows) == 1000
    assert time.perf_counter() - started < 10


def test_reset_restores_defaults_and_keeps_tokens(api, client):
    api.org()
    client.put("/_sandbox/quirks", json={"organisation_post_returns": "none"})
    client.put("/_sandbox/fields/Organisation", json={"OrganisationCustom1": "x"})
    assert client.post("/_sandbox/reset").status_code == 200
    assert api.get("/Organisations").json == []
    assert [u["UserName"] for u in api.get("/Users").json] == ["Anna Jensen"]
    assert client.get("/_sandbox/quirks").json["organisation_post_returns"] == "int"
    assert api.get("/FieldsMetadata").json == []
    assert isinstance(api.post("/Organisations", json={"OrganisationName": "after reset"}).json, int)


def test_state_round_trip_into_a_new_app(api, client, app_factory, api_factory):
    org = api.org("Gemt ApS")
    client.put("/_sandbox/quirks", json={"user_post_returns": "object"})
    state = client.get("/_sandbox/state").json
    other = app_factory()
    assert other.test_client().put("/_sandbox/state", json=state).status_code == 200
    other_api = api_factory(other)
    assert other_api.get(f"/Organisations/{org}").json["OrganisationName"] == "Gemt ApS"
    assert other_api.org("Next") == org + 1  # sequences come along
    assert "UserId" in other_api.post("/Users", json={"UserName": "x"}).json


def test_state_file_persists(tmp_path, app_factory, api_factory):
    path = tmp_path / "webcrm.json"
    app = app_factory(state_file=str(path))
    api = api_factory(app)
    org = api.org("Fil ApS")
    app.extensions["sandbox"].store.save()
    again = app_factory(state_file=str(path))
    assert api_factory(again).get(f"/Organisations/{org}").json["OrganisationName"] == "Fil ApS"
    assert len(api_factory(again).get("/Users").json) == 1  # defaults are not added twice


def test_concurrent_writes_over_http(live_factory):
    server = live_factory()
    token = requests.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"}).json()["AccessToken"]
    headers = {"Authorization": f"Bearer {token}"}
    org = requests.post(f"{server.url}/Organisations", json={"OrganisationName": "Parallel"}, headers=headers).json()
    delivery = requests.post(f"{server.url}/Deliveries", json={"DeliveryOrganisationId": org}, headers=headers).json()

    def work(i: int) -> tuple[int, int]:
        with requests.Session() as s:
            s.headers.update(headers)
            a = s.post(f"{server.url}/Organisations", json={"OrganisationName": f"T{i}"}).json()
            b = s.post(f"{server.url}/QuotationLines", json={"QuotationLineOpportunityId": delivery,
                                                              "QuotationLineQuantity": 1,
                                                              "QuotationLinePrice": 1.01}).json()
            return a, b

    with concurrent.futures.ThreadPoolExecutor(8) as pool:
        results = list(pool.map(work, range(40)))
    assert len({a for a, _ in results}) == 40
    assert len({b for _, b in results}) == 40
    total = requests.get(f"{server.url}/Deliveries/{delivery}", headers=headers).json()["DeliveryOrderValue"]
    assert total == 40.4
