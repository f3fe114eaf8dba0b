"""Flow handlers, reconciliation and backfill run in this process on real parts.

Both sandbox processes over real HTTP (the session fixtures of tests/conftest.py), the real API
clients wired exactly as a worker wires them (`sync.runtime.Runtime`: the webCRM window limiter,
the Uniconta daily budget, the journal observer), the real Redis, and, where a flow publishes a
job, a real Celery producer on that Redis. Only the worker is left out: a handler is called here
under the record's lock, as the job calls it (the e2e tests cover the worker).

Fixtures (registered for every test through `pytest_plugins` in tests/conftest.py):

* `sandboxes`: both sandboxes reset (data, faults, quirks, call logs) with the Uniconta
  user-defined fields the flows need, and a freshly flushed Redis database 0.
* `make_ctx(flows=..., webcrm={...}, uniconta={...}, **connection_changes)`: a
  `ConnectionContext` for connection `t1` on the sandboxes. Our own rate limits are off unless
  given (`webcrm={"rate_limit_per_minute": 10}`, `uniconta={"daily_call_budget": 100,
  "live_reserve": 20}`).
* `ctx`: `make_ctx()` with every flow enabled.
* `broker`: a Celery app on the test Redis made the current app, so `tasks.dispatch.enqueue`
  really publishes; `broker.events()` reads the queued jobs back from the Redis lists.

Test data is prepared the way a person would (the sandboxes' `/_sandbox/ui/...` routes, which
are neither in the call log nor counted against any limit) or through the real clients.
"""

from __future__ import annotations

import base64
import json
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import pytest
import redis
from celery import Celery, _state

from sync.config import FLOWS, Settings, load_file
from sync.events import Event
from sync.flows import Result, handler_for
from sync.runtime import ConnectionContext, Runtime
from sync.state import journal
from sync.state.locks import record_lock
from tasks import dispatch, queues
from tasks.celery_app import make_celery
from tests.support.stack import CONNECTION, admin, write_config

# The Uniconta user-defined fields the guide asks for (as tests/e2e/conftest.py creates them).
USER_FIELDS: dict[str, list[str]] = {"Debtor": ["WebcrmId"], "DebtorOrder": ["WebcrmDeliveryId"],
                                     "DebtorOrderLine": ["WebcrmLineId"], "Employee": ["WebcrmUserId"]}


# --------------------------------------------------------------------------- the sandboxes' admin API


class _Admin:
    url: str

    def admin(self, method: str, path: str, **kw: Any) -> Any:
        return admin(self.url, method, path, **kw)

    def reset(self) -> None:
        self.admin("POST", "/reset")

    def faults(self, **settings: Any) -> dict[str, Any]:
        """`PUT /_sandbox/faults` (partial), e.g. `faults(error_rate=1, error_status=503)`."""
        return self.admin("PUT", "/faults", json=settings)

    def quirks(self, **settings: Any) -> dict[str, Any]:
        return self.admin("PUT", "/quirks", json=settings)

    def calls(self) -> list[dict[str, Any]]:
        """The sandbox's API call log (method, path, query, status), oldest first."""
        return list(self.admin("GET", "/calls")["calls"])

    def clear_calls(self) -> None:
        self.admin("DELETE", "/calls")

    def state(self) -> dict[str, Any]:
        return dict(self.admin("GET", "/state"))

    def put_state(self, state: dict[str, Any]) -> None:
        self.admin("PUT", "/state", json=state)

    def writes(self) -> list[str]:
        """The API calls that changed data (successful POST/PUT/DELETE, logins left out)."""
        raise NotImplementedError


class WebcrmSandbox(_Admin):
    """The webCRM sandbox's admin API (docs/sandbox-webcrm.md)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def ui(self, entity: str, ident: int | None = None, *, by: str | None = None, **fields: Any) -> dict[str, Any]:
        """A webCRM user creates a record (`ident` None) or edits some of its fields; returns the DTO."""
        query = {"by": by} if by else None
        if ident is None:
            return dict(self.admin("POST", f"/ui/{entity}", json=fields, params=query))
        return dict(self.admin("PUT", f"/ui/{entity}/{ident}", json=fields, params=query))

    def ui_delete(self, entity: str, ident: int) -> None:
        self.admin("DELETE", f"/ui/{entity}/{ident}")

    def table(self, entity: str) -> dict[int, dict[str, Any]]:
        """Every record of a table ("Organisations", "Persons", "Users", ...) by id, from the state."""
        return {int(k): v for k, v in (self.state()["tables"].get(entity) or {}).items()}

    def record(self, entity: str, ident: int) -> dict[str, Any]:
        return self.table(entity)[int(ident)]

    def set_active(self, user_id: int, active: bool) -> None:
        """Whether a user is in `/Users/AllActive` (webCRM changes it without a hook or a DTO change)."""
        self.admin("PUT", f"/users/{user_id}/active", json={"active": active})

    def stamp(self, entity: str, changes: dict[int, dict[str, str]]) -> None:
        """Overwrite stored fields no API can set (e.g. `{7: {"OrganisationUpdatedAt": ...}}`), through
        the state."""
        state = self.state()
        for ident, fields in changes.items():
            state["tables"][entity][str(ident)].update(fields)
        self.put_state(state)

    def writes(self) -> list[str]:
        return [f"{c['method']} {c['path']}" for c in self.calls()
                if c["method"] in ("POST", "PUT", "DELETE", "PATCH") and not c["path"].startswith("/Auth")
                and c["status"] < 400]


class UnicontaSandbox(_Admin):
    """The Uniconta sandbox's admin API (docs/sandbox-uniconta.md)."""

    def __init__(self, url: str) -> None:
        self.url = url

    def user_fields(self, fields: dict[str, list[str]]) -> None:
        """Replace the user-defined String fields of each named table (`[]` removes them)."""
        for table, names in fields.items():
            self.admin("PUT", f"/userfields/{table}", json=[{"Name": n, "Type": "String"} for n in names])

    def ui(self, entity: str, **fields: Any) -> dict[str, Any]:
        """A person inserts a record in the Uniconta client (user fields allowed); returns it."""
        return dict(self.admin("POST", f"/ui/{entity}", json=fields))

    def ui_edit(self, entity: str, **fields: Any) -> dict[str, Any]:
        """A person edits some fields of the record named by `RowId` or its key (partial merge)."""
        return dict(self.admin("PUT", f"/ui/{entity}", json=fields))

    def ui_delete(self, entity: str, **key: Any) -> None:
        self.admin("DELETE", f"/ui/{entity}", json=key)

    def rows(self, table: str) -> dict[int, dict[str, Any]]:
        """Every record of a table ("Employee", "Contact", ...) by RowId, as the API shows it: user
        fields as plain keys, null properties left out."""
        out: dict[int, dict[str, Any]] = {}
        for key, stored in (self.state()["tables"].get(table) or {}).items():
            record = {k: v for k, v in stored.items() if not k.startswith("_") and v is not None}
            record.update({k: v for k, v in (stored.get("_user") or {}).items() if v is not None})
            out[int(key)] = record
        return out

    def stamp(self, table: str, updated_at: dict[int, str]) -> None:
        """Overwrite records' `UpdatedAt` (read-only through the API) by RowId, through the state."""
        state = self.state()
        for row_id, value in updated_at.items():
            state["tables"][table][str(row_id)]["UpdatedAt"] = value
        state["meta"].pop("uniconta.index_token", None)  # let the sandbox rebuild its indexes
        self.put_state(state)

    def budget(self, **settings: Any) -> dict[str, Any]:
        return dict(self.admin("PUT", "/budget", json=settings))

    def writes(self) -> list[str]:
        return [f"{c['method']} {c['path']}" for c in self.calls()
                if any(w in c["path"] for w in ("/Insert", "/Update", "/Delete")) and c["status"] < 400]


@dataclass
class Sandboxes:
    webcrm: WebcrmSandbox
    uniconta: UnicontaSandbox
    redis: redis.Redis  # database 0 of the session's Redis server, flushed for this test

    def reset(self) -> None:
        """Both sandboxes as after start-up, plus the user-defined fields; Redis empty."""
        self.webcrm.reset()
        self.uniconta.reset()
        self.uniconta.user_fields(USER_FIELDS)
        self.redis.flushdb()

    def writes(self) -> tuple[int, int]:
        """(webCRM, Uniconta) API calls that changed data so far, per the sandboxes' call logs."""
        return len(self.webcrm.writes()), len(self.uniconta.writes())


def wait_until(check: Callable[[], Any], timeout: float = 5.0, what: str = "condition") -> Any:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        time.sleep(0.02)
    raise AssertionError(f"timed out after {timeout} s waiting for {what}")


# --------------------------------------------------------------------------- running a job's handler


def run(ctx: ConnectionContext, event: Event) -> Result:
    """What `sync.record` does around a handler, minus Celery: journal, the record's lock, the handler
    `sync.flows.ROUTES` names for the event."""
    route = handler_for(event.system, event.entity)
    assert route is not None, event
    with journal.recording(ctx.redis, event.connection, event.entity, event.record_id), \
            record_lock(ctx.redis, event.connection, event.entity, event.record_id):
        return route[1](ctx, event)


# --------------------------------------------------------------------------- a real Celery producer


@dataclass
class Broker:
    app: Celery
    redis: redis.Redis

    def events(self, *names: str) -> list[tuple[str, Event]]:
        """(queue, event) of every `sync.record` job waiting in the broker, in publish order."""
        out: list[tuple[str, Event]] = []
        for queue in names or queues.ALL:
            for raw in reversed(self.redis.lrange(queue, 0, -1)):  # kombu LPUSHes, workers BRPOP
                message = json.loads(raw)
                assert message["headers"]["task"] == queues.SYNC_RECORD, message["headers"]
                _args, kwargs, _embed = json.loads(base64.b64decode(message["body"]))
                out.append((queue, Event(**kwargs["event"])))
        return out


# --------------------------------------------------------------------------- fixtures


@pytest.fixture
def sandboxes(webcrm_sandbox: str, uniconta_sandbox: str, redis_client: redis.Redis) -> Sandboxes:
    boxes = Sandboxes(WebcrmSandbox(webcrm_sandbox), UnicontaSandbox(uniconta_sandbox), redis_client)
    boxes.reset()
    return boxes


MakeCtx = Callable[..., ConnectionContext]


@pytest.fixture
def make_ctx(sandboxes: Sandboxes, redis_url: str, tmp_path: Path) -> Iterator[MakeCtx]:
    made: list[tuple[Runtime, ConnectionContext]] = []

    def make(*, flows: tuple[str, ...] = FLOWS, webcrm: dict[str, Any] | None = None,
             uniconta: dict[str, Any] | None = None, **changes: Any) -> ConnectionContext:
        path = write_config(tmp_path / f"sync-{len(made)}.toml", webcrm_url=sandboxes.webcrm.url,
                            uniconta_url=sandboxes.uniconta.url, flows=flows)
        conn = load_file(str(path), {})[CONNECTION]
        conn = replace(conn, webcrm=replace(conn.webcrm, **{"rate_limit_per_minute": 0, **(webcrm or {})}),
                       uniconta=replace(conn.uniconta, **{"daily_call_budget": 0, "live_reserve": 0,
                                                          **(uniconta or {})}), **changes)
        # Follow-up jobs go through the task layer's publisher, as in a worker (`broker` makes it real).
        runtime = Runtime(Settings(connections={conn.id: conn}, source=str(path), redis_url=redis_url),
                          enqueue=dispatch.enqueue, enqueue_batch=dispatch.enqueue_batch)
        ctx = runtime.context(conn.id)
        assert ctx is not None
        made.append((runtime, ctx))
        return ctx

    yield make
    for runtime, made_ctx in made:
        made_ctx.webcrm.close()
        made_ctx.uniconta.close()
        runtime.redis.close()


@pytest.fixture
def ctx(make_ctx: MakeCtx) -> ConnectionContext:
    """Connection `t1` on the sandboxes with every flow enabled and our rate limits off."""
    return make_ctx()


@pytest.fixture
def broker(sandboxes: Sandboxes, redis_url: str) -> Iterator[Broker]:
    """`tasks.dispatch.enqueue` publishing to the test Redis (flushed per test) for real."""
    app = make_celery(Settings(connections={}, source="tests", redis_url=redis_url))
    previous = _state._tls.current_app
    app.set_current()
    try:
        yield Broker(app, sandboxes.redis)
    finally:
        _state._set_current_app(previous)
        app.close()
