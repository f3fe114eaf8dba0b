"""Backfill end to end: dry run writes nothing, resume after an interruption, budget stop and resume,
links rebuild after losing Redis, and no duplicates — sandboxes, the CLI and a real worker."""

from __future__ import annotations

from dataclasses import replace

import pytest

from sync.config import load_settings
from sync.events import Event
from sync.operations import backfill
from sync.operations.reconcile import source_for
from sync.runtime import Runtime
from sync.state import keys
from tests.e2e.conftest import Stack, StackConfig, settle
from tests.e2e.ops_helpers import catalogue_numbers, dict_of, syncctl, writes
from tests.support.stack import CONNECTION, admin, clean_sync_state, wait_for

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def stack_config() -> StackConfig:
    return StackConfig("backfill", flows=("items",))


def seed_items(stack: Stack, count: int) -> list[str]:
    admin(stack.uniconta_url, "POST", "/seed", json={"entity": "InvItems", "count": count, "seed": 7})
    with stack.uniconta() as uniconta:
        return sorted(str(r["Item"]) for r in uniconta.odata("InvItemClient"))


def catalogue_creates(stack: Stack) -> int:
    return sum(1 for w in writes(stack.webcrm_url) if w.startswith("POST") and "LinkedData" in w)


def test_dry_run_reports_what_would_happen_and_writes_nothing(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = seed_items(e2e, 6)
    # Two items are in the catalogue already: one as Uniconta has it, one with an old price.
    settle(e2e)
    with e2e.uniconta() as uniconta:
        first = uniconta.get_one("InvItemClient", "Item", numbers[0])
    assert first is not None
    ok = syncctl(e2e, monkeypatch, "resync", CONNECTION, "item", numbers[0], "--wait", "--timeout", "20")
    assert ok.exit_code == 0, ok.output
    admin(e2e.webcrm_url, "POST", "/ui/LinkedData", json={
        "QuotationLineLinkedDataItemData1": numbers[1], "QuotationLineLinkedDataItemData2": "Old name",
        "QuotationLineLinkedDataItemData3": "-", "QuotationLineLinkedDataItemData4": "-",
        "QuotationLineLinkedDataItemPrice": 1})
    settle(e2e)
    links_before = e2e.redis.hgetall(keys.links(CONNECTION, "item", "w2u"))
    admin(e2e.webcrm_url, "DELETE", "/calls")
    admin(e2e.uniconta_url, "DELETE", "/calls")

    result = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item", "--dry-run", "--json")
    report = dict_of(result)
    assert report["records"] == 6 and report["dry_run"] is True
    counts = report["counts"]
    assert counts["would-create"] == 4 and counts["would-update"] == 1 and counts["unchanged"] == 1, report
    created = report["examples"]["would-create"][0]
    assert any("create QuotationLines/LinkedData" in w for w in created["writes"])
    updated = report["examples"]["would-update"][0]
    assert updated["id"] == numbers[1] and "QuotationLineLinkedDataItemData2" in updated["writes"][0]
    # Nothing was written anywhere, no job was queued, no state was left behind.
    assert writes(e2e.webcrm_url) == [] and writes(e2e.uniconta_url) == []
    assert e2e.redis.llen("backfill") == 0 and not e2e.redis.keys("sync:*~dryrun*")
    assert e2e.redis.hgetall(keys.links(CONNECTION, "item", "w2u")) == links_before
    assert len(catalogue_numbers(e2e)) == 2

    text = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item", "--dry-run")
    assert text.exit_code == 0 and "would-create" in text.output and "nothing was written" in text.output


def test_interrupted_backfill_resumes_and_makes_no_duplicates(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = seed_items(e2e, 12)
    settings = load_settings(e2e.env)
    ctx = Runtime(settings).context(CONNECTION)
    assert ctx is not None
    ctx = replace(ctx, connection=replace(ctx.connection, batch_size=2))
    from tasks.celery_app import make_celery
    from tasks.dispatch import batch_enqueuer

    publish = batch_enqueuer(make_celery(settings))
    sent: list[Event] = []

    def crashing(events: list[Event], countdown: float = 0.0) -> None:  # Ctrl-C after two pages of two
        if len(sent) == 4:
            raise KeyboardInterrupt
        publish(events, countdown)
        sent.extend(events)

    outcome = backfill.run(ctx, source_for("item"), crashing)
    assert outcome.state == "interrupted"
    assert backfill.load_checkpoint(e2e.redis, CONNECTION, source_for("item"))["state"] == "interrupted"

    result = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item", "--limit", "3")
    assert result.exit_code == 0, result.output
    assert "record(s)" in result.output and "resumed after position" in result.output
    assert "more left" in result.output
    result = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item")
    assert result.exit_code == 0, result.output
    wait_for(lambda: catalogue_numbers(e2e) == numbers, timeout=30, what="every item in the catalogue")
    settle(e2e)
    assert catalogue_creates(e2e) == 12
    status = dict_of(syncctl(e2e, monkeypatch, "status", CONNECTION, "--json", "--no-ping"))
    assert status["connections"][CONNECTION]["backfills"]["uniconta:item"]["state"] == "done"


def test_budget_stop_then_resume(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = seed_items(e2e, 8)
    settings = load_settings(e2e.env)
    ctx = Runtime(settings).context(CONNECTION)
    from sync.operations.reconcile import budget_of

    budget = budget_of(ctx)
    day_key = f"{keys.uniconta_budget(CONNECTION)}:{budget.usage()['day']}"
    e2e.redis.set(day_key, budget.budget - budget.reserve - 8)  # room for the plan and about two records

    stopped = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item")
    assert stopped.exit_code == 3, stopped.output
    assert "Resume after" in stopped.output and "same command" in stopped.output
    assert backfill.load_checkpoint(e2e.redis, CONNECTION, source_for("item"))["state"] == "budget"
    settle(e2e)
    assert len(catalogue_numbers(e2e)) < 8

    e2e.redis.delete(day_key)  # midnight
    resumed = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item", "--json")
    outcome = dict_of(resumed)
    assert outcome["state"] == "done"
    wait_for(lambda: catalogue_numbers(e2e) == numbers, timeout=30, what="every item after the resume")
    settle(e2e)
    assert catalogue_creates(e2e) == 8


def test_links_rebuild_after_losing_redis_then_backfill_duplicates_nothing(e2e: Stack,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    numbers = seed_items(e2e, 5)
    assert syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item").exit_code == 0
    wait_for(lambda: catalogue_numbers(e2e) == numbers, timeout=30, what="the first backfill")
    settle(e2e)
    clean_sync_state(e2e.redis)  # Redis lost: links, fingerprints, journals, checkpoints
    assert e2e.redis.hlen(keys.links(CONNECTION, "item", "w2u")) == 0

    report = dict_of(syncctl(e2e, monkeypatch, "links", "rebuild", CONNECTION, "--json"))
    assert report["item"]["linked"] == 5 and report["item"]["conflicts"] == 0
    assert e2e.redis.hlen(keys.links(CONNECTION, "item", "w2u")) == 5

    before = catalogue_creates(e2e)
    again = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "item", "--json")
    assert dict_of(again)["queued"] == 5
    settle(e2e)
    assert catalogue_numbers(e2e) == numbers and catalogue_creates(e2e) == before


@pytest.fixture(autouse=True)
def _no_leftover_checkpoints(e2e: Stack) -> None:
    """The e2e fixture cleans sync:* keys, so every test starts without checkpoints."""
    assert not e2e.redis.keys("sync:*:count:backfill:*")


def test_a_disabled_flow_cannot_be_backfilled(e2e: Stack, monkeypatch: pytest.MonkeyPatch) -> None:
    result = syncctl(e2e, monkeypatch, "backfill", CONNECTION, "organisation", "--dry-run", "--json")
    assert result.exit_code == 2 and "not enabled" in result.output  # this stack runs items only
