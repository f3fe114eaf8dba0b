"""webCRM's localised country names ↔ Uniconta's `CountryCode` enum names.

webCRM stores a country as the *name* a user picked or typed in the instance's language, e.g.
"Danmark" (webcrm-api.md §3); Uniconta stores the `CountryCode` enum, written by name over REST,
e.g. "Denmark" (uniconta-api.md §2, §6.6). This table translates between the two. A name that is
not in the table is reported, never guessed: `to_uniconta()` returns None and the flow says so.

Accepted for each country: its Danish name(s), the English name with and without spaces (which is
also the enum name) and the ISO 3166 alpha-2 code. Extra names come from the connection's
`organisations.country_names` setting and take precedence, both ways.
"""

from __future__ import annotations

import re
import unicodedata
from collections.abc import Mapping

# Uniconta enum name → (preferred Danish name, other spellings, ISO alpha-2).
_TABLE: dict[str, tuple[str, tuple[str, ...], str]] = {
    "Denmark": ("Danmark", ("Kongeriget Danmark",), "DK"),
    "Sweden": ("Sverige", (), "SE"),
    "Norway": ("Norge", (), "NO"),
    "Finland": ("Finland", (), "FI"),
    "Iceland": ("Island", (), "IS"),
    "Greenland": ("Grønland", ("Kalaallit Nunaat",), "GL"),
    "FaroeIslands": ("Færøerne", ("Færøerne (Føroyar)", "Føroyar"), "FO"),
    "Germany": ("Tyskland", ("Deutschland",), "DE"),
    "Netherlands": ("Holland", ("Nederlandene", "Nederland", "The Netherlands"), "NL"),
    "Belgium": ("Belgien", (), "BE"),
    "Luxembourg": ("Luxembourg", ("Luxemburg",), "LU"),
    "France": ("Frankrig", (), "FR"),
    "UnitedKingdom": ("Storbritannien", ("Det Forenede Kongerige", "England", "Great Britain", "UK"), "GB"),
    "Ireland": ("Irland", ("Eire",), "IE"),
    "Poland": ("Polen", (), "PL"),
    "Spain": ("Spanien", (), "ES"),
    "Portugal": ("Portugal", (), "PT"),
    "Italy": ("Italien", (), "IT"),
    "Austria": ("Østrig", (), "AT"),
    "Switzerland": ("Schweiz", (), "CH"),
    "Estonia": ("Estland", (), "EE"),
    "Latvia": ("Letland", (), "LV"),
    "Lithuania": ("Litauen", (), "LT"),
    "CzechRepublic": ("Tjekkiet", ("Den Tjekkiske Republik", "Czechia"), "CZ"),
    "Slovakia": ("Slovakiet", (), "SK"),
    "Hungary": ("Ungarn", (), "HU"),
    "Slovenia": ("Slovenien", (), "SI"),
    "Croatia": ("Kroatien", (), "HR"),
    "Romania": ("Rumænien", (), "RO"),
    "Bulgaria": ("Bulgarien", (), "BG"),
    "Greece": ("Grækenland", (), "GR"),
    "Cyprus": ("Cypern", (), "CY"),
    "Malta": ("Malta", (), "MT"),
    "UnitedStates": ("USA", ("Amerikas Forenede Stater", "De Forenede Stater", "United States of America"), "US"),
    "Canada": ("Canada", (), "CA"),
    "Australia": ("Australien", (), "AU"),
    "NewZealand": ("New Zealand", ("Ny Zealand", "New Zeeland"), "NZ"),
    "China": ("Kina", (), "CN"),
    "Japan": ("Japan", (), "JP"),
    "India": ("Indien", (), "IN"),
    "Ukraine": ("Ukraine", (), "UA"),
    "Turkey": ("Tyrkiet", ("Türkiye",), "TR"),
}

ENUM_NAMES: tuple[str, ...] = tuple(_TABLE)


def _key(name: str) -> str:
    """Comparison form: NFC, case-folded, single spaces, no surrounding blanks or dots."""
    text = unicodedata.normalize("NFC", str(name)).strip().strip(".").casefold()
    return re.sub(r"\s+", " ", text)


def _spaced(enum_name: str) -> str:
    return re.sub(r"(?<=[a-z])(?=[A-Z])", " ", enum_name)


_BUILT_IN: dict[str, str] = {}
for _enum, (_danish, _others, _iso) in _TABLE.items():
    for _name in (_enum, _spaced(_enum), _danish, *_others, _iso):
        _BUILT_IN.setdefault(_key(_name), _enum)


class Countries:
    """The built-in table plus a connection's extra names (`country_names`)."""

    def __init__(self, extra: Mapping[str, str] | None = None) -> None:
        self._to_uniconta = dict(_BUILT_IN)
        self._to_webcrm = {_key(enum): danish for enum, (danish, _o, _i) in _TABLE.items()}
        for name, enum in (extra or {}).items():
            if not str(name).strip() or not str(enum).strip():
                continue
            canonical = self.canonical_enum(str(enum).strip())
            self._to_uniconta[_key(name)] = canonical
            # The connection's own spelling is what its users see: prefer it when writing back.
            self._to_webcrm[_key(canonical)] = str(name).strip()

    @staticmethod
    def canonical_enum(enum: str) -> str:
        """A known enum name in its canonical spelling ("denmark" → "Denmark"); others unchanged."""
        for known in ENUM_NAMES:
            if known.casefold() == enum.strip().casefold():
                return known
        return enum.strip()

    def to_uniconta(self, webcrm_name: str | None) -> str | None:
        """The Uniconta enum name for a webCRM country name, or None if the name is unknown."""
        if webcrm_name is None or not str(webcrm_name).strip():
            return None
        return self._to_uniconta.get(_key(webcrm_name))

    def to_webcrm(self, enum_name: str | None) -> str | None:
        """The webCRM name to write for a Uniconta country, or None if we have no name for it."""
        if enum_name is None or not str(enum_name).strip():
            return None
        return self._to_webcrm.get(_key(str(enum_name)))

    def same(self, a: str | None, b: str | None) -> bool:
        """Whether two Uniconta enum names denote the same country (case-insensitive)."""
        return _key(a or "") == _key(b or "")
