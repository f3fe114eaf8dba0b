"""Three-way merge: one-sided changes copy, two-sided changes follow the policy, echoes do nothing."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
import redis
from hypothesis import given
from hypothesis import strategies as st

from sync.flows.merge import BaseStore, email, merge

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)


def test_one_sided_changes_are_copied_both_ways() -> None:
    base = {"name": "A", "phone": "1"}
    r = merge(base, {"name": "B", "phone": "1"}, {"name": "A", "phone": "2"})
    assert r.to_uniconta == {"name": "B"} and r.to_webcrm == {"phone": "2"}
    assert r.merged == {"name": "B", "phone": "2"} and not r.conflicts


def test_same_field_both_sides_newest_wins_and_is_reported() -> None:
    base = {"title": "Sælger"}
    r = merge(base, {"title": "Chef"}, {"title": "Direktør"}, webcrm_changed_at=T0,
              uniconta_changed_at=T0 + timedelta(seconds=5))
    assert r.to_webcrm == {"title": "Direktør"} and r.to_uniconta == {}
    assert [(c.field, c.webcrm, c.uniconta, c.winner) for c in r.conflicts] == [
        ("title", "Chef", "Direktør", "uniconta")]


@pytest.mark.parametrize("policy", ["webcrm", "uniconta"])
def test_fixed_policies(policy: str) -> None:
    r = merge({"x": "0"}, {"x": "w"}, {"x": "u"}, policy=policy)
    assert r.merged["x"] == ("w" if policy == "webcrm" else "u")


def test_echo_of_our_own_write_changes_nothing() -> None:
    state = {"name": "Søren", "email": "s@x.dk"}
    assert not merge(state, dict(state), dict(state)).changed


def test_normalisers_and_blank_equivalence() -> None:
    r = merge(None, {"email": " Anna@Firma.DK ", "mobile": None}, {"email": "anna@firma.dk", "mobile": ""},
              normalizers={"email": email})
    assert not r.changed and not r.conflicts


def test_unknown_policy_is_rejected() -> None:
    with pytest.raises(ValueError):
        merge(None, {}, {}, policy="coinflip")


@given(st.dictionaries(st.sampled_from("abcd"), st.text(max_size=3)),
       st.dictionaries(st.sampled_from("abcd"), st.text(max_size=3)),
       st.dictionaries(st.sampled_from("abcd"), st.text(max_size=3)))
def test_after_applying_the_result_both_sides_agree(base: dict, w: dict, u: dict) -> None:
    r = merge(base, w, u)
    new_w, new_u = {**w, **r.to_webcrm}, {**u, **r.to_uniconta}
    for key in set(w) | set(u):
        assert (new_w.get(key) or "").strip() == (new_u.get(key) or "").strip()
    assert not merge(r.merged, new_w, new_u).changed  # a second pass is a no-op


def test_base_store_round_trip(redis_client: redis.Redis) -> None:
    store = BaseStore(redis_client, "c1")
    assert store.get("person", "7") is None
    store.put("person", "7", {"name": "Åse"})
    assert store.get("person", 7) == {"name": "Åse"}
    store.forget("person", 7)
    assert store.get("person", 7) is None
