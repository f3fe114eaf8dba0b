"""HTTP Basic with `00<CompanyId>/<user>` on the Entities API; plain or prefixed user on OData."""

from __future__ import annotations

import pytest

from tests.sandbox.uniconta.uniconta_helpers import basic, make_app

ERROR_KEYS = {"ErrorCode", "Message", "Field"}


@pytest.mark.parametrize("user", ["001234/sandbox", "0001234/sandbox", "00001234/SANDBOX"])
def test_entities_accept_prefixed_and_zero_padded_users(client, user):
    response = client.get("/api/Entities/DebtorClient", headers=basic(user))
    assert response.status_code == 200
    assert response.get_json() == []


@pytest.mark.parametrize("user", ["sandbox", "1234/sandbox", "01234sandbox", "00/sandbox"])
def test_entities_reject_usernames_without_the_company_prefix(client, user):
    response = client.get("/api/Entities/DebtorClient", headers=basic(user))
    assert response.status_code == 401
    body = response.get_json()
    assert set(body) == ERROR_KEYS and body["ErrorCode"] == "NoRights"
    assert response.headers["WWW-Authenticate"].startswith("Basic")


@pytest.mark.parametrize(("path", "user", "password"), [
    ("/api/Entities/DebtorClient", "001234/sandbox", "nope"),
    ("/api/Entities/DebtorClient", "001234/someone", "sandbox"),
    ("/odata/1234/DebtorClient", "sandbox", "nope"),
    ("/odata/1234/DebtorClient", "someone", "sandbox"),
])
def test_wrong_password_or_unknown_user_is_401(client, path, user, password):
    response = client.get(path, headers=basic(user, password))
    assert response.status_code == 401
    assert response.get_json()["ErrorCode"] == "NoRights"


@pytest.mark.parametrize("path", ["/api/Entities/DebtorClient", "/odata/1234/DebtorClient", "/odata"])
def test_missing_credentials_are_401(client, path):
    response = client.get(path)
    assert response.status_code == 401
    assert response.get_json()["ErrorCode"] == "NoRights"


@pytest.mark.parametrize("header", ["Bearer abc", "Basic !!!notbase64", "Basic " + "bm9jb2xvbg==", "Basic"])
def test_malformed_authorization_is_401(client, header):
    response = client.get("/api/Entities/DebtorClient", headers={"Authorization": header})
    assert response.status_code == 401
    assert set(response.get_json()) == ERROR_KEYS


def test_unknown_company_is_404_with_the_right_credentials(client):
    response = client.get("/api/Entities/DebtorClient", headers=basic("009999/sandbox"))
    assert response.status_code == 404
    assert response.get_json() == {"ErrorCode": "CouldNotFind", "Message": "Company 9999 not found", "Field": None}
    response = client.get("/odata/9999/DebtorClient", headers=basic("sandbox"))
    assert response.status_code == 404
    assert response.get_json()["ErrorCode"] == "CouldNotFind"
    response = client.get("/odata/notanumber/DebtorClient", headers=basic("sandbox"))
    assert response.status_code == 404


def test_unknown_company_with_a_wrong_password_is_401_first(client):
    response = client.get("/api/Entities/DebtorClient", headers=basic("009999/sandbox", "wrong"))
    assert response.status_code == 401


@pytest.mark.parametrize("user", ["sandbox", "001234/sandbox", "009999/sandbox"])
def test_odata_accepts_plain_and_prefixed_users(client, user):
    # the path names the company; a prefix in the user name is ignored
    response = client.get("/odata/1234/DebtorClient", headers={**basic(user), "Accept": "application/json"})
    assert response.status_code == 200
    assert response.get_json()["value"] == []


def test_odata_without_company_uses_the_default_company(client):
    headers = {**basic("sandbox"), "Accept": "application/json"}
    assert client.get("/odata/DebtorClient", headers=headers).get_json()["value"] == []
    names = [s["name"] for s in client.get("/odata", headers=headers).get_json()["value"]]
    assert "DebtorClientUser" in names and "TableChangeEventClient" in names


def test_configured_company_users_and_extra_users():
    app = make_app(company=42, user="api", password="s3cret", users="second=pw2")
    try:
        client = app.test_client()
        assert client.get("/api/Entities/DebtorClient", headers=basic("0042/api", "s3cret")).status_code == 200
        assert client.get("/api/Entities/DebtorClient", headers=basic("0042/second", "pw2")).status_code == 200
        assert client.get("/api/Entities/DebtorClient", headers=basic("001234/sandbox")).status_code == 401
        assert client.get("/api/Entities/DebtorClient", headers=basic("001234/api", "s3cret")).status_code == 404
    finally:
        app.extensions["sandbox"].hooks.stop()


def test_options_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("UNICONTA_SANDBOX_COMPANY", "77")
    monkeypatch.setenv("UNICONTA_SANDBOX_PASSWORD", "envpw")
    app = make_app()
    try:
        response = app.test_client().get("/api/Entities/DebtorClient", headers=basic("0077/sandbox", "envpw"))
        assert response.status_code == 200
    finally:
        app.extensions["sandbox"].hooks.stop()


@pytest.mark.parametrize("options", [{"company": "x"}, {"company": 0}, {"users": "noequals"},
                                     {"omit_nulls": "maybe"}, {"user_fields": "Nope:Field"},
                                     {"user_fields": "Debtor:bad name"}, {"bogus": 1}, {"slowdown": "-1"}])
def test_bad_options_are_value_errors(options):
    with pytest.raises(ValueError):
        make_app(**options)
