"""The entity catalogue: every table the sandbox serves, with its properties, keys and limits.

Property names follow Uniconta's own client pages (Uniconta/Uniconta-Pages XAML bindings, reference
§2). Types, defaults and every max length except Debtor `Account` (20) and `Name` (100) are our
assumptions; docs/sandbox-uniconta.md lists them.

Records are stored in their JSON form (strings, ints, floats, bools, ISO date strings, enum names),
so the store can be saved as JSON and a response is a filtered copy of the stored dict.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

from sandbox.uniconta.errors import UnicontaError

# -- enums (names as in Uniconta's C# enums where known; the member lists are ours) ------------------
COUNTRIES = (
    "Denmark", "Sweden", "Norway", "Finland", "Iceland", "Greenland", "FaroeIslands", "Germany",
    "Netherlands", "Belgium", "Luxembourg", "France", "UnitedKingdom", "Ireland", "Poland", "Spain",
    "Portugal", "Italy", "Austria", "Switzerland", "Estonia", "Latvia", "Lithuania", "CzechRepublic",
    "Slovakia", "Hungary", "Slovenia", "Croatia", "Romania", "Bulgaria", "Greece", "Cyprus", "Malta",
    "UnitedStates", "Canada", "Australia", "NewZealand", "China", "Japan", "India", "Ukraine", "Turkey",
)
CURRENCIES = ("DKK", "EUR", "USD", "SEK", "NOK", "GBP", "CHF", "PLN", "ISK", "CZK", "HUF", "CAD", "AUD",
              "JPY", "CNY")
VAT_ZONES = ("Domestic", "EU", "Foreign", "VatFree")
LANGUAGES = ("Danish", "English", "German", "Swedish", "Norwegian", "Finnish", "Icelandic", "Dutch",
             "French", "Spanish", "Polish", "Estonian", "Lithuanian", "Latvian")
ITEM_UNITS = ("None", "Piece", "Hours", "Day", "Week", "Month", "Year", "Kg", "Gram", "Tons", "Liter",
              "Meter", "Meter2", "Meter3", "Box", "Pallet", "Package", "Set", "Pair")
ITEM_TYPES = ("Item", "Service", "BOM", "ProductionBOM")
STORAGE_REGISTER = ("NoStorage", "Reserve", "Order", "Move")

MAX_NUMBER = 1e15  # our bound on Double properties (amounts, quantities, percents)
_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.(\d{1,7}))?)?)?(Z|[+-]\d{2}:?\d{2})?$")


@dataclass(frozen=True)
class Prop:
    """One property of an entity as it appears in JSON."""

    name: str
    type: str                       # str | int | float | bool | date | datetime | enum
    max_len: int | None = None
    default: Any = None
    enum: tuple[str, ...] | None = None
    readonly: bool = False          # the server sets it; a write body's value is ignored
    required: bool = False          # empty -> 400 FieldCannotBeBlank

    @property
    def nullable(self) -> bool:
        return self.type in ("str", "date", "datetime") or (self.type == "enum" and self.default is None)


def S(name: str, max_len: int, **kw: Any) -> Prop:
    return Prop(name, "str", max_len=max_len, **kw)


def I(name: str, **kw: Any) -> Prop:  # noqa: E743
    return Prop(name, "int", default=kw.pop("default", 0), **kw)


def F(name: str, **kw: Any) -> Prop:
    return Prop(name, "float", default=kw.pop("default", 0.0), **kw)


def B(name: str, **kw: Any) -> Prop:
    return Prop(name, "bool", default=kw.pop("default", False), **kw)


def D(name: str, **kw: Any) -> Prop:
    return Prop(name, "date", **kw)


def T(name: str, **kw: Any) -> Prop:
    return Prop(name, "datetime", **kw)


def E(name: str, values: tuple[str, ...], default: str | None = None, **kw: Any) -> Prop:
    return Prop(name, "enum", enum=values, default=default, **kw)


def _address(prefix: str = "") -> tuple[Prop, ...]:
    return (S(f"{prefix}Address1", 60), S(f"{prefix}Address2", 60), S(f"{prefix}Address3", 60),
            S(f"{prefix}ZipCode", 20), S(f"{prefix}City", 50))


def _delivery() -> tuple[Prop, ...]:
    return (S("DeliveryName", 100), *_address("Delivery"), E("DeliveryCountry", COUNTRIES),
            S("DeliveryContactPerson", 60), S("DeliveryPhone", 40), S("DeliveryContactEmail", 255))


def _dimensions() -> tuple[Prop, ...]:
    return tuple(S(f"Dimension{i}", 20) for i in range(1, 6))


COMMON = (I("RowId", readonly=True), S("KeyStr", 100, readonly=True),
          T("Created", readonly=True), T("UpdatedAt", readonly=True))


@dataclass(frozen=True)
class Table:
    """One Uniconta table, served as `<entity>` and (when it has user fields) `<entity>User`."""

    name: str                              # "Debtor": the table name used in Change URLs and admin
    entity: str                            # "DebtorClient"
    props: tuple[Prop, ...]
    key: str | None = None                 # natural key property; None = RowId only
    key_assigned: bool = False             # int key the server assigns when 0 / missing
    table_id: int | None = None            # Change-URL TableId (ClassId)
    writable: bool = True                  # False: read-only through the API (invoices)
    user_fields: bool = True               # has a ...ClientUser variant
    by_name: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)
    by_lower: dict[str, Prop] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        for prop in (*self.props, *COMMON):
            self.by_name[prop.name] = prop
            self.by_lower[prop.name.lower()] = prop

    @property
    def all_props(self) -> tuple[Prop, ...]:
        return (*self.props, *COMMON)

    def prop(self, name: str) -> Prop | None:
        return self.by_name.get(name) or self.by_lower.get(name.lower())


DEBTOR = Table(
    "Debtor", "DebtorClient", key="Account", table_id=50, props=(
        S("Account", 20, required=True), S("Name", 100), *_address(), E("Country", COUNTRIES, "Denmark"),
        S("CountryName", 50, readonly=True),
        S("Phone", 40), S("MobilPhone", 40), S("ContactPerson", 60), S("ContactEmail", 255),
        S("InvoiceEmail", 255), S("Www", 255), S("CompanyRegNo", 20), S("VatNumber", 20), S("EAN", 20),
        S("Vat", 10), E("VatZone", VAT_ZONES, "Domestic"), S("VatOperation", 10), E("Currency", CURRENCIES),
        S("Payment", 20), S("PaymentFormat", 20), S("Group", 20), S("PriceList", 20), I("PriceGroup"),
        S("LayoutGroup", 20), S("Employee", 20), B("Blocked"), E("UserLanguage", LANGUAGES, "Danish"),
        F("CreditMax"), F("EndDiscountPct"), F("LineDiscountPct"), *_delivery(), *_dimensions(),
        S("CrmGroup", 20), S("Interests", 100), S("Products", 100), S("InvoiceAccount", 20),
        F("CurBalance", readonly=True), F("Overdue", readonly=True),
    ))

INV_ITEM = Table(
    "InvItem", "InvItemClient", key="Item", table_id=23, props=(
        S("Item", 40, required=True), S("Name", 100), S("Group", 20), F("CostPrice"), F("SalesPrice1"),
        F("SalesPrice2"), F("SalesPrice3"), F("PurchasePrice"), E("Unit", ITEM_UNITS, "None"), S("EAN", 20),
        E("ItemType", ITEM_TYPES, "Item"), B("Blocked"), F("Weight"), F("NetWeight"),
        E("Currency1", CURRENCIES), E("Currency2", CURRENCIES), E("Currency3", CURRENCIES),
        S("DiscountGroup", 20), S("UnitGroup", 20), S("Warehouse", 20), S("Location", 20),
        E("SalesUnit", ITEM_UNITS), E("PurchaseUnit", ITEM_UNITS),
        F("QtyOnStock", readonly=True), F("QtyReserved", readonly=True), F("QtyOrdered", readonly=True),
        F("Available", readonly=True),
    ))

DEBTOR_ORDER = Table(
    "DebtorOrder", "DebtorOrderClient", key="OrderNumber", key_assigned=True, props=(
        I("OrderNumber"), S("Account", 20), S("Name", 100), S("YourRef", 60), S("OurRef", 60),
        S("Requisition", 60), S("Remark", 1000), S("ContactName", 60), S("Employee", 20), S("Payment", 20),
        E("Currency", CURRENCIES), S("Group", 20), S("PriceList", 20), D("DeliveryDate"), *_delivery(),
        *_dimensions(), F("EndDiscountPct"), B("PricesInclVat"), S("Project", 20),
        T("CreatedTime", readonly=True), F("Total", readonly=True), F("Margin", readonly=True),
        F("MarginRatio", readonly=True),
    ))

DEBTOR_ORDER_LINE = Table(
    "DebtorOrderLine", "DebtorOrderLineClient", props=(
        I("OrderNumber"), I("LineNumber"), S("Item", 40), S("Text", 500), F("Qty"), F("Price"),
        F("DiscountPct"), F("CostPrice"), E("Unit", ITEM_UNITS), S("Employee", 20), D("Date"),
        D("DeliveryDate"), S("Warehouse", 20), S("Location", 20), S("Note", 1000), E("Currency", CURRENCIES),
        S("Vat", 10), E("Storage", STORAGE_REGISTER, "Reserve"),
        F("Total", readonly=True), F("Margin", readonly=True),
    ))

EMPLOYEE = Table(
    "Employee", "EmployeeClient", key="Number", table_id=95, props=(
        S("Number", 20, required=True), S("Name", 100), S("Title", 40), S("Email", 255), S("Mobil", 40),
        S("PrivateEmail", 255), S("PrivateMobil", 40), S("Group", 20), S("Address1", 60), S("Address2", 60),
        S("ZipCode", 20), S("City", 50), B("Blocked"), D("Hired"), D("Terminated"), S("UserLoginId", 60),
        S("UserName", 60), *_dimensions(),
    ))

CONTACT = Table(
    "Contact", "ContactClient", table_id=60, props=(
        I("DCType", default=1), S("DCAccount", 20), S("Name", 100), S("Title", 40), S("ContactType", 20),
        S("Email", 255), S("Mobil", 40), S("EAN", 20), S("ReferenceId", 40), S("Interests", 100),
        S("Products", 100), B("Invoice"), B("Offer"), B("Confirmation"), B("Packnote"),
        B("AccountStatement"), B("CollectionLetter"), B("InterestNote"),
    ))

TABLE_CHANGE_EVENT = Table(
    "TableChangeEvent", "TableChangeEventClient", user_fields=False, props=(
        I("TableId"), S("Url", 1000, required=True), S("Argument", 255), B("UsePost"), S("Job", 40),
        B("HasError", readonly=True), S("ErrorMessage", 1000, readonly=True), T("LastEvent", readonly=True),
    ))

DEBTOR_INVOICE = Table(
    "DebtorInvoice", "DebtorInvoiceClient", key="InvoiceNumber", key_assigned=True, writable=False, props=(
        I("InvoiceNumber"), I("OrderNumber"), S("Account", 20), S("Name", 100), D("Date"),
        E("Currency", CURRENCIES), S("YourRef", 60), S("OurRef", 60), S("Requisition", 60), S("Employee", 20),
        F("NetAmount"), F("Margin"),
    ))

TABLES: tuple[Table, ...] = (DEBTOR, INV_ITEM, DEBTOR_ORDER, DEBTOR_ORDER_LINE, EMPLOYEE, CONTACT,
                             TABLE_CHANGE_EVENT, DEBTOR_INVOICE)
BY_TABLE = {t.name: t for t in TABLES}
BY_TABLE_ID = {t.table_id: t for t in TABLES if t.table_id is not None}
USER_FIELD_TABLES = ("Debtor", "InvItem", "DebtorOrder", "DebtorOrderLine", "Employee", "Contact")

# user-defined field types (Tools -> Custom fields) -> our value type
USER_FIELD_TYPES = {"string": "str", "text": "str", "enum": "str", "double": "float", "decimal": "float",
                    "int": "int", "integer": "int", "int64": "int", "long": "int", "boolean": "bool",
                    "bool": "bool", "date": "date", "datetime": "datetime"}
USER_FIELD_MAX_LEN = 255
_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,59}$")


def find_entity(name: str) -> tuple[Table, bool] | None:
    """`DebtorClient` -> (DEBTOR, False); `DebtorClientUser` -> (DEBTOR, True); case-insensitive."""
    lower = name.lower()
    for table in TABLES:
        if lower == table.entity.lower():
            return table, False
        if table.user_fields and lower == table.entity.lower() + "user":
            return table, True
    return None


def find_table(name: str) -> Table | None:
    """A table by table name (`Debtor`) or entity name (`DebtorClient`, `DebtorClientUser`)."""
    for table in TABLES:
        if name.lower() == table.name.lower():
            return table
    found = find_entity(name)
    return found[0] if found else None


def entity_names() -> list[str]:
    names = []
    for table in TABLES:
        names.append(table.entity)
        if table.user_fields:
            names.append(table.entity + "User")
    return names


# -- user-field definitions --------------------------------------------------------------------------
def user_field_prop(definition: dict) -> Prop:
    """The Prop of one stored user-field definition {"Name", "Type"}."""
    kind = USER_FIELD_TYPES[definition["Type"].lower()]
    defaults = {"str": None, "int": 0, "float": 0.0, "bool": False, "date": None, "datetime": None}
    return Prop(definition["Name"], kind, max_len=USER_FIELD_MAX_LEN if kind == "str" else None,
                default=defaults[kind])


def check_user_fields(table: Table, body: Any) -> list[dict]:
    """Validate an admin definition list; ValueError("<field>: <why>") on bad input."""
    if not isinstance(body, list):
        raise ValueError("body: must be a JSON array of {\"Name\": ..., \"Type\": ...}")
    result: list[dict] = []
    seen: set[str] = set()
    for i, item in enumerate(body):
        if not isinstance(item, dict):
            raise ValueError(f"[{i}]: must be an object with Name and Type")
        name, kind = item.get("Name"), item.get("Type", "String")
        if not isinstance(name, str) or not _IDENT.match(name):
            raise ValueError(f"[{i}].Name: must be a name without spaces (letters, digits, _), max 60")
        if not isinstance(kind, str) or kind.lower() not in USER_FIELD_TYPES:
            raise ValueError(f"[{i}].Type: must be one of String, Double, Int, Boolean, Date, DateTime, Enum")
        if table.prop(name) is not None:
            raise ValueError(f"[{i}].Name: {name} is a standard property of {table.entity}")
        if name.lower() in seen:
            raise ValueError(f"[{i}].Name: {name} is defined twice")
        seen.add(name.lower())
        result.append({"Name": name, "Type": kind})
    return result


# -- values ------------------------------------------------------------------------------------------
def _bad(prop: Prop, why: str) -> UnicontaError:
    return UnicontaError(400, "CouldNotSave", f"{prop.name}: {why}", prop.name)


def parse_datetime(text: str) -> datetime | None:
    """ISO-8601 date or date-time -> naive UTC datetime; None when not parseable."""
    m = _DATE_RE.match(text.strip())
    if not m:
        return None
    y, mo, d, h, mi, s, frac, tz = m.groups()
    try:
        value = datetime(int(y), int(mo), int(d), int(h or 0), int(mi or 0), int(s or 0),
                         int((frac or "0").ljust(6, "0")[:6]))
        if tz and tz != "Z":
            sign = 1 if tz[0] == "+" else -1
            digits = tz[1:].replace(":", "")
            value -= sign * timedelta(hours=int(digits[:2]), minutes=int(digits[2:]))
    except (ValueError, OverflowError):
        return None
    return value


def format_date(value: date | datetime) -> str:
    return f"{value.year:04d}-{value.month:02d}-{value.day:02d}T00:00:00"


def format_datetime(value: datetime) -> str:
    """Naive (UTC) datetime -> `2024-05-01T12:34:56.123456Z`."""
    return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def now_iso() -> str:
    return format_datetime(datetime.now(UTC).replace(tzinfo=None))


def coerce(prop: Prop, value: Any) -> Any:
    """A JSON value -> the stored value of `prop`, the way a lenient .NET deserializer would read it.

    null means "default"; numbers are accepted as strings and numeric strings as numbers; objects and
    arrays, non-numeric text for numbers, unknown enum names and bad dates are 400 CouldNotSave.
    """
    if value is None:
        return prop.default
    if isinstance(value, dict | list):
        raise _bad(prop, f"expected a {_kind(prop)}, got a JSON {'object' if isinstance(value, dict) else 'array'}")
    kind = prop.type
    if kind == "str":
        if isinstance(value, bool):
            text = "True" if value else "False"
        elif isinstance(value, int):
            text = str(value)
        elif isinstance(value, float):
            if not math.isfinite(value):
                raise _bad(prop, "expected a string")
            text = repr(value) if not value.is_integer() else str(int(value))
        else:
            text = value
        if text == "":
            return None
        if prop.max_len is not None and len(text) > prop.max_len:
            raise UnicontaError(400, "CouldNotSave", f"{prop.name} exceeds {prop.max_len} characters", prop.name)
        return text
    if kind == "int":
        if isinstance(value, bool):
            raise _bad(prop, "expected an integer, got a boolean")
        if isinstance(value, float):
            if not value.is_integer():
                raise _bad(prop, f"expected an integer, got {value!r}")
            value = int(value)
        if isinstance(value, str):
            text = value.strip()
            if not re.fullmatch(r"[+-]?\d{1,18}", text):
                raise _bad(prop, f"expected an integer, got {value!r}")
            value = int(text)
        if abs(value) > 2**63 - 1:
            raise _bad(prop, "integer out of range")
        return value
    if kind == "float":
        if isinstance(value, bool):
            raise _bad(prop, "expected a number, got a boolean")
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise _bad(prop, f"expected a number, got {value!r}") from None
        value = float(value)
        if not math.isfinite(value) or abs(value) > MAX_NUMBER:
            raise _bad(prop, f"expected a finite number within +/-{MAX_NUMBER:g}")
        return value
    if kind == "bool":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        if isinstance(value, int) and value in (0, 1):
            return bool(value)
        raise _bad(prop, f"expected true or false, got {value!r}")
    if kind in ("date", "datetime"):
        if not isinstance(value, str):
            raise _bad(prop, f"expected a date string, got {value!r}")
        if value.strip() == "":
            return None
        parsed = parse_datetime(value)
        if parsed is None:
            raise _bad(prop, f"expected an ISO-8601 date, got {value!r}")
        if parsed.year <= 1:
            return None  # DateTime.MinValue means "no date"
        return format_date(parsed) if kind == "date" else parsed.strftime("%Y-%m-%dT%H:%M:%S")
    if kind == "enum":
        assert prop.enum is not None
        if not isinstance(value, str):
            raise _bad(prop, f"expected one of the {prop.name} names (e.g. {prop.enum[0]!r}), got {value!r}")
        if value == "":
            return prop.default
        for name in prop.enum:
            if name.lower() == value.lower():
                return name
        raise _bad(prop, f"{value!r} is not a valid value (known: {', '.join(prop.enum)})")
    raise AssertionError(kind)  # pragma: no cover


def _kind(prop: Prop) -> str:
    return {"str": "string", "int": "integer", "float": "number", "bool": "boolean", "date": "date",
            "datetime": "date-time", "enum": "enum name"}[prop.type]


def blank_record(table: Table) -> dict[str, Any]:
    """Every property of `table` at its default."""
    return {p.name: p.default for p in table.all_props}

