"""A cached GET's latency while other clients post 1 MiB JSON bodies (issue 18 item 4). Prints its figures.

    .venv/bin/python benchmarks/bench_body_parsing.py                   # every body shape, 20 s each
    .venv/bin/python benchmarks/bench_body_parsing.py --seconds 10 --shapes ints

`symbol-pipeline serve` (the production server) on its own PostgreSQL database (sp_bench_bodies,
recreated): one GET of a portfolio's cached exposures every 50 ms (20 req/s, open loop: a request
is sent on schedule even while an earlier one is outstanding, and its latency counts from its
scheduled time), first alone, then while four clients (in another process, so that they do not
share this one's GIL) post 1 MiB JSON bodies to /api/v1/positions back to back. Goal: the GET's
p99 moves by at most 50 ms. The body shapes: `ints`, an array of 524,287 zeros; `objects`, an
array of 69,905 position objects; `padded`, one valid position padded with spaces to 1 MiB (201,
a position written per request). The machine's load average is printed beside the figures.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import multiprocessing
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_portfolio import _free_port, create_database, percentile
from bench_quickstart import stop_server

from symbol_pipeline.services import portfolio as svc
from symbol_pipeline.storage.database import get_engine

MIB = 1024 * 1024
RATE = 20
POSTERS = 4


def bodies(portfolio_id: str) -> dict[str, bytes]:
    one = {"portfolio_id": portfolio_id, "symbol": "AAA", "quantity": 1}
    padded = json.dumps(one).encode()
    shapes = {"ints": b"[" + b"0," * (MIB // 2 - 2) + b"0]",
              "objects": json.dumps([one] * (MIB // (len(padded) + 2))).encode(),
              "padded": padded + b" " * (MIB - len(padded))}
    assert all(len(body) <= MIB for body in shapes.values())  # under the body limit: parsed, not refused
    return shapes


@contextlib.contextmanager
def serving(url: str) -> Iterator[str]:
    """`symbol-pipeline serve` on `url`, as production runs it; yields its base URL."""
    port = _free_port()
    command = [str(Path(sys.executable).parent / "symbol-pipeline"), "serve", "--port", str(port), "--log-level",
               "warning"]
    server = subprocess.Popen(command, env={**os.environ, "SYMBOL_PIPELINE_DATABASE_URL": url},
                              start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                httpx.get(f"{base}/openapi.json", timeout=2)
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline or server.poll() is not None:
                    raise RuntimeError("symbol-pipeline serve did not start") from None
                time.sleep(0.3)
        yield base
    finally:
        stop_server(server)


def post_forever(base: str, key: str, body: bytes, stop, counts) -> None:
    """One posting client (its own process): the same body, back to back, until `stop` is set."""
    headers = {"Authorization": f"Bearer {key}", "Content-Type": "application/json"}
    with httpx.Client(base_url=base, headers=headers, timeout=120) as client:
        while not stop.is_set():
            status = client.post("/api/v1/positions", content=body).status_code
            with counts.get_lock():
                counts[status // 100] += 1


def timed_gets(base: str, key: str, path: str, seconds: float) -> list[float]:
    """GET `path` RATE times a second for `seconds`, open loop; the latencies in seconds."""
    latencies: list[float] = []
    local = threading.local()

    def one(scheduled: float) -> None:
        if not hasattr(local, "client"):
            local.client = httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=60)
        wait = scheduled - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
        response = local.client.get(path)
        assert response.status_code == 200 and response.headers.get("x-cache") == "hit", response.text[:200]
        latencies.append(time.perf_counter() - scheduled)

    start = time.perf_counter() + 0.2
    with ThreadPoolExecutor(16) as pool:
        futures = []
        for i in range(int(seconds * RATE)):
            scheduled = start + i / RATE
            time.sleep(max(0.0, scheduled - 0.05 - time.perf_counter()))
            futures.append(pool.submit(one, scheduled))
        for future in futures:
            future.result()  # a failed or uncached GET fails the benchmark
    return latencies


def phase(base: str, key: str, path: str, seconds: float, body: bytes | None) -> dict:
    stop = multiprocessing.Event()
    counts = multiprocessing.Array("i", 6)
    posters = [multiprocessing.Process(target=post_forever, args=(base, key, body, stop, counts))
               for _ in range(POSTERS if body is not None else 0)]
    for p in posters:
        p.start()
    time.sleep(1.0 if posters else 0)  # the posters connected and under way
    latencies = timed_gets(base, key, path, seconds)
    stop.set()
    for p in posters:
        p.join(120)
    return {"p50": percentile(latencies, 50), "p99": percentile(latencies, 99), "max": max(latencies) * 1000,
            "gets": len(latencies), "posts": {f"{k}xx": counts[k] for k in range(6) if counts[k]}}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--shapes", default="ints,objects,padded")
    parser.add_argument("--admin-url", default="postgresql+psycopg2://postgres@127.0.0.1:5432/postgres")
    args = parser.parse_args()
    url = create_database(args.admin_url, "sp_bench_bodies")
    engine = get_engine(url)
    user = svc.create_user(engine, "bench")
    key = svc.issue_api_key(engine, "bench")
    pid = svc.create_portfolio(engine, user.id, "cached", 1_000_000)["id"]
    svc.add_position(engine, pid, "AAA", 100)
    # The posted positions go elsewhere: a change to the GET's portfolio would drop its cache entry.
    target = svc.create_portfolio(engine, user.id, "posted to", 1_000_000)["id"]
    path = f"/api/v1/analytics/portfolio/{pid}/factor-exposures"
    print(f"load average before: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    with serving(url) as base:
        httpx.get(base + path, headers={"Authorization": f"Bearer {key}"})  # the cache entry the GETs hit
        time.sleep(3)  # the parsing worker has started
        print(f"{'shape':8} {'GET alone p50/p99 ms':>22} {'with posters p50/p99 ms':>25} {'Δp99 ms':>8} "
              f"{'max ms':>7}  posts")
        for shape in args.shapes.split(","):
            alone = phase(base, key, path, args.seconds, None)
            loaded = phase(base, key, path, args.seconds, bodies(target)[shape])
            delta = loaded["p99"] - alone["p99"]
            print(f"{shape:8} {alone['p50']:>10.1f} / {alone['p99']:<9.1f} {loaded['p50']:>12.1f} / "
                  f"{loaded['p99']:<10.1f} {delta:>8.1f} {loaded['max']:>7.1f}  {loaded['posts']}"
                  f"  {'ok' if delta <= 50 else 'OVER the 50 ms goal'}", flush=True)
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    engine.dispose()
    return 0


if __name__ == "__main__":
    sys.exit(main())
