"""What a job does with the events it carries: one record (`step`), or many at once (`batch`).

The task layer (`tasks/record.py`, `tasks/batch.py`) wraps these in Celery jobs and decides
retries; everything a sync does to one record — journal, pending mark, lock, the flow, the
classification of a failure, a dead letter — is here, once, for both.

The bulk lane (`batch`): the records of a page, a reconciliation or a burst of webhooks run
side by side, one thread per record, through clients that hand their calls to a `Gate`; each
round of calls is served by `calls.Executor` with as few API calls as it can (a query per page
of records, an OR filter per 40 keys, one InsertList or bulk PATCH per chunk of writes).
"""
