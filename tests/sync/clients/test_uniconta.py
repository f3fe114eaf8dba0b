"""UnicontaClient against a `responses` mock: Entities CRUD, Basic auth forms, OData paging, literals."""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest

from sync.clients.errors import AmbiguousMatch, Conflict, InvalidResponse, NotFound
from sync.clients.uniconta import UnicontaClient, odata_literal

URL = "https://odata.uniconta.test"


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


# --- Entities API -------------------------------------------------------------------------------


def test_insert_posts_json_with_company_prefixed_basic_auth(uniconta, rsps, const):
    stored = {"Account": "1001", "Name": "Østergaard Smed ApS", "RowId": 17}
    rsps.add("POST", URL + "/api/Entities/Insert/DebtorClient", json=stored)

    assert uniconta.insert("DebtorClient", {"Account": "1001", "Name": "Østergaard Smed ApS"}) == stored

    (call,) = rsps.calls
    assert call.request.headers["Authorization"] == basic(f"00{const.company}/{const.user}", const.password)
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == {"Account": "1001", "Name": "Østergaard Smed ApS"}
    assert call.request.req_kwargs["timeout"] == (3.05, 20.0)


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (204, "", None),
        (200, "", None),
        (200, "null", None),
        (200, "not json", None),
        (200, "true", None),
        (200, '[{"RowId": 3}]', {"RowId": 3}),
        (201, '{"RowId": 4}', {"RowId": 4}),
    ],
)
def test_insert_tolerates_200_json_and_204(uniconta, rsps, status, body, expected):
    rsps.add("POST", URL + "/api/Entities/Insert/InvItemClient", status=status, body=body)
    assert uniconta.insert("InvItemClient", {"Item": "A1"}) == expected


def test_insert_duplicate_key_is_conflict(uniconta, rsps):
    rsps.add(
        "POST",
        URL + "/api/Entities/Insert/DebtorClient",
        status=400,
        json={"ErrorCode": "RecordExists", "Message": "Account 1001 exists", "Field": "Account"},
    )
    with pytest.raises(Conflict) as caught:
        uniconta.insert("DebtorClient", {"Account": "1001"})
    assert (caught.value.code, caught.value.field, caught.value.status) == ("RecordExists", "Account", 400)


def test_insert_list(uniconta, rsps):
    rsps.add("POST", URL + "/api/Entities/InsertList/DebtorOrderLineClient", json=[{"LineNumber": 1}, {"LineNumber": 2}])
    lines = [{"Item": "A1", "Qty": 1}, {"Item": "A2", "Qty": 2}]
    assert uniconta.insert_list("DebtorOrderLineClient", lines) == [{"LineNumber": 1}, {"LineNumber": 2}]
    assert json.loads(rsps.calls[0].request.body) == lines
    rsps.add("POST", URL + "/api/Entities/InsertList/InvItemClient", status=204)
    assert uniconta.insert_list("InvItemClient", []) is None


def test_update_puts_the_whole_record(uniconta, rsps):
    rsps.add("PUT", URL + "/api/Entities/Update/DebtorClient", status=204)
    record = {"RowId": 17, "Account": "1001", "Name": "Ny Navn A/S"}
    assert uniconta.update("DebtorClient", record) is None
    (call,) = rsps.calls
    assert call.request.method == "PUT"
    assert json.loads(call.request.body) == record


def test_update_unknown_record_is_not_found(uniconta, rsps):
    rsps.add("PUT", URL + "/api/Entities/Update/DebtorClient", status=404, json={"ErrorCode": "CouldNotFind"})
    with pytest.raises(NotFound):
        uniconta.update("DebtorClient", {"RowId": 99})


def test_delete_sends_the_record_as_body(uniconta, rsps):
    rsps.add("DELETE", URL + "/api/Entities/Delete/ContactClient", status=200, body="")
    uniconta.delete("ContactClient", {"RowId": 5})
    (call,) = rsps.calls
    assert call.request.method == "DELETE"
    assert json.loads(call.request.body) == {"RowId": 5}


def test_find_uses_name_and_value(uniconta, rsps):
    rsps.add("GET", URL + "/api/Entities/DebtorClient", json=[{"Account": "1001"}])
    assert uniconta.find("DebtorClient", "Account", "1001") == [{"Account": "1001"}]
    assert query_of(rsps.calls[0]) == {"Name": ["Account"], "Value": ["1001"]}
    assert rsps.calls[0].request.method == "GET"


def test_find_int_value_and_wrapped_list(uniconta, rsps):
    rsps.add("GET", URL + "/api/Entities/DebtorOrderClient", json={"value": [{"OrderNumber": 7}]})
    assert uniconta.find("DebtorOrderClient", "OrderNumber", 7) == [{"OrderNumber": 7}]
    assert query_of(rsps.calls[0])["Value"] == ["7"]


def test_find_needs_a_list(uniconta, rsps):
    rsps.add("GET", URL + "/api/Entities/DebtorClient", json={"Account": "1001"})
    with pytest.raises(InvalidResponse):
        uniconta.find("DebtorClient", "Account", "1001")


@pytest.mark.parametrize("bad", [True, None, 1.5])
def test_find_value_types(uniconta, bad):
    with pytest.raises(TypeError):
        uniconta.find("DebtorClient", "Account", bad)


@pytest.mark.parametrize(("found", "expected"), [([], None), ([{"Account": "1"}], {"Account": "1"})])
def test_get_one(uniconta, rsps, found, expected):
    rsps.add("GET", URL + "/api/Entities/DebtorClient", json=found)
    assert uniconta.get_one("DebtorClient", "Account", "1") == expected


def test_get_one_with_several_matches_is_ambiguous(uniconta, rsps):
    rsps.add("GET", URL + "/api/Entities/ContactClient", json=[{"RowId": 1}, {"RowId": 2}])
    with pytest.raises(AmbiguousMatch) as caught:
        uniconta.get_one("ContactClient", "Email", "a@b.dk")
    assert not caught.value.retryable
    assert caught.value.field == "Email"
    assert "a@b.dk" not in str(caught.value)


@pytest.mark.parametrize("name", ["", "Debtor Client", "../x", "Debtor?x=1", "Debtor/Client"])
def test_bad_entity_and_property_names(uniconta, name):
    with pytest.raises(ValueError):
        uniconta.insert(name, {})
    with pytest.raises(ValueError):
        uniconta.find("DebtorClient", name, "1")


def test_username_with_slash_is_used_as_given(rsps, const):
    client = UnicontaClient(URL, 1234, "0001234/sandbox", const.password)
    rsps.add("GET", URL + "/api/Entities/DebtorClient", json=[])
    rsps.add("GET", URL + "/odata/1234/DebtorClient", json={"value": []})
    client.find("DebtorClient", "Account", "1")
    list(client.odata("DebtorClient"))
    assert rsps.calls[0].request.headers["Authorization"] == basic("0001234/sandbox", const.password)
    assert rsps.calls[1].request.headers["Authorization"] == basic("sandbox", const.password)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"company_id": "12a4"},
        {"username": ""},
        {"password": ""},
        {"odata_page_size": 0},
    ],
)
def test_constructor_validation(const, kwargs):
    args = {"company_id": 1234, "username": "u", "password": "p", **kwargs}
    with pytest.raises(ValueError):
        UnicontaClient(URL, **args)


def test_repr_has_no_password(const):
    assert const.password not in repr(UnicontaClient(URL, 1234, "u", const.password))


# --- OData --------------------------------------------------------------------------------------


def test_odata_query_parameters_accept_header_and_plain_user(uniconta, rsps, const):
    rsps.add("GET", URL + "/odata/1234/DebtorClientUser", json={"value": [{"Account": "1001"}]})
    since = datetime(2024, 1, 1, tzinfo=UTC)
    rows = list(
        uniconta.odata("DebtorClientUser", filter=f"UpdatedAt ge {odata_literal(since)}", orderby="UpdatedAt", top=10)
    )
    assert rows == [{"Account": "1001"}]
    (call,) = rsps.calls
    assert query_of(call) == {
        "$filter": ["UpdatedAt ge datetime'2024-01-01T00:00:00'"],
        "$orderby": ["UpdatedAt"],
        "$top": ["10"],
    }
    assert call.request.headers["Accept"] == "application/json"
    assert call.request.headers["Authorization"] == basic(const.user, const.password)
    assert "Prefer" not in call.request.headers


def test_odata_follows_next_links(uniconta, rsps, observed):
    base = URL + "/odata/1234/InvItemClient"
    rsps.add("GET", base, json={"value": [{"Item": "A"}], "@odata.nextLink": base + "?$skip=1&$top=1"})
    rsps.add("GET", base, json={"value": [{"Item": "B"}], "odata.nextLink": "/odata/1234/InvItemClient?$skip=2"})
    rsps.add("GET", base, json={"value": [{"Item": "C"}]})

    assert [r["Item"] for r in uniconta.odata("InvItemClient")] == ["A", "B", "C"]

    urls = [c.request.url for c in rsps.calls]
    assert urls[1] == base + "?$skip=1&$top=1"
    assert urls[2] == base + "?$skip=2"
    assert [o[1] for o in observed] == ["/odata/1234/InvItemClient"] * 3


def test_odata_stops_at_top_even_if_the_server_keeps_paging(uniconta, rsps):
    base = URL + "/odata/1234/InvItemClient"
    rsps.add("GET", base, json={"value": [{"Item": "A"}, {"Item": "B"}], "@odata.nextLink": base + "?$skip=2"})
    assert len(list(uniconta.odata("InvItemClient", top=2))) == 2
    assert len(rsps.calls) == 1


def test_odata_repeating_next_link_is_stopped(uniconta, rsps):
    base = URL + "/odata/1234/InvItemClient"
    rsps.add("GET", base, json={"value": [{"Item": "A"}], "@odata.nextLink": base + "?$skip=1"})
    with pytest.raises(InvalidResponse, match="repeats"):
        list(uniconta.odata("InvItemClient"))
    assert len(rsps.calls) == 2


def test_odata_paging_is_capped(rsps, const):
    counter = iter(range(1000))

    def endless(request):
        n = next(counter)
        return 200, {}, json.dumps({"value": [{"n": n}], "@odata.nextLink": f"{URL}/odata/1234/InvItemClient?$skip={n + 1}"})

    rsps.add_callback("GET", URL + "/odata/1234/InvItemClient", callback=endless)
    client = UnicontaClient(URL, 1234, "u", const.password, max_pages=4)
    with pytest.raises(InvalidResponse, match="did not end after 4 pages"):
        list(client.odata("InvItemClient"))
    assert len(rsps.calls) == 4


def test_odata_never_follows_a_link_to_another_host(uniconta, rsps):
    rsps.add(
        "GET",
        URL + "/odata/1234/InvItemClient",
        json={"value": [{"Item": "A"}], "@odata.nextLink": "https://evil.test/odata/1234/InvItemClient?$skip=1"},
    )
    with pytest.raises(InvalidResponse, match="another host"):
        list(uniconta.odata("InvItemClient"))
    assert len(rsps.calls) == 1


@pytest.mark.parametrize(
    "link",
    [
        "http://odata.uniconta.test/odata/1234/InvItemClient?$skip=1",  # TLS proxy: upgraded
        "https://ODATA.uniconta.test:443/odata/1234/InvItemClient?$skip=1",
    ],
)
def test_odata_next_link_to_the_same_host(uniconta, rsps, link):
    base = URL + "/odata/1234/InvItemClient"
    rsps.add("GET", base, json={"value": [{"Item": "A"}], "@odata.nextLink": link})
    rsps.add("GET", base, json={"value": [{"Item": "B"}]})
    assert [r["Item"] for r in uniconta.odata("InvItemClient")] == ["A", "B"]
    assert rsps.calls[1].request.url.startswith("https://")


@pytest.mark.parametrize(
    "link",
    ["https://odata.uniconta.test:8443/odata/1234/X?$skip=1", "http://odata.uniconta.test:8080/odata/1234/X"],
)
def test_odata_next_link_to_another_port_is_refused(uniconta, rsps, link):
    rsps.add("GET", URL + "/odata/1234/InvItemClient", json={"value": [{"Item": "A"}], "@odata.nextLink": link})
    with pytest.raises(InvalidResponse):
        list(uniconta.odata("InvItemClient"))


@pytest.mark.parametrize("body", [{"d": {"results": [{"Item": "A"}]}}, [{"Item": "A"}]])
def test_odata_older_json_shapes(uniconta, rsps, body):
    rsps.add("GET", URL + "/odata/1234/InvItemClient", json=body)
    assert list(uniconta.odata("InvItemClient")) == [{"Item": "A"}]


@pytest.mark.parametrize("body", [{"values": []}, "x", {"value": "x"}])
def test_odata_wrong_shape_is_invalid(uniconta, rsps, body):
    rsps.add("GET", URL + "/odata/1234/InvItemClient", json=body)
    with pytest.raises(InvalidResponse):
        list(uniconta.odata("InvItemClient"))


def test_odata_page_size_preference(rsps, const):
    client = UnicontaClient(URL, 1234, "u", const.password, odata_page_size=250)
    rsps.add("GET", URL + "/odata/1234/InvItemClient", json={"value": []})
    list(client.odata("InvItemClient"))
    assert rsps.calls[0].request.headers["Prefer"] == "odata.maxpagesize=250"


@pytest.mark.parametrize("top", [-1, True, 1.5])
def test_odata_top_validation(uniconta, top):
    with pytest.raises(ValueError):
        list(uniconta.odata("InvItemClient", top=top))


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("1001", "'1001'"),
        ("O'Brien", "'O''Brien'"),
        (7, "7"),
        (Decimal("1.50"), "1.50"),
        (2.5, "2.5"),
        (True, "true"),
        (False, "false"),
        (None, "null"),
        (date(2021, 1, 1), "datetime'2021-01-01T00:00:00'"),
        (datetime(2021, 1, 1, 1, 30, tzinfo=timezone(timedelta(hours=1))), "datetime'2021-01-01T00:30:00'"),
        (datetime(2021, 1, 1, 1, 30, 15, 999), "datetime'2021-01-01T01:30:15'"),  # naive: as given
    ],
)
def test_odata_literal(value, expected):
    assert odata_literal(value) == expected


@pytest.mark.parametrize(("value", "error"), [(float("nan"), ValueError), (float("inf"), ValueError), ([1], TypeError)])
def test_odata_literal_refuses(value, error):
    with pytest.raises(error):
        odata_literal(value)
