"""webCRM users ↔ Uniconta employees (as sales people), two-way, matched by e-mail at first link.

- An active webCRM user with an e-mail and no link is linked to the one unlinked employee
  with the same address (trimmed, case-insensitive), or gets a new `Employee`: Number from
  the initials (AJ, AJ2, AJ3... when taken), name, e-mail, mobile, the configured sales
  title and group. Two records with that address on one side: nothing is linked, the case
  is journaled and kept for review (`sync.review`).
- The link lives in both systems: the user's `webcrm_link_field` holds the employee Number,
  the employee's user-defined `uniconta_link_field` holds the UserId (written in the create
  body, so a create whose answer was lost is found again). After that, records follow the
  link: a changed e-mail is an update.
- Name, e-mail and mobile flow both ways through the field-level merge (`twoway`).
- Uniconta never creates webCRM users (paid seats): an unmatched employee is journaled only.
- A user no longer in `/Users/AllActive` terminates the employee: `Terminated` = today and
  `Blocked` = true (the employee stays; nothing is deleted). If the user becomes active
  again, the sync clears both — only when it set them itself. The active state flows one
  way (webCRM → Uniconta); a blocked employee never deactivates a webCRM user.
- An employee deleted in Uniconta is journaled; the user keeps the old Number in its link
  field, which stops the sync from creating the employee again (clear the field to allow it).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from datetime import date, datetime
from typing import Any

from sync.clients.errors import Conflict, NotFound, Permanent, Transient
from sync.clients.webcrm import sql_literal
from sync.config import UserFlow
from sync.events import Event
from sync.flows import FlowError, Result, merge
from sync.flows.twoway import (
    Locks,
    as_id,
    bases,
    decide,
    linked_counterpart,
    merge_pair,
    same_email,
    side_fingerprint,
    text,
    unchanged,
    uniconta_time,
    webcrm_time,
)
from sync.runtime import ConnectionContext
from sync.state import journal, keys, review

ENTITY = "user"
USERS = "Users"
EMPLOYEE = "EmployeeClientUser"
USER_FIELDS = {"name": "UserName", "email": "UserEmail", "mobile": "UserMobilePhone"}
EMPLOYEE_FIELDS = {"name": "Name", "email": "Email", "mobile": "Mobil"}
NUMBER_MAX = 20
NUMBER_ATTEMPTS = 20
# Origins whose events may skip work when the user's DTO is as last synced; reconcile, resync,
# backfill and dead-letter requeues always re-check the user's active state (`/Users/AllActive`).
SHORTCUT_ORIGINS = ("webhook", "dependency", "echo")


# --------------------------------------------------------------------------- pure mapping


def map_user(user: dict[str, Any]) -> dict[str, Any]:
    return {key: user.get(field) for key, field in USER_FIELDS.items()}


def map_employee(employee: dict[str, Any]) -> dict[str, Any]:
    return {key: employee.get(field) for key, field in EMPLOYEE_FIELDS.items()}


def user_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {USER_FIELDS[key]: text(value) for key, value in changes.items()}


def employee_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {EMPLOYEE_FIELDS[key]: text(value) or None for key, value in changes.items()}


_NOT_KEY = re.compile(r"[^0-9A-Za-zÆØÅæøåÄÖÜäöü]")


def number_stem(initials: Any, name: Any, user_id: int) -> str:
    """The employee Number a user would get before collisions: the initials, else the initials of
    the name, else U<UserId>; letters and digits only, upper case."""
    stem = _NOT_KEY.sub("", str(initials or "")).upper()
    if not stem:
        stem = "".join(_NOT_KEY.sub("", word)[:1] for word in str(name or "").split()).upper()
    return (stem or f"U{user_id}")[:NUMBER_MAX - 3]


def employee_number(initials: Any, name: Any, user_id: int, taken: set[str]) -> str:
    """A free employee Number: the stem (AJ), then AJ2, AJ3, ... (`taken` compared upper-case)."""
    used = {t.upper() for t in taken}
    stem = number_stem(initials, name, user_id)
    if stem.upper() not in used:
        return stem
    n = 2
    while f"{stem}{n}".upper() in used:
        n += 1
    return f"{stem}{n}"


def new_employee(user: dict[str, Any], cfg: UserFlow, number: str) -> dict[str, Any]:
    """The Employee created for a user (the link is in the body, so a lost answer is found again)."""
    body: dict[str, Any] = {
        "Number": number,
        "Name": text(user.get("UserName")) or number,
        "Email": text(user.get("UserEmail")) or None,
        "Mobil": text(user.get("UserMobilePhone")) or None,
        cfg.uniconta_link_field: str(user["UserId"]),
    }
    if cfg.sales_title:
        body["Title"] = cfg.sales_title
    if cfg.employee_group:
        body["Group"] = cfg.employee_group
    return body


def is_inactive(employee: dict[str, Any]) -> bool:
    """Terminated (a real date) or blocked."""
    terminated = text(employee.get("Terminated"))
    return bool(employee.get("Blocked")) or (bool(terminated) and not terminated.startswith("0001-"))


def deactivation(today: date) -> dict[str, Any]:
    return {"Terminated": f"{today.isoformat()}T00:00:00", "Blocked": True}


REACTIVATION: dict[str, Any] = {"Terminated": None, "Blocked": False}


def _user_fp(user: dict[str, Any], cfg: UserFlow) -> str:
    return side_fingerprint(map_user(user), link=text(user.get(cfg.webcrm_link_field)))


def _employee_fp(employee: dict[str, Any], cfg: UserFlow) -> str:
    return side_fingerprint(map_employee(employee), link=as_id(employee.get(cfg.uniconta_link_field)) or "")


# --------------------------------------------------------------------------- handlers


def sync_user(ctx: ConnectionContext, event: Event) -> Result:
    """A webCRM user changed: link or create its employee, merge the pair, follow deactivation."""
    cfg = ctx.connection.users
    uid = as_id(event.record_id)
    if uid is None:
        raise FlowError(f"not a webCRM user id: {event.record_id!r}")
    user = _get_user(ctx, uid)
    with Locks(ctx, event) as locks:
        if user is not None and event.origin in SHORTCUT_ORIGINS \
                and ctx.fingerprints.get(ENTITY, "webcrm", uid) == _user_fp(user, cfg):
            return Result("unchanged", {"user": uid})
        employee = _linked_employee(ctx, cfg, uid, user, locks)
        if employee is not None:
            if user is None:
                return _user_gone(ctx, cfg, uid, employee)
            base = bases(ctx).get(ENTITY, uid)
            if event.origin in SHORTCUT_ORIGINS and base is not None and "_active" in base:
                # A webhook says the DTO changed; whether the user is active is not in the DTO and
                # is checked by reconciliation (`sweep_users`) and by resync, not on every edit.
                active = bool(base["_active"])
            else:
                active = any(as_id(u.get("UserId")) == uid for u in _active_users(ctx))
            return _sync_pair(ctx, cfg, user, active, employee)
        if user is None:
            return Result("absent", {"reason": "user not found in webCRM"})
        active_users = _active_users(ctx)
        active = any(as_id(u.get("UserId")) == uid for u in active_users)
        return _first_link_user(ctx, cfg, user, active, active_users, locks)


def sync_employee(ctx: ConnectionContext, event: Event) -> Result:
    """A Uniconta employee changed: merge it with its linked user, or link it by e-mail (never
    creating a webCRM user)."""
    cfg = ctx.connection.users
    with Locks(ctx, event) as locks:
        employee = _read_employee(ctx, event.record_id)
        if employee is None:
            return _employee_gone(ctx, cfg, event.record_id)
        number = text(employee.get("Number"))
        locks.hold("employee", number)  # no-op for the job's own lock
        uid = as_id(employee.get(cfg.uniconta_link_field))
        if uid is not None and unchanged(ctx, event, ENTITY, "uniconta", number, _employee_fp(employee, cfg)):
            return Result("unchanged", {"employee": number, "user": uid})
        if uid is not None:
            user = linked_counterpart(locks, "user", uid, lambda: _get_user(ctx, uid),
                                      lambda u: text(u.get(cfg.webcrm_link_field)),
                                      lambda claimed: _employee_by_number(ctx, claimed) is not None,
                                      side="employee", own=number)
            if isinstance(user, Result):
                return user
            base = bases(ctx).get(ENTITY, uid)
            if base is not None and "_active" in base:
                active = bool(base["_active"])  # the active state is webCRM's and changes through user events
            else:
                active = any(as_id(u.get("UserId")) == uid for u in _active_users(ctx))
            return _sync_pair(ctx, cfg, user, active, employee)
        return _first_link_employee(ctx, cfg, employee, locks)


# --------------------------------------------------------------------------- first link


def _first_link_user(ctx: ConnectionContext, cfg: UserFlow, user: dict[str, Any], active: bool,
                     active_users: list[dict[str, Any]], locks: Locks) -> Result:
    uid = int(user["UserId"])
    hint = text(user.get(cfg.webcrm_link_field))
    if hint:
        locks.hold("employee", hint)
        employee = _employee_by_number(ctx, hint)
        if employee is None:
            journal.note("employee-deleted", user=uid, employee=hint)
            return Result("skipped", {"reason": f"employee {hint} was deleted in Uniconta; clear "
                                                f"{cfg.webcrm_link_field} to create a new one", "user": uid})
        other = as_id(employee.get(cfg.uniconta_link_field))
        if other not in (None, uid):
            journal.note("link-conflict", user=uid, employee=hint, employee_links_to=other)
            return Result("skipped", {"reason": f"employee {hint} is linked to user {other}", "user": uid})
        return _sync_pair(ctx, cfg, user, active, employee, fresh=True, action="linked")
    if not active:
        return Result("skipped", {"reason": "user is not active", "user": uid})
    address = text(user.get("UserEmail"))
    if not merge.email(address):
        return Result("skipped", {"reason": "user has no e-mail", "user": uid})
    employees = list(ctx.uniconta.odata(EMPLOYEE))
    candidates = [e for e in same_email(employees, "Email", address) if as_id(e.get(cfg.uniconta_link_field)) is None]
    peers = [u for u in same_email(active_users, "UserEmail", address)
             if as_id(u.get("UserId")) != uid and not text(u.get(cfg.webcrm_link_field))]
    decision = decide(candidates, peers)
    if decision == "ambiguous":
        return _ambiguous(ctx, address, webcrm=[uid, *(u.get("UserId") for u in peers)],
                          uniconta=[e.get("Number") for e in candidates], record=("user", uid))
    review.resolve(ctx.redis, ctx.connection.id, ENTITY, address)
    if decision == "link":
        number = text(candidates[0].get("Number"))
        locks.hold("employee", number)
        employee = _employee_by_number(ctx, number)  # again, under its lock
        if employee is None or as_id(employee.get(cfg.uniconta_link_field)) not in (None, uid) \
                or merge.email(employee.get("Email")) != merge.email(address):
            raise Transient("employee changed while linking; trying again", system="uniconta")
        journal.note("matched-by-email", user=uid, employee=number)
        return _sync_pair(ctx, cfg, user, active, employee, fresh=True, action="linked")
    # The new employee's own job needs this user's lock (held here) before it can do anything.
    employee = _create_employee(ctx, cfg, user, employees)
    return _sync_pair(ctx, cfg, user, active, employee, fresh=True, action="created")


def _first_link_employee(ctx: ConnectionContext, cfg: UserFlow, employee: dict[str, Any], locks: Locks) -> Result:
    number = text(employee.get("Number"))
    address = text(employee.get("Email"))
    if not merge.email(address):
        journal.note("unmatched", employee=number, reason="no e-mail")
        return Result("skipped", {"reason": "employee has no e-mail and no link", "employee": number})
    active_users = _active_users(ctx)
    candidates = [u for u in same_email(active_users, "UserEmail", address) if not text(u.get(cfg.webcrm_link_field))]
    peers: list[dict[str, Any]] = []
    if candidates:
        peers = [e for e in same_email(ctx.uniconta.odata(EMPLOYEE), "Email", address)
                 if text(e.get("Number")) != number and as_id(e.get(cfg.uniconta_link_field)) is None]
    decision = decide(candidates, peers)
    if decision == "ambiguous":
        return _ambiguous(ctx, address, webcrm=[u.get("UserId") for u in candidates],
                          uniconta=[number, *(e.get("Number") for e in peers)], record=("employee", number))
    if decision == "create":
        journal.note("unmatched", employee=number, email=address,
                     reason="no active webCRM user has this e-mail; Uniconta never creates webCRM users")
        return Result("skipped", {"reason": "no webCRM user with this e-mail (users are not created from "
                                            "Uniconta)", "employee": number})
    review.resolve(ctx.redis, ctx.connection.id, ENTITY, address)
    uid = int(candidates[0]["UserId"])
    locks.hold("user", uid)
    user = _get_user(ctx, uid)  # again, under its lock
    if user is None or text(user.get(cfg.webcrm_link_field)) or merge.email(user.get("UserEmail")) != merge.email(address):
        raise Transient("user changed while linking; trying again", system="webcrm")
    journal.note("matched-by-email", user=uid, employee=number)
    return _sync_pair(ctx, cfg, user, True, employee, fresh=True, action="linked")


def _ambiguous(ctx: ConnectionContext, address: str, *, webcrm: list[Any], uniconta: list[Any],
               record: tuple[str, Any]) -> Result:
    journal.note("ambiguous-email", email=address, webcrm_users=webcrm, uniconta_employees=uniconta)
    review.add(ctx.redis, ctx.connection.id, entity=ENTITY, email=address,
               reason="several records with this e-mail; nothing was linked", webcrm=webcrm, uniconta=uniconta,
               webcrm_entity="user", uniconta_entity="employee", seen_on=f"{record[0]} {record[1]}")
    return Result("skipped", {"reason": "ambiguous e-mail: kept for review", "email": address})


def _create_employee(ctx: ConnectionContext, cfg: UserFlow, user: dict[str, Any],
                     employees: list[dict[str, Any]]) -> dict[str, Any]:
    uid = int(user["UserId"])
    taken = {text(e.get("Number")) for e in employees}
    for _ in range(NUMBER_ATTEMPTS):
        number = employee_number(user.get("UserInitials"), user.get("UserName"), uid, taken)
        try:
            created = ctx.uniconta.insert(EMPLOYEE, new_employee(user, cfg, number))
        except Conflict:  # taken meanwhile (another user with the same initials): the next one
            journal.note("employee-number-taken", number=number)
            taken.add(number)
            continue
        employee = created if created and created.get("Number") else _employee_by_number(ctx, number)
        if employee is None:
            raise Transient("created employee not found by its number yet", system="uniconta")
        if as_id(employee.get(cfg.uniconta_link_field)) != uid:
            raise FlowError(f"Uniconta did not store the employee's {cfg.uniconta_link_field}: create that "
                            "user-defined field on Employee")
        journal.note("employee-created", user=uid, employee=number)
        return employee
    raise FlowError(f"no free employee number for user {uid} after {NUMBER_ATTEMPTS} attempts")


# --------------------------------------------------------------------------- the pair


def _sync_pair(ctx: ConnectionContext, cfg: UserFlow, user: dict[str, Any], active: bool, employee: dict[str, Any],
               *, fresh: bool = False, action: str | None = None) -> Result:
    uid = int(user["UserId"])
    number = text(employee.get("Number"))
    store = bases(ctx)
    base = None if fresh else store.get(ENTITY, uid)
    result = merge_pair(ctx, ENTITY, base, map_user(user), map_employee(employee),
                        webcrm_at=webcrm_time(user.get("UserUpdatedAt")),
                        uniconta_at=uniconta_time(employee.get("UpdatedAt")))
    to_user = user_changes(result.to_webcrm)
    if text(user.get(cfg.webcrm_link_field)) != number:
        to_user[cfg.webcrm_link_field] = number
    to_employee = employee_changes(result.to_uniconta)
    if as_id(employee.get(cfg.uniconta_link_field)) != uid:
        to_employee[cfg.uniconta_link_field] = str(uid)

    was_active = None if base is None else base.get("_active")
    deactivated = bool(base.get("_deactivated")) if base else False
    if not active and was_active is not False:
        if not is_inactive(employee):
            to_employee.update(deactivation(date.today()))
            deactivated = True
            journal.note("employee-deactivated", user=uid, employee=number, reason="user not active in webCRM")
    elif active and was_active is False and deactivated:
        to_employee.update(REACTIVATION)
        deactivated = False
        journal.note("employee-reactivated", user=uid, employee=number)

    if to_employee:
        ctx.uniconta.update(EMPLOYEE, {**employee, **to_employee})
    if to_user:
        ctx.webcrm.update(USERS, uid, {**user, **to_user})
    store.put(ENTITY, uid, {**result.merged, "_active": active, "_deactivated": deactivated, "_employee": number})
    ctx.fingerprints.put(ENTITY, "webcrm", uid, _user_fp({**user, **to_user}, cfg))
    ctx.fingerprints.put(ENTITY, "uniconta", number, _employee_fp({**employee, **to_employee}, cfg))
    ctx.links.bind(ENTITY, uid, number)
    if action is None:
        action = "updated" if to_user or to_employee else "unchanged"
    return Result(action, {"user": uid, "employee": number, "to_webcrm": sorted(to_user),
                           "to_uniconta": sorted(to_employee), "conflicts": [c.field for c in result.conflicts]})


def _user_gone(ctx: ConnectionContext, cfg: UserFlow, uid: int, employee: dict[str, Any]) -> Result:
    """The user no longer exists in webCRM: terminate the employee like a deactivated user."""
    number = text(employee.get("Number"))
    if not is_inactive(employee):
        ctx.uniconta.update(EMPLOYEE, {**employee, **deactivation(date.today())})
        journal.note("employee-deactivated", user=uid, employee=number, reason="user deleted in webCRM")
        action = "updated"
    else:
        action = "unchanged"
    bases(ctx).forget(ENTITY, uid)
    ctx.fingerprints.forget(ENTITY, "webcrm", uid)
    ctx.fingerprints.forget(ENTITY, "uniconta", number)
    return Result(action, {"user": uid, "employee": number, "reason": "user not found in webCRM"})


def _employee_gone(ctx: ConnectionContext, cfg: UserFlow, record_id: str) -> Result:
    """Deleted in Uniconta: journaled only (Uniconta never changes webCRM users)."""
    number = None if record_id.startswith("#") else record_id
    uid: int | None = None
    if number is not None:
        cached = ctx.links.webcrm_id(ENTITY, number)
        uid = as_id(cached) if cached else _user_linked_to(ctx, cfg, number)
        ctx.links.forget(ENTITY, uniconta_key=number)
        ctx.fingerprints.forget(ENTITY, "uniconta", number)
    if uid is not None:
        bases(ctx).forget(ENTITY, uid)
        ctx.fingerprints.forget(ENTITY, "webcrm", uid)
        journal.note("employee-deleted", employee=number, user=uid,
                     reason="deleted in Uniconta; the webCRM user is kept and keeps the old number in "
                            f"{cfg.webcrm_link_field}, so no new employee is created for it")
    return Result("absent", {"reason": "employee not found in Uniconta", "employee": number, "user": uid})


# --------------------------------------------------------------------------- reads


def _get_user(ctx: ConnectionContext, uid: int) -> dict[str, Any] | None:
    try:
        return ctx.webcrm.get(USERS, uid)
    except NotFound:
        return None


def _active_users(ctx: ConnectionContext) -> list[dict[str, Any]]:
    return ctx.webcrm.active_users()


def _employee_by_number(ctx: ConnectionContext, number: str) -> dict[str, Any] | None:
    rows = [e for e in ctx.uniconta.find(EMPLOYEE, "Number", number) if text(e.get("Number")) == number]
    return rows[0] if rows else None


def _read_employee(ctx: ConnectionContext, record_id: str) -> dict[str, Any] | None:
    if record_id.startswith("#"):
        rows = ctx.uniconta.find(EMPLOYEE, "RowId", record_id[1:])
        return rows[0] if rows else None
    return _employee_by_number(ctx, record_id)


def _linked_employee(ctx: ConnectionContext, cfg: UserFlow, uid: int, user: dict[str, Any] | None,
                     locks: Locks) -> dict[str, Any] | None:
    """The employee whose link field holds this user's id: the cached link (verified) or a lookup.

    Read before its lock is taken only in the lookup; that is safe because every writer of an
    employee linked to this user holds this user's lock, which this job holds.
    """
    link = cfg.uniconta_link_field
    cached = ctx.links.uniconta_key(ENTITY, uid)
    if cached:
        locks.hold("employee", cached)
        employee = _employee_by_number(ctx, cached)
        if employee is not None and as_id(employee.get(link)) == uid:
            return employee
    found = [e for e in ctx.uniconta.find(EMPLOYEE, link, str(uid)) if as_id(e.get(link)) == uid]
    if not found:
        return None
    hint = text(user.get(cfg.webcrm_link_field)) if user else ""
    found.sort(key=lambda e: (text(e.get("Number")) != hint, int(e.get("RowId") or 0)))
    if len(found) > 1:
        journal.note("several-employees-linked", user=uid, employees=[e.get("Number") for e in found],
                     using=found[0].get("Number"))
    locks.hold("employee", text(found[0].get("Number")))
    return found[0]


def _user_linked_to(ctx: ConnectionContext, cfg: UserFlow, number: str) -> int | None:
    field = cfg.webcrm_link_field
    try:
        rows = list(ctx.webcrm.query(f"SELECT * FROM User WHERE {field} = {sql_literal(number)}"))  # noqa: S608
    except Permanent as err:
        journal.note("query-failed", error=str(err))
        rows = [u for u in ctx.webcrm.iter_all(USERS) if text(u.get(field)) == number]
    ids = sorted(i for i in (as_id(r.get("UserId")) for r in rows) if i)
    return ids[0] if ids else None


# --------------------------------------------------------------------------- reconciliation


def sweep_users(ctx: ConnectionContext, since: datetime) -> Iterator[Event]:
    """Reconciliation's extra sweep for users (`sync.operations.reconcile.SWEEPERS["users"]`): linked users whose
    active state differs from the last sync. webCRM may change it without a hook and without a
    change to the user's DTO or `UserUpdatedAt`, which the generic sweep of changed records reads."""
    conn = ctx.connection.id
    active = {as_id(u.get("UserId")) for u in ctx.webcrm.active_users()}
    store = bases(ctx)
    for raw in ctx.redis.hkeys(keys.links(conn, ENTITY, "w2u")):
        uid = as_id(raw)
        base = store.get(ENTITY, uid) if uid else None
        if uid and base is not None and bool(base.get("_active", True)) != (uid in active):
            yield Event(conn, "webcrm", ENTITY, str(uid), origin="reconcile")
