"""A tiny API hosted by `sandbox.common.Sandbox`, used by the tests of sandbox/common.

Run as a script it is a sandbox process of its own (`run_cli`), for the command-line tests.
"""

from __future__ import annotations

import argparse
import os
import random
import sys
from typing import Any

from flask import Flask, Response, jsonify, request

from sandbox.common import Sandbox, Store, fake, is_admin_path, json_object, run_cli


def create_app(state_file: str | None = None, greeting: str = "hej") -> Flask:
    """Things with ids; writes fire a webhook to meta["hook_url"] when set; auth by an X-User header."""
    app = Flask("sandbox_common_demo")
    store = Store(state_file)
    things = store.table("things")

    def reset() -> None:
        things["1"] = {"id": store.next_id("things"), "name": "Default ApS"}

    def add_thing(name: str) -> dict:
        with store.lock:
            thing = {"id": store.next_id("things"), "name": name}
            things[str(thing["id"])] = thing
            hook_url = store.meta.get("hook_url")
        store.mark_dirty()
        if hook_url:
            sandbox.hooks.submit("POST", hook_url, params={"id": thing["id"]}, json=thing,
                                 headers={"X-Demo": "1"})
        return thing

    def seed_things(count: int, rng: random.Random) -> list:
        return [add_thing(fake.company_name(rng))["id"] for _ in range(count)]

    def fault_response(status: int) -> Response:
        if status == 429:
            response = jsonify({"RetryAfterSeconds": 7, "Message": "throttled",
                                "Type": "TooManyRequestsException"})
            response.headers["Retry-After"] = "7"
            return response
        return jsonify({"Message": f"injected {status}"})

    @app.before_request
    def authenticate() -> Any:  # registered before Sandbox.register(): faults must still come first
        if is_admin_path(request.path) or request.path == "/open":
            return None
        if not request.headers.get("X-User"):
            return {"Message": "who are you?"}, 401
        return None

    @app.get("/things")
    def list_things() -> Any:
        with store.lock:
            return jsonify(sorted(things.values(), key=lambda t: t["id"]))

    @app.get("/things/<int:thing_id>")
    def get_thing(thing_id: int) -> Any:
        thing = things.get(str(thing_id))
        return jsonify(thing) if thing else ({"Message": "not found"}, 404)

    @app.post("/things")
    def post_thing() -> Any:
        body = request.get_json(silent=True) or {}
        return jsonify(add_thing(str(body.get("name", "")))["id"])

    @app.get("/open")
    def open_route() -> Any:
        return {"greeting": greeting}

    @app.get("/boom")
    def boom() -> Any:
        raise RuntimeError("boom")

    sandbox = Sandbox(app, name="demo", store=store, reset=reset, seeders={"things": seed_things},
                      fault_response=fault_response,
                      user_of_request=lambda: request.headers.get("X-User", ""))

    @sandbox.admin.put("/hook")
    def set_hook() -> Any:
        url = json_object().get("url")
        if not isinstance(url, str):
            raise ValueError("url: required, a string")
        store.meta["hook_url"] = url
        store.mark_dirty()
        return {"url": url}

    sandbox.register()
    if not things:
        reset()
    return app


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--greeting", default=os.environ.get("DEMO_SANDBOX_GREETING", "hej"),
                        help="what /open answers (env DEMO_SANDBOX_GREETING)")


if __name__ == "__main__":
    sys.exit(run_cli(None, prog="demo", create_app=create_app, default_port=8199,
                     add_arguments=add_arguments, env_prefix="DEMO_SANDBOX_"))
