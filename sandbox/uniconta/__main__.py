"""`python -m sandbox.uniconta [--host H] [--port P] [--state-file F] [options]` (default 127.0.0.1:8102)."""

from __future__ import annotations

import argparse
import os
import sys

from sandbox.common import run_cli
from sandbox.uniconta.app import ENV, create_app

DEFAULT_PORT = 8102


def add_arguments(parser: argparse.ArgumentParser) -> None:
    def option(flag: str, help_text: str, default: str) -> None:
        env = ENV + flag.upper().replace("-", "_")
        parser.add_argument(f"--{flag}", default=os.environ.get(env) or None,
                            help=f"{help_text} (env {env}, default {default})")

    option("company", "company id", "1234")
    option("user", "API user name", "sandbox")
    option("password", "the user's password", "sandbox")
    option("users", "more users as name=password,name2=password2", "none")
    option("daily-budget", "calls per user per day before every call is slowed; 0 = off", "5000")
    option("slowdown", "seconds added per call for each budget exceeded", "1.0")
    option("odata-page-size", "OData rows per page before @odata.nextLink", "100")
    option("odata-max-page-size", "most rows per OData page a Prefer: odata.maxpagesize=N request gets", "1000")
    option("odata-max-or", "most values joined with 'or' in one OData $filter; 0 = no limit", "40")
    option("omit-nulls", "leave null properties out of responses (true/false)", "true")
    option("user-fields", "user-defined fields at start/reset, e.g. Debtor:WebcrmId,Employee:WebcrmUserId:String",
           "none")
    option("webhook-timeout", "seconds a Change-URL call may take", "10")


def main(argv: list[str] | None = None) -> int:
    return run_cli(argv, prog="uniconta", create_app=create_app, default_port=DEFAULT_PORT,
                   add_arguments=add_arguments, env_prefix=ENV)


if __name__ == "__main__":
    sys.exit(main())
