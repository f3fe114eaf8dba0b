"""The daily call budget per user (support.uniconta.com "Calling in Uniconta - Reduced Speed", conf. H).

5,000 server calls per user per day are included; for each further 5,000 a one-second delay is added
to every call. The sandbox counts every authenticated API call per user and calendar day
(Europe/Copenhagen), and sleeps `slowdown x floor(calls_before_this_one / budget)` seconds before
answering. Not modelled: the real delay outlasting midnight by up to 24 h.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sandbox.common.store import Store

try:  # the zone database may be missing on minimal images; UTC is then close enough
    from zoneinfo import ZoneInfo
    _ZONE: Any = ZoneInfo("Europe/Copenhagen")
except Exception:  # pragma: no cover
    _ZONE = None

META_KEY = "uniconta.budget"


def today(now: float | None = None) -> str:
    moment = datetime.fromtimestamp(time.time() if now is None else now, _ZONE)
    return moment.strftime("%Y-%m-%d")


class Budget:
    """Counts calls per user and day in the store's meta (so it survives restarts with a state file)."""

    def __init__(self, store: Store, *, budget: int = 5000, slowdown: float = 1.0,
                 clock: Callable[[], float] = time.time) -> None:
        self.store = store
        self.default_budget = budget
        self.default_slowdown = slowdown
        self.clock = clock

    def _state(self) -> dict:
        state = self.store.meta.get(META_KEY)
        if not isinstance(state, dict):
            state = self.store.meta[META_KEY] = {
                "budget": self.default_budget, "slowdown": self.default_slowdown, "day": today(self.clock()),
                "calls": {},
            }
        day = today(self.clock())
        if state.get("day") != day:  # the counter resets at midnight
            state["day"] = day
            state["calls"] = {}
        return state

    def count(self, user: str) -> float:
        """Count one call of `user`; return the seconds to sleep before answering it."""
        with self.store.lock:
            state = self._state()
            before = int(state["calls"].get(user, 0))
            state["calls"][user] = before + 1
            budget, slowdown = int(state["budget"]), float(state["slowdown"])
        self.store.mark_dirty()
        if budget <= 0 or slowdown <= 0:
            return 0.0
        return slowdown * (before // budget)

    def view(self) -> dict:
        with self.store.lock:
            state = self._state()
            budget = int(state["budget"])
            calls = dict(state["calls"])
            return {
                "budget": budget, "slowdown": float(state["slowdown"]), "day": state["day"],
                "calls": calls,
                "delay": {u: (float(state["slowdown"]) * (n // budget) if budget > 0 else 0.0)
                          for u, n in calls.items()},
            }

    def update(self, changes: Any, default_user: str) -> None:
        """Admin PUT: {"budget": int, "slowdown": s, "calls": n | {user: n}, "user": name}; ValueError."""
        if not isinstance(changes, dict):
            raise ValueError("body: must be a JSON object")
        unknown = set(changes) - {"budget", "slowdown", "calls", "user"}
        if unknown:
            raise ValueError(f"{sorted(unknown)[0]}: unknown setting (known: budget, slowdown, calls, user)")
        clean: dict[str, Any] = {}
        if "budget" in changes:
            clean["budget"] = _int("budget", changes["budget"])
        if "slowdown" in changes:
            value = changes["slowdown"]
            if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) \
                    or value < 0:
                raise ValueError("slowdown: must be a number of seconds >= 0")
            clean["slowdown"] = float(value)
        user = changes.get("user", default_user)
        if not isinstance(user, str) or not user:
            raise ValueError("user: must be a user name")
        calls: dict[str, int] | None = None
        if "calls" in changes:
            value = changes["calls"]
            if isinstance(value, dict):
                calls = {str(u): _int(f"calls.{u}", n) for u, n in value.items()}
            else:
                calls = {user: _int("calls", value)}
        with self.store.lock:
            state = self._state()
            state.update(clean)
            if calls is not None:
                state["calls"].update(calls)
        self.store.mark_dirty()

    def reset(self) -> None:
        with self.store.lock:
            self.store.meta.pop(META_KEY, None)
            self._state()
        self.store.mark_dirty()


def _int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name}: must be an integer >= 0")
    return value
