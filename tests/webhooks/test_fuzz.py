"""Whatever arrives, the receiver answers with a JSON status below 500 and stores nothing it refused."""

from __future__ import annotations

import json
from dataclasses import replace

import pytest
import redis
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sync.config import load_settings
from webhooks.app import create_app

TOKEN = "demo-token"
values = st.one_of(st.text(max_size=20), st.integers(), st.none(), st.booleans(), st.floats(allow_nan=True))
json_bodies = st.recursive(values, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(
    st.sampled_from(["EntityId", "Entity", "EventType", "HookId", "Timestamp", "OrganisationId", "Data", "x"]),
    inner, max_size=6), max_leaves=12)
params = st.dictionaries(st.sampled_from(["CompanyId", "companyid", "Table", "Key", "RowId", "Action", "Operation",
                                          "x", "TABLE"]), st.text(max_size=12), max_size=7)


@pytest.fixture(scope="module")
def client(redis_url: str):  # type: ignore[no-untyped-def]
    return create_app(replace(load_settings({}), redis_url=redis_url)).test_client()


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(body=json_bodies)
def test_webcrm_bodies(client, body) -> None:  # type: ignore[no-untyped-def]
    try:
        data = json.dumps(body)
    except ValueError:
        return
    resp = client.post(f"/webhook/demo/webcrm?token={TOKEN}", data=data, content_type="application/json")
    assert resp.status_code in (200, 202, 400), (body, resp.status_code, resp.data)
    assert resp.is_json


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(query=params, raw=st.binary(max_size=64), method=st.sampled_from(["GET", "POST"]),
       ctype=st.sampled_from(["application/json", "text/plain", "application/x-www-form-urlencoded", ""]))
def test_uniconta_calls(client, query, raw, method, ctype) -> None:  # type: ignore[no-untyped-def]
    query = {**query, "token": TOKEN}
    resp = client.open("/webhook/demo/uniconta", method=method, query_string=query,
                       data=raw if method == "POST" else None, content_type=ctype or None)
    assert resp.status_code in (200, 202, 400, 415), (query, raw, resp.status_code, resp.data)
    assert resp.is_json


def test_refused_calls_store_nothing(client, redis_url: str) -> None:  # type: ignore[no-untyped-def]
    r = redis.Redis.from_url(redis_url)
    r.flushdb()
    for query in ({"Table": "InvItem"}, {"CompanyId": "1234", "Table": "Nope", "Key": "1", "Action": "update"}):
        assert client.get("/webhook/demo/uniconta", query_string={**query, "token": TOKEN}).status_code == 400
    assert r.dbsize() == 0
