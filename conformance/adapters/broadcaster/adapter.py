#!/usr/bin/env python3
"""The scopebus adapter for encode/broadcaster's in-memory bus, on the Python kit.

broadcaster (PyPI ``broadcaster``) is an asyncio publish/subscribe library
whose subscriptions are pulled (``await subscriber.get()``, ``async for``).
Its ``memory://`` backend runs in-process: ``publish`` puts the message on
one queue, and a listener task hands it to every subscription of the channel
that exists when it runs.

It has no scopes, task groups or "no bus" error, and routes by channel
name, so the kit emulates those (:class:`scopebus_kit.EmulatedScopes`): a
``Broadcast("memory://")`` per root or isolated scope, connected as the
scope starts; each catalogue type is a channel named by its canonical wire
name (an alias is the channel of the type it names). Closing a scope's bus
is what a user's ``async with`` blocks do: every open subscription's
``subscribe`` context is exited (a subscriber then reads what its queue
holds, then ends), and the ``Broadcast`` is disconnected.
"""

from __future__ import annotations

import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kits", "python"))

import scopebus_kit as kit  # noqa: E402  (the kit redirects stdout first)

import broadcaster  # noqa: E402
from broadcaster import Broadcast  # noqa: E402


class Subscription:
    """One ``broadcast.subscribe(channel)``, entered, pulled with ``anext``:
    the message of each event, until the subscription is unsubscribed."""

    def __init__(self, bus: Broadcast, channel: str) -> None:
        self.manager = bus.subscribe(channel)
        self.subscriber = kit.run_now(self.manager.__aenter__())
        self.open = True

    def __aiter__(self) -> Subscription:
        return self

    async def __anext__(self) -> Any:
        try:
            event = await self.subscriber.get()
        except Exception as e:
            if type(e).__name__ == "Unsubscribed":  # not exported by the package
                raise StopAsyncIteration from None
            raise
        return event.message

    def close(self) -> None:
        if self.open:
            self.open = False
            kit.run_now(self.manager.__aexit__(None, None, None))


class OrderedQueues(dict):
    """A set of queues that iterates in the order they were added (a
    dict's keys), with the `set` methods broadcaster uses on it."""

    def add(self, queue: Any) -> None:
        self[queue] = None

    def remove(self, queue: Any) -> None:
        del self[queue]


class Channels(dict):
    """``Broadcast._subscribers`` (channel -> the set of its subscriptions'
    queues), each set kept as :class:`OrderedQueues`. broadcaster's
    listener hands a message to the queues of its channel in the set's
    order, which for a plain `set` of queues is their addresses' order, so
    which subscriber wakes first would change from one process to the
    next; in the order they subscribed, a seed replays the same (the only
    shim: the listener still hands every message to every queue, in one
    of the orders it could have used)."""

    def __setitem__(self, channel: str, queues: Any) -> None:
        ordered = OrderedQueues()
        for queue in queues:
            ordered.add(queue)
        super().__setitem__(channel, ordered)


class BroadcasterBinding(kit.EmulatedScopes):
    name = "broadcaster"
    capabilities = [
        "isolated",
        "cancel",
        "stats",
        "tasks",
        "step",
        "started",
        "abandon",
        "processors",
        "failures",
        "exited_scopes",
        "share",
    ]
    emulates = ["types", "scopes", "close", "tasks", "context_missing"]

    def version(self) -> str:
        from importlib.metadata import version

        return version("broadcaster")

    def new_bus(self) -> Broadcast:
        bus = Broadcast("memory://")
        bus._subscribers = Channels()  # noqa: SLF001 - see Channels
        kit.run_now(bus.connect())
        return bus

    def publish(self, bus: Broadcast, name: str, event: Any) -> None:
        kit.run_now(bus.publish(kit.route(name), event))

    def open(self, bus: Broadcast, name: str) -> Subscription:
        return Subscription(bus, kit.route(name))

    def let_go(self, subscription: Subscription) -> None:
        subscription.close()

    def close_bus(self, owned: kit.OwnedBus) -> None:
        for subscription in list(owned.subscriptions.values()):
            subscription.close()
        kit.run_now(owned.bus.disconnect())


if __name__ == "__main__":
    assert broadcaster  # imported for its version's sake too
    sys.exit(kit.main(BroadcasterBinding()))
