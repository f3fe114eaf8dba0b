"""`syncctl links rebuild`: refill the Redis link cache from the cross-references in both systems.

The truth of every link lives in webCRM and Uniconta (a webCRM field and a Uniconta
field hold each other's key); Redis only caches it. After losing Redis this reads
those fields and binds every pair again, so the next syncs find their targets in the
cache instead of searching (the flows would find them anyway, but slower).

Pairs both systems agree on, or that only one system records, are bound; pairs the two
systems contradict (A→X in webCRM, A→Y in Uniconta) or that two records claim are left
out and reported, for a person to fix in the systems.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from sync.clients.errors import Permanent
from sync.config import Connection
from sync.runtime import ConnectionContext
from sync.state import keys
from sync.state.ratelimit import priority

log = logging.getLogger(__name__)

Pairs = Iterator[tuple[str, str]]  # (webCRM id, Uniconta key)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    return str(value).strip()


def _webcrm_pairs(ctx: ConnectionContext, table: str, collection: str, id_field: str, link_field: str) -> Pairs:
    script = f"SELECT {id_field}, {link_field} FROM {table} WHERE {link_field} <> '' ORDER BY {id_field}"  # noqa: S608
    try:
        rows: Iterable[dict[str, Any]] = list(ctx.webcrm.query(script, page_size=ctx.connection.webcrm.page_size))
    except Permanent as err:
        log.info("webcrm /Queries refused (%s); listing %s", err, collection)
        rows = ctx.webcrm.iter_all(collection)
    for row in rows:
        w, u = _text(row.get(id_field)), _text(row.get(link_field))
        if w and u and u != "-":
            yield w, u


def _uniconta_pairs(ctx: ConnectionContext, entity: str, link_field: str, key_field: str) -> Pairs:
    for row in ctx.uniconta.odata(entity):
        w, u = _text(row.get(link_field)), _text(row.get(key_field))
        if w and u and w not in ("0", "-"):
            yield w, u


@dataclass(frozen=True)
class LinkSource:
    entity: str  # the link entity the flow binds (ctx.links.bind(entity, ...))
    flow: str
    webcrm: Callable[[ConnectionContext], Pairs] | None
    uniconta: Callable[[ConnectionContext], Pairs] | None


def link_sources(conn: Connection) -> list[LinkSource]:
    o, u, p, d, i = conn.organisations, conn.users, conn.persons, conn.orders, conn.items
    return [
        LinkSource("organisation", "organisations",
                   lambda c: _webcrm_pairs(c, "Organisation", "Organisations", "OrganisationId", o.debtor_number_field),
                   lambda c: _uniconta_pairs(c, "DebtorClientUser", o.uniconta_link_field, "Account")),
        LinkSource("item", "items",
                   lambda c: ((str(r["QuotationLineLinkedDataItemId"]), _text(r.get(i.number_field)))
                              for r in c.webcrm.iter_all("QuotationLines/LinkedData")
                              if r.get("QuotationLineLinkedDataItemId") and _text(r.get(i.number_field)) not in ("",
                                                                                                                "-")),
                   None),
        LinkSource("delivery", "orders",
                   lambda c: _webcrm_pairs(c, "Delivery", "Deliveries", "DeliveryId", "DeliveryErpId"),
                   lambda c: _uniconta_pairs(c, "DebtorOrderClientUser", d.uniconta_link_field, "OrderNumber")),
        LinkSource("user", "users",
                   lambda c: _webcrm_pairs(c, "User", "Users", "UserId", u.webcrm_link_field),
                   lambda c: _uniconta_pairs(c, "EmployeeClientUser", u.uniconta_link_field, "Number")),
        LinkSource("person", "persons",
                   lambda c: _webcrm_pairs(c, "Person", "Persons", "PersonId", p.webcrm_link_field),
                   lambda c: _uniconta_pairs(c, "ContactClientUser", p.uniconta_link_field, "RowId")),
    ]


ENTITIES = ("organisation", "item", "delivery", "user", "person")


def rebuild(ctx: ConnectionContext, entity: str | None = None) -> dict[str, dict[str, Any]]:
    """Rebuild the link cache of one entity (or of every enabled flow); returns a report per entity."""
    report: dict[str, dict[str, Any]] = {}
    for spec in link_sources(ctx.connection):
        if (entity is not None and spec.entity != entity) or not ctx.connection.enabled(spec.flow):
            continue
        with priority("batch"):
            webcrm = list(spec.webcrm(ctx)) if spec.webcrm else []
            uniconta = list(spec.uniconta(ctx)) if spec.uniconta else []
        report[spec.entity] = _bind_all(ctx, spec.entity, webcrm, uniconta)
    return report


def _bind_all(ctx: ConnectionContext, entity: str, webcrm: list[tuple[str, str]],
              uniconta: list[tuple[str, str]]) -> dict[str, Any]:
    claims: dict[str, set[str]] = defaultdict(set)  # webCRM id → Uniconta keys claimed
    sides: dict[tuple[str, str], set[str]] = defaultdict(set)
    for side, found in (("webcrm", webcrm), ("uniconta", uniconta)):
        for w, u in found:
            claims[w].add(u)
            sides[(w, u)].add(side)
    owners: dict[str, set[str]] = defaultdict(set)  # Uniconta key → webCRM ids claiming it
    for w, keys_ in claims.items():
        for u in keys_:
            owners[u].add(w)
    agreeing = one_sided = 0
    conflicts: list[str] = []
    pairs: list[tuple[str, str]] = []
    for w, keys_ in sorted(claims.items()):
        if len(keys_) > 1:
            conflicts.append(f"webCRM {w} ↔ Uniconta {sorted(keys_)} (the systems disagree)")
            continue
        (u,) = keys_
        if len(owners[u]) > 1:
            conflicts.append(f"Uniconta {u} ↔ webCRM {sorted(owners[u])} (claimed twice)")
            continue
        pairs.append((w, u))
        if len(sides[(w, u)]) == 2:
            agreeing += 1
        else:
            one_sided += 1
    r, conn_id = ctx.redis, ctx.connection.id
    pipe = r.pipeline()
    pipe.delete(keys.links(conn_id, entity, "w2u"), keys.links(conn_id, entity, "u2w"))
    if pairs:
        pipe.hset(keys.links(conn_id, entity, "w2u"), mapping=dict(pairs))
        pipe.hset(keys.links(conn_id, entity, "u2w"), mapping={u: w for w, u in pairs})
    pipe.execute()
    return {"linked": len(pairs), "agreeing": agreeing, "one_sided": one_sided, "conflicts": len(conflicts),
            "conflict_examples": sorted(set(conflicts))[:10]}
