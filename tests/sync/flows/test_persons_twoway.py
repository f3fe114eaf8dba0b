"""Shared two-way parts (sync/flows/twoway.py) and the review store (sync/state/review.py)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import redis

from sync.events import Event
from sync.flows import merge
from sync.flows.twoway import (
    NORMALIZERS,
    Locks,
    as_id,
    comparable_times,
    decide,
    first_link_base,
    name,
    phone,
    same_email,
    side_fingerprint,
)
from sync.state import review
from sync.state.locks import LockBusy, record_lock


def test_normalizers() -> None:
    assert name("  Anna   Marie\tJensen ") == "Anna Marie Jensen"
    assert phone("+45 (20) 30-40.50") == "+4520304050"
    assert NORMALIZERS["email"]("  Anna@Firma.DK ") == "anna@firma.dk"
    assert side_fingerprint({"email": "A@X.dk ", "mobile": "+45 1 2"}, link=5) == \
        side_fingerprint({"email": "a@x.dk", "mobile": "+4512"}, link="5")
    assert side_fingerprint({"name": "A"}, link="") != side_fingerprint({"name": "A"}, link="7")
    assert side_fingerprint({"name": None}) == side_fingerprint({"name": ""})


def test_first_link_fills_empty_fields_and_leaves_real_differences_to_the_policy() -> None:
    webcrm = {"name": "Anna Jensen", "email": " Anna@X.dk", "mobile": "", "title": "Chef"}
    uniconta = {"name": "Anna  Jensen", "email": "anna@x.dk", "mobile": "+45 11", "title": "Direktør"}
    result = merge.merge(first_link_base(webcrm, uniconta), webcrm, uniconta, policy="uniconta",
                         normalizers=NORMALIZERS)
    assert result.to_webcrm == {"mobile": "+45 11", "title": "Direktør"}
    assert result.to_uniconta == {}
    assert [c.field for c in result.conflicts] == ["title"]  # only the real difference is a conflict
    result = merge.merge(first_link_base(webcrm, uniconta), webcrm, uniconta, policy="webcrm",
                         normalizers=NORMALIZERS)
    assert result.to_uniconta == {"title": "Chef"} and result.to_webcrm == {"mobile": "+45 11"}


def test_merge_with_a_base_copies_one_sided_changes_and_resolves_conflicts_by_time() -> None:
    base = {"name": "A", "title": "x", "mobile": "1"}
    webcrm = {"name": "B", "title": "w", "mobile": "1"}
    uniconta = {"name": "A", "title": "u", "mobile": "2"}
    early, late = datetime(2024, 5, 1, 10, 0, 0, tzinfo=UTC), datetime(2024, 5, 1, 10, 0, 5, tzinfo=UTC)
    result = merge.merge(base, webcrm, uniconta, webcrm_changed_at=early, uniconta_changed_at=late,
                         normalizers=NORMALIZERS)
    assert result.to_uniconta == {"name": "B"}
    assert result.to_webcrm == {"mobile": "2", "title": "u"}
    assert [(c.field, c.webcrm, c.uniconta, c.base, c.winner) for c in result.conflicts] == [
        ("title", "w", "u", "x", "uniconta")]


def test_uniconta_fractions_do_not_beat_a_webcrm_edit_in_the_same_second() -> None:
    w = datetime(2024, 5, 1, 10, 0, 7, tzinfo=UTC)
    u = datetime(2024, 5, 1, 10, 0, 7, 900000, tzinfo=UTC)
    assert comparable_times(w, u) == (w, w)
    assert comparable_times(w.replace(microsecond=5), u) == (w.replace(microsecond=5), u)
    assert comparable_times(None, u) == (None, u)


def test_decide_links_only_a_unique_match() -> None:
    assert decide([], []) == "create"
    assert decide([], ["peer"]) == "create"  # nothing to guess between: a new record is no link
    assert decide(["c"], []) == "link"
    assert decide(["c"], ["peer"]) == "ambiguous"
    assert decide(["c", "d"], []) == "ambiguous"


def test_same_email_and_ids() -> None:
    rows = [{"Email": " A@x.dk"}, {"Email": "a@X.DK "}, {"Email": "b@x.dk"}, {"Email": None}]
    assert len(same_email(rows, "Email", "a@x.dk")) == 2
    assert same_email(rows, "Email", "  ") == []
    assert (as_id("12"), as_id(" 7 "), as_id(12), as_id("7.0"), as_id(""), as_id("0"), as_id("x"), as_id(None)) == (
        12, 7, 12, 7, None, None, None, None)


def test_review_store_keeps_one_entry_per_address_until_resolved(redis_client: redis.Redis) -> None:
    first = review.add(redis_client, "c1", entity="user", email=" Dup@Firma.dk ", reason="two employees",
                       webcrm=[5], uniconta=["D1", "D2"])
    review.add(redis_client, "c1", entity="user", email="dup@firma.dk", reason="two employees", webcrm=[5],
               uniconta=["D1", "D2"])
    review.add(redis_client, "c1", entity="person", email="x@k.dk", scope="organisation 4", reason="r")
    review.add(redis_client, "c2", entity="user", email="other@firma.dk", reason="r")
    entries = review.list_reviews(redis_client, "c1")
    assert [e["id"] for e in entries] == ["person:organisation 4:x@k.dk", first]
    assert entries[1]["seen"] == 2 and entries[1]["uniconta"] == ["D1", "D2"] and entries[1]["webcrm"] == ["5"]
    assert review.resolve(redis_client, "c1", "user", "DUP@firma.dk")
    assert not review.resolve(redis_client, "c1", "person", "x@k.dk")  # another scope
    assert review.resolve(redis_client, "c1", "person", "x@k.dk", "organisation 4")
    assert review.list_reviews(redis_client, "c1") == []
    assert len(review.list_reviews(redis_client, "c2")) == 1


class _Ctx:
    def __init__(self, r: redis.Redis) -> None:
        self.redis = r

        class _Conn:
            id = "c1"
        self.connection = _Conn()


def test_locks_skip_the_jobs_own_lock_and_refuse_a_busy_counterpart(redis_client: redis.Redis) -> None:
    ctx = _Ctx(redis_client)
    event = Event("c1", "webcrm", "person", "7")
    with record_lock(redis_client, "c1", "person", "7"), Locks(ctx, event) as locks:  # type: ignore[arg-type]
        locks.hold("person", 7)  # the job's own: not taken again
        locks.hold("contact", "#3")
        locks.hold("contact", "#3")
        with pytest.raises(LockBusy), record_lock(redis_client, "c1", "contact", "#3"):
            pass
    # "#3" was released at the end of the block; a lock held elsewhere is refused.
    with record_lock(redis_client, "c1", "contact", "#3"), record_lock(redis_client, "c1", "contact", "#4"), \
            Locks(ctx, event) as locks, pytest.raises(LockBusy):  # type: ignore[arg-type]
        locks.hold("contact", "#4")
