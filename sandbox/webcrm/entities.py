"""The webCRM records of the sandbox and every rule about writing them.

Records are stored as complete DTO dicts (every Swagger property) in `Store` tables keyed by
str(id). A stored record is never mutated: every change stores a new dict, so a request can
serialise what it read after releasing the store lock.

All methods expect the caller to hold `store.lock` (the app's views and seeders do).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from sandbox.common.store import Store
from sandbox.webcrm.dto import DTOS, Dto, now_text
from sandbox.webcrm.totals import order_totals


class ApiError(Exception):
    """An error answer of the API: status + the `Message` text."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


@dataclass(frozen=True)
class EntityDef:
    plural: str            # URL path of the collection ("Organisations", "QuotationLines/LinkedData")
    table: str             # store table name
    singular: str          # hook payload "Entity", /Queries table name, FieldsMetadata type
    dto: Dto               # what GET serves
    write_dto: Dto         # what POST/PUT read (QuotationLineUpdateDto for lines)
    id_field: str
    sequence: str          # id sequence (Deliveries and Opportunities share one, see below)
    audit_prefix: str      # "<prefix>CreatedAt" ... ; "" = no audit fields (catalogue items)
    api_delete: bool       # DELETE exists in the real API [D S3]
    hook_dto: Dto | None   # HookDto of /<plural>/Hooks, None = no hooks
    api_patch: bool        # the collection PATCH (bulk upsert) exists in the real API [D S3]

    def key(self, ident: int) -> str:
        return str(ident)


def _entity(plural, table, singular, dto, id_field, *, write_dto=None, sequence=None, audit=True,
            api_delete=False, hooks=True, api_patch=True) -> EntityDef:
    return EntityDef(
        plural=plural, table=table, singular=singular, dto=DTOS[dto], write_dto=DTOS[write_dto or dto],
        id_field=id_field, sequence=sequence or table, audit_prefix=singular if audit else "",
        api_delete=api_delete, hook_dto=DTOS[f"{singular}HookDto"] if hooks else None, api_patch=api_patch,
    )


# Deliveries and opportunities share one id sequence: in webCRM a delivery is a converted
# opportunity and QuotationLineOpportunityId holds the delivery id for delivery lines [O S4 sample:
# DeliveryId 158 = QuotationLineOpportunityId 158], so a line's parent id must be unambiguous.
ORGANISATIONS = _entity("Organisations", "Organisations", "Organisation", "OrganisationDto", "OrganisationId")
PERSONS = _entity("Persons", "Persons", "Person", "PersonDto", "PersonId")
USERS = _entity("Users", "Users", "User", "UserDto", "UserId")
DELIVERIES = _entity("Deliveries", "Deliveries", "Delivery", "DeliveryDto", "DeliveryId", sequence="Opportunities")
OPPORTUNITIES = _entity("Opportunities", "Opportunities", "Opportunity", "OpportunityDto", "OpportunityId")
QUOTATION_LINES = _entity("QuotationLines", "QuotationLines", "QuotationLine", "QuotationLineDto", "QuotationLineId",
                          write_dto="QuotationLineUpdateDto", api_delete=True)
LINKED_DATA = _entity("QuotationLines/LinkedData", "LinkedData", "LinkedData", "QuotationLineLinkedDataItemDto",
                      "QuotationLineLinkedDataItemId", audit=False, api_delete=True, hooks=False,
                      api_patch=False)  # the Swagger has no PATCH /QuotationLines/LinkedData

ENTITIES: dict[str, EntityDef] = {e.table: e for e in (
    ORGANISATIONS, PERSONS, USERS, DELIVERIES, OPPORTUNITIES, QUOTATION_LINES, LINKED_DATA)}
HOOK_ENTITIES = [e for e in ENTITIES.values() if e.hook_dto is not None]


def entity_by_name(name: str) -> EntityDef | None:
    """Look an entity up by table/plural/singular name, case-insensitively."""
    low = name.strip("/").lower()
    for e in ENTITIES.values():
        if low in (e.table.lower(), e.plural.lower(), e.singular.lower()):
            return e
    return None


DATA_FIELDS = range(1, 10)
DEFAULT_LINKED_LABELS = {"1": "Varenummer", "2": "Navn", "3": "Enhed", "4": "Varegruppe"}


class Crm:
    """Create / replace / merge / delete with webCRM's rules, audit fields, totals and hooks."""

    def __init__(self, store: Store, *, settings: Callable[[], dict],
                 fire: Callable[[EntityDef, str, dict], None]) -> None:
        self.store = store
        self.settings = settings  # the live settings dict (store.meta["webcrm"])
        self.fire = fire          # fire(entity, "Create"|"Update"|"Delete", record)

    # -- reading ------------------------------------------------------------------------------
    def table(self, e: EntityDef) -> dict[str, dict]:
        return self.store.table(e.table)

    def get(self, e: EntityDef, ident: int) -> dict | None:
        return self.table(e).get(str(ident))

    def must_get(self, e: EntityDef, ident: int) -> dict:
        record = self.get(e, ident)
        if record is None:
            raise ApiError(404, f"{e.singular} with id {ident} was not found.")
        return record

    def rows(self, e: EntityDef) -> Iterable[dict]:
        return self.table(e).values()

    def lines_of(self, parent_id: int) -> list[dict]:
        lines = [r for r in self.rows(QUOTATION_LINES) if r["QuotationLineOpportunityId"] == parent_id]
        lines.sort(key=lambda r: (r["QuotationLineSortOrder"], r["QuotationLineId"]))
        return lines

    def parent_of_line(self, parent_id: int) -> tuple[EntityDef, dict] | None:
        for e in (DELIVERIES, OPPORTUNITIES):
            record = self.get(e, parent_id)
            if record is not None:
                return e, record
        return None

    def quirk(self, name: str) -> Any:
        return self.settings()["quirks"][name]

    def now(self) -> str:
        return now_text(int(self.quirk("timestamp_offset_minutes")))

    # -- writing ------------------------------------------------------------------------------
    def create(self, e: EntityDef, body: Any, *, by: str, fire: bool = True) -> dict:
        """Insert from a request body (POST semantics); returns the stored record."""
        values = e.write_dto.parse(body)
        requested = values.get(e.id_field, 0)
        if requested and self.get(e, requested) is not None:
            raise ApiError(400, f"{e.singular} with id {requested} already exists; "
                                f"send {e.id_field} 0 to create a new one.")
        record = e.dto.defaults()
        record.update({k: v for k, v in values.items() if k in record})
        self._validate(e, record, values, old=None, can_move=True)
        ident = self.store.next_id(e.sequence)
        record[e.id_field] = ident
        if e.audit_prefix:
            now = self.now()
            p = e.audit_prefix
            record.update({f"{p}CreatedAt": now, f"{p}CreatedBy": by, f"{p}UpdatedAt": now, f"{p}UpdatedBy": by})
        self.table(e)[str(ident)] = record
        self.store.mark_dirty()
        if fire:
            self.fire(e, "Create", record)
        self._after_line_change(e, None, record, by=by, fire=fire)
        return record

    def replace(self, e: EntityDef, ident: int, body: Any, *, by: str) -> dict:
        """PUT: full replacement of the writable fields (omitted ones go back to their defaults)."""
        old = self.must_get(e, ident)
        values = e.write_dto.parse(body)
        record = e.dto.defaults()
        record.update({k: v for k, v in values.items() if k in record})
        return self._store_update(e, old, record, values, by=by, can_move=False)

    def upsert(self, e: EntityDef, body: Any, *, by: str) -> tuple[bool, dict]:
        """One item of a collection PATCH: `(inserted, record)`.

        The strict reading of "Updates or inserts submitted X" [D S3, semantics U]: an id > 0
        updates that record exactly as PUT does (full replacement; an unknown id is a 404 error),
        an id of 0 or none inserts exactly as POST does. Errors raise as they would there.
        """
        values = e.write_dto.parse(body)
        ident = values.get(e.id_field, 0)
        if ident > 0:
            return False, self.replace(e, check_id(ident), body, by=by)
        return True, self.create(e, body, by=by)

    def merge(self, e: EntityDef, ident: int, body: Any, *, by: str) -> dict:
        """A "UI" edit: only the given fields change."""
        old = self.must_get(e, ident)
        values = e.write_dto.parse(body)
        record = dict(old)
        record.update({k: v for k, v in values.items() if k in record})
        return self._store_update(e, old, record, values, by=by, can_move=True)

    def _store_update(self, e: EntityDef, old: dict, record: dict, values: dict, *, by: str,
                      can_move: bool) -> dict:
        record[e.id_field] = old[e.id_field]
        if e.audit_prefix:
            p = e.audit_prefix
            record[f"{p}CreatedAt"] = old[f"{p}CreatedAt"]
            record[f"{p}CreatedBy"] = old[f"{p}CreatedBy"]
        self._validate(e, record, values, old=old, can_move=can_move)
        if e.audit_prefix:
            record[f"{p}UpdatedAt"] = self.now()
            record[f"{p}UpdatedBy"] = by
        self.table(e)[str(record[e.id_field])] = record
        self.store.mark_dirty()
        self.fire(e, "Update", record)
        self._after_line_change(e, old, record, by=by, fire=True)
        return record

    def delete(self, e: EntityDef, ident: int, *, by: str, _cascading: bool = False) -> dict:
        """Remove one record and what hangs off it (an organisation's persons, deliveries and
        opportunities; an order's lines); fires a Delete hook for each."""
        old = self.must_get(e, ident)
        children: list[tuple[EntityDef, dict]] = []
        if e is ORGANISATIONS:
            children += [(PERSONS, r) for r in self.rows(PERSONS) if r["PersonOrganisationId"] == ident]
            for parent in (DELIVERIES, OPPORTUNITIES):
                children += [(parent, r) for r in self.rows(parent)
                             if r[f"{parent.singular}OrganisationId"] == ident]
        if e in (DELIVERIES, OPPORTUNITIES):
            children += [(QUOTATION_LINES, r) for r in self.lines_of(ident)]
        for child_e, child in children:
            if str(child[child_e.id_field]) in self.table(child_e):
                self.delete(child_e, child[child_e.id_field], by=by, _cascading=True)
        del self.table(e)[str(ident)]
        self.store.mark_dirty()
        self.fire(e, "Delete", old)
        if not _cascading:
            self._after_line_change(e, old, None, by=by, fire=True)
        return old

    def delete_all(self, e: EntityDef) -> int:
        table = self.table(e)
        count = len(table)
        table.clear()
        self.store.mark_dirty()
        return count

    # -- rules ----------------------------------------------------------------------------------
    def _validate(self, e: EntityDef, record: dict, values: dict, *, old: dict | None, can_move: bool) -> None:
        if e is PERSONS:
            self._validate_person(record, old, can_move)
        elif e in (DELIVERIES, OPPORTUNITIES):
            self._validate_order(e, record, old)
        elif e is QUOTATION_LINES:
            self._validate_line(record, values)
        elif e is LINKED_DATA:
            self._validate_item(record)

    def _require_organisation(self, field: str, ident: int) -> None:
        if self.get(ORGANISATIONS, ident) is None:
            raise ApiError(400, f"{field}: organisation with id {ident} does not exist.")

    def _validate_person(self, record: dict, old: dict | None, can_move: bool) -> None:
        if not record["PersonLastName"].strip():
            raise ApiError(400, "The PersonLastName field is required.")
        if old is not None and not can_move:
            # a person's organisation cannot be changed through the API [O S4 PersonDto.cs]
            record["PersonOrganisationId"] = old["PersonOrganisationId"]
        elif old is None or record["PersonOrganisationId"] != old["PersonOrganisationId"]:
            self._require_organisation("PersonOrganisationId", record["PersonOrganisationId"])
        parts = [record["PersonFirstName"], record["PersonMiddleName"], record["PersonLastName"]]
        record["PersonName"] = " ".join(p.strip() for p in parts if p.strip())

    def _validate_order(self, e: EntityDef, record: dict, old: dict | None) -> None:
        p = e.singular
        self._require_organisation(f"{p}OrganisationId", record[f"{p}OrganisationId"])
        person = record[f"{p}PersonId"]
        if person and self.get(PERSONS, person) is None:
            raise ApiError(400, f"{p}PersonId: person with id {person} does not exist.")
        if old is not None:
            lines = self.lines_of(old[e.id_field])
            if lines:  # with lines, the order value is computed (read-only) - see totals.py
                record[f"{p}OrderValue"], record[f"{p}OrderGmValue"] = order_totals(lines)

    def _validate_line(self, record: dict, values: dict) -> None:
        parent_id = record["QuotationLineOpportunityId"]
        parent = self.parent_of_line(parent_id)
        if parent is None:
            raise ApiError(400, f"QuotationLineOpportunityId: no delivery or opportunity has id {parent_id}.")
        parent_e, parent_record = parent
        if not record["QuotationLineOrganisationId"]:
            record["QuotationLineOrganisationId"] = parent_record[f"{parent_e.singular}OrganisationId"]
        item_id = values.get("QuotationLineLinkedDataId", 0)
        if item_id:
            item = self.get(LINKED_DATA, item_id)
            if item is None:
                raise ApiError(400, f"QuotationLineLinkedDataId: catalogue item {item_id} does not exist.")
            for n in DATA_FIELDS:
                if not record[f"QuotationLineData{n}"]:
                    record[f"QuotationLineData{n}"] = item[f"QuotationLineLinkedDataItemData{n}"]
            if not record["QuotationLinePrice"]:
                record["QuotationLinePrice"] = item["QuotationLineLinkedDataItemPrice"]
            if not record["QuotationLineListPrice"]:
                record["QuotationLineListPrice"] = item["QuotationLineLinkedDataItemPrice"]
            if not record["QuotationLineCostPrice"]:
                record["QuotationLineCostPrice"] = item["QuotationLineLinkedDataItemCostPrice"]
            if not record["QuotationLineMemo"]:
                record["QuotationLineMemo"] = item["QuotationLineLinkedDataItemDataMemo"]

    def _validate_item(self, record: dict) -> None:
        record["QuotationLineLinkedDataItemEntityType"] = "Product"
        labels = self.settings()["linked_setup"]
        for n in DATA_FIELDS:
            label = labels.get(str(n))
            if label and not record[f"QuotationLineLinkedDataItemData{n}"].strip():
                raise ApiError(400, f"QuotationLineLinkedDataItemData{n} ({label}) must not be empty.")

    # -- order totals -----------------------------------------------------------------------------
    def _after_line_change(self, e: EntityDef, old: dict | None, new: dict | None, *, by: str,
                           fire: bool) -> None:
        if e is not QUOTATION_LINES:
            return
        parents = {r["QuotationLineOpportunityId"] for r in (old, new) if r is not None}
        for parent_id in sorted(parents):
            self.recompute(parent_id, by=by, fire=fire)

    def recompute(self, parent_id: int, *, by: str, fire: bool = True) -> None:
        """Store the order totals of a delivery/opportunity from its lines (a new record if changed).

        With the quirk `line_change_touches_parent` (default on) the parent's UpdatedAt/By change too
        and an Update hook fires for it - whether webCRM does this is unconfirmed [U].
        """
        parent = self.parent_of_line(parent_id)
        if parent is None:
            return
        pe, record = parent
        p = pe.singular
        lines = self.lines_of(parent_id)
        value, margin = order_totals(lines) if lines else (0.0, 0.0)
        if (record[f"{p}OrderValue"], record[f"{p}OrderGmValue"]) == (value, margin):
            return
        updated = dict(record)
        updated[f"{p}OrderValue"], updated[f"{p}OrderGmValue"] = value, margin
        touch = bool(self.quirk("line_change_touches_parent")) and fire
        if touch:
            updated[f"{p}UpdatedAt"] = self.now()
            updated[f"{p}UpdatedBy"] = by
        self.table(pe)[str(parent_id)] = updated
        self.store.mark_dirty()
        if touch:
            self.fire(pe, "Update", updated)


def check_id(value: Any) -> int:
    """Path ids are int32; larger ones cannot exist."""
    if value > 2**31 - 1:
        raise ApiError(404, f"No record has id {value}.")
    return value

