#!/usr/bin/env python3
"""Ground truth for conformance/expectations/broadcaster-0.3.1.toml: each
deviation the suite records for encode/broadcaster 0.3.1 (``memory://``
backend), shown in plain broadcaster code, public API only, no adapter.

Usage: ``ground_truth.py [EXPECTATIONS.toml]`` (default:
``../broadcaster-0.3.1.toml``), with a Python that has ``broadcaster==0.3.1``
(``cargo xtask matrix`` makes one: target/matrix/broadcaster-0.3.1/venv).
One line per deviation, ``RULE: shown: ...`` or ``RULE: NOT SHOWN: ...``
(PROTOCOL.md, "Ground truth"); exit status 0 if every listed deviation is
shown, 1 if one is not, 2 if one has no check here.

What they share: ``publish`` only puts the message on the backend's queue;
a listener task, when it next runs, hands it to the subscriptions of its
channel that exist *then*, and keeps it in a local variable until the next
message it hands out.
"""

import asyncio
import gc
import sys
import tomllib
import weakref
from collections.abc import Awaitable, Callable
from pathlib import Path

try:
    from broadcaster import Broadcast
except ModuleNotFoundError:
    sys.exit("ground_truth.py needs broadcaster==0.3.1: run it with target/matrix/broadcaster-0.3.1/venv/bin/python3")


class Message:
    """A message object (the memory backend passes it as is), weakly
    referenceable so that what holds it can be told."""

    def __init__(self, n: int) -> None:
        self.n = n

    def __repr__(self) -> str:
        return f"message {self.n}"


async def get(subscriber: object, seconds: float = 0.5) -> str:
    """What one ``subscriber.get()`` gives within ``seconds``."""
    try:
        event = await asyncio.wait_for(subscriber.get(), seconds)  # type: ignore[attr-defined]
        return repr(event.message)
    except TimeoutError:
        return "waited"
    except Exception as e:  # noqa: BLE001 - broadcaster's Unsubscribed is not exported
        return f"raised {type(e).__name__}"


async def vis_1() -> tuple[bool, str]:
    """A subscription made after a publish (another subscriber already
    listening) receives the message published before it existed."""
    async with Broadcast("memory://") as bus:
        async with bus.subscribe("ch") as first:
            await bus.publish("ch", Message(1))
            async with bus.subscribe("ch") as late:
                got = await get(late)
            await get(first)
    return got == "message 1", f"a subscription made right after the publish got: {got}"


async def drop_1() -> tuple[bool, str]:
    """A message published when nobody subscribed to its channel is kept
    (on the backend's queue) and handed to a subscription made after it."""
    async with Broadcast("memory://") as bus:
        message = Message(1)
        held = weakref.ref(message)
        await bus.publish("ch", message)
        del message
        gc.collect()
        kept = held() is not None
        async with bus.subscribe("ch") as late:
            got = await get(late)
    shown = kept and got == "message 1"
    return shown, (
        f"a message published with no subscriber: {'kept' if kept else 'dropped'}; "
        f"a subscription made after it got: {got}"
    )


async def reclaim_1() -> tuple[bool, str]:
    """Once the only subscription has received a message and nothing else
    refers to it, the bus still holds it (the listener task's local
    variable, until it hands out the next message)."""
    async with Broadcast("memory://") as bus:
        async with bus.subscribe("ch") as subscriber:
            message = Message(1)
            held = weakref.ref(message)
            await bus.publish("ch", message)
            del message
            got = await get(subscriber)
            gc.collect()
            alive = held() is not None
    return alive and got == "message 1", (
        f"the only subscription got {got}; then the bus {'still holds it' if alive else 'let it go'}"
    )


async def close_1() -> tuple[bool, str]:
    """Leaving ``async with broadcast.subscribe(...)`` right after a
    publish (what the adapter's close of a scope does to each of its
    subscriptions) ends the subscriber's stream before the message
    published before it: that message is never delivered."""
    async with Broadcast("memory://") as bus:
        async with bus.subscribe("ch") as subscriber:
            await bus.publish("ch", Message(1))
        first = await get(subscriber)
        then = await get(subscriber, 0.2)
    # The stream ended (broadcaster's Unsubscribed), the message undelivered.
    shown = first == "raised Unsubscribed" and then != "message 1"
    return shown, (
        f"after leaving the subscription right after a publish, its first get: {first}; then: {then}"
    )


CHECKS: dict[str, Callable[[], Awaitable[tuple[bool, str]]]] = {
    "VIS-1": vis_1,
    "DROP-1": drop_1,
    "RECLAIM-1": reclaim_1,
    "CLOSE-1": close_1,
}

# Longer than any check's own waits: one that runs past it is not shown.
CHECK_SECONDS = 10.0


def main() -> int:
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "broadcaster-0.3.1.toml"
    rules = [d["rule"] for d in tomllib.loads(path.read_text()).get("deviation", [])]
    unchecked = [r for r in rules if r not in CHECKS]
    if unchecked:
        print(f"no ground truth here for: {', '.join(unchecked)}")
        return 2
    failed = 0
    for rule in rules:
        try:
            shown, what = asyncio.run(asyncio.wait_for(CHECKS[rule](), CHECK_SECONDS))
        except (Exception, asyncio.CancelledError) as e:  # noqa: BLE001 - reported as not shown
            shown, what = False, f"the check itself raised {type(e).__name__}: {e}"
        print(f"{rule}: {'shown' if shown else 'NOT SHOWN'}: {what}")
        failed += not shown
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
