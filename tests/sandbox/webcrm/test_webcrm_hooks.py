"""Hooks CRUD and hook delivery over real HTTP (API writes and admin "UI" edits)."""

from __future__ import annotations

import pytest
import requests

HOOK_ENTITIES = ("Organisations", "Persons", "Users", "Deliveries", "Opportunities", "QuotationLines")


def hook(url: str, event: str = "Create", **extra):
    return {"TargetUrl": url, "EventType": event, "IsEnabled": True, "Filter": ["All"], **extra}


@pytest.mark.parametrize("plural", HOOK_ENTITIES)
def test_hook_crud(api, plural):
    ident = api.create(f"{plural}/Hooks", hook("https://example.dk/hook", "Update"))
    assert isinstance(ident, int)
    got = api.get(f"/{plural}/Hooks/{ident}").json
    assert got["Id"] == ident
    assert (got["EventType"], got["IsEnabled"], got["Filter"]) == ("Update", True, ["All"])
    assert got["CreatedBy"] == got["UpdatedBy"] == "Integration"
    assert [h["Id"] for h in api.get(f"/{plural}/Hooks").json] == [ident]
    assert api.put(f"/{plural}/Hooks/{ident}", json=hook("https://example.dk/other", IsEnabled=False)
                   ).status_code == 200
    got = api.get(f"/{plural}/Hooks/{ident}").json
    assert (got["TargetUrl"], got["EventType"], got["IsEnabled"]) == ("https://example.dk/other", "Create", False)
    assert api.delete(f"/{plural}/Hooks/{ident}").status_code == 200
    assert api.get(f"/{plural}/Hooks/{ident}").status_code == 404
    assert api.delete(f"/{plural}/Hooks/{ident}").status_code == 404


def test_hook_validation(api):
    url = "https://example.dk/hook"
    bad = [
        {"EventType": "Create", "IsEnabled": True, "Filter": ["All"]},      # no TargetUrl
        {"TargetUrl": url, "EventType": "Create", "Filter": ["All"]},       # no IsEnabled
        {"TargetUrl": url, "EventType": "Create", "IsEnabled": True},       # no Filter
        hook("not a url"),
        hook("ftp://example.dk/x"),
        hook(url, "Upsert"),
        hook(url, Filter=[]),
        hook(url, Filter=["Responsible"]),  # a Deliveries filter, not an Organisations one
        hook(url, Filter="All"),
        hook(url, IsEnabled="sometimes"),
    ]
    for body in bad:
        response = api.post("/Organisations/Hooks", json=body)
        assert response.status_code == 400, body
        assert response.json["Message"]
    assert api.post("/Organisations/Hooks", json=hook(url, Filter=["Owner", "Owner2"])).status_code == 200
    assert api.post("/Deliveries/Hooks", json=hook(url, Filter=["Responsible3"])).status_code == 200
    org_hook = api.create("Organisations/Hooks", hook(url))
    assert api.get(f"/Persons/Hooks/{org_hook}").status_code == 404  # ids belong to one entity


@pytest.fixture
def live(live_factory):
    server = live_factory()
    session = requests.Session()
    token = session.post(f"{server.url}/Auth/ApiLogin", data={"authCode": "sandbox-token"}).json()["AccessToken"]
    session.headers["Authorization"] = f"Bearer {token}"
    session.base = server.url  # type: ignore[attr-defined]
    yield session
    session.close()


def flush(session) -> None:
    assert session.post(f"{session.base}/_sandbox/webhooks/flush?timeout=10").json()["flushed"] is True


def test_hook_delivery_on_api_and_ui_changes(live, receiver):
    base = live.base
    for event in ("Create", "Update", "Delete"):
        assert live.post(f"{base}/Organisations/Hooks", json=hook(f"{receiver.url}/org", event)).ok
    assert live.post(f"{base}/Persons/Hooks", json=hook(f"{receiver.url}/person", "Create")).ok
    # never delivered: disabled, or a filter without "All"
    live.post(f"{base}/Organisations/Hooks", json=hook(f"{receiver.url}/disabled", "Create", IsEnabled=False))
    live.post(f"{base}/Organisations/Hooks", json=hook(f"{receiver.url}/owner", "Create", Filter=["Owner"]))

    org = live.post(f"{base}/Organisations", json={"OrganisationName": "Hook ApS"}).json()
    dto = live.get(f"{base}/Organisations/{org}").json()
    assert live.put(f"{base}/Organisations/{org}", json={**dto, "OrganisationCity": "Vejle"}).ok
    person = live.post(f"{base}/_sandbox/ui/Persons", json={"PersonOrganisationId": org, "PersonLastName": "Bæk"},
                       ).json()["PersonId"]
    assert live.put(f"{base}/_sandbox/ui/Organisations/{org}?by=Mette%20Dahl", json={"OrganisationCity": "Kolding"}).ok
    assert live.delete(f"{base}/_sandbox/ui/Organisations/{org}").ok  # cascades to the person
    flush(live)

    received = receiver.received
    assert {r["path"] for r in received} == {"/org", "/person"}
    assert all(r["headers"]["Content-Type"] == "application/json" for r in received)
    org_events = [(p["EventType"], p["Data"]["OrganisationCity"], p["Data"]["OrganisationUpdatedBy"])
                  for p in receiver.payloads() if p["Entity"] == "Organisation"]
    assert org_events == [("Create", "", "Integration"), ("Update", "Vejle", "Integration"),
                          ("Update", "Kolding", "Mette Dahl"), ("Delete", "Kolding", "Mette Dahl")]
    first = receiver.payloads()[0]
    assert set(first) == {"HookId", "EventType", "Entity", "EntityId", "Timestamp", "Data"}
    assert first["EntityId"] == org
    assert first["Timestamp"].endswith("+00:00")
    assert len(first["Data"]) == 109  # the whole OrganisationDto
    person_events = [(p["EventType"], p["EntityId"], p["Data"]["PersonCreatedBy"])
                     for p in receiver.payloads() if p["Entity"] == "Person"]
    assert person_events == [("Create", person, "Anna Jensen")]
    log = live.get(f"{base}/_sandbox/webhooks").json()["deliveries"]
    assert len(log) == 5
    assert all(d["status"] == 200 for d in log)


def test_line_changes_fire_line_and_parent_hooks(live, receiver):
    base = live.base
    org = live.post(f"{base}/Organisations", json={"OrganisationName": "Linjer A/S"}).json()
    delivery = live.post(f"{base}/Deliveries", json={"DeliveryOrganisationId": org}).json()
    for plural in ("QuotationLines", "Deliveries"):
        for event in ("Create", "Update", "Delete"):
            live.post(f"{base}/{plural}/Hooks", json=hook(f"{receiver.url}/{plural}", event))
    line = live.post(f"{base}/QuotationLines", json={"QuotationLineOpportunityId": delivery,
                                                     "QuotationLineQuantity": 2, "QuotationLinePrice": 5}).json()
    assert live.delete(f"{base}/QuotationLines/{line}").ok
    flush(live)
    events = [(p["Entity"], p["EventType"], p["EntityId"]) for p in receiver.payloads()]
    assert events == [("QuotationLine", "Create", line), ("Delivery", "Update", delivery),
                      ("QuotationLine", "Delete", line), ("Delivery", "Update", delivery)]
    values = [p["Data"]["DeliveryOrderValue"] for p in receiver.payloads() if p["Entity"] == "Delivery"]
    assert values == [10.0, 0.0]


def test_parent_touch_quirk_off(live, receiver):
    base = live.base
    live.put(f"{base}/_sandbox/quirks", json={"line_change_touches_parent": False})
    org = live.post(f"{base}/Organisations", json={"OrganisationName": "Stille ApS"}).json()
    delivery = live.post(f"{base}/Deliveries", json={"DeliveryOrganisationId": org}).json()
    before = live.get(f"{base}/Deliveries/{delivery}").json()
    live.post(f"{base}/Deliveries/Hooks", json=hook(f"{receiver.url}/d", "Update"))
    live.post(f"{base}/QuotationLines", json={"QuotationLineOpportunityId": delivery, "QuotationLineQuantity": 1,
                                              "QuotationLinePrice": 7})
    flush(live)
    after = live.get(f"{base}/Deliveries/{delivery}").json()
    assert after["DeliveryOrderValue"] == 7.0
    assert after["DeliveryUpdatedAt"] == before["DeliveryUpdatedAt"]
    assert receiver.received == []


def test_webhook_faults_apply(live, receiver):
    base = live.base
    live.post(f"{base}/Users/Hooks", json=hook(f"{receiver.url}/u", "Create"))
    live.put(f"{base}/_sandbox/faults", json={"webhook_drop_rate": 1.0})
    live.post(f"{base}/Users", json={"UserName": "Dropped"})
    flush(live)
    assert receiver.received == []
    assert live.get(f"{base}/_sandbox/webhooks").json()["deliveries"][0]["dropped"] is True
    live.put(f"{base}/_sandbox/faults", json={"webhook_drop_rate": 0.0, "webhook_duplicate_rate": 1.0})
    live.put(f"{base}/_sandbox/ui/Users/1", json={"UserTitle": "Chef"})  # a UI edit of a user
    live.post(f"{base}/Users", json={"UserName": "Twice"})
    flush(live)
    assert [p["Data"]["UserName"] for p in receiver.payloads()] == ["Twice", "Twice"]


def test_unreachable_target_is_logged_not_retried(live):
    base = live.base
    live.post(f"{base}/Organisations/Hooks", json=hook("http://127.0.0.1:9/nothing-listens", "Create"))
    live.post(f"{base}/Organisations", json={"OrganisationName": "Ingen modtager"})
    flush(live)
    log = live.get(f"{base}/_sandbox/webhooks").json()["deliveries"]
    assert len(log) == 1
    assert "error" in log[0]
