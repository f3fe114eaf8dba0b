"""The executor against the sandboxes over HTTP: how a round's calls become few API calls, and what
happens when a shared call is refused for one of its records."""

from __future__ import annotations

from typing import Any

from sync.jobs import calls
from sync.jobs.gate import Gate, Request
from sync.runtime import ConnectionContext
from tests.support.context import Sandboxes


def _round(ctx: ConnectionContext, requests: list[Request], *, rows: dict[str, int] | None = None,
           **settings: Any) -> tuple[list[tuple[Any, Any]], list]:
    """Serve the requests as one round (each from its own thread); (answer, error) per request, and what the
    executor was told would be written. `rows`: table sizes the executor knows from earlier reads."""
    expected: list[tuple[str, str, list]] = []
    executor = calls.Executor(ctx.webcrm, ctx.uniconta, calls.Settings(**settings),
                              expect=lambda system, entity, records: expected.append((system, entity, records)))
    for entity, count in (rows or {}).items():
        executor.table_rows.record(entity, count)
    gate = Gate()
    results = gate.run([lambda r=r: gate.call(r) for r in requests], executor)
    return results, expected


def test_an_insert_list_refused_for_one_record_fails_that_record_alone(ctx: ConnectionContext,
                                                                       sandboxes: Sandboxes) -> None:
    sandboxes.uniconta.ui("DebtorClient", Account="2", Name="Taken")
    bodies = [{"Account": str(n), "Name": f"Debitor {n}"} for n in range(1, 6)]
    sandboxes.uniconta.clear_calls()

    results, expected = _round(ctx, [Request("uniconta", "insert", ("DebtorClientUser", b)) for b in bodies])

    assert [type(error).__name__ for _, error in results] == ["NoneType", "Conflict", "NoneType", "NoneType",
                                                               "NoneType"]
    assert {row["Account"] for row in sandboxes.uniconta.rows("Debtor").values()} == {"1", "2", "3", "4", "5"}
    inserts = [c["path"] for c in sandboxes.uniconta.calls() if "Insert" in c["path"]]
    assert inserts == ["/api/Entities/InsertList/DebtorClientUser"] * 2  # refused once, then without "2"
    assert expected[0] == ("uniconta", "DebtorClientUser", bodies)  # announced before it was sent


def test_a_bulk_write_whose_answer_says_nothing_is_written_again_record_by_record(ctx: ConnectionContext,
                                                                                  sandboxes: Sandboxes) -> None:
    ids = [int(sandboxes.webcrm.ui("Organisations", OrganisationName=f"Org {n}")["OrganisationId"]) for n in range(3)]
    sandboxes.webcrm.quirks(patch_result="empty")
    dtos = {i: {**ctx.webcrm.get("Organisations", i), "OrganisationCity": "Odense"} for i in ids}
    sandboxes.webcrm.clear_calls()

    results, _ = _round(ctx, [Request("webcrm", "update", ("Organisations", i, dtos[i])) for i in ids])

    assert [error for _, error in results] == [None, None, None]
    assert {o["OrganisationCity"] for o in sandboxes.webcrm.table("Organisations").values()} == {"Odense"}
    paths = [f"{c['method']} {c['path']}" for c in sandboxes.webcrm.calls() if not c["path"].startswith("/Auth")]
    assert paths == ["PATCH /Organisations", *(f"PUT /Organisations/{i}" for i in ids)]


def test_a_record_a_bulk_write_refuses_gets_the_single_writes_answer(ctx: ConnectionContext,
                                                                     sandboxes: Sandboxes) -> None:
    """Found by the soak: a person deleted while its batch wrote its contact's RowId back was
    dead-lettered with the PATCH's item message; written alone it is a 404, which its flow handles."""
    ids = [int(sandboxes.webcrm.ui("Organisations", OrganisationName=f"Org {n}")["OrganisationId"]) for n in range(3)]
    dtos = {i: {**ctx.webcrm.get("Organisations", i), "OrganisationCity": "Odense"} for i in ids}
    sandboxes.webcrm.ui_delete("Organisations", ids[1])
    sandboxes.webcrm.clear_calls()

    results, _ = _round(ctx, [Request("webcrm", "update", ("Organisations", i, dtos[i])) for i in ids])

    assert [type(error).__name__ for _, error in results] == ["NoneType", "NotFound", "NoneType"]
    paths = [f"{c['method']} {c['path']}" for c in sandboxes.webcrm.calls() if not c["path"].startswith("/Auth")]
    assert paths == ["PATCH /Organisations", f"PUT /Organisations/{ids[1]}"]


def test_lookups_of_many_values_go_in_or_lists_of_at_most_forty(ctx: ConnectionContext, sandboxes: Sandboxes) -> None:
    for n in range(1, 51):
        sandboxes.uniconta.ui("DebtorClient", Account=str(n), Name=f"Debitor {n}")
    sandboxes.uniconta.clear_calls()

    results, _ = _round(ctx, [Request("uniconta", "get_one", ("DebtorClientUser", "Account", str(n)))
                              for n in range(1, 91)], or_filter_size=40, rows={"DebtorClientUser": 100_000})

    answers = [value for value, _ in results]
    assert [a["Account"] if a else None for a in answers] == [str(n) if n <= 50 else None for n in range(1, 91)]
    assert len(sandboxes.uniconta.calls()) == 3  # 90 values: 40 + 40 + 10


def test_many_records_of_a_small_table_are_looked_up_in_one_read_of_the_table(ctx: ConnectionContext,
                                                                             sandboxes: Sandboxes) -> None:
    for n in range(1, 11):
        sandboxes.uniconta.ui("DebtorClient", Account=str(n), Name=f"Debitor {n}")
    sandboxes.uniconta.clear_calls()
    executor = calls.Executor(ctx.webcrm, ctx.uniconta, calls.Settings())
    executor.table_rows.record("DebtorClientUser", 10)  # known from an earlier read
    gate = Gate()
    lookups = [Request("uniconta", "get_one", ("DebtorClientUser", "Account", str(n))) for n in range(1, 121)]

    results = gate.run([lambda r=r: gate.call(r) for r in lookups], executor)

    assert sum(1 for value, _ in results if value) == 10
    assert [c["query"] for c in sandboxes.uniconta.calls()] == [""]  # the whole table, one page


def test_lookups_by_a_text_column_read_the_table_once_and_by_a_number_a_range(ctx: ConnectionContext,
                                                                             sandboxes: Sandboxes) -> None:
    numbers = [f"V-{n}" for n in range(5)]
    for number in numbers:
        ctx.webcrm.create("QuotationLines/LinkedData", {"QuotationLineLinkedDataItemId": 0,
                                                        "QuotationLineLinkedDataItemEntityType": "Product",
                                                        **{f"QuotationLineLinkedDataItemData{i}": "-" for i in range(1, 10)},
                                                        "QuotationLineLinkedDataItemData1": number})
    orgs = [int(sandboxes.webcrm.ui("Organisations", OrganisationName=f"Org {n}")["OrganisationId"]) for n in range(3)]
    for org in orgs:
        sandboxes.webcrm.ui("Persons", PersonOrganisationId=org, PersonLastName="Hansen")
    sandboxes.webcrm.clear_calls()
    by_number = [Request("webcrm", "query", (f"SELECT * FROM LinkedData WHERE QuotationLineLinkedDataItemData1 = "
                                              f"'{n.lower()}'",)) for n in [*numbers, "V-99"]]
    by_org = [Request("webcrm", "query", (f"SELECT * FROM Person WHERE PersonOrganisationId = '{o}'",)) for o in orgs]

    results, _ = _round(ctx, by_number + by_org)

    found = [[r["QuotationLineLinkedDataItemData1"] for r in value] for value, _ in results[:6]]
    assert found == [[n] for n in numbers] + [[]]  # matched as webCRM matches: case-blind
    assert [[p["PersonOrganisationId"] for p in value] for value, _ in results[6:]] == [[o] for o in orgs]
    queries = [c["query"] for c in sandboxes.webcrm.calls() if c["path"] == "/Queries"]
    assert len(queries) == 2, queries  # the catalogue once, the persons' range once
