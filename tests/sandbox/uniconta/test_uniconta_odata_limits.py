"""Two OData limits: at most 40 `or` values per $filter (reference §1a/§4), and the standard
`Prefer: odata.maxpagesize=N` page-size preference, capped by the server (an assumption)."""

from __future__ import annotations

from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sandbox.uniconta import odata
from sandbox.uniconta.entities import DEBTOR
from tests.sandbox.uniconta.uniconta_helpers import ODATA, make_app


def resolve(name):
    prop = DEBTOR.by_name.get(name)
    return None if prop is None else (prop, lambda rec, n=prop.name: rec.get(n))


def accounts_or(n: int) -> str:
    return " or ".join(f"Account eq '{i}'" for i in range(n))


@pytest.mark.parametrize(("expr", "count"), [
    (accounts_or(40), 40),
    ("Account eq '1'", 0),
    ("Account ge '1' and Account le '9'", 0),
    ("(Account eq '1' or Account eq '2') and Name eq 'x'", 2),
    ("(Account eq '1' or Account eq '2') and (Name eq 'x' or Name eq 'y' or Name eq 'z')", 5),  # all ORs count
    ("(Account ge '1' and Account le '3') or Account eq '9'", 3),
    ("((Account eq '1' or Account eq '2') or Account eq '3')", 3),  # nested: each value once
])
def test_or_values_are_counted_over_the_whole_filter(expr, count):
    odata.parse_filter(expr, resolve, "DebtorClient", max_or=max(count, 1))  # exactly at the limit: fine
    if count > 1:
        with pytest.raises(odata.ODataError, match=f"{count} values are joined with 'or'; at most {count - 1}"):
            odata.parse_filter(expr, resolve, "DebtorClient", max_or=count - 1)
    odata.parse_filter(expr, resolve, "DebtorClient", max_or=0)  # 0 = no limit


def test_41_or_values_are_400_by_default(api):
    for i in range(3):
        api.debtor(str(i))
    ok = api.odata("DebtorClient", **{"$filter": accounts_or(40)})
    assert ok.status_code == 200 and len(ok.get_json()["value"]) == 3
    refused = api.odata("DebtorClient", **{"$filter": accounts_or(41)})
    assert refused.status_code == 400
    assert refused.get_json() == {"ErrorCode": "NoSucces", "Field": None, "Message":
                                  "$filter: 41 values are joined with 'or'; at most 40 OR values are "
                                  "allowed in one filter"}


def test_or_limit_is_an_option_an_env_var_and_a_quirk(api, monkeypatch):
    api.admin("PUT", "quirks", {"odata_max_or": 2})
    assert api.odata("DebtorClient", **{"$filter": accounts_or(3)}).status_code == 400
    api.admin("PUT", "quirks", {"odata_max_or": 0})
    assert api.odata("DebtorClient", **{"$filter": accounts_or(200)}).status_code == 200
    for bad in (-1, "40", True, 100_001):
        assert api.admin("PUT", "quirks", {"odata_max_or": bad}).status_code == 400
    api.admin("POST", "reset")
    assert api.admin("GET", "quirks").get_json()["odata_max_or"] == 40
    assert make_app(odata_max_or=5).extensions["uniconta"].quirks["odata_max_or"] == 5
    monkeypatch.setenv("UNICONTA_SANDBOX_ODATA_MAX_OR", "7")
    assert make_app().extensions["uniconta"].quirks["odata_max_or"] == 7
    with pytest.raises(ValueError, match="odata_max_or"):
        make_app(odata_max_or=-1)


# -- Prefer: odata.maxpagesize -----------------------------------------------------------------------------
@pytest.fixture
def items(api):
    api.insert_list("InvItemClient", [{"Item": f"I{i:04d}"} for i in range(1200)])
    return api


def next_query(body: dict) -> dict[str, list[str]]:
    return parse_qs(urlsplit(body["@odata.nextLink"]).query)


def page(api, prefer: str | None, **params):
    headers = {**ODATA, **({"Prefer": prefer} if prefer is not None else {})}
    return api.client.get("/odata/1234/InvItemClient", query_string=params, headers=headers)


@pytest.mark.parametrize(("prefer", "size", "applied"), [
    (None, 100, None),                                          # the configured odata_page_size
    ("odata.maxpagesize=7", 7, "odata.maxpagesize=7"),
    ("odata.maxpagesize=500", 500, "odata.maxpagesize=500"),    # more than odata_page_size
    ("odata.maxpagesize=5000", 1000, "odata.maxpagesize=1000"), # capped by the server maximum
    ("return=minimal, odata.MaxPageSize = 9", 9, "odata.maxpagesize=9"),
    ("maxpagesize=11", 11, "odata.maxpagesize=11"),             # OData 4.01 allows the short name
    ("odata.maxpagesize=0", 100, None),                         # not a positive integer: ignored
    ("odata.maxpagesize=abc", 100, None),
    ("respond-async", 100, None),
])
def test_prefer_maxpagesize(items, prefer, size, applied):
    response = page(items, prefer)
    assert response.status_code == 200
    body = response.get_json()
    assert len(body["value"]) == size
    assert response.headers.get("Preference-Applied") == applied
    assert next_query(body)["$skip"] == [str(size)]


def test_prefer_pages_through_everything_and_xml_says_so_too(items):
    seen: list[str] = []
    url: str | None = "/odata/1234/InvItemClient?$filter=Item ne 'I0003'"
    pages = 0
    while url:
        response = items.client.get(url, headers={**ODATA, "Prefer": "odata.maxpagesize=300"})
        body = response.get_json()
        assert len(body["value"]) <= 300
        seen += [r["Item"] for r in body["value"]]
        url = body.get("@odata.nextLink")
        pages += 1
    assert pages == 4 and seen == [f"I{i:04d}" for i in range(1200) if i != 3]
    xml = items.client.get("/odata/1234/InvItemClient", headers={"Authorization": ODATA["Authorization"],
                                                                 "Prefer": "odata.maxpagesize=3"})
    assert xml.headers["Preference-Applied"] == "odata.maxpagesize=3"
    assert xml.get_data(as_text=True).count("<entry>") == 3


def test_prefer_with_top_and_the_server_maximum_quirk(items):
    body = page(items, "odata.maxpagesize=4", **{"$top": "6"}).get_json()
    assert len(body["value"]) == 4 and next_query(body)["$top"] == ["2"]
    items.admin("PUT", "quirks", {"odata_max_page_size": 50})
    response = page(items, "odata.maxpagesize=80")
    assert len(response.get_json()["value"]) == 50
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=50"
    assert items.admin("PUT", "quirks", {"odata_max_page_size": 0}).status_code == 400


def test_max_page_size_option_over_http(live):
    base = live(odata_max_page_size=5, odata_page_size=2)
    auth = ("001234/sandbox", "sandbox")
    requests.post(f"{base}/api/Entities/InsertList/InvItemClient", json=[{"Item": str(i)} for i in range(9)],
                  auth=auth, timeout=5)
    response = requests.get(f"{base}/odata/1234/InvItemClient", auth=("sandbox", "sandbox"), timeout=5,
                            headers={"Accept": "application/json", "Prefer": "odata.maxpagesize=8"})
    assert len(response.json()["value"]) == 5
    assert response.headers["Preference-Applied"] == "odata.maxpagesize=5"
    plain = requests.get(f"{base}/odata/1234/InvItemClient", auth=("sandbox", "sandbox"), timeout=5,
                         headers={"Accept": "application/json"})
    assert len(plain.json()["value"]) == 2 and "Preference-Applied" not in plain.headers
