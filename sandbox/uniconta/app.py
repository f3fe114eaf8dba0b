"""The Uniconta sandbox: the Entities API and the OData feed of odata.uniconta.com, plus Change URLs.

`create_app(**options)` builds the Flask app; `python -m sandbox.uniconta` serves it (see __main__).
Options (each also an environment variable, read when the option is not given):

  state_file        UNICONTA_SANDBOX_STATE_FILE      JSON file the state is loaded from / saved to
  company           UNICONTA_SANDBOX_COMPANY         company id (1234)
  user              UNICONTA_SANDBOX_USER            API user name (sandbox)
  password          UNICONTA_SANDBOX_PASSWORD        its password (sandbox)
  users             UNICONTA_SANDBOX_USERS           more users, "name=password,name2=password2"
  daily_budget      UNICONTA_SANDBOX_DAILY_BUDGET    calls per user per day before slowing (5000; 0 = off)
  slowdown          UNICONTA_SANDBOX_SLOWDOWN        seconds per call per budget exceeded (1.0)
  odata_page_size   UNICONTA_SANDBOX_ODATA_PAGE_SIZE rows per OData page before @odata.nextLink (100)
  odata_max_page_size UNICONTA_SANDBOX_ODATA_MAX_PAGE_SIZE most rows a `Prefer: odata.maxpagesize=N`
                                                     request gets per page (1000)
  odata_max_or      UNICONTA_SANDBOX_ODATA_MAX_OR    most `or`-joined values in one $filter (40; 0 = no limit)
  omit_nulls        UNICONTA_SANDBOX_OMIT_NULLS      leave null properties out of responses (true)
  user_fields       UNICONTA_SANDBOX_USER_FIELDS     default user-defined fields,
                                                     "Debtor:WebcrmId,DebtorOrder:WebcrmDeliveryId:String"
  webhook_timeout   UNICONTA_SANDBOX_WEBHOOK_TIMEOUT seconds a Change-URL call may take (10)
"""

from __future__ import annotations

import json
import logging
import os
import time
from collections.abc import Callable
from typing import Any
from urllib.parse import urlencode

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException

from sandbox.common import Sandbox, Store
from sandbox.uniconta import odata
from sandbox.uniconta.admin import install_admin
from sandbox.uniconta.auth import Accounts
from sandbox.uniconta.budget import Budget
from sandbox.uniconta.changeurl import ChangeUrl
from sandbox.uniconta.entities import (
    TABLES,
    Table,
    check_user_fields,
    entity_names,
    find_entity,
    find_table,
    parse_datetime,
)
from sandbox.uniconta.errors import UnicontaError, bad_request, error_response, not_found
from sandbox.uniconta.quirks import Quirks
from sandbox.uniconta.records import Change, Company
from sandbox.uniconta.seed import make_seeders

log = logging.getLogger(__name__)
ENV = "UNICONTA_SANDBOX_"
_ODATA_OPTIONS = ("$filter", "$orderby", "$top", "$skip", "$select", "$count", "$format")
_STATUS_CODES = {400: "NoSucces", 401: "NoRights", 403: "NoRights", 404: "CouldNotFind", 405: "NoSucces",
                 413: "NoSucces", 415: "NoSucces", 429: "NoSucces"}


class Options:
    """The app's settings, from keywords, then the environment, then the defaults."""

    def __init__(self, **kw: Any) -> None:
        def pick(name: str, default: Any) -> Any:
            value = kw.pop(name, None)
            if value is None:
                value = os.environ.get(ENV + name.upper())
            return default if value is None or value == "" else value

        self.state_file: str | None = pick("state_file", None)
        self.company = _int("company", pick("company", 1234), low=1)
        self.user = str(pick("user", "sandbox"))
        self.password = str(pick("password", "sandbox"))
        self.users = _users(str(pick("users", "")))
        self.daily_budget = _int("daily_budget", pick("daily_budget", 5000), low=0)
        self.slowdown = _float("slowdown", pick("slowdown", 1.0))
        self.odata_page_size = _int("odata_page_size", pick("odata_page_size", 100), low=1)
        self.odata_max_page_size = _int("odata_max_page_size", pick("odata_max_page_size", 1000), low=1)
        self.odata_max_or = _int("odata_max_or", pick("odata_max_or", 40), low=0)
        self.omit_nulls = _bool("omit_nulls", pick("omit_nulls", True))
        self.user_fields = _user_field_spec(str(pick("user_fields", "")))
        self.webhook_timeout = _float("webhook_timeout", pick("webhook_timeout", 10.0))
        if kw:
            raise ValueError(f"unknown option(s): {', '.join(sorted(kw))}")


def _int(name: str, value: Any, *, low: int) -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be an integer, got {value!r}") from None
    if number < low:
        raise ValueError(f"{name}: must be >= {low}")
    return number


def _float(name: str, value: Any) -> float:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name}: must be a number, got {value!r}") from None
    if not number >= 0:
        raise ValueError(f"{name}: must be >= 0")
    return number


def _bool(name: str, value: Any) -> bool:
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"{name}: must be true or false, got {value!r}")


def _users(text: str) -> dict[str, str]:
    users: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, password = part.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"users: expected name=password, got {part!r}")
        users[name.strip()] = password
    return users


def _user_field_spec(text: str) -> dict[str, list[dict]]:
    """`Debtor:WebcrmId,Employee:WebcrmUserId:String` -> {"Debtor": [{"Name","Type"}], ...}."""
    result: dict[str, list[dict]] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        bits = part.split(":")
        if len(bits) not in (2, 3):
            raise ValueError(f"user_fields: expected Table:Name[:Type], got {part!r}")
        table = find_table(bits[0])
        if table is None:
            raise ValueError(f"user_fields: unknown table {bits[0]!r}")
        result.setdefault(table.name, []).append({"Name": bits[1], "Type": bits[2] if len(bits) == 3 else "String"})
    for name, defs in result.items():
        check_user_fields(find_table(name), defs)  # type: ignore[arg-type]
    return result


class Uniconta:
    """Everything a request handler needs, wired together."""

    def __init__(self, app: Flask, options: Options) -> None:
        self.options = options
        self.store = Store(options.state_file)
        self.accounts = Accounts(options.company, {options.user: options.password, **options.users})
        self.company = Company(self.store, options.company)
        self.quirks = Quirks(self.store, odata_page_size=options.odata_page_size, omit_nulls=options.omit_nulls,
                             odata_max_or=options.odata_max_or, odata_max_page_size=options.odata_max_page_size)
        self.budget = Budget(self.store, budget=options.daily_budget, slowdown=options.slowdown)
        self.sandbox = Sandbox(app, name="uniconta", store=self.store, reset=self.reset_defaults,
                               seeders=make_seeders(self.company), fault_response=fault_response,
                               user_of_request=lambda: Accounts.user_of(request.headers.get("Authorization")))
        self.sandbox.hooks.timeout = options.webhook_timeout
        self.change_url = ChangeUrl(self.company, self.sandbox.hooks, self.quirks)
        with self.store.lock:
            if not self.store.meta.get("uniconta.initialised"):
                self.reset_defaults()
            self.company.ensure()

    def reset_defaults(self) -> None:
        """After a store reset (or on a fresh store): default user fields, quirks, budget."""
        with self.store.lock:
            self.quirks.reset()
            self.budget.reset()
            for table, defs in self.options.user_fields.items():
                self.company.set_user_fields(find_table(table), defs)  # type: ignore[arg-type]
            self.store.meta["uniconta.initialised"] = True
            self.company.ensure()
        self.store.mark_dirty()

    # -- request helpers --------------------------------------------------------------------------
    def login_entities(self) -> str:
        user = self.accounts.authenticate_entities(request.headers.get("Authorization"))
        self._count(user)
        return user

    def login_odata(self, company: int | None) -> str:
        user = self.accounts.authenticate_odata(request.headers.get("Authorization"), company)
        self._count(user)
        return user

    def _count(self, user: str) -> None:
        g.uniconta_user = user
        delay = self.budget.count(user)
        if delay > 0:
            time.sleep(delay)

    def write(self, table: Table, operation: Callable[[], tuple[Any, list[Change]]], *, user: bool) -> Any:
        """Run a write under the store lock, render its record(s), then fire the Change URLs."""
        with self.store.lock:
            self.company.ensure()
            result, changes = operation()
            omit = self.quirks["omit_nulls"]
            if isinstance(result, list):
                out: Any = [self.company.output(table, r, user=user, omit_nulls=omit) for r in result]
            else:
                out = self.company.output(table, result, user=user, omit_nulls=omit)
        self.fire(changes)
        return out

    def fire(self, changes: list[Change]) -> None:
        """Plan Change-URL calls under the lock, send them outside it."""
        if not changes:
            return
        with self.store.lock:
            calls = self.change_url.plan(changes, omit_nulls=self.quirks["omit_nulls"])
        self.change_url.send(calls)


def fault_response(status: int) -> Response:
    messages = {500: "Internal server error", 502: "Bad gateway", 503: "The service is unavailable",
                504: "Gateway timeout", 429: "Too many requests"}
    response = error_response(status, "NoSucces" if status == 429 else "Exception",
                              messages.get(status, "Injected fault"))
    if status == 429:
        response.headers["Retry-After"] = "1"
    return response


def _entity(name: str) -> tuple[Table, bool]:
    found = find_entity(name)
    if found is None:
        raise not_found(f"Entity {name} not found (known: {', '.join(entity_names())})")
    return found


def _body() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise bad_request("NoSucces", "A JSON body is required")
    try:
        return json.loads(raw)
    except (ValueError, UnicodeDecodeError) as exc:
        raise bad_request("NoSucces", f"The body is not valid JSON: {exc}") from None


def _match_value(prop_type: str, text: str, name: str) -> Any:
    """The ?Name=&Value= comparison value for a property type (400 when it cannot be converted)."""
    def bad() -> UnicontaError:
        return bad_request("NoSucces", f"Value {text!r} cannot be compared with {name} ({prop_type})", name)

    if prop_type in ("str", "enum"):
        return text or None
    if prop_type in ("int", "float"):
        try:
            return float(text)
        except ValueError:
            raise bad() from None
    if prop_type == "bool":
        if text.lower() in ("true", "1"):
            return True
        if text.lower() in ("false", "0"):
            return False
        raise bad()
    if text == "":
        return None
    parsed = parse_datetime(text)
    if parsed is None:
        raise bad()
    return parsed.strftime("%Y-%m-%dT%H:%M:%S.%f")


def _max_page_size_preference(headers: list[str]) -> int | None:
    """N of `Prefer: odata.maxpagesize=N` (OData 4.01 also allows plain `maxpagesize`), else None.

    Preferences are comma-separated, names case-insensitive; a value that is not a positive integer
    is ignored, as HTTP (RFC 7240) lets a server ignore a preference it does not understand.
    """
    for header in headers:
        for preference in header.split(","):
            name, _, value = preference.partition("=")
            if name.strip().lower() not in ("odata.maxpagesize", "maxpagesize"):
                continue
            text = value.split(";", 1)[0].strip().strip('"')
            if text.isdigit() and 0 < int(text) <= 10**9:
                return int(text)
    return None


def create_app(**options: Any) -> Flask:
    """The Uniconta sandbox app (options: see the module docstring)."""
    opts = Options(**options)
    app = Flask("sandbox.uniconta")
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.compact = True  # type: ignore[attr-defined]
    app.wsgi_app = CanonicalPaths(app.wsgi_app)  # type: ignore[method-assign]
    uc = Uniconta(app, opts)
    app.extensions["uniconta"] = uc
    store, company = uc.store, uc.company

    def write_answer(payload: Any) -> Response:
        if uc.quirks["write_response"] == "empty":
            return Response(status=204)
        return jsonify(payload)

    # -- Entities API ---------------------------------------------------------------------------
    @app.get("/api/Entities/<entity>")
    @app.get("/api/Entities/Read/<entity>")
    def read(entity: str) -> Any:
        uc.login_entities()
        table, user = _entity(entity)
        name = request.args.get("Name")
        value = request.args.get("Value")
        omit = uc.quirks["omit_nulls"]
        with store.lock:
            company.ensure()
            rows = company.all(table)
            if name is None and value is not None:
                raise bad_request("NoSucces", "Value needs Name (?Name=<property>&Value=<value>)", "Name")
            if name is not None:
                found = company.find_prop(table, name, user=user)
                if found is None:
                    raise bad_request("CouldNotFind", f"{table.entity} has no property {name}", name)
                prop, getter = found
                target = _match_value(prop.type, value or "", prop.name)
                if prop.type in ("int", "float"):
                    rows = [r for r in rows if getter(r) is not None and float(getter(r)) == target]
                elif prop.type in ("date", "datetime"):
                    rows = [r for r in rows if odata.date_key(getter(r)) == target]
                elif prop.type == "bool":
                    rows = [r for r in rows if bool(getter(r)) == target]
                else:
                    rows = [r for r in rows if getter(r) == target]
            out = [company.output(table, r, user=user, omit_nulls=omit) for r in rows]
        return jsonify(out)

    def write_request(entity: str) -> tuple[Table, bool, Any]:
        uc.login_entities()
        table, user = _entity(entity)
        return table, user, _body()

    @app.post("/api/Entities/Insert/<entity>")
    def insert(entity: str) -> Any:
        table, user, body = write_request(entity)
        return write_answer(uc.write(table, lambda: company.insert(table, body, user=user), user=user))

    @app.post("/api/Entities/InsertList/<entity>")
    def insert_list(entity: str) -> Any:
        table, user, body = write_request(entity)
        return write_answer(uc.write(table, lambda: company.insert_many(table, body, user=user), user=user))

    @app.put("/api/Entities/Update/<entity>")
    def update(entity: str) -> Any:
        table, user, body = write_request(entity)
        return write_answer(uc.write(table, lambda: company.update(table, body, user=user), user=user))

    @app.delete("/api/Entities/Delete/<entity>")
    def delete(entity: str) -> Any:
        table, user, body = write_request(entity)
        return write_answer(uc.write(table, lambda: company.delete(table, body), user=user))

    # -- OData feed -------------------------------------------------------------------------------
    def wants_json() -> bool:
        fmt = request.args.get("$format")
        if fmt is not None:
            if fmt.lower() in ("json", "application/json"):
                return True
            if fmt.lower() in ("xml", "atom", "application/xml", "application/atom+xml"):
                return False
            raise bad_request("NoSucces", f"$format: unsupported format {fmt!r} (json or xml)")
        accept = request.headers.get("Accept", "")
        if "json" in accept.lower():
            return True
        if "xml" in accept.lower():
            return False
        return uc.quirks["odata_default_format"] == "json"

    def odata_base(company_id: int) -> str:
        return f"{request.host_url}odata/{company_id}/"

    def service_document(company_id: int) -> Response:
        names = entity_names()
        if wants_json():
            return jsonify({"@odata.context": odata_base(company_id) + "$metadata",
                            "value": [{"name": n, "kind": "EntitySet", "url": n} for n in names]})
        return Response(odata.service_document_xml(odata_base(company_id), names),
                        content_type="application/xml; charset=utf-8")

    def metadata() -> Response:
        with store.lock:
            company.ensure()
            entities = []
            for table in TABLES:
                entities.append((table.entity, list(table.all_props)))
                if table.user_fields:
                    entities.append((table.entity + "User", [*table.all_props, *company.user_props(table)]))
        return Response(odata.metadata_xml(entities), content_type="application/xml; charset=utf-8")

    def feed(company_id: int, entity: str) -> Response:
        if entity == "$metadata":
            return metadata()
        if "(" in entity:
            raise not_found(f"Key access {entity} is not supported; use $filter=RowId eq <n>")
        table, user = _entity(entity)
        args = request.args
        for key in args:
            if key.startswith("$") and key not in _ODATA_OPTIONS:
                raise bad_request("NoSucces", f"{key}: query option not supported "
                                              f"(supported: {', '.join(_ODATA_OPTIONS)})")
        as_json = wants_json()
        try:
            with store.lock:
                company.ensure()
                quirks = uc.quirks.get()

                def resolve(name: str) -> Any:
                    return company.getter(table, name, user=user)

                rows = company.all(table)
                if "$filter" in args:
                    predicate = odata.parse_filter(args["$filter"], resolve, entity, max_or=quirks["odata_max_or"])
                    rows = [r for r in rows if predicate(r)]
                if "$orderby" in args:
                    rows = odata.sort_records(rows, odata.parse_orderby(args["$orderby"], resolve, entity))
                select = odata.parse_select(args["$select"], resolve, entity) if "$select" in args else []
                skip = odata.parse_count("$skip", args["$skip"]) if "$skip" in args else 0
                top = odata.parse_count("$top", args["$top"]) if "$top" in args else None
                count_flag = args.get("$count")
                if count_flag is not None and count_flag not in ("true", "false"):
                    raise odata.ODataError(f"$count: must be true or false, got {count_flag!r}")
                total = len(rows)
                remaining = rows[skip:]
                if top is not None:
                    remaining = remaining[:top]
                page_size = quirks["odata_page_size"]
                preferred = _max_page_size_preference(request.headers.getlist("Prefer"))
                if preferred is not None:
                    page_size = min(preferred, quirks["odata_max_page_size"])
                page = remaining[:page_size]
                omit = quirks["omit_nulls"] and as_json
                out = [company.output(table, r, user=user, omit_nulls=omit) for r in page]
                if select:
                    out = [{k: row.get(k) for k in select if not (omit and row.get(k) is None)} for row in out]
                types = {p.name: odata._EDM[p.type] for p in (*table.all_props, *company.user_props(table))}
        except odata.ODataError as exc:
            raise bad_request("NoSucces", str(exc)) from None
        next_link = None
        if len(remaining) > page_size:
            params = [(k, v) for k, v in args.items(multi=True) if k not in ("$skip", "$top")]
            params.append(("$skip", str(skip + page_size)))
            if top is not None:
                params.append(("$top", str(top - page_size)))
            next_link = f"{request.base_url}?{urlencode(params)}"
        # OData: a service that applies a preference says so (with the page size it used)
        applied = {"Preference-Applied": f"odata.maxpagesize={page_size}"} if preferred is not None else {}
        if as_json:
            body: dict[str, Any] = {"@odata.context": f"{odata_base(company_id)}$metadata#{table.entity}"
                                    + ("User" if user else "")}
            if count_flag == "true":
                body["@odata.count"] = total
            body["value"] = out
            if next_link:
                body["@odata.nextLink"] = next_link
            response = jsonify(body)
            response.headers.update(applied)
            return response
        xml = odata.atom_feed(entity, odata_base(company_id), out, types, next_link,
                              total if count_flag == "true" else None)
        return Response(xml, content_type="application/atom+xml; charset=utf-8", headers=applied)

    def company_of(segment: str) -> int:
        if not segment.isdigit() or len(segment) > 12:
            raise not_found(f"Company {segment} not found")
        return int(segment)

    @app.get("/odata")
    @app.get("/odata/")
    def odata_root() -> Any:
        uc.login_odata(None)
        return service_document(opts.company)

    @app.get("/odata/<segment>")
    def odata_one(segment: str) -> Any:
        if segment.isdigit():
            cid = company_of(segment)
            uc.login_odata(cid)
            return service_document(cid)
        uc.login_odata(None)  # entity without a company: the user's default company
        return feed(opts.company, segment)

    @app.get("/odata/<segment>/<entity>")
    def odata_entity(segment: str, entity: str) -> Any:
        cid = company_of(segment)
        uc.login_odata(cid)
        return feed(cid, entity)

    # -- errors -------------------------------------------------------------------------------------
    @app.errorhandler(UnicontaError)
    def uniconta_error(exc: UnicontaError) -> Response:
        return exc.response()

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        message = exc.description or exc.name
        if status == 404:
            message = f"No API at {request.path}"
        elif status == 405:
            message = f"{request.method} is not allowed on {request.path}"
        response = error_response(status, _STATUS_CODES.get(status, "Exception"), message)
        if status == 405 and exc.get_headers():
            for name, value in exc.get_headers():
                if name.lower() == "allow":
                    response.headers["Allow"] = value
        return response

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("uniconta sandbox request failed")
        return error_response(500, "Exception", f"{type(exc).__name__}: {exc}")

    install_admin(uc)
    uc.sandbox.admin.register_error_handler(UnicontaError, uniconta_error)
    uc.sandbox.register()
    return app


class CanonicalPaths:
    """WSGI middleware: the fixed path words are case-insensitive, as on the real (IIS) host."""

    WORDS = {w.lower(): w for w in ("api", "Entities", "Insert", "InsertList", "Update", "Delete", "Read", "odata")}

    def __init__(self, wsgi_app: Any) -> None:
        self.wsgi_app = wsgi_app

    def __call__(self, environ: dict, start_response: Any) -> Any:
        parts = environ.get("PATH_INFO", "").split("/")
        if len(parts) > 1 and parts[1].lower() == "odata":
            parts[1] = "odata"
        elif len(parts) > 3 and parts[1].lower() == "api" and parts[2].lower() == "entities":
            parts[1], parts[2] = "api", "Entities"
            if len(parts) > 4:  # /api/Entities/<verb>/<entity>
                parts[3] = self.WORDS.get(parts[3].lower(), parts[3])
        else:
            return self.wsgi_app(environ, start_response)
        environ["PATH_INFO"] = "/".join(parts)
        return self.wsgi_app(environ, start_response)
