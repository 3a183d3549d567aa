"""The open-loop load of bench_users.py: a fixed schedule of requests from many users, held by one
asyncio process whatever the server's speed.

Arrivals are Poisson at the offered rate (the sum of many independent users is one); each picks a
user uniformly and an endpoint by the mix. A request is sent at its scheduled time on a free
keep-alive connection of a shared pool (users behind one load balancer); its latency counts from
the scheduled time, so a server that falls behind is charged the wait (no coordinated omission).
A send more than LATE_SECONDS after its scheduled time is a late send: the generator itself fell
behind, and the row says so. The client is aiohttp, a lean asyncio client; the generator shares
the server's cores, so each row prints the generator's own CPU share beside the figures.
"""

from __future__ import annotations

import asyncio
import dataclasses
import resource
import time

import numpy as np

LATE_SECONDS = 0.010
MIX = {"exposures": 0.60, "risk": 0.15, "stress": 0.10, "history": 0.13, "change": 0.02}
PATHS = {
    "exposures": "/api/v1/analytics/portfolio/{pid}/factor-exposures",
    "risk": "/api/v1/analytics/portfolio/{pid}/risk",
    "stress": "/api/v1/analytics/portfolio/{pid}/stress-test",
    "history": "/api/v1/analytics/portfolio/{pid}/factor-exposures/history?end={end}",
}


@dataclasses.dataclass(frozen=True)
class SimUser:
    key: str
    portfolio_id: str
    position_ids: tuple[int, ...]


@dataclasses.dataclass
class Outcome:
    """What one run of the schedule measured."""

    offered: int
    seconds: float  # from the first send to the last answer (the drain included)
    window: float  # the schedule's length: requests were offered over these seconds
    sent: np.ndarray  # (R,) scheduled send time, seconds from the row's start
    endpoint: np.ndarray  # (R,) names
    cache: np.ndarray  # (R,) "hit", "miss" or "-" (no X-Cache header)
    latency: np.ndarray  # (R,) seconds from the scheduled send to the whole body read
    ok: np.ndarray  # (R,) bool: 2xx
    late: int
    late_max: float
    cpu_seconds: float
    statuses: dict[str, int]


def schedule(rate: float, seconds: float, n_users: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(send offsets in seconds, user index, endpoint name) of every request, shape (R,) each."""
    rng = np.random.default_rng(seed)
    n = rng.poisson(rate * seconds)
    at = np.sort(rng.uniform(0, seconds, n))
    users = rng.integers(0, n_users, n)
    names = np.array(list(MIX))
    kinds = names[rng.choice(len(names), n, p=np.array(list(MIX.values())))]
    return at, users, kinds


async def _run(base: str, users: list[SimUser], end: str, rate: float, seconds: float, seed: int,
               connections: int, drain_seconds: float) -> Outcome:
    import aiohttp

    at, who, kinds = schedule(rate, seconds, len(users), seed)
    n = len(at)
    latency, ok = np.full(n, np.nan), np.zeros(n, bool)
    cache = np.full(n, "-", dtype=object)
    statuses: dict[str, int] = {}
    rng = np.random.default_rng(seed + 1)
    loop = asyncio.get_running_loop()
    connector = aiohttp.TCPConnector(limit=connections, force_close=False)
    timeout = aiohttp.ClientTimeout(total=seconds + drain_seconds)

    async def one(i: int, scheduled: float, session: aiohttp.ClientSession) -> None:
        user, kind = users[who[i]], kinds[i]
        headers = {"Authorization": f"Bearer {user.key}"}
        try:
            if kind == "change":
                position = user.position_ids[int(rng.integers(len(user.position_ids)))]
                quantity = float(rng.integers(1, 500)) * (1 if rng.random() < 0.8 else -1)
                request = session.patch(f"{base}/api/v1/positions/{position}", json={"quantity": quantity},
                                        headers=headers)
            else:
                request = session.get(base + PATHS[kind].format(pid=user.portfolio_id, end=end), headers=headers)
            async with request as response:
                await response.read()
                ok[i] = 200 <= response.status < 300
                cache[i] = response.headers.get("X-Cache", "-")
                statuses[str(response.status)] = statuses.get(str(response.status), 0) + 1
        except Exception as exc:  # a timeout or a dropped connection is an error of the row, not a crash
            name = type(exc).__name__
            statuses[name] = statuses.get(name, 0) + 1
        latency[i] = loop.time() - scheduled

    async with aiohttp.ClientSession(connector=connector, timeout=timeout) as session:
        tasks = []
        late, late_max = 0, 0.0
        cpu0, wall0 = _cpu(), time.perf_counter()
        start = loop.time() + 0.05
        for i in range(n):
            scheduled = start + at[i]
            delay = scheduled - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            behind = loop.time() - scheduled
            if behind > LATE_SECONDS:
                late += 1
                late_max = max(late_max, behind)
            tasks.append(asyncio.create_task(one(i, scheduled, session)))
        _, pending = await asyncio.wait(tasks, timeout=drain_seconds) if tasks else (None, [])
        for task in pending:  # never answered: an error at the drain's end
            task.cancel()
        cpu, wall = _cpu() - cpu0, time.perf_counter() - wall0
        unanswered = np.isnan(latency)  # their latency: at least the wait until the drain's end
        latency[unanswered] = loop.time() - (start + at[unanswered])
    if pending:
        statuses["unanswered"] = len(pending)
    return Outcome(offered=n, seconds=wall, window=seconds, sent=at, endpoint=kinds, cache=cache.astype(str), latency=latency, ok=ok,
                   late=late, late_max=late_max, cpu_seconds=cpu, statuses=statuses)


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(base: str, users: list[SimUser], end: str, rate: float, seconds: float, seed: int = 0,
        connections: int = 256, drain_seconds: float = 30.0) -> Outcome:
    """Offer `rate` requests per second for `seconds` and wait up to `drain_seconds` for the last answers."""
    try:
        import uvloop

        return uvloop.run(_run(base, users, end, rate, seconds, seed, connections, drain_seconds))
    except ImportError:
        return asyncio.run(_run(base, users, end, rate, seconds, seed, connections, drain_seconds))
