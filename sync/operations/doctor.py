"""`syncctl doctor` and `syncctl hooks list|remove`: is a connection set up so the sync can work?

Checks, each with how to fix it:
* credentials on both systems (webCRM `/Auth`, one Uniconta OData read) and that
  `webcrm.api_user_name` is the name webCRM writes into `...UpdatedBy` for our writes
  (echo suppression depends on it);
* every configured webCRM custom field exists in `/FieldsMetadata` with a text type, and
  the catalogue Data fields the items flow writes are enabled (`/QuotationLines/LinkedSetup`);
* every Uniconta user-defined field the flows use exists on its `...ClientUser` entity
  with a usable type (OData `$metadata`);
* webhooks: for every enabled flow a webCRM hook per event type and a Uniconta Change-URL
  row per table, enabled, pointing at this connection's receiver path (at `--public-url`
  when given) and carrying a valid token; Uniconta rows whose last call failed;
* Redis persistence (AOF or RDB snapshots) is on, so queued jobs and dead letters survive
  a restart.
"""

from __future__ import annotations

import hmac
import logging
import re
import xml.etree.ElementTree as ET
from dataclasses import asdict, dataclass
from typing import Any
from urllib.parse import parse_qs, urlsplit

import redis
import requests

from sync.clients.errors import ApiError, AuthError, redact
from sync.clients.uniconta import UnicontaClient
from sync.clients.webcrm import HOOK_EVENT_TYPES, WebcrmClient
from sync.config import Connection, Settings
from sync.operations.hooks_setup import CHANGE_EVENT_ENTITY, UNICONTA_TABLES, WEBCRM_HOOKS

log = logging.getLogger(__name__)

TEXT_TYPES = ("T", "M", "ML", "TM")
ID_TYPES = ("Edm.String", "Edm.Int64", "Edm.Int32")
CUSTOM = re.compile(r"Custom\d+$")
FIELD_TYPES = {"Organisation": "Organisation", "Person": "Person", "User": "User", "Delivery": "Delivery"}


@dataclass
class Check:
    area: str
    name: str
    ok: bool
    message: str
    fix: str = ""
    warning: bool = False  # could not be checked; not counted as a problem

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------- what is required


def webcrm_fields(conn: Connection) -> dict[str, dict[str, str]]:
    """The webCRM custom fields the enabled flows use: {entity type: {property: purpose}}."""
    out: dict[str, dict[str, str]] = {}

    def want(entity_type: str, prop: str, purpose: str) -> None:
        if prop and CUSTOM.search(prop):
            out.setdefault(entity_type, {})[prop] = purpose

    if conn.enabled("organisations"):
        o = conn.organisations
        want("Organisation", o.debtor_number_field, "Uniconta debtor number")
        want("Organisation", o.status_field, "sync status")
        for name, prop in o.shown_fields.items():
            want("Organisation", prop, f"Uniconta {name.replace('_', ' ')}")
        for name, prop in o.source_fields.items():
            want("Organisation", prop, name.replace("_", " "))
    if conn.enabled("users"):
        want("User", conn.users.webcrm_link_field, "Uniconta employee number")
    if conn.enabled("persons"):
        want("Person", conn.persons.webcrm_link_field, "Uniconta contact id")
    if conn.enabled("orders"):
        want("Delivery", getattr(conn.orders, "status_field", ""), "sync status")
    return out


def uniconta_fields(conn: Connection) -> dict[str, dict[str, str]]:
    """The Uniconta fields the enabled flows use: {ClientUser entity: {property: purpose}}."""
    out: dict[str, dict[str, str]] = {}
    if conn.enabled("organisations"):
        out.setdefault("DebtorClientUser", {})[conn.organisations.uniconta_link_field] = "webCRM organisation id"
    if conn.enabled("orders"):
        out.setdefault("DebtorOrderClientUser", {})[conn.orders.uniconta_link_field] = "webCRM delivery id"
        out.setdefault("DebtorOrderLineClientUser", {})[conn.orders.uniconta_line_link_field] = "webCRM line id"
    if conn.enabled("users"):
        out.setdefault("EmployeeClientUser", {})[conn.users.uniconta_link_field] = "webCRM user id"
    if conn.enabled("persons"):
        out.setdefault("ContactClientUser", {})[conn.persons.uniconta_link_field] = "webCRM person id"
    return out


def catalogue_fields(conn: Connection) -> list[str]:
    if not conn.enabled("items"):
        return []
    i = conn.items
    return [f for f in (i.number_field, i.name_field, i.unit_field, i.group_field) if f]


# --------------------------------------------------------------------------- the checks


def run_checks(conn: Connection, webcrm: WebcrmClient, uniconta: UnicontaClient, r: redis.Redis,
               public_url: str | None = None, appendfsync: str | None = None) -> list[Check]:
    """Every check for one connection; `appendfsync` is the fsync policy Redis should run with."""
    checks: list[Check] = []
    webcrm_ok = _check_webcrm_login(conn, webcrm, checks)
    uniconta_ok = _check_uniconta_login(conn, uniconta, checks)
    if webcrm_ok:
        _guard(checks, "webcrm fields", lambda: _check_webcrm_fields(conn, webcrm, checks))
    if uniconta_ok:
        _guard(checks, "uniconta fields", lambda: _check_uniconta_fields(conn, uniconta, checks))
    if webcrm_ok and uniconta_ok:
        _guard(checks, "webhooks", lambda: _check_hooks(conn, webcrm, uniconta, public_url, checks))
    _check_redis(r, checks, appendfsync)
    return checks


def _guard(checks: list[Check], area: str, step: Any) -> None:
    try:
        step()
    except (ApiError, requests.RequestException, ET.ParseError) as err:
        checks.append(Check(area, "read", False, f"could not check: {err}", "see the error; run doctor again"))


def _check_webcrm_login(conn: Connection, webcrm: WebcrmClient, checks: list[Check]) -> bool:
    try:
        info = webcrm.auth_info()
    except AuthError as err:
        checks.append(Check("webcrm", "credentials", False, f"webCRM rejected the auth code: {err}",
                            "create an API application token in webCRM (Settings → API) and set "
                            f"connections.{conn.id}.webcrm.auth_code"))
        return False
    except ApiError as err:
        checks.append(Check("webcrm", "credentials", False, f"webCRM is not reachable: {err}",
                            f"check connections.{conn.id}.webcrm.base_url and the network"))
        return False
    checks.append(Check("webcrm", "credentials", True, f"logged in to {conn.webcrm.base_url}"))
    name = str(info.get("UserName") or info.get("Name") or "").strip() if isinstance(info, dict) else ""
    if name and name != conn.webcrm.api_user_name:
        checks.append(Check("webcrm", "api user name", False,
                            f"webCRM writes {name!r} into UpdatedBy for our writes, but api_user_name is "
                            f"{conn.webcrm.api_user_name!r}: our own changes would come back as edits",
                            f"set connections.{conn.id}.webcrm.api_user_name = {name!r}"))
    elif name:
        checks.append(Check("webcrm", "api user name", True, f"our writes show as {name!r}"))
    return True


def _check_uniconta_login(conn: Connection, uniconta: UnicontaClient, checks: list[Check]) -> bool:
    try:
        list(uniconta.odata("DebtorClient", top=1))
    except AuthError as err:
        checks.append(Check("uniconta", "credentials", False, f"Uniconta rejected the login: {err}",
                            f"check connections.{conn.id}.uniconta.username/password (a dedicated server user) "
                            "and company_id"))
        return False
    except ApiError as err:
        checks.append(Check("uniconta", "credentials", False, f"Uniconta is not reachable: {err}",
                            f"check connections.{conn.id}.uniconta.base_url, company_id and the network"))
        return False
    checks.append(Check("uniconta", "credentials", True,
                        f"logged in to company {conn.uniconta.company_id} at {conn.uniconta.base_url}"))
    return True


def _check_webcrm_fields(conn: Connection, webcrm: WebcrmClient, checks: list[Check]) -> None:
    for entity_type, wanted in webcrm_fields(conn).items():
        meta = {str(m.get("FieldMetadataDbFieldName") or m.get("FieldMetadataFriendlyFieldName")): m
                for m in webcrm.fields_metadata(entity_type)}
        for prop, purpose in wanted.items():
            m = meta.get(prop)
            where = f"{entity_type} field {prop} ({purpose})"
            if m is None:
                checks.append(Check("webcrm fields", prop, False, f"{where} is not set up in webCRM",
                                    f"in webCRM, enable {prop} on {entity_type} as a text field (Settings → "
                                    "Custom fields), or point the configuration at another field"))
                continue
            kind = str(m.get("FieldMetadataDisplayType") or "")
            if kind not in TEXT_TYPES:
                checks.append(Check("webcrm fields", prop, False,
                                    f"{where} has display type {kind!r}; the sync writes free text",
                                    f"make {prop} a text field in webCRM (display type T or M)"))
                continue
            label = m.get("FieldMetadataLabel") or prop
            checks.append(Check("webcrm fields", prop, True, f"{where}: {label!r}, type {kind}"))
    wanted_data = catalogue_fields(conn)
    if wanted_data:
        setup = webcrm.linked_setup()
        for prop in wanted_data:
            number = prop.rsplit("Data", 1)[-1]
            if setup.get(f"QuotationLineLinkedSetupUseLinkedField{number}"):
                checks.append(Check("webcrm fields", prop, True, f"catalogue field Data{number} is enabled"))
            else:
                checks.append(Check("webcrm fields", prop, False,
                                    f"catalogue field Data{number} ({prop}) is not enabled in webCRM",
                                    f"enable Data{number} in webCRM's product catalogue setup, or set "
                                    f"connections.{conn.id}.items to fields that are enabled"))


def uniconta_metadata(uniconta: UnicontaClient) -> dict[str, dict[str, str]]:
    """{entity: {property: Edm type}} from the OData `$metadata` document."""
    path = f"/odata/{uniconta.company_id}/$metadata"
    response = uniconta._send("GET", path, headers={"Accept": "application/xml"}, auth=uniconta._odata_auth)
    root = ET.fromstring(response.content)  # noqa: S314 - our configured server's metadata
    out: dict[str, dict[str, str]] = {}
    for element in root.iter():
        if element.tag.endswith("EntityType"):
            props = {p.get("Name", ""): p.get("Type", "") for p in element if p.tag.endswith("Property")}
            out[element.get("Name", "")] = props
    return out


def _check_uniconta_fields(conn: Connection, uniconta: UnicontaClient, checks: list[Check]) -> None:
    wanted = uniconta_fields(conn)
    if not wanted:
        return
    types = uniconta_metadata(uniconta)
    for entity, props in wanted.items():
        table = entity.removesuffix("ClientUser")
        for prop, purpose in props.items():
            where = f"{table} field {prop} ({purpose})"
            kind = types.get(entity, {}).get(prop)
            if kind is None:
                checks.append(Check("uniconta fields", f"{table}.{prop}", False, f"{where} does not exist in Uniconta",
                                    f"add the user-defined field {prop!r} (type Text) to table {table} in Uniconta; "
                                    "without it Uniconta silently drops the value and links are lost"))
            elif kind not in ID_TYPES:
                checks.append(Check("uniconta fields", f"{table}.{prop}", False, f"{where} has type {kind}",
                                    f"change {table}.{prop} to a Text (or integer) field in Uniconta"))
            else:
                checks.append(Check("uniconta fields", f"{table}.{prop}", True, f"{where}: {kind}"))


# --------------------------------------------------------------------------- hooks


def _token_ok(conn: Connection, token: str | None) -> bool:
    return bool(token) and any(hmac.compare_digest(str(token).encode(), t.reveal().encode())
                               for t in conn.webhook.tokens)


def _query_token(url: str, argument: str = "") -> str | None:
    params = parse_qs(urlsplit(url).query)
    params.update(parse_qs(argument or ""))
    values = params.get("token")
    return values[0] if values else None


def _ours(conn: Connection, url: str) -> bool:
    return f"/webhook/{conn.id}/" in urlsplit(url or "").path + "/"


def list_hooks(conn: Connection, webcrm: WebcrmClient, uniconta: UnicontaClient) -> list[dict[str, Any]]:
    """The hooks in both systems that point at this connection's receiver paths (tokens masked)."""
    found: list[dict[str, Any]] = []
    seen_entities = sorted({e for entities in WEBCRM_HOOKS.values() for e in entities})
    for entity in seen_entities:
        for hook in webcrm.hooks(entity):
            url = str(hook.get("TargetUrl") or "")
            if not _ours(conn, url):
                continue
            found.append({"system": "webcrm", "entity": entity, "id": hook.get("Id") or hook.get("HookId"),
                          "event": hook.get("EventType"), "enabled": bool(hook.get("IsEnabled")),
                          "url": redact(url), "token_ok": _token_ok(conn, _query_token(url))})
    names = {table_id: table for tables in UNICONTA_TABLES.values() for table, table_id in tables}
    for row in uniconta.odata(CHANGE_EVENT_ENTITY):
        url = str(row.get("Url") or "")
        if not _ours(conn, url):
            continue
        table_id = int(row.get("TableId") or 0)
        found.append({"system": "uniconta", "entity": names.get(table_id, "all" if table_id == 0 else str(table_id)),
                      "table_id": table_id, "id": row.get("RowId"), "enabled": True, "url": redact(url),
                      "token_ok": _token_ok(conn, _query_token(url, str(row.get("Argument") or ""))),
                      "has_error": bool(row.get("HasError")), "error": row.get("ErrorMessage") or ""})
    return found


def remove_hooks(conn: Connection, webcrm: WebcrmClient, uniconta: UnicontaClient,
                 public_url: str | None = None) -> list[str]:
    """Delete this connection's hooks (only those at `public_url` when given); returns what was removed."""
    removed: list[str] = []
    for hook in list_hooks(conn, webcrm, uniconta):
        if public_url and not _at(hook, public_url, webcrm, uniconta):
            continue
        if hook["system"] == "webcrm":
            webcrm.delete_hook(hook["entity"], int(hook["id"]))
            removed.append(f"webcrm {hook['entity']} {hook['event']}")
        else:
            uniconta.delete(CHANGE_EVENT_ENTITY, {"RowId": hook["id"]})
            removed.append(f"uniconta {hook['entity']}")
    return removed


def _at(hook: dict[str, Any], public_url: str, webcrm: WebcrmClient, uniconta: UnicontaClient) -> bool:
    # list_hooks masks the query; the base URL before it is intact.
    return str(hook["url"]).startswith(public_url.rstrip("/") + "/")


def _check_hooks(conn: Connection, webcrm: WebcrmClient, uniconta: UnicontaClient, public_url: str | None,
                 checks: list[Check]) -> None:
    hooks = list_hooks(conn, webcrm, uniconta)
    base = public_url.rstrip("/") if public_url else None
    install = f"syncctl hooks install {conn.id} --public-url {public_url or 'https://<your receiver>'}"

    def good(h: dict[str, Any], path: str) -> bool:
        url = str(h["url"])
        return (h["enabled"] and h["token_ok"] and urlsplit(url).path.endswith(path)
                and (base is None or url.startswith(base + "/")))

    for flow, entities in WEBCRM_HOOKS.items():
        if not conn.enabled(flow):
            continue
        for entity in entities:
            for event in HOOK_EVENT_TYPES:
                mine = [h for h in hooks if h["system"] == "webcrm" and h["entity"] == entity and h["event"] == event]
                name = f"webCRM {entity} {event}"
                if any(good(h, f"/webhook/{conn.id}/webcrm") for h in mine):
                    checks.append(Check("webhooks", name, True, f"{name} hook registered"))
                elif mine:
                    checks.append(Check("webhooks", name, False, f"{name} hook exists but is disabled, has no valid "
                                        f"token or points elsewhere ({mine[0]['url']})", install))
                else:
                    checks.append(Check("webhooks", name, False, f"no {name} hook points at this connection", install))
    for flow, tables in UNICONTA_TABLES.items():
        if not conn.enabled(flow):
            continue
        for table, table_id in tables:
            path = f"/webhook/{conn.id}/{'invitems' if table == 'InvItem' else 'uniconta'}"
            mine = [h for h in hooks if h["system"] == "uniconta" and h["table_id"] in (table_id, 0)]
            name = f"Uniconta {table} Change URL"
            ok = [h for h in mine if good(h, path) or (good(h, f"/webhook/{conn.id}/uniconta"))]
            if ok and any(h["has_error"] for h in ok):
                failed = next(h for h in ok if h["has_error"])
                checks.append(Check("webhooks", name, False, f"{name}: the last call failed: {failed['error'] or 'error'}",
                                    "check that the receiver is reachable from Uniconta at that URL; the flag "
                                    "clears with the next successful call"))
            elif ok:
                checks.append(Check("webhooks", name, True, f"{name} registered"))
            elif mine:
                checks.append(Check("webhooks", name, False, f"a {table} row exists but has no valid token or points "
                                    f"elsewhere ({mine[0]['url']})", install))
            else:
                checks.append(Check("webhooks", name, False, f"no Change-URL row for {table} points at this "
                                    "connection", install))


def _check_redis(r: redis.Redis, checks: list[Check], appendfsync: str | None = None) -> None:
    fsync = "unknown"
    try:
        aof = str(r.config_get("appendonly").get("appendonly", "no"))
        save = str(r.config_get("save").get("save", ""))
        fsync = str(r.config_get("appendfsync").get("appendfsync", "unknown"))
    except redis.ResponseError:  # CONFIG is disabled (managed Redis): ask INFO instead
        info = r.info("persistence")
        aof = "yes" if info.get("aof_enabled") else "no"
        save = "unknown"
    except redis.RedisError as err:
        checks.append(Check("redis", "persistence", False, f"Redis is not reachable: {err}", "check REDIS_URL"))
        return
    if aof == "yes":
        checks.append(Check("redis", "persistence", True, "append-only file is on"))
        _check_fsync(fsync, appendfsync, checks)
    elif save and save != "unknown":
        checks.append(Check("redis", "persistence", True, f"RDB snapshots ({save}); AOF would lose less"))
    elif save == "unknown":
        checks.append(Check("redis", "persistence", True, "cannot read Redis' configuration; make sure AOF or "
                            "RDB persistence is on", warning=True))
    else:
        checks.append(Check("redis", "persistence", False,
                            "Redis keeps nothing on disk: a restart loses queued jobs, dead letters and links",
                            "enable AOF: `appendonly yes` in redis.conf (or CONFIG SET appendonly yes; CONFIG REWRITE)"))


def _check_fsync(running: str, wanted: str | None, checks: list[Check]) -> None:
    """The AOF fsync policy decides what a crash of the host can lose (docs/operations.md)."""
    loses = {"always": "nothing Redis acknowledged", "everysec": "up to about the last second",
             "no": "up to about the last 30 s"}
    strength = {"no": 0, "everysec": 1, "always": 2}
    if wanted and running in strength and strength[running] < strength.get(wanted, 0):
        checks.append(Check("redis", "fsync", False, f"Redis runs appendfsync {running}, REDIS_APPENDFSYNC says "
                            f"{wanted}: a host crash may lose {loses.get(running, 'an unknown amount')} of accepted "
                            "webhooks", f"`appendfsync {wanted}` in redis.conf (or CONFIG SET appendfsync {wanted}; "
                            "CONFIG REWRITE); docker compose passes REDIS_APPENDFSYNC from .env"))
    elif running != "unknown":
        checks.append(Check("redis", "fsync", True, f"appendfsync {running}: a host crash loses "
                            f"{loses.get(running, 'an unknown amount')} (reconciliation repairs lost changes)"))


# --------------------------------------------------------------------------- the demo


def demo_field_labels(conn: Connection) -> dict[str, dict[str, str]]:
    """Labels for the webCRM custom fields a connection uses (the demo sandbox starts with none)."""
    return {entity_type: {prop: purpose[:1].upper() + purpose[1:] for prop, purpose in wanted.items()}
            for entity_type, wanted in webcrm_fields(conn).items()}


def install_demo_fields(settings: Settings) -> list[str]:
    """Publish those labels in the webCRM sandbox of the built-in demo (for `make run`)."""
    done: list[str] = []
    for conn in settings.connections.values():
        base = conn.webcrm.base_url.rstrip("/")
        for entity_type, labels in demo_field_labels(conn).items():
            body = {prop: {"Label": label, "DisplayType": "T"} for prop, label in labels.items()}
            requests.put(f"{base}/_sandbox/fields/{entity_type}", json=body, timeout=5).raise_for_status()
            done += [f"{entity_type}.{prop}" for prop in labels]
    return done
