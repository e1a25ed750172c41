#!/usr/bin/env python3
"""CANCEL-1 in plain Haiway, without the adapter.

Cancelling a subscriber task while it waits for an event breaks the bus for
that event type: the next ``ctx.send`` of the type raises ``AssertionError``
(haiway 0.48.0). The suite found this as
``conformance/expectations/haiway/CANCEL-1-seed-0.json``; this script shows it
with nothing but Haiway's public API.

Run it with the suite's own environment (made by
``cargo xtask conformance --impl haiway``):

    target/haiway-venv/bin/python3 conformance/adapters/haiway/repro_cancel1.py

It prints what happened and exits 1 while the bug is there, 0 once it is
fixed.
"""

import asyncio
import sys

from haiway import State, ctx


class Ping(State):
    id: int


async def main() -> int:
    async with ctx.scope("root"):
        subscription = ctx.subscribe(Ping)

        async def subscriber() -> None:
            async for _ in subscription:
                pass

        waiting = asyncio.create_task(subscriber())
        await asyncio.sleep(0)  # it is now waiting for an event
        waiting.cancel()
        try:
            await waiting
        except asyncio.CancelledError:
            pass
        try:
            ctx.send(Ping(id=1))
        except AssertionError:
            print("ctx.send raised AssertionError after a waiting subscriber was cancelled (CANCEL-1)")
            return 1
        print("ctx.send succeeded: CANCEL-1 holds")
        return 0


if __name__ == "__main__":
    sys.exit(asyncio.run(main()))
