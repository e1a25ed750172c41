"""The bus benchmark's fan-out workload on the real Haiway, for scale.

The same two workloads as ``cargo bench -p scopebus`` (``bus/benches/bus.rs``)
measures for the Rust buses, on Haiway's own event bus (``ctx.send``,
``ctx.subscribe``) in one asyncio event loop:

- ``live`` (consume as they come): N subscriber tasks wait on their
  subscriptions while one sender sends, yielding to the event loop after
  every 16 sends;
- ``drain`` (send all, then drain): N subscriptions are made, every event is
  sent, then N tasks drain them.

Each subscriber receives every event, so a run delivers N x events events.
Prints one JSON document on stdout::

    {"implementation": "haiway", "version": "0.48.0", "python": "3.13.0",
     "results": [{"mode": "live", "subscribers": 8, "events": 20000,
                  "seconds": 0.41, "delivered_per_s": 390000.0}, ...]}

``seconds`` is the median of ``--repeat`` runs, wall time, in seconds, from
the first send to the last receipt (making the subscriptions and starting
the subscriber tasks are not timed, as in the Rust benchmark).
Run by ``cargo xtask bench`` with the interpreter it sets up for ``--impl
haiway`` (``target/haiway-venv``); by hand::

    target/haiway-venv/bin/python3 bench/haiway_fanout.py --subscribers 1 8 --events 10000
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import json
import platform
import statistics
import sys
import time
from importlib import metadata

from haiway import State, ctx

YIELD_EVERY = 16


class Payload(State):
    """The event: one integer, like the Rust benchmark's ``Arc<u64>``."""

    n: int


async def consume(subscription, count: int) -> int:
    received = 0
    async for _event in subscription:
        received += 1
        if received == count:
            break
    return received


def quiet(loop: asyncio.AbstractEventLoop, context: dict) -> None:
    """Haiway's bus, closed at scope exit, leaves the future a subscriber was
    last waiting on with an unread StopAsyncIteration; that is not an error
    of the benchmark. Anything else is reported as usual."""
    if isinstance(context.get("exception"), StopAsyncIteration):
        return
    loop.default_exception_handler(context)


async def live(subscribers: int, events: int) -> float:
    asyncio.get_running_loop().set_exception_handler(quiet)
    async with ctx.scope("bench"):
        subscriptions = [ctx.subscribe(Payload) for _ in range(subscribers)]
        tasks = [asyncio.create_task(consume(s, events)) for s in subscriptions]
        # Every subscriber starts waiting before the clock starts, as in the
        # Rust benchmark (where spawning is not timed either).
        await asyncio.sleep(0)
        started = time.perf_counter()
        for n in range(events):
            ctx.send(Payload(n=n))
            if n % YIELD_EVERY == YIELD_EVERY - 1:
                await asyncio.sleep(0)
        received = await asyncio.gather(*tasks)
        seconds = time.perf_counter() - started
    assert received == [events] * subscribers, received
    return seconds


async def drain(subscribers: int, events: int) -> float:
    asyncio.get_running_loop().set_exception_handler(quiet)
    async with ctx.scope("bench"):
        subscriptions = [ctx.subscribe(Payload) for _ in range(subscribers)]
        started = time.perf_counter()
        for n in range(events):
            ctx.send(Payload(n=n))
        # Each subscription drained in turn, as in the Rust benchmark.
        received = [await consume(s, events) for s in subscriptions]
        seconds = time.perf_counter() - started
    assert received == [events] * subscribers, received
    return seconds


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--subscribers", type=int, nargs="+", default=[1, 8, 64, 1024])
    parser.add_argument(
        "--events",
        type=int,
        default=20_000,
        help="events per run (Python is slow: fewer than the Rust benchmark's 100,000; "
        "the rates are comparable)",
    )
    parser.add_argument("--max-deliveries", type=int, default=2_000_000,
                        help="cap subscribers x events per run by lowering events")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--modes", nargs="+", default=["live", "drain"], choices=["live", "drain"])
    args = parser.parse_args()
    if args.events < 1 or args.repeat < 1 or any(n < 1 for n in args.subscribers):
        parser.error("--events, --repeat and --subscribers must be at least 1")

    results = []
    for mode in args.modes:
        run = live if mode == "live" else drain
        for subscribers in args.subscribers:
            events = max(1, min(args.events, args.max_deliveries // subscribers))
            times = []
            for _ in range(args.repeat):
                gc.collect()
                times.append(asyncio.run(run(subscribers, events)))
            seconds = statistics.median(times)
            results.append({
                "mode": mode,
                "subscribers": subscribers,
                "events": events,
                "seconds": seconds,
                "delivered_per_s": subscribers * events / seconds,
            })
            print(f"haiway {mode} x{subscribers}: {subscribers * events / seconds:,.0f} events/s",
                  file=sys.stderr)
    json.dump({
        "implementation": "haiway",
        "version": metadata.version("haiway"),
        "python": platform.python_version(),
        "results": results,
    }, sys.stdout)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
