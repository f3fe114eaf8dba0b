"""Helpers shared by the Uniconta sandbox tests (imported by conftest.py and the test modules)."""

from __future__ import annotations

import base64
from typing import Any

from flask import Flask
from flask.testing import FlaskClient

from sandbox.uniconta.app import create_app
from tests.support.http import WebhookSink


def basic(user: str, password: str = "sandbox") -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


API_AUTH = basic("001234/sandbox")
ODATA = {**basic("sandbox"), "Accept": "application/json"}


class Api:
    """The test client with the default Entities credentials; every call asserts the answer is not a 5xx."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def _call(self, method: str, path: str, **kw: Any) -> Any:
        headers = {**API_AUTH, **kw.pop("headers", {})}
        response = self.client.open(path, method=method, headers=headers, **kw)
        assert response.status_code < 500, response.get_data(as_text=True)
        return response

    def get(self, entity: str, **params: Any) -> Any:
        return self._call("GET", f"/api/Entities/{entity}", query_string=params)

    def insert(self, entity: str, body: Any) -> Any:
        return self._call("POST", f"/api/Entities/Insert/{entity}", json=body)

    def insert_list(self, entity: str, body: Any) -> Any:
        return self._call("POST", f"/api/Entities/InsertList/{entity}", json=body)

    def update(self, entity: str, body: Any) -> Any:
        return self._call("PUT", f"/api/Entities/Update/{entity}", json=body)

    def delete(self, entity: str, body: Any) -> Any:
        return self._call("DELETE", f"/api/Entities/Delete/{entity}", json=body)

    def odata(self, path: str, **params: Any) -> Any:
        response = self.client.get(f"/odata/1234/{path}", query_string=params, headers=ODATA)
        assert response.status_code < 500, response.get_data(as_text=True)
        return response

    def admin(self, method: str, path: str, body: Any = None) -> Any:
        response = self.client.open(f"/_sandbox/{path}", method=method, json=body)
        assert response.status_code < 500, response.get_data(as_text=True)
        return response

    # shortcuts that must succeed
    def make(self, entity: str, body: dict) -> dict:
        response = self.insert(entity, body)
        assert response.status_code == 200, response.get_json()
        return response.get_json()

    def debtor(self, account: str = "1000", **fields: Any) -> dict:
        return self.make("DebtorClient", {"Account": account, "Name": f"Kunde {account}", **fields})

    def item(self, item: str = "A-1", **fields: Any) -> dict:
        return self.make("InvItemClient", {"Item": item, "Name": f"Vare {item}", "CostPrice": 10,
                                           "SalesPrice1": 25, **fields})


def make_app(**options: Any) -> Flask:
    options.setdefault("daily_budget", 0)
    return create_app(**options)


Receiver = WebhookSink  # the shared recorder of Change-URL calls
