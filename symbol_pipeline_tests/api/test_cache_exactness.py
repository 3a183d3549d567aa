"""The analytics cache under parallel readers and writers, against a real `symbol-pipeline serve` on
PostgreSQL (issue 19 item 4): a read that starts after a position change has been answered never
shows an older quantity, and `X-Cache` says what happened.

One writer changes a position's quantity to 2, 3, 4, ... (each answered before the next); readers
fetch the portfolio's exposures all the while. The position is the session server's AAA (close 10,
market beta 1), so a document's gross exposure is 10 × the quantity it was computed from. For every
read: the quantity it shows is at least the last one whose change was answered before the read was
sent, and at most the last one whose change was sent before the read was answered. A `hit` serves a
document some `miss` computed (documents carry their `computed_at`), and no two misses serve the
same document. A second portfolio of the same user, never changed, is hit all the while.
"""

from __future__ import annotations

import datetime as dt
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor

import httpx
import orjson
import pytest

from symbol_pipeline.services import portfolio as service

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

READERS = 6
CHANGES = 40
CLOSE = 10.0  # AAA's close in the session server's database (conftest.served_api)


def _read(client: httpx.Client, path: str) -> tuple[float, float, str, str]:
    sent = time.monotonic()
    response = client.get(path)
    assert response.status_code == 200, response.text
    return sent, time.monotonic(), response.headers.get("X-Cache", ""), response.text


def test_no_read_after_a_change_is_stale_and_x_cache_tells_hit_from_miss(pg_api_server):
    api = pg_api_server
    name = f"exact_{uuid.uuid4().hex[:8]}"
    user = service.create_user(api.engine, name)
    auth = {"Authorization": f"Bearer {service.issue_api_key(api.engine, name)}"}
    changed, steady = (service.create_portfolio(api.engine, user.id, label, 1_000_000)["id"]
                       for label in ("changed", "steady"))
    entry = dt.date.today() - dt.timedelta(days=10)
    position = service.add_position(api.engine, changed, "AAA", 1, entry_date=entry)["position"]["id"]
    service.add_position(api.engine, steady, "AAA", 7, entry_date=entry)
    path, steady_path = (f"/api/v1/analytics/portfolio/{p}/factor-exposures" for p in (changed, steady))

    with httpx.Client(base_url=api.base, headers=auth, timeout=60) as client:
        _, _, cache, steady_body = _read(client, steady_path)
    assert cache == "miss"

    writes: list[tuple[int, float, float]] = [(1, 0.0, 0.0)]  # (quantity, sent, answered)
    done = threading.Event()

    def writer() -> None:
        with httpx.Client(base_url=api.base, headers=auth, timeout=60) as client:
            for quantity in range(2, CHANGES + 2):
                sent = time.monotonic()
                response = client.patch(f"/api/v1/positions/{position}", json={"quantity": quantity})
                assert response.status_code == 200, response.text
                writes.append((quantity, sent, time.monotonic()))
                time.sleep(0.005 * (quantity % 4))  # some reads between changes, some racing them
        done.set()

    def reader(i: int) -> tuple[list, list]:
        reads, steady_reads = [], []
        with httpx.Client(base_url=api.base, headers=auth, timeout=60) as client:
            while not done.is_set():
                reads.append(_read(client, path))
                if i % 2 == 0:
                    steady_reads.append(_read(client, steady_path))
        return reads, steady_reads

    with ThreadPoolExecutor(READERS + 1) as pool:
        write_future = pool.submit(writer)
        results = [f.result() for f in [pool.submit(reader, i) for i in range(READERS)]]
        write_future.result()
    reads = [r for rs, _ in results for r in rs]
    steady_reads = [r for _, rs in results for r in rs]

    misses = [body for _, _, cache, body in reads if cache == "miss"]
    assert {cache for _, _, cache, _ in reads} <= {"hit", "miss"}
    assert len(misses) == len(set(misses)), "two misses served one document: one of them was not computed"
    for sent, answered, cache, body in reads:
        shown = orjson.loads(body)["gross_exposure"] / CLOSE
        committed = max(q for q, _, done_at in writes if done_at < sent)
        started = max(q for q, began, _ in writes if began < answered)
        assert committed <= round(shown) <= started, (cache, shown, committed, started)
        if cache == "hit":
            assert body in misses, "a hit served a document no miss computed"
    assert len(reads) > CHANGES

    # The portfolio nobody changed: computed before the race, then served from the cache every time.
    assert steady_reads and {(c, body) for _, _, c, body in steady_reads} == {("hit", steady_body)}

    # Quiet again: a change, then a miss showing it, then a hit of that very document.
    with httpx.Client(base_url=api.base, headers=auth, timeout=60) as client:
        assert client.patch(f"/api/v1/positions/{position}", json={"quantity": 999}).status_code == 200
        _, _, first, miss_body = _read(client, path)
        _, _, second, hit_body = _read(client, path)
    assert (first, second) == ("miss", "hit")
    assert orjson.loads(miss_body)["gross_exposure"] == 999 * CLOSE and hit_body == miss_body


def test_the_stress_test_says_hit_or_miss_and_a_change_makes_it_a_miss(pg_api_server):
    api = pg_api_server
    name = f"stress_{uuid.uuid4().hex[:8]}"
    user = service.create_user(api.engine, name)
    auth = {"Authorization": f"Bearer {service.issue_api_key(api.engine, name)}"}
    pid = service.create_portfolio(api.engine, user.id, "stressed", 1_000_000)["id"]
    position = service.add_position(api.engine, pid, "AAA", 5, entry_date=dt.date.today() - dt.timedelta(days=10))
    path = f"/api/v1/analytics/portfolio/{pid}/stress-test"
    with httpx.Client(base_url=api.base, headers=auth, timeout=60) as client:
        answers = [client.get(path) for _ in range(2)]
        client.patch(f"/api/v1/positions/{position['position']['id']}", json={"quantity": 6}).raise_for_status()
        answers.append(client.get(path))
    assert [a.status_code for a in answers] == [200] * 3, answers[0].text
    assert [a.headers.get("X-Cache") for a in answers] == ["miss", "hit", "miss"]
    assert answers[1].text == answers[0].text != answers[2].text
