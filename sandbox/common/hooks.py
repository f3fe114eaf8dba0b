"""Outgoing webhooks of a sandbox, sent from one background thread with the webhook faults applied.

One worker keeps the delivery order equal to the submission order unless a reorder window is set,
which is what a client must cope with when the real API's hooks arrive late, twice or shuffled.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import requests

from sandbox.common.faults import Faults

log = logging.getLogger(__name__)

REORDER_IDLE = 0.2  # seconds without new submissions after which held (reorder) items are sent anyway
MAX_DELIVERIES = 10_000
_FLUSH = object()
_STOP = object()


@dataclass
class _Item:
    seq: int
    generation: int
    method: str
    url: str
    params: dict | None
    json: Any
    headers: dict | None
    on_result: Callable[[dict], None] | None


class WebhookDispatcher:
    """Delivers outgoing webhooks from a background thread, applying the webhook faults."""

    def __init__(self, faults: Faults, timeout: float = 10.0) -> None:
        self.faults = faults
        self.timeout = timeout
        self._queue: queue.Queue[Any] = queue.Queue()
        self._cond = threading.Condition()
        self._pending = 0          # submitted and neither sent, dropped nor discarded yet
        self._seq = 0
        self._generation = 0       # bumped by clear(): older items are discarded unsent
        self._deliveries: deque[dict] = deque(maxlen=MAX_DELIVERIES)
        self._stopped = False
        self._thread = threading.Thread(target=self._run, name="webhook-dispatcher", daemon=True)
        self._thread.start()

    def submit(self, method: str, url: str, *, params: dict | None = None, json: Any = None,
               headers: dict | None = None, on_result: Callable[[dict], None] | None = None) -> None:
        """Queue one request; returns at once. `on_result(delivery)` runs on the worker after each attempt."""
        with self._cond:
            if self._stopped:
                log.warning("webhook to %s submitted after stop(); ignored", url)
                return
            self._seq += 1
            self._pending += 1
            item = _Item(self._seq, self._generation, method.upper(), url, params, json, headers, on_result)
        self._queue.put(item)

    def flush(self, timeout: float = 10.0) -> bool:
        """Wait until everything submitted was sent, dropped or discarded; False on timeout."""
        self._queue.put(_FLUSH)  # releases held (reorder) items without waiting for the idle timer
        deadline = time.monotonic() + timeout
        with self._cond:
            while self._pending:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._cond.wait(left)
            return True

    def deliveries(self) -> list[dict]:
        """Every attempt, in delivery order: {"seq","method","url","params","json","at","duplicate",
        "dropped"} plus "status" (HTTP status) or "error" (connection failure); neither when dropped."""
        with self._cond:
            return [dict(d) for d in self._deliveries]

    def clear(self) -> None:
        """Forget the delivery log and discard whatever is still queued or held."""
        with self._cond:
            self._generation += 1
            self._deliveries.clear()

    def stop(self) -> None:
        """Stop the worker (queued items are discarded); later submissions are ignored."""
        with self._cond:
            if self._stopped:
                return
            self._stopped = True
            self._generation += 1
        self._queue.put(_STOP)
        self._thread.join(5.0)

    # -- worker -------------------------------------------------------------------------------
    def _run(self) -> None:
        held: list[_Item] = []
        while True:
            try:
                item = self._queue.get(timeout=REORDER_IDLE if held else None)
            except queue.Empty:
                self._release(held)
                continue
            if item is _STOP:
                self._release(held)
                return
            if item is _FLUSH:
                self._release(held)
                continue
            window = self.faults.webhook_reorder_window
            if window > 1:
                held.append(item)
                if len(held) >= window:
                    self._release(held)
            else:
                self._release(held)
                self._deliver(item)

    def _release(self, held: list[_Item]) -> None:
        if not held:
            return
        items = list(held)
        held.clear()
        self.faults.shuffle("webhooks", items)
        for item in items:
            self._deliver(item)

    def _deliver(self, item: _Item) -> None:
        try:
            if item.generation != self._generation:
                return
            if self.faults.chance("webhooks", self.faults.webhook_drop_rate):
                self._record(item, {"dropped": True, "duplicate": False})
                return
            duplicate = self.faults.chance("webhooks", self.faults.webhook_duplicate_rate)
            for copy in (False, True) if duplicate else (False,):
                self._send(item, duplicate=copy)
        except Exception:  # never let one bad item kill the worker
            log.exception("webhook delivery to %s failed unexpectedly", item.url)
        finally:
            with self._cond:
                self._pending -= 1
                self._cond.notify_all()

    def _send(self, item: _Item, *, duplicate: bool) -> None:
        delay = self.faults.webhook_delay_ms
        if delay > 0:
            time.sleep(delay / 1000)
        outcome: dict[str, Any] = {"dropped": False, "duplicate": duplicate}
        try:
            # A fresh connection each time (no Session): a pooled connection gone stale after the
            # receiver restarted would show up as a spurious failed delivery.
            response = requests.request(item.method, item.url, params=item.params, json=item.json,
                                        headers=item.headers, timeout=self.timeout)
            response.close()
            outcome["status"] = response.status_code
        except requests.RequestException as exc:
            outcome["error"] = f"{type(exc).__name__}: {exc}"
        self._record(item, outcome)

    def _record(self, item: _Item, outcome: dict[str, Any]) -> None:
        delivery = {"seq": item.seq, "method": item.method, "url": item.url, "params": item.params,
                    "json": item.json, "at": time.time(), **outcome}
        with self._cond:
            if item.generation != self._generation:
                return
            self._deliveries.append(delivery)
        if item.on_result is not None:
            try:
                item.on_result(dict(delivery))
            except Exception:
                log.exception("webhook on_result callback failed for %s", item.url)
