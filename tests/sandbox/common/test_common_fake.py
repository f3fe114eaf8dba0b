"""Fake Danish data: valid CVR/EAN numbers, real postcodes, æøå, determinism."""

from __future__ import annotations

import random
import re

import pytest

from sandbox.common import fake


@pytest.mark.parametrize(("value", "valid"), [
    ("10150817", True), ("10150818", False), ("01501817", False), ("1015081", False), ("1015081a", False),
    ("", False),
])
def test_is_valid_cvr(value: str, valid: bool) -> None:
    assert fake.is_valid_cvr(value) is valid


@pytest.mark.parametrize(("value", "valid"), [
    ("4006381333931", True), ("5790000000005", True), ("5790000000006", False), ("4006381333932", False), ("400638133393", False),
    ("57900000000x5", False),
])
def test_is_valid_ean13(value: str, valid: bool) -> None:
    assert fake.is_valid_ean13(value) is valid


def test_generated_numbers_are_valid_for_many_seeds() -> None:
    for seed in range(2000):
        rng = random.Random(seed)
        number = fake.cvr(rng)
        gln = fake.ean(rng)
        assert fake.is_valid_cvr(number), (seed, number)
        assert fake.is_valid_ean13(gln) and gln.startswith("57"), (seed, gln)
        assert re.fullmatch(r"\+45 [2-9]\d( \d\d){3}", fake.phone(rng)), seed
        code, city = fake.postcode_city(rng)
        assert (code, city) in fake.POSTCODES and re.fullmatch(r"\d{4}", code)
        product = fake.item(rng)
        assert set(product) == {"number", "name", "unit", "group", "cost", "price"}
        assert product["price"] > product["cost"] > 0
        assert round(product["price"], 2) == product["price"] and round(product["cost"], 2) == product["cost"]


def test_everything_is_deterministic_for_a_seed() -> None:
    def sample(seed: int) -> list:
        rng = random.Random(seed)
        return [fake.company_name(rng), fake.person_name(rng), fake.street_address(rng),
                fake.postcode_city(rng), fake.cvr(rng), fake.ean(rng), fake.phone(rng), fake.item(rng)]

    assert sample(1) == sample(1)
    assert sample(1) != sample(2)


def test_names_and_addresses_are_danish() -> None:
    rng = random.Random(0)
    text = " ".join(fake.company_name(rng) + " " + " ".join(fake.person_name(rng)) + " " + fake.street_address(rng)
                    for _ in range(200))
    assert {"æ", "ø", "å"} <= set(text.lower())
    assert re.search(r"\b(ApS|A/S)\b", text)
    assert re.search(r"\d+, (st\.|\d\.) (th|tv|mf)\.", text)


def test_email_is_ascii_folded() -> None:
    assert fake.email("Søren", "Kjærgaard", "østergaard-smed.dk") == "soeren.kjaergaard@oestergaard-smed.dk"
    assert fake.email("Åse", "Brønnum Hansen", "x.dk") == "aase.broennum.hansen@x.dk"
    assert fake.email("José", "Müller", "example.dk") == "jose.muller@example.dk"
