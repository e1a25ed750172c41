"""scopebus adapter kit for Python (asyncio).

An adapter judges one event bus through the scopebus adapter protocol
(PROTOCOL.md at the repository's root). This module owns the protocol: the
session on stdin/stdout, the handshake, request ids and error codes, one
asyncio event loop per run (``reset``), the observation queue, subscriber
tasks with credit, workers, processors, abandoned and failed pulls, shared
subscriptions, ``settle``/``step``, and ``observe`` (retained events counted
exactly with finalizers on the event objects). An adapter is only the
mapping onto its bus: a subclass of :class:`Binding` handed to :func:`main`.
See README.md beside this file.

Invariants the kit keeps, so an adapter need not:

- determinism: the loop runs only while a request is handled, never while
  the next line is awaited, and every op calls the bus with the loop marked
  running but nothing else run (:meth:`World.now`), so the same requests
  always give the same replies;
- every error the bus raises is reported, never swallowed: an op's error is
  its result (code from :meth:`Binding.error_code`), a pull's is a
  ``failed`` observation, anything else an ``internal`` error reply;
- stdout carries only protocol lines: ``print`` and logging go to stderr.
"""

from __future__ import annotations

import asyncio
import contextlib
import contextvars
import gc
import json
import os
import platform
import sys
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any, AsyncIterator, Callable

PROTOCOL = 1

# Determinism across processes: str hashes (set order) must not change from
# one adapter process to the next, so the kit runs its adapter with a fixed
# hash seed, re-executing it once if it was started without one.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.environ["PYTHONHASHSEED"] = "0"
    os.execv(sys.executable, [sys.executable, *sys.orig_argv[1:]])

# Protocol lines go to the real stdout; anything else printed (by the kit,
# the adapter, the bus, a logger) goes to stderr.
PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr

# A processor's credit: more than any run sends.
PROCESSOR_CREDIT = 1 << 40
SETTLE_LIMIT = 100_000


# ----- the catalogue --------------------------------------------------------


class Ping:
    """``alpha.Ping``: the base event. Every event carries its ``id``."""

    def __init__(self, id: int) -> None:  # noqa: A002 - the protocol's name
        self.id = id


Ping.__module__ = "scopebus.alpha"


class BetaPing:
    """``beta.Ping``: same short name as ``alpha.Ping``, another module."""

    def __init__(self, id: int) -> None:  # noqa: A002
        self.id = id


BetaPing.__name__ = BetaPing.__qualname__ = "Ping"
BetaPing.__module__ = "scopebus.beta"


class DerivedPing(Ping):
    """``alpha.DerivedPing``: a subclass of ``alpha.Ping``."""


class Wrapped:
    """``Wrapped``: holds an ``alpha.Ping`` (its ``inner``)."""

    def __init__(self, inner: Ping) -> None:
        self.inner = inner


class Generic[T]:
    """``Generic<u8>`` / ``Generic<u16>``: one generic class. Python erases
    type arguments at run time (``type(Generic[int]())`` is ``Generic``),
    so the closest thing to two instantiations is one subclass per type
    argument, as Haiway's ``State`` makes them."""

    def __init__(self, id: int) -> None:  # noqa: A002
        self.id = id


class U8:
    """Marker type for ``Generic<u8>``."""


class U16:
    """Marker type for ``Generic<u16>``."""


class GenericU8(Generic[U8]):
    """``Generic<u8>``."""


class GenericU16(Generic[U16]):
    """``Generic<u16>``."""


GenericU8.__name__ = GenericU8.__qualname__ = "Generic[U8]"
GenericU16.__name__ = GenericU16.__qualname__ = "Generic[U16]"


class Login:
    """``Login``: an unrelated event."""

    def __init__(self, id: int) -> None:  # noqa: A002
        self.id = id


def plain_catalogue() -> dict[str, Any]:
    """The catalogue as plain Python classes; ``alpha.PingAlias`` is the very
    class ``alpha.Ping`` (an alias). Buses that route by type can use it as
    it is; buses keyed by strings route by :func:`route` instead."""
    return {
        "alpha.Ping": Ping,
        "beta.Ping": BetaPing,
        "alpha.DerivedPing": DerivedPing,
        "Wrapped": Wrapped,
        "Generic<u8>": GenericU8,
        "Generic<u16>": GenericU16,
        "alpha.PingAlias": Ping,
        "Login": Login,
    }


def route(name: str) -> str:
    """The canonical wire name a catalogue name routes as: an alias routes as
    the type it names (``observe`` reports it there), every other name as
    itself."""
    return "alpha.Ping" if name == "alpha.PingAlias" else name


def event_id(event: Any) -> int:
    """The id an event carries (a ``Wrapped`` carries its inner ping's)."""
    inner = getattr(event, "inner", None)
    return inner.id if inner is not None else event.id


# ----- errors -----------------------------------------------------------------


class AdapterError(Exception):
    """A request the adapter cannot carry out, with a protocol error code
    (``unknown_handle``, ``malformed``, ``not_supported``,
    ``did_not_settle``, ``internal``)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


class BodyFailure(Exception):
    """What a scope's body raises when the workload makes it fail (`fail_scope`)."""


class SubscriberFailure(Exception):
    """What a subscriber task raises when the workload makes it fail (`fail_subscriber`)."""


def exception_name(e: BaseException) -> str:
    """An exception's qualified name, as ``exception`` fields give it."""
    return f"{type(e).__module__}.{type(e).__qualname__}"


def is_own_error(raised: BaseException, failure: BaseException | None) -> bool:
    """Whether `raised` is the body's error itself, or it alone in an exception group."""
    if raised is failure:
        return True
    if isinstance(raised, BaseExceptionGroup) and len(raised.exceptions) == 1:
        return is_own_error(raised.exceptions[0], failure)
    return False


# ----- the binding: what an adapter writes --------------------------------------


class Binding:
    """The mapping of the protocol onto one bus. Subclass it and override
    what your bus needs; every method is called on the event loop's thread,
    in the context of the scope the op names (``send``, ``subscribe``,
    ``spawn``) or the scope's parent (``scope``), with the loop marked
    running but not running (so call the bus synchronously; never await or
    run the loop yourself)."""

    #: The implementation's name (the handshake's ``name``).
    name = "unnamed"
    #: Its language.
    language = "python"
    #: What the adapter can do (PROTOCOL.md, "Capabilities").
    capabilities: list[str] = []
    #: What the adapter builds itself rather than the bus (PROTOCOL.md,
    #: "Emulated features"): ``types``, ``scopes``, ``close``, ``tasks``,
    #: ``context_missing``.
    emulates: list[str] = []

    def version(self) -> str:
        """The implementation's version (the handshake's ``version``)."""
        return "unknown"

    def runtime(self) -> str:
        """What it runs on (the handshake's ``runtime``)."""
        return f"{platform.python_implementation()} {platform.python_version()}"

    def event_types(self) -> dict[str, Any]:
        """Catalogue name -> the type its events are made of. Default:
        :func:`plain_catalogue`. The kit makes events as ``cls(id=n)``, and a
        ``Wrapped`` as ``cls(inner=<alpha.Ping>(id=n))``."""
        return plain_catalogue()

    def scope(self, sid: int, isolated: bool) -> Any:
        """An async context manager that enters a scope: the body of scope
        ``sid`` runs inside it. Called in the parent's context for a nested
        scope (in a task the kit spawned with :meth:`spawn`), in a fresh
        one for a root."""
        raise NotImplementedError

    def send(self, name: str, event: Any) -> None:
        """Sends ``event`` (of catalogue type ``name``) on the bus in reach.
        Raise what the bus raises."""
        raise NotImplementedError

    def subscribe(self, name: str) -> AsyncIterator[Any]:
        """Subscribes to catalogue type ``name`` now, and returns the
        subscription: an object ``anext`` pulls (``StopAsyncIteration``
        when it ends)."""
        raise NotImplementedError

    def spawn(self, coroutine_function: Callable[[], Any]) -> asyncio.Task:
        """Starts ``coroutine_function()`` as a task of the current scope's
        task group, and returns the task."""
        raise NotImplementedError

    def cancel_requested(self, context: contextvars.Context) -> None:
        """Called as the cancellation of a scope that owns a task group
        (a root or isolated scope, ``context`` its body's) is requested,
        by ``cancel_scope`` or a failing body, the scope's own first, then
        those it contains. Default: nothing (the library's scopes cancel
        their tasks themselves)."""

    def let_go(self, subscription: Any) -> None:
        """Called once the kit has let go of ``subscription`` (dropped,
        cancelled, failed, ended): close it here if your bus needs an
        explicit close. Default: nothing (the last reference goes)."""

    def error_code(self, error: BaseException) -> str:
        """The protocol code of an error the bus raised: ``context_missing``
        (no bus in reach), ``closed`` (the bus or task group no longer
        accepts it), else ``internal``."""
        return "internal"

    def bus_of(self, context: contextvars.Context) -> Any | None:
        """The bus object ``context`` reaches, to count retained events per
        bus; ``None``: the kit counts them against the bus SPEC.md's layout
        gives the scope (root and isolated scopes own one)."""
        return None

    def live_subscriptions(self, bus: Any, name: str) -> int | None:
        """Live subscriptions of ``name`` on ``bus`` (as :meth:`bus_of`
        gave it), or ``None`` if the bus cannot count them."""
        return None


# ----- emulated scopes, task groups and ContextMissing ----------------------


class Closed(Exception):
    """Raised by :class:`EmulatedScopes` for a send or subscribe on a bus
    its scope has closed (code ``closed``)."""


class NoBus(Exception):
    """Raised by :class:`EmulatedScopes` for a send or subscribe outside
    every scope (code ``context_missing``)."""


class OrderedTasks(dict):
    """A set of tasks that iterates in the order they were added (a dict's
    keys), with the `set` methods asyncio's TaskGroup uses."""

    def add(self, task: Any) -> None:
        self[task] = None

    def discard(self, task: Any) -> None:
        self.pop(task, None)


class OrderedTaskGroup(asyncio.TaskGroup):
    """asyncio's TaskGroup, cancelling its tasks in the order they were
    created: the stock one keeps them in a `set`, which iterates in address
    order, so the order of cancellations (and of what they report) would
    change from one process to the next."""

    def __init__(self) -> None:
        super().__init__()
        self._tasks = OrderedTasks()


@dataclass
class OwnedBus:
    """A bus :class:`EmulatedScopes` made for a root or isolated scope, its
    task group, and the subscriptions opened on it."""

    bus: Any
    group: asyncio.TaskGroup
    closed: bool = False
    # Held weakly (a subscription the kit let go of is garbage, not kept),
    # in the order they were opened: number -> subscription.
    subscriptions: weakref.WeakValueDictionary[int, Any] = field(default_factory=weakref.WeakValueDictionary)
    opened: int = 0


#: The bus the current scope reaches, set by :meth:`EmulatedScopes.scope`.
CURRENT_BUS: contextvars.ContextVar[OwnedBus] = contextvars.ContextVar("scopebus_kit_bus")


class EmulatedScopes(Binding):
    """A binding for a bus with no scopes, task groups or "no bus" error:
    the kit provides them as SPEC.md lays them out, and the handshake says
    so (``emulates``). Override :meth:`new_bus`, :meth:`publish`,
    :meth:`open` and, if subscriptions must be ended by hand when a bus
    closes, :meth:`close_bus`.

    - a root or isolated scope makes a bus (:meth:`new_bus`) and a task
      group (asyncio's, cancelling in creation order); a nested scope shares
      its parent's;
    - as the owner's body returns (or fails, or is cancelled), its bus is
      closed (:meth:`close_bus`) *before* the task group is waited for;
    - a send or subscribe on a closed bus raises :class:`Closed`; outside
      every scope, :class:`NoBus`; a spawn into a finished task group,
      asyncio's ``RuntimeError`` (``closed``).
    """

    emulates = ["scopes", "tasks", "context_missing"]

    def new_bus(self) -> Any:
        """A fresh bus of the library, for one root or isolated scope."""
        raise NotImplementedError

    def publish(self, bus: Any, name: str, event: Any) -> None:
        """Sends ``event`` of catalogue type ``name`` on ``bus``."""
        raise NotImplementedError

    def open(self, bus: Any, name: str) -> Any:
        """Subscribes to ``name`` on ``bus``; the subscription ``anext``
        pulls."""
        raise NotImplementedError

    def close_bus(self, owned: OwnedBus) -> None:
        """Closes ``owned.bus`` as its scope's body returns. Default:
        nothing beyond refusing later sends and subscribes; a library whose
        subscriptions do not end by themselves ends each of
        ``owned.subscriptions.values()`` (the live ones, in the order they
        were opened) here, and declares ``close``."""

    def reach(self) -> OwnedBus:
        owned = CURRENT_BUS.get(None)
        if owned is None:
            raise NoBus("no scope, so no bus, in reach")
        if owned.closed:
            raise Closed("the bus of this scope is closed")
        return owned

    @contextlib.asynccontextmanager
    async def scope(self, sid: int, isolated: bool) -> Any:
        parent = CURRENT_BUS.get(None)
        if parent is not None and not isolated:
            yield
            return
        owned = OwnedBus(bus=self.new_bus(), group=OrderedTaskGroup())
        CURRENT_BUS.set(owned)
        async with owned.group:
            try:
                yield
            finally:
                owned.closed = True
                self.close_bus(owned)

    def send(self, name: str, event: Any) -> None:
        self.publish(self.reach().bus, name, event)

    def subscribe(self, name: str) -> Any:
        owned = self.reach()
        subscription = self.open(owned.bus, name)
        owned.opened += 1
        owned.subscriptions[owned.opened] = subscription
        return subscription

    def spawn(self, coroutine_function: Callable[[], Any]) -> asyncio.Task:
        owned = CURRENT_BUS.get(None)
        if owned is None:
            raise NoBus("no scope, so no task group, in reach")
        return owned.group.create_task(coroutine_function())

    def cancel_requested(self, context: contextvars.Context) -> None:
        """Cancels every task of the group ``context`` owns at once, as
        the request is made (TASK-3: a task woken after it must not run).
        Left to asyncio, the cancellation would reach them hop by hop (the
        scope's task, then its task group), and a task woken meanwhile
        would run first: the emulation's fault, not the library's."""
        owned = context.get(CURRENT_BUS)
        if owned is not None:
            for task in list(owned.group._tasks):  # noqa: SLF001 - our OrderedTaskGroup's
                task.cancel()

    def error_code(self, error: BaseException) -> str:
        if isinstance(error, NoBus):
            return "context_missing"
        if isinstance(error, Closed):
            return "closed"
        text = str(error)
        if isinstance(error, RuntimeError) and "TaskGroup" in text:
            return "closed"
        return "internal"

    def bus_of(self, context: contextvars.Context) -> Any | None:
        owned = context.get(CURRENT_BUS)
        return None if owned is None else owned.bus


def run_now(coroutine: Any) -> Any:
    """Runs a coroutine that completes without waiting (an async ``publish``
    on an unbounded queue) synchronously, and returns its value: the kit
    calls the bus with its loop stopped, so nothing else may run meanwhile.

    Raises ``RuntimeError`` if the coroutine would wait (then it was a
    blocking call, which the suite would report as a hang of ``send``)."""
    try:
        coroutine.send(None)
    except StopIteration as done:
        return done.value
    coroutine.close()
    raise RuntimeError("the call waited; it cannot run while the event loop is stopped")


# ----- the world of one run ----------------------------------------------------


@dataclass
class ScopeRec:
    parent: int | None
    isolated: bool
    owner: int  # the scope whose bus this scope uses (SPEC.md SCOPE-1..3)
    task: asyncio.Task | None = None
    context: contextvars.Context | None = None
    closing: asyncio.Event | None = None
    # `fail_scope`: the body raises `failure` when it next runs.
    failing: bool = False
    failure: BaseException | None = None


@dataclass
class SubRec:
    iterator: Any
    task: asyncio.Task | None = None
    credits: int = 0
    credit: asyncio.Event = field(default_factory=asyncio.Event)
    # Set when the kit itself cancels the subscriber task: any other
    # CancelledError came from the bus and is reported, not swallowed.
    cancelling: bool = False
    # Whether the task waits in a pull (`anext`) right now.
    pulling: bool = False
    # Set while `abandon` cancels the pending pull (as a timeout around it
    # would), until the task has given the pull up; then `given_up` is
    # resolved.
    abandoning: bool = False
    given_up: asyncio.Future | None = None
    # A processor: pulled by a task spawned into its scope's task group.
    processor: bool = False
    # The scope it was subscribed in (a failing subscriber's cleanup sends there).
    scope: int | None = None
    # `fail_subscriber`: what its cleanup sends (`{}`: nothing), until it ran.
    failing: dict[str, Any] | None = None
    # `subscribe_shared`: the second task pulling the same subscription.
    puller: int | None = None


@dataclass
class WorkerRec:
    release: asyncio.Future
    task: asyncio.Task


class World:
    """Everything of one run: an event loop, scopes, subscriptions, workers,
    and the observations not yet reported."""

    def __init__(self, binding: Binding) -> None:
        self.binding = binding
        self.types = binding.event_types()
        self.loop = asyncio.new_event_loop()
        asyncio.set_event_loop(self.loop)
        self.scopes: dict[int, ScopeRec] = {}
        self.subs: dict[int, SubRec] = {}
        self.workers: dict[int, WorkerRec] = {}
        self.observations: list[dict[str, Any]] = []
        # (bus key, route) -> ids of sent events still alive
        self.alive: dict[tuple[tuple[str, int], str], set[int]] = {}
        # the bus objects keys refer to, kept so that their ids stay unique
        self.buses: dict[int, object] = {}
        # Failures inside tasks (not cancellations): reported on the next reply.
        self.faults: list[str] = []

    def observe(self, observation: dict[str, Any]) -> None:
        self.observations.append(observation)

    def take(self) -> list[dict[str, Any]]:
        taken, self.observations = self.observations, []
        return taken

    def close(self) -> None:
        """Ends the run: every task cancelled (not the bus's doing), the loop closed."""
        loop = self.loop
        for rec in self.subs.values():
            rec.cancelling = True
        try:
            tasks = [t for t in asyncio.all_tasks(loop) if not t.done()]
            for t in tasks:
                t.cancel()
            if tasks:
                loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))
        except Exception:  # noqa: BLE001 - teardown must not fail the session
            traceback.print_exc(file=sys.stderr)
        finally:
            loop.close()

    # --- helpers ---

    def make_event(self, name: str, eid: int) -> Any:
        cls = self.types[name]
        if name == "Wrapped":
            return cls(inner=self.types["alpha.Ping"](id=eid))
        return cls(id=eid)

    def error_of(self, e: BaseException) -> dict[str, Any]:
        """An op's error result for an exception the bus raised."""
        code = self.binding.error_code(e)
        return {"code": code, "message": str(e) or type(e).__name__, "exception": exception_name(e)}

    def scope(self, sid: int) -> ScopeRec:
        rec = self.scopes.get(sid)
        if rec is None or rec.context is None:
            raise AdapterError("unknown_handle", f"scope#{sid} is not a scope of this run")
        return rec

    def sub(self, sub_id: int) -> SubRec:
        rec = self.subs.get(sub_id)
        if rec is None:
            raise AdapterError("unknown_handle", f"sub#{sub_id} is not a subscription of this run")
        return rec

    def context_of(self, scope: int | None) -> contextvars.Context:
        """The context ops run in: the scope's, or an empty one (no scope)."""
        if scope is None:
            return contextvars.Context()
        return self.scope(scope).context  # type: ignore[return-value]

    def bus_key(self, context: contextvars.Context, scope: int) -> tuple[str, int]:
        """Which bus `context` (of `scope`) reaches: the binding's bus object
        if it can tell, else the spec's owner of `scope`'s bus."""
        bus = context.run(self.binding.bus_of, context)
        if bus is not None:
            self.buses[id(bus)] = bus
            return ("bus", id(bus))
        return ("scope", self.scopes[scope].owner)

    def track(self, bus: tuple[str, int], name: str, event: Any) -> None:
        """Counts `event` as alive until it is garbage (finalizer)."""
        ids = self.alive.setdefault((bus, route(name)), set())
        eid = event_id(event)
        ids.add(eid)
        weakref.finalize(event, ids.discard, eid)

    def send(self, scope: int | None, name: str, eid: int) -> dict[str, Any] | None:
        """Sends from the current context; the error result, or None."""
        event = self.make_event(name, eid)
        try:
            self.binding.send(name, event)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            return self.error_of(e)
        if scope is not None:
            self.track(self.bus_key(contextvars.copy_context(), scope), name, event)
        return None

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def now(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls `fn` synchronously, as code running on the loop would.

        Buses need a running event loop, but running the loop to call them
        would let other tasks run first and scramble the order of what
        happens. So the loop is marked as running for this thread just for
        the duration of the call (what ``asyncio`` itself does inside a
        callback), and nothing else runs.
        """
        if asyncio.events._get_running_loop() is self.loop:  # noqa: SLF001
            # Already on the loop (a task's own code): call it as it is.
            return fn(*args, **kwargs)
        asyncio.events._set_running_loop(self.loop)  # noqa: SLF001
        try:
            return fn(*args, **kwargs)
        finally:
            asyncio.events._set_running_loop(None)  # noqa: SLF001

    def let_go(self, rec: SubRec) -> None:
        """The kit lets go of `rec`'s subscription; the binding hears of it
        once the last task pulling it has let go."""
        iterator, rec.iterator = rec.iterator, None
        shared = any(r.iterator is iterator for r in self.subs.values() if r is not rec)
        if iterator is not None and not shared:
            try:
                self.now(self.binding.let_go, iterator)
            except Exception as e:  # noqa: BLE001
                self.faults.append(f"letting go of a subscription failed: {exception_name(e)}: {e}")

    # --- tasks ---

    async def scope_body(self, sid: int, ready: asyncio.Future) -> None:
        rec = self.scopes[sid]
        rec.closing = asyncio.Event()
        try:
            async with self.binding.scope(sid, rec.isolated):
                ready.set_result(contextvars.copy_context())
                await rec.closing.wait()
                if rec.failing:
                    rec.failure = BodyFailure(f"scope#{sid}'s body failed")
                    raise rec.failure
                self.observe({"kind": "scope_closing", "scope": sid})
            self.observe({"kind": "scope_exited", "scope": sid})
        except asyncio.CancelledError:
            self.observe({"kind": "scope_cancelled", "scope": sid})
            raise
        except BaseException as e:  # noqa: BLE001
            if rec.failing:
                # FAIL-1: what the scope raised, said as it is.
                self.observe({
                    "kind": "scope_failed",
                    "scope": sid,
                    "error": {"code": "internal", "message": str(e), "exception": exception_name(e)},
                    "own": is_own_error(e, rec.failure),
                })
                return
            if not ready.done():
                ready.set_exception(e)
            self.faults.append(f"scope#{sid} failed: {exception_name(e)}: {e}")

    async def subscriber(self, sub_id: int) -> None:
        rec = self.subs[sub_id]
        try:
            while True:
                while rec.credits == 0:
                    rec.credit.clear()
                    await rec.credit.wait()
                try:
                    rec.pulling = True
                    event = await anext(rec.iterator)
                except StopAsyncIteration:
                    self.let_go(rec)
                    self.observe({"kind": "ended", "sub": sub_id})
                    return
                except asyncio.CancelledError as e:
                    if rec.cancelling:
                        raise
                    if rec.abandoning:
                        self.gave_up(rec)
                        continue
                    if rec.processor and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        # A processor's task cancelled with its scope's task
                        # group: expected.
                        raise
                    # Nobody cancelled this task: the pull itself raised.
                    self.pull_failed(sub_id, rec, e)
                    return
                except Exception as e:  # noqa: BLE001 - reported, never swallowed
                    self.pull_failed(sub_id, rec, e)
                    return
                finally:
                    rec.pulling = False
                rec.credits -= 1
                self.observe({"kind": "received", "sub": sub_id, "event": event_id(event)})
                del event
                # Yield between events, like a processor awaiting its work.
                await asyncio.sleep(0)
        except asyncio.CancelledError:
            if rec.failing is not None:
                self.fail_here(sub_id, rec)
            if rec.processor:
                # Cancelled with its task group: the task lets go of its
                # subscription, as the user's `async for` frame would.
                self.let_go(rec)
            raise
        except BaseException as e:  # noqa: BLE001
            self.faults.append(f"the subscriber of sub#{sub_id} failed: {exception_name(e)}: {e}")

    def gave_up(self, rec: SubRec) -> None:
        """`abandon`: the pull is given up, as a timeout around it would
        (asyncio.timeout cancels the task, then uncancels it); the
        subscription is kept."""
        asyncio.current_task().uncancel()  # type: ignore[union-attr]
        rec.abandoning = False
        if rec.given_up is not None and not rec.given_up.done():
            rec.given_up.set_result(None)

    def fail_here(self, sub_id: int, rec: SubRec) -> None:
        """FAIL-2: the subscriber raises where it waits; as the error
        unwinds, the task lets go of its subscription (`finally`)."""
        try:
            raise SubscriberFailure(f"the subscriber of sub#{sub_id} failed")
        finally:
            self.let_go(rec)

    def cleanup(self, sub_id: int, rec: SubRec) -> None:
        """A failed subscriber's cleanup, once its task has unwound: its
        event (if any) is sent from the subscription's scope; reported as
        `subscriber_failed` with the send's outcome. Sent from the op, with
        the event loop stopped, as a `send` op right after a
        `drop_subscription` would be: the suite compares the two."""
        self.let_go(rec)
        spec = rec.failing
        observation: dict[str, Any] = {"kind": "subscriber_failed", "sub": sub_id}
        if spec:
            context = self.context_of(rec.scope)
            error = context.run(self.send, rec.scope, spec["ty"], spec["event"])
            observation["sent"] = {"event": spec["event"], "error": error}
        rec.failing = None
        self.observe(observation)

    def pull_failed(self, sub_id: int, rec: SubRec, e: BaseException) -> None:
        """Reports that `sub_id`'s pull raised `e`; its task then ends."""
        self.let_go(rec)
        error = {"code": "internal", "message": str(e) or type(e).__name__, "exception": exception_name(e)}
        self.observe({"kind": "failed", "sub": sub_id, "error": error})

    async def worker(self, task_id: int, scope: int, release: asyncio.Future) -> None:
        # Reported so that TASK-3 can tell a task that had started and was
        # waiting from one whose first step was already scheduled.
        self.observe({"kind": "task_started", "task": task_id})
        spec = await release
        sent = None
        if spec is not None:
            name, eid = spec
            error = self.send(scope, name, eid)
            sent = {"event": eid, "error": error}
        observation: dict[str, Any] = {"kind": "task_done", "task": task_id}
        if sent is not None:
            observation["sent"] = sent
        self.observe(observation)

    def spawn_in(self, context: contextvars.Context, body: Any) -> asyncio.Task:
        """Spawns `body` (a coroutine) into the task group of the scope
        whose context is `context`; the coroutine is closed if that fails."""
        try:
            return self.now(context.run, self.binding.spawn, lambda: body)
        except BaseException:
            body.close()
            raise

    # --- ops ---

    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        kind = op.get("op")
        handler = getattr(self, f"op_{kind}", None)
        if handler is None:
            raise AdapterError("malformed", f"unknown op `{kind}`")
        return handler(op)

    def op_open_scope(self, op: dict[str, Any]) -> dict[str, Any]:
        sid, parent, isolated = op["scope"], op.get("parent"), bool(op.get("isolated", False))
        owner = sid if parent is None or isolated else self.scope(parent).owner
        rec = ScopeRec(parent=parent, isolated=isolated, owner=owner)
        self.scopes[sid] = rec
        ready = self.loop.create_future()
        body = self.scope_body(sid, ready)
        if parent is None:
            # A root scope starts in a fresh context.
            rec.task = self.loop.create_task(body, context=contextvars.Context())
        else:
            # A nested scope is a task of its parent's task group.
            try:
                rec.task = self.spawn_in(self.scope(parent).context, body)  # type: ignore[arg-type]
            except AdapterError:
                raise
            except Exception as e:  # noqa: BLE001
                del self.scopes[sid]
                return {"error": self.error_of(e)}

        async def entered() -> None:
            await asyncio.wait({ready, rec.task}, return_when=asyncio.FIRST_COMPLETED)  # type: ignore[arg-type]

        self.run(entered())
        if not ready.done() or ready.exception() is not None:
            failure = ready.exception() if ready.done() else None
            del self.scopes[sid]
            raise AdapterError(
                "internal",
                f"scope#{sid} did not start: {failure!r}" if failure else f"scope#{sid} did not start",
            )
        rec.context = ready.result()
        return {"ok": "done"}

    def op_close_scope(self, op: dict[str, Any]) -> dict[str, Any]:
        rec = self.scope(op["scope"])
        if rec.closing is not None:
            self.now(rec.closing.set)
        return {"ok": "done"}

    def op_cancel_scope(self, op: dict[str, Any]) -> dict[str, Any]:
        rec = self.scope(op["scope"])
        if rec.task is not None:
            self.now(rec.task.cancel)
            self.cancel_groups(op["scope"])
        return {"ok": "done"}

    def cancel_groups(self, sid: int) -> None:
        """Tells the binding that the cancellation of scope ``sid`` was
        requested, for each task group that cancellation reaches: the
        scope's own if it owns one (a root or isolated scope; a nested one's
        cancellation ends its body only, TASK-1), then, in turn, the group
        of each owner whose body runs as a task of a group already reached
        (the kit spawns a nested scope's body into its parent's group)."""
        owners = [sid] if self.scopes[sid].owner == sid else []
        for owner in owners:  # grows while it is walked
            context = self.scopes[owner].context
            if context is not None:
                self.now(self.binding.cancel_requested, context)
            for other_id, other in self.scopes.items():
                in_group = other.parent is not None and self.scopes[other.parent].owner == owner
                if in_group and other.owner == other_id and other_id not in owners:
                    owners.append(other_id)

    def op_fail_scope(self, op: dict[str, Any]) -> dict[str, Any]:
        # The root scope's body raises `BodyFailure` when it next runs.
        rec = self.scope(op["scope"])
        if rec.parent is not None or rec.closing is None or rec.closing.is_set():
            raise AdapterError("malformed", f"scope#{op['scope']} is not an open root scope")
        rec.failing = True
        self.now(rec.closing.set)
        self.cancel_groups(op["scope"])
        return {"ok": "done"}

    def op_subscribe(self, op: dict[str, Any]) -> dict[str, Any]:
        return self.subscribe_pulled(op.get("scope"), op["ty"], [op["sub"]])

    def op_subscribe_shared(self, op: dict[str, Any]) -> dict[str, Any]:
        # SHARE-1: one subscription, pulled by two tasks at once, each with
        # its own credit, as workers sharing a queue would.
        sub_id, puller = op["sub"], op["puller"]
        result = self.subscribe_pulled(op["scope"], op["ty"], [sub_id, puller])
        if "ok" in result:
            self.subs[sub_id].puller = puller
        return result

    def subscribe_pulled(self, scope: int | None, name: str, pullers: list[int]) -> dict[str, Any]:
        """Subscribes to `name` in `scope` (its context, even once the scope
        has gone: EXIT-1), and starts one subscriber task per handle in
        `pullers`, each pulling that one subscription."""
        try:
            iterator = self.now(self.context_of(scope).run, self.binding.subscribe, name)
        except AdapterError:
            raise
        except Exception as e:  # noqa: BLE001
            return {"error": self.error_of(e)}
        for task_id in pullers:
            rec = SubRec(iterator=iterator, scope=scope)
            self.subs[task_id] = rec
            rec.task = self.now(self.loop.create_task, self.subscriber(task_id), context=contextvars.Context())
        return {"ok": "done"}

    def op_spawn_processor(self, op: dict[str, Any]) -> dict[str, Any]:
        # The seed's background processor: the scope subscribes, then spawns
        # into its task group a task that reads the subscription until it
        # ends. (Subscribing first fixes which events it sees, VIS-1,
        # whatever the task's first step.)
        sub_id, scope, name = op["sub"], op["scope"], op["ty"]
        context = self.scope(scope).context
        try:
            iterator = self.now(context.run, self.binding.subscribe, name)  # type: ignore[union-attr]
        except Exception as e:  # noqa: BLE001
            return {"error": self.error_of(e)}
        rec = SubRec(iterator=iterator, credits=PROCESSOR_CREDIT, processor=True)
        self.subs[sub_id] = rec
        try:
            rec.task = self.spawn_in(context, self.subscriber(sub_id))  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001
            self.let_go(rec)
            del self.subs[sub_id]
            return {"error": self.error_of(e)}
        return {"ok": "done"}

    def op_send(self, op: dict[str, Any]) -> dict[str, Any]:
        scope, name, eid = op.get("scope"), op["ty"], op["event"]
        error = self.now(self.context_of(scope).run, self.send, scope, name, eid)
        return {"ok": "done"} if error is None else {"error": error}

    def op_consume(self, op: dict[str, Any]) -> dict[str, Any]:
        rec = self.sub(op["sub"])
        rec.credits += int(op["k"])
        self.now(rec.credit.set)
        return {"ok": "done"}

    def end_subscriber(self, sub_id: int) -> None:
        """Cancels the subscriber task of `sub_id` (and a shared
        subscription's second task, at the same moment), runs the loop until
        they have unwound, and lets go of the subscription."""
        ids = [sub_id] + [p for p in [self.sub(sub_id).puller] if p is not None]
        recs = [self.sub(i) for i in ids]
        tasks = set()
        for rec in recs:
            if rec.task is not None and not rec.task.done():
                rec.cancelling = True
                rec.task.cancel()
                tasks.add(rec.task)
        if tasks:
            # Until they have unwound, their frames still hold the subscription.
            self.run(asyncio.wait(tasks))
        for i, rec in zip(ids, recs):
            self.let_go(rec)
            del self.subs[i]

    def op_drop_subscription(self, op: dict[str, Any]) -> dict[str, Any]:
        # Letting go of a subscription is stopping its reader and dropping
        # the last reference (and the binding's `let_go`).
        self.end_subscriber(op["sub"])
        return {"ok": "done"}

    def op_cancel_subscriber(self, op: dict[str, Any]) -> dict[str, Any]:
        self.end_subscriber(op["sub"])
        return {"ok": "done"}

    def op_fail_subscriber(self, op: dict[str, Any]) -> dict[str, Any]:
        sub_id = op["sub"]
        rec = self.sub(sub_id)
        if rec.processor:
            raise AdapterError("malformed", f"sub#{sub_id} is a processor")
        rec.failing = op.get("send") or {}
        task = rec.task
        if task is not None and not task.done():
            # The task raises where it waits: cancelled, it turns the
            # cancellation into its own error and unwinds, letting go of
            # its subscription (`fail_here`). Complete when the reply is sent.
            rec.cancelling = True
            task.cancel()
            self.run(asyncio.wait({task}))
            # A task cancelled before it first ran never reaches its
            # handler (asyncio throws into the unstarted coroutine).
            raised = None if task.cancelled() else task.exception()
            if raised is not None and not isinstance(raised, SubscriberFailure):
                self.faults.append(f"the subscriber of sub#{sub_id} did not fail as asked: {raised!r}")
        # Its task has unwound (or had not started, or had ended already);
        # now its cleanup sends.
        self.now(self.cleanup, sub_id, rec)
        del self.subs[sub_id]
        return {"ok": "done"}

    def op_abandon(self, op: dict[str, Any]) -> dict[str, Any]:
        # The subscriber gives up the pull it waits in, as
        # `asyncio.wait_for(anext(subscription), timeout)` does when the
        # timeout fires, keeps the subscription and its credit, and pulls
        # again at once, as a loop that retries after a timeout would.
        rec = self.sub(op["sub"])
        task = rec.task
        if task is None or task.done():
            # As a drop of an ended task: the loop does not run.
            return {"ok": "done"}
        # The loop runs exactly as for a drop (PROTOCOL.md), so that the two
        # differ only in what they do to the subscription: a drop runs
        # `asyncio.wait` until the cancelled task has unwound, at its first
        # step; here until the task has given its pull up, likewise at its
        # first step (or ended), or, if it waits in no pull, on a future
        # already done. Every other task gets as many steps either way.
        given_up = self.loop.create_future()
        if rec.pulling and not rec.abandoning:
            rec.abandoning = True
            rec.given_up = given_up
            task.cancel()
            self.run(asyncio.wait({given_up, task}, return_when=asyncio.FIRST_COMPLETED))
            rec.given_up = None
        else:
            given_up.set_result(None)
            self.run(asyncio.wait({given_up}))
        return {"ok": "done"}

    def op_spawn(self, op: dict[str, Any]) -> dict[str, Any]:
        task_id, scope = op["task"], op["scope"]
        release = self.loop.create_future()
        context = self.scope(scope).context
        try:
            task = self.spawn_in(context, self.worker(task_id, scope, release))  # type: ignore[arg-type]
        except Exception as e:  # noqa: BLE001
            return {"error": self.error_of(e)}
        self.workers[task_id] = WorkerRec(release=release, task=task)
        return {"ok": "done"}

    def op_release(self, op: dict[str, Any]) -> dict[str, Any]:
        rec = self.workers.get(op["task"])
        if rec is None:
            raise AdapterError("unknown_handle", f"task#{op['task']} is not a task of this run")
        send = op.get("send")
        if not rec.release.done():
            self.now(rec.release.set_result, None if send is None else (send["ty"], send["event"]))
        return {"ok": "done"}

    def op_settle(self, op: dict[str, Any]) -> dict[str, Any]:
        loop = self.loop

        async def settle() -> bool:
            for _ in range(SETTLE_LIMIT):
                await asyncio.sleep(0)
                # Quiescent: nothing but us was ready to run.
                if not loop._ready:  # noqa: SLF001 - CPython's ready queue
                    return True
            return False

        if not self.run(settle()):
            raise AdapterError("did_not_settle", f"still runnable after {SETTLE_LIMIT} loop iterations")
        return {"ok": "done"}

    def op_observe(self, op: dict[str, Any]) -> dict[str, Any]:
        context = self.scope(op["scope"]).context
        bus = self.bus_key(context, op["scope"])  # type: ignore[arg-type]
        gc.collect()
        stats = []
        for name in self.types:
            if route(name) != name:
                continue
            alive = self.alive.get((bus, name), set())
            live = None
            if bus[0] == "bus":
                live = self.now(context.run, self.binding.live_subscriptions, self.buses[bus[1]], name)  # type: ignore[union-attr]
            stats.append({"type": name, "subscriptions": live, "retained": len(alive), "retained_events": sorted(alive)})
        return {"ok": {"stats": stats}}

    def step(self) -> bool:
        ready_before = bool(self.loop._ready)  # noqa: SLF001
        self.run(asyncio.sleep(0))
        return ready_before


# ----- the session ----------------------------------------------------------------


def reply(message: dict[str, Any]) -> None:
    PROTOCOL_OUT.write(json.dumps(message, separators=(",", ":")) + "\n")
    PROTOCOL_OUT.flush()


def hello(binding: Binding, world: World, request: dict[str, Any]) -> dict[str, Any]:
    if request.get("protocol") != PROTOCOL:
        raise AdapterError(
            "unsupported_protocol",
            f"this adapter speaks protocol {PROTOCOL}, the runner {request.get('protocol')}",
        )
    unknown = [n for n in request.get("catalogue", []) if n not in world.types]
    if unknown:
        raise AdapterError("not_supported", f"unknown catalogue types: {unknown}")
    answer = {
        "type": "hello",
        "protocol": PROTOCOL,
        "name": binding.name,
        "language": binding.language,
        "version": binding.version(),
        "runtime": binding.runtime(),
        "capabilities": list(binding.capabilities),
    }
    if binding.emulates:
        answer["emulates"] = list(binding.emulates)
    return answer


def handle(binding: Binding, world: World, request: dict[str, Any]) -> tuple[World, dict[str, Any]]:
    """Answers one request; the world the next request runs in (a new one
    after `reset`) and the reply (without its id)."""
    kind = request.get("type")
    if kind == "hello":
        return world, hello(binding, world, request)
    if kind == "reset":
        world.close()
        # The cyclic garbage collector runs only here and in `observe`
        # (`main` turns its automatic runs off): when it would run
        # otherwise depends on how much was allocated, which differs with
        # what this process served before (request ids grow), so a seed
        # would not replay the same on a fresh instance (an implementation
        # holding state in weak references, as Haiway 0.42's per-type
        # futures are, or a subscription in a reference cycle, changes with
        # it). Within a run, garbage in cycles waits for the next `observe`:
        # a collector that has not run yet, which any program may meet.
        gc.collect()
        return World(binding), {"type": "ok", "observations": []}
    if kind == "op":
        result = world.apply(request["op"])
        check_faults(world)
        return world, {"type": "result", "result": result, "observations": world.take()}
    if kind == "step":
        ran = world.step()
        check_faults(world)
        return world, {"type": "stepped", "ran": ran, "observations": world.take()}
    if kind == "bye":
        return world, {"type": "bye"}
    raise AdapterError("malformed", f"unknown or unsupported request type `{kind}`")


def check_faults(world: World) -> None:
    if world.faults:
        faults, world.faults = world.faults, []
        raise AdapterError("internal", "; ".join(faults))


def main(binding: Binding) -> int:
    """Serves the protocol on stdin/stdout for `binding` until `bye` or the
    end of input; returns the exit status (0)."""
    gc.disable()  # collected at `reset` and `observe` only (see `handle`)
    gc.collect()
    world = World(binding)
    for line in sys.stdin:
        if not line.strip():
            continue
        try:
            request = json.loads(line)
            if not isinstance(request, dict):
                raise AdapterError("malformed", "a request must be a JSON object")
        except (json.JSONDecodeError, AdapterError) as e:
            reply({"id": 0, "type": "error", "error": {"code": "malformed", "message": str(e)}})
            continue
        rid = request.get("id", 0)
        try:
            world, response = handle(binding, world, request)
        except AdapterError as e:
            response = {"type": "error", "error": {"code": e.code, "message": e.message}}
        except Exception as e:  # noqa: BLE001 - reported, never swallowed
            traceback.print_exc(file=sys.stderr)
            response = {"type": "error", "error": {"code": "internal", "message": str(e), "exception": exception_name(e)}}
        reply({"id": rid, **response})
        if response.get("type") == "bye":
            break
    world.close()
    return 0
