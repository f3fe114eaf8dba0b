"""The webCRM REST API sandbox (Flask). `create_app(**options)` builds one independent instance.

See docs/sandbox-webcrm.md for what is faithful to the reference and what is assumed.
"""

from __future__ import annotations

import json
import logging
import random
from collections.abc import Callable, Iterable
from typing import Any

from flask import Flask, Response, g, request
from werkzeug.exceptions import HTTPException

from sandbox.common.admin import Sandbox, is_admin_path
from sandbox.common.store import Store
from sandbox.webcrm import admin as admin_routes
from sandbox.webcrm.auth import Auth
from sandbox.webcrm.dto import DTOS, Dto, DtoError, date_key, parse_date, render
from sandbox.webcrm.entities import (
    DELIVERIES,
    ENTITIES,
    LINKED_DATA,
    OPPORTUNITIES,
    ORGANISATIONS,
    PERSONS,
    QUOTATION_LINES,
    USERS,
    ApiError,
    Crm,
    EntityDef,
    check_id,
)
from sandbox.webcrm.hooks import Hooks
from sandbox.webcrm.queries import QueryError, TableDef, parse, run
from sandbox.webcrm.ratelimit import RollingWindowLimiter
from sandbox.webcrm.seed import SEEDERS, seed_defaults
from sandbox.webcrm.settings import META_KEY, QUIRKS, Options, default_settings, fill_quirks

log = logging.getLogger(__name__)

MAX_PAGE = 1_000_000
MAX_SIZE = 1000
DEFAULT_SIZE = 50
JSON_TYPES = ("application/json", "text/json", "application/json-patch+json")
THROTTLE_MESSAGE = "The request was throttled. The limit of {limit} requests per minute is reached"
LOGIN_PATHS = ("/Auth/ApiLogin", "/Auth/ApiRefresh")
FIELD_ENTITY_TYPES = ("Activity", "Delivery", "Event", "Opportunity", "Organisation", "Person", "Product",
                      "SupportCase", "User")


def json_response(data: Any, status: int = 200, headers: dict | None = None) -> Response:
    text = json.dumps(data, ensure_ascii=False, separators=(",", ":"))
    return Response(text, status=status, headers=headers, content_type="application/json; charset=utf-8")


def message(status: int, text: str, headers: dict | None = None) -> Response:
    return json_response({"Message": text}, status, headers)


def empty_ok() -> Response:
    return Response(b"", status=200)


class WebcrmSandbox:
    """Everything one app instance owns; reachable as `app.extensions["webcrm"]`."""

    def __init__(self, app: Flask, *, state_file: str | None, options: Options, seed: str | None,
                 hook_timeout: float | None) -> None:
        self.app = app
        self.options = options
        self.store = Store(state_file)
        self.auth = Auth(lambda: self.settings()["auth_codes"], lambda: self.settings()["token_lifetime"])
        self.limiter = RollingWindowLimiter(lambda: int(self.settings()["rate_limit"]))
        self.sandbox = Sandbox(
            app, name="webcrm", store=self.store, reset=self._reset_defaults,
            seeders={name: self._seeder(fn) for name, fn in SEEDERS.items()},
            fault_response=self._fault_response, user_of_request=lambda: g.get("webcrm_user", ""),
        )
        if hook_timeout is not None:
            self.sandbox.hooks.timeout = hook_timeout
        self.hooks = Hooks(self.store, self.sandbox.hooks, now=self.now,
                           null_strings=lambda: bool(self.quirk("empty_strings_as_null")))
        self.crm = Crm(self.store, settings=self.settings, fire=self.hooks.fire)
        with self.store.lock:
            fresh = META_KEY not in self.store.meta  # not restored from a state file
            self.settings()
            if fresh:
                seed_defaults(self)
                if seed:
                    self._seed_at_start(seed)

    # -- settings -------------------------------------------------------------------------------
    def settings(self) -> dict:
        meta = self.store.meta
        current = meta.get(META_KEY)
        if not isinstance(current, dict):  # reset, or a state without our settings
            with self.store.lock:
                current = meta.get(META_KEY)
                if not isinstance(current, dict):
                    current = meta[META_KEY] = default_settings(self.options)
        if len(current.get("quirks") or ()) < len(QUIRKS):  # a state saved before some quirk existed
            with self.store.lock:
                fill_quirks(current, self.options)
        return current

    def quirk(self, name: str) -> Any:
        return self.settings()["quirks"][name]

    def now(self) -> str:
        return self.crm.now()

    def _reset_defaults(self) -> None:
        self.store.meta[META_KEY] = default_settings(self.options)
        self.limiter.clear()
        seed_defaults(self)

    def _seeder(self, fn: Callable) -> Callable:
        return lambda count, rng: fn(self, count, rng)

    def _seed_at_start(self, spec: str) -> None:
        """`Organisations=200,LinkedData=50`: seed a fresh sandbox (not one loaded from a state file)."""
        for part in spec.split(","):
            part = part.strip()
            if not part:
                continue
            name, _, count = part.partition("=")
            if name.strip() not in SEEDERS:
                raise ValueError(f"seed: unknown entity {name!r} (known: {', '.join(SEEDERS)})")
            try:
                n = int(count)
            except ValueError:
                raise ValueError(f"seed: {part!r} is not Entity=count") from None
            if not 1 <= n <= 100_000:
                raise ValueError(f"seed: {part!r}: the count must be 1..100000")
            SEEDERS[name.strip()](self, n, random.Random(n))

    def _fault_response(self, status: int) -> Response:
        if status == 429:
            return self.throttled(int(self.quirk("injected_retry_after")))
        texts = {500: "An error has occurred.", 502: "Bad Gateway", 503: "The service is unavailable.",
                 504: "Gateway Timeout"}
        return message(status, texts.get(status, "Error"))

    def throttled(self, retry_after: int) -> Response:
        limit = self.settings()["rate_limit"] or 250
        body = {"RetryAfterSeconds": retry_after, "Message": THROTTLE_MESSAGE.format(limit=limit),
                "Type": "TooManyRequestsException"}
        return json_response(body, 429, {"Retry-After": str(retry_after)})

    # -- request plumbing -------------------------------------------------------------------------
    def before_request(self) -> Response | None:
        if is_admin_path(request.path) or request.url_rule is None:
            return None  # admin, or a 404/405 that routing will answer
        if request.path in LOGIN_PATHS:
            return None  # the login views rate-limit by the code they were given
        header = request.headers.get("Authorization", "")
        scheme, _, token = header.strip().partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            return message(401, "Authorization has been denied for this request.",
                           {"WWW-Authenticate": "Bearer"})
        session, why = self.auth.check(token.strip())
        if session is None:
            return message(401, why, {"WWW-Authenticate": 'Bearer error="invalid_token"'})
        g.webcrm_user = session.user
        g.webcrm_code = session.code
        retry = self.limiter.hit(session.code)
        if retry is not None:
            return self.throttled(retry)
        return None

    def user(self) -> str:
        return g.get("webcrm_user", "")


# -- request helpers ------------------------------------------------------------------------------
def _int_param(name: str, raw: str | None, default: int, high: int) -> int:
    if raw is None or raw == "":
        return default
    try:
        value = int(raw.strip())
    except ValueError:
        raise ApiError(400, f"The value '{raw}' is not valid for {name}.") from None
    if not 1 <= value <= high:
        raise ApiError(400, f"The field {name} must be between 1 and {high}.")
    return value


def paging() -> tuple[int, int]:
    """Page (1..1,000,000, default 1) and Size (1..1000, default 50); names case-insensitive."""
    found: dict[str, str] = {}
    for key, value in request.args.items(multi=True):
        low = key.lower()
        if low in ("page", "size") and low not in found:
            found[low] = value
    page = _int_param("Page", found.get("page"), 1, MAX_PAGE)
    size = _int_param("Size", found.get("size"), DEFAULT_SIZE, MAX_SIZE)
    return page, size


def page_of(rows: Iterable[dict], page: int, size: int) -> list[dict]:
    start = (page - 1) * size
    if isinstance(rows, list):
        return rows[start:start + size]
    out: list[dict] = []
    for i, row in enumerate(rows):
        if i >= start + size:
            break
        if i >= start:
            out.append(row)
    return out


def body_json() -> Any:
    raw = request.get_data(cache=True)
    if not raw.strip():
        raise ApiError(400, "A non-empty request body is required.")
    mimetype = (request.mimetype or "").lower()
    if not (mimetype in JSON_TYPES or (mimetype.startswith("application/") and mimetype.endswith("+json"))):
        raise ApiError(415, f"Unsupported Media Type '{request.content_type or ''}': send application/json.")
    try:
        return json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as exc:
        raise ApiError(400, f"The request body is not valid JSON: {exc}") from None


def path_date(name: str, raw: str) -> str:
    try:
        dt = parse_date(raw)
    except ValueError:
        raise ApiError(400, f"The value '{raw}' is not valid for {name}.") from None
    return dt.isoformat() if dt is not None else ""


# -- the app ------------------------------------------------------------------------------------
def create_app(*, state_file: str | None = None, auth_codes: str | dict | None = None,
               token_lifetime: int | str | None = None, rate_limit: int | str | None = None,
               seed: str | None = None, hook_timeout: float | None = None,
               patch_max_items: int | str | None = None) -> Flask:
    """A webCRM sandbox app. Options fall back to WEBCRM_SANDBOX_* environment variables."""
    options = Options.build(auth_codes, token_lifetime, rate_limit, patch_max_items)
    app = Flask("sandbox.webcrm", static_folder=None)
    app.json.ensure_ascii = False  # type: ignore[attr-defined]
    app.json.sort_keys = False  # type: ignore[attr-defined]
    app.config["MAX_CONTENT_LENGTH"] = 20 * 1024 * 1024
    wc = WebcrmSandbox(app, state_file=state_file, options=options, seed=seed, hook_timeout=hook_timeout)
    app.extensions["webcrm"] = wc
    _routes(app, wc)
    admin_routes.install(wc)
    wc.sandbox.admin.register_error_handler(ApiError, lambda e: ({"error": e.message}, e.status))
    wc.sandbox.register()
    app.before_request(wc.before_request)
    _error_handlers(app)
    return app


def _error_handlers(app: Flask) -> None:
    @app.errorhandler(ApiError)
    def api_error(exc: ApiError) -> Response:
        return message(exc.status, exc.message)

    @app.errorhandler(DtoError)
    def dto_error(exc: DtoError) -> Response:
        return message(400, str(exc))

    @app.errorhandler(QueryError)
    def query_error(exc: QueryError) -> Response:
        return message(400, str(exc))

    @app.errorhandler(HTTPException)
    def http_error(exc: HTTPException) -> Response:
        status = exc.code or 500
        if status == 404:
            text = f"No HTTP resource was found that matches the request URI '{request.path}'."
        elif status == 405:
            text = f"The requested resource does not support http method '{request.method}'."
        else:
            text = exc.description or exc.name
        headers = {k: v for k, v in exc.get_headers() if k.lower() == "allow"}
        return message(status, text, headers)

    @app.errorhandler(Exception)
    def unexpected(exc: Exception) -> Response:
        log.exception("webcrm sandbox: unexpected error on %s %s", request.method, request.path)
        return message(500, f"Internal sandbox error ({type(exc).__name__}); this is a sandbox bug.")


def _routes(app: Flask, wc: WebcrmSandbox) -> None:
    crm = wc.crm
    lock = wc.store.lock

    def out(records: list[dict] | dict, dto: Dto) -> Response:
        nulls = bool(wc.quirk("empty_strings_as_null"))
        if isinstance(records, dict):
            return json_response(render(records, dto, null_strings=nulls))
        return json_response([render(r, dto, null_strings=nulls) for r in records])

    def listing(e: EntityDef, rows: Callable[[], Iterable[dict]]) -> Response:
        page, size = paging()
        with lock:
            records = page_of(rows(), page, size)
        return out(records, e.dto)

    # -- auth ------------------------------------------------------------------------------------
    @app.post("/Auth/ApiLogin")
    def api_login() -> Response:
        code = (request.form.get("authCode") or "").strip()
        if wc.auth.user_of_code(code) is None:
            return json_response({
                "AccessToken": "", "RefreshToken": "", "Error": "invalid_client",
                "ErrorDescription": "Unknown application token (authCode).", "IsError": True,
                "ExpiresIn": 0, "TokenType": "", "Message": "Unknown application token (authCode).",
            }, 401)
        retry = wc.limiter.hit(code)
        if retry is not None:
            return wc.throttled(retry)
        g.webcrm_user = wc.auth.user_of_code(code)
        return token_out(wc.auth.login(code))

    @app.post("/Auth/ApiRefresh")
    def api_refresh() -> Response:
        token = (request.headers.get("refreshToken") or request.form.get("refreshToken") or "").strip()
        code = wc.auth.refresh_code(token)
        if code is not None:
            retry = wc.limiter.hit(code)
            if retry is not None:
                return wc.throttled(retry)
        result = wc.auth.refresh(token)
        if result is None:
            return message(401, "The refresh token is unknown or expired; log in again.")
        return token_out(result)

    def token_out(result: dict | None) -> Response:
        assert result is not None
        return json_response(render(result, DTOS["TokenResponseDto"],
                                    null_strings=bool(wc.quirk("empty_strings_as_null"))))

    @app.get("/Auth")
    def auth_info() -> Response:
        return json_response({"UserName": wc.user(), "LoginType": "ApiLogin",
                              "RateLimitPerMinute": wc.settings()["rate_limit"]})

    # -- generic entity routes ---------------------------------------------------------------------
    for e in ENTITIES.values():
        _entity_routes(app, wc, e, out, listing)

    # -- sub-resources and finders -------------------------------------------------------------------
    @app.get("/Organisations/<int:id>/Persons")
    def organisation_persons(id: int) -> Response:
        with lock:
            crm.must_get(ORGANISATIONS, check_id(id))
        return listing(PERSONS, lambda: (r for r in crm.rows(PERSONS) if r["PersonOrganisationId"] == id))

    def lines_route(parent: EntityDef) -> Callable[[int], Response]:
        def view(id: int) -> Response:
            with lock:
                crm.must_get(parent, check_id(id))
            return listing(QUOTATION_LINES, lambda: crm.lines_of(id))
        return view

    app.add_url_rule("/Deliveries/<int:id>/QuotationLines", "delivery_lines", lines_route(DELIVERIES))
    app.add_url_rule("/Opportunities/<int:id>/QuotationLines", "opportunity_lines", lines_route(OPPORTUNITIES))

    def by_organisation(e: EntityDef) -> Callable[[int], Response]:
        field = f"{e.singular}OrganisationId"

        def view(organisationId: int) -> Response:  # Swagger's parameter name
            return listing(e, lambda: (r for r in crm.rows(e) if r[field] == organisationId))
        return view

    app.add_url_rule("/Deliveries/ByOrganisation/<int:organisationId>", "deliveries_by_org",
                     by_organisation(DELIVERIES))
    app.add_url_rule("/Opportunities/ByOrganisation/<int:organisationId>", "opportunities_by_org",
                     by_organisation(OPPORTUNITIES))

    @app.get("/Deliveries/ByStatus/<status>")
    def deliveries_by_status(status: str) -> Response:
        allowed = DELIVERIES.dto.fields["DeliveryStatus"].enum
        wanted = next((s for s in allowed if s.lower() == status.lower()), None)
        if wanted is None:
            raise ApiError(400, f"The value '{status}' is not valid for status ({', '.join(allowed)}).")
        return listing(DELIVERIES, lambda: (r for r in crm.rows(DELIVERIES) if r["DeliveryStatus"] == wanted))

    def find_by_dates(e: EntityDef, which: str) -> Callable[[str, str], Response]:
        field = f"{e.singular}{which}At"

        def view(startDate: str, endDate: str) -> Response:
            start = date_key(path_date("startDate", startDate))
            end = date_key(path_date("endDate", endDate))
            return listing(e, lambda: (r for r in crm.rows(e) if start <= date_key(r[field]) < end))
        return view

    for e in (ORGANISATIONS, DELIVERIES, OPPORTUNITIES):
        app.add_url_rule(f"/{e.plural}/FindByCreateDates/<startDate>/<endDate>",
                         f"{e.table}_find_created", find_by_dates(e, "Created"))
    app.add_url_rule("/Organisations/FindByUpdateDates/<startDate>/<endDate>", "organisations_find_updated",
                     find_by_dates(ORGANISATIONS, "Updated"))

    @app.get("/Users/AllActive")
    def users_all_active() -> Response:
        def rows() -> Iterable[dict]:
            inactive = set(wc.settings()["inactive_users"])
            return (r for r in crm.rows(USERS) if r["UserId"] not in inactive)
        return listing(USERS, rows)

    @app.get("/QuotationLines/LinkedSetup")
    def linked_setup() -> Response:
        dto = DTOS["QuotationLineLinkedSetupDto"]
        record = dto.defaults()
        labels = wc.settings()["linked_setup"]
        record.update({
            "QuotationLineLinkedSetupId": 1,
            "QuotationLineLinkedSetupEntityType": "Product",
            "QuotationLineLinkedSetupPriceLabel": "Pris",
            "QuotationLineLinkedSetupCostPriceLabel": "Kostpris",
            "QuotationLineLinkedSetupListPriceLabel": "Listepris",
            "QuotationLineLinkedSetupQuantityLabel": "Antal",
            "QuotationLineLinkedSetupUseCostPrice": True,
            "QuotationLineLinkedSetupUseListPrice": True,
            "QuotationLineLinkedSetupUseQuantity": True,
            "QuotationLineLinkedSetupUseDiscount": True,
            "QuotationLineLinkedSetupUseItemGroup": True,
            "QuotationLineLinkedSetupUseVat": True,
        })
        for n in range(1, 10):
            enabled = bool(labels.get(str(n)))
            record[f"QuotationLineLinkedSetupUseLinkedField{n}"] = enabled
            record[f"QuotationLineLinkedSetupField{n}"] = n if enabled else 0
        return out(record, dto)

    # -- FieldsMetadata -------------------------------------------------------------------------------
    def fields_out(types: Iterable[str]) -> Response:
        rows = []
        with lock:
            configured = wc.settings()["fields"]
            for entity_type in types:
                for meta in configured.get(entity_type, {}).values():
                    rows.append(dict(meta))
        rows.sort(key=lambda m: (m["FieldMetadataSortOrder"], m["FieldMetadataId"]))
        return out(rows, DTOS["FieldMetadataDto"])

    @app.get("/FieldsMetadata")
    def fields_all() -> Response:
        return fields_out(FIELD_ENTITY_TYPES)

    @app.get("/FieldsMetadata/<entityTypes>")
    def fields_of(entityTypes: str) -> Response:
        wanted: list[str] = []
        for part in entityTypes.split(","):
            name = next((t for t in (*FIELD_ENTITY_TYPES, "All") if t.lower() == part.strip().lower()), None)
            if name is None:
                raise ApiError(400, f"The value '{part}' is not valid for entityTypes "
                                    f"({', '.join((*FIELD_ENTITY_TYPES, 'All'))}).")
            wanted.extend(FIELD_ENTITY_TYPES if name == "All" else [name])
        return fields_out(dict.fromkeys(wanted))

    # -- Queries ---------------------------------------------------------------------------------------
    @app.get("/Queries")
    def queries() -> Response:
        script = next((v for k, v in request.args.items(multi=True) if k.lower() == "script"), "")
        page, size = paging()
        query = parse(script)
        table = QUERY_TABLES.get(query.table.lower())
        if table is None:
            raise QueryError(f"Invalid object name '{query.table}'.")
        e, tdef = table
        with lock:
            matched, columns = run(query, tdef, crm.rows(e))
            records = page_of(matched, page, size)
        nulls = bool(wc.quirk("empty_strings_as_null"))
        linked_row = wc.quirk("linked_data_query_row") if e is LINKED_DATA else "dto"
        rows = []
        for rec in records:
            full = render(rec, e.dto, null_strings=nulls)
            if columns is not None:
                rows.append({name: full[key] for name, key in columns})
            elif linked_row == "dto":
                rows.append(full)
            else:  # S4 reads LinkedDataItemDto names from these rows
                aliases = {alias: full[key] for alias, key in LINKED_DATA_ALIASES.items()}
                rows.append(aliases if linked_row == "linked_data_item" else {**aliases, **full})
        return json_response(rows)


def _entity_routes(app: Flask, wc: WebcrmSandbox, e: EntityDef, out: Callable, listing: Callable) -> None:
    crm = wc.crm
    lock = wc.store.lock
    base = f"/{e.plural}"

    def list_view() -> Response:
        if e is LINKED_DATA:  # the Swagger declares no Page/Size here: everything is returned
            with lock:
                records = list(crm.rows(e))
            return out(records, e.dto)
        return listing(e, lambda: crm.rows(e))

    def get_view(id: int) -> Response:
        with lock:
            record = crm.must_get(e, check_id(id))
        return out(record, e.dto)

    def post_view() -> Response:
        body = body_json()
        with lock:
            record = crm.create(e, body, by=wc.user())
        ident = record[e.id_field]
        mode = {ORGANISATIONS.table: "organisation_post_returns",
                USERS.table: "user_post_returns"}.get(e.table)
        if mode is not None:
            answer = wc.quirk(mode)
            if answer == "none":
                return empty_ok()
            if answer == "object":
                return json_response({e.id_field: ident})
        return json_response(ident)

    def put_view(id: int) -> Response:
        body = body_json()
        with lock:
            crm.replace(e, check_id(id), body, by=wc.user())
        return empty_ok()

    def delete_view(id: int) -> Response:
        with lock:
            crm.delete(e, check_id(id), by=wc.user())
        return empty_ok()

    def patch_view() -> Response:
        """Bulk upsert: "Updates or inserts submitted X. Returns assigned ids for inserted X and error
        messages if insert/update fails." -> string[] [D S3]. Item by item as PUT/POST (Crm.upsert);
        a failed item does not stop the others. The answer's shape is the quirk `patch_result`."""
        body = body_json()
        if not isinstance(body, list):
            raise ApiError(400, f"The request body must be a JSON array of {e.write_dto.name}.")
        limit = int(wc.quirk("patch_max_items"))
        if len(body) > limit:
            raise ApiError(400, f"The request has {len(body)} items; at most {limit} {e.plural} "
                                f"can be sent in one PATCH.")
        results: list[tuple[bool | None, str]] = []  # (inserted; None = failed, the answer string)
        with lock:
            for item in body:
                if not isinstance(item, dict):
                    results.append((None, f"The item must be a JSON object ({e.write_dto.name})."))
                    continue
                try:
                    inserted, record = crm.upsert(e, item, by=wc.user())
                except ApiError as exc:
                    results.append((None, exc.message))
                except DtoError as exc:
                    results.append((None, str(exc)))
                else:
                    results.append((inserted, str(record[e.id_field])))
        mode = wc.quirk("patch_result")
        if mode == "no_content":
            return Response(status=204)
        if mode == "empty":
            return empty_ok()
        if mode == "inserted_ids_only":
            return json_response([text for inserted, text in results if inserted is not False])
        return json_response([text for _, text in results])

    name = e.table
    app.add_url_rule(base, f"{name}_list", list_view, methods=["GET"])
    app.add_url_rule(base, f"{name}_post", post_view, methods=["POST"])
    app.add_url_rule(f"{base}/<int:id>", f"{name}_get", get_view, methods=["GET"])
    app.add_url_rule(f"{base}/<int:id>", f"{name}_put", put_view, methods=["PUT"])
    if e.api_patch:
        app.add_url_rule(base, f"{name}_patch", patch_view, methods=["PATCH"])
    if e.api_delete:
        app.add_url_rule(f"{base}/<int:id>", f"{name}_delete", delete_view, methods=["DELETE"])
    if e is LINKED_DATA:
        def delete_all_view() -> Response:  # "Deletes all linked data for quotation lines" [D S3]
            with lock:
                crm.delete_all(e)
            return empty_ok()
        app.add_url_rule(base, f"{name}_delete_all", delete_all_view, methods=["DELETE"])
    if e.hook_dto is not None:
        _hook_routes(app, wc, e, out)


def _hook_routes(app: Flask, wc: WebcrmSandbox, e: EntityDef, out: Callable) -> None:
    hooks = wc.hooks
    lock = wc.store.lock
    dto = e.hook_dto
    assert dto is not None
    base = f"/{e.plural}/Hooks"
    name = f"{e.table}_hooks"

    def list_view() -> Response:
        page, size = paging()
        with lock:
            records = page_of(list(hooks.table(e).values()), page, size)
        return out(records, dto)

    def post_view() -> Response:
        body = body_json()
        with lock:
            ident = hooks.create(e, body, by=wc.user())
        return json_response(ident)

    def get_view(id: int) -> Response:
        with lock:
            record = hooks.must_get(e, id)
        return out(record, dto)

    def put_view(id: int) -> Response:
        body = body_json()
        with lock:
            hooks.replace(e, id, body, by=wc.user())
        return empty_ok()

    def delete_view(id: int) -> Response:
        with lock:
            hooks.delete(e, id)
        return empty_ok()

    app.add_url_rule(base, f"{name}_list", list_view, methods=["GET"])
    app.add_url_rule(base, f"{name}_post", post_view, methods=["POST"])
    app.add_url_rule(f"{base}/<int:id>", f"{name}_get", get_view, methods=["GET"])
    app.add_url_rule(f"{base}/<int:id>", f"{name}_put", put_view, methods=["PUT"])
    app.add_url_rule(f"{base}/<int:id>", f"{name}_delete", delete_view, methods=["DELETE"])


# -- /Queries tables ------------------------------------------------------------------------------
LINKED_DATA_ALIASES = {  # S4 queries LinkedData with LinkedDataItemDto names (LinkedDataItemEntityType = 7)
    f"LinkedDataItem{suffix}": f"QuotationLineLinkedDataItem{suffix}"
    for suffix in ("Id", *(f"Data{n}" for n in range(1, 10)), "DataMemo", "EntityType", "ItemGroup", "Price")
}


def _table_def(e: EntityDef) -> TableDef:
    fields = {name.lower(): (name, name, fld) for name, fld in e.dto.fields.items()}
    if e is LINKED_DATA:
        for alias, key in LINKED_DATA_ALIASES.items():
            fields[alias.lower()] = (alias, key, e.dto.fields[key])
    return TableDef(name=e.singular, fields=fields)


QUERY_TABLES: dict[str, tuple[EntityDef, TableDef]] = {
    e.singular.lower(): (e, _table_def(e)) for e in ENTITIES.values()
}

__all__ = ["WebcrmSandbox", "create_app"]
