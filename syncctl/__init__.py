"""`syncctl`: the operator's command line (docs/operations.md has every command with examples).

One module per command group; `syncctl.common` holds what they share. `syncctl.main` is the
console script's entry point, `syncctl.run` the supervisor behind `make run`.

    syncctl status [CONNECTION] [--json] [--check]
    syncctl reconcile CONNECTION [--entity E] [--since T] [--full] [--json]
    syncctl backfill CONNECTION ENTITY [--since DATE] [--dry-run] [--limit N] [--restart] [--window N] [--json]
    syncctl resync CONNECTION ENTITY ID [--wait] [--timeout S] [--force] [--json]
    syncctl timeline CONNECTION ENTITY ID [--limit N] [--json]
    syncctl dlq list|show|requeue|drop ...
    syncctl conflicts list [CONNECTION] | resolve CONNECTION ID        (alias: review)
    syncctl doctor CONNECTION [--public-url URL] [--json]
    syncctl hooks install|list|remove CONNECTION [--public-url URL]
    syncctl links rebuild CONNECTION [ENTITY] [--json]
    syncctl config show [CONNECTION] [--json] | check FILE

Every read command takes `--json`. Exit codes:
    0    success
    1    the command ran but found a problem (doctor/status --check found problems, a
         resync ended as a dead letter, some letters could not be requeued), or a service
         it needs is unreachable (Redis, webCRM, Uniconta)
    2    bad usage or unusable configuration (unknown connection, entity or id, bad option)
    3    backfill stopped because the Uniconta daily budget reached the live reserve: run
         the same command after the time it prints (local midnight) to resume
    130  interrupted (Ctrl-C); a backfill resumes from its checkpoint when run again
"""
