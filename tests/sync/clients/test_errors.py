"""Error mapping: status codes and Uniconta ErrorCodes to classes, Retry-After, masking, pickling."""

from __future__ import annotations

import email.utils
import pickle
import time

import pytest
import requests

from sync.clients.errors import (
    AmbiguousMatch,
    ApiError,
    AuthError,
    Conflict,
    InvalidResponse,
    NotFound,
    Permanent,
    RateLimited,
    Throttled,
    Transient,
    redact,
    translate,
)
from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient

WEBCRM = "https://api.webcrm.test"
UNICONTA = "https://odata.uniconta.test"


@pytest.fixture(params=["webcrm", "uniconta"])
def target(request, rsps, add_login, const):
    """(register(status=..., body=...), call()) for one GET on either client."""
    if request.param == "webcrm":
        add_login()
        client = WebcrmClient(WEBCRM, const.auth_code)
        url = WEBCRM + "/Organisations/1"

        def call():
            return client.get("Organisations", 1)
    else:
        client = UnicontaClient(UNICONTA, const.company, const.user, const.password)
        url = UNICONTA + "/api/Entities/DebtorClient"

        def call():
            return client.find("DebtorClient", "Account", "1")

    def register(status=200, body="", headers=None, exc=None):
        rsps.add("GET", url, status=status, body=exc if exc is not None else body, headers=headers or {})

    return request.param, register, call


@pytest.mark.parametrize(
    ("status", "cls"),
    [
        (400, Permanent),
        (401, AuthError),  # webCRM: twice, around one re-login
        (403, AuthError),
        (404, NotFound),
        (405, Permanent),
        (408, Transient),
        (409, Conflict),
        (422, Permanent),
        (429, RateLimited),
        (500, Transient),
        (502, Transient),
        (503, Transient),
        (504, Transient),
    ],
)
def test_status_maps_to_class(target, status, cls):
    system, register, call = target
    register(status=status, body='{"Message": "nope"}')
    with pytest.raises(cls) as caught:
        call()
    err = caught.value
    assert type(err) is cls
    assert err.status == status
    assert err.system == system
    assert err.retryable is (status in (408, 429) or status >= 500)
    assert "?" not in err.path


def test_429_with_retry_after_header(target):
    _, register, call = target
    register(status=429, body="", headers={"Retry-After": "14"})
    with pytest.raises(RateLimited) as caught:
        call()
    assert caught.value.retry_after == 14.0


def test_429_with_webcrm_body_only(target):
    _, register, call = target
    register(
        status=429,
        body='{"RetryAfterSeconds": 9, "Message": "The request was throttled. The limit of 250 requests per minute '
        'is reached", "Type": "TooManyRequestsException"}',
    )
    with pytest.raises(RateLimited) as caught:
        call()
    assert caught.value.retry_after == 9.0
    assert "throttled" in caught.value.message


def test_429_without_any_hint(target):
    _, register, call = target
    register(status=429, body="Too many")
    with pytest.raises(RateLimited) as caught:
        call()
    assert caught.value.retry_after is None


@pytest.mark.parametrize(
    ("exc", "text"),
    [
        (requests.ReadTimeout("read timed out"), "timeout"),
        (requests.ConnectTimeout("connect timed out"), "timeout"),
        (requests.ConnectionError("Connection refused"), "connection error"),
        (requests.exceptions.ChunkedEncodingError("broken"), "connection error"),
    ],
)
def test_transport_errors_are_transient(target, exc, text):
    _, register, call = target
    register(exc=exc)
    with pytest.raises(Transient) as caught:
        call()
    assert caught.value.status is None
    assert text in str(caught.value)
    assert caught.value.__suppress_context__  # requests' exception (URL, headers) is not chained


def test_html_error_page_is_classified_by_status_and_trimmed(target):
    _, register, call = target
    register(status=500, body="<html>" + "x" * 5000 + "</html>")
    with pytest.raises(Transient) as caught:
        call()
    assert len(caught.value.body) == 500
    assert "\n" not in str(caught.value)


# --- Uniconta ErrorCode bodies ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("status", "code", "cls"),
    [
        (400, "CouldNotFind", NotFound),
        (404, "CouldNotFind", NotFound),
        (400, "RecordExists", Conflict),
        (400, "KeyExists", Conflict),
        (500, "RecordExists", Conflict),
        (422, "KeyExists", Conflict),
        (401, "NoRights", AuthError),
        (400, "NoRights", AuthError),
        (400, "FieldCannotBeBlank", Permanent),
        (400, "CouldNotSave", Permanent),
        (422, "AccountIsMissing", Permanent),
        (400, "CouldNotDeleteRecordThatIsReferred", Permanent),
        (500, "Exception", Transient),
        (500, "SQLException", Transient),
        (429, "CouldNotFind", RateLimited),
    ],
)
def test_uniconta_error_codes(rsps, const, status, code, cls):
    client = UnicontaClient(UNICONTA, const.company, const.user, const.password)
    rsps.add(
        "POST",
        UNICONTA + "/api/Entities/Insert/DebtorOrderLineClient",
        status=status,
        json={"ErrorCode": code, "Message": f"{code} happened", "Field": "Item"},
    )
    with pytest.raises(cls) as caught:
        client.insert("DebtorOrderLineClient", {"Item": "NOPE"})
    err = caught.value
    assert type(err) is cls
    assert (err.code, err.field, err.message) == (code, "Item", f"{code} happened")
    assert code in str(err) and "field=Item" in str(err)


@pytest.mark.parametrize(
    "body",
    ['{"errorCode": "RecordExists", "message": "dup"}', '{"ErrorCode": "RecordExists", "Field": null}'],
)
def test_error_body_keys_are_case_insensitive_and_nullable(rsps, const, body):
    client = UnicontaClient(UNICONTA, const.company, const.user, const.password)
    rsps.add("POST", UNICONTA + "/api/Entities/Insert/DebtorClient", status=400, body=body)
    with pytest.raises(Conflict) as caught:
        client.insert("DebtorClient", {})
    assert caught.value.field is None


# --- translate() directly ---------------------------------------------------------------------------


def response(status: int, body: str = "", headers: dict[str, str] | None = None) -> requests.Response:
    resp = requests.Response()
    resp.status_code = status
    resp._content = body.encode()
    resp.headers.update(headers or {})
    resp.encoding = "utf-8"
    return resp


def test_retry_after_http_date():
    when = email.utils.formatdate(time.time() + 30, usegmt=True)
    err = translate(response(503, headers={"Retry-After": when}), system="s", method="GET", path="/p")
    assert isinstance(err, Transient)
    assert 25 <= err.retry_after <= 31


def test_retry_after_header_wins_over_body():
    err = translate(
        response(429, '{"RetryAfterSeconds": 50}', {"Retry-After": "3"}), system="s", method="GET", path="/p"
    )
    assert err.retry_after == 3.0


@pytest.mark.parametrize("value", ["soon", "-5", ""])
def test_odd_retry_after_values(value):
    err = translate(response(429, "", {"Retry-After": value}), system="s", method="GET", path="/p")
    assert err.retry_after in (None, 0.0)


@pytest.mark.parametrize("status", [400, 401, 403])
def test_login_rejections_are_auth_errors(status):
    err = translate(response(status, "{}"), system="s", method="POST", path="/Auth/ApiLogin", login=True)
    assert type(err) is AuthError


def test_unexpected_redirect_is_invalid_response():
    err = translate(response(301, "", {"Location": "https://x"}), system="s", method="GET", path="/p")
    assert type(err) is InvalidResponse and "301" in str(err)


def test_other_request_exceptions_are_permanent():
    err = translate(requests.exceptions.InvalidURL("bad url"), system="s", method="GET", path="/p")
    assert type(err) is Permanent


def test_transport_error_text_loses_the_query():
    exc = requests.ConnectionError(
        "HTTPSConnectionPool(host='api.webcrm.com', port=443): Max retries exceeded with url: "
        "/Queries?script=SELECT+*+FROM+Person+WHERE+PersonEmail%3D%27a%40b.dk%27&Page=1 (Caused by X)"
    )
    err = translate(exc, system="webcrm", method="GET", path="/Queries")
    assert "script" not in str(err)
    assert "a%40b.dk" not in str(err)
    assert "/Queries?" in str(err)


def test_class_tree_and_retryable_flags():
    assert issubclass(RateLimited, Transient) and issubclass(Throttled, Transient)
    for cls in (NotFound, Conflict, AuthError, InvalidResponse, AmbiguousMatch):
        assert issubclass(cls, Permanent)
    assert all(c.retryable for c in (Transient, RateLimited, Throttled))
    assert not any(c.retryable for c in (ApiError, Permanent, NotFound, Conflict, AuthError, InvalidResponse))


def test_errors_survive_pickling():
    """Celery stores and re-raises task exceptions through pickle."""
    err = RateLimited(
        "slow down", system="webcrm", method="GET", path="/Persons", status=429, body="{}", code=None, retry_after=4.0
    )
    copy = pickle.loads(pickle.dumps(err))
    assert type(copy) is RateLimited
    assert (copy.system, copy.path, copy.status, copy.retry_after, str(copy)) == (
        "webcrm",
        "/Persons",
        429,
        4.0,
        str(err),
    )


def test_str_is_one_line_with_the_essentials():
    err = NotFound(
        "Delivery\n9 not found", system="webcrm", method="GET", path="/Deliveries/9", status=404, retry_after=None
    )
    assert str(err) == "webcrm GET /Deliveries/9 HTTP 404: Delivery 9 not found"
    assert str(Throttled("full", retry_after=2)) == "Throttled no response: full (retry after 2.0 s)"


# --- masking ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "hidden"),
    [
        ('{"AccessToken":"abc.def.ghi","ExpiresIn":3600}', "abc.def.ghi"),
        ('{"refresh_token": "r-123-456"}', "r-123-456"),
        ("authCode=0f8c6c1e-4a1b&x=1", "0f8c6c1e-4a1b"),
        ("password: hunter22", "hunter22"),
        ("'Password': 'hunter22'", "hunter22"),
        ("Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.payload.sig", "eyJhbGciOiJIUzI1NiJ9"),
        ("sent Basic c2FuZGJveDpzYW5kYm94 to server", "c2FuZGJveDpzYW5kYm94"),
        ("callback https://x.test/hook?token=t0p-s3cret&id=4 failed", "t0p-s3cret"),
        ('{"ApiKey": "k-1234567"}', "k-1234567"),
    ],
)
def test_redact_patterns(text, hidden):
    assert hidden not in redact(text)


def test_redact_known_secrets_in_every_encoding():
    secret = 'p@ss w"rd/ø'
    text = " | ".join([secret, requests.utils.quote(secret, safe=""), 'json: "p@ss w\\"rd/\\u00f8"', "p%40ss+w%22rd%2F%C3%B8"])
    masked = redact(text, [secret])
    for fragment in ("p@ss", "p%40ss", "w\\\"rd"):
        assert fragment not in masked


def test_redact_keeps_harmless_text():
    text = '{"Message": "Organisation 145 not found", "ExpiresIn": 3600}'
    assert redact(text, ["abc"]) == text  # secrets shorter than 4 characters are ignored


def test_masking_is_fast_on_huge_bodies():
    body = "<html>" + "x" * 1_000_000 + "?&" * 50_000 + "token" * 10_000 + "</html>"
    started = time.perf_counter()
    err = translate(response(500, body), system="s", method="GET", path="/p", secrets=["s3cret-value"])
    assert time.perf_counter() - started < 0.5
    assert len(err.body) == 500


def test_secret_straddling_the_trim_is_masked_whole():
    secret = "S3CRET-" + "z" * 40
    body = "a" * 480 + secret + "b" * 2000
    err = translate(response(400, body), system="s", method="GET", path="/p", secrets=[secret])
    assert "S3CRET" not in err.body and "zzzz" not in err.body
