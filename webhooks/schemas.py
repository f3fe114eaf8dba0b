"""Validation of incoming webhook calls (marshmallow), turning them into thin events.

Both APIs' payloads are partly unconfirmed (reference §8 / §3), so parsing is
tolerant where the reference is unsure and strict where we depend on a value.
"""

from __future__ import annotations

import re
from typing import Any

from marshmallow import EXCLUDE, Schema, ValidationError, fields, pre_load, validate, validates_schema

# webCRM entity names as they may appear (singular, plural, any case) → our entity names.
WEBCRM_ENTITIES = {
    "organisation": "organisation", "organisations": "organisation",
    "person": "person", "persons": "person",
    "user": "user", "users": "user",
    "delivery": "delivery", "deliveries": "delivery",
    "opportunity": "opportunity", "opportunities": "opportunity",
    "quotationline": "quotationline", "quotationlines": "quotationline",
}
WEBCRM_OPERATIONS = {"create": "create", "update": "update", "delete": "delete"}
_ID_KEY = re.compile(r"^(Organisation|Person|User|Delivery|Opportunity|QuotationLine)Id$", re.IGNORECASE)

# Uniconta Change-URL tables → (our entity, which parameter identifies the record).
UNICONTA_TABLES = {
    "debtor": ("debtor", "key"), "debtorclient": ("debtor", "key"),
    "invitem": ("item", "key"), "invitemclient": ("item", "key"),
    "contact": ("contact", "rowid"), "contactclient": ("contact", "rowid"),
    "employee": ("employee", "key"), "employeeclient": ("employee", "key"),
}
UNICONTA_OPERATIONS = {"add": "create", "insert": "create", "create": "create", "update": "update",
                       "modify": "update", "delete": "delete"}


class WebcrmHookSchema(Schema):
    """The sandbox's documented shape, or a body that only carries `<Entity>Id`."""

    class Meta:
        unknown = EXCLUDE

    HookId = fields.Raw(load_default=None)
    EventType = fields.String(load_default="Update")
    Entity = fields.String(load_default=None)
    EntityId = fields.Integer(load_default=None, strict=False, validate=validate.Range(min=1))
    Timestamp = fields.String(load_default=None)

    @pre_load
    def _entity_id_only(self, data: Any, **kwargs: Any) -> Any:
        if not isinstance(data, dict):
            raise ValidationError("must be a JSON object", "body")
        if data.get("EntityId") is None:
            for key, value in data.items():
                match = _ID_KEY.match(str(key))
                if match and key != "HookId":
                    return {**data, "Entity": data.get("Entity") or match.group(1), "EntityId": value}
        return data

    @validates_schema
    def _known(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data.get("EntityId") is None:
            raise ValidationError("missing: give EntityId or <Entity>Id", "EntityId")
        if str(data.get("Entity") or "").lower() not in WEBCRM_ENTITIES:
            raise ValidationError(f"unknown entity {data.get('Entity')!r}", "Entity")
        if str(data.get("EventType")).lower() not in WEBCRM_OPERATIONS:
            raise ValidationError("must be Create, Update or Delete", "EventType")


class UnicontaCallSchema(Schema):
    """Change-URL parameters; names and values in any case (reference §3, §6.1)."""

    class Meta:
        unknown = EXCLUDE

    companyid = fields.Integer(required=True, strict=False)
    table = fields.String(required=True)
    key = fields.String(load_default=None)
    rowid = fields.Integer(load_default=None, strict=False, validate=validate.Range(min=1))
    action = fields.String(load_default=None)
    operation = fields.String(load_default=None)

    @pre_load
    def _lower(self, data: Any, **kwargs: Any) -> Any:
        return {str(k).lower(): v for k, v in dict(data).items()}

    @validates_schema
    def _consistent(self, data: dict[str, Any], **kwargs: Any) -> None:
        if data["table"].lower() not in UNICONTA_TABLES:
            raise ValidationError(f"table {data['table']!r} is not synced", "Table")
        op = (data.get("action") or data.get("operation") or "").lower()
        if op not in UNICONTA_OPERATIONS:
            raise ValidationError("must be add, insert, update or delete", "Action")
        _entity, ident = UNICONTA_TABLES[data["table"].lower()]
        if not data.get("key") and not data.get("rowid"):
            raise ValidationError("missing: give Key or RowId", "Key")
        if ident == "rowid" and not data.get("rowid"):
            raise ValidationError("missing for this table", "RowId")


def first_error(err: ValidationError) -> tuple[str, str]:
    """(field, message) of the first problem, for a one-line 400 answer."""
    messages = err.messages
    if isinstance(messages, dict):
        for name, value in messages.items():
            text = value[0] if isinstance(value, list) and value else value
            if isinstance(text, dict):  # nested
                text = next(iter(text.values()))
            return ("body" if name == "_schema" else str(name), str(text))
    return "body", str(messages)
