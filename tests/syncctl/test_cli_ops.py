"""syncctl ops commands against a real Redis (no worker, no sandboxes): dlq, resync, timeline,
status, conflicts, bad arguments and an unreachable Redis."""

from __future__ import annotations

import json
import time
from typing import Any

import pytest
import redis
from click.testing import CliRunner

from sync.events import Event
from sync.state import deadletters, intake, journal, keys, review
from syncctl import common
from syncctl.main import main


@pytest.fixture
def env(redis_client: redis.Redis, redis_url: str, monkeypatch: pytest.MonkeyPatch) -> list[Event]:
    """The CLI on the test Redis, publishing into a list instead of a broker."""
    monkeypatch.setenv("REDIS_URL", redis_url)
    sent: list[Event] = []
    monkeypatch.setattr(common, "enqueue_for", lambda settings: sent.append)
    return sent


def run(*args: str) -> Any:
    return CliRunner().invoke(main, list(args))


def letter(r: redis.Redis, record_id: str, kind: str = "permanent", entity: str = "item", system: str = "uniconta",
           connection: str = "demo", age: float = 0.0) -> str:
    event = Event(connection, system, entity, record_id, delivery_id=f"d-{record_id}").task_kwargs()
    letter_id = deadletters.add(r, event=event, error=f"boom {record_id}", kind=kind, attempts=1)
    if age:
        data = deadletters.get(r, letter_id)
        data["failed_at"] -= age
        r.hset(keys.dead_letters(), letter_id, json.dumps(data))
    return letter_id


def test_dlq_list_show_and_filters(env: list[Event], redis_client: redis.Redis) -> None:
    a = letter(redis_client, "A1", kind="permanent")
    b = letter(redis_client, "7", kind="exhausted", entity="organisation", system="webcrm", age=7200)
    listed = run("dlq", "list", "--json")
    assert listed.exit_code == 0 and {d["id"] for d in json.loads(listed.output)} == {a, b}
    assert [d["id"] for d in json.loads(run("dlq", "list", "--kind", "exhausted", "--json").output)] == [b]
    assert [d["id"] for d in json.loads(run("dlq", "list", "--flow", "items", "--json").output)] == [a]
    assert [d["id"] for d in json.loads(run("dlq", "list", "--older-than", "1h", "--json").output)] == [b]
    assert [d["id"] for d in json.loads(run("dlq", "list", "--entity", "organisations", "--json").output)] == [b]
    text = run("dlq", "list")
    assert a in text.output and "boom A1" in text.output
    shown = run("dlq", "show", a, "--json")
    assert json.loads(shown.output)["record_id"] == "A1"
    assert run("dlq", "show", "nope").exit_code == 2


def test_dlq_requeue_goes_through_intake_and_removes_only_queued_letters(env: list[Event],
                                                                         redis_client: redis.Redis) -> None:
    a = letter(redis_client, "A1")
    b = letter(redis_client, "B2")
    other = letter(redis_client, "C3", connection="gone")
    result = run("dlq", "requeue", a, "--json")
    assert result.exit_code == 0, result.output
    assert [(e.record_id, e.origin, e.delivery_id) for e in env] == [("A1", "dlq", None)]
    assert deadletters.get(redis_client, a) is None and deadletters.get(redis_client, b) is not None
    # A record with a job already waiting is coalesced: the letter goes, no second job.
    intake.accept(redis_client, Event("demo", "uniconta", "item", "B2"), lambda e: None)
    assert run("dlq", "requeue", "--connection", "demo").exit_code == 0
    assert len(env) == 1 and deadletters.get(redis_client, b) is None
    # A letter of a connection that is no longer configured stays, and the exit code says so.
    failed = run("dlq", "requeue", "--all")
    assert failed.exit_code == 1 and "not configured" in failed.output
    assert deadletters.get(redis_client, other) is not None


def test_dlq_requeue_keeps_the_letter_when_the_broker_fails(env: list[Event], redis_client: redis.Redis,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    a = letter(redis_client, "A1")

    def broken(event: Event) -> None:
        raise ConnectionError("broker down")

    monkeypatch.setattr(common, "enqueue_for", lambda settings: broken)
    result = run("dlq", "requeue", a)
    assert result.exit_code == 1 and deadletters.get(redis_client, a) is not None


def test_dlq_drop_and_its_guards(env: list[Event], redis_client: redis.Redis) -> None:
    a = letter(redis_client, "A1")
    letter(redis_client, "B2", kind="bug")
    nothing = run("dlq", "drop")
    assert nothing.exit_code == 2 and "--all" in nothing.output and "Traceback" not in nothing.output
    assert run("dlq", "drop", "--older-than", "soon").exit_code == 2
    assert json.loads(run("dlq", "drop", "--kind", "bug", "--json").output)["dropped"] != []
    assert run("dlq", "drop", "--all").exit_code == 0
    assert deadletters.count(redis_client) == 0 and deadletters.get(redis_client, a) is None


def test_resync_queues_one_record_and_validates_its_arguments(env: list[Event]) -> None:
    ok = run("resync", "demo", "organisation", "145")
    assert ok.exit_code == 0, ok.output
    assert [(e.system, e.entity, e.record_id, e.origin) for e in env] == [("webcrm", "organisation", "145", "resync")]
    again = run("resync", "demo", "organisation", "145", "--json")
    assert json.loads(again.output)["status"] == "coalesced" and len(env) == 1
    assert run("resync", "demo", "organisation", "145", "--force").exit_code == 0 and len(env) == 2
    contact = run("resync", "demo", "contact", "12")
    assert contact.exit_code == 0 and env[-1].record_id == "#12" and env[-1].system == "uniconta"
    assert run("resync", "demo", "debtor", "10001").exit_code == 0 and env[-1].entity == "debtor"
    for args, message in ((["demo", "organisation", "abc"], "positive number"),
                          (["demo", "planet", "1"], "unknown entity"),
                          (["nope", "item", "A"], "unknown connection"),
                          (["demo", "contact", "x"], "RowId")):
        bad = run("resync", *args)
        assert bad.exit_code == 2 and message in bad.output and "Traceback" not in bad.output


def test_resync_wait_reports_the_result_from_the_journal(env: list[Event], redis_client: redis.Redis,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    def worker(event: Event) -> None:  # a job that finishes at once
        journal.append(redis_client, event.connection, event.entity, event.record_id, "done", action="created")

    monkeypatch.setattr(common, "enqueue_for", lambda settings: worker)
    result = run("resync", "demo", "item", "V-1", "--wait", "--timeout", "5")
    assert result.exit_code == 0 and "done" in result.output and "created" in result.output

    def failing(event: Event) -> None:
        journal.append(redis_client, event.connection, event.entity, event.record_id, "dead-letter", kind="invalid")

    monkeypatch.setattr(common, "enqueue_for", lambda settings: failing)
    assert run("resync", "demo", "item", "V-2", "--wait", "--timeout", "5").exit_code == 1


def test_timeline_newest_first_with_link_and_dead_letters(env: list[Event], redis_client: redis.Redis) -> None:
    journal.append(redis_client, "demo", "organisation", "9", "queued", origin="webhook")
    journal.append(redis_client, "demo", "organisation", "9", "api", system="uniconta", method="POST",
                   path="/api/Entities/Insert/DebtorClientUser", status=200, ms=12.5)
    journal.append(redis_client, "demo", "organisation", "9", "done", action="created")
    redis_client.hset(keys.links("demo", "organisation", "w2u"), "9", "10001")
    letter(redis_client, "9", entity="organisation", system="webcrm")
    text = run("timeline", "demo", "organisation", "9")
    assert text.exit_code == 0, text.output
    lines = text.output.splitlines()
    assert "linked to Uniconta 10001" in lines[0] and "DEAD LETTER" in text.output
    body = [line for line in lines if line[:4].isdigit()]
    assert "done" in body[0] and "POST /api/Entities/Insert/DebtorClientUser → 200" in body[1] and "queued" in body[2]
    data = json.loads(run("timeline", "demo", "organisation", "9", "--json").output)
    assert [e["kind"] for e in data["entries"]] == ["done", "api", "queued"] and data["linked_to"] == "10001"
    empty = run("timeline", "demo", "organisation", "10")
    assert empty.exit_code == 0 and "nothing about this record" in empty.output


@pytest.mark.parametrize(("entity", "key", "linked_as", "stored"), [
    ("debtor", "10001", "organisation", "10001"), ("employee", "AJ", "user", "AJ"), ("contact", "#4", "person", "4"),
    ("item", "V-1", "item", "V-1")])
def test_timeline_of_a_uniconta_record_shows_its_pair(env: list[Event], redis_client: redis.Redis, entity: str,
                                                      key: str, linked_as: str, stored: str) -> None:
    redis_client.hset(keys.links("demo", linked_as, "u2w"), stored, "9")  # as the flows bind a pair
    journal.append(redis_client, "demo", entity, key, "done", action="updated")
    assert run("timeline", "demo", entity, key).output.splitlines()[0] == f"uniconta {entity} {key} — linked to webCRM 9"


def test_status_json_and_text(env: list[Event], redis_client: redis.Redis) -> None:
    intake.accept(redis_client, Event("demo", "uniconta", "item", "A", received_at=time.time() - 60),
                  lambda e: None)
    letter(redis_client, "B")
    review.add(redis_client, "demo", entity="user", email="a@x.dk", reason="two users", webcrm=[1, 2])
    result = run("status", "--json", "--no-ping")
    assert result.exit_code == 0, result.output
    data = json.loads(result.output)
    demo = data["connections"]["demo"]
    assert demo["pending_records"] == 1 and demo["dead_letters"] == 1 and demo["reviews"]["count"] == 1
    assert set(data["queues"]) == {"webhooks", "sync", "reconcile", "backfill"}
    assert demo["uniconta_budget"]["budget"] == 5000 and "used_last_minute" in demo["webcrm_rate"]
    assert "webcrm:organisation" in demo["reconciliation"]
    text = run("status", "demo", "--no-ping")
    assert "Uniconta budget" in text.output and "reconciliation" in text.output and "never ran" in text.output
    assert run("status", "--no-ping", "--check").exit_code == 1  # a dead letter needs attention
    assert run("status", "nope").exit_code == 2


def test_conflicts_list_and_resolve(env: list[Event], redis_client: redis.Redis) -> None:
    review_id = review.add(redis_client, "demo", entity="user", email="Dup@x.dk", reason="two users",
                           webcrm=[1, 2], uniconta=["AJ"], webcrm_entity="user", uniconta_entity="employee")
    listed = run("conflicts", "list", "demo", "--json")
    assert listed.exit_code == 0 and json.loads(listed.output)[0]["id"] == review_id
    assert "dup@x.dk" in run("review", "list").output
    resolved = run("conflicts", "resolve", "demo", review_id)
    assert resolved.exit_code == 0, resolved.output
    assert sorted((e.entity, e.record_id, e.origin) for e in env) == [
        ("employee", "AJ", "resync"), ("user", "1", "resync"), ("user", "2", "resync")]
    assert review.list_reviews(redis_client, "demo") == []
    assert run("conflicts", "resolve", "demo", "nope").exit_code == 2


def test_redis_unreachable_is_one_clear_line_and_exit_1(monkeypatch: pytest.MonkeyPatch) -> None:
    from sync.redis_server import free_port

    monkeypatch.setenv("REDIS_URL", f"redis://127.0.0.1:{free_port()}/0")
    for args in (["status", "--no-ping"], ["dlq", "list"], ["timeline", "demo", "item", "A"],
                 ["resync", "demo", "item", "A"]):
        result = run(*args)
        assert result.exit_code == 1, (args, result.output)
        assert "Redis" in result.output and "Traceback" not in result.output


def test_bad_usage_exits_2_without_a_traceback(env: list[Event]) -> None:
    for args in (["backfill", "demo", "planet"], ["backfill", "demo", "item", "--limit", "0"],
                 ["backfill", "demo", "item", "--since", "yesterday"], ["backfill", "nope", "item"],
                 ["reconcile", "demo", "--entity", "planet"], ["links", "rebuild", "demo", "planet"],
                 ["hooks", "install", "demo", "--public-url", "not a url"], ["doctor", "nope"],
                 ["timeline", "demo", "item"], ["nonsense"]):
        result = run(*args)
        assert result.exit_code == 2, (args, result.output)
        assert "Traceback" not in result.output


def test_status_reads_queued_jobs_from_the_broker(env: list[Event], redis_client: redis.Redis,
                                                 redis_url: str) -> None:
    from sync.config import load_settings
    from tasks.celery_app import make_celery
    from tasks.dispatch import enqueuer

    app = make_celery(load_settings())
    try:
        publish = enqueuer(app)
        publish(Event("demo", "uniconta", "item", "A", received_at=time.time() - 120))
        publish(Event("demo", "webcrm", "organisation", "1", origin="backfill"))
        publish(Event("other", "webcrm", "organisation", "2", origin="resync"))
    finally:
        app.close()
    data = json.loads(run("status", "demo", "--json", "--no-ping").output)
    assert data["queues"]["webhooks"]["depth"] == 1 and data["queues"]["webhooks"]["oldest_age_seconds"] >= 119
    queues = data["connections"]["demo"]["queues"]
    assert (queues["webhooks"]["depth"], queues["backfill"]["depth"], queues["sync"]["depth"]) == (1, 1, 0)
    assert data["queues"]["sync"]["depth"] == 1  # the other connection's
