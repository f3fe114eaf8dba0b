"""Store: tables, sequences, snapshot/restore and atomic JSON persistence."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import pytest

from sandbox.common.store import Store


def test_tables_sequences_and_meta() -> None:
    store = Store()
    orgs = store.table("orgs")
    assert store.table("orgs") is orgs
    assert [store.next_id("orgs"), store.next_id("orgs"), store.next_id("lines", start=100)] == [1, 2, 100]
    assert store.next_id("lines", start=1) == 101
    orgs["1"] = {"id": 1, "name": "Østergaard Smed ApS"}
    store.meta["quirk"] = "int"
    store.reset()
    assert store.table("orgs") is orgs and orgs == {}
    assert store.meta == {} and store.next_id("orgs") == 1


def test_next_id_is_unique_across_threads() -> None:
    store = Store()
    ids: list[int] = []
    lock = threading.Lock()

    def work() -> None:
        got = [store.next_id("x") for _ in range(200)]
        with lock:
            ids.extend(got)

    threads = [threading.Thread(target=work) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(ids) == list(range(1, 1601))


def test_snapshot_is_a_deep_copy_and_restore_keeps_table_objects() -> None:
    store = Store()
    things = store.table("things")
    things["1"] = {"id": 1, "tags": ["a"]}
    snap = store.snapshot()
    snap["tables"]["things"]["1"]["tags"].append("b")
    assert things["1"]["tags"] == ["a"]
    store.restore({"tables": {"things": {"7": {"id": 7}}, "other": {"k": {"v": 1}}},
                   "sequences": {"things": 7}, "meta": {"m": True}})
    assert store.table("things") is things and things == {"7": {"id": 7}}
    assert store.table("other") == {"k": {"v": 1}}
    assert store.next_id("things") == 8 and store.meta == {"m": True}


@pytest.mark.parametrize(("data", "field"), [
    ([], "state"),
    ({"tables": []}, "tables"),
    ({"tables": {"t": []}}, "tables.t"),
    ({"tables": {"t": {"k": 1}}}, "tables.t.k"),
    ({"sequences": {"t": "1"}}, "sequences.t"),
    ({"sequences": {"t": True}}, "sequences.t"),
    ({"meta": 3}, "meta"),
])
def test_restore_rejects_bad_shapes(data: object, field: str) -> None:
    store = Store()
    store.table("t")["1"] = {"id": 1}
    with pytest.raises(ValueError, match=f"^{field}: "):
        store.restore(data)  # type: ignore[arg-type]
    assert store.table("t") == {"1": {"id": 1}}  # untouched


def test_save_load_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = Store(str(path))
    store.table("orgs")["1"] = {"id": 1, "name": "Kjærgaard Tømrer ApS", "n": 1.5, "x": None, "ok": True}
    store.next_id("orgs")
    store.meta["fields"] = {"OrganisationExtraCustom1": "Debitornummer"}
    store.save()
    again = Store(str(path))
    assert again.snapshot() == store.snapshot()
    assert json.loads(path.read_text(encoding="utf-8"))["tables"]["orgs"]["1"]["name"] == "Kjærgaard Tømrer ApS"
    assert again.next_id("orgs") == 2


def test_save_is_atomic(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = tmp_path / "state.json"
    store = Store(str(path))
    store.table("t")["1"] = {"v": "old"}
    store.save()
    store.table("t")["1"] = {"v": "new"}

    def broken_replace(src: str, dst: str) -> None:
        raise OSError("disk on fire")

    monkeypatch.setattr(os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk on fire"):
        store.save()
    monkeypatch.undo()
    assert Store(str(path)).table("t") == {"1": {"v": "old"}}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]  # no temporary file left behind


def test_mark_dirty_saves_in_the_background(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    store = Store(str(path))
    store.table("t")["1"] = {"v": 1}
    store.mark_dirty()
    deadline = time.monotonic() + 2
    while not path.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    started = time.monotonic()
    assert path.exists()
    store.table("t")["2"] = {"v": 2}
    store.mark_dirty()
    while "2" not in json.loads(path.read_text(encoding="utf-8"))["tables"]["t"]:
        assert time.monotonic() - started < 1.0, "not saved within ~0.5 s"
        time.sleep(0.02)


def test_corrupt_state_file_names_the_file(tmp_path: Path) -> None:
    path = tmp_path / "state.json"
    path.write_text("{not json", encoding="utf-8")
    with pytest.raises(ValueError, match=r"state file .*state\.json"):
        Store(str(path))


def test_without_path_nothing_is_written(tmp_path: Path) -> None:
    store = Store()
    store.table("t")["1"] = {}
    store.mark_dirty()
    store.save()
    assert store.path is None
