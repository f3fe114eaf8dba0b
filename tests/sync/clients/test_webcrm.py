"""WebcrmClient against a `responses` mock: URLs, bodies, auth, token lifetime, paging, id tolerance."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta, timezone
from decimal import Decimal
from urllib.parse import parse_qs, urlsplit

import pytest
import requests

from sync.clients.errors import AuthError, InvalidResponse, NotFound, Throttled, Transient
from sync.clients.http import USER_AGENT
from sync.clients.webcrm import WebcrmClient, parse_time, sql_literal

URL = "https://api.webcrm.test"


def query_of(call) -> dict[str, list[str]]:
    return parse_qs(urlsplit(call.request.url).query)


def api_calls(rsps) -> list:
    return [c for c in rsps.calls if not c.request.url.endswith("/Auth/ApiLogin")]


# --- login and token lifetime ----------------------------------------------------------------


def test_login_posts_the_auth_code_as_form_field_and_uses_the_bearer_token(webcrm, rsps, const, logins):
    rsps.add("GET", URL + "/Organisations/145", json={"OrganisationId": 145})

    assert webcrm.get("Organisations", 145) == {"OrganisationId": 145}

    (login,) = logins()
    assert login.request.method == "POST"
    assert login.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert parse_qs(login.request.body) == {"authCode": [const.auth_code]}
    assert "Authorization" not in login.request.headers
    (call,) = api_calls(rsps)
    assert call.request.headers["Authorization"] == f"Bearer {const.token}"
    assert call.request.headers["User-Agent"] == USER_AGENT
    assert call.request.headers["Accept"] == "application/json"
    assert call.request.req_kwargs["timeout"] == (3.05, 20.0)


def test_token_is_reused(webcrm, rsps, logins):
    rsps.add("GET", URL + "/Organisations/1", json={})
    for _ in range(3):
        webcrm.get("Organisations", 1)
    assert len(logins()) == 1


def test_relogin_300_seconds_before_expiry(webcrm, rsps, clock, add_login, const, logins):
    rsps.add("GET", URL + "/Users/1", json={})
    webcrm.get("Users", 1)
    clock.advance(3299)
    webcrm.get("Users", 1)
    assert len(logins()) == 1

    add_login(token=const.token2)
    clock.advance(1)
    webcrm.get("Users", 1)
    assert len(logins()) == 2
    assert api_calls(rsps)[-1].request.headers["Authorization"] == f"Bearer {const.token2}"


@pytest.mark.parametrize(
    ("expires_in", "renew_after"),
    [(400, 200), (600, 300), (900, 600), (None, 3300), ("garbage", 3300), (0, 3300)],
)
def test_short_lifetimes_renew_at_half_and_missing_lifetime_means_one_hour(
    rsps, clock, add_login, expires_in, renew_after, logins
):
    add_login(expires_in=expires_in)
    client = WebcrmClient(URL, "code-1234", clock=clock)
    rsps.add("GET", URL + "/Users/1", json={})
    client.get("Users", 1)
    clock.advance(renew_after - 1)
    client.get("Users", 1)
    assert len(logins()) == 1
    clock.advance(1)
    client.get("Users", 1)
    assert len(logins()) == 2


@pytest.mark.parametrize("status", [401, 403])
def test_relogin_once_on_401_and_retry(webcrm, rsps, add_login, const, logins, status):
    rsps.add("GET", URL + "/Persons/5", status=status, json={"Message": "Token expired"})
    rsps.add("GET", URL + "/Persons/5", json={"PersonId": 5})
    add_login(token=const.token2)

    assert webcrm.get("Persons", 5) == {"PersonId": 5}

    assert len(logins()) == 2
    first, second = api_calls(rsps)
    assert first.request.headers["Authorization"] == f"Bearer {const.token}"
    assert second.request.headers["Authorization"] == f"Bearer {const.token2}"


@pytest.mark.parametrize("status", [401, 403])
def test_401_twice_is_auth_error_after_exactly_one_relogin(webcrm, rsps, add_login, logins, status):
    rsps.add("GET", URL + "/Persons/5", status=status, json={"Message": "Unauthorized"})
    add_login()
    with pytest.raises(AuthError) as caught:
        webcrm.get("Persons", 5)
    assert caught.value.status == status
    assert not caught.value.retryable
    assert len(logins()) == 2
    assert len(api_calls(rsps)) == 2


@pytest.mark.parametrize(
    ("status", "body"),
    [
        (401, {"Message": "Invalid auth code"}),
        (400, {"error": "invalid_grant"}),
        (403, {}),
        (200, {"AccessToken": None, "IsError": True, "Error": "invalid_code", "ErrorDescription": "Unknown"}),
        (200, {"AccessToken": "x", "IsError": True}),
        (200, []),
    ],
)
def test_rejected_login_is_auth_error_without_retry(rsps, status, body, logins):
    rsps.add("POST", URL + "/Auth/ApiLogin", status=status, json=body)
    client = WebcrmClient(URL, "bad-code-123")
    with pytest.raises(AuthError) as caught:
        client.get("Organisations", 1)
    assert caught.value.path == "/Auth/ApiLogin"
    assert len(logins()) == 1
    assert not api_calls(rsps)


def test_login_server_error_is_transient(rsps):
    rsps.add("POST", URL + "/Auth/ApiLogin", status=503, body="Service Unavailable")
    with pytest.raises(Transient):
        WebcrmClient(URL, "code-1234").get("Organisations", 1)


def test_login_non_json_is_invalid_response(rsps):
    rsps.add("POST", URL + "/Auth/ApiLogin", body="<html>login</html>")
    with pytest.raises(InvalidResponse):
        WebcrmClient(URL, "code-1234").login()


# --- generic entity methods ---------------------------------------------------------------------


def test_get_requires_an_object(webcrm, rsps):
    rsps.add("GET", URL + "/Deliveries/9", json=[1, 2])
    with pytest.raises(InvalidResponse):
        webcrm.get("Deliveries", 9)


def test_get_non_json_is_invalid_response(webcrm, rsps):
    rsps.add("GET", URL + "/Deliveries/9", body="<html>oops</html>")
    with pytest.raises(InvalidResponse) as caught:
        webcrm.get("Deliveries", 9)
    assert caught.value.status == 200


def test_get_unknown_id_is_not_found(webcrm, rsps):
    rsps.add("GET", URL + "/Deliveries/9", status=404, json={"Message": "Delivery 9 not found"})
    with pytest.raises(NotFound) as caught:
        webcrm.get("Deliveries", 9)
    assert caught.value.message == "Delivery 9 not found"
    assert caught.value.path == "/Deliveries/9"


def test_nested_entity_path(webcrm, rsps):
    rsps.add("GET", URL + "/QuotationLines/LinkedData/4", json={"QuotationLineLinkedDataItemId": 4})
    assert webcrm.get("QuotationLines/LinkedData", 4)["QuotationLineLinkedDataItemId"] == 4


@pytest.mark.parametrize("entity", ["", "../Auth", "Organisations?x=1", "Organisations/", "/Organisations", "a b"])
def test_bad_entity_paths_are_refused(webcrm, entity):
    with pytest.raises(ValueError):
        webcrm.get(entity, 1)


@pytest.mark.parametrize("bad", [-1, "1/2", 1.5, None])
def test_bad_ids_are_refused(webcrm, bad):
    with pytest.raises((ValueError, TypeError)):
        webcrm.get("Organisations", bad)


def test_numeric_string_id_is_accepted(webcrm, rsps):
    rsps.add("GET", URL + "/Organisations/12", json={})
    webcrm.get("Organisations", "12")


@pytest.mark.parametrize(
    ("status", "body", "expected"),
    [
        (200, "123", 123),
        (200, '"123"', 123),
        (200, "123.0", 123),
        (200, '{"OrganisationId": 77}', 77),
        (200, '{"organisationid": "78"}', 78),
        (200, '{"Id": 79}', 79),
        (201, '{"OrganisationId": 80, "OrganisationName": "X"}', 80),
        (200, "", None),
        (204, "", None),
        (200, "null", None),
        (200, "0", None),
        (200, '{"Foo": 1}', None),
        (200, "true", None),
        (200, "created", None),
        (200, "[1]", None),
    ],
)
def test_create_tolerates_every_id_shape(webcrm, rsps, status, body, expected):
    rsps.add("POST", URL + "/Organisations", status=status, body=body)
    dto = {"OrganisationId": 0, "OrganisationName": "Østergaard Smed ApS"}

    assert webcrm.create("Organisations", dto) == expected

    (call,) = api_calls(rsps)
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == dto


@pytest.mark.parametrize(
    ("entity", "body", "expected"),
    [
        ("Persons", '{"PersonId": 5}', 5),
        ("Deliveries", '{"DeliveryId": 6}', 6),
        ("Opportunities", '{"OpportunityId": 7}', 7),
        ("QuotationLines", '{"QuotationLineId": 8}', 8),
        ("QuotationLines/LinkedData", '{"QuotationLineLinkedDataItemId": 9}', 9),
        ("Users", "10", 10),
    ],
)
def test_create_id_field_follows_the_entity(webcrm, rsps, entity, body, expected):
    rsps.add("POST", f"{URL}/{entity}", body=body)
    assert webcrm.create(entity, {}) == expected


def test_update_puts_the_dto(webcrm, rsps):
    rsps.add("PUT", URL + "/Persons/5", body="")
    webcrm.update("Persons", 5, {"PersonId": 5, "PersonLastName": "Kjærgaard"})
    (call,) = api_calls(rsps)
    assert call.request.method == "PUT"
    assert json.loads(call.request.body) == {"PersonId": 5, "PersonLastName": "Kjærgaard"}


def test_delete(webcrm, rsps):
    rsps.add("DELETE", URL + "/QuotationLines/31", status=204)
    webcrm.delete("QuotationLines", 31)
    (call,) = api_calls(rsps)
    assert call.request.method == "DELETE"
    assert call.request.url == URL + "/QuotationLines/31"


def test_delete_not_allowed_is_permanent(webcrm, rsps):
    rsps.add("DELETE", URL + "/Organisations/1", status=405, json={"Message": "Method not allowed"})
    with pytest.raises(Exception) as caught:
        webcrm.delete("Organisations", 1)
    assert type(caught.value).__name__ == "Permanent"


# --- bulk upsert (PATCH) -----------------------------------------------------------------------------

OK, FAILED, UNKNOWN = "ok", "failed", "unknown"


def outcomes(result) -> list[tuple]:
    return [(o.status, o.id, o.error) for o in result]


BATCH = [
    {"OrganisationId": 0, "OrganisationName": "Ny ApS"},
    {"OrganisationId": 145, "OrganisationName": "Gammel ApS"},
    {"OrganisationId": "146", "OrganisationName": "Id som tekst"},
    {"organisationid": 147, "OrganisationName": "Id i små bogstaver"},
    {"OrganisationName": "Uden id"},
]


def test_patch_sends_one_array_and_reads_the_strict_answer(webcrm, rsps, observed):
    rsps.add("PATCH", URL + "/Organisations",
             json=["201", "145", "146", "Organisation with id 147 was not found.", " 202 "])

    result = webcrm.patch("Organisations", BATCH)

    assert outcomes(result) == [(OK, 201, None), (OK, 145, None), (OK, 146, None),
                                (FAILED, None, "Organisation with id 147 was not found."), (OK, 202, None)]
    (call,) = api_calls(rsps)
    assert call.request.method == "PATCH"
    assert call.request.url == URL + "/Organisations"
    assert call.request.headers["Content-Type"] == "application/json"
    assert json.loads(call.request.body) == BATCH
    assert [o[:3] for o in observed if o[1] != "/Auth/ApiLogin"] == [("PATCH", "/Organisations", 200)]


def test_patch_outcome_is_a_frozen_value():
    from sync.clients.webcrm import PatchOutcome

    outcome = PatchOutcome("ok", id=5)
    assert outcome == PatchOutcome("ok", 5, None)
    with pytest.raises(AttributeError):
        outcome.id = 6  # type: ignore[misc]


def test_patch_shorter_answer_matches_only_updates_by_id(webcrm, rsps):
    """The literal reading: ids of inserted records and error messages, nothing for updates."""
    rsps.add("PATCH", URL + "/Organisations", json=["145", "201", "Name is too long", "147"])
    assert outcomes(webcrm.patch("Organisations", BATCH)) == [
        (UNKNOWN, None, None), (OK, 145, None), (UNKNOWN, None, None), (OK, 147, None), (UNKNOWN, None, None)]


def test_patch_only_inserted_ids_leaves_everything_unknown(webcrm, rsps):
    rsps.add("PATCH", URL + "/Organisations", json=["201", "202"])
    assert [o.status for o in webcrm.patch("Organisations", BATCH)] == [UNKNOWN] * 5


def test_patch_answer_that_contradicts_positions_is_matched_by_id(webcrm, rsps):
    # as long as the batch, but reordered: position 2 names 146 where 145 was sent
    rsps.add("PATCH", URL + "/Organisations", json=["201", "146", "145", "147", "202"])
    assert outcomes(webcrm.patch("Organisations", BATCH)) == [
        (UNKNOWN, None, None), (OK, 145, None), (OK, 146, None), (OK, 147, None), (UNKNOWN, None, None)]


def test_patch_id_sent_twice_must_come_back_twice(webcrm, rsps):
    twice = [{"OrganisationId": 5}, {"OrganisationId": 5}, {"OrganisationId": 6}]
    rsps.add("PATCH", URL + "/Organisations", json=["5", "6"])
    assert [o.status for o in webcrm.patch("Organisations", twice)] == [UNKNOWN, UNKNOWN, OK]


@pytest.mark.parametrize(
    ("status", "body"),
    [(200, ""), (204, ""), (200, "   "), (200, "not json"), (200, '{"Ids": ["1"]}'), (200, "null"), (200, '"5"'),
     (202, "[")],
)
def test_patch_answer_without_a_list_leaves_every_item_unknown(webcrm, rsps, status, body):
    rsps.add("PATCH", URL + "/Persons", status=status, body=body)
    result = webcrm.patch("Persons", [{"PersonId": 0}, {"PersonId": 9}])
    assert outcomes(result) == [(UNKNOWN, None, None)] * 2


@pytest.mark.parametrize(
    ("entry", "expected"),
    [(None, (UNKNOWN, None, None)), ("0", (UNKNOWN, None, None)), ("", (UNKNOWN, None, None)),
     (12, (OK, 12, None)), (True, (UNKNOWN, None, None)), ({"PersonId": 12}, (UNKNOWN, None, None)),
     ("-3", (FAILED, None, "-3")), ("  Efternavn  mangler\n ", (FAILED, None, "Efternavn mangler"))],
)
def test_patch_odd_entries(webcrm, rsps, entry, expected):
    rsps.add("PATCH", URL + "/Persons", json=[entry])
    assert outcomes(webcrm.patch("Persons", [{"PersonId": 0}])) == [expected]


def test_patch_error_texts_are_masked_and_trimmed(webcrm, rsps, const):
    rsps.add("PATCH", URL + "/Users", json=[f"token {const.token} rejected; authCode={const.auth_code}",
                                            "x" * 1000])
    first, second = webcrm.patch("Users", [{"UserId": 0}, {"UserId": 0}])
    assert first.status == FAILED and first.error
    assert const.token not in first.error and const.auth_code not in first.error
    assert second.error == "x" * 300


@pytest.mark.parametrize(
    ("status", "error"), [(400, "Permanent"), (404, "NotFound"), (429, "RateLimited"), (503, "Transient")]
)
def test_patch_http_errors_raise_like_every_call(webcrm, rsps, status, error):
    rsps.add("PATCH", URL + "/Deliveries", status=status, json={"Message": "The request has 1001 items"},
             headers={"Retry-After": "2"})
    with pytest.raises(Exception) as caught:
        webcrm.patch("Deliveries", [{"DeliveryId": 0}])
    assert type(caught.value).__name__ == error
    assert caught.value.method == "PATCH" and caught.value.path == "/Deliveries"


def test_patch_logs_in_again_once_on_401(webcrm, rsps, add_login, const, logins):
    rsps.add("PATCH", URL + "/Organisations", status=401, json={"Message": "expired"})
    rsps.add("PATCH", URL + "/Organisations", json=["7"])
    add_login(token=const.token2)
    assert outcomes(webcrm.patch("Organisations", [{"OrganisationId": 7}])) == [(OK, 7, None)]
    assert len(logins()) == 2


def test_patch_with_nothing_sends_nothing(webcrm, rsps):
    assert webcrm.patch("Organisations", []) == []
    assert api_calls(rsps) == [] and len(rsps.calls) == 0


@pytest.mark.parametrize("entity", ["", "../Auth", "Organisations?x=1", "/Organisations"])
def test_patch_refuses_bad_entities(webcrm, entity):
    with pytest.raises(ValueError):
        webcrm.patch(entity, [{}])


def test_patch_refuses_items_that_are_not_dicts(webcrm):
    with pytest.raises(TypeError):
        webcrm.patch("Organisations", [{"OrganisationId": 0}, "x"])  # type: ignore[list-item]


# --- paging ----------------------------------------------------------------------------------------


def pages(rsps, path: str, *bodies) -> None:
    for body in bodies:
        rsps.add("GET", URL + path, json=body)


def test_iter_all_stops_at_a_short_page(webcrm, rsps):
    pages(rsps, "/Organisations", [{"OrganisationId": i} for i in (1, 2, 3)], [{"OrganisationId": 4}])
    assert [o["OrganisationId"] for o in webcrm.iter_all("Organisations")] == [1, 2, 3, 4]
    assert [query_of(c) for c in api_calls(rsps)] == [
        {"Page": ["1"], "Size": ["3"]},
        {"Page": ["2"], "Size": ["3"]},
    ]


def test_iter_all_stops_at_an_empty_page(webcrm, rsps):
    pages(rsps, "/Persons", [{"PersonId": i} for i in (1, 2, 3)], [])
    assert len(list(webcrm.iter_all("Persons"))) == 3
    assert len(api_calls(rsps)) == 2


def test_iter_all_with_explicit_page_size(webcrm, rsps):
    pages(rsps, "/Persons", [{"PersonId": 1}])
    list(webcrm.iter_all("Persons", page_size=1000))
    assert query_of(api_calls(rsps)[0])["Size"] == ["1000"]


def test_page_longer_than_size_means_paging_is_ignored(webcrm, rsps):
    pages(rsps, "/Users/AllActive", [{"UserId": i} for i in range(5)])
    assert len(webcrm.active_users()) == 5
    assert len(api_calls(rsps)) == 1


def test_server_repeating_the_same_page_is_stopped(webcrm, rsps):
    rsps.add("GET", URL + "/Organisations", json=[{"OrganisationId": i} for i in (1, 2, 3)])  # every page
    with pytest.raises(InvalidResponse, match="repeats"):
        list(webcrm.iter_all("Organisations"))
    assert len(api_calls(rsps)) == 2


def test_paging_is_capped(rsps, add_login):
    add_login()
    counter = iter(range(10_000))

    def endless(request):
        return 200, {}, json.dumps([{"Id": next(counter)}])

    rsps.add_callback("GET", URL + "/Organisations", callback=endless)
    client = WebcrmClient(URL, "code-1234", page_size=1, max_pages=5)
    with pytest.raises(InvalidResponse, match="did not end after 5 pages"):
        list(client.iter_all("Organisations"))
    assert len(api_calls(rsps)) == 5


def test_page_that_is_not_a_list_is_invalid(webcrm, rsps):
    rsps.add("GET", URL + "/Organisations", json={"Items": []})
    with pytest.raises(InvalidResponse):
        list(webcrm.iter_all("Organisations"))


@pytest.mark.parametrize("size", [0, 1001, True])
def test_page_size_bounds(size):
    with pytest.raises(ValueError):
        WebcrmClient(URL, "code-1234", page_size=size)


# --- queries and special endpoints -------------------------------------------------------------


def test_query_sends_the_script_and_pages(webcrm, rsps):
    script = "SELECT * FROM Person WHERE PersonEmail = " + sql_literal("o'brien@example.dk")
    pages(rsps, "/Queries", [{"PersonId": 1}, {"PersonId": 2}, {"PersonId": 3}], [])
    assert len(list(webcrm.query(script))) == 3
    first, second = api_calls(rsps)
    assert query_of(first) == {"script": [script], "Page": ["1"], "Size": ["3"]}
    assert query_of(second)["Page"] == ["2"]
    assert "script" in urlsplit(first.request.url).query  # encoded into the query, not the path


def test_empty_query_is_refused(webcrm):
    with pytest.raises(ValueError):
        webcrm.query("  ")


def test_find_organisations_by_update_dates(webcrm, rsps):
    start = datetime(2024, 5, 1, 10, 0, tzinfo=timezone(timedelta(hours=2)))
    end = datetime(2024, 5, 1, 9, 0, tzinfo=UTC)
    expected = URL + "/Organisations/FindByUpdateDates/2024-05-01T08%3A00%3A00Z/2024-05-01T09%3A00%3A00Z"
    rsps.add("GET", expected, json=[{"OrganisationId": 1}])
    assert list(webcrm.find_organisations_by_update_dates(start, end)) == [{"OrganisationId": 1}]
    assert api_calls(rsps)[0].request.url.startswith(expected + "?")


def test_find_by_update_dates_takes_naive_datetimes_as_utc(webcrm, rsps):
    rsps.add("GET", URL + "/Organisations/FindByUpdateDates/2024-01-01T00%3A00%3A00Z/2024-01-02T00%3A00%3A00Z", json=[])
    assert list(webcrm.find_organisations_by_update_dates(datetime(2024, 1, 1), datetime(2024, 1, 2))) == []


def test_delivery_lines(webcrm, rsps):
    pages(rsps, "/Deliveries/158/QuotationLines", [{"QuotationLineId": 1, "QuotationLineOpportunityId": 158}])
    assert webcrm.delivery_lines(158) == [{"QuotationLineId": 1, "QuotationLineOpportunityId": 158}]


def test_active_users(webcrm, rsps):
    pages(rsps, "/Users/AllActive", [{"UserId": 1}])
    assert webcrm.active_users() == [{"UserId": 1}]


@pytest.mark.parametrize("body", [{"QuotationLineUseLinkedField1": True}, [{"QuotationLineUseLinkedField1": True}]])
def test_linked_setup(webcrm, rsps, body):
    rsps.add("GET", URL + "/QuotationLines/LinkedSetup", json=body)
    assert webcrm.linked_setup() == {"QuotationLineUseLinkedField1": True}


def test_linked_setup_wrong_shape(webcrm, rsps):
    rsps.add("GET", URL + "/QuotationLines/LinkedSetup", json="x")
    with pytest.raises(InvalidResponse):
        webcrm.linked_setup()


def test_fields_metadata(webcrm, rsps):
    rsps.add("GET", URL + "/FieldsMetadata/Organisation", json=[{"FieldMetadataDbFieldName": "OrganisationExtraCustom1"}])
    assert webcrm.fields_metadata("Organisation")[0]["FieldMetadataDbFieldName"] == "OrganisationExtraCustom1"
    rsps.add("GET", URL + "/FieldsMetadata/Person", json={})
    with pytest.raises(InvalidResponse):
        webcrm.fields_metadata("Person")


def test_auth_info(webcrm, rsps):
    rsps.add("GET", URL + "/Auth", json={"Name": "Integration"})
    assert webcrm.auth_info() == {"Name": "Integration"}


def test_hooks_create_and_delete(webcrm, rsps):
    pages(rsps, "/Organisations/Hooks", [{"Id": 3, "EventType": "Update"}])
    rsps.add("POST", URL + "/Organisations/Hooks", body="9000000001")
    rsps.add("DELETE", URL + "/Organisations/Hooks/9000000001", body="")

    assert webcrm.hooks("Organisations") == [{"Id": 3, "EventType": "Update"}]
    assert webcrm.create_hook("Organisations", "https://sync.example/hooks/webcrm?t=abc", "Update") == 9000000001
    webcrm.delete_hook("Organisations", 9000000001)

    _, post, delete = api_calls(rsps)
    assert json.loads(post.request.body) == {
        "Id": 0,
        "TargetUrl": "https://sync.example/hooks/webcrm?t=abc",
        "EventType": "Update",
        "IsEnabled": True,
        "Filter": ["All"],
    }
    assert delete.request.method == "DELETE"


def test_create_hook_validates(webcrm):
    with pytest.raises(ValueError):
        webcrm.create_hook("Organisations", "https://x.example", "Upsert")
    with pytest.raises(ValueError):
        webcrm.create_hook("Organisations", "ftp://x.example", "Create")


# --- hooks of the base client --------------------------------------------------------------------


def test_observer_sees_every_call_without_query(webcrm, rsps, observed):
    pages(rsps, "/Queries", [{"PersonId": 1}])
    list(webcrm.query("SELECT * FROM Person WHERE PersonEmail = 'a@b.dk'"))
    assert [(m, p, s) for m, p, s, _ in observed] == [("POST", "/Auth/ApiLogin", 200), ("GET", "/Queries", 200)]
    assert all(isinstance(ms, float) and ms >= 0 for *_, ms in observed)


def test_observer_gets_none_status_on_connection_error(webcrm, rsps, observed):
    rsps.add("GET", URL + "/Organisations/1", body=requests.ConnectionError("refused"))
    with pytest.raises(Transient):
        webcrm.get("Organisations", 1)
    assert observed[-1][:3] == ("GET", "/Organisations/1", None)


def test_failing_observer_does_not_break_the_call(rsps, add_login):
    add_login()
    rsps.add("GET", URL + "/Users/1", json={"UserId": 1})

    def broken(*args):
        raise RuntimeError("journal down")

    assert WebcrmClient(URL, "code-1234", observer=broken).get("Users", 1) == {"UserId": 1}


def test_before_request_runs_before_every_http_call(rsps, add_login):
    add_login()
    rsps.add("GET", URL + "/Users/1", json={})
    ticks = []
    client = WebcrmClient(URL, "code-1234", before_request=lambda: ticks.append(1))
    client.get("Users", 1)
    client.get("Users", 1)
    assert len(ticks) == 3  # login + two calls


def test_throttled_hook_stops_the_call_and_is_labelled(rsps):
    def refuse():
        raise Throttled("window full", retry_after=2.5)

    client = WebcrmClient(URL, "code-1234", before_request=refuse)
    with pytest.raises(Throttled) as caught:
        client.get("Users", 1)
    assert (caught.value.system, caught.value.method, caught.value.path) == ("webcrm", "POST", "/Auth/ApiLogin")
    assert caught.value.retry_after == 2.5
    assert caught.value.retryable
    assert not rsps.calls


def test_redirects_are_not_followed(webcrm, rsps):
    rsps.add("GET", URL + "/Users/1", status=302, headers={"Location": "https://elsewhere.test/Users/1"})
    with pytest.raises(InvalidResponse):
        webcrm.get("Users", 1)
    assert len(api_calls(rsps)) == 1


def test_custom_timeout_and_session(rsps, add_login):
    add_login()
    rsps.add("GET", URL + "/Users/1", json={})
    session = requests.Session()
    client = WebcrmClient(URL, "code-1234", timeout=(1.0, 5.0), session=session)
    assert client.session is session
    client.get("Users", 1)
    assert api_calls(rsps)[0].request.req_kwargs["timeout"] == (1.0, 5.0)


def test_constructor_validation():
    with pytest.raises(ValueError):
        WebcrmClient("api.webcrm.com", "code-1234")
    with pytest.raises(ValueError):
        WebcrmClient(URL, "")


def test_repr_has_no_secret(const):
    client = WebcrmClient(URL, const.auth_code)
    assert const.auth_code not in repr(client)


def test_client_is_a_context_manager(rsps):
    with WebcrmClient(URL, "code-1234") as client:
        assert client.base_url == URL


# --- module helpers ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("plain", "'plain'"),
        ("O'Brien", "'O''Brien'"),
        ("''", "''''''"),
        ("Østergaard Smed ApS", "'Østergaard Smed ApS'"),
        (7, "'7'"),
        (Decimal("12.50"), "'12.50'"),
        (1.5, "'1.5'"),
        (date(2024, 1, 2), "'2024-01-02'"),
        (datetime(2024, 1, 2, 10, 0, tzinfo=timezone(timedelta(hours=1))), "'2024-01-02T09:00:00Z'"),
        (datetime(2024, 1, 2, 10, 0, 5, 123456), "'2024-01-02T10:00:05Z'"),  # naive = UTC
        ("x' OR 1=1 --", "'x'' OR 1=1 --'"),
    ],
)
def test_sql_literal(value, expected):
    assert sql_literal(value) == expected


@pytest.mark.parametrize(
    ("value", "error"),
    [
        ("line\nbreak", ValueError),
        ("nul\x00", ValueError),
        ("tab\t", ValueError),
        ("del\x7f", ValueError),
        (float("nan"), ValueError),
        (True, TypeError),
        (None, TypeError),
        ([1], TypeError),
    ],
)
def test_sql_literal_refuses(value, error):
    with pytest.raises(error):
        sql_literal(value)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2018-06-04T08:23:55+00:00", datetime(2018, 6, 4, 8, 23, 55, tzinfo=UTC)),
        ("2018-06-28T08:32:08+02:00", datetime(2018, 6, 28, 6, 32, 8, tzinfo=UTC)),
        ("2018-06-04T08:23:55.0000000Z", datetime(2018, 6, 4, 8, 23, 55, tzinfo=UTC)),
        ("2018-06-04T08:23:55", datetime(2018, 6, 4, 8, 23, 55, tzinfo=UTC)),
        ("0001-01-01T00:00:00+00:00", None),
        ("0001-01-01T00:00:00+01:00", None),
        ("", None),
        (None, None),
    ],
)
def test_parse_time(text, expected):
    parsed = parse_time(text)
    assert parsed == expected
    if parsed is not None:
        assert parsed.tzinfo is not None


def test_parse_time_keeps_the_offset_and_accepts_datetimes():
    parsed = parse_time("2018-06-28T08:32:08+02:00")
    assert parsed is not None and parsed.utcoffset() == timedelta(hours=2)
    assert parse_time(datetime(2020, 1, 1)) == datetime(2020, 1, 1, tzinfo=UTC)


def test_parse_time_rejects_garbage():
    with pytest.raises(ValueError):
        parse_time("yesterday")
