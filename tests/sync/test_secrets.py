"""Secrets stay masked in every representation, and scrub() catches credential-shaped text."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sync.secrets import MASK, Secret, mask_query, scrub, scrub_data


def test_secret_never_prints() -> None:
    s = Secret("hunter2-very-secret")
    assert "hunter2" not in repr(s) and "hunter2" not in str(s) and "hunter2" not in f"{s} {s!r}"
    assert s.reveal() == "hunter2-very-secret"


@pytest.mark.parametrize(
    "text",
    [
        "Authorization: Bearer eyJhbGciOi.payload.sig",
        "headers={'Authorization': 'Basic MDAxMjM0L3NhbmRib3g6c2FuZGJveA=='}",
        "GET /webhook/10/uniconta?CompanyId=1&token=abcdef123456",
        "authCode=0f0e-4a1b-9c2d",
        '{"password": "pw-in-json"}',
        "redis://user:topsecret@redis:6379/0",
        "secret whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw",
    ],
)
def test_credential_shapes_are_masked(text: str) -> None:
    out = scrub(text)
    assert MASK in out
    for needle in ("eyJhbGciOi", "MDAxMjM0L3", "abcdef123456", "0f0e-4a1b", "pw-in-json", "topsecret",
                   "MfKQ9r8GKY"):
        assert needle not in out


@settings(max_examples=60, deadline=None)
@given(st.text(alphabet=st.characters(min_codepoint=48, max_codepoint=122), min_size=6, max_size=30))
def test_registered_secrets_are_masked_anywhere(value: str) -> None:
    value = "hyp-" + value  # registration is process-wide: keep these apart from real words
    Secret(value)
    assert value not in scrub(f"prefix {value} suffix")


def test_scrub_data_masks_secret_keys_and_values() -> None:
    Secret("registered-value-1")
    data = {"password": "x", "nested": [{"note": "has registered-value-1 inside"}], "count": 3}
    out = scrub_data(data)
    assert out["password"] == MASK
    assert "registered-value-1" not in out["nested"][0]["note"]
    assert out["count"] == 3


@pytest.mark.parametrize(
    ("query", "masked"),
    [
        ("CompanyId=1&token=demo-token&Table=InvItem", "CompanyId=1&token=***&Table=InvItem"),
        ("tok%65n=demo-token&a=1", "tok%65n=***&a=1"),  # Flask decodes the key, so it authenticates too
        ("access_token=x;password=y&signature=z", "access_token=***;password=***&signature=***"),
        ("token=&Key=A-1", "token=&Key=A-1"),
        ("", ""),
    ],
)
def test_mask_query_masks_secret_named_parameters(query: str, masked: str) -> None:
    assert mask_query(query) == masked


def test_scrub_masks_secret_parameters_in_any_url() -> None:
    line = '"GET /webhook/demo/invitems?tok%65n=demo-token&Key=A HTTP/1.1" 202 "http://h/?x=1&token=demo-token"'
    assert scrub(line) == '"GET /webhook/demo/invitems?tok%65n=***&Key=A HTTP/1.1" 202 "http://h/?x=1&token=***"'
    assert scrub("a ? b & c; x=1 and ?Key=A-100") == "a ? b & c; x=1 and ?Key=A-100"
