"""No error text, observer call or log line ever carries the auth code, password or a token.

Random secrets, and servers that echo them back in every way we can think of.
"""

from __future__ import annotations

import base64
import json
import logging
import string
from urllib.parse import quote, quote_plus

import pytest
import requests
import responses
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from sync.clients.errors import ApiError
from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import WebcrmClient

WEBCRM = "https://api.webcrm.test"
UNICONTA = "https://odata.uniconta.test"

# The leading "§" appears in nothing our code writes by itself, so any occurrence of a secret in
# the output came from the secret (hypothesis likes to try the code's own string constants).
secret_text = st.text(
    alphabet=string.ascii_letters + string.digits + "-_.!@#$%^&+=/?:;,~ æøå\"\\", min_size=11, max_size=40
).map(lambda s: "§" + s)
statuses = st.sampled_from([400, 401, 403, 404, 409, 422, 429, 500, 503])


def echoes(*secrets: str) -> list[str]:
    """Bodies a careless server might send back."""
    bodies = []
    for s in secrets:
        bodies += [
            json.dumps({"Message": f"invalid value {s}", "authCode": s, "Field": "x"}),
            json.dumps({"Message": f"invalid value {s}"}, ensure_ascii=False),
            f"<html><body>Request authCode={quote_plus(s)}&x=1 failed: {s}</body></html>",
            f"Authorization: Bearer {s}\npassword={quote(s, safe='')}",
            "x" * 495 + s + "y" * 100,  # across the trim
        ]
    return bodies


class Recorder(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.DEBUG)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


def everything_said(err: BaseException | None, observed: list, recorder: Recorder) -> str:
    parts = [repr(observed), *recorder.lines]
    if err is not None:
        parts += [str(err), repr(err), repr(err.args)]
        if isinstance(err, ApiError):
            parts += [err.body, err.message, err.path, str(err.code), str(err.field)]
    return "\n".join(parts)


@pytest.fixture
def recorder():
    rec = Recorder()
    root = logging.getLogger()
    old_level = root.level
    root.addHandler(rec)
    root.setLevel(logging.DEBUG)
    yield rec
    root.removeHandler(rec)
    root.setLevel(old_level)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(auth_code=secret_text, token=secret_text, status=statuses, echo=st.integers(0, 14), data=st.data())
def test_webcrm_never_leaks(recorder, auth_code, token, status, echo, data):
    assume(auth_code != token and auth_code not in token and token not in auth_code)
    observed: list = []
    recorder.lines.clear()
    bodies = echoes(auth_code, token, "refresh-" + token)
    body = bodies[echo]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add("POST", WEBCRM + "/Auth/ApiLogin", json={"AccessToken": token, "RefreshToken": "refresh-" + token,
                                                          "ExpiresIn": 3600})
        rsps.add("GET", WEBCRM + "/Organisations/1", status=status, body=body,
                 headers={"Retry-After": "1"} if status == 429 else {})
        client = WebcrmClient(WEBCRM, auth_code, observer=lambda *a: observed.append(a))
        with pytest.raises(ApiError) as caught:
            client.get("Organisations", 1)
    said = everything_said(caught.value, observed, recorder)
    for secret in (auth_code, token, "refresh-" + token):
        assert secret not in said
    assert repr(client).count(auth_code) == 0


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(auth_code=secret_text, token=secret_text, echo=st.integers(0, 14))
def test_webcrm_patch_error_texts_never_leak(recorder, auth_code, token, echo):
    """A bulk upsert's per-item error strings are kept for the caller: masked like any error text."""
    assume(auth_code != token and auth_code not in token and token not in auth_code)
    observed: list = []
    recorder.lines.clear()
    entry = echoes(auth_code, token, "refresh-" + token)[echo]
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add("POST", WEBCRM + "/Auth/ApiLogin", json={"AccessToken": token, "RefreshToken": "refresh-" + token,
                                                          "ExpiresIn": 3600})
        rsps.add("PATCH", WEBCRM + "/Organisations", json=[entry, "12"])
        client = WebcrmClient(WEBCRM, auth_code, observer=lambda *a: observed.append(a))
        failed, ok = client.patch("Organisations", [{"OrganisationId": 0}, {"OrganisationId": 12}])
    assert (failed.status, ok.status) == ("failed", "ok")
    said = everything_said(None, observed, recorder) + "\n" + repr(failed) + str(failed.error)
    for secret in (auth_code, token, "refresh-" + token):
        assert secret not in said


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(auth_code=secret_text, status=st.sampled_from([200, 400, 401, 403, 500]), echo=st.integers(0, 4))
def test_webcrm_login_failure_never_leaks(recorder, auth_code, status, echo):
    observed: list = []
    recorder.lines.clear()
    body = echoes(auth_code)[echo]
    if status == 200:  # a "successful" login that reports an error
        body = json.dumps({"AccessToken": None, "IsError": True, "Error": "invalid_code",
                           "ErrorDescription": f"unknown code {auth_code}"})
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add("POST", WEBCRM + "/Auth/ApiLogin", status=status, body=body)
        with pytest.raises(ApiError) as caught:
            WebcrmClient(WEBCRM, auth_code, observer=lambda *a: observed.append(a)).login()
    assert auth_code not in everything_said(caught.value, observed, recorder)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(password=secret_text, status=statuses, echo=st.integers(0, 4), odata=st.booleans())
def test_uniconta_never_leaks(recorder, password, status, echo, odata):
    user = "sandbox"
    basic_entities = base64.b64encode(f"001234/{user}:{password}".encode()).decode()
    basic_odata = base64.b64encode(f"{user}:{password}".encode()).decode()
    observed: list = []
    recorder.lines.clear()
    body = echoes(password)[echo] + f" creds {basic_entities} {basic_odata}"
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add("GET", UNICONTA + "/odata/1234/DebtorClient", status=status, body=body)
        rsps.add("POST", UNICONTA + "/api/Entities/Insert/DebtorClient", status=status, body=body)
        client = UnicontaClient(UNICONTA, 1234, user, password, observer=lambda *a: observed.append(a))
        with pytest.raises(ApiError) as caught:
            if odata:
                list(client.odata("DebtorClient", filter="Account eq '1'"))
            else:
                client.insert("DebtorClient", {"Account": "1", "Name": password})
    said = everything_said(caught.value, observed, recorder)
    for secret in (password, basic_entities, basic_odata):
        assert secret not in said


@settings(max_examples=30, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(auth_code=secret_text, token=secret_text)
def test_transport_errors_never_leak(recorder, auth_code, token):
    assume(auth_code not in token and token not in auth_code)
    observed: list = []
    with responses.RequestsMock(assert_all_requests_are_fired=False) as rsps:
        rsps.add("POST", WEBCRM + "/Auth/ApiLogin", json={"AccessToken": token, "ExpiresIn": 3600})
        rsps.add(
            "GET",
            WEBCRM + "/Queries",
            body=requests.ConnectionError(f"Max retries exceeded with url: /Queries?script={quote(auth_code)} "
                                          f"(token {token}, code {auth_code})"),
        )
        client = WebcrmClient(WEBCRM, auth_code, observer=lambda *a: observed.append(a))
        with pytest.raises(ApiError) as caught:
            list(client.query("SELECT * FROM Person"))
    said = everything_said(caught.value, observed, recorder)
    assert auth_code not in said and token not in said and quote(auth_code) not in said


def test_relogin_log_line_has_no_token(recorder, rsps, add_login, const):
    add_login()
    rsps.add("GET", WEBCRM + "/Organisations/1", status=401, json={"Message": f"token {const.token} expired"})
    rsps.add("GET", WEBCRM + "/Organisations/1", json={})
    add_login(token=const.token2)
    WebcrmClient(WEBCRM, const.auth_code).get("Organisations", 1)
    assert recorder.lines
    said = "\n".join(recorder.lines)
    assert const.token not in said and const.auth_code not in said
