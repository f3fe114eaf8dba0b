"""The receiver's /metrics: every webhook answer counted by connection, system, answer and code."""

from __future__ import annotations

from dataclasses import replace

import pytest
import redis
from flask.testing import FlaskClient
from prometheus_client.parser import text_string_to_metric_families

from sync.config import Settings, load_settings
from webhooks.app import create_app

TOKEN = "demo-token"


@pytest.fixture
def client(redis_url: str, redis_client: redis.Redis) -> FlaskClient:
    settings: Settings = replace(load_settings({}), redis_url=redis_url)
    return create_app(settings).test_client()


def answers(client: FlaskClient) -> dict[tuple[str, str, str, str], float]:
    resp = client.get("/metrics")
    assert resp.status_code == 200 and resp.content_type.startswith("text/plain; version=0.0.4")
    return {(s.labels["connection"], s.labels["system"], s.labels["answer"], s.labels["code"]): s.value
            for family in text_string_to_metric_families(resp.get_data(as_text=True))
            for s in family.samples if s.name == "sync_webhooks_total"}


def test_each_answer_is_counted_once(client: FlaskClient) -> None:
    before = answers(client)
    uniconta = "/webhook/demo/uniconta?CompanyId=1234&Table=InvItem&Key=M-1&RowId=7&Action=update&token="
    assert client.get(uniconta + TOKEN).status_code == 202
    assert client.get(uniconta + TOKEN).json["coalesced"] is True
    hook = {"EventType": "Update", "Entity": "Organisation", "EntityId": 9}
    for status in (202, 200):
        resp = client.post(f"/webhook/demo/webcrm?token={TOKEN}", json=hook, headers={"webhook-id": "m-1"})
        assert resp.status_code == status
    assert client.get(uniconta + "wrong").status_code == 401
    assert client.post(f"/webhook/demo/webcrm?token={TOKEN}", data="x", content_type="text/plain").status_code == 415
    assert client.get(f"/webhook/no-such-{'x' * 50}/invitems?token={TOKEN}").status_code == 404
    assert client.get("/healthz").status_code == 200  # not a webhook: not counted

    after = answers(client)
    counted = {key: after[key] - before.get(key, 0) for key in after if after[key] != before.get(key, 0)}
    assert counted == {("demo", "uniconta", "accepted", "202"): 1, ("demo", "uniconta", "coalesced", "202"): 1,
                       ("demo", "webcrm", "accepted", "202"): 1, ("demo", "webcrm", "duplicate", "200"): 1,
                       ("demo", "uniconta", "refused", "401"): 1, ("demo", "webcrm", "refused", "415"): 1,
                       ("unknown", "uniconta", "refused", "404"): 1}


def test_openmetrics_when_asked_for(client: FlaskClient) -> None:
    resp = client.get("/metrics", headers={"Accept": "application/openmetrics-text; version=1.0.0"})
    assert resp.content_type.startswith("application/openmetrics-text")
    assert resp.get_data(as_text=True).rstrip().endswith("# EOF")
