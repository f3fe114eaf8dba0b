"""The gate on its own: threads that call through it are served in rounds; failures reach the caller."""

from __future__ import annotations

import pytest

from sync.jobs.gate import Gate, Request


class TimeLimit(BaseException):
    """Like Celery's SoftTimeLimitExceeded: raised into the job's thread."""


def test_calls_made_at_the_same_time_are_served_in_one_round() -> None:
    gate = Gate()
    rounds: list[list[tuple[str, tuple]]] = []

    def execute(requests: list[Request]) -> None:
        rounds.append(sorted((r.method, r.args) for r in requests))
        for r in requests:
            r.answer(f"{r.method}:{r.args[0]}")

    def record(n: int) -> list[str]:
        return [gate.call(Request("webcrm", "get", (n,))), gate.call(Request("uniconta", "find", (n,)))]

    results = gate.run([lambda n=n: record(n) for n in range(3)], execute)

    assert [value for value, _ in results] == [[f"get:{n}", f"find:{n}"] for n in range(3)]
    assert rounds == [[("get", (0,)), ("get", (1,)), ("get", (2,))],
                      [("find", (0,)), ("find", (1,)), ("find", (2,))]]
    assert gate.rounds == 2


def test_a_failed_call_raises_in_its_record_only_and_unanswered_calls_return_none() -> None:
    gate = Gate()

    def execute(requests: list[Request]) -> None:
        for r in requests:
            if r.args[0] == 1:
                r.fail(ValueError("refused"))
            # the others are left unanswered: a call that returns nothing (a PUT)

    results = gate.run([lambda n=n: gate.call(Request("webcrm", "update", (n,))) for n in range(3)], execute)

    assert results[0] == (None, None) and results[2] == (None, None)
    assert isinstance(results[1][1], ValueError)


def test_records_that_make_no_call_need_no_round() -> None:
    gate = Gate()
    results = gate.run([lambda: 1, lambda: 2], lambda requests: pytest.fail("no round expected"))
    assert results == [(1, None), (2, None)] and gate.rounds == 0


def test_a_time_limit_during_a_round_fails_that_round_and_every_later_call() -> None:
    gate = Gate()
    calls: list[int] = []

    def execute(requests: list[Request]) -> None:
        calls.append(len(requests))
        raise TimeLimit()

    def record() -> str:
        try:
            gate.call(Request("webcrm", "get", (1,)))
        except TimeLimit:
            gate.call(Request("webcrm", "get", (2,)))  # a record that tries again fails at once
        return "unreachable"

    results = gate.run([record, record], execute)

    assert calls == [2]
    assert all(isinstance(error, TimeLimit) for _, error in results)
