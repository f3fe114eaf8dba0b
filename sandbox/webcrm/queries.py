"""The `/Queries` SQL subset of the webCRM sandbox.

    SELECT * | <col>[, <col>...] FROM <Table>
        [WHERE <field> <op> <literal> [AND <field> <op> <literal> ...]]
        [ORDER BY <field> [ASC|DESC]] [;]

* ops `=  <>  !=  >  >=  <  <=`; literals are '<text>' (`''` escapes a quote) or plain numbers.
* keywords, table and field names are case-insensitive; a field may be qualified with the table
  (`Organisation.OrganisationId`).
* date fields compare as instants (literal parsed as ISO-8601, naive = UTC; the empty date
  `0001-01-01...` is the smallest value); numeric fields compare numerically; booleans as 0/1; enum
  fields by name (case-insensitive) or by their number (`LinkedDataItemEntityType = 7`); text
  compares case-insensitively (SQL Server's default collation - an assumption).
* anything else (OR, parentheses, JOIN, LIKE, IN, IS NULL, functions, TOP, ...) -> QueryError, which
  the app answers with 400 {"Message": ...}.

The column list is an addition to the contract's `SELECT *`: S6 (2026 production) runs
`SELECT PersonId, PersonEmail, PersonOrganisationId FROM Person WHERE ...`.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from typing import Any

from sandbox.webcrm.dto import Field, date_key, parse_date


class QueryError(ValueError):
    """An unsupported or malformed script; str(error) is the client-facing message."""


@dataclass(frozen=True)
class Condition:
    field: str
    op: str
    value: str
    quoted: bool


@dataclass
class Query:
    table: str
    columns: list[str] | None  # None = *
    where: list[Condition] = field(default_factory=list)
    order: tuple[str, bool] | None = None  # (field, descending)


_TOKEN = re.compile(
    r"""\s*(?:
        (?P<string>'(?:[^']|'')*')
      | (?P<number>-?\d+(?:\.\d+)?(?![A-Za-z_]))
      | (?P<ident>[A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)
      | (?P<op><>|!=|>=|<=|=|<|>)
      | (?P<sym>[*,;()])
      | (?P<bad>\S)
    )""",
    re.VERBOSE,
)
OPS = {"=", "<>", "!=", ">", ">=", "<", "<="}
UNSUPPORTED = {
    "OR", "NOT", "JOIN", "INNER", "LEFT", "RIGHT", "OUTER", "ON", "LIKE", "IN", "IS", "NULL", "BETWEEN",
    "TOP", "DISTINCT", "GROUP", "HAVING", "LIMIT", "OFFSET", "UNION", "INSERT", "UPDATE", "DELETE", "EXISTS",
}
MAX_SCRIPT = 10_000


def tokenize(script: str) -> list[tuple[str, str]]:
    tokens: list[tuple[str, str]] = []
    pos = 0
    text = script.rstrip()
    while pos < len(text):
        m = _TOKEN.match(text, pos)
        if m is None:  # only trailing whitespace can fail to match
            break
        kind = m.lastgroup or "bad"
        value = m.group(kind)
        if kind == "bad":
            if value == "'":
                raise QueryError("Unclosed quotation mark in the script.")
            raise QueryError(f"Incorrect syntax near '{value}'.")
        tokens.append((kind, value))
        pos = m.end()
    return tokens


class _Parser:
    def __init__(self, script: str) -> None:
        self.tokens = tokenize(script)
        self.i = 0

    def peek(self) -> tuple[str, str] | None:
        return self.tokens[self.i] if self.i < len(self.tokens) else None

    def next(self, what: str) -> tuple[str, str]:
        tok = self.peek()
        if tok is None:
            raise QueryError(f"Incorrect syntax: expected {what} at the end of the script.")
        self.i += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok and tok[0] == "ident" and tok[1].upper() == word:
            self.i += 1
            return True
        return False

    def expect_keyword(self, word: str) -> None:
        if not self.keyword(word):
            tok = self.peek()
            near = tok[1] if tok else "end of script"
            raise QueryError(f"Incorrect syntax near '{near}': expected {word}.")

    def ident(self, what: str) -> str:
        kind, value = self.next(what)
        if kind != "ident":
            raise QueryError(f"Incorrect syntax near '{value}': expected {what}.")
        self._check_supported(value)
        return value

    @staticmethod
    def _check_supported(word: str) -> None:
        if word.upper() in UNSUPPORTED:
            raise QueryError(f"'{word.upper()}' is not supported by the sandbox's /Queries subset.")


def parse(script: str) -> Query:
    """Parse a script of the supported subset (QueryError otherwise)."""
    if not script or not script.strip():
        raise QueryError("The script parameter is required.")
    if len(script) > MAX_SCRIPT:
        raise QueryError(f"The script is longer than {MAX_SCRIPT} characters.")
    p = _Parser(script)
    for kind, value in p.tokens:
        if kind == "ident":
            p._check_supported(value)
        elif kind == "sym" and value in "()":
            raise QueryError("Parentheses are not supported by the sandbox's /Queries subset.")
    p.expect_keyword("SELECT")
    columns: list[str] | None
    tok = p.peek()
    if tok == ("sym", "*"):
        p.i += 1
        columns = None
    else:
        columns = [p.ident("a column name or *")]
        while p.peek() == ("sym", ","):
            p.i += 1
            columns.append(p.ident("a column name"))
    p.expect_keyword("FROM")
    table = p.ident("a table name")
    if "." in table:
        raise QueryError(f"Invalid object name '{table}'.")
    query = Query(table=table, columns=columns)
    if p.keyword("WHERE"):
        query.where.append(_condition(p))
        while p.keyword("AND"):
            query.where.append(_condition(p))
    if p.keyword("ORDER"):
        p.expect_keyword("BY")
        name = p.ident("a column name")
        descending = False
        if p.keyword("DESC"):
            descending = True
        else:
            p.keyword("ASC")
        query.order = (name, descending)
    if p.peek() == ("sym", ";"):
        p.i += 1
    tok = p.peek()
    if tok is not None:
        raise QueryError(f"Incorrect syntax near '{tok[1]}'.")
    return query


def _condition(p: _Parser) -> Condition:
    name = p.ident("a column name")
    kind, op = p.next("a comparison operator")
    if kind != "op" or op not in OPS:
        raise QueryError(f"Incorrect syntax near '{op}': expected one of = <> > >= < <=.")
    kind, value = p.next("a value")
    if kind == "string":
        return Condition(name, op, value[1:-1].replace("''", "'"), True)
    if kind == "number":
        return Condition(name, op, value, False)
    raise QueryError(f"Incorrect syntax near '{value}': expected a quoted '...' value or a number.")


# -- execution ----------------------------------------------------------------------------------
@dataclass
class TableDef:
    """A queryable table: its canonical name, fields (by lower-case name) and how to read a row."""

    name: str
    fields: dict[str, tuple[str, str, Field]]  # lower name -> (column name, stored key, Field)
    read: Callable[[dict, str], Any] = lambda rec, key: rec.get(key)


def _resolve(table: TableDef, name: str, alias: str = "") -> tuple[str, str, Field]:
    if "." in name:
        prefix, _, bare = name.partition(".")
        if prefix.lower() not in (table.name.lower(), alias.lower()):
            raise QueryError(f"The multi-part identifier '{name}' could not be bound.")
        name = bare
    found = table.fields.get(name.lower())
    if found is None:
        raise QueryError(f"Invalid column name '{name}'.")
    return found


def _string_key(value: Any) -> str:
    return str(value if value is not None else "").casefold()


def _literal_key(fld: Field, cond: Condition) -> Any:
    kind = fld.kind
    text = cond.value
    if kind == "datetime":
        try:
            dt = parse_date(text)
        except ValueError:
            raise QueryError(
                f"Conversion failed when converting date and/or time from character string '{text}'."
            ) from None
        return date_key(dt.isoformat()) if dt is not None else date_key("")
    if kind in ("int32", "int64", "double"):
        try:
            return float(text)
        except ValueError:
            raise QueryError(f"Conversion failed when converting the value '{text}' to a number.") from None
    if kind == "bool":
        low = text.strip().lower()
        if low in ("1", "true", "yes"):
            return 1
        if low in ("0", "false", "no"):
            return 0
        raise QueryError(f"Conversion failed when converting the value '{text}' to a bit.")
    if kind == "enum":
        if not cond.quoted or text.strip().lstrip("-").isdigit():
            try:
                return int(float(text))
            except ValueError:
                pass
        for index, value in enumerate(fld.enum):
            if value.lower() == text.strip().lower():
                return index
        return -1  # no row has it
    return text.casefold()


def _value_key(fld: Field) -> Callable[[Any], Any]:
    kind = fld.kind
    if kind == "datetime":
        return lambda v: date_key(v or "")
    if kind in ("int32", "int64", "double"):
        return lambda v: float(v or 0)
    if kind == "bool":
        return lambda v: 1 if v else 0
    if kind == "enum":
        index = {value: i for i, value in enumerate(fld.enum)}
        return lambda v: index.get(v, -1)
    return _string_key


_COMPARE: dict[str, Callable[[Any, Any], bool]] = {
    "=": lambda a, b: a == b,
    "<>": lambda a, b: a != b,
    "!=": lambda a, b: a != b,
    ">": lambda a, b: a > b,
    ">=": lambda a, b: a >= b,
    "<": lambda a, b: a < b,
    "<=": lambda a, b: a <= b,
}


def compile_query(query: Query, table: TableDef, alias: str = "") -> tuple[
    Callable[[dict], bool], Callable[[dict], Any] | None, bool, list[tuple[str, str]] | None
]:
    """Check names/literals against the table.

    Returns (predicate, sort key or None, descending, [(column name, stored key)] or None for *).
    """
    tests: list[Callable[[dict], bool]] = []
    for cond in query.where:
        _, key, fld = _resolve(table, cond.field, alias)
        literal = _literal_key(fld, cond)
        to_key = _value_key(fld)
        compare = _COMPARE[cond.op]
        read = table.read

        def test(rec: dict, key=key, literal=literal, to_key=to_key, compare=compare, read=read) -> bool:
            return compare(to_key(read(rec, key)), literal)

        tests.append(test)

    def predicate(rec: dict) -> bool:
        return all(t(rec) for t in tests)

    sort_key = None
    descending = False
    if query.order:
        _, key, fld = _resolve(table, query.order[0], alias)
        to_key = _value_key(fld)
        read = table.read
        descending = query.order[1]

        def sort_key(rec: dict, key=key, to_key=to_key, read=read) -> Any:
            return to_key(read(rec, key))

    columns = None
    if query.columns is not None:
        columns = [_resolve(table, name, alias)[:2] for name in query.columns]
    return predicate, sort_key, descending, columns


def run(query: Query, table: TableDef, rows: Iterable[dict], alias: str = "") -> tuple[
    list[dict], list[tuple[str, str]] | None
]:
    """(every matching record as stored, ordered as asked - ties keep id order; the projection)."""
    predicate, sort_key, descending, columns = compile_query(query, table, alias)
    matched = [rec for rec in rows if predicate(rec)] if query.where else list(rows)
    if sort_key is not None:
        matched.sort(key=sort_key, reverse=descending)
    return matched, columns
