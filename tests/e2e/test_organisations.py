"""Organisations ↔ debtors end to end: webCRM UI changes → hooks → receiver → worker → Uniconta, and back.

The module runs its own stack so the organisation flow has the guide's full configuration: `t1`
triggers on OrganisationType with a number series, `t2` (same sandboxes, hooks installed only in
its own tests) triggers on OrganisationStatus with the organisation-id strategy and creates
organisations for debtors made in Uniconta.
"""

from __future__ import annotations

import threading
import time
from typing import Any

import pytest
import requests

from sync.clients.errors import Transient
from sync.config import load_settings
from sync.events import Event
from sync.flows import organisations as flow
from sync.runtime import Runtime
from sync.state import deadletters, journal, waiting
from tests.e2e.conftest import Stack, StackConfig, clean_slate, settle
from tests.support.stack import (
    CONNECTION,
    TOKEN,
    admin,
    clean_sync_state,
    wait_for,
)

pytestmark = pytest.mark.slow

NUMBER, STATUS, EAN, PAYMENT, GROUP = (f"OrganisationExtraCustom{i}" for i in (1, 2, 3, 4, 5))
CURRENCY, VAT_GROUP, INVOICE_EMAIL = "OrganisationCustom1", "OrganisationCustom2", "OrganisationCustom3"
SECOND = "t2"

FLOW_SETTINGS = """
status_field = "OrganisationExtraCustom2"
shown_fields = { ean = "OrganisationExtraCustom3", payment_terms = "OrganisationExtraCustom4", debtor_group = "OrganisationExtraCustom5" }
source_fields = { cvr = "OrganisationVatNumber", phone = "OrganisationTelephone", currency = "OrganisationCustom1", vat_group = "OrganisationCustom2", invoice_email = "OrganisationCustom3" }
"""
EXTRA = f"""
[connections.{CONNECTION}.organisations]
required_fields = ["name", "address", "postcode", "city", "country", "cvr"]
country_names = {{ "Holland (NL)" = "Netherlands" }}
{FLOW_SETTINGS}
[connections.{SECOND}.organisations]
trigger_field = "OrganisationStatus"
trigger_keywords = ["Kunde", "A-kunde"]
debtor_number_strategy = "organisation_id"
debtor_number_prefix = "W"
create_from_uniconta = true
{FLOW_SETTINGS}
"""

COMPLETE = {"OrganisationName": "Ærø Æblemost & Søn ApS", "OrganisationAddress": "Østergade 12\n2. sal",
            "OrganisationPostCode": "5970", "OrganisationCity": "Ærøskøbing", "OrganisationCountry": "Danmark",
            "OrganisationVatNumber": "12345674", "OrganisationTelephone": "+45 62 52 10 00",
            CURRENCY: "DKK", VAT_GROUP: "U25", INVOICE_EMAIL: "faktura@aeblemost.dk"}


@pytest.fixture(scope="module")
def stack_config() -> StackConfig:
    """The shared stack with this module's organisation settings and a second connection."""
    return StackConfig("e2e-organisations", extra=EXTRA, connections={SECOND: ("organisations",)})


@pytest.fixture
def e2e_status(stack: Stack) -> Stack:
    """A clean slate with the hooks of the second connection (trigger on OrganisationStatus) only."""
    return clean_slate(stack, SECOND)


# --------------------------------------------------------------------------- helpers


def organisation(stack: Stack, org_id: int) -> dict[str, Any]:
    """Read from the sandbox's state (admin: no API call, no rate limit spent)."""
    return admin(stack.webcrm_url, "GET", "/state")["tables"]["Organisations"][str(org_id)]


def organisations(stack: Stack) -> dict[str, dict[str, Any]]:
    return admin(stack.webcrm_url, "GET", "/state")["tables"]["Organisations"]


def debtors(stack: Stack) -> dict[str, dict[str, Any]]:
    """Debtors by Account with their user fields as plain keys, from the sandbox's state."""
    rows = admin(stack.uniconta_url, "GET", "/state")["tables"]["Debtor"].values()
    return {r["Account"]: {**{k: v for k, v in r.items() if k != "_user"}, **(r.get("_user") or {})} for r in rows}


def debtor_of(stack: Stack, org_id: int) -> dict[str, Any] | None:
    found = [d for d in debtors(stack).values() if d.get("WebcrmId") == str(org_id)]
    assert len(found) <= 1, found
    return found[0] if found else None


def new_org(stack: Stack, **fields: Any) -> int:
    return int(admin(stack.webcrm_url, "POST", "/ui/Organisations", json=fields)["OrganisationId"])


def edit_org(stack: Stack, org_id: int, **fields: Any) -> None:
    admin(stack.webcrm_url, "PUT", f"/ui/Organisations/{org_id}", json=fields)


def edit_debtor(stack: Stack, method: str, **fields: Any) -> None:
    admin(stack.uniconta_url, method, "/ui/Debtor", json=fields)


def writes(stack: Stack) -> tuple[list[str], list[str]]:
    """(webCRM writes, Uniconta writes) from the sandboxes' call logs (hook installation left out)."""
    def of(base: str) -> list[str]:
        calls = admin(base, "GET", "/calls")["calls"]
        return [f"{c['method']} {c['path']}" for c in calls if c["method"] in ("POST", "PUT", "DELETE")
                and "Hooks" not in c["path"] and "TableChangeEvent" not in c["path"] and "Auth" not in c["path"]]
    return of(stack.webcrm_url), of(stack.uniconta_url)



def entries(stack: Stack, org_id: int | str, kind: str, entity: str = "organisation",
            connection: str = CONNECTION) -> list[dict[str, Any]]:
    return [e for e in journal.entries(stack.redis, connection, entity, str(org_id)) if e["kind"] == kind]


def linked(stack: Stack, org_id: int, connection: str = CONNECTION) -> dict[str, Any]:
    try:
        return wait_for(lambda: (d := debtor_of(stack, org_id)) and organisation(stack, org_id)[NUMBER] == d["Account"]
                        and d, what=f"debtor of organisation {org_id} with its number in webCRM")
    except AssertionError as err:
        story = [e for e in journal.entries(stack.redis, connection, "organisation", str(org_id)) if e["kind"] != "api"]
        calls = [(c["method"], c["path"], c["at"]) for c in admin(stack.webcrm_url, "GET", "/calls")["calls"]
                 if c["method"] == "PUT"]
        raise AssertionError(f"{err}\njournal: {story[:30]}\nwebCRM PUTs: {calls}") from None


# --------------------------------------------------------------------------- webCRM → Uniconta


def test_customer_becomes_debtor_with_every_field_and_echoes_cause_no_writes(e2e: Stack) -> None:
    org_id = new_org(e2e, OrganisationType="Kunde", **COMPLETE)
    debtor = linked(e2e, org_id)
    assert debtor["Account"] == "10000"  # the series' first number
    assert debtor["Name"] == "Ærø Æblemost & Søn ApS"
    assert (debtor["Address1"], debtor["Address2"], debtor["Address3"]) == ("Østergade 12", "2. sal", None)
    assert (debtor["ZipCode"], debtor["City"], debtor["Country"]) == ("5970", "Ærøskøbing", "Denmark")
    assert (debtor["CompanyRegNo"], debtor["Phone"], debtor["Currency"]) == ("12345674", "+45 62 52 10 00", "DKK")
    assert (debtor["Vat"], debtor["InvoiceEmail"]) == ("U25", "faktura@aeblemost.dk")
    assert debtor["WebcrmId"] == str(org_id)
    settle(e2e)
    org = organisation(e2e, org_id)
    assert org[NUMBER] == "10000" and org[STATUS] == "Uniconta: debtor 10000"
    # One insert and one write-back; their webhooks (debtor add, organisation update) wrote nothing.
    webcrm_writes, uniconta_writes = writes(e2e)
    assert uniconta_writes == ["POST /api/Entities/Insert/DebtorClientUser"]
    assert webcrm_writes == [f"PUT /Organisations/{org_id}"]
    assert entries(e2e, org_id, "done")[0]["action"] == "unchanged"
    assert entries(e2e, "10000", "done", entity="debtor")[0]["action"] == "unchanged"

    # Uniconta → webCRM: EAN, payment terms and debtor group are shown; the echo writes nothing more.
    edit_debtor(e2e, "PUT", Account="10000", EAN="5790001234567", Payment="Netto 30", Group="Indland")
    wait_for(lambda: (o := organisation(e2e, org_id))[EAN] == "5790001234567" and o[PAYMENT] == "Netto 30"
             and o[GROUP] == "Indland", what="shown fields in webCRM")
    settle(e2e)
    webcrm_writes, uniconta_writes = writes(e2e)
    assert webcrm_writes == [f"PUT /Organisations/{org_id}"] * 2
    assert uniconta_writes == ["POST /api/Entities/Insert/DebtorClientUser"]
    assert deadletters.count(e2e.redis) == 0


def test_keyword_on_status_with_organisation_id_numbers(e2e_status: Stack) -> None:
    prospect = new_org(e2e_status, OrganisationStatus="Emne", OrganisationType="Kunde", **COMPLETE)
    org_id = new_org(e2e_status, OrganisationStatus="a-kunde", **COMPLETE)  # keywords match case-insensitively
    debtor = wait_for(lambda: debtor_of(e2e_status, org_id), what="debtor from the Status trigger")
    assert debtor["Account"] == f"W{org_id}"
    wait_for(lambda: organisation(e2e_status, org_id)[NUMBER] == f"W{org_id}", what="number in webCRM")
    settle(e2e_status)
    assert debtor_of(e2e_status, prospect) is None  # Type "Kunde" means nothing to this connection
    assert entries(e2e_status, prospect, "done", connection=SECOND)[0]["action"] in ("skipped", "unchanged")


def test_missing_fields_are_reported_then_filled_creates_the_debtor(e2e: Stack) -> None:
    partial = {k: v for k, v in COMPLETE.items() if k not in ("OrganisationVatNumber", "OrganisationPostCode")}
    org_id = new_org(e2e, OrganisationType="Kunde", **partial)
    wait_for(lambda: organisation(e2e, org_id)[STATUS] == "Uniconta: missing postcode, CVR", what="status text")
    settle(e2e)
    assert debtor_of(e2e, org_id) is None
    assert entries(e2e, org_id, "not-ready")[0]["missing"] == ["postcode", "CVR"]
    assert writes(e2e) == ([f"PUT /Organisations/{org_id}"], [])  # the status echo wrote nothing

    edit_org(e2e, org_id, OrganisationVatNumber="12345674", OrganisationPostCode="5970")
    debtor = linked(e2e, org_id)
    assert debtor["ZipCode"] == "5970" and debtor["CompanyRegNo"] == "12345674"
    wait_for(lambda: organisation(e2e, org_id)[STATUS] == f"Uniconta: debtor {debtor['Account']}",
             what="status cleared to the debtor number")


def test_long_values_four_line_address_and_unknown_country(e2e: Stack) -> None:
    long_name = "Søndergaard Ølbryggeri og Æblemosteri " * 4  # 152 characters
    org_id = new_org(e2e, OrganisationType="Kunde", **{
        **COMPLETE, "OrganisationName": long_name.strip(),
        "OrganisationAddress": "c/o Ærø Kommune\nØstergade 12\nBygning 3\nIndgang B", "OrganisationCountry": "Atlantis"})
    wait_for(lambda: organisation(e2e, org_id)[STATUS] == "Uniconta: unknown country 'Atlantis'",
             what="unknown country reported")
    assert debtor_of(e2e, org_id) is None  # not guessed

    edit_org(e2e, org_id, OrganisationCountry="Holland (NL)")  # a name from the connection's country_names
    debtor = linked(e2e, org_id)
    assert debtor["Country"] == "Netherlands"
    assert debtor["Name"] == long_name.strip()[:100].rstrip()
    assert (debtor["Address1"], debtor["Address2"], debtor["Address3"]) == (
        "c/o Ærø Kommune", "Østergade 12", "Bygning 3, Indgang B")
    settle(e2e)
    truncated = entries(e2e, org_id, "truncated")
    assert truncated and truncated[0]["field"] == "Name" and truncated[0]["limit"] == 100
    assert truncated[0]["length"] == len(long_name.strip())
    assert entries(e2e, org_id, "address-lines-joined")
    # The long name and the fourth line stay in webCRM; they are not "changed back" by the sync.
    org = organisation(e2e, org_id)
    assert org["OrganisationName"] == long_name.strip() and org["OrganisationAddress"].endswith("Indgang B")

    edit_org(e2e, org_id, **{NUMBER: "K" * 21})  # a debtor number can't change
    wait_for(lambda: organisation(e2e, org_id)[NUMBER] == debtor["Account"], what="debtor number restored")


def test_own_debtor_number_series_skipping_used_and_debtors_made_in_uniconta(e2e: Stack) -> None:
    edit_debtor(e2e, "POST", Account="10000", Name="Made in Uniconta")
    edit_debtor(e2e, "POST", Account="10001", Name="Also made in Uniconta")
    own = new_org(e2e, OrganisationType="Kunde", **{**COMPLETE, NUMBER: "K-77"})
    series = new_org(e2e, OrganisationType="Kunde", **{**COMPLETE, "OrganisationName": "Næste Kunde A/S"})
    assert linked(e2e, own)["Account"] == "K-77"
    assert linked(e2e, series)["Account"] == "10002"
    too_long = new_org(e2e, OrganisationType="Kunde", **{**COMPLETE, NUMBER: "D" * 21})
    wait_for(lambda: organisation(e2e, too_long)[STATUS] == "Uniconta: debtor number too long (21 > 20)",
             what="too-long number refused")
    rejected = new_org(e2e, OrganisationType="Kunde", **{**COMPLETE, CURRENCY: "XYZ"})  # Uniconta says no
    wait_for(lambda: organisation(e2e, rejected)[STATUS] == "Uniconta: rejected Currency", what="rejection shown")
    settle(e2e)
    assert debtor_of(e2e, too_long) is None and debtor_of(e2e, rejected) is None
    assert entries(e2e, rejected, "rejected")[0]["field"] == "Currency"
    assert deadletters.count(e2e.redis) == 0  # data problems are shown to the user, not dead-lettered
    # Debtors created in Uniconta directly do not become organisations (create_from_uniconta is off).
    assert len(organisations(e2e)) == 4
    assert entries(e2e, "10000", "not-linked", entity="debtor")


def test_debtor_made_in_uniconta_becomes_organisation_when_configured(e2e_status: Stack) -> None:
    edit_debtor(e2e_status, "POST", Account="20001", Name="Fra Uniconta A/S", Address1="Havnen 1", ZipCode="8000",
                City="Aarhus C", Country="Sweden", EAN="5790000000001")
    org = wait_for(lambda: next((o for o in organisations(e2e_status).values() if o[NUMBER] == "20001"), None),
                   what="organisation created from the debtor")
    assert org["OrganisationName"] == "Fra Uniconta A/S" and org["OrganisationCountry"] == "Sverige"
    assert org["OrganisationStatus"] == "Kunde" and org[EAN] == "5790000000001"
    wait_for(lambda: debtors(e2e_status)["20001"].get("WebcrmId") == str(org["OrganisationId"]),
             what="cross-reference written to the debtor")
    settle(e2e_status)
    assert len(organisations(e2e_status)) == 1 and len(debtors(e2e_status)) == 1


# --------------------------------------------------------------------------- the trigger and deletion


def test_type_is_set_back_while_the_debtor_exists_and_stands_after_deletion(e2e: Stack) -> None:
    org_id = new_org(e2e, OrganisationType="Kunde", **COMPLETE)
    account = linked(e2e, org_id)["Account"]
    settle(e2e)
    edit_org(e2e, org_id, OrganisationType="Leverandør")
    wait_for(lambda: organisation(e2e, org_id)["OrganisationType"] == "Kunde", what="type set back")
    assert entries(e2e, org_id, "trigger-reverted")[0]["value"] == "Leverandør"

    edit_debtor(e2e, "DELETE", Account=account)
    wait_for(lambda: organisation(e2e, org_id)[NUMBER] == "", what="link cleared in webCRM")
    settle(e2e)
    org = organisation(e2e, org_id)
    assert org[STATUS] == f"Uniconta: debtor {account} was deleted"
    assert debtors(e2e) == {}  # not re-created while the organisation stays a customer
    assert not e2e.redis.hgetall(f"sync:{CONNECTION}:link:organisation:w2u")

    edit_org(e2e, org_id, OrganisationType="Leverandør")
    wait_for(lambda: organisation(e2e, org_id)[STATUS] == "", what="status cleared")
    settle(e2e)
    assert organisation(e2e, org_id)["OrganisationType"] == "Leverandør"  # the change stands
    assert debtors(e2e) == {}

    edit_org(e2e, org_id, OrganisationType="Kunde")  # a customer again: a new debtor
    assert linked(e2e, org_id)["Account"] != ""


# --------------------------------------------------------------------------- two-way


def test_changes_flow_both_ways_only_changed_fields(e2e: Stack) -> None:
    org_id = new_org(e2e, OrganisationType="Kunde", **COMPLETE)
    account = linked(e2e, org_id)["Account"]
    settle(e2e)
    edit_debtor(e2e, "PUT", Account=account, Name="Ærø Æblemost A/S", Country="Norway", Address2="3. sal")
    wait_for(lambda: (o := organisation(e2e, org_id))["OrganisationName"] == "Ærø Æblemost A/S"
             and o["OrganisationCountry"] == "Norge" and o["OrganisationAddress"] == "Østergade 12\n3. sal",
             what="Uniconta's changes in webCRM")
    settle(e2e)
    before = writes(e2e)
    edit_org(e2e, org_id, OrganisationCity="Marstal", OrganisationTelephone="+45 11 22 33 44")
    wait_for(lambda: debtors(e2e)[account]["City"] == "Marstal", what="webCRM's change in Uniconta")
    settle(e2e)
    d = debtors(e2e)[account]
    assert d["Phone"] == "+45 11 22 33 44" and d["Name"] == "Ærø Æblemost A/S" and d["Country"] == "Norway"
    after = writes(e2e)
    assert after[1][len(before[1]):] == ["PUT /api/Entities/Update/DebtorClientUser"]
    assert after[0] == before[0]  # nothing went back to webCRM
    done = entries(e2e, org_id, "done")
    assert any(sorted(e.get("to_uniconta", [])) == ["city", "phone"] for e in done)


def test_same_field_changed_on_both_sides_is_a_journaled_conflict(e2e: Stack) -> None:
    org_id = new_org(e2e, OrganisationType="Kunde", **COMPLETE)
    account = linked(e2e, org_id)["Account"]
    settle(e2e)
    for base in (e2e.webcrm_url, e2e.uniconta_url):  # both changes happen before either is synced
        admin(base, "PUT", "/faults", json={"webhook_drop_rate": 1.0})
    edit_debtor(e2e, "PUT", Account=account, City="Svendborg")
    time.sleep(1.1)  # webCRM's UpdatedAt has whole seconds: make its change the newer one
    edit_org(e2e, org_id, OrganisationCity="Marstal")
    for base in (e2e.webcrm_url, e2e.uniconta_url):
        admin(base, "POST", "/webhooks/flush")  # the drop is decided when a hook is sent
        admin(base, "PUT", "/faults", json={"webhook_drop_rate": 0.0})
    requests.post(f"{e2e.receiver.url}/webhook/{CONNECTION}/webcrm", params={"token": TOKEN}, timeout=5,
                  json={"HookId": 1, "EventType": "Update", "Entity": "Organisation", "EntityId": org_id,
                        "Timestamp": "conflict-test"}).raise_for_status()
    wait_for(lambda: debtors(e2e)[account]["City"] == "Marstal", what="newest change to win")
    settle(e2e)
    assert organisation(e2e, org_id)["OrganisationCity"] == "Marstal"
    conflict = entries(e2e, org_id, "conflict")[0]
    assert (conflict["field"], conflict["webcrm"], conflict["uniconta"]) == ("city", "Marstal", "Svendborg")
    assert conflict["base"] == "Ærøskøbing" and conflict["winner"] == "webcrm"


# --------------------------------------------------------------------------- concurrency and dependencies


def test_fifty_concurrent_events_for_a_new_customer_make_one_debtor(e2e: Stack) -> None:
    org_id = new_org(e2e, OrganisationType="Emne", **COMPLETE)
    settle(e2e)
    url = f"{e2e.receiver.url}/webhook/{CONNECTION}/webcrm"
    start = threading.Barrier(50)

    def fire(n: int) -> None:
        start.wait()
        requests.post(url, params={"token": TOKEN}, timeout=10, json={
            "HookId": 7, "EventType": "Update", "Entity": "Organisation", "EntityId": org_id, "Timestamp": f"t{n}"})

    threads = [threading.Thread(target=fire, args=(n,)) for n in range(50)]
    edit_org(e2e, org_id, OrganisationType="Kunde")
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    linked(e2e, org_id)
    settle(e2e)
    assert len(debtors(e2e)) == 1
    assert writes(e2e)[1] == ["POST /api/Entities/Insert/DebtorClientUser"]


def test_ensure_debtor_not_ready_then_parked_records_are_released(e2e: Stack) -> None:
    ctx = Runtime(load_settings(e2e.env)).context(CONNECTION)
    assert ctx is not None
    org_id = new_org(e2e, OrganisationType="Emne", **COMPLETE)
    settle(e2e)
    with pytest.raises(flow.NotReady, match="not a customer"):
        flow.ensure_debtor(ctx, org_id)
    assert flow.linked_debtor(ctx, org_id) is None
    parked = Event(CONNECTION, "webcrm", "delivery", "987654")
    waiting.park(e2e.redis, parked, f"organisation:{org_id}")

    edit_org(e2e, org_id, OrganisationType="Kunde")
    account = linked(e2e, org_id)["Account"]
    wait_for(lambda: not waiting.parked(e2e.redis, CONNECTION, f"organisation:{org_id}"), what="release")
    queued = [e for e in journal.entries(e2e.redis, CONNECTION, "delivery", "987654") if e["kind"] == "queued"]
    assert queued and queued[-1]["origin"] == "dependency"
    settle(e2e)
    assert flow.ensure_debtor(ctx, org_id) == account
    assert flow.linked_debtor(ctx, org_id) == account

    other = new_org(e2e, OrganisationType="Kunde", OrganisationName="Kun Navn ApS")
    settle(e2e)
    with pytest.raises(flow.NotReady, match="missing address, postcode, city, country, CVR"):
        flow.ensure_debtor(ctx, other)
    fresh = new_org(e2e, OrganisationType="Emne", **{**COMPLETE, "OrganisationName": "Direkte ApS"})
    settle(e2e)
    edit_org_quietly = {**organisation(e2e, fresh), "OrganisationType": "Kunde"}
    with e2e.webcrm() as webcrm:  # changed without a hook reaching us: ensure_debtor creates it itself
        admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_drop_rate": 1.0})
        webcrm.update("Organisations", fresh, edit_org_quietly)
        admin(e2e.webcrm_url, "POST", "/webhooks/flush")
        admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_drop_rate": 0.0})
    new_account = flow.ensure_debtor(ctx, fresh)
    assert debtors(e2e)[new_account]["WebcrmId"] == str(fresh)


def test_lost_insert_answer_is_found_on_retry_not_inserted_twice(e2e: Stack) -> None:
    ctx = Runtime(load_settings(e2e.env)).context(CONNECTION)
    assert ctx is not None
    admin(e2e.webcrm_url, "PUT", "/faults", json={"webhook_drop_rate": 1.0})  # drive the flow ourselves
    admin(e2e.uniconta_url, "PUT", "/faults", json={"webhook_drop_rate": 1.0})
    org_id = new_org(e2e, OrganisationType="Kunde", **COMPLETE)
    real_insert = ctx.uniconta.insert

    def insert_then_lose_the_answer(entity: str, record: dict[str, Any]) -> Any:
        real_insert(entity, record)
        raise Transient("read timed out", system="uniconta", method="POST", path=f"/api/Entities/Insert/{entity}")

    ctx.uniconta.insert = insert_then_lose_the_answer  # type: ignore[method-assign]
    event = Event(CONNECTION, "webcrm", "organisation", str(org_id))
    with pytest.raises(Transient):
        flow.sync_organisation(ctx, event)
    ctx.uniconta.insert = real_insert  # type: ignore[method-assign]
    clean_sync_state(e2e.redis)  # even without Redis the cross-reference in Uniconta finds it
    result = flow.sync_organisation(ctx, event)
    assert result.action in ("linked", "updated") and len(debtors(e2e)) == 1
    assert organisation(e2e, org_id)[NUMBER] == result.detail["account"]
