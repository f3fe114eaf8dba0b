"""DTO shapes of the webCRM sandbox, built from the Swagger definitions in `dto_schema.json`.

Every served DTO carries every property of its Swagger definition. Defaults (what an unset property
reads as): "" for strings, 0 for numbers, false for booleans, `0001-01-01T00:00:00+00:00` for dates,
the first enum value for enums, [] for arrays.

Strings default to "" and never null: the Swagger (2.0, no `x-nullable`) does not allow null, and
webCRM's own sample JSON (ErpIntegrations PowerofficeMessageDispatcherTester.cs) shows "" for unset
strings. The quirk `empty_strings_as_null` renders them as null instead, to test client tolerance.

Input is read the way ASP.NET Core + Newtonsoft.Json would: property names case-insensitive, unknown
properties ignored, numbers/booleans given as strings converted ("0" -> 0), null for a string -> "",
anything that cannot be converted -> `DtoError` (the app answers 400).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

SCHEMA_FILE = Path(__file__).with_name("dto_schema.json")
EMPTY_DATE = "0001-01-01T00:00:00+00:00"
INT32 = (-(2**31), 2**31 - 1)
INT64 = (-(2**63), 2**63 - 1)
_MIN_KEY = datetime.min  # sort/compare key of an empty date


class DtoError(ValueError):
    """Bad input for a DTO; str(error) is the message the client sees."""


@dataclass(frozen=True)
class Field:
    name: str
    kind: str  # string | int32 | int64 | double | bool | datetime | enum | array
    enum: tuple[str, ...] = ()
    max_length: int | None = None
    items_enum: tuple[str, ...] = ()

    @property
    def default(self) -> Any:
        return _DEFAULTS[self.kind](self)

    @property
    def numeric(self) -> bool:
        return self.kind in ("int32", "int64", "double")


_DEFAULTS = {
    "string": lambda f: "",
    "int32": lambda f: 0,
    "int64": lambda f: 0,
    "double": lambda f: 0.0,
    "bool": lambda f: False,
    "datetime": lambda f: EMPTY_DATE,
    "enum": lambda f: f.enum[0],
    "array": lambda f: [],
}


def _field(name: str, spec: dict) -> Field:
    kind = spec.get("type")
    fmt = spec.get("format")
    if "enum" in spec:
        return Field(name, "enum", enum=tuple(spec["enum"]))
    if kind == "string":
        if fmt == "date-time":
            return Field(name, "datetime")
        return Field(name, "string", max_length=spec.get("maxLength"))
    if kind == "integer":
        return Field(name, "int64" if fmt == "int64" else "int32")
    if kind == "number":
        return Field(name, "double")
    if kind == "boolean":
        return Field(name, "bool")
    if kind == "array":
        items = spec.get("items", {})
        return Field(name, "array", items_enum=tuple(items.get("enum", ())))
    raise ValueError(f"unsupported Swagger property {name}: {spec}")


class Dto:
    """One Swagger definition: its fields in Swagger order, defaults and input conversion."""

    def __init__(self, name: str, definition: dict) -> None:
        self.name = name
        self.required = tuple(definition.get("required", ()))
        self.fields: dict[str, Field] = {}
        for prop, spec in definition.get("properties", {}).items():
            if "$ref" in spec:  # nested DTOs are not needed by the served definitions
                continue
            self.fields[prop] = _field(prop, spec)
        self._lower = {name.lower(): name for name in self.fields}
        self._defaults = {name: f.default for name, f in self.fields.items()}
        self.string_fields = tuple(n for n, f in self.fields.items() if f.kind == "string")

    def defaults(self) -> dict[str, Any]:
        """A fresh record with every property at its default value."""
        record = dict(self._defaults)
        for name, field in self.fields.items():
            if field.kind == "array":
                record[name] = []
        return record

    def canonical(self, name: str) -> str | None:
        """The property's Swagger spelling for a name in any case, or None when unknown."""
        return self._lower.get(name.lower())

    def parse(self, body: Any) -> dict[str, Any]:
        """Known properties of a request body, converted; unknown ones are ignored."""
        if not isinstance(body, dict):
            raise DtoError(f"The request body must be a JSON object ({self.name}).")
        values: dict[str, Any] = {}
        for key, raw in body.items():
            name = self._lower.get(str(key).lower())
            if name is None:
                continue
            values[name] = convert(self.fields[name], raw)
        return values


def convert(field: Field, raw: Any) -> Any:
    """Convert one JSON value to the field's type (DtoError when it cannot be)."""
    kind = field.kind
    if kind == "string":
        if raw is None:
            return ""
        if isinstance(raw, bool):
            value = "True" if raw else "False"
        elif isinstance(raw, (int, float)):
            value = _number_text(raw)
        elif isinstance(raw, str):
            value = raw
        else:
            raise DtoError(f"{field.name}: expected a string, got {_json_type(raw)}.")
        if field.max_length is not None and len(value) > field.max_length:
            raise DtoError(
                f"The field {field.name} must be a string with a maximum length of {field.max_length}."
            )
        return value
    if kind in ("int32", "int64"):
        low, high = INT32 if kind == "int32" else INT64
        value = _to_int(field, raw)
        if not low <= value <= high:
            raise DtoError(f"{field.name}: {value} is outside the range of {kind}.")
        return value
    if kind == "double":
        return _to_float(field, raw)
    if kind == "bool":
        return _to_bool(field, raw)
    if kind == "datetime":
        return normalise_date(raw, field.name)
    if kind == "enum":
        return _to_enum(field.name, field.enum, raw)
    if kind == "array":
        if raw is None:
            return []
        if not isinstance(raw, list):
            raise DtoError(f"{field.name}: expected an array, got {_json_type(raw)}.")
        if field.items_enum:
            return [_to_enum(field.name, field.items_enum, item) for item in raw]
        return list(raw)
    raise DtoError(f"{field.name}: unsupported type")  # pragma: no cover


def _json_type(raw: Any) -> str:
    if raw is None:
        return "null"
    if isinstance(raw, bool):
        return "a boolean"
    if isinstance(raw, (int, float)):
        return "a number"
    if isinstance(raw, str):
        return "a string"
    if isinstance(raw, list):
        return "an array"
    return "an object"


def _number_text(raw: int | float) -> str:
    if isinstance(raw, float) and raw.is_integer() and abs(raw) < 1e15:
        return str(int(raw))
    return str(raw)


def _to_int(field: Field, raw: Any) -> int:
    if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
        raise DtoError(f"{field.name}: expected an integer, got {_json_type(raw)}.")
    if isinstance(raw, int):
        return raw
    if isinstance(raw, float):
        if raw.is_integer():
            return int(raw)
        raise DtoError(f"{field.name}: {raw} is not an integer.")
    text = str(raw).strip()
    try:
        return int(text)
    except ValueError:
        raise DtoError(f"{field.name}: could not convert {raw!r} to an integer.") from None


def _to_float(field: Field, raw: Any) -> float:
    if isinstance(raw, bool) or raw is None or isinstance(raw, (list, dict)):
        raise DtoError(f"{field.name}: expected a number, got {_json_type(raw)}.")
    if isinstance(raw, (int, float)):
        value = float(raw)
    else:
        try:
            value = float(str(raw).strip().replace(",", "."))
        except ValueError:
            raise DtoError(f"{field.name}: could not convert {raw!r} to a number.") from None
    if not math.isfinite(value):
        raise DtoError(f"{field.name}: {raw!r} is not a finite number.")
    return value


def _to_bool(field: Field, raw: Any) -> bool:
    if isinstance(raw, bool):
        return raw
    if isinstance(raw, int) and raw in (0, 1):
        return bool(raw)
    if isinstance(raw, str) and raw.strip().lower() in ("true", "false"):
        return raw.strip().lower() == "true"
    raise DtoError(f"{field.name}: expected true or false, got {raw!r}.")


def _to_enum(name: str, values: tuple[str, ...], raw: Any) -> str:
    if isinstance(raw, str):
        for value in values:
            if value.lower() == raw.strip().lower():
                return value
    elif isinstance(raw, int) and not isinstance(raw, bool) and 0 <= raw < len(values):
        return values[raw]
    raise DtoError(f"{name}: {raw!r} is not one of {', '.join(values)}.")


# -- dates -------------------------------------------------------------------------------------
def parse_date(text: str) -> datetime | None:
    """An aware datetime for an ISO-8601 text (naive = UTC), None for the empty date (year 1).

    Raises ValueError for text that is not ISO-8601.
    """
    text = text.strip()
    if not text:
        return None
    dt = datetime.fromisoformat(text)
    if dt.year == 1:
        return None
    if dt.tzinfo is None:
        dt = dt.replace(tzinfo=UTC)
    return dt


def normalise_date(raw: Any, name: str = "date") -> str:
    """The canonical text of a date value: `YYYY-MM-DDTHH:MM:SS+HH:MM` (offset kept), or EMPTY_DATE."""
    if raw is None:
        return EMPTY_DATE
    if not isinstance(raw, str):
        raise DtoError(f"{name}: expected an ISO-8601 date-time string, got {_json_type(raw)}.")
    try:
        dt = parse_date(raw)
    except ValueError:
        raise DtoError(f"{name}: {raw!r} is not an ISO-8601 date-time.") from None
    if dt is None:
        return EMPTY_DATE
    return format_date(dt)


def format_date(dt: datetime) -> str:
    return dt.replace(microsecond=0).isoformat()


def date_key(text: str) -> datetime:
    """A naive-UTC datetime for comparing/sorting stored dates; the empty date sorts first."""
    try:
        dt = parse_date(text)
    except (ValueError, AttributeError):
        return _MIN_KEY
    if dt is None:
        return _MIN_KEY
    return dt.astimezone(UTC).replace(tzinfo=None)


def now_text(offset_minutes: int = 0) -> str:
    """The current time in the sandbox's output format (UTC, or a fixed offset when configured)."""
    tz = UTC if not offset_minutes else timezone(timedelta(minutes=offset_minutes))
    return format_date(datetime.now(tz))


# -- the loaded schema --------------------------------------------------------------------------
def _load() -> tuple[dict, dict[str, Dto]]:
    with SCHEMA_FILE.open(encoding="utf-8") as fh:
        schema = json.load(fh)
    dtos = {name: Dto(name, definition) for name, definition in schema["definitions"].items()}
    return schema, dtos


SCHEMA, DTOS = _load()


def render(record: dict, dto: Dto, *, null_strings: bool = False) -> dict:
    """The JSON object served for a stored record (empty strings as null with the quirk)."""
    if not null_strings:
        return record
    out = dict(record)
    for name in dto.string_fields:
        if out.get(name) == "":
            out[name] = None
    return out
