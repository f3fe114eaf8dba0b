"""The OData feed: $filter, $orderby, $top, $skip, $select, $count, nextLink paging, formats."""

from __future__ import annotations

import contextlib
from urllib.parse import parse_qs, urlsplit

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sandbox.uniconta import odata
from sandbox.uniconta.entities import DEBTOR
from tests.sandbox.uniconta.uniconta_helpers import basic


def resolver(table=DEBTOR):
    def resolve(name):
        prop = table.by_name.get(name)
        return None if prop is None else (prop, lambda rec, n=prop.name: rec.get(n))
    return resolve


def matches(expr: str, rows: list[dict]) -> list:
    pred = odata.parse_filter(expr, resolver(), "DebtorClient")
    return [r["Account"] for r in rows if pred(r)]


ROWS = [
    {"Account": "1000", "Name": "O'Brien ApS", "CreditMax": 100.0, "Blocked": True, "PriceGroup": 1,
     "Created": "2024-01-01T10:00:00.000000Z", "City": "Aarhus C"},
    {"Account": "2000", "Name": "Østergaard", "CreditMax": 0.0, "Blocked": False, "PriceGroup": 2,
     "Created": "2024-06-01T00:00:00.500000Z", "City": None},
    {"Account": "3000", "Name": "Ågade", "CreditMax": -5.5, "Blocked": False, "PriceGroup": 3,
     "Created": "2025-01-01T00:00:00.000000Z", "City": "Odense C"},
]


@pytest.mark.parametrize(("expr", "expected"), [
    ("Account eq '2000'", ["2000"]),
    ("Account ne '2000'", ["1000", "3000"]),
    ("Account gt '1000'", ["2000", "3000"]),
    ("Account ge '2000'", ["2000", "3000"]),
    ("Account lt '2000'", ["1000"]),
    ("Account le '2000'", ["1000", "2000"]),
    ("CreditMax gt 0", ["1000"]),
    ("CreditMax lt -5", ["3000"]),
    ("CreditMax eq 100.0", ["1000"]),
    ("CreditMax ge 0.0M", ["1000", "2000"]),
    ("PriceGroup le 2", ["1000", "2000"]),
    ("Blocked eq true", ["1000"]),
    ("Blocked ne true", ["2000", "3000"]),
    ("Blocked eq false", ["2000", "3000"]),
    ("City eq null", ["2000"]),
    ("City ne null", ["1000", "3000"]),
    ("City gt 'A'", ["1000", "3000"]),  # a null value is never greater than anything
    ("Name eq 'O''Brien ApS'", ["1000"]),
    ("Name eq 'Østergaard'", ["2000"]),
    ("Name eq 'østergaard'", []),  # case-sensitive
    ("Created ge datetime'2024-06-01T00:00:00'", ["2000", "3000"]),
    ("Created gt datetime'2024-06-01T00:00:00'", ["2000", "3000"]),
    ("Created gt datetime'2024-06-01T00:00:00.5'", ["3000"]),
    ("Created lt datetime'2024-01-01T11:00:00+02:00'", []),  # 09:00 UTC
    ("Created lt datetime'2024-01-01T11:00:00Z'", ["1000"]),
    ("Created le datetime'2024-01-01'", []),
    ("Account eq '1000' and Blocked eq true", ["1000"]),
    ("Account eq '1000' and Blocked eq false", []),
    ("Account eq '1000' or Account eq '3000'", ["1000", "3000"]),
    ("(Account eq '1000' or Account eq '3000') and CreditMax lt 0", ["3000"]),
    ("Blocked eq false and (PriceGroup eq 2 or PriceGroup eq 3)", ["2000", "3000"]),
    ("  Account   eq   '2000'  ", ["2000"]),
])
def test_filter_semantics(expr, expected):
    assert matches(expr, ROWS) == expected


@pytest.mark.parametrize(("expr", "message"), [
    ("", "empty"),
    ("Account", "unexpected end"),
    ("Account eq", "unexpected end"),
    ("Account eq '1", "unterminated"),
    ("Account like '1'", "expected one of"),
    ("Account EQ '1'", "lower case"),
    ("Account eq '1' AND Name eq 'x'", "lower case"),
    ("Nope eq '1'", "could not find a property named 'Nope'"),
    ("account eq '1'", "could not find a property"),
    ("Account eq 1000", "string property"),
    ("CreditMax eq '1'", "number property"),
    ("Blocked eq 1", "boolean property"),
    ("Blocked gt true", "eq or ne"),
    ("Created gt '2024-01-01'", "datetime'"),
    ("Account eq datetime'2024-01-01'", "string property"),
    ("Created gt datetime'yesterday'", "invalid datetime"),
    ("City gt null", "null can only"),
    ("Account eq '1' or Name eq 'x'", "same property"),
    ("contains(Name, 'x')", "not supported"),
    ("not Blocked eq true", "'not' is not supported"),
    ("Account eq '1' and", "unexpected end"),
    ("(Account eq '1'", "unexpected end"),
    ("Account eq '1')", "unexpected ')'"),
    ("Account eq Name", "expected a literal"),
    ("Account eq '1' Name eq '2'", "unexpected 'Name'"),
    ("Account/Sub eq '1'", "unexpected character"),
    ("Account eq '1' ; drop", "unexpected character"),
    ("'1' eq Account", "expected a property name"),
    ("CreditMax add 1 eq 2", "expected one of"),
])
def test_malformed_filters(expr, message):
    with pytest.raises(odata.ODataError) as info:
        odata.parse_filter(expr, resolver(), "DebtorClient")
    assert message in str(info.value)


def test_orderby_parsing_and_sorting():
    keys = odata.parse_orderby("City desc, Account", resolver(), "DebtorClient")
    assert [r["Account"] for r in odata.sort_records(ROWS, keys)] == ["3000", "1000", "2000"]
    keys = odata.parse_orderby("City", resolver(), "DebtorClient")
    assert [r["Account"] for r in odata.sort_records(ROWS, keys)] == ["2000", "1000", "3000"]  # null first
    keys = odata.parse_orderby("CreditMax desc", resolver(), "DebtorClient")
    assert [r["Account"] for r in odata.sort_records(ROWS, keys)] == ["1000", "2000", "3000"]
    keys = odata.parse_orderby("Created desc", resolver(), "DebtorClient")
    assert [r["Account"] for r in odata.sort_records(ROWS, keys)] == ["3000", "2000", "1000"]
    keys = odata.parse_orderby("Blocked,Account desc", resolver(), "DebtorClient")
    assert [r["Account"] for r in odata.sort_records(ROWS, keys)] == ["3000", "2000", "1000"]
    for bad in ("", "Nope", "Account up", "Account asc extra", "Account,,Name"):
        with pytest.raises(odata.ODataError):
            odata.parse_orderby(bad, resolver(), "DebtorClient")


# -- endpoint ---------------------------------------------------------------------------------------
@pytest.fixture
def debtors(api):
    for i in range(1, 8):
        api.debtor(f"{i * 1000}", City="Aarhus C" if i % 2 else "Odense C", CreditMax=i * 10, Blocked=i == 3)
    return api


def accounts(response) -> list[str]:
    assert response.status_code == 200, response.get_json()
    return [r["Account"] for r in response.get_json()["value"]]


def test_feed_filters_orders_and_pages(debtors):
    api = debtors
    assert accounts(api.odata("DebtorClient", **{"$filter": "City eq 'Odense C'"})) == ["2000", "4000", "6000"]
    assert accounts(api.odata("DebtorClient", **{"$filter": "CreditMax ge 50 and Blocked eq false",
                                                 "$orderby": "CreditMax desc"})) == ["7000", "6000", "5000"]
    assert accounts(api.odata("DebtorClient", **{"$top": "2"})) == ["1000", "2000"]
    assert accounts(api.odata("DebtorClient", **{"$skip": "5"})) == ["6000", "7000"]
    assert accounts(api.odata("DebtorClient", **{"$skip": "2", "$top": "2", "$orderby": "Account desc"})) == \
        ["5000", "4000"]
    assert accounts(api.odata("DebtorClient", **{"$top": "0"})) == []
    assert accounts(api.odata("DebtorClient", **{"$skip": "100"})) == []
    body = api.odata("DebtorClient", **{"$filter": "Blocked eq true", "$count": "true"}).get_json()
    assert body["@odata.count"] == 1 and body["@odata.context"].endswith("/odata/1234/$metadata#DebtorClient")
    assert "@odata.nextLink" not in body


def test_select(debtors):
    body = debtors.odata("DebtorClient", **{"$select": "Account,Name", "$top": "1"}).get_json()
    assert body["value"] == [{"Account": "1000", "Name": "Kunde 1000"}]
    assert debtors.odata("DebtorClient", **{"$select": "Nope"}).status_code == 400


def test_next_link_paging_across_pages(api):
    api.insert_list("DebtorClient", [{"Account": f"{i:05d}", "Name": f"K{i}"} for i in range(250)])
    url = "/odata/1234/DebtorClient?$filter=Name ne 'K7'&$orderby=Account desc"
    seen: list[str] = []
    pages = 0
    while url:
        response = api.client.get(url, headers={**basic("sandbox"), "Accept": "application/json"})
        body = response.get_json()
        seen += [r["Account"] for r in body["value"]]
        assert len(body["value"]) <= 100
        url = body.get("@odata.nextLink")
        if url:
            assert url.startswith("http://localhost/odata/1234/DebtorClient?")
            query = parse_qs(urlsplit(url).query)
            assert query["$filter"] == ["Name ne 'K7'"] and query["$orderby"] == ["Account desc"]
        pages += 1
    assert pages == 3
    assert seen == [f"{i:05d}" for i in range(249, -1, -1) if i != 7]


def test_next_link_respects_top(api):
    api.admin("PUT", "quirks", {"odata_page_size": 3})
    api.insert_list("InvItemClient", [{"Item": f"I{i:02d}"} for i in range(10)])
    url = "/odata/1234/InvItemClient?$top=7&$skip=1"
    seen = []
    while url:
        body = api.client.get(url, headers={**basic("sandbox"), "Accept": "application/json"}).get_json()
        seen += [r["Item"] for r in body["value"]]
        url = body.get("@odata.nextLink")
    assert seen == [f"I{i:02d}" for i in range(1, 8)]


def test_page_size_option(live):
    import requests

    base = live(odata_page_size=2)
    auth = ("001234/sandbox", "sandbox")
    requests.post(f"{base}/api/Entities/InsertList/InvItemClient", json=[{"Item": str(i)} for i in range(3)],
                  auth=auth, timeout=5)
    body = requests.get(f"{base}/odata/1234/InvItemClient", auth=("sandbox", "sandbox"),
                        headers={"Accept": "application/json"}, timeout=5).json()
    assert len(body["value"]) == 2
    assert body["@odata.nextLink"].startswith(base + "/odata/1234/InvItemClient?")
    rest = requests.get(body["@odata.nextLink"], auth=("sandbox", "sandbox"), headers={"Accept": "application/json"},
                        timeout=5).json()
    assert [r["Item"] for r in rest["value"]] == ["2"] and "@odata.nextLink" not in rest


@pytest.mark.parametrize("params", [
    {"$filter": "Account eq"}, {"$filter": "Nope eq 1"}, {"$orderby": "Nope"}, {"$top": "-1"}, {"$top": "x"},
    {"$skip": "1.5"}, {"$expand": "Contacts"}, {"$count": "yes"}, {"$format": "csv"}, {"$filter": ""},
    {"$search": "x"},
])
def test_bad_query_options_are_400(api, params):
    response = api.odata("DebtorClient", **params)
    assert response.status_code == 400
    body = response.get_json()
    assert set(body) == {"ErrorCode", "Message", "Field"} and body["Message"]


def test_dates_and_updated_at_filters_on_the_feed(api):
    first = api.debtor("1000")
    api.debtor("2000")
    since = first["UpdatedAt"][:26]  # e.g. 2024-05-01T12:34:56.123456
    found = accounts(api.odata("DebtorClient", **{"$filter": f"UpdatedAt gt datetime'{since}'"}))
    assert found == ["2000"]
    assert accounts(api.odata("DebtorClient", **{"$filter": "UpdatedAt gt datetime'2000-01-01T00:00:00'"})) == \
        ["1000", "2000"]


def test_xml_unless_json_is_asked_for(api):
    api.debtor("1000", Name="A & B <C>")
    response = api.client.get("/odata/1234/DebtorClient", headers=basic("sandbox"))
    assert response.status_code == 200 and "xml" in response.content_type
    text = response.get_data(as_text=True)
    assert "<d:Account m:type=\"Edm.String\">1000</d:Account>" in text and "A &amp; B &lt;C&gt;" in text
    response = api.client.get("/odata/1234/DebtorClient?$format=json", headers=basic("sandbox"))
    assert response.get_json()["value"][0]["Account"] == "1000"
    response = api.client.get("/odata/1234/DebtorClient?$format=xml", headers={**basic("sandbox"),
                                                                                "Accept": "application/json"})
    assert "xml" in response.content_type
    api.admin("PUT", "quirks", {"odata_default_format": "json"})
    assert api.client.get("/odata/1234/DebtorClient", headers=basic("sandbox")).is_json


def test_service_document_and_metadata(api):
    api.admin("PUT", "userfields/Debtor", [{"Name": "WebcrmId", "Type": "String"}])
    response = api.client.get("/odata/1234", headers={**basic("sandbox"), "Accept": "application/json"})
    assert {"name": "DebtorClient", "kind": "EntitySet", "url": "DebtorClient"} in response.get_json()["value"]
    xml = api.client.get("/odata/1234", headers=basic("sandbox")).get_data(as_text=True)
    assert '<collection href="InvItemClientUser">' in xml
    meta = api.client.get("/odata/1234/$metadata", headers=basic("sandbox")).get_data(as_text=True)
    assert '<EntityType Name="DebtorClientUser">' in meta and 'Name="WebcrmId" Type="Edm.String"' in meta
    assert api.client.get("/odata/$metadata", headers=basic("sandbox")).status_code == 200
    response = api.client.get("/odata/1234/DebtorClient(1)", headers=basic("sandbox"))
    assert response.status_code == 404 and "$filter" in response.get_json()["Message"]


@settings(max_examples=300, deadline=None)
@given(st.text(alphabet="AccountNameCreditMaxBlockedCity eqnegtltandor()'0123456789.-datetime:T, ", max_size=60))
def test_any_filter_text_parses_or_raises_odata_error(text):
    try:
        pred = odata.parse_filter(text, resolver(), "DebtorClient")
    except odata.ODataError:
        return
    for row in ROWS:
        assert pred(row) in (True, False)


@settings(max_examples=200, deadline=None)
@given(st.text(max_size=40))
def test_any_unicode_filter_parses_or_raises_odata_error(text):
    with contextlib.suppress(odata.ODataError):
        odata.parse_filter(text, resolver(), "DebtorClient")
