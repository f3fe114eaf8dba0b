"""webCRM-specific routes on the common `/_sandbox` blueprint (never faulted, never in the call log).

    GET  /_sandbox/settings                  everything below in one object (+ rate-limit usage)
    PUT  /_sandbox/auth                      {"auth_codes": {...} | "code=Name,...", "token_lifetime": s,
                                              "rate_limit": n}  (partial)
    POST /_sandbox/auth/expire               every issued access token expires now -> {"expired": n}
    GET|PUT /_sandbox/quirks                 see settings.QUIRKS (partial update)
    GET  /_sandbox/fields                    {EntityType: [FieldMetadataDto, ...]}
    GET|PUT /_sandbox/fields/<EntityType>    {"OrganisationExtraCustom1": "Debitornummer" | {...} | null}
    PUT  /_sandbox/users/<id>/active         {"active": false}
    GET|PUT /_sandbox/linkedsetup            {"1": "Varenummer", ...}: enabled catalogue Data fields
    POST /_sandbox/ui/<Entity>[?by=Name]     a webCRM user creates a record -> the DTO
    PUT  /_sandbox/ui/<Entity>/<id>[?by=]    a webCRM user edits some fields (partial merge) -> the DTO
    DELETE /_sandbox/ui/<Entity>/<id>[?by=]  a webCRM user deletes a record (and what hangs off it)

Errors use the common admin shape {"error": "..."}.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from flask import request

from sandbox.common.admin import json_object
from sandbox.webcrm.auth import parse_auth_codes
from sandbox.webcrm.dto import DTOS
from sandbox.webcrm.entities import DATA_FIELDS, ENTITIES, USERS, entity_by_name
from sandbox.webcrm.settings import DEFAULT_UI_USER, check_quirks, to_int

if TYPE_CHECKING:
    from sandbox.webcrm.app import WebcrmSandbox

FIELD_DTOS = {  # FieldsMetadata entity type -> the DTO whose properties can be labelled
    "Organisation": "OrganisationDto",
    "Person": "PersonDto",
    "User": "UserDto",
    "Delivery": "DeliveryDto",
    "Opportunity": "OpportunityDto",
    "Product": "QuotationLineLinkedDataItemDto",
}
DISPLAY_TYPES = DTOS["FieldMetadataDto"].fields["FieldMetadataDisplayType"].enum


def field_entity_type(name: str) -> str:
    low = name.lower()
    for entity_type in FIELD_DTOS:
        if low == entity_type.lower():
            return entity_type
    e = entity_by_name(name)
    if e is not None and e.singular in FIELD_DTOS:
        return e.singular
    if low in ("linkeddata", "quotationlines/linkeddata"):
        return "Product"
    raise ValueError(f"entity: {name!r} is not one of {', '.join(FIELD_DTOS)}")


def install(wc: WebcrmSandbox) -> None:
    bp = wc.sandbox.admin
    store = wc.store
    lock = store.lock

    def settings_view() -> dict:
        s = wc.settings()
        return {
            "auth_codes": dict(s["auth_codes"]),
            "token_lifetime": s["token_lifetime"],
            "rate_limit": s["rate_limit"],
            "rate_used": {code: wc.limiter.used(code) for code in s["auth_codes"]},
            "quirks": dict(s["quirks"]),
            "linked_setup": dict(s["linked_setup"]),
            "inactive_users": list(s["inactive_users"]),
        }

    @bp.get("/settings")
    def get_settings() -> Any:
        with lock:
            return settings_view()

    @bp.put("/auth")
    def put_auth() -> Any:
        body = json_object()
        unknown = set(body) - {"auth_codes", "token_lifetime", "rate_limit"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown setting (known: auth_codes, token_lifetime, rate_limit)")
        changes: dict[str, Any] = {}
        if "auth_codes" in body:
            changes["auth_codes"] = parse_auth_codes(body["auth_codes"])
        if "token_lifetime" in body:
            changes["token_lifetime"] = to_int("token_lifetime", body["token_lifetime"], low=1)
        if "rate_limit" in body:
            changes["rate_limit"] = to_int("rate_limit", body["rate_limit"], low=0)
        with lock:
            wc.settings().update(changes)
            store.mark_dirty()
            if "rate_limit" in changes:
                wc.limiter.clear()
            return settings_view()

    @bp.post("/auth/expire")
    def expire_tokens() -> Any:
        return {"expired": wc.auth.expire_all()}

    @bp.get("/quirks")
    def get_quirks() -> Any:
        return dict(wc.settings()["quirks"])

    @bp.put("/quirks")
    def put_quirks() -> Any:
        changes = check_quirks(json_object(required=False))
        with lock:
            wc.settings()["quirks"].update(changes)
            store.mark_dirty()
            return dict(wc.settings()["quirks"])

    # -- FieldsMetadata ----------------------------------------------------------------------------
    @bp.get("/fields")
    def get_all_fields() -> Any:
        with lock:
            return {t: list(f.values()) for t, f in wc.settings()["fields"].items()}

    @bp.get("/fields/<name>")
    def get_fields(name: str) -> Any:
        entity_type = field_entity_type(name)
        with lock:
            return {entity_type: list(wc.settings()["fields"].get(entity_type, {}).values())}

    @bp.put("/fields/<name>")
    def put_fields(name: str) -> Any:
        entity_type = field_entity_type(name)
        dto = DTOS[FIELD_DTOS[entity_type]]
        body = json_object()
        with lock:
            current = dict(wc.settings()["fields"].get(entity_type, {}))
            for prop, spec in body.items():
                canonical = dto.canonical(prop)
                if canonical is None:
                    raise ValueError(f"{prop}: not a property of {dto.name}")
                if spec is None:
                    current.pop(canonical, None)
                    continue
                current[canonical] = _field_meta(wc, dto, canonical, spec, current.get(canonical))
            wc.settings()["fields"][entity_type] = current
            store.mark_dirty()
            return {entity_type: list(current.values())}

    # -- users -----------------------------------------------------------------------------------------
    @bp.put("/users/<int:user_id>/active")
    def put_user_active(user_id: int) -> Any:
        body = json_object()
        active = body.get("active")
        if not isinstance(active, bool):
            raise ValueError("active: required, true or false")
        with lock:
            user = wc.crm.get(USERS, user_id)
            if user is None:
                raise ValueError(f"user: no user has id {user_id}")
            inactive = [i for i in wc.settings()["inactive_users"] if i != user_id]
            if not active:
                inactive.append(user_id)
            wc.settings()["inactive_users"] = sorted(inactive)
            store.mark_dirty()
        return {"UserId": user_id, "active": active}

    # -- catalogue setup -------------------------------------------------------------------------------
    @bp.get("/linkedsetup")
    def get_linked_setup() -> Any:
        return dict(wc.settings()["linked_setup"])

    @bp.put("/linkedsetup")
    def put_linked_setup() -> Any:
        body = json_object()
        labels: dict[str, str] = {}
        for key, label in body.items():
            if key not in {str(n) for n in DATA_FIELDS}:
                raise ValueError(f"{key}: must be a Data field number 1..9")
            if not isinstance(label, str) or not label.strip():
                raise ValueError(f"{key}: the label must be a non-empty string")
            labels[key] = label.strip()
        with lock:
            wc.settings()["linked_setup"] = dict(sorted(labels.items()))
            store.mark_dirty()
            return dict(wc.settings()["linked_setup"])

    # -- "UI" edits -------------------------------------------------------------------------------------
    def ui_entity(name: str):
        e = entity_by_name(name)
        if e is None:
            raise ValueError(f"entity: {name!r} is not one of {', '.join(ENTITIES)}")
        return e

    def ui_user() -> str:
        by = (request.args.get("by") or "").strip()
        return by or DEFAULT_UI_USER

    @bp.post("/ui/<path:name>")
    def ui_create(name: str) -> Any:
        e = ui_entity(name)
        body = json_object()
        with lock:
            record = wc.crm.create(e, body, by=ui_user())
        return record

    @bp.put("/ui/<path:name>/<int:ident>")
    def ui_update(name: str, ident: int) -> Any:
        e = ui_entity(name)
        body = json_object()
        with lock:
            record = wc.crm.merge(e, ident, body, by=ui_user())
        return record

    @bp.delete("/ui/<path:name>/<int:ident>")
    def ui_delete(name: str, ident: int) -> Any:
        e = ui_entity(name)
        with lock:
            record = wc.crm.delete(e, ident, by=ui_user())
        return record


def _field_meta(wc: WebcrmSandbox, dto: Any, prop: str, spec: Any, old: dict | None) -> dict:
    """A FieldMetadataDto for `prop` from a label or {"Label", "DisplayType", "Options"|"DropdownListData",
    "SortOrder", "TextFieldMaxLength"}."""
    if isinstance(spec, str):
        spec = {"Label": spec}
    if not isinstance(spec, dict):
        raise ValueError(f"{prop}: must be a label string, an object or null")
    label = spec.get("Label")
    if not isinstance(label, str) or not label.strip():
        raise ValueError(f"{prop}: Label must be a non-empty string")
    options = spec.get("Options", spec.get("DropdownListData", []))
    if not isinstance(options, list):
        raise ValueError(f"{prop}: Options must be a list")
    dropdown = []
    for option in options:
        if isinstance(option, str):
            dropdown.append({"Text": option, "Value": option})
        elif isinstance(option, dict) and isinstance(option.get("Text"), str):
            dropdown.append({"Text": option["Text"], "Value": str(option.get("Value", option["Text"]))})
        else:
            raise ValueError(f"{prop}: each option must be a string or {{\"Text\", \"Value\"}}")
    field = dto.fields[prop]
    default_type = "DI" if dropdown else {"string": "T", "int32": "I", "int64": "I", "double": "D",
                                         "bool": "C", "datetime": "DT"}.get(field.kind, "T")
    if prop.endswith("Memo") or "Memo" in prop[-6:]:
        default_type = "M" if not dropdown else default_type
    display = spec.get("DisplayType", default_type)
    if display not in DISPLAY_TYPES:
        raise ValueError(f"{prop}: DisplayType must be one of {', '.join(DISPLAY_TYPES)}")
    ident = old["FieldMetadataId"] if old else wc.store.next_id("FieldsMetadata")
    sort_order = to_int("SortOrder", spec.get("SortOrder", old["FieldMetadataSortOrder"] if old else ident * 10))
    max_length = to_int("TextFieldMaxLength", spec.get("TextFieldMaxLength", field.max_length or 0), low=0)
    meta = DTOS["FieldMetadataDto"].defaults()
    meta.update({
        "FieldMetadataDbFieldName": prop,
        "FieldMetadataFriendlyFieldName": prop,
        "FieldMetadataId": ident,
        "FieldMetadataLabel": label.strip(),
        "FieldMetadataSortOrder": sort_order,
        "FieldMetadataDisplayType": display,
        "FieldMetadataTextFieldMaxLength": max_length,
        "FieldMetadataDropdownListData": dropdown,
    })
    return meta
