#!/usr/bin/env python3
"""The scopebus adapter for Haiway's event bus, on the Python adapter kit.

Drives the real ``haiway`` package through its public API only:
``ctx.scope`` (root, nested, ``isolated=True``), ``ctx.send``,
``ctx.subscribe`` and ``ctx.spawn``. The kit
(``conformance/kits/python/scopebus_kit.py``) owns the protocol, the event
loop, subscriber tasks and the observations; this file is the mapping.

Works on every Haiway release from 0.30.0 to 0.48.0 with two shims, both
for API differences only (never for behaviour): the error for "no context"
is ``MissingContext`` before 0.42 and ``ContextMissing`` from 0.42 on; and
``ctx.spawn`` is given a coroutine *function* (0.30.0 and 0.30.1 take only
that; later releases take both).

Retained events are counted exactly by the kit's finalizers, against the bus
object Haiway keeps in the scope's context (a context variable, read only to
tell buses apart: ``EventsContext`` up to 0.40, ``ContextEvents`` from
0.42), so a Haiway whose layout differs from the spec's reports what its
buses really hold. Live subscriptions cannot be counted through Haiway's
public API: they are reported as unknown.
"""

from __future__ import annotations

import contextvars
import os
import sys
from typing import Any

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "kits", "python"))

import scopebus_kit as kit  # noqa: E402  (the kit redirects stdout first)

import haiway  # noqa: E402
from haiway import State, ctx  # noqa: E402

try:  # haiway >= 0.42; 0.30 to 0.40 call it MissingContext
    from haiway import ContextMissing  # noqa: E402
except ImportError:  # pragma: no cover - older releases
    from haiway import MissingContext as ContextMissing  # type: ignore[no-redef,attr-defined]  # noqa: E402

# The context variables Haiway keeps a scope's bus in (0.42 and later; 0.30
# to 0.40), read only to tell buses apart for `observe`.
BUS_VARIABLES = ("ContextEvents", "EventsContext")


# ----- the catalogue, as Haiway State types ------------------------------------


class Ping(State):
    """``alpha.Ping``: the base event."""

    id: int


Ping.__module__ = "scopebus.alpha"


class BetaPing(State):
    """``beta.Ping``: same short name as ``alpha.Ping``, another module."""

    id: int


BetaPing.__name__ = BetaPing.__qualname__ = "Ping"
BetaPing.__module__ = "scopebus.beta"


class DerivedPing(Ping):
    """``alpha.DerivedPing``: a subclass of ``alpha.Ping``."""


DerivedPing.__module__ = "scopebus.alpha"


class Wrapped(State):
    """``Wrapped``: a type that holds an ``alpha.Ping``."""

    inner: Ping


class Generic[T](State):
    """``Generic<u8>`` / ``Generic<u16>``: State makes each specialization a
    class of its own."""

    id: int


class Login(State):
    """``Login``: an unrelated event."""

    id: int


CATALOGUE: dict[str, Any] = {
    "alpha.Ping": Ping,
    "beta.Ping": BetaPing,
    "alpha.DerivedPing": DerivedPing,
    "Wrapped": Wrapped,
    "Generic<u8>": Generic[kit.U8],
    "Generic<u16>": Generic[kit.U16],
    "alpha.PingAlias": Ping,  # an alias: the very same class
    "Login": Login,
}


class HaiwayBinding(kit.Binding):
    name = "haiway"
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
        # EXIT-1: the kit keeps every scope's captured context after the
        # scope has gone, and ops naming it run through it.
        "exited_scopes",
        "share",
    ]

    def version(self) -> str:
        try:
            from importlib.metadata import version

            return version("haiway")
        except Exception:  # noqa: BLE001
            return getattr(haiway, "__version__", "unknown")

    def event_types(self) -> dict[str, Any]:
        return CATALOGUE

    def scope(self, sid: int, isolated: bool) -> Any:
        return ctx.scope(f"scope{sid}", isolated=isolated)

    def send(self, name: str, event: Any) -> None:
        ctx.send(event)

    def subscribe(self, name: str) -> Any:
        return ctx.subscribe(CATALOGUE[name])

    def spawn(self, coroutine_function: Any) -> Any:
        return ctx.spawn(coroutine_function)

    def error_code(self, error: BaseException) -> str:
        if isinstance(error, ContextMissing):
            return "context_missing"
        text = str(error)
        if isinstance(error, RuntimeError) and "TaskGroup" in text and ("finished" in text or "shutting down" in text):
            # asyncio's task group of an exiting scope refuses new tasks.
            return "closed"
        return "internal"

    def bus_of(self, context: contextvars.Context) -> Any | None:
        for var, value in context.items():
            if var.name in BUS_VARIABLES:
                return value
        return None


if __name__ == "__main__":
    sys.exit(kit.main(HaiwayBinding()))
