"""The "try this" block from the sandboxes' state: one edit per flow that always changes something,
also after an earlier run used it (syncctl/demo_block.py). The end-to-end proof that the printed
commands work is tests/syncctl/test_run.py; this covers the choices a fresh demo does not reach."""

from __future__ import annotations

import json
import shlex
from dataclasses import replace
from typing import Any

import pytest

from sandbox.uniconta.app import create_app as uniconta_app
from sandbox.webcrm.app import create_app as webcrm_app
from sync.config import load_settings
from syncctl.demo_block import PHONES, TITLES, Tables, render, tries

CONN = load_settings({}).connections["demo"]
SYNCCTL = ".venv/bin/syncctl"


@pytest.fixture(scope="module")
def seeded() -> tuple[Tables, Tables]:
    """The Demo data set as both seeders write it, before any sync."""
    wc, uc = webcrm_app(rate_limit=0).test_client(), uniconta_app().test_client()
    assert wc.post("/_sandbox/seed", json={"entity": "Demo", "count": 3, "seed": 1}).status_code == 200
    assert uc.post("/_sandbox/seed", json={"entity": "Demo", "count": 1}).status_code == 200
    return wc.get("/_sandbox/state").json["tables"], uc.get("/_sandbox/state").json["tables"]


def _copy(tables: Tables) -> Tables:
    return json.loads(json.dumps(tables))  # type: ignore[no-any-return]


def _body(edit: str) -> tuple[str, dict[str, Any]]:
    words = shlex.split(edit)
    assert words[:5] == ["curl", "-fsS", "-o", "/dev/null", "-X"] and words[5] == "PUT"
    return words[6], json.loads(words[words.index("-d") + 1])


def test_a_fresh_demo_turns_the_prospect_and_marks_the_waiting_delivery(seeded: tuple[Tables, Tables]) -> None:
    wc, uc = seeded
    found = {t.watch.split()[-2]: t for t in tries(CONN, wc, uc, SYNCCTL)}
    assert list(found) == ["organisation", "item", "delivery", "user"]  # no contact before the first sync
    prospect = next(o for o in wc["Organisations"].values() if o["OrganisationType"] == "Emne")
    assert _body(found["organisation"].edit) == (
        f"http://127.0.0.1:8101/_sandbox/ui/Organisations/{prospect['OrganisationId']}", {"OrganisationType": "Kunde"})
    item = min(uc["InvItem"].values(), key=lambda i: i["RowId"])
    assert _body(found["item"].edit) == ("http://127.0.0.1:8102/_sandbox/ui/InvItem",
                                         {"Item": item["Item"], "SalesPrice1": round(item["SalesPrice1"] * 1.1, 2)})
    waiting = next(d for d in wc["Deliveries"].values() if d["DeliveryErpStatus"] == "NotReadyForSynchronization")
    assert _body(found["delivery"].edit)[1] == {"DeliveryErpStatus": "ReadyForSynchronization"}
    assert found["delivery"].watch == f"{SYNCCTL} timeline demo delivery {waiting['DeliveryId']}"
    assert found["user"].watch == f"{SYNCCTL} timeline demo user 1"


def test_after_an_earlier_run_every_edit_still_changes_something(seeded: tuple[Tables, Tables]) -> None:
    wc, uc = _copy(seeded[0]), _copy(seeded[1])
    for org in wc["Organisations"].values():  # every prospect already turned, every customer linked
        org.update(OrganisationType="Kunde", OrganisationExtraCustom1=f"1000{org['OrganisationId']}",
                   OrganisationTelephone=PHONES[0])
    for delivery in wc["Deliveries"].values():
        delivery.update(DeliveryErpStatus="Synchronized", DeliveryErpId="7")
    wc["Users"]["2"].update(UserCustom1="BM", UserMobilePhone=PHONES[0])
    uc["Contact"] = {"4": {"RowId": 4, "Name": "Sofie Dahl", "Title": TITLES[0], "ReferenceId": "9"},
                     "2": {"RowId": 2, "Name": "Unlinked", "Title": "", "ReferenceId": None}}
    found = {t.watch.split()[-2]: t for t in tries(CONN, wc, uc, SYNCCTL)}
    assert _body(found["organisation"].edit)[1] == {"OrganisationTelephone": PHONES[1]}
    line = min((ln for ln in wc["QuotationLines"].values()), key=lambda ln: ln["QuotationLineId"])
    assert _body(found["delivery"].edit) == (
        f"http://127.0.0.1:8101/_sandbox/ui/QuotationLines/{line['QuotationLineId']}",
        {"QuotationLineQuantity": line["QuotationLineQuantity"] + 1})
    assert found["user"].watch.endswith("user 2")  # a linked user is preferred
    assert _body(found["user"].edit)[1] == {"UserMobilePhone": PHONES[1]}
    assert _body(found["contact"].edit) == ("http://127.0.0.1:8102/_sandbox/ui/Contact", {"RowId": 4, "Title": TITLES[1]})


def test_only_enabled_flows_are_offered_and_the_block_reads_as_printed(seeded: tuple[Tables, Tables]) -> None:
    wc, uc = _copy(seeded[0]), _copy(seeded[1])
    next(iter(wc["Organisations"].values())).update(OrganisationType="O'Brien", OrganisationName="O'Brien's Pub")
    conn = replace(CONN, flows=("organisations", "items"))
    found = tries(conn, wc, uc, "REDIS_URL=redis://127.0.0.1:7000/0 syncctl")
    assert found[0].watch.startswith("REDIS_URL=redis://127.0.0.1:7000/0 syncctl timeline demo organisation ")
    assert [t.watch.split()[-2] for t in found] == ["organisation", "item"]
    assert "O'Brien's Pub (O'Brien) becomes a customer" in found[0].what
    text = render(found, syncctl="syncctl", flower="http://127.0.0.1:5555")
    assert text.count("\n    curl ") == 2 and "Watch: syncctl status · Flower http://127.0.0.1:5555" in text
    assert all(_body(t.edit) for t in found)
