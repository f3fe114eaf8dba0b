"""Organisation ↔ debtor mapping, without I/O: address lines, countries, lengths, required fields,
status texts, debtor numbers, and the settings that drive them."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from sync.config import ConfigError, OrganisationFlow, parse_connections
from sync.countries import ENUM_NAMES, Countries
from sync.flows import organisations as flow
from sync.flows.merge import merge
from sync.flows.organisations_mapping import (
    STATUS_MAX,
    check_account,
    is_customer,
    map_uniconta,
    map_webcrm,
    next_free_account,
    shown_values,
    split_address,
    status_text,
    synced_fields,
    uniconta_changes,
    uniconta_insert_body,
    webcrm_changes,
)

CFG = OrganisationFlow(
    required_fields=("name", "address", "postcode", "city", "country", "cvr"),
    source_fields={"cvr": "OrganisationVatNumber", "phone": "OrganisationTelephone", "currency": "OrganisationCustom1",
                   "vat_group": "OrganisationCustom2", "invoice_email": "OrganisationCustom3"},
    shown_fields={"ean": "OrganisationExtraCustom3", "payment_terms": "OrganisationExtraCustom4",
                  "debtor_group": "OrganisationExtraCustom5"},
    status_field="OrganisationExtraCustom2")
COUNTRIES = Countries({"Færøerne": "FaroeIslands", "Holland (NL)": "netherlands"})
ORG = {"OrganisationId": 145, "OrganisationType": "Kunde", "OrganisationName": "Ærø Æblemost & Søn ApS",
       "OrganisationAddress": "Østergade 12\r\n2. sal", "OrganisationPostCode": "5970",
       "OrganisationCity": "Ærøskøbing", "OrganisationCountry": "Danmark", "OrganisationVatNumber": "12345674",
       "OrganisationTelephone": "+45 62 52 10 00", "OrganisationCustom1": "dkk", "OrganisationCustom2": "U25",
       "OrganisationCustom3": "faktura@aeblemost.dk"}


def org(**changes: Any) -> dict[str, Any]:
    return {**ORG, **changes}


# --------------------------------------------------------------------------- webCRM → Uniconta


def test_complete_organisation_maps_to_every_debtor_field() -> None:
    mapped = map_webcrm(ORG, CFG, COUNTRIES)
    assert not mapped.missing and not mapped.problems and not mapped.notes
    assert uniconta_insert_body(mapped.values) == {
        "Name": "Ærø Æblemost & Søn ApS", "Address1": "Østergade 12", "Address2": "2. sal", "ZipCode": "5970",
        "City": "Ærøskøbing", "Country": "Denmark", "CompanyRegNo": "12345674", "Phone": "+45 62 52 10 00",
        "Currency": "DKK", "Vat": "U25", "InvoiceEmail": "faktura@aeblemost.dk"}


def test_a_mapped_debtor_round_trips_without_changes() -> None:
    """What we insert reads back as the same projection: the first echo merges to nothing."""
    mapped = map_webcrm(ORG, CFG, COUNTRIES)
    debtor = {"Account": "10000", **uniconta_insert_body(mapped.values), "CountryName": "Denmark"}
    result = merge(mapped.values, mapped.values, map_uniconta(debtor, CFG))
    assert not result.changed and not result.conflicts


@pytest.mark.parametrize(("address", "lines", "joined"), [
    ("", [], False),
    ("Vej 1", ["Vej 1"], False),
    ("Vej 1\n\n  \nPostboks 7 ", ["Vej 1", "Postboks 7"], False),
    ("a\nb\nc", ["a", "b", "c"], False),
    ("c/o Ærø Kommune\nØstergade 12\nBygning 3\nIndgang B", ["c/o Ærø Kommune", "Østergade 12", "Bygning 3, Indgang B"],
     True),
    ("1\n2\n3\n4\n5", ["1", "2", "3, 4, 5"], True),
])
def test_address_split_on_newlines_into_three_lines(address: str, lines: list[str], joined: bool) -> None:
    got, note = split_address(address)
    assert got == lines
    assert (note is not None) == joined
    if note:
        assert note["lines"] == len([x for x in address.split("\n") if x.strip()]) and note["into"] == "Address3"


def test_four_line_address_is_a_noted_decision() -> None:
    mapped = map_webcrm(org(OrganisationAddress="a\nb\nc\nd"), CFG, COUNTRIES)
    assert (mapped.values["address1"], mapped.values["address2"], mapped.values["address3"]) == ("a", "b", "c, d")
    assert [n["kind"] for n in mapped.notes] == ["address-lines-joined"]


@pytest.mark.parametrize(("name", "enum"), [
    ("Danmark", "Denmark"), ("danmark ", "Denmark"), ("DANMARK", "Denmark"), ("Sverige", "Sweden"),
    ("Norge", "Norway"), ("Tyskland", "Germany"), ("Storbritannien", "UnitedKingdom"), ("United Kingdom", "UnitedKingdom"),
    ("Grønland", "Greenland"), ("Færøerne", "FaroeIslands"), ("Østrig", "Austria"), ("DK", "Denmark"),
    ("Denmark", "Denmark"), ("USA", "UnitedStates"), ("Holland (NL)", "Netherlands"), ("Nederlandene", "Netherlands"),
])
def test_country_names_map_to_uniconta_enum(name: str, enum: str) -> None:
    assert COUNTRIES.to_uniconta(name) == enum


@pytest.mark.parametrize("name", ["Atlantis", "Danmak", "Syd", "XX"])
def test_unknown_country_is_reported_not_guessed(name: str) -> None:
    assert COUNTRIES.to_uniconta(name) is None
    mapped = map_webcrm(org(OrganisationCountry=name), CFG, COUNTRIES)
    assert mapped.problems == {"country": f"unknown country '{name}'"}
    assert "country" not in mapped.values


def test_every_known_enum_has_a_webcrm_name_and_round_trips() -> None:
    for enum in ENUM_NAMES:
        name = COUNTRIES.to_webcrm(enum)
        assert name, enum
        assert COUNTRIES.to_uniconta(name) == enum
    assert COUNTRIES.to_webcrm("Denmark") == "Danmark"
    assert COUNTRIES.to_webcrm("netherlands") == "Holland (NL)"  # the connection's own spelling wins
    assert COUNTRIES.to_webcrm("Narnia") is None


def test_name_over_100_is_cut_and_noted() -> None:
    long_name = "Æ" * 130
    mapped = map_webcrm(org(OrganisationName=long_name), CFG, COUNTRIES)
    assert mapped.values["name"] == "Æ" * 100
    assert mapped.notes == [{"kind": "truncated", "field": "Name", "length": 130, "limit": 100}]
    assert not mapped.problems


def test_identifiers_are_never_cut_but_reported() -> None:
    mapped = map_webcrm(org(OrganisationVatNumber="1" * 25, OrganisationCustom3="x" * 250 + "@example.dk",
                            OrganisationCustom1="Kroner"), CFG, COUNTRIES)
    assert mapped.problems == {"cvr": "CVR too long (25 > 20)", "invoice_email": "invoice e-mail too long (261 > 255)",
                               "currency": "currency 'KRONER' is not a 3-letter code"}
    assert not {"cvr", "invoice_email", "currency"} & set(mapped.values)


def test_required_fields_missing_in_configured_order_with_labels() -> None:
    mapped = map_webcrm(org(OrganisationPostCode=" ", OrganisationVatNumber="", OrganisationAddress="\n"), CFG,
                        COUNTRIES)
    assert mapped.missing == ["address", "postcode", "cvr"]
    assert status_text(missing=mapped.missing) == "Uniconta: missing address, postcode, CVR"


def test_optional_fields_without_source_are_not_synced() -> None:
    cfg = OrganisationFlow(source_fields={"cvr": "OrganisationExtraCustom6"})
    assert synced_fields(cfg) == ("name", "address1", "address2", "address3", "postcode", "city", "country", "cvr")
    mapped = map_webcrm(org(OrganisationExtraCustom6="87654321"), cfg, COUNTRIES)
    assert mapped.values["cvr"] == "87654321" and "phone" not in mapped.values
    assert set(map_uniconta({"Phone": "1"}, cfg)) == set(synced_fields(cfg))


@pytest.mark.parametrize(("value", "customer"), [("Kunde", True), (" kunde ", True), ("A Kunde", False), ("", False)])
def test_trigger_keyword(value: str, customer: bool) -> None:
    assert is_customer(org(OrganisationType=value), CFG) is customer
    status = replace(CFG, trigger_field="OrganisationStatus", trigger_keywords=("Kunde", "A-kunde"))
    assert is_customer(org(OrganisationType="Kunde", OrganisationStatus="a-KUNDE"), status)
    assert not is_customer(org(OrganisationType="Kunde", OrganisationStatus="Emne"), status)


# --------------------------------------------------------------------------- Uniconta → webCRM


def test_changes_from_uniconta_map_back_to_webcrm_fields() -> None:
    values, problems = webcrm_changes({"name": "Nyt Navn A/S", "country": "Norway", "currency": "EUR", "cvr": ""},
                                      ORG, CFG, COUNTRIES)
    assert values == {"OrganisationName": "Nyt Navn A/S", "OrganisationCountry": "Norge", "OrganisationCustom1": "EUR",
                      "OrganisationVatNumber": ""}
    assert not problems


def test_country_without_webcrm_name_is_a_problem_not_a_write() -> None:
    values, problems = webcrm_changes({"country": "Narnia"}, ORG, CFG, COUNTRIES)
    assert values == {} and problems == {"country": "no webCRM name for country 'Narnia'"}


def test_address_line_change_keeps_the_users_fourth_line() -> None:
    four = org(OrganisationAddress="c/o Ærø Kommune\nØstergade 12\nBygning 3\nIndgang B")
    values, _ = webcrm_changes({"address1": "c/o Marstal Kommune"}, four, CFG, COUNTRIES)
    assert values == {"OrganisationAddress": "c/o Marstal Kommune\nØstergade 12\nBygning 3\nIndgang B"}
    values, _ = webcrm_changes({"address3": "Bygning 4"}, four, CFG, COUNTRIES)
    assert values == {"OrganisationAddress": "c/o Ærø Kommune\nØstergade 12\nBygning 4"}
    values, _ = webcrm_changes({"address2": ""}, org(OrganisationAddress="a\nb"), CFG, COUNTRIES)
    assert values == {"OrganisationAddress": "a"}


def test_uniconta_changes_send_empty_as_null() -> None:
    assert uniconta_changes({"city": "Marstal", "phone": ""}) == {"City": "Marstal", "Phone": None}


def test_shown_fields_come_from_the_debtor() -> None:
    debtor = {"EAN": "5790001234567", "Payment": "Netto 30", "Group": "Indland"}
    assert shown_values(debtor, CFG) == {"OrganisationExtraCustom3": "5790001234567",
                                         "OrganisationExtraCustom4": "Netto 30", "OrganisationExtraCustom5": "Indland"}
    assert shown_values(None, CFG) == dict.fromkeys(CFG.shown_fields.values(), "")


def test_uniconta_projection_tolerates_missing_keys_and_case() -> None:
    got = map_uniconta({"Name": "X", "Country": "sweden", "Currency": "eur"}, CFG)
    assert got["country"] == "Sweden" and got["currency"] == "EUR" and got["city"] == "" and got["address3"] == ""


# --------------------------------------------------------------------------- numbers and status texts


def test_series_skips_accounts_in_use() -> None:
    assert next_free_account("", 10000, []) == ("10000", 10000)
    assert next_free_account("", 10000, ["10000", "10001", "10003", "9"]) == ("10002", 10002)
    assert next_free_account("D-", 5, ["D-5", "5", "D-6"]) == ("D-7", 7)


@given(st.sets(st.integers(min_value=100, max_value=140)), st.integers(min_value=100, max_value=140))
def test_series_result_is_free_and_smallest(used: set[int], start: int) -> None:
    account, n = next_free_account("P", start, {f"P{u}" for u in used})
    assert n >= start and n not in used and account == f"P{n}"
    assert all(m in used for m in range(start, n))


def test_account_longer_than_20_is_refused() -> None:
    assert check_account("1" * 20) is None
    assert check_account("1" * 21) == "debtor number too long (21 > 20)"


def test_status_texts_are_short_english_and_consistent() -> None:
    assert status_text(missing=["cvr", "postcode"]) == "Uniconta: missing CVR, postcode"
    assert status_text(account="10001") == "Uniconta: debtor 10001"
    assert status_text(problems=["unknown country 'Atlantis'"]) == "Uniconta: unknown country 'Atlantis'"
    assert status_text(state="debtor 10001 was deleted") == "Uniconta: debtor 10001 was deleted"
    assert status_text(account="10001", problems=["rejected Currency"]) == "Uniconta: debtor 10001; rejected Currency"
    long = status_text(missing=["name", "address", "postcode", "city", "country", "cvr", "phone"])
    assert len(long) <= STATUS_MAX and long.endswith("…") and long.startswith("Uniconta: missing name, address")


def test_not_ready_is_not_a_flow_error() -> None:
    from sync.flows import FlowError

    err = flow.NotReady("organisation 145 is not a customer")
    assert not isinstance(err, FlowError) and err.reason == str(err) == "organisation 145 is not a customer"


def test_fingerprint_inputs_cover_every_field_we_touch() -> None:
    snapshot = flow.webcrm_snapshot(ORG, CFG)
    for prop in ("OrganisationType", "OrganisationExtraCustom1", "OrganisationExtraCustom2", "OrganisationExtraCustom5",
                 "OrganisationCustom3", "OrganisationAddress"):
        assert prop in snapshot
    assert "OrganisationUpdatedAt" not in snapshot  # our own writes move it; it is not a change
    assert {"Account", "WebcrmId", "EAN", "Payment", "Group", "Country"} <= set(flow.uniconta_snapshot({}, CFG))


# --------------------------------------------------------------------------- settings


MINIMAL = """
[connections.10.webhook]
tokens = ["t"]
[connections.10.webcrm]
base_url = "https://api.webcrm.com"
auth_code = "a"
[connections.10.uniconta]
base_url = "https://odata.uniconta.com"
company_id = 1
username = "u"
password = "p"
"""


def _load(extra: str) -> Any:
    import tomllib

    return parse_connections(tomllib.loads(MINIMAL + extra), source="test.toml")["10"].organisations


def test_defaults_sync_cvr_and_phone_from_standard_fields() -> None:
    cfg = _load("")
    assert dict(cfg.source_fields) == {"cvr": "OrganisationVatNumber", "phone": "OrganisationTelephone"}
    assert cfg.create_from_uniconta is False


def test_required_optional_field_needs_a_source() -> None:
    with pytest.raises(ConfigError, match=r"organisations\.required_fields: currency: required but not in source_fields"):
        _load('[connections.10.organisations]\nrequired_fields = ["name", "currency"]\n')
    cfg = _load('[connections.10.organisations]\nrequired_fields = ["name", "currency"]\n'
                'source_fields = { currency = "OrganisationCustom1" }\ncreate_from_uniconta = true\n')
    assert cfg.required_fields == ("name", "currency") and cfg.create_from_uniconta is True
