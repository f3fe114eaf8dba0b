"""Realistic, deterministic Danish test data: æ/ø/å in names, real postcodes, valid CVR and GLN numbers.

Every generator takes a `random.Random`, so a seeded sandbox produces the same data every run.
"""

from __future__ import annotations

import random
import re
import unicodedata

FIRST_NAMES = (
    "Søren", "Mette", "Jørgen", "Anne", "Bjørn", "Helle", "Rasmus", "Sørine", "Mads", "Kirsten",
    "Åse", "Frederik", "Lærke", "Niels", "Ida", "Jens", "Maja", "Thøger", "Karen", "Ægir",
    "Anders", "Sofie", "Poul", "Birthe", "Kåre", "Freja", "Mikkel", "Signe", "Ove", "Dorthe",
)
LAST_NAMES = (
    "Kjærgaard", "Østergaard", "Nørgaard", "Sørensen", "Jørgensen", "Thomsen", "Højgaard", "Kristensen",
    "Mølgaard", "Nielsen", "Søndergaard", "Brønnum", "Ågesen", "Lykkegård", "Bæk", "Rasmussen",
    "Frølund", "Dahl", "Møller", "Hansen", "Kjær", "Skovgård", "Præst", "Vestergaard", "Lund",
)
TRADES = (
    "Smed", "Tømrer", "VVS", "Maskinfabrik", "Entreprenør", "Elektro", "Blikkenslager", "Gartneri",
    "Møbelsnedkeri", "Revision", "Ståltræk", "Køleteknik", "Glarmester", "Bageri", "Vognmandsforretning",
)
PLACE_WORDS = ("Nordjysk", "Fynsk", "Sjællandsk", "Østjysk", "Vestkyst", "Søhøj", "Ådal", "Bækgård", "Fjordlys")
COMPANY_FORMS = ("ApS", "A/S", "I/S", "IVS", "K/S")
STREETS = (
    "Nørregade", "Søndergade", "Østergade", "Vestergade", "Åboulevarden", "Algade", "Kærvej", "Møllevej",
    "Skovbrynet", "Bøgevej", "Læderstræde", "Rådhuspladsen", "Fælledvej", "Høje Taastrup Vej",
    "Ørstedsvej", "Kongensgade", "Bredgade", "Havnegade", "Ågade", "Tværgade", "Jægersborgvej",
)
SIDES = ("th.", "tv.", "mf.")
POSTCODES = (
    ("1050", "København K"), ("1620", "København V"), ("2100", "København Ø"), ("2200", "København N"),
    ("2300", "København S"), ("2400", "København NV"), ("2500", "Valby"), ("2630", "Taastrup"),
    ("2800", "Kongens Lyngby"), ("3000", "Helsingør"), ("3400", "Hillerød"), ("4000", "Roskilde"),
    ("4200", "Slagelse"), ("4700", "Næstved"), ("5000", "Odense C"), ("5700", "Svendborg"),
    ("6000", "Kolding"), ("6100", "Haderslev"), ("6700", "Esbjerg"), ("7100", "Vejle"),
    ("7400", "Herning"), ("7500", "Holstebro"), ("8000", "Aarhus C"), ("8200", "Aarhus N"),
    ("8600", "Silkeborg"), ("8700", "Horsens"), ("8800", "Viborg"), ("8900", "Randers C"),
    ("9000", "Aalborg"), ("9800", "Hjørring"), ("9900", "Frederikshavn"), ("4760", "Vordingborg"),
    ("6200", "Aabenraa"), ("7700", "Thisted"), ("3700", "Rønne"), ("4800", "Nykøbing F"),
)
ITEM_KINDS = (
    # (name stem, unit, group, cost range)
    ("Rustfri skrue", "stk", "Beslag", (0.4, 3.0)),
    ("Møtrik galv.", "stk", "Beslag", (0.2, 1.5)),
    ("Spånplade", "m2", "Træ", (60.0, 180.0)),
    ("Fyrretræ høvlet", "m", "Træ", (15.0, 60.0)),
    ("Kabel PVIK", "m", "El", (4.0, 25.0)),
    ("Stikkontakt hvid", "stk", "El", (20.0, 90.0)),
    ("Kølerør kobber", "m", "VVS", (40.0, 140.0)),
    ("Blandingsbatteri", "stk", "VVS", (350.0, 1800.0)),
    ("Montørtime", "time", "Arbejdsløn", (280.0, 420.0)),
    ("Kørsel", "km", "Kørsel", (2.5, 4.5)),
    ("Glasfiberisolering", "pk", "Isolering", (120.0, 380.0)),
    ("Stålprofil", "m", "Stål", (90.0, 450.0)),
)
SIZES = ("5x40", "6x60", "8x80", "12 mm", "22 mm", "1,5 mm²", "2,5 mm²", "Ø15", "Ø28", "100 mm", "")

CVR_WEIGHTS = (2, 7, 6, 5, 4, 3, 2, 1)
_FOLD = str.maketrans({"æ": "ae", "ø": "oe", "å": "aa", "Æ": "Ae", "Ø": "Oe", "Å": "Aa", "ß": "ss"})


def company_name(rng: random.Random) -> str:
    """E.g. "Østergaard Smed ApS" or "Fynsk Køleteknik A/S"."""
    owner = rng.choice(LAST_NAMES) if rng.random() < 0.7 else rng.choice(PLACE_WORDS)
    return f"{owner} {rng.choice(TRADES)} {rng.choice(COMPANY_FORMS)}"


def person_name(rng: random.Random) -> tuple[str, str]:
    """(first, last), e.g. ("Søren", "Kjærgaard")."""
    return rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)


def street_address(rng: random.Random) -> str:
    """E.g. "Nørregade 14", "Kærvej 3B" or "Nørregade 14, 2. th."."""
    street = f"{rng.choice(STREETS)} {rng.randint(1, 180)}"
    roll = rng.random()
    if roll < 0.15:
        return street + rng.choice("ABCD")
    if roll < 0.5:
        floor = rng.choice(("st.", "1.", "2.", "3.", "4."))
        return f"{street}, {floor} {rng.choice(SIDES)}"
    return street


def postcode_city(rng: random.Random) -> tuple[str, str]:
    """A real Danish (postcode, city) pair, e.g. ("8000", "Aarhus C")."""
    return rng.choice(POSTCODES)


def cvr(rng: random.Random) -> str:
    """An 8-digit CVR number passing the modulus-11 check (no leading zero)."""
    while True:
        digits = [rng.randint(1, 9)] + [rng.randint(0, 9) for _ in range(6)]
        check = -sum(w * d for w, d in zip(CVR_WEIGHTS, digits, strict=False)) % 11
        if check < 10:  # a remainder needing "10" has no valid number; draw again
            return "".join(map(str, [*digits, check]))


def ean(rng: random.Random) -> str:
    """A 13-digit GLN (EAN-13) with the Danish GS1 prefix 57 and a valid check digit."""
    body = "57" + "".join(str(rng.randint(0, 9)) for _ in range(10))
    return body + str(_gs1_check_digit(body))


def phone(rng: random.Random) -> str:
    """A Danish number, e.g. "+45 12 34 56 78" (never starting with 0 or 1)."""
    digits = str(rng.randint(2, 9)) + "".join(str(rng.randint(0, 9)) for _ in range(7))
    return "+45 " + " ".join(digits[i:i + 2] for i in range(0, 8, 2))


def email(first: str, last: str, domain: str) -> str:
    """first.last@domain in ASCII: æ->ae, ø->oe, å->aa, other accents dropped, spaces removed."""
    def fold(text: str) -> str:
        text = unicodedata.normalize("NFKD", text.translate(_FOLD)).encode("ascii", "ignore").decode()
        return re.sub(r"[^a-z0-9.-]+", "", text.lower().replace(" ", "."))
    local = ".".join(part for part in (fold(first), fold(last)) if part) or "kontakt"
    return f"{local}@{fold(domain) or 'example.dk'}"


def item(rng: random.Random) -> dict:
    """A catalogue item: {"number","name","unit","group","cost","price"}; money has 2 decimals."""
    stem, unit, group, (low, high) = rng.choice(ITEM_KINDS)
    size = rng.choice(SIZES) if unit in ("stk", "m", "m2") else ""
    cost = round(rng.uniform(low, high), 2)
    price = round(cost * rng.uniform(1.15, 1.9), 2)
    return {
        "number": f"{rng.randint(10, 99)}-{rng.randint(1000, 9999)}",
        "name": f"{stem} {size}".strip(),
        "unit": unit,
        "group": group,
        "cost": cost,
        "price": max(price, round(cost + 0.01, 2)),
    }


def is_valid_cvr(s: str) -> bool:
    """8 digits, not starting with 0, weighted sum (2,7,6,5,4,3,2,1) divisible by 11."""
    if not isinstance(s, str) or not re.fullmatch(r"[1-9][0-9]{7}", s):
        return False
    return sum(w * int(d) for w, d in zip(CVR_WEIGHTS, s, strict=True)) % 11 == 0


def is_valid_ean13(s: str) -> bool:
    """13 digits whose last one is the GS1 check digit of the first 12."""
    if not isinstance(s, str) or not re.fullmatch(r"[0-9]{13}", s):
        return False
    return _gs1_check_digit(s[:12]) == int(s[12])


def _gs1_check_digit(body: str) -> int:
    """GS1 mod-10: weights 3,1,3,... from the rightmost digit of the body."""
    total = sum(int(d) * (3 if i % 2 == 0 else 1) for i, d in enumerate(reversed(body)))
    return -total % 10
