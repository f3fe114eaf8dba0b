"""Configuration: the environment plus a TOML file of connections, validated once at start.

One *connection* is one webCRM instance + one Uniconta company + the webhook
secrets + per-flow settings. Without `SYNC_CONFIG` the built-in connection
`demo` (sync/demo.toml) points at the two sandboxes. Every error names the
file, the dotted key and what is wrong, so a bad deploy stops with one clear
line instead of failing later inside a worker.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Mapping
from contextvars import ContextVar
from dataclasses import dataclass, field, fields, is_dataclass
from importlib import resources
from typing import Any

from marshmallow import RAISE, Schema, ValidationError, post_load, validate, validates_schema
from marshmallow import fields as f

from sync.secrets import Secret, forget

FLOWS = ("organisations", "items", "orders", "users", "persons")
CONNECTION_ID = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Redis' AOF fsync policies (sync.redis_server.APPENDFSYNC_POLICIES; the layers keep the two apart).
APPENDFSYNC = ("always", "everysec", "no")


# The sandboxes' documented default credentials: published, so not worth masking.
PUBLIC_DEMO_VALUES = ("sandbox", "sandbox-token", "demo-token")


class ConfigError(Exception):
    """Configuration is unusable; the message names the source, the key and the problem."""


# --------------------------------------------------------------------------- model


@dataclass(frozen=True)
class WebhookSettings:
    tokens: tuple[Secret, ...]
    signing_secrets: tuple[Secret, ...] = ()


@dataclass(frozen=True)
class WebcrmSettings:
    base_url: str
    auth_code: Secret
    api_user_name: str = "Integration"
    rate_limit_per_minute: int = 250
    page_size: int = 500
    timeout_seconds: float = 20.0
    bulk_writes: bool = True  # batch jobs write many records with one PATCH (result format unconfirmed)
    bulk_write_size: int = 200


@dataclass(frozen=True)
class UnicontaSettings:
    base_url: str
    company_id: int
    username: str
    password: Secret
    daily_call_budget: int = 5000
    live_reserve: int = 1000
    timeout_seconds: float = 20.0
    or_filter_size: int = 40  # values per OData `or` list (Uniconta allows 40)
    page_size: int = 1000  # OData rows per page asked for (Prefer: odata.maxpagesize)
    insert_list_size: int = 200  # records per InsertList


@dataclass(frozen=True)
class OrganisationFlow:
    trigger_field: str = "OrganisationType"
    trigger_keywords: tuple[str, ...] = ("Kunde",)
    required_fields: tuple[str, ...] = ("name", "address", "postcode", "city", "country")
    debtor_number_field: str = "OrganisationExtraCustom1"
    debtor_number_strategy: str = "series"
    debtor_number_prefix: str = ""
    debtor_number_start: int = 10000
    status_field: str = ""
    uniconta_link_field: str = "WebcrmId"
    debtor_group: str = ""
    # cvr and phone have standard webCRM fields; currency, VAT group and invoice e-mail live in
    # per-instance custom fields, so they sync only once configured. A configured table replaces this.
    source_fields: Mapping[str, str] = field(default_factory=lambda: {
        "cvr": "OrganisationVatNumber", "phone": "OrganisationTelephone"})
    shown_fields: Mapping[str, str] = field(default_factory=dict)
    country_names: Mapping[str, str] = field(default_factory=dict)
    create_from_uniconta: bool = False  # debtors made in Uniconta become new webCRM organisations


@dataclass(frozen=True)
class ItemFlow:
    number_field: str = "QuotationLineLinkedDataItemData1"
    name_field: str = "QuotationLineLinkedDataItemData2"
    unit_field: str = "QuotationLineLinkedDataItemData3"
    group_field: str = "QuotationLineLinkedDataItemData4"
    price_field: str = "SalesPrice1"


@dataclass(frozen=True)
class OrderFlow:
    ready_field: str = "DeliveryErpStatus"
    ready_values: tuple[str, ...] = ("ReadyForSynchronization",)
    item_number_field: str = "QuotationLineData1"
    uniconta_link_field: str = "WebcrmDeliveryId"
    uniconta_line_link_field: str = "WebcrmLineId"
    status_field: str = "DeliveryCustom15"
    line_text_field: str = "QuotationLineData2"
    company_currency: str = "DKK"


@dataclass(frozen=True)
class UserFlow:
    webcrm_link_field: str = "UserCustom1"
    uniconta_link_field: str = "WebcrmUserId"
    sales_title: str = "Sælger"
    employee_group: str = ""


@dataclass(frozen=True)
class PersonFlow:
    webcrm_link_field: str = "PersonCustom1"
    uniconta_link_field: str = "ReferenceId"


@dataclass(frozen=True)
class Connection:
    id: str
    webhook: WebhookSettings
    webcrm: WebcrmSettings
    uniconta: UnicontaSettings
    flows: tuple[str, ...] = FLOWS
    conflict_policy: str = "newest"
    reconcile_minutes: int = 10
    reconcile_overlap_minutes: int = 10
    reconcile_max_records: int = 2000
    reconcile_full_hours: int = 24
    reconcile_max_wait_seconds: int = 300  # a sweep waits out rate limits (Retry-After) this long in total
    backfill_window: int = 1000  # records syncctl backfill keeps waiting in the queue at most
    batch_size: int = 500  # records per batch job (backfill pages, reconciliation, bursts)
    echo_window_seconds: float = 2.0  # how long a batch's own webhooks are gathered before they are checked
    burst_threshold: int = 5  # single jobs of one entity waiting: the next one takes them into a batch (0 = off)
    organisations: OrganisationFlow = OrganisationFlow()
    items: ItemFlow = ItemFlow()
    orders: OrderFlow = OrderFlow()
    users: UserFlow = UserFlow()
    persons: PersonFlow = PersonFlow()

    def enabled(self, flow: str) -> bool:
        return flow in self.flows


@dataclass(frozen=True)
class Settings:
    connections: Mapping[str, Connection]
    source: str
    redis_url: str | None = None
    redis_appendfsync: str = "everysec"  # the embedded Redis' policy; `doctor` compares any Redis with it
    sentry_dsn: Secret | None = None
    log_level: str = "INFO"
    log_format: str = "text"
    demo: bool = False
    max_attempts: int = 50
    retry_window_seconds: float = 3600.0
    retry_base_seconds: float = 2.0
    retry_max_seconds: float = 300.0
    task_time_limit: int = 120
    batch_time_limit: int = 300
    metrics_port: int = 0  # the worker's Prometheus endpoint; 0 = none (docs/operations.md)
    metrics_host: str = "127.0.0.1"

    def connection(self, connection_id: str) -> Connection | None:
        return self.connections.get(connection_id)


# --------------------------------------------------------------------------- schemas


# The environment secrets are read from while a file is being loaded (marshmallow 4 has no context).
_ENVIRON: ContextVar[Mapping[str, str]] = ContextVar("config_environ", default=os.environ)


class SecretField(f.Field):
    """A literal string, or `{env = "NAME"}` read from the environment at load time."""

    default_error_messages = {
        "invalid": "Must be a string or a table {env = \"VARIABLE\"}.",
        "unset": "Environment variable {name} is not set.",
        "empty": "Must not be empty.",
    }

    def _deserialize(self, value: Any, attr: str | None, data: Any, **kwargs: Any) -> Secret:
        environ = _ENVIRON.get()
        if isinstance(value, str):
            text = value
        elif isinstance(value, dict) and set(value) == {"env"} and isinstance(value["env"], str):
            name = value["env"]
            if name not in environ:
                raise self.make_error("unset", name=name)
            text = environ[name]
        else:
            raise self.make_error("invalid")
        if not text:
            raise self.make_error("empty")
        return Secret(text)


class _Base(Schema):
    class Meta:
        unknown = RAISE

    model: type = object

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        return self.model(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})


_str_list = f.List(f.String(validate=validate.Length(min=1)))
_url = f.Url(require_tld=False, schemes={"http", "https"}, required=True)


class WebhookSchema(_Base):
    model = WebhookSettings
    tokens = f.List(SecretField(), required=True, validate=validate.Length(min=1))
    signing_secrets = f.List(SecretField())

    @validates_schema
    def _signing_secrets_decode(self, data: dict[str, Any], **kwargs: Any) -> None:
        from standardwebhooks import Webhook

        for index, secret in enumerate(data.get("signing_secrets", [])):
            try:
                Webhook(secret.reveal())
            except Exception:
                raise ValidationError(f"{index}: not a Standard Webhooks secret (whsec_<base64>)",
                                      "signing_secrets") from None


class WebcrmSchema(_Base):
    model = WebcrmSettings
    base_url = _url
    auth_code = SecretField(required=True)
    api_user_name = f.String(validate=validate.Length(min=1))
    rate_limit_per_minute = f.Integer(validate=validate.Range(min=0))
    page_size = f.Integer(validate=validate.Range(min=1, max=1000))
    timeout_seconds = f.Float(validate=validate.Range(min=0.1, max=300))
    bulk_writes = f.Boolean()
    bulk_write_size = f.Integer(validate=validate.Range(min=1, max=1000))


class UnicontaSchema(_Base):
    model = UnicontaSettings
    base_url = _url
    company_id = f.Integer(required=True, strict=True, validate=validate.Range(min=1))
    username = f.String(required=True, validate=validate.Length(min=1))
    password = SecretField(required=True)
    daily_call_budget = f.Integer(validate=validate.Range(min=0))
    live_reserve = f.Integer(validate=validate.Range(min=0))
    timeout_seconds = f.Float(validate=validate.Range(min=0.1, max=300))
    or_filter_size = f.Integer(validate=validate.Range(min=1, max=40))
    page_size = f.Integer(validate=validate.Range(min=1, max=10_000))
    insert_list_size = f.Integer(validate=validate.Range(min=1, max=1000))

    @validates_schema
    def _reserve_below_budget(self, data: dict[str, Any], **kwargs: Any) -> None:
        budget, reserve = data.get("daily_call_budget", 5000), data.get("live_reserve", 1000)
        if budget and reserve >= budget:
            raise ValidationError("must be smaller than daily_call_budget", "live_reserve")


class OrganisationFlowSchema(_Base):
    model = OrganisationFlow
    trigger_field = f.String(validate=validate.OneOf(["OrganisationType", "OrganisationStatus"]))
    trigger_keywords = f.List(f.String(validate=validate.Length(min=1)), validate=validate.Length(min=1))
    required_fields = f.List(f.String(validate=validate.OneOf(
        ["name", "address", "postcode", "city", "country", "cvr", "phone", "currency", "vat_group",
         "invoice_email"])))
    debtor_number_field = f.String(validate=validate.Length(min=1))
    debtor_number_strategy = f.String(validate=validate.OneOf(["series", "organisation_id"]))
    debtor_number_prefix = f.String(validate=validate.Length(max=10))
    debtor_number_start = f.Integer(validate=validate.Range(min=1))
    status_field = f.String()
    uniconta_link_field = f.String(validate=validate.Length(min=1))
    debtor_group = f.String()
    source_fields = f.Dict(keys=f.String(validate=validate.OneOf(
        ["cvr", "phone", "currency", "vat_group", "invoice_email"])), values=f.String(validate=validate.Length(min=1)))
    shown_fields = f.Dict(keys=f.String(validate=validate.OneOf(["ean", "payment_terms", "debtor_group"])),
                          values=f.String(validate=validate.Length(min=1)))
    country_names = f.Dict(keys=f.String(validate=validate.Length(min=1)),
                           values=f.String(validate=validate.Length(min=1)))
    create_from_uniconta = f.Boolean()

    @validates_schema
    def _required_fields_have_sources(self, data: dict[str, Any], **kwargs: Any) -> None:
        sources = data.get("source_fields", OrganisationFlow().source_fields)
        standard = {"name", "address", "postcode", "city", "country"}
        lacking = [name for name in data.get("required_fields", ()) if name not in standard and name not in sources]
        if lacking:
            raise ValidationError(f"{', '.join(lacking)}: required but not in source_fields, so never filled",
                                  "required_fields")


class ItemFlowSchema(_Base):
    model = ItemFlow
    number_field = f.String(validate=validate.Length(min=1))
    name_field = f.String(validate=validate.Length(min=1))
    unit_field = f.String()
    group_field = f.String()
    price_field = f.String(validate=validate.OneOf(["SalesPrice1", "SalesPrice2", "SalesPrice3"]))


class OrderFlowSchema(_Base):
    model = OrderFlow
    ready_field = f.String(validate=validate.Length(min=1))
    ready_values = f.List(f.String(validate=validate.Length(min=1)), validate=validate.Length(min=1))
    item_number_field = f.String(validate=validate.Length(min=1))
    uniconta_link_field = f.String(validate=validate.Length(min=1))
    uniconta_line_link_field = f.String(validate=validate.Length(min=1))
    status_field = f.String(validate=validate.Regexp(r"^(Delivery[A-Za-z0-9]+)?$",
                                                     error="must be a Delivery field name, or \"\" for none"))
    line_text_field = f.String(validate=validate.Regexp(r"^(QuotationLine[A-Za-z0-9]+)?$",
                                                        error="must be a QuotationLine field name, or \"\""))
    company_currency = f.String(validate=validate.Regexp(r"^[A-Z]{3}$", error="must be an ISO code like DKK"))

    @validates_schema
    def _status_field_is_free(self, data: dict[str, Any], **kwargs: Any) -> None:
        status = data.get("status_field", OrderFlow.status_field)
        taken = {"DeliveryErpId", "DeliveryErpStatus", "DeliveryErpSyncDateTime",
                 data.get("ready_field", OrderFlow.ready_field)}
        if status and status in taken:
            raise ValidationError("must not be the ready field or one of the DeliveryErp* fields the flow writes",
                                  "status_field")


_uniconta_field = f.String(validate=validate.Regexp(r"^[A-Za-z_][A-Za-z0-9_]{0,63}$",
                                                    error="must be a Uniconta field name"))


class UserFlowSchema(_Base):
    model = UserFlow
    webcrm_link_field = f.String(validate=validate.Regexp(r"^User[A-Za-z0-9]+$",
                                                          error="must be a User field name, e.g. UserCustom1"))
    uniconta_link_field = _uniconta_field
    sales_title = f.String(validate=validate.Length(max=40))
    employee_group = f.String(validate=validate.Length(max=20))


class PersonFlowSchema(_Base):
    model = PersonFlow
    webcrm_link_field = f.String(validate=validate.Regexp(r"^Person[A-Za-z0-9]+$",
                                                          error="must be a Person field name, e.g. PersonCustom1"))
    uniconta_link_field = _uniconta_field


class ConnectionSchema(_Base):
    model = Connection
    webhook = f.Nested(WebhookSchema, required=True)
    webcrm = f.Nested(WebcrmSchema, required=True)
    uniconta = f.Nested(UnicontaSchema, required=True)
    flows = f.List(f.String(validate=validate.OneOf(FLOWS)))
    conflict_policy = f.String(validate=validate.OneOf(["newest", "webcrm", "uniconta"]))
    reconcile_minutes = f.Integer(validate=validate.Range(min=1, max=1440))
    reconcile_overlap_minutes = f.Integer(validate=validate.Range(min=0, max=1440))
    reconcile_max_records = f.Integer(validate=validate.Range(min=1, max=1_000_000))
    reconcile_full_hours = f.Integer(validate=validate.Range(min=0, max=24 * 31))
    reconcile_max_wait_seconds = f.Integer(validate=validate.Range(min=0, max=3600))
    backfill_window = f.Integer(validate=validate.Range(min=0, max=100_000))
    batch_size = f.Integer(validate=validate.Range(min=1, max=1000))
    echo_window_seconds = f.Float(validate=validate.Range(min=0, max=60))
    burst_threshold = f.Integer(validate=validate.Range(min=0, max=10_000))
    organisations = f.Nested(OrganisationFlowSchema)
    items = f.Nested(ItemFlowSchema)
    orders = f.Nested(OrderFlowSchema)
    users = f.Nested(UserFlowSchema)
    persons = f.Nested(PersonFlowSchema)

    @post_load
    def _make(self, data: dict[str, Any], **kwargs: Any) -> Any:
        # The id is the table's key, set by the caller.
        return data


class FileSchema(Schema):
    class Meta:
        unknown = RAISE

    connections = f.Dict(keys=f.String(), values=f.Raw(), required=True)


# --------------------------------------------------------------------------- loading


def _flatten(messages: Any, prefix: str = "") -> list[str]:
    """marshmallow's nested error dict → ["a.b.c: message", ...]."""
    out: list[str] = []
    if isinstance(messages, dict):
        for key, value in messages.items():
            label = "" if key == "_schema" else str(key)
            if key == "value" and isinstance(value, (dict, list)):  # Dict(values=...) wraps errors in "value"
                label = ""
            path = ".".join(p for p in (prefix, label) if p)
            out.extend(_flatten(value, path))
    elif isinstance(messages, list):
        for item in messages:
            if isinstance(item, (dict, list)):
                out.extend(_flatten(item, prefix))
            else:
                out.append(f"{prefix}: {_plain(str(item))}" if prefix else _plain(str(item)))
    else:
        out.append(f"{prefix}: {_plain(str(messages))}")
    return out


def _plain(message: str) -> str:
    return "unknown key" if message == "Unknown field." else message


def parse_connections(document: Mapping[str, Any], *, source: str,
                      environ: Mapping[str, str] | None = None) -> dict[str, Connection]:
    """Validate a parsed TOML document into connections, or raise ConfigError naming the key."""
    environ = os.environ if environ is None else environ
    try:
        top = FileSchema().load(dict(document))
    except ValidationError as err:
        raise ConfigError(f"{source}: " + "; ".join(_flatten(err.messages))) from None
    if not top["connections"]:
        raise ConfigError(f"{source}: connections: at least one connection is required")
    result: dict[str, Connection] = {}
    for conn_id, raw in top["connections"].items():
        key = f"connections.{conn_id}"
        if not CONNECTION_ID.match(conn_id):
            raise ConfigError(f"{source}: {key}: connection ids may only use letters, digits, '-' and '_' "
                              "(they appear in webhook URLs)")
        if not isinstance(raw, dict):
            raise ConfigError(f"{source}: {key}: must be a table")
        token = _ENVIRON.set(environ)
        try:
            data = ConnectionSchema().load(raw)
        except ValidationError as err:
            raise ConfigError(f"{source}: " + "; ".join(_flatten(err.messages, key))) from None
        finally:
            _ENVIRON.reset(token)
        if "flows" in data:
            data["flows"] = tuple(data["flows"])
        result[conn_id] = Connection(id=conn_id, **data)
    return result


def load_file(path: str, environ: Mapping[str, str] | None = None) -> dict[str, Connection]:
    """Read and validate a TOML connections file."""
    try:
        with open(path, "rb") as fh:
            document = tomllib.load(fh)
    except FileNotFoundError:
        raise ConfigError(f"{path}: file not found") from None
    except OSError as err:
        raise ConfigError(f"{path}: cannot read: {err.strerror}") from None
    except tomllib.TOMLDecodeError as err:
        raise ConfigError(f"{path}: not valid TOML: {err}") from None
    return parse_connections(document, source=path, environ=environ)


def demo_connections(environ: Mapping[str, str] | None = None) -> dict[str, Connection]:
    """The built-in `demo` connection to the two sandboxes (sync/demo.toml)."""
    environ = dict(os.environ if environ is None else environ)
    environ.setdefault("DEMO_WEBHOOK_TOKEN", "demo-token")
    text = resources.files("sync").joinpath("demo.toml").read_text(encoding="utf-8")
    for name, key, default in (("webcrm_port", "SYNC_DEMO_WEBCRM_PORT", 8101),
                               ("uniconta_port", "SYNC_DEMO_UNICONTA_PORT", 8102)):
        port = _env_number(environ, key, int, default, 1, 65535)
        text = text.replace("{" + name + "}", str(port))
    connections = parse_connections(tomllib.loads(text), source="built-in demo configuration", environ=environ)
    for public in PUBLIC_DEMO_VALUES:
        forget(public)
    return connections


def load_settings(environ: Mapping[str, str] | None = None) -> Settings:
    """Settings from the environment (and the SYNC_CONFIG file); ConfigError on anything wrong."""
    environ = os.environ if environ is None else environ
    level = environ.get("LOG_LEVEL", "INFO").upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"environment: LOG_LEVEL: must be one of {', '.join(LOG_LEVELS)}, not {level!r}")
    fmt = environ.get("LOG_FORMAT", "text").lower()
    if fmt not in LOG_FORMATS:
        raise ConfigError(f"environment: LOG_FORMAT: must be 'text' or 'json', not {fmt!r}")
    redis_url = environ.get("REDIS_URL") or None
    if redis_url and not re.match(r"^(redis|rediss|unix)://", redis_url):
        raise ConfigError("environment: REDIS_URL: must start with redis://, rediss:// or unix://")
    fsync = (environ.get("REDIS_APPENDFSYNC") or "everysec").lower()
    if fsync not in APPENDFSYNC:
        raise ConfigError(f"environment: REDIS_APPENDFSYNC: must be one of {', '.join(APPENDFSYNC)}, not {fsync!r}")
    path = environ.get("SYNC_CONFIG") or None
    connections = load_file(path, environ) if path else demo_connections(environ)
    dsn = environ.get("SENTRY_DSN") or None
    tuning = {
        "max_attempts": _env_number(environ, "SYNC_MAX_ATTEMPTS", int, 50, 1, 1000),
        "retry_window_seconds": _env_number(environ, "SYNC_RETRY_WINDOW_SECONDS", float, 3600.0, 1, 7 * 86400),
        "retry_base_seconds": _env_number(environ, "SYNC_RETRY_BASE_SECONDS", float, 2.0, 0.01, 600),
        "retry_max_seconds": _env_number(environ, "SYNC_RETRY_MAX_SECONDS", float, 300.0, 0.1, 1800),
        "task_time_limit": _env_number(environ, "SYNC_TASK_TIME_LIMIT", int, 120, 5, 3600),
        "batch_time_limit": _env_number(environ, "SYNC_BATCH_TIME_LIMIT", int, 300, 5, 3600),
        "metrics_port": _env_number(environ, "SYNC_METRICS_PORT", int, 0, 0, 65535),
        "metrics_host": environ.get("SYNC_METRICS_HOST") or "127.0.0.1",
    }
    return Settings(
        connections=connections,
        source=path or "built-in demo configuration",
        redis_url=redis_url,
        redis_appendfsync=fsync,
        sentry_dsn=Secret(dsn) if dsn else None,
        log_level=level,
        log_format=fmt,
        demo=path is None,
        **tuning,
    )


def _env_number(environ: Mapping[str, str], name: str, kind: type, default: Any, low: float, high: float) -> Any:
    raw = environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = kind(raw)
    except ValueError:
        raise ConfigError(f"environment: {name}: not a valid {kind.__name__}: {raw!r}") from None
    if not low <= value <= high:
        raise ConfigError(f"environment: {name}: must be between {low} and {high}, not {raw}")
    return value


def describe(value: Any) -> Any:
    """Plain data for `config show`: dataclasses as dicts, secrets masked."""
    if isinstance(value, Secret):
        return str(value)
    if is_dataclass(value) and not isinstance(value, type):
        return {fl.name: describe(getattr(value, fl.name)) for fl in fields(value)}
    if isinstance(value, Mapping):
        return {k: describe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [describe(v) for v in value]
    return value
