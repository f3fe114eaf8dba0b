"""webCRM organisations ↔ Uniconta debtors (the guide's first section; docs/flows/organisations.md).

webCRM → Uniconta: an organisation whose trigger field holds a keyword ("Kunde") becomes a
debtor once its required fields are filled; the debtor number comes from the organisation's
debtor-number field or a configured strategy and is written back in the same sync, and the
debtor carries the organisation id in a user-defined field (the cross-reference we look up
before any insert). Uniconta → webCRM: EAN, payment terms and debtor group are shown in webCRM;
the synced fields are two-way, merged field by field against the last synced state.

Locking convention: every write to a *linked* debtor happens while the organisation's record
lock is held. An organisation event already holds it (the job takes it); a debtor event takes it
(`record_lock(..., "organisation", id)`) before it reads and writes either side; `ensure_debtor`
takes it too. So the two directions of one pair never interleave, and a debtor needs no lock of
its own beyond the one its event's job holds.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

from sync.clients.errors import AuthError, Conflict, NotFound, Permanent, Transient
from sync.clients.uniconta import odata_literal
from sync.clients.webcrm import parse_time, sql_literal
from sync.config import OrganisationFlow
from sync.countries import Countries
from sync.events import Event
from sync.flows import FlowError, Result
from sync.flows.merge import BaseStore, email, merge
from sync.flows.organisations_mapping import (
    LABELS,
    SHOWN,
    STATUS_PREFIX,
    UNICONTA_FIELDS,
    WEBCRM_STANDARD,
    Mapped,
    check_account,
    is_customer,
    map_uniconta,
    map_webcrm,
    missing_text,
    next_free_account,
    shown_values,
    status_text,
    synced_fields,
    text,
    uniconta_changes,
    uniconta_insert_body,
    webcrm_changes,
    webcrm_field,
)
from sync.runtime import ConnectionContext
from sync.state import fingerprints, journal, keys, waiting
from sync.state.locks import record_lock

ENTITY = "organisation"
ORGANISATIONS = "Organisations"
DEBTOR = "DebtorClientUser"  # user-defined fields (the cross-reference) exist only on ...ClientUser
MAX_ALLOCATIONS = 25
FULL_READ_ORIGINS = ("resync", "backfill", "dependency")


class NotReady(Exception):
    """The organisation cannot have a debtor yet (not a customer, fields missing, ...).

    Not a `FlowError`: a caller parks its record on `"organisation:<id>"` and returns "waiting";
    the organisation flow releases it once the debtor exists.
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass
class Outcome:
    action: str
    account: str | None = None
    reason: str = ""
    detail: dict[str, Any] = field(default_factory=dict)

    def result(self) -> Result:
        detail = dict(self.detail)
        if self.account:
            detail.setdefault("account", self.account)
        if self.reason:
            detail.setdefault("reason", self.reason)
        return Result(self.action, detail)


# --------------------------------------------------------------------------- cross-flow API


def linked_debtor(ctx: ConnectionContext, organisation_id: int | str) -> str | None:
    """The Account of the organisation's debtor, or None if it has none (no lock, no writes)."""
    org_id = int(organisation_id)
    debtor = _cached_debtor(ctx, org_id)
    if debtor is None:
        rows = _debtors_by_link(ctx, org_id)
        if not rows:
            return None
        debtor = _pick(rows, "")
        ctx.links.bind(ENTITY, org_id, text(debtor.get("Account")))
    return text(debtor.get("Account"))


def ensure_debtor(ctx: ConnectionContext, organisation_id: int | str) -> str:
    """The organisation's debtor Account, creating the debtor if the organisation qualifies.

    Takes the organisation's record lock (raises `LockBusy` if another job holds it: the caller's
    job then retries). Raises `NotReady(reason)` when the organisation is not a customer or
    misses required fields, and the clients' errors as usual.
    """
    org_id = int(organisation_id)
    conn = ctx.connection.id
    with record_lock(ctx.redis, conn, ENTITY, str(org_id)), journal.recording(ctx.redis, conn, ENTITY, str(org_id)):
        debtor = _cached_debtor(ctx, org_id)
        if debtor is not None:
            return text(debtor.get("Account"))
        journal.note("started", origin="dependency", reason="another record needs this organisation's debtor")
        org = ctx.webcrm.get(ORGANISATIONS, org_id)
        outcome = _sync_pair(ctx, org)
        journal.note("done", action=outcome.action, **outcome.result().detail)
    if outcome.account:
        return outcome.account
    raise NotReady(outcome.reason or f"organisation {org_id} has no debtor in Uniconta")


# --------------------------------------------------------------------------- handlers


def sync_organisation(ctx: ConnectionContext, event: Event) -> Result:
    """A webCRM organisation changed: re-read it and sync the pair (the job holds its lock)."""
    cfg = ctx.connection.organisations
    org_id = int(event.record_id)
    try:
        org = ctx.webcrm.get(ORGANISATIONS, org_id)
    except NotFound:
        return _organisation_gone(ctx, org_id).result()
    snapshot = fingerprints.of(webcrm_snapshot(org, cfg))
    if event.origin not in FULL_READ_ORIGINS and ctx.fingerprints.get(ENTITY, "webcrm", org_id) == snapshot:
        return Result("unchanged", {"reason": "no synced field changed since the last sync (or our own write)"})
    return _sync_pair(ctx, org).result()


def sync_debtor(ctx: ConnectionContext, event: Event) -> Result:
    """A Uniconta debtor changed (Change URL): sync its organisation under the organisation's lock."""
    cfg = ctx.connection.organisations
    rid = event.record_id
    if rid.startswith("#"):
        debtor = ctx.uniconta.get_one(DEBTOR, "RowId", rid[1:])
        account = text(debtor.get("Account")) if debtor else None
    else:
        account = rid
        debtor = _read_debtor(ctx, account)
    if debtor is None:
        if account is None:
            return Result("absent", {"reason": "debtor not found in Uniconta (no Account in the event)"})
        return _debtor_deleted(ctx, account, event)
    account = text(debtor.get("Account"))
    snapshot = fingerprints.of(uniconta_snapshot(debtor, cfg))
    if event.origin not in FULL_READ_ORIGINS and ctx.fingerprints.get(ENTITY, "uniconta", account) == snapshot:
        return Result("unchanged", {"account": account,
                                    "reason": "no synced field changed since the last sync (or our own write)"})
    org_id = _link_of(debtor, cfg) or ctx.links.webcrm_id(ENTITY, account)
    if not org_id:
        if cfg.create_from_uniconta:
            return _create_organisation(ctx, debtor, event)
        journal.note("not-linked", account=account,
                     reason="created in Uniconta; organisations.create_from_uniconta is off")
        return Result("skipped", {"account": account, "reason": "debtor is not linked to a webCRM organisation, and "
                                  "debtors made in Uniconta are not pushed to webCRM (create_from_uniconta = false)"})
    with record_lock(ctx.redis, ctx.connection.id, ENTITY, str(org_id)):
        try:
            org = ctx.webcrm.get(ORGANISATIONS, int(org_id))
        except NotFound:
            journal.note("organisation-gone", organisation=org_id, account=account)
            return Result("absent", {"account": account, "reason": f"organisation {org_id} no longer exists in webCRM"})
        return _pair_from_debtor_event(ctx, org, account, event)


def _pair_from_debtor_event(ctx: ConnectionContext, org: Mapping[str, Any], account: str, event: Event,
                            *, deleted: str | None = None) -> Result:
    """Sync the pair, journaling its decisions in the *organisation's* journal (the pair's one place to
    look), with a pointer in the debtor's."""
    org_id = str(org["OrganisationId"])
    journal.note("pair", organisation=org_id, journal=f"organisation {org_id}")
    with journal.recording(ctx.redis, ctx.connection.id, ENTITY, org_id):
        journal.note("started", origin=event.origin, via=f"debtor {account} ({event.operation})")
        outcome = _sync_pair(ctx, org, deleted=deleted)
        journal.note("done", action=outcome.action, **outcome.result().detail)
    return outcome.result()


# --------------------------------------------------------------------------- the pair


@dataclass
class _Found:
    debtor: dict[str, Any] | None = None
    gone: str | None = None      # the Account we believed linked, no longer in Uniconta
    adopted: bool = False        # a debtor without cross-reference that is this organisation's


def _sync_pair(ctx: ConnectionContext, org: Mapping[str, Any], *, deleted: str | None = None) -> Outcome:
    """Bring one organisation and its debtor (if any) in line. The organisation's lock is held."""
    cfg = ctx.connection.organisations
    org_id = int(org["OrganisationId"])
    base = BaseStore(ctx.redis, ctx.connection.id).get(ENTITY, org_id)
    customer = is_customer(org, cfg)
    found = _find_debtor(ctx, cfg, org, org_id, customer, base, deleted)
    if found.gone is not None:
        return _unlink(ctx, org, found.gone)
    if found.debtor is None:
        return _not_linked(ctx, org, customer)
    return _linked(ctx, org, found.debtor, base, customer, adopted=found.adopted)


def _find_debtor(ctx: ConnectionContext, cfg: OrganisationFlow, org: Mapping[str, Any], org_id: int,
                 customer: bool, base: Mapping[str, Any] | None, deleted: str | None) -> _Found:
    """The organisation's debtor: the cached link (verified), else the cross-reference in Uniconta."""
    believed = ctx.links.uniconta_key(ENTITY, org_id) or (base or {}).get("_account") or deleted
    number = text(org.get(cfg.debtor_number_field))
    gone = None
    if believed:
        debtor = _read_debtor(ctx, str(believed))
        if debtor is None:
            gone = str(believed)
        else:
            link = _link_of(debtor, cfg)
            if link == str(org_id):
                return _Found(debtor)
            if not link and (number == text(believed) or not number):
                journal.note("cross-reference-restored", account=believed, field=cfg.uniconta_link_field)
                return _Found(debtor, adopted=True)
    elif not customer and not number:
        return _Found()  # never linked, not a customer: no Uniconta call at all
    rows = _debtors_by_link(ctx, org_id)
    if rows:
        return _Found(_pick(rows, number))
    if gone:
        return _Found(gone=gone)
    if customer and number and check_account(number) is None:
        debtor = _read_debtor(ctx, number)
        if debtor is not None and not _link_of(debtor, cfg):
            journal.note("adopted", account=number,
                         reason=f"the organisation's {cfg.debtor_number_field} names an existing, unlinked debtor")
            return _Found(debtor, adopted=True)
    return _Found()


def _not_linked(ctx: ConnectionContext, org: Mapping[str, Any], customer: bool) -> Outcome:
    cfg = ctx.connection.organisations
    org_id = int(org["OrganisationId"])
    marker = _marker_key(ctx, org_id)
    if not customer:
        ctx.redis.delete(marker)
        _show_status(ctx, org, "")
        value = text(org.get(cfg.trigger_field))
        return Outcome("skipped", reason=f"organisation {org_id} is not a customer ({cfg.trigger_field} is "
                                         f"{value!r}, not one of {list(cfg.trigger_keywords)})")
    raw = ctx.redis.get(marker)
    deleted = raw.decode() if isinstance(raw, bytes) else raw
    if deleted:
        _show_status(ctx, org, status_text(state=f"debtor {deleted} was deleted"))
        return Outcome("skipped", reason=f"debtor {deleted} was deleted in Uniconta; set {cfg.trigger_field} to "
                                         f"something else and back to {cfg.trigger_keywords[0]!r} to create a new one")
    countries = _countries(cfg)
    mapped = map_webcrm(org, cfg, countries)
    if mapped.missing or mapped.problems:
        return _waiting(ctx, org, mapped.missing, list(mapped.problems.values()))
    account, series_n, problem = _choose_account(ctx, cfg, org, org_id)
    if problem or account is None:
        return _waiting(ctx, org, [], [problem or "no debtor number"], remember=False)
    debtor, problem = _create_debtor(ctx, cfg, org_id, mapped, account, series_n)
    if debtor is None:
        return _waiting(ctx, org, [], [problem or "not created"], remember=False)
    return _linked(ctx, org, debtor, None, customer, created=True)


def _waiting(ctx: ConnectionContext, org: Mapping[str, Any], missing: list[str], problems: list[str],
             *, remember: bool = True) -> Outcome:
    """No debtor yet: journal why, show it in webCRM. `remember=False` when the cause may be fixed in
    Uniconta (the next organisation event must look again even if webCRM did not change)."""
    org_id = int(org["OrganisationId"])
    journal.note("not-ready", missing=[LABELS.get(m, m) for m in missing], problems=problems)
    _show_status(ctx, org, status_text(missing=missing, problems=problems), remember=remember)
    reasons = ([missing_text(missing)] if missing else []) + problems
    return Outcome("waiting", reason=f"organisation {org_id} cannot become a debtor yet: " + "; ".join(reasons),
                   detail={"missing": [LABELS.get(m, m) for m in missing], "problems": problems})


def _linked(ctx: ConnectionContext, org: Mapping[str, Any], debtor: dict[str, Any], base: Mapping[str, Any] | None,
            customer: bool, *, adopted: bool = False, created: bool = False) -> Outcome:
    """Two-way merge of a linked pair, the shown fields, the debtor number and the trigger."""
    cfg = ctx.connection.organisations
    org_id = int(org["OrganisationId"])
    account = text(debtor.get("Account"))
    countries = _countries(cfg)
    mapped = map_webcrm(org, cfg, countries)
    skip = set(mapped.problems)
    w = {k: v for k, v in mapped.values.items() if k not in skip}
    u = {k: v for k, v in map_uniconta(debtor, cfg).items() if k not in skip}
    fields = set(w) | set(u)
    base_values = None if base is None else {k: base.get(k) for k in fields}
    if created:
        base_values = dict(w)  # we just wrote these: Uniconta's own defaults are its changes
    result = merge(base_values, w, u, policy=ctx.connection.conflict_policy,
                   webcrm_changed_at=_time(org.get("OrganisationUpdatedAt")),
                   uniconta_changed_at=_time(debtor.get("UpdatedAt")), normalizers=NORMALIZERS)
    for c in result.conflicts:
        journal.note("conflict", field=c.field, webcrm=c.webcrm, uniconta=c.uniconta, base=c.base, winner=c.winner,
                     policy=ctx.connection.conflict_policy)
    merged = dict(result.merged)
    problems = dict(mapped.problems)

    # Uniconta: GET (done: `debtor` is the full ClientUser record) → modify → PUT the whole record.
    changes = uniconta_changes(result.to_uniconta)
    if adopted:
        changes[cfg.uniconta_link_field] = str(org_id)
    debtor_after = debtor
    if changes:
        _journal_decisions(mapped, set(result.to_uniconta))
        record = {**debtor, **changes}
        try:
            answer = ctx.uniconta.update(DEBTOR, record)
        except Permanent as err:
            if not _field_rejection(err):
                raise
            journal.note("rejected", system="uniconta", field=err.field, error=str(err))
            problems[err.field or "uniconta"] = f"rejected {err.field}"
            for k in result.to_uniconta:
                merged[k] = u.get(k, "")  # not applied: keep what Uniconta holds as the base
        else:
            debtor_after = answer if isinstance(answer, dict) and answer.get("Account") else record
            journal.note("debtor-updated", account=account, fields=sorted(changes))

    # webCRM: shown fields, reverse-mapped changes, debtor number, trigger and status in one PUT.
    desired, back_problems = webcrm_changes(result.to_webcrm, org, cfg, countries)
    for k, text_ in back_problems.items():
        problems[k] = text_
        merged[k] = w.get(k, "")
    if not customer:
        keyword = text((base or {}).get("_trigger")) or cfg.trigger_keywords[0]
        desired[cfg.trigger_field] = keyword
        journal.note("trigger-reverted", field=cfg.trigger_field, value=text(org.get(cfg.trigger_field)),
                     to=keyword, reason=f"the organisation is debtor {account} in Uniconta")
    if text(org.get(cfg.debtor_number_field)) != account:
        if text(org.get(cfg.debtor_number_field)):
            journal.note("debtor-number-restored", field=cfg.debtor_number_field,
                         value=text(org.get(cfg.debtor_number_field)), to=account,
                         reason="a debtor's Account cannot change; rename it in Uniconta")
        desired[cfg.debtor_number_field] = account
    desired.update(shown_values(debtor_after, cfg))
    if cfg.status_field:
        desired[cfg.status_field] = status_text(account=account, problems=problems.values())
    org_after = _write_webcrm(ctx, org, desired)

    trigger = text(org.get(cfg.trigger_field)) if customer else text((base or {}).get("_trigger"))
    BaseStore(ctx.redis, ctx.connection.id).put(ENTITY, org_id, {**merged, "_account": account,
                                                                 "_trigger": trigger or cfg.trigger_keywords[0]})
    ctx.links.bind(ENTITY, org_id, account)
    ctx.fingerprints.put(ENTITY, "webcrm", org_id, fingerprints.of(webcrm_snapshot(org_after, cfg)))
    ctx.fingerprints.put(ENTITY, "uniconta", account, fingerprints.of(uniconta_snapshot(debtor_after, cfg)))
    ctx.redis.delete(_marker_key(ctx, org_id))
    # Orders and persons wait on the organisation; contacts of a not-yet-linked debtor on the debtor.
    released = waiting.release(ctx.redis, ctx.connection.id, f"organisation:{org_id}", ctx.enqueue)
    released += waiting.release(ctx.redis, ctx.connection.id, f"debtor:{account}", ctx.enqueue)
    wrote_webcrm = org_after is not org
    if created:
        action = "created"
    elif adopted:
        action = "linked"
    elif (changes and debtor_after is not debtor) or wrote_webcrm:
        action = "updated"
    else:
        action = "unchanged"
    detail: dict[str, Any] = {"organisation": org_id}
    if result.to_uniconta:
        detail["to_uniconta"] = sorted(result.to_uniconta)
    if result.to_webcrm:
        detail["to_webcrm"] = sorted(result.to_webcrm)
    if result.conflicts:
        detail["conflicts"] = len(result.conflicts)
    if problems:
        detail["problems"] = sorted(problems.values())
    if released:
        detail["released"] = released
    return Outcome(action, account, detail=detail)


def _unlink(ctx: ConnectionContext, org: Mapping[str, Any], account: str) -> Outcome:
    """The linked debtor no longer exists: clear the link on both sides and in Redis."""
    cfg = ctx.connection.organisations
    org_id = int(org["OrganisationId"])
    customer = is_customer(org, cfg)
    desired: dict[str, str] = {prop: "" for prop in shown_values(None, cfg)}
    if text(org.get(cfg.debtor_number_field)) == account:
        desired[cfg.debtor_number_field] = ""
    if cfg.status_field:
        desired[cfg.status_field] = status_text(state=f"debtor {account} was deleted") if customer else ""
    org_after = _write_webcrm(ctx, org, desired)
    if customer:
        # Not re-created while the organisation stays a customer (that would undo the deletion at
        # once); changing the trigger away and back makes a new debtor.
        ctx.redis.set(_marker_key(ctx, org_id), account)
    else:
        ctx.redis.delete(_marker_key(ctx, org_id))
    ctx.links.forget(ENTITY, webcrm_id=org_id)
    ctx.links.forget(ENTITY, uniconta_key=account)
    BaseStore(ctx.redis, ctx.connection.id).forget(ENTITY, org_id)
    ctx.fingerprints.forget(ENTITY, "uniconta", account)
    ctx.fingerprints.put(ENTITY, "webcrm", org_id, fingerprints.of(webcrm_snapshot(org_after, cfg)))
    journal.note("unlinked", account=account, reason="the debtor no longer exists in Uniconta",
                 trigger=text(org.get(cfg.trigger_field)), recreate="after the trigger changes away and back"
                 if customer else "when the organisation becomes a customer again")
    return Outcome("unlinked", None, reason=f"debtor {account} no longer exists in Uniconta; link cleared",
                   detail={"organisation": org_id, "former_account": account})


# --------------------------------------------------------------------------- events without a pair


def _organisation_gone(ctx: ConnectionContext, org_id: int) -> Outcome:
    """Deleted in webCRM (only the UI can): the debtor stays in Uniconta (it may have postings)."""
    account = ctx.links.uniconta_key(ENTITY, org_id)
    ctx.links.forget(ENTITY, webcrm_id=org_id)
    BaseStore(ctx.redis, ctx.connection.id).forget(ENTITY, org_id)
    ctx.fingerprints.forget(ENTITY, "webcrm", org_id)
    journal.note("organisation-gone", account=account, decision="the debtor is kept in Uniconta")
    return Outcome("absent", None, reason="organisation not found in webCRM" +
                   (f"; debtor {account} kept in Uniconta" if account else ""))


def _debtor_deleted(ctx: ConnectionContext, account: str, event: Event) -> Result:
    cfg = ctx.connection.organisations
    org_id = ctx.links.webcrm_id(ENTITY, account) or _organisation_by_number(ctx, cfg, account)
    if org_id is None:
        ctx.fingerprints.forget(ENTITY, "uniconta", account)
        return Result("absent", {"account": account, "reason": "debtor not in Uniconta and not linked"})
    with record_lock(ctx.redis, ctx.connection.id, ENTITY, str(org_id)):
        try:
            org = ctx.webcrm.get(ORGANISATIONS, int(org_id))
        except NotFound:
            ctx.links.forget(ENTITY, uniconta_key=account)
            return Result("absent", {"account": account, "reason": "neither the debtor nor its organisation exist"})
        return _pair_from_debtor_event(ctx, org, account, event, deleted=account)


def _create_organisation(ctx: ConnectionContext, debtor: Mapping[str, Any], event: Event) -> Result:
    """`create_from_uniconta`: a debtor made in Uniconta becomes a webCRM organisation (a customer)."""
    cfg = ctx.connection.organisations
    account = text(debtor.get("Account"))
    org_id = _organisation_by_number(ctx, cfg, account)  # look up before create
    if org_id is None:
        values, problems = webcrm_changes(map_uniconta(debtor, cfg), {}, cfg, _countries(cfg))
        dto: dict[str, Any] = {"OrganisationId": 0, **values, cfg.trigger_field: cfg.trigger_keywords[0],
                               cfg.debtor_number_field: account, **shown_values(debtor, cfg)}
        if cfg.status_field:
            dto[cfg.status_field] = status_text(account=account, problems=problems.values())
        org_id = ctx.webcrm.create(ORGANISATIONS, dto)
        if org_id is None:
            org_id = _organisation_by_number(ctx, cfg, account)
            if org_id is None:
                raise Transient("created organisation not found by its debtor number yet", system="webcrm",
                                method="POST", path="/Organisations")
        journal.note("organisation-created", organisation=org_id, account=account)
    with record_lock(ctx.redis, ctx.connection.id, ENTITY, str(org_id)):
        org = ctx.webcrm.get(ORGANISATIONS, int(org_id))
        return _pair_from_debtor_event(ctx, org, account, event)


# --------------------------------------------------------------------------- creating a debtor


def _choose_account(ctx: ConnectionContext, cfg: OrganisationFlow, org: Mapping[str, Any], org_id: int
                    ) -> tuple[str | None, int | None, str | None]:
    """(account, series number or None, problem): the organisation's own number, or the strategy's."""
    number = text(org.get(cfg.debtor_number_field))
    if number:
        problem = check_account(number)
        if problem:
            return None, None, problem
        if _read_debtor(ctx, number) is not None:  # an unlinked one would have been adopted
            return None, None, f"debtor number {number} belongs to another organisation"
        return number, None, None
    if cfg.debtor_number_strategy == "organisation_id":
        account = f"{cfg.debtor_number_prefix}{org_id}"
        problem = check_account(account)
        if problem is None and _read_debtor(ctx, account) is not None:
            problem = f"debtor number {account} is already used in Uniconta"
        return (None, None, problem) if problem else (account, None, None)
    return _allocate(ctx, cfg, cfg.debtor_number_start)


def _allocate(ctx: ConnectionContext, cfg: OrganisationFlow, at_least: int
              ) -> tuple[str | None, int | None, str | None]:
    """The series' next free number: prefix + n from the start, skipping Accounts used in Uniconta.

    A Redis counter hands each number out once (`_claim`), so records numbered at the same time — by
    other workers, or side by side in a batch — never pick the same one; Uniconta says whether it is
    free. A number already taken means the counter lags behind Uniconta (debtors made by hand): one
    range read (OData) finds the next free number, and the counter moves past it. A duplicate-key
    answer on insert moves on to the next number, as before.
    """
    prefix = cfg.debtor_number_prefix
    n = _claim(ctx, prefix, max(cfg.debtor_number_start, at_least))
    account = f"{prefix}{n}"
    problem = check_account(account)
    if problem:
        return None, None, problem
    if _read_debtor(ctx, account) is None:
        return account, n, None
    flt = f"Account ge {odata_literal(account)} and Account lt {odata_literal(prefix + ':')}"
    try:
        rows = list(ctx.uniconta.odata("DebtorClient", filter=flt))
    except Permanent as err:
        if isinstance(err, AuthError):
            raise
        journal.note("series-query-failed", error=str(err), fallback="reading every debtor's Account")
        rows = list(ctx.uniconta.odata("DebtorClient"))
    used = [text(row.get("Account")) for row in rows]
    account, n = next_free_account(prefix, n, used)
    _claim(ctx, prefix, n)
    problem = check_account(account)
    return (None, None, problem) if problem else (account, n, None)


_CLAIM = """
local current = tonumber(redis.call('GET', KEYS[1]) or '0') or 0
local n = math.max(current, tonumber(ARGV[1]))
redis.call('SET', KEYS[1], n + 1)
return n
"""


def _claim(ctx: ConnectionContext, prefix: str, at_least: int) -> int:
    """Take the series' next number (at least `at_least`) from its counter, atomically."""
    return int(ctx.redis.eval(_CLAIM, 1, _series_key(ctx, prefix), at_least))  # type: ignore[arg-type]


def _create_debtor(ctx: ConnectionContext, cfg: OrganisationFlow, org_id: int, mapped: Mapped, account: str,
                   series_n: int | None) -> tuple[dict[str, Any] | None, str | None]:
    """Insert the debtor with the cross-reference in the body, so a lost answer is found on retry."""
    for _attempt in range(MAX_ALLOCATIONS):
        body = {**uniconta_insert_body(mapped.values), "Account": account, cfg.uniconta_link_field: str(org_id)}
        if cfg.debtor_group:
            body["Group"] = cfg.debtor_group
        try:
            answer = ctx.uniconta.insert(DEBTOR, body)
        except Conflict:
            rows = _debtors_by_link(ctx, org_id)
            if rows:  # ours after all (an earlier attempt whose answer was lost)
                return _pick(rows, account), None
            if series_n is None:
                return None, f"debtor number {account} is already used in Uniconta"
            journal.note("debtor-number-taken", account=account)
            next_account, series_n, problem = _allocate(ctx, cfg, series_n + 1)
            if problem or next_account is None:
                return None, problem
            account = next_account
            continue
        except Permanent as err:
            if not _field_rejection(err):
                raise
            journal.note("rejected", system="uniconta", field=err.field, error=str(err))
            return None, f"rejected {err.field}"
        break
    else:
        raise FlowError(f"no free debtor number found in {MAX_ALLOCATIONS} attempts")
    debtor = answer if isinstance(answer, dict) and text(answer.get("Account")) == account else None
    if debtor is None or cfg.uniconta_link_field not in debtor:
        debtor = _read_debtor(ctx, account)
    if debtor is None:
        raise Transient("created debtor not found by its Account yet", system="uniconta", method="POST",
                        path=f"/api/Entities/Insert/{DEBTOR}")
    if _link_of(debtor, cfg) != str(org_id):
        raise FlowError(f"Uniconta did not keep the user-defined field {cfg.uniconta_link_field} on debtor "
                        f"{account}: create it on Debtor (Tools → User defined fields)")
    if series_n is not None:
        key = _series_key(ctx, cfg.debtor_number_prefix)
        current = ctx.redis.get(key)
        if not current or not str(current).isdigit() or int(current) <= series_n:
            ctx.redis.set(key, series_n + 1)
    _journal_decisions(mapped, set(mapped.values))
    journal.note("debtor-created", account=account, organisation=org_id)
    return debtor, None


# --------------------------------------------------------------------------- helpers


def _countries(cfg: OrganisationFlow) -> Countries:
    return _countries_for(tuple(sorted(cfg.country_names.items())))


@lru_cache(maxsize=16)
def _countries_for(extra: tuple[tuple[str, str], ...]) -> Countries:
    return Countries(dict(extra))


NORMALIZERS = {"invoice_email": email, "country": lambda v: text(v).casefold(),
               "currency": lambda v: text(v).upper()}


def webcrm_snapshot(org: Mapping[str, Any], cfg: OrganisationFlow) -> dict[str, str]:
    """Every organisation field this flow reads or writes (the webCRM fingerprint's input)."""
    props = {cfg.trigger_field, cfg.debtor_number_field, *WEBCRM_STANDARD.values(),
             *(webcrm_field(cfg, f) for f in synced_fields(cfg)), *cfg.shown_fields.values()}
    if cfg.status_field:
        props.add(cfg.status_field)
    return {p: text(org.get(p)) for p in sorted(props)}


def uniconta_snapshot(debtor: Mapping[str, Any], cfg: OrganisationFlow) -> dict[str, str]:
    """Every debtor field this flow reads or writes (the Uniconta fingerprint's input)."""
    props = {"Account", cfg.uniconta_link_field, *UNICONTA_FIELDS.values(), *SHOWN.values()}
    return {p: text(debtor.get(p)) for p in sorted(props)}


def _read_debtor(ctx: ConnectionContext, account: str) -> dict[str, Any] | None:
    return ctx.uniconta.get_one(DEBTOR, "Account", account)


def _link_of(debtor: Mapping[str, Any], cfg: OrganisationFlow) -> str:
    """The organisation id in the debtor's user field ("145"; a numeric field may say 145.0)."""
    value = text(debtor.get(cfg.uniconta_link_field))
    if value.endswith(".0") and value[:-2].isdigit():
        value = value[:-2]
    return value


def _cached_debtor(ctx: ConnectionContext, org_id: int) -> dict[str, Any] | None:
    """The debtor the Redis link names, if Uniconta confirms it carries this organisation's id."""
    account = ctx.links.uniconta_key(ENTITY, org_id)
    if account is None:
        return None
    debtor = _read_debtor(ctx, account)
    if debtor is not None and _link_of(debtor, ctx.connection.organisations) == str(org_id):
        return debtor
    return None


def _debtors_by_link(ctx: ConnectionContext, org_id: int) -> list[dict[str, Any]]:
    """Debtors whose cross-reference field holds the organisation id (OData on DebtorClientUser)."""
    prop = ctx.connection.organisations.uniconta_link_field
    try:
        return list(ctx.uniconta.odata(DEBTOR, filter=f"{prop} eq {odata_literal(str(org_id))}"))
    except Permanent as err:
        if isinstance(err, AuthError) or err.status is None or err.status >= 500:
            raise
        # A numeric user field (Int/Double) needs a number literal; try that once before giving up.
        try:
            return list(ctx.uniconta.odata(DEBTOR, filter=f"{prop} eq {org_id}"))
        except Permanent:
            raise err from None


def _pick(rows: list[dict[str, Any]], number: str) -> dict[str, Any]:
    if len(rows) > 1:
        journal.note("duplicate-debtors", accounts=sorted(text(r.get("Account")) for r in rows),
                     decision="using the one named by the organisation's debtor number, else the oldest")
        for row in rows:
            if number and text(row.get("Account")) == number:
                return row
        return min(rows, key=lambda r: int(r.get("RowId") or 0))
    return rows[0]


def _organisation_by_number(ctx: ConnectionContext, cfg: OrganisationFlow, account: str) -> int | None:
    """The organisation whose debtor-number field holds `account` (webCRM /Queries)."""
    script = (f"SELECT * FROM Organisation WHERE {cfg.debtor_number_field} = "  # noqa: S608 - escaped literal
              f"{sql_literal(account)}")
    try:
        rows = list(ctx.webcrm.query(script))
    except Permanent as err:
        if isinstance(err, AuthError):
            raise
        journal.note("query-failed", error=str(err))
        return None
    ids = sorted(int(r.get("OrganisationId") or 0) for r in rows if r.get("OrganisationId"))
    if len(ids) > 1:
        journal.note("duplicate-organisations", account=account, organisations=ids)
    return ids[0] if ids else None


def _write_webcrm(ctx: ConnectionContext, org: Mapping[str, Any], desired: Mapping[str, Any]) -> Mapping[str, Any]:
    """Write the fields of `desired` that differ from `org` (GET → modify → PUT the whole DTO).

    Returns `org` itself when nothing differs, else the state we meant to leave (org + changes):
    the fingerprint is taken from that, so a user's edit between our read and our PUT still
    counts as a change when its own webhook arrives.
    """
    changes = {k: v for k, v in desired.items() if text(org.get(k)) != text(v)}
    if not changes:
        return org
    org_id = int(org["OrganisationId"])
    current = ctx.webcrm.get(ORGANISATIONS, org_id)
    ctx.webcrm.update(ORGANISATIONS, org_id, {**current, **changes})
    journal.note("organisation-updated", fields=sorted(changes))
    return {**org, **changes}


def _show_status(ctx: ConnectionContext, org: Mapping[str, Any], status: str, *, remember: bool = True
                 ) -> Mapping[str, Any]:
    """Show `status` in the configured status field ("" clears only a text of ours)."""
    cfg = ctx.connection.organisations
    org_after = org
    if cfg.status_field:
        current = text(org.get(cfg.status_field))
        if status or current.startswith(STATUS_PREFIX.strip()):
            org_after = _write_webcrm(ctx, org, {cfg.status_field: status})
    org_id = int(org["OrganisationId"])
    if remember:
        ctx.fingerprints.put(ENTITY, "webcrm", org_id, fingerprints.of(webcrm_snapshot(org_after, cfg)))
    else:
        ctx.fingerprints.forget(ENTITY, "webcrm", org_id)
    return org_after


def _field_rejection(err: Permanent) -> bool:
    """A Uniconta validation error about one of the values we sent (the user can fix it in webCRM)."""
    return type(err) is Permanent and bool(err.field) and err.code in ("CouldNotSave", "FieldCannotBeBlank")


def _journal_decisions(mapped: Mapped, written: set[str]) -> None:
    """Journal truncations and joined address lines for the values that are being written."""
    props = {UNICONTA_FIELDS[f] for f in written if f in UNICONTA_FIELDS}
    for note in mapped.notes:
        kind = note["kind"]
        if kind == "truncated" and note["field"] in props:
            journal.note("truncated", **{k: v for k, v in note.items() if k != "kind"},
                         decision=f"cut to Uniconta's maximum of {note['limit']} characters")
        elif kind == "address-lines-joined" and "Address3" in props:
            journal.note("address-lines-joined", lines=note["lines"],
                         decision="lines 3 and later joined with ', ' into Address3")


def _time(value: Any) -> datetime | None:
    try:
        return parse_time(value) if value else None
    except (TypeError, ValueError):
        return None


def _marker_key(ctx: ConnectionContext, org_id: int) -> str:
    return keys.counter(ctx.connection.id, f"organisation-debtor-deleted:{org_id}")


def _series_key(ctx: ConnectionContext, prefix: str) -> str:
    return keys.counter(ctx.connection.id, f"debtor-series:{prefix}")
