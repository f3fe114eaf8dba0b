"""Many clients at once over real HTTP: the store's lock keeps keys, numbers and totals consistent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import requests

AUTH = ("001234/sandbox", "sandbox")


def test_parallel_writes_stay_consistent(live):
    base = live()
    session = requests.Session()
    session.post(f"{base}/api/Entities/Insert/DebtorClient", json={"Account": "1000"}, auth=AUTH, timeout=5)
    session.post(f"{base}/api/Entities/Insert/DebtorOrderClient", json={"Account": "1000"}, auth=AUTH, timeout=5)

    def work(n: int) -> list[int]:
        with requests.Session() as s:
            statuses = []
            for i in range(15):
                r = s.post(f"{base}/api/Entities/Insert/DebtorOrderLineClient",
                           json={"OrderNumber": 1, "Qty": 1, "Price": 1.1}, auth=AUTH, timeout=10)
                statuses.append(r.status_code)
                r = s.post(f"{base}/api/Entities/Insert/DebtorClient", json={"Account": f"{n}-{i % 5}"},
                           auth=AUTH, timeout=10)
                statuses.append(r.status_code)
                statuses.append(s.get(f"{base}/odata/1234/DebtorOrderLineClient?$top=5", auth=("sandbox", "sandbox"),
                                      headers={"Accept": "application/json"}, timeout=10).status_code)
            return statuses

    with ThreadPoolExecutor(8) as pool:
        results = [s for r in pool.map(work, range(8)) for s in r]
    assert all(s < 500 for s in results)
    assert results.count(400) == 8 * 10  # each worker repeats 5 of its 15 debtor accounts twice
    lines = session.get(f"{base}/api/Entities/DebtorOrderLineClient", auth=AUTH, timeout=10).json()
    assert len(lines) == 120
    assert sorted(line["LineNumber"] for line in lines) == list(range(1, 121))
    assert len({line["RowId"] for line in lines}) == 120
    [order] = session.get(f"{base}/api/Entities/DebtorOrderClient", auth=AUTH, timeout=10).json()
    assert order["Total"] == 132.0
    debtors = session.get(f"{base}/api/Entities/DebtorClient", auth=AUTH, timeout=10).json()
    assert len(debtors) == 1 + 8 * 5
