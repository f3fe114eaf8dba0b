"""Every Redis key the service uses, in one place, namespaced by connection."""

from __future__ import annotations

PREFIX = "sync"


def seen(connection: str, delivery_id: str) -> str:
    """Idempotency key of one webhook delivery."""
    return f"{PREFIX}:{connection}:seen:{delivery_id}"


def pending(connection: str, system: str, entity: str, record_id: str) -> str:
    """Set while a sync job for this record is queued and not yet started."""
    return f"{PREFIX}:{connection}:pending:{system}:{entity}:{record_id}"


def singles(connection: str, system: str, entity: str) -> str:
    """Hash record id → event of the single jobs of one entity that are queued and not started (the
    ones a burst may take into a batch job)."""
    return f"{PREFIX}:{connection}:singles:{system}:{entity}"


def echo(connection: str, system: str, entity: str, record_id: str) -> str:
    """Set for a while after a batch wrote this record: its webhooks are echoes, gathered, not run one by one."""
    return f"{PREFIX}:{connection}:echo:{system}:{entity}:{record_id}"


def burst(connection: str, system: str, entity: str) -> str:
    """(`:rate`: the records of the entity with webhooks this second; the key itself: set while the entity
    sees a burst.)"""
    return f"{PREFIX}:{connection}:burst:{system}:{entity}"


def drained(connection: str, event_id: str) -> str:
    """Set when a queued single job's record was taken into a batch job: the job then does nothing."""
    return f"{PREFIX}:{connection}:drained:{event_id}"


def lock(connection: str, entity: str, record_id: str) -> str:
    return f"{PREFIX}:{connection}:lock:{entity}:{record_id}"


def links(connection: str, entity: str, direction: str) -> str:
    """Hash of cross-references: direction 'w2u' (webCRM id → Uniconta key) or 'u2w'."""
    return f"{PREFIX}:{connection}:link:{entity}:{direction}"


def fingerprint(connection: str, entity: str, side: str, record_id: str) -> str:
    return f"{PREFIX}:{connection}:fp:{entity}:{side}:{record_id}"


def journal(connection: str, entity: str, record_id: str) -> str:
    return f"{PREFIX}:{connection}:journal:{entity}:{record_id}"


def dead_letters() -> str:
    """Hash id → JSON of every dead letter (all connections; each entry names its connection)."""
    return f"{PREFIX}:dlq"


def dead_letter_index() -> str:
    """Sorted set of dead-letter ids by time, for listing newest first."""
    return f"{PREFIX}:dlq:index"


def webcrm_rate(connection: str) -> str:
    return f"{PREFIX}:{connection}:rate:webcrm"


def uniconta_budget(connection: str) -> str:
    return f"{PREFIX}:{connection}:budget:uniconta"


def counter(connection: str, name: str) -> str:
    """Monotonic counters for status and benchmarks (syncs, writes, skips...)."""
    return f"{PREFIX}:{connection}:count:{name}"
