"""webCRM persons ↔ Uniconta contact persons on debtors, two-way, matched by e-mail at first link.

- A person on a linked organisation ↔ a `Contact` with `DCType` 1 (debtor) and `DCAccount` =
  the linked debtor's account. A person whose organisation is not linked waits
  (`waiting.park` on `organisation:<id>`) and is synced when the organisation flow releases it;
  a contact on a debtor that is not linked waits on `debtor:<account>` the same way (released
  only if the organisation flow releases that key too).
- First link: within the one organisation/debtor, the unlinked contact with the same e-mail
  (trimmed, case-insensitive). None: created both ways (person → contact; a contact added on
  a linked debtor → a person under the linked organisation, its Name split into first and last
  name). Two records with the address on one side: nothing linked, kept for review.
- The link lives in both systems: the person's `webcrm_link_field` holds the contact's RowId,
  the contact's `uniconta_link_field` (native `ReferenceId` by default) holds the PersonId;
  both are written in the create bodies, so a create whose answer was lost is found again.
- Name, e-mail, mobile and title flow both ways through the field-level merge (`twoway`).
- Deactivation: a resigned person deletes the contact — Uniconta contacts have no active flag,
  and deleting is what Uniconta supports; the person keeps the old RowId. A person deleted
  through the webCRM UI (an organisation's delete cascades) only drops the link. A contact deleted in Uniconta sets the person to `Resigned` and clears
  its link field (webCRM persons are never deleted). A resigned person made active again
  gets a contact again (first link by e-mail, else a new contact).
- webCRM persons cannot change organisation through the API: when a person moves in webCRM,
  the contact moves to the new organisation's debtor (if linked); a contact moved to another
  debtor in Uniconta is only journaled.
"""

from __future__ import annotations

import importlib
import re
from typing import Any

from sync.clients.errors import NotFound, Permanent, Transient
from sync.clients.webcrm import sql_literal
from sync.config import PersonFlow
from sync.events import Event
from sync.flows import FlowError, Result, merge
from sync.flows.twoway import (
    Locks,
    as_id,
    bases,
    decide,
    linked_counterpart,
    merge_pair,
    name,
    same_email,
    side_fingerprint,
    text,
    unchanged,
    uniconta_time,
    webcrm_time,
)
from sync.runtime import ConnectionContext
from sync.state import journal, review, waiting

ENTITY = "person"
PERSONS = "Persons"
CONTACT = "ContactClientUser"
DEBTOR_CONTACT = 1
ACTIVE = "Active"
RESIGNED = "Resigned"
PLACEHOLDER_LAST_NAME = "-"  # webCRM requires a last name; S4 writes "-" for none
PERSON_FIELDS = {"email": "PersonEmail", "mobile": "PersonMobilePhone", "title": "PersonTitle"}
CONTACT_FIELDS = {"name": "Name", "email": "Email", "mobile": "Mobil", "title": "Title"}
PARTICLES = frozenset({"af", "da", "das", "de", "del", "della", "den", "der", "di", "do", "dos", "du", "la", "le",
                       "ten", "ter", "van", "von", "zu"})


# --------------------------------------------------------------------------- pure mapping


def full_name(person: dict[str, Any]) -> str:
    """First, middle and last name as one (the "-" placeholder last name counts as none)."""
    last = text(person.get("PersonLastName"))
    parts = [text(person.get("PersonFirstName")), text(person.get("PersonMiddleName")),
             "" if last == PLACEHOLDER_LAST_NAME else last]
    return name(" ".join(p for p in parts if p))


def split_name(full: Any) -> tuple[str, str]:
    """(first, last) of a full name: the last word is the last name, together with particles
    before it ("Jan van der Berg" → "Jan", "van der Berg"); a single word is a last name
    (webCRM requires one)."""
    words = str(full or "").split()
    if not words:
        return "", ""
    cut = len(words) - 1
    while cut > 1 and words[cut - 1].lower() in PARTICLES:
        cut -= 1
    return " ".join(words[:cut]), " ".join(words[cut:])


def name_fields(full: Any) -> dict[str, str]:
    first, last = split_name(full)
    return {"PersonFirstName": first, "PersonMiddleName": "", "PersonLastName": last or PLACEHOLDER_LAST_NAME,
            "PersonName": name(full)}


def map_person(person: dict[str, Any]) -> dict[str, Any]:
    return {"name": full_name(person), **{key: person.get(field) for key, field in PERSON_FIELDS.items()}}


def map_contact(contact: dict[str, Any]) -> dict[str, Any]:
    return {key: contact.get(field) for key, field in CONTACT_FIELDS.items()}


def person_changes(changes: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in changes.items():
        if key == "name":
            out.update(name_fields(value))
        else:
            out[PERSON_FIELDS[key]] = text(value)
    return out


def contact_changes(changes: dict[str, Any]) -> dict[str, Any]:
    return {CONTACT_FIELDS[key]: text(value) or None for key, value in changes.items()}


def new_contact(person: dict[str, Any], account: str, cfg: PersonFlow) -> dict[str, Any]:
    projection = map_person(person)
    body = {"DCType": DEBTOR_CONTACT, "DCAccount": account, cfg.uniconta_link_field: str(person["PersonId"])}
    body.update({CONTACT_FIELDS[k]: text(v) or None for k, v in projection.items()})
    return body


def new_person(contact: dict[str, Any], organisation_id: int, cfg: PersonFlow) -> dict[str, Any]:
    body: dict[str, Any] = {"PersonId": 0, "PersonOrganisationId": organisation_id, "PersonStatus": ACTIVE,
                            cfg.webcrm_link_field: str(contact["RowId"])}
    body.update(person_changes(map_contact(contact)))
    return body


def is_resigned(person: dict[str, Any]) -> bool:
    return text(person.get("PersonStatus")).lower() == RESIGNED.lower()


def is_debtor_contact(contact: dict[str, Any]) -> bool:
    return int(contact.get("DCType") or DEBTOR_CONTACT) == DEBTOR_CONTACT


def _person_fp(person: dict[str, Any], cfg: PersonFlow) -> str:
    return side_fingerprint(map_person(person), link=text(person.get(cfg.webcrm_link_field)),
                            status=text(person.get("PersonStatus")), org=as_id(person.get("PersonOrganisationId")))


def _contact_fp(contact: dict[str, Any], cfg: PersonFlow) -> str:
    return side_fingerprint(map_contact(contact), link=text(contact.get(cfg.uniconta_link_field)),
                            account=text(contact.get("DCAccount")))


# --------------------------------------------------------------------------- organisation ↔ debtor


def linked_debtor(ctx: ConnectionContext, organisation_id: int) -> str | None:
    """The debtor Account of a linked organisation: the organisation flow's answer once it exists,
    until then the link cache it fills."""
    try:
        provider = importlib.import_module("sync.flows.organisations").linked_debtor
    except (ImportError, AttributeError):
        return ctx.links.uniconta_key("organisation", organisation_id)
    account = provider(ctx, organisation_id)
    return None if account is None else str(account)


def linked_organisation(ctx: ConnectionContext, account: str) -> int | None:
    """The webCRM organisation of a debtor: the debtor's link field (the truth), else the cache."""
    field = ctx.connection.organisations.uniconta_link_field
    try:
        rows = ctx.uniconta.find("DebtorClientUser", "Account", account)
    except NotFound:
        rows = []
    for row in rows:
        if text(row.get("Account")) == account and as_id(row.get(field)):
            return as_id(row.get(field))
    cached = ctx.links.webcrm_id("organisation", account)
    return as_id(cached) if cached else None


# --------------------------------------------------------------------------- handlers


def sync_person(ctx: ConnectionContext, event: Event) -> Result:
    """A webCRM person changed: merge with its contact, link/create one, or deactivate it."""
    cfg = ctx.connection.persons
    pid = as_id(event.record_id)
    if pid is None:
        raise FlowError(f"not a webCRM person id: {event.record_id!r}")
    person = _get_person(ctx, pid)
    with Locks(ctx, event) as locks:
        if person is not None and unchanged(ctx, event, ENTITY, "webcrm", pid, _person_fp(person, cfg)):
            return Result("unchanged", {"person": pid})
        contact = _linked_contact(ctx, cfg, pid, person, locks)
        if person is None:
            return _person_gone(ctx, pid, contact)
        if contact is not None:
            if is_resigned(person):
                return _delete_contact(ctx, cfg, person, contact)
            return _sync_pair(ctx, cfg, person, contact)
        return _without_contact(ctx, cfg, event, person, locks)


def sync_contact(ctx: ConnectionContext, event: Event) -> Result:
    """A Uniconta contact changed: merge with its person, link/create one, or resign it if deleted."""
    cfg = ctx.connection.persons
    rowid = as_id(event.record_id.lstrip("#"))
    if rowid is None:
        raise FlowError(f"not a Uniconta contact RowId: {event.record_id!r}")
    with Locks(ctx, event) as locks:
        locks.hold("contact", f"#{rowid}")  # no-op for the job's own lock
        contact = _contact_by_rowid(ctx, rowid)
        if contact is None:
            return _contact_gone(ctx, cfg, rowid, locks)
        if not is_debtor_contact(contact):
            return Result("skipped", {"reason": "not a debtor contact", "contact": rowid})
        ref = text(contact.get(cfg.uniconta_link_field))
        pid = as_id(ref)
        if pid is not None and unchanged(ctx, event, ENTITY, "uniconta", rowid, _contact_fp(contact, cfg)):
            return Result("unchanged", {"contact": rowid, "person": pid})
        if pid is not None:
            person = linked_counterpart(locks, "person", pid, lambda: _get_person(ctx, pid),
                                        lambda p: as_id(p.get(cfg.webcrm_link_field)),
                                        lambda claimed: _contact_by_rowid(ctx, claimed) is not None,
                                        side="contact", own=rowid)
            if isinstance(person, Result):
                return person
            if is_resigned(person):
                journal.note("linked-person-resigned", contact=rowid, person=pid)
                return Result("skipped", {"reason": "the linked person is resigned", "contact": rowid})
            return _sync_pair(ctx, cfg, person, contact)
        if ref:
            journal.note("foreign-reference", contact=rowid, value=ref, field=cfg.uniconta_link_field)
            return Result("skipped", {"reason": f"{cfg.uniconta_link_field} holds {ref!r}, not a person id",
                                      "contact": rowid})
        return _first_link_contact(ctx, cfg, event, contact, locks)


# --------------------------------------------------------------------------- person side


def _without_contact(ctx: ConnectionContext, cfg: PersonFlow, event: Event, person: dict[str, Any],
                     locks: Locks) -> Result:
    """A person with no linked contact: follow a link hint, resign it, wait, or link/create."""
    pid = int(person["PersonId"])
    hint = as_id(person.get(cfg.webcrm_link_field))
    if hint is not None:
        locks.hold("contact", f"#{hint}")
        contact = _contact_by_rowid(ctx, hint)
        if contact is not None:
            other = as_id(contact.get(cfg.uniconta_link_field))
            if text(contact.get(cfg.uniconta_link_field)) and other != pid:
                journal.note("link-conflict", person=pid, contact=hint, contact_links_to=contact.get(
                    cfg.uniconta_link_field))
                return Result("skipped", {"reason": f"contact {hint} is linked to something else", "person": pid})
            if is_resigned(person):
                return Result("skipped", {"reason": "resigned person; its contact was never linked", "person": pid})
            return _sync_pair(ctx, cfg, person, contact, fresh=True, action="linked")
        base = bases(ctx).get(ENTITY, pid)
        if is_resigned(person):
            ctx.fingerprints.put(ENTITY, "webcrm", pid, _person_fp(person, cfg))
            return Result("unchanged", {"person": pid, "reason": "resigned; its contact is gone"})
        if base is None or base.get("_status") != "resigned":
            return _resign_person(ctx, cfg, person, hint)
        journal.note("person-reactivated", person=pid, old_contact=hint)
    if is_resigned(person):
        return Result("skipped", {"reason": "resigned person without a contact", "person": pid})
    org = as_id(person.get("PersonOrganisationId"))
    if org is None:
        return Result("skipped", {"reason": "person has no organisation", "person": pid})
    account = linked_debtor(ctx, org)
    if account is None:
        dependency = f"organisation:{org}"
        waiting.park(ctx.redis, event, dependency)
        journal.note("waiting", person=pid, on=dependency, reason="the organisation is not linked to a debtor yet")
        return Result("waiting", {"reason": f"organisation {org} is not linked to a debtor yet", "person": pid})
    contacts = [c for c in ctx.uniconta.find(CONTACT, "DCAccount", account)
                if is_debtor_contact(c) and text(c.get("DCAccount")) == account]
    address = text(person.get("PersonEmail"))
    candidates = [c for c in same_email(contacts, "Email", address) if not text(c.get(cfg.uniconta_link_field))]
    peers: list[dict[str, Any]] = []
    if candidates:
        peers = [p for p in same_email(_persons_where(ctx, "PersonOrganisationId", org), "PersonEmail", address)
                 if as_id(p.get("PersonId")) != pid and not text(p.get(cfg.webcrm_link_field)) and not is_resigned(p)]
    decision = decide(candidates, peers)
    if decision == "ambiguous":
        return _ambiguous(ctx, address, webcrm=[pid, *(p.get("PersonId") for p in peers)],
                          uniconta=[c.get("RowId") for c in candidates], org=org,
                          where=f"organisation {org} / debtor {account}")
    review.resolve(ctx.redis, ctx.connection.id, ENTITY, address, f"organisation {org}")
    if decision == "link":
        rowid = int(candidates[0]["RowId"])
        locks.hold("contact", f"#{rowid}")
        contact = _contact_by_rowid(ctx, rowid)  # again, under its lock
        if contact is None or text(contact.get(cfg.uniconta_link_field)) \
                or merge.email(contact.get("Email")) != merge.email(address):
            raise Transient("contact changed while linking; trying again", system="uniconta")
        journal.note("matched-by-email", person=pid, contact=rowid)
        return _sync_pair(ctx, cfg, person, contact, fresh=True, action="linked")
    created = ctx.uniconta.insert(CONTACT, new_contact(person, account, cfg))
    contact = created if created and as_id(created.get("RowId")) else None
    if contact is None:
        found = [c for c in ctx.uniconta.find(CONTACT, cfg.uniconta_link_field, str(pid))
                 if as_id(c.get(cfg.uniconta_link_field)) == pid]
        if not found:
            raise Transient("created contact not found by its reference yet", system="uniconta")
        contact = found[0]
    if as_id(contact.get(cfg.uniconta_link_field)) != pid:
        raise FlowError(f"Uniconta did not store the contact's {cfg.uniconta_link_field}")
    journal.note("contact-created", person=pid, contact=contact.get("RowId"), debtor=account)
    # The new contact's own job needs this person's lock (held here) before it can do anything.
    return _sync_pair(ctx, cfg, person, contact, fresh=True, action="created")


def _delete_contact(ctx: ConnectionContext, cfg: PersonFlow, person: dict[str, Any], contact: dict[str, Any]
                    ) -> Result:
    """The person resigned: delete its contact (Uniconta has no inactive contact), keep the person."""
    pid = int(person["PersonId"])
    rowid = int(contact["RowId"])
    ctx.uniconta.delete(CONTACT, contact)
    journal.note("contact-deleted", person=pid, contact=rowid, reason="person resigned in webCRM")
    store = bases(ctx)
    store.put(ENTITY, pid, {**(store.get(ENTITY, pid) or {}), "_status": "resigned"})
    ctx.links.forget(ENTITY, webcrm_id=pid)
    ctx.fingerprints.forget(ENTITY, "uniconta", rowid)
    ctx.fingerprints.put(ENTITY, "webcrm", pid, _person_fp(person, cfg))
    return Result("deleted", {"person": pid, "contact": rowid, "reason": "person resigned"})


def _person_gone(ctx: ConnectionContext, pid: int, contact: dict[str, Any] | None) -> Result:
    """Deleted through the webCRM UI (the API cannot delete persons; deleting an organisation
    cascades): the contact is kept — the debtor and its history stay in Uniconta."""
    rowid = as_id(contact.get("RowId")) if contact else None
    if rowid is not None:
        journal.note("person-deleted", person=pid, contact=rowid, reason="deleted in webCRM; the contact is kept")
        ctx.fingerprints.forget(ENTITY, "uniconta", rowid)
    bases(ctx).forget(ENTITY, pid)
    ctx.links.forget(ENTITY, webcrm_id=pid)
    ctx.fingerprints.forget(ENTITY, "webcrm", pid)
    return Result("absent", {"reason": "person not found in webCRM", "person": pid, "contact": rowid})


def _resign_person(ctx: ConnectionContext, cfg: PersonFlow, person: dict[str, Any], rowid: int) -> Result:
    """The linked contact was deleted in Uniconta: set the person Resigned and clear its link."""
    pid = int(person["PersonId"])
    changes = {"PersonStatus": RESIGNED, cfg.webcrm_link_field: ""}
    ctx.webcrm.update(PERSONS, pid, {**person, **changes})
    journal.note("person-resigned", person=pid, contact=rowid, reason="contact deleted in Uniconta")
    store = bases(ctx)
    store.put(ENTITY, pid, {**(store.get(ENTITY, pid) or {}), "_status": "resigned"})
    ctx.links.forget(ENTITY, webcrm_id=pid)
    ctx.fingerprints.forget(ENTITY, "uniconta", rowid)
    ctx.fingerprints.put(ENTITY, "webcrm", pid, _person_fp({**person, **changes}, cfg))
    return Result("updated", {"person": pid, "contact": rowid, "to_webcrm": sorted(changes),
                              "reason": "contact deleted in Uniconta: person resigned"})


# --------------------------------------------------------------------------- contact side


def _first_link_contact(ctx: ConnectionContext, cfg: PersonFlow, event: Event, contact: dict[str, Any],
                        locks: Locks) -> Result:
    rowid = int(contact["RowId"])
    account = text(contact.get("DCAccount"))
    if not account:
        return Result("skipped", {"reason": "contact has no debtor account", "contact": rowid})
    org = linked_organisation(ctx, account)
    if org is None:
        dependency = f"debtor:{account}"
        waiting.park(ctx.redis, event, dependency)
        journal.note("waiting", contact=rowid, on=dependency, reason="the debtor is not linked to an organisation")
        return Result("waiting", {"reason": f"debtor {account} is not linked to a webCRM organisation",
                                  "contact": rowid})
    # A person we created for this contact earlier (its answer lost, or the contact's link not written yet).
    mine = [p for p in _persons_where(ctx, cfg.webcrm_link_field, str(rowid))
            if as_id(p.get(cfg.webcrm_link_field)) == rowid]
    if mine:
        pid = min(int(p["PersonId"]) for p in mine)
        return _link_to_person(ctx, cfg, contact, pid, locks, action="linked")
    address = text(contact.get("Email"))
    persons = _persons_where(ctx, "PersonOrganisationId", org) if merge.email(address) else []
    candidates = [p for p in same_email(persons, "PersonEmail", address)
                  if not text(p.get(cfg.webcrm_link_field)) and not is_resigned(p)]
    peers: list[dict[str, Any]] = []
    if candidates:
        peers = [c for c in same_email(ctx.uniconta.find(CONTACT, "DCAccount", account), "Email", address)
                 if as_id(c.get("RowId")) != rowid and is_debtor_contact(c)
                 and not text(c.get(cfg.uniconta_link_field))]
    decision = decide(candidates, peers)
    if decision == "ambiguous":
        return _ambiguous(ctx, address, webcrm=[p.get("PersonId") for p in candidates],
                          uniconta=[rowid, *(c.get("RowId") for c in peers)], org=org,
                          where=f"organisation {org} / debtor {account}")
    review.resolve(ctx.redis, ctx.connection.id, ENTITY, address, f"organisation {org}")
    if decision == "link":
        journal.note("matched-by-email", person=candidates[0]["PersonId"], contact=rowid)
        return _link_to_person(ctx, cfg, contact, int(candidates[0]["PersonId"]), locks, action="linked",
                               email=address)
    created = ctx.webcrm.create(PERSONS, new_person(contact, org, cfg))
    if created is None:
        found = [p for p in _persons_where(ctx, cfg.webcrm_link_field, str(rowid))
                 if as_id(p.get(cfg.webcrm_link_field)) == rowid]
        if not found:
            raise Transient("created person not found by its link yet", system="webcrm")
        created = int(found[0]["PersonId"])
    pid = created
    journal.note("person-created", person=pid, contact=rowid, organisation=org)
    return _link_to_person(ctx, cfg, contact, pid, locks, action="created")


def _link_to_person(ctx: ConnectionContext, cfg: PersonFlow, contact: dict[str, Any], pid: int, locks: Locks, *,
                    action: str, email: str | None = None) -> Result:
    locks.hold("person", pid)
    person = _get_person(ctx, pid)  # under its lock
    rowid = int(contact["RowId"])
    if person is None or as_id(person.get(cfg.webcrm_link_field)) not in (None, rowid) \
            or (email is not None and merge.email(person.get("PersonEmail")) != merge.email(email)):
        raise Transient("person changed while linking; trying again", system="webcrm")
    return _sync_pair(ctx, cfg, person, contact, fresh=True, action=action)


def _contact_gone(ctx: ConnectionContext, cfg: PersonFlow, rowid: int, locks: Locks) -> Result:
    """Deleted in Uniconta: the linked person is set Resigned (persons are never deleted)."""
    cached = ctx.links.webcrm_id(ENTITY, str(rowid))
    pid = as_id(cached) if cached else None
    if pid is None:
        found = [p for p in _persons_where(ctx, cfg.webcrm_link_field, str(rowid))
                 if as_id(p.get(cfg.webcrm_link_field)) == rowid]
        pid = min((int(p["PersonId"]) for p in found), default=None)
    ctx.fingerprints.forget(ENTITY, "uniconta", rowid)
    if pid is None:
        return Result("absent", {"reason": "contact not found in Uniconta and no person links to it",
                                 "contact": rowid})
    locks.hold("person", pid)
    person = _get_person(ctx, pid)
    if person is None or as_id(person.get(cfg.webcrm_link_field)) != rowid:
        ctx.links.forget(ENTITY, uniconta_key=str(rowid))
        return Result("absent", {"reason": "no person links to the deleted contact", "contact": rowid})
    if is_resigned(person):  # the contact went because the person resigned
        ctx.links.forget(ENTITY, uniconta_key=str(rowid))
        return Result("unchanged", {"person": pid, "contact": rowid, "reason": "person already resigned"})
    return _resign_person(ctx, cfg, person, rowid)


def _ambiguous(ctx: ConnectionContext, address: str, *, webcrm: list[Any], uniconta: list[Any], org: int,
               where: str) -> Result:
    journal.note("ambiguous-email", email=address, webcrm_persons=webcrm, uniconta_contacts=uniconta, where=where)
    review.add(ctx.redis, ctx.connection.id, entity=ENTITY, email=address, scope=f"organisation {org}",
               reason="several records with this e-mail; nothing was linked", webcrm=webcrm, uniconta=uniconta,
               webcrm_entity="person", uniconta_entity="contact", where=where)
    return Result("skipped", {"reason": "ambiguous e-mail: kept for review", "email": address})


# --------------------------------------------------------------------------- the pair


def _sync_pair(ctx: ConnectionContext, cfg: PersonFlow, person: dict[str, Any], contact: dict[str, Any], *,
               fresh: bool = False, action: str | None = None) -> Result:
    pid = int(person["PersonId"])
    rowid = int(contact["RowId"])
    store = bases(ctx)
    base = None if fresh else store.get(ENTITY, pid)
    result = merge_pair(ctx, ENTITY, base, map_person(person), map_contact(contact),
                        webcrm_at=webcrm_time(person.get("PersonUpdatedAt")),
                        uniconta_at=uniconta_time(contact.get("UpdatedAt")))
    to_person = person_changes(result.to_webcrm)
    if as_id(person.get(cfg.webcrm_link_field)) != rowid:
        to_person[cfg.webcrm_link_field] = str(rowid)
    to_contact = contact_changes(result.to_uniconta)
    if as_id(contact.get(cfg.uniconta_link_field)) != pid:
        to_contact[cfg.uniconta_link_field] = str(pid)
    org = as_id(person.get("PersonOrganisationId"))
    account = text(contact.get("DCAccount"))
    synced_org = org  # the organisation the contact's debtor stands for once this sync is done
    if base is None or base.get("_org") != org:  # the person moved in webCRM (or a first sync): follow it
        debtor = linked_debtor(ctx, org) if org else None
        if debtor and debtor != account:
            to_contact["DCAccount"] = debtor
            journal.note("contact-moved", person=pid, contact=rowid, debtor=debtor, old_debtor=account)
            account = debtor
        elif not debtor and org:
            # The move waits for the new organisation's debtor: the base keeps the old organisation (so the
            # next sync still sees a move), and the person is released when the organisation gets linked.
            synced_org = None if base is None else base.get("_org")
            _wait_for_organisation(ctx, pid, org)
            if base is not None:
                journal.note("contact-not-moved", person=pid, contact=rowid, organisation=org, debtor=account,
                             reason="the person's new organisation is not linked to a debtor yet; the contact "
                                    "follows once it is")
    elif base.get("_account") not in (None, account):
        journal.note("contact-on-other-debtor", person=pid, contact=rowid, debtor=account,
                     reason="moved in Uniconta; webCRM persons cannot change organisation through the API")

    if to_contact:
        ctx.uniconta.update(CONTACT, {**contact, **to_contact})
    if to_person:
        ctx.webcrm.update(PERSONS, pid, {**person, **to_person})
    store.put(ENTITY, pid, {**result.merged, "_status": "active", "_org": synced_org, "_account": account,
                            "_contact": rowid})
    if synced_org == org:
        ctx.fingerprints.put(ENTITY, "webcrm", pid, _person_fp({**person, **to_person}, cfg))
    else:  # a move still to make: the next event of this person (its release) must not be taken for an echo
        ctx.fingerprints.forget(ENTITY, "webcrm", pid)
    ctx.fingerprints.put(ENTITY, "uniconta", rowid, _contact_fp({**contact, **to_contact}, cfg))
    ctx.links.bind(ENTITY, pid, str(rowid))
    if action is None:
        action = "updated" if to_person or to_contact else "unchanged"
    return Result(action, {"person": pid, "contact": rowid, "to_webcrm": sorted(to_person),
                           "to_uniconta": sorted(to_contact), "conflicts": [c.field for c in result.conflicts]})


def _wait_for_organisation(ctx: ConnectionContext, pid: int, org: int) -> None:
    """Park the person on its organisation until the organisation flow links it (and releases it); if it
    was linked meanwhile (its release may have run before the park), release at once."""
    dependency = f"organisation:{org}"
    waiting.park(ctx.redis, Event(ctx.connection.id, "webcrm", ENTITY, str(pid), origin="dependency"), dependency)
    if linked_debtor(ctx, org):
        waiting.release(ctx.redis, ctx.connection.id, dependency, ctx.enqueue)


# --------------------------------------------------------------------------- reads


def _get_person(ctx: ConnectionContext, pid: int) -> dict[str, Any] | None:
    try:
        return ctx.webcrm.get(PERSONS, pid)
    except NotFound:
        return None


def _contact_by_rowid(ctx: ConnectionContext, rowid: int) -> dict[str, Any] | None:
    rows = [c for c in ctx.uniconta.find(CONTACT, "RowId", rowid) if as_id(c.get("RowId")) == rowid]
    return rows[0] if rows else None


def _linked_contact(ctx: ConnectionContext, cfg: PersonFlow, pid: int, person: dict[str, Any] | None,
                    locks: Locks) -> dict[str, Any] | None:
    """The debtor contact whose link field holds this person's id: the cached link (verified) or a
    lookup. Read before its lock only in the lookup, which is safe: every writer of a contact linked
    to this person holds this person's lock, which this job holds."""
    link = cfg.uniconta_link_field
    cached = as_id(ctx.links.uniconta_key(ENTITY, pid))
    if cached:
        locks.hold("contact", f"#{cached}")
        contact = _contact_by_rowid(ctx, cached)
        if contact is not None and as_id(contact.get(link)) == pid and is_debtor_contact(contact):
            return contact
    found = [c for c in ctx.uniconta.find(CONTACT, link, str(pid)) if as_id(c.get(link)) == pid and is_debtor_contact(c)]
    if not found:
        return None
    hint = as_id(person.get(cfg.webcrm_link_field)) if person else None
    found.sort(key=lambda c: (as_id(c.get("RowId")) != hint, int(c.get("RowId") or 0)))
    if len(found) > 1:
        journal.note("several-contacts-linked", person=pid, contacts=[c.get("RowId") for c in found],
                     using=found[0].get("RowId"))
    locks.hold("contact", f"#{found[0]['RowId']}")
    return found[0]


_FIELD = re.compile(r"^Person[A-Za-z0-9]+$")


def _persons_where(ctx: ConnectionContext, field: str, value: str | int) -> list[dict[str, Any]]:
    """Persons whose `field` equals `value` (a `/Queries` script; every person if queries fail)."""
    if not _FIELD.match(field):
        raise FlowError(f"not a person field: {field!r}")
    try:
        return list(ctx.webcrm.query(f"SELECT * FROM Person WHERE {field} = {sql_literal(value)}"))  # noqa: S608
    except Permanent as err:
        journal.note("query-failed", error=str(err))
        return [p for p in ctx.webcrm.iter_all(PERSONS) if text(p.get(field)) == str(value)]
