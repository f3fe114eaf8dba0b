"""Rounds of shared API calls for record handlers that run side by side, one thread per record.

A flow is written for one record: read, decide, write, read the answer, decide again. A batch
runs many of them at once, each in its own thread, with clients that do not call the API
themselves but hand the call to the gate and wait. When every thread is waiting (or done),
the gate has a *round*: all the calls the records need next, at the same time. It gives them
to an executor, which serves them with as few API calls as it can (one query for a page of
records, one InsertList or bulk PATCH for many writes), answers each thread, and the threads
go on to their next call. So the flows keep their per-record decisions unchanged, and the
batch spends calls per round, not per record.

The gate knows nothing of HTTP: requests are (client, method, args); the executor decides.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from sync.state import journal


@dataclass(eq=False)
class Request:
    """One client call a record's thread waits for."""

    client: str  # "webcrm" | "uniconta"
    method: str
    args: tuple[Any, ...]
    kwargs: dict[str, Any] = field(default_factory=dict)
    record: Any = None  # the journal target of the asking thread (journal.current())
    answered: bool = False
    _done: threading.Event = field(default_factory=threading.Event)
    _value: Any = None
    _error: BaseException | None = None

    def answer(self, value: Any) -> None:
        self._value, self._error, self.answered = value, None, True

    def fail(self, error: BaseException) -> None:
        self._value, self._error, self.answered = None, error, True

    def result(self) -> Any:
        if self._error is not None:
            raise self._error
        return self._value


Executor = Callable[[list[Request]], None]


class Gate:
    """Runs work items in threads and serves their client calls in rounds."""

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._running = 0
        self._pending: list[Request] = []
        self._aborted: BaseException | None = None
        self.rounds = 0

    def call(self, request: Request) -> Any:
        """From a work thread: wait for the round that serves this request; its answer or error."""
        request.record = journal.current()
        journal.flush()  # what the record noted so far goes before the call it now waits for
        with self._cond:
            if self._aborted is not None:
                raise self._aborted
            self._pending.append(request)
            self._settle_one()
        request._done.wait()  # its own event: a round wakes only the threads it answered
        return request.result()

    def _settle_one(self) -> None:
        """A thread stops running (waits for a call, or ends); the last one wakes the coordinator."""
        self._running -= 1
        if self._running == 0:
            self._cond.notify()

    def run(self, work: Sequence[Callable[[], Any]], execute: Executor) -> list[tuple[Any, BaseException | None]]:
        """Run every work item in its own thread; (result, error) per item, in order.

        `execute` is called in this thread once per round with the round's requests; it must
        answer or fail each of them. An exception it raises, or one raised into this thread while
        it waits (a time limit), fails that round's and every later request.
        """
        results: list[tuple[Any, BaseException | None]] = [(None, None)] * len(work)

        def worker(index: int, item: Callable[[], Any]) -> None:
            try:
                results[index] = (item(), None)
            except BaseException as err:  # handed to the caller, which decides per record
                results[index] = (None, err)
            finally:
                with self._cond:
                    self._settle_one()

        threads = [threading.Thread(target=worker, args=(i, item), name=f"batch-record-{i}", daemon=True)
                   for i, item in enumerate(work)]
        with self._cond:
            self._running = len(threads)
        for thread in threads:
            thread.start()
        while True:
            batch: list[Request] = []
            try:
                with self._cond:
                    while self._running > 0:
                        self._cond.wait()
                    batch, self._pending = self._pending, []
                if not batch:
                    break
                self.rounds += 1
                execute(batch)
            except BaseException as err:  # e.g. the job's time limit, raised into this thread
                self._abort(err, batch)
                continue
            for request in batch:
                if not request.answered:
                    request.answer(None)  # a call that returns nothing (a PUT): answered by its success
            self._release(batch)
        for thread in threads:
            thread.join()
        return results

    def _abort(self, err: BaseException, batch: list[Request]) -> None:
        """Fail the round's and every later request with `err`, so each record ends with it (and its
        verdict) instead of waiting for a round that will not come."""
        with self._cond:
            self._aborted = err
            batch = batch + self._pending
            self._pending = []
        for request in batch:
            if not request.answered:
                request.fail(err)
        self._release(batch)

    def _release(self, batch: list[Request]) -> None:
        with self._cond:
            self._running += len(batch)
        for request in batch:
            request._done.set()
