"""The `syncctl` group: every command module registers here, nowhere else."""

from __future__ import annotations

import click

from syncctl import (
    backfill,
    config,
    conflicts,
    dlq,
    doctor,
    hooks,
    links,
    reconcile,
    resync,
    run,
    status,
    timeline,
)


@click.group(context_settings={"help_option_names": ["-h", "--help"]})
def main() -> None:
    """Operate the webCRM ↔ Uniconta sync. Exit codes: 0 ok, 1 problem found or service
    unreachable, 2 bad usage, 3 backfill paused by the Uniconta budget, 130 interrupted."""


for command in (config.config, status.status, reconcile.reconcile, backfill.backfill, resync.resync,
                timeline.timeline, dlq.dlq, conflicts.conflicts, doctor.doctor, hooks.hooks, links.links, run.run):
    main.add_command(command)
main.add_command(conflicts.conflicts, "review")

if __name__ == "__main__":  # pragma: no cover
    main()
