"""Shared parts of the two-way flows (users ↔ employees, persons ↔ contacts).

- Projections: both sides are mapped to the same few field names ("name", "email",
  "mobile", "title") and compared with the normalizers below.
- Merge: `sync.merge` with the last synced projection of the pair as the base; a
  conflict is journaled with both values. After a sync the base equals both sides,
  so our own write coming back as a webhook finds nothing to do (echo suppression).
- Locks: a handler only writes records whose job lock it holds — its own (taken by
  the job) and the counterpart's (taken here, `Locks.hold`). Two events of one pair
  therefore never run their merge at the same time, whatever the interleaving, and
  every record is read only while its lock is held, so a merge never sees a stale side.
- First link by e-mail: `decide()` links only a unique candidate; two records with the
  same address on one side are an ambiguity for review (`sync.review`).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from contextlib import ExitStack
from datetime import datetime
from types import TracebackType
from typing import Any, TypeVar

from sync.clients.webcrm import parse_time
from sync.events import Event
from sync.flows import Result, merge
from sync.flows.merge import BaseStore, MergeResult
from sync.runtime import ConnectionContext
from sync.state import fingerprints, journal
from sync.state.locks import record_lock

Record = TypeVar("Record", bound=Mapping[str, Any])
_SPACES = re.compile(r"\s+")
_PHONE_NOISE = re.compile(r"[\s\-().]")


def name(value: Any) -> str:
    """Names compare with runs of white space collapsed."""
    return _SPACES.sub(" ", str(value or "")).strip()


def phone(value: Any) -> str:
    """Phone numbers compare without spaces, dashes, dots and brackets ("+45 12 34" = "+451234")."""
    return _PHONE_NOISE.sub("", str(value or ""))


NORMALIZERS: dict[str, merge.Normalizer] = {
    "name": name,
    "email": merge.email,
    "mobile": phone,
    "title": merge.plain,
}


def normal(projection: Mapping[str, Any]) -> dict[str, Any]:
    """A projection in comparison form (what fingerprints and equality are computed on)."""
    return {k: NORMALIZERS.get(k, merge.plain)(v) for k, v in projection.items()}


def side_fingerprint(projection: Mapping[str, Any], **extras: Any) -> str:
    """Fingerprint of one side as last synced: the normalised projection plus link/status extras."""
    return fingerprints.of({**normal(projection), **{f"_{k}": "" if v is None else str(v) for k, v in extras.items()}})


def text(value: Any) -> str:
    """A value as written to the other system: a trimmed string ("" for null)."""
    return "" if value is None else str(value).strip()


def as_id(value: Any) -> int | None:
    """A cross-reference field's value as a positive int id, or None (empty, 0 or not a number)."""
    raw = str(value if value is not None else "").strip()
    if raw.endswith(".0"):  # a Double user field
        raw = raw[:-2]
    return int(raw) if raw.isdigit() and int(raw) > 0 else None


def uniconta_time(value: Any) -> datetime | None:
    """Uniconta's `UpdatedAt` (ISO-8601, `Z` or offset; naive = UTC)."""
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def webcrm_time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except ValueError:
        return None


def comparable_times(webcrm_at: datetime | None, uniconta_at: datetime | None
                     ) -> tuple[datetime | None, datetime | None]:
    """webCRM stamps whole seconds; compare Uniconta's stamp at the same precision so a later
    webCRM edit in the same second is not beaten by Uniconta's fraction (a tie goes to webCRM)."""
    if webcrm_at is not None and uniconta_at is not None and webcrm_at.microsecond == 0:
        uniconta_at = uniconta_at.replace(microsecond=0)
    return webcrm_at, uniconta_at


class _Unknown:
    """A base value equal to nothing: the field differs and neither side is known to be unchanged."""

    def __repr__(self) -> str:
        return "<unknown>"

    def __str__(self) -> str:
        return "\x00unknown"


UNKNOWN = _Unknown()


def first_link_base(webcrm: Mapping[str, Any], uniconta: Mapping[str, Any]) -> dict[str, Any]:
    """The base for a pair that has none (first link, or Redis lost its state).

    A field filled on one side and empty on the other is copied to the empty side (the
    empty side counts as unchanged); equal fields need nothing; two different non-empty
    values are a real conflict for the policy.
    """
    base: dict[str, Any] = {}
    for field in set(webcrm) | set(uniconta):
        norm = NORMALIZERS.get(field, merge.plain)
        w, u = norm(webcrm.get(field)), norm(uniconta.get(field))
        if w == u or w in ("", None):
            base[field] = webcrm.get(field)
        elif u in ("", None):
            base[field] = uniconta.get(field)
        else:
            base[field] = UNKNOWN
    return base


def merge_pair(ctx: ConnectionContext, entity: str, base: Mapping[str, Any] | None, webcrm: Mapping[str, Any],
               uniconta: Mapping[str, Any], *, webcrm_at: datetime | None, uniconta_at: datetime | None
               ) -> MergeResult:
    """Three-way merge of a pair's projections; conflicts are journaled with both values."""
    fields = set(webcrm) | set(uniconta)
    base = first_link_base(webcrm, uniconta) if base is None else {k: base.get(k) for k in fields}
    webcrm_at, uniconta_at = comparable_times(webcrm_at, uniconta_at)
    policy = ctx.connection.conflict_policy
    result = merge.merge(base, webcrm, uniconta, policy=policy, webcrm_changed_at=webcrm_at,
                         uniconta_changed_at=uniconta_at, normalizers=NORMALIZERS)
    for c in result.conflicts:
        journal.note("conflict", entity=entity, field=c.field, webcrm=c.webcrm, uniconta=c.uniconta,
                     base=None if isinstance(c.base, _Unknown) else c.base, winner=c.winner, policy=policy,
                     webcrm_changed_at=webcrm_at, uniconta_changed_at=uniconta_at)
    return result


def bases(ctx: ConnectionContext) -> BaseStore:
    return BaseStore(ctx.redis, ctx.connection.id)


def decide(candidates: list[Any], peers: list[Any]) -> str:
    """First link by e-mail: "link" one unique counterpart, "create" when there is none, or
    "ambiguous" when the address is not unique on either side (nothing is linked then)."""
    if len(candidates) > 1 or (candidates and peers):
        return "ambiguous"
    return "link" if candidates else "create"


def same_email(records: Iterable[Record], field: str, address: str) -> list[Record]:
    """The records whose `field` holds `address` (compared trimmed and case-insensitively)."""
    wanted = merge.email(address)
    if not wanted:
        return []
    return [r for r in records if merge.email(r.get(field)) == wanted]


FULL_READ_ORIGINS = ("resync", "backfill")  # never take the fingerprint shortcut


def unchanged(ctx: ConnectionContext, event: Event, entity: str, system: str, key: str | int,
              fingerprint: str) -> bool:
    """A linked record whose synced fields are as we last left them: our own echo, or a no-op."""
    return event.origin not in FULL_READ_ORIGINS and ctx.fingerprints.get(entity, system, key) == fingerprint


def linked_counterpart(locks: Locks, kind: str, key: str | int, read: Callable[[], dict[str, Any] | None],
                       claimed_by: Callable[[dict[str, Any]], Any], exists: Callable[[Any], bool], *,
                       side: str, own: str | int) -> dict[str, Any] | Result:
    """The webCRM record (`kind` `key`) that the Uniconta record `side` `own` links to, read under its
    lock; a "skipped" Result when it is gone or claims another Uniconta record that still exists."""
    locks.hold(kind, key)
    other = read()
    if other is None:
        journal.note(f"linked-{kind}-missing", **{side: own, kind: key})
        return Result("skipped", {"reason": f"linked webCRM {kind} {key} not found", side: own})
    claimed = claimed_by(other)
    if claimed not in (None, "", own) and exists(claimed):
        journal.note("link-conflict", **{side: own, kind: key, f"{kind}_links_to": claimed})
        return Result("skipped", {"reason": f"{kind} {key} is linked to {side} {claimed}", side: own})
    return other


class Locks:
    """The job locks of the counterpart records a handler reads and writes, held until the end.

    The job already holds the event record's lock; taking it again would raise LockBusy on
    ourselves, so it is skipped. `LockBusy` from another worker propagates: the job retries.
    """

    def __init__(self, ctx: ConnectionContext, event: Event) -> None:
        self.ctx = ctx
        self.own = (event.entity, str(event.record_id))
        self.held: set[tuple[str, str]] = set()
        self._stack = ExitStack()

    def hold(self, entity: str, record_id: str | int) -> None:
        key = (entity, str(record_id))
        if key == self.own or key in self.held:
            return
        self._stack.enter_context(record_lock(self.ctx.redis, self.ctx.connection.id, entity, str(record_id)))
        self.held.add(key)

    def __enter__(self) -> Locks:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stack.close()
