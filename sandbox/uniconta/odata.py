"""The OData query options the sandbox understands: `$filter`, `$orderby`, `$select`, `$top`, `$skip`.

Supported `$filter` syntax (reference §1b, support.uniconta.com "OData filter function"):
  comparisons `<Prop> eq|ne|gt|ge|lt|le <literal>`, joined with `and`, `or` (only between values of the
  same property, as Uniconta documents) and parentheses. Literals: `'text'` (`''` escapes a quote),
  numbers, `true`/`false`, `null`, `datetime'2024-01-01T00:00:00'`.
Everything else (functions such as `contains()`, `not`, arithmetic, property paths, comparing a string
property with a number ...) raises ODataError, answered as 400 with its message.

Property names are case-sensitive, as in OData. Strings compare ordinally (case-sensitive); dates
compare as instants (naive = UTC); `null` only with eq/ne; a null value is never gt/ge/lt/le anything.

"At most 40 OR values per server-side filter" (reference §1a/§4, conf. M: rmja/unicontarest
QueryController.cs): `parse_filter(..., max_or=40)` counts the comparisons that take part in an `or`
(in every `or` of the filter together, the strict reading) and refuses more with ODataError.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sandbox.uniconta.entities import Prop, parse_datetime

Getter = Callable[[dict], Any]
Resolver = Callable[[str], tuple[Prop, Getter] | None]
Predicate = Callable[[dict], bool]


@dataclass
class _Expr:
    pred: Predicate
    props: set[str]
    leaves: int       # comparisons in the expression
    or_values: int    # of those, the ones that are operands of an `or` (directly or nested)

OPERATORS = ("eq", "ne", "gt", "ge", "lt", "le")
_TOKEN = re.compile(r"""
    (?P<ws>\s+)
  | (?P<datetime>datetime'(?P<dt>[^']*)')
  | (?P<string>'(?:[^']|'')*')
  | (?P<number>-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?[mMdDlLfF]?)(?![A-Za-z0-9_])
  | (?P<lparen>\()
  | (?P<rparen>\))
  | (?P<comma>,)
  | (?P<ident>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<other>.)
""", re.VERBOSE)


class ODataError(ValueError):
    """Unsupported or malformed query option; the message says what is wrong."""


@dataclass
class _Tok:
    kind: str
    text: str
    pos: int
    value: Any = None


@dataclass
class _Literal:
    kind: str   # string | number | bool | null | datetime
    value: Any
    text: str


def _tokenize(text: str) -> list[_Tok]:
    tokens: list[_Tok] = []
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        assert kind is not None
        if kind == "dt":  # pragma: no cover - nested group never ends a match
            continue
        if kind == "ws":
            continue
        raw = m.group(0)
        if kind == "datetime":
            parsed = parse_datetime(m.group("dt"))
            if parsed is None:
                raise ODataError(f"$filter: invalid datetime literal {raw} at position {m.start()}")
            tokens.append(_Tok("literal", raw, m.start(), _Literal("datetime", parsed, raw)))
        elif kind == "string":
            tokens.append(_Tok("literal", raw, m.start(), _Literal("string", raw[1:-1].replace("''", "'"), raw)))
        elif kind == "number":
            digits = raw.rstrip("mMdDlLfF")
            value: Any = float(digits) if any(c in digits for c in ".eE") else int(digits)
            tokens.append(_Tok("literal", raw, m.start(), _Literal("number", value, raw)))
        elif kind == "ident":
            low = raw.lower()
            if low in ("true", "false"):
                tokens.append(_Tok("literal", raw, m.start(), _Literal("bool", low == "true", raw)))
            elif low == "null":
                tokens.append(_Tok("literal", raw, m.start(), _Literal("null", None, raw)))
            else:
                tokens.append(_Tok("ident", raw, m.start()))
        elif kind == "other":
            if raw == "'":
                raise ODataError(f"$filter: unterminated string literal at position {m.start()}")
            raise ODataError(f"$filter: unexpected character {raw!r} at position {m.start()}")
        else:
            tokens.append(_Tok(kind, raw, m.start()))
    return tokens


class _FilterParser:
    def __init__(self, text: str, resolve: Resolver, entity: str) -> None:
        self.text = text
        self.tokens = _tokenize(text)
        self.pos = 0
        self.resolve = resolve
        self.entity = entity

    def peek(self) -> _Tok | None:
        return self.tokens[self.pos] if self.pos < len(self.tokens) else None

    def take(self) -> _Tok:
        tok = self.peek()
        if tok is None:
            raise ODataError("$filter: unexpected end of expression")
        self.pos += 1
        return tok

    def keyword(self, word: str) -> bool:
        tok = self.peek()
        if tok is not None and tok.kind == "ident" and tok.text.lower() == word:
            if tok.text != word:
                raise ODataError(f"$filter: operators are lower case ({word!r}, not {tok.text!r})")
            self.pos += 1
            return True
        return False

    def parse(self) -> _Expr:
        if not self.tokens:
            raise ODataError("$filter: empty expression")
        expr = self.parse_or()
        tok = self.peek()
        if tok is not None:
            raise ODataError(f"$filter: unexpected {tok.text!r} at position {tok.pos}")
        return expr

    def parse_or(self) -> _Expr:
        parts = [self.parse_and()]
        while self.keyword("or"):
            parts.append(self.parse_and())
        if len(parts) == 1:
            return parts[0]
        props = set().union(*(p.props for p in parts))
        if len(props) > 1:
            raise ODataError("$filter: 'or' is only supported between values of the same property "
                             f"(got {', '.join(sorted(props))})")
        preds = [p.pred for p in parts]
        leaves = sum(p.leaves for p in parts)
        return _Expr(lambda rec: any(p(rec) for p in preds), props, leaves, leaves)

    def parse_and(self) -> _Expr:
        parts = [self.parse_primary()]
        while self.keyword("and"):
            parts.append(self.parse_primary())
        if len(parts) == 1:
            return parts[0]
        preds = [p.pred for p in parts]
        return _Expr(lambda rec: all(p(rec) for p in preds), set().union(*(p.props for p in parts)),
                     sum(p.leaves for p in parts), sum(p.or_values for p in parts))

    def parse_primary(self) -> _Expr:
        tok = self.take()
        if tok.kind == "lparen":
            inner = self.parse_or()
            close = self.take()
            if close.kind != "rparen":
                raise ODataError(f"$filter: expected ')' at position {close.pos}")
            return inner
        if tok.kind != "ident":
            raise ODataError(f"$filter: expected a property name at position {tok.pos}, got {tok.text!r}")
        nxt = self.peek()
        if tok.text.lower() == "not":
            raise ODataError("$filter: 'not' is not supported")
        if nxt is not None and nxt.kind == "lparen":
            raise ODataError(f"$filter: function {tok.text}() is not supported")
        if nxt is not None and nxt.kind == "other":  # pragma: no cover - tokenizer raises first
            raise ODataError(f"$filter: unexpected {nxt.text!r}")
        found = self.resolve(tok.text)
        if found is None:
            raise ODataError(f"$filter: could not find a property named '{tok.text}' on type '{self.entity}'")
        prop, getter = found
        op_tok = self.take()
        op = op_tok.text
        if op_tok.kind != "ident" or op.lower() not in OPERATORS:
            raise ODataError(f"$filter: expected one of {', '.join(OPERATORS)} after {tok.text}, got {op!r}")
        if op not in OPERATORS:
            raise ODataError(f"$filter: operators are lower case ({op.lower()!r}, not {op!r})")
        lit_tok = self.take()
        if lit_tok.kind != "literal":
            raise ODataError(f"$filter: expected a literal after '{tok.text} {op}' at position {lit_tok.pos}, "
                             f"got {lit_tok.text!r}")
        return _Expr(_comparison(prop, getter, op, lit_tok.value), {prop.name}, 1, 0)


_CMP: dict[str, Callable[[Any, Any], bool]] = {
    "eq": lambda a, b: a == b, "ne": lambda a, b: a != b, "gt": lambda a, b: a > b,
    "ge": lambda a, b: a >= b, "lt": lambda a, b: a < b, "le": lambda a, b: a <= b,
}


def date_key(value: str | None) -> str | None:
    """A stored date/date-time string -> fixed-width `YYYY-MM-DDTHH:MM:SS.ffffff` that sorts as time."""
    if value is None:
        return None
    if len(value) >= 26 and value[19] == ".":
        return value[:26]
    return value[:19] + ".000000"


def _dt_key(value: datetime) -> str:
    return value.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _comparison(prop: Prop, getter: Getter, op: str, lit: _Literal) -> Predicate:
    name = prop.name
    if lit.kind == "null":
        if op not in ("eq", "ne"):
            raise ODataError(f"$filter: null can only be compared with eq or ne ({name} {op} null)")
        if op == "eq":
            return lambda rec: getter(rec) is None
        return lambda rec: getter(rec) is not None
    cmp = _CMP[op]
    kind = prop.type
    if kind in ("str", "enum"):
        if lit.kind != "string":
            raise ODataError(f"$filter: {name} is a string property; compare it with a quoted literal "
                             f"('...'), not {lit.text}")
        target = lit.value
        return lambda rec: (v := getter(rec)) is not None and cmp(v, target)
    if kind in ("int", "float"):
        if lit.kind != "number":
            raise ODataError(f"$filter: {name} is a number property; compare it with a number, not {lit.text}")
        target = lit.value
        return lambda rec: (v := getter(rec)) is not None and cmp(v, target)
    if kind == "bool":
        if lit.kind != "bool":
            raise ODataError(f"$filter: {name} is a boolean property; compare it with true or false, "
                             f"not {lit.text}")
        if op not in ("eq", "ne"):
            raise ODataError(f"$filter: a boolean property can only be compared with eq or ne ({name} {op})")
        target = lit.value
        return lambda rec: cmp(bool(getter(rec)), target)
    if kind in ("date", "datetime"):
        if lit.kind != "datetime":
            raise ODataError(f"$filter: {name} is a date property; compare it with "
                             f"datetime'YYYY-MM-DDTHH:MM:SS', not {lit.text}")
        target = _dt_key(lit.value)
        return lambda rec: (v := date_key(getter(rec))) is not None and cmp(v, target)
    raise ODataError(f"$filter: {name} cannot be filtered")  # pragma: no cover


def parse_filter(text: str, resolve: Resolver, entity: str, *, max_or: int = 0) -> Predicate:
    """Compile a `$filter` expression into a predicate over stored records.

    `max_or` > 0 refuses a filter with more comparisons joined by `or` than that.
    """
    expr = _FilterParser(text, resolve, entity).parse()
    if max_or and expr.or_values > max_or:
        raise ODataError(f"$filter: {expr.or_values} values are joined with 'or'; at most {max_or} OR values "
                         "are allowed in one filter")
    return expr.pred


def parse_orderby(text: str, resolve: Resolver, entity: str) -> list[tuple[Prop, Getter, bool]]:
    """`Name desc, Account` -> [(prop, getter, descending), ...]."""
    result = []
    if not text.strip():
        raise ODataError("$orderby: empty")
    for part in text.split(","):
        words = part.split()
        if not words or len(words) > 2:
            raise ODataError(f"$orderby: expected 'Property [asc|desc]', got {part.strip()!r}")
        found = resolve(words[0])
        if found is None:
            raise ODataError(f"$orderby: could not find a property named '{words[0]}' on type '{entity}'")
        direction = words[1] if len(words) == 2 else "asc"
        if direction not in ("asc", "desc"):
            raise ODataError(f"$orderby: direction must be asc or desc, got {direction!r}")
        result.append((found[0], found[1], direction == "desc"))
    return result


def sort_records(records: list[dict], keys: list[tuple[Prop, Getter, bool]]) -> list[dict]:
    """Stable multi-key sort; nulls first in ascending order (as SQL Server does)."""
    out = list(records)
    for prop, getter, desc in reversed(keys):
        if prop.type in ("date", "datetime"):
            def key(rec: dict, g: Getter = getter) -> tuple:
                v = date_key(g(rec))
                return (0, "") if v is None else (1, v)
        elif prop.type == "bool":
            def key(rec: dict, g: Getter = getter) -> tuple:
                return (1, bool(g(rec)))
        elif prop.type in ("int", "float"):
            def key(rec: dict, g: Getter = getter) -> tuple:
                v = g(rec)
                return (0, 0) if v is None else (1, v)
        else:
            def key(rec: dict, g: Getter = getter) -> tuple:
                v = g(rec)
                return (0, "") if v is None else (1, v)
        out.sort(key=key, reverse=desc)
    return out


def parse_select(text: str, resolve: Resolver, entity: str) -> list[str]:
    names = []
    for part in text.split(","):
        name = part.strip()
        if name == "*":
            return []
        found = resolve(name)
        if found is None:
            raise ODataError(f"$select: could not find a property named '{name}' on type '{entity}'")
        names.append(found[0].name)
    return names


def parse_count(name: str, text: str) -> int:
    """A `$top` / `$skip` value: a non-negative integer."""
    if not re.fullmatch(r"\d{1,9}", text.strip()):
        raise ODataError(f"{name}: must be a non-negative integer, got {text!r}")
    return int(text)


# -- XML (what the feed answers without `Accept: application/json`) -----------------------------------
_EDM = {"str": "Edm.String", "enum": "Edm.String", "int": "Edm.Int64", "float": "Edm.Double",
        "bool": "Edm.Boolean", "date": "Edm.DateTime", "datetime": "Edm.DateTime"}


def _xml_escape(text: str) -> str:
    return (text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;"))


def _xml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return _xml_escape(str(value))


def atom_feed(entity: str, base: str, rows: list[dict], types: dict[str, str], next_link: str | None,
              count: int | None) -> str:
    """A minimal OData Atom feed of `rows` (property name -> value, in order)."""
    out = ['<?xml version="1.0" encoding="utf-8"?>',
           f'<feed xml:base="{_xml_escape(base)}" xmlns="http://www.w3.org/2005/Atom" '
           'xmlns:d="http://schemas.microsoft.com/ado/2007/08/dataservices" '
           'xmlns:m="http://schemas.microsoft.com/ado/2007/08/dataservices/metadata">',
           f"<title>{_xml_escape(entity)}</title>"]
    if count is not None:
        out.append(f"<m:count>{count}</m:count>")
    for row in rows:
        out.append('<entry><content type="application/xml"><m:properties>')
        for name, value in row.items():
            edm = types.get(name, "Edm.String")
            if value is None:
                out.append(f'<d:{name} m:type="{edm}" m:null="true"/>')
            else:
                out.append(f'<d:{name} m:type="{edm}">{_xml_value(value)}</d:{name}>')
        out.append("</m:properties></content></entry>")
    if next_link:
        out.append(f'<link rel="next" href="{_xml_escape(next_link)}"/>')
    out.append("</feed>")
    return "".join(out)


def service_document_xml(base: str, names: list[str]) -> str:
    items = "".join(f'<collection href="{n}"><atom:title>{n}</atom:title></collection>' for n in names)
    return ('<?xml version="1.0" encoding="utf-8"?>'
            f'<service xml:base="{_xml_escape(base)}" xmlns="http://www.w3.org/2007/app" '
            'xmlns:atom="http://www.w3.org/2005/Atom"><workspace><atom:title>Default</atom:title>'
            f"{items}</workspace></service>")


def metadata_xml(entities: list[tuple[str, list[Prop]]]) -> str:
    """A CSDL document: one EntityType (key RowId) and EntitySet per entity."""
    types = []
    sets = []
    for name, props in entities:
        fields = "".join(
            f'<Property Name="{p.name}" Type="{_EDM[p.type]}" Nullable="{"true" if p.nullable else "false"}"/>'
            for p in props)
        types.append(f'<EntityType Name="{name}"><Key><PropertyRef Name="RowId"/></Key>{fields}</EntityType>')
        sets.append(f'<EntitySet Name="{name}" EntityType="Uniconta.{name}"/>')
    return ('<?xml version="1.0" encoding="utf-8"?>'
            '<edmx:Edmx Version="1.0" xmlns:edmx="http://schemas.microsoft.com/ado/2007/06/edmx">'
            '<edmx:DataServices><Schema Namespace="Uniconta" xmlns="http://schemas.microsoft.com/ado/2009/11/edm">'
            + "".join(types)
            + '<EntityContainer Name="Uniconta">' + "".join(sets) + "</EntityContainer>"
            "</Schema></edmx:DataServices></edmx:Edmx>")
