"""ApiLogin / ApiRefresh / Bearer / expiry / 401 of the webCRM sandbox."""

from __future__ import annotations

import time

AUTH = "sandbox-token"


def test_login_urlencoded_returns_token_response(client):
    response = client.post("/Auth/ApiLogin", data={"authCode": AUTH},
                           content_type="application/x-www-form-urlencoded")
    assert response.status_code == 200
    body = response.json
    assert set(body) == {"AccessToken", "RefreshToken", "ExpiresIn", "TokenType", "Error",
                         "ErrorDescription", "IsError"}
    assert body["TokenType"] == "Bearer"
    assert body["ExpiresIn"] == 3600
    assert body["IsError"] is False
    assert body["AccessToken"].count(".") == 2  # JWT-shaped


def test_login_multipart(client):
    response = client.post("/Auth/ApiLogin", data={"authCode": AUTH}, content_type="multipart/form-data")
    assert response.status_code == 200
    assert response.json["AccessToken"]


def test_login_bad_or_missing_code_is_401(client):
    for data in ({"authCode": "wrong"}, {}, {"authcode": AUTH}):
        response = client.post("/Auth/ApiLogin", data=data)
        assert response.status_code == 401
        assert response.json["IsError"] is True
        assert response.json["Message"]


def test_missing_malformed_and_unknown_token_are_401(client):
    for headers in ({}, {"Authorization": "Basic abc"}, {"Authorization": "Bearer"},
                    {"Authorization": "Bearer not-a-token"}):
        response = client.get("/Organisations", headers=headers)
        assert response.status_code == 401, headers
        assert "Message" in response.json
        assert response.headers["WWW-Authenticate"].startswith("Bearer")


def test_bearer_scheme_is_case_insensitive(client, token):
    assert client.get("/Organisations", headers={"Authorization": f"bearer {token}"}).status_code == 200


def test_expired_token_is_401_and_relogin_works(app_factory):
    app = app_factory(token_lifetime=1)
    client = app.test_client()
    login = client.post("/Auth/ApiLogin", data={"authCode": AUTH}).json
    assert login["ExpiresIn"] == 1
    headers = {"Authorization": f"Bearer {login['AccessToken']}"}
    assert client.get("/Users", headers=headers).status_code == 200
    time.sleep(1.1)
    response = client.get("/Users", headers=headers)
    assert response.status_code == 401
    assert "expired" in response.json["Message"]
    fresh = client.post("/Auth/ApiLogin", data={"authCode": AUTH}).json["AccessToken"]
    assert client.get("/Users", headers={"Authorization": f"Bearer {fresh}"}).status_code == 200


def test_admin_can_expire_every_token(client, api):
    assert api.get("/Users").status_code == 200
    assert client.post("/_sandbox/auth/expire").json["expired"] >= 1
    assert api.get("/Users").status_code == 401


def test_refresh_by_header_and_by_form_rotates(client):
    login = client.post("/Auth/ApiLogin", data={"authCode": AUTH}).json
    by_header = client.post("/Auth/ApiRefresh", headers={"refreshToken": login["RefreshToken"]})
    assert by_header.status_code == 200
    new = by_header.json
    assert new["AccessToken"] != login["AccessToken"]
    assert client.get("/Users", headers={"Authorization": f"Bearer {new['AccessToken']}"}).status_code == 200
    # the used refresh token is gone
    assert client.post("/Auth/ApiRefresh", headers={"refreshToken": login["RefreshToken"]}).status_code == 401
    by_form = client.post("/Auth/ApiRefresh", data={"refreshToken": new["RefreshToken"]})
    assert by_form.status_code == 200
    assert client.post("/Auth/ApiRefresh").status_code == 401


def test_auth_info_names_the_api_user(api):
    response = api.get("/Auth")
    assert response.status_code == 200
    assert response.json["UserName"] == "Integration"


def test_several_codes_and_admin_changes(app_factory):
    app = app_factory(auth_codes="a=Alpha Sync,b=Beta Sync")
    client = app.test_client()
    token_b = client.post("/Auth/ApiLogin", data={"authCode": "b"}).json["AccessToken"]
    headers = {"Authorization": f"Bearer {token_b}"}
    org = client.post("/Organisations", json={"OrganisationName": "X"}, headers=headers).json
    assert client.get(f"/Organisations/{org}", headers=headers).json["OrganisationCreatedBy"] == "Beta Sync"
    # renaming the API user applies to tokens already issued
    client.put("/_sandbox/auth", json={"auth_codes": {"a": "Alpha Sync", "b": "Beta 2"}})
    client.put(f"/Organisations/{org}", json={"OrganisationName": "Y"}, headers=headers)
    assert client.get(f"/Organisations/{org}", headers=headers).json["OrganisationUpdatedBy"] == "Beta 2"
    # removing the code revokes its tokens
    client.put("/_sandbox/auth", json={"auth_codes": "a=Alpha Sync"})
    assert client.get("/Users", headers=headers).status_code == 401
    assert client.post("/Auth/ApiLogin", data={"authCode": "b"}).status_code == 401


def test_env_fallbacks(monkeypatch):
    from sandbox.webcrm.settings import Options

    monkeypatch.setenv("WEBCRM_SANDBOX_AUTH_CODES", "x=Xavier")
    monkeypatch.setenv("WEBCRM_SANDBOX_TOKEN_LIFETIME", "120")
    monkeypatch.setenv("WEBCRM_SANDBOX_RATE_LIMIT", "0")
    opts = Options.build()
    assert (opts.auth_codes, opts.token_lifetime, opts.rate_limit) == ({"x": "Xavier"}, 120, 0)
    assert Options.build(token_lifetime=5).token_lifetime == 5  # explicit option wins
