"""`python -m sandbox.webcrm` - serve the webCRM sandbox (default http://127.0.0.1:8101)."""

from __future__ import annotations

import argparse
import os
import sys

from sandbox.common.admin import run_cli
from sandbox.webcrm.app import create_app

ENV = "WEBCRM_SANDBOX_"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    env = os.environ.get
    parser.add_argument("--auth-codes", default=env(f"{ENV}AUTH_CODES") or None,
                        help="application tokens, comma list of code=Display Name "
                             f"(env {ENV}AUTH_CODES, default sandbox-token=Integration)")
    parser.add_argument("--token-lifetime", default=env(f"{ENV}TOKEN_LIFETIME") or None,
                        help=f"access-token lifetime in seconds (env {ENV}TOKEN_LIFETIME, default 3600)")
    parser.add_argument("--rate-limit", default=env(f"{ENV}RATE_LIMIT") or None,
                        help=f"requests per rolling minute per application token, 0 = off "
                             f"(env {ENV}RATE_LIMIT, default 250)")
    parser.add_argument("--seed", default=env(f"{ENV}SEED") or None,
                        help="seed a fresh sandbox at start, e.g. Organisations=200,LinkedData=50,Deliveries=20 "
                             f"(env {ENV}SEED)")
    parser.add_argument("--patch-max-items", default=env(f"{ENV}PATCH_MAX_ITEMS") or None,
                        help="most items one collection PATCH (bulk upsert) accepts, 1..100000 "
                             f"(env {ENV}PATCH_MAX_ITEMS, default 1000)")
    parser.add_argument("--hook-timeout", type=float, default=float(env(f"{ENV}HOOK_TIMEOUT") or 10.0),
                        help=f"seconds an outgoing hook call may take (env {ENV}HOOK_TIMEOUT, default 10)")


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, prog="webcrm", create_app=create_app, default_port=8101,
                   add_arguments=add_arguments, env_prefix=ENV)


if __name__ == "__main__":
    sys.exit(main())
