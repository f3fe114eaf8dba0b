"""What operators run beside the live flows: reconciliation, backfill, dry run, relink,
doctor, hook setup and the data behind `syncctl status`."""
