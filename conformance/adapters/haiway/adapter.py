#!/usr/bin/env python3
"""The scopebus adapter for Haiway's event bus.

Speaks the scopebus adapter protocol (PROTOCOL.md at the repository's root)
on stdin/stdout and drives the real ``haiway`` package through its public API
only: ``ctx.scope`` (root, nested, ``isolated=True``), ``ctx.send``,
``ctx.subscribe`` and ``ctx.spawn``.

Determinism: one asyncio event loop per run (``reset``), and the loop runs only
while a request is being handled, never while waiting for the next line, so
the same sequence of requests always gives the same replies.

Capabilities: ``isolated``, ``cancel``, ``tasks``, ``step``, ``stats``,
``started`` (each worker reports ``task_started`` when it first runs),
``abandon``, ``processors`` (subscriptions read by tasks ``ctx.spawn``ed
into the scope's task group) and ``failures`` (a root scope's body raises
``BodyFailure``, and the scope is reported ``scope_failed`` with what it
raised; a subscriber task raises ``SubscriberFailure`` where it waits, and its
``finally`` lets go of the subscription and sends the cleanup's event),
``exited_scopes`` and ``share`` (one subscription iterated by two tasks:
``anext`` on the same object from both).
Retained events are measured exactly with finalizers on the event objects:
an event the adapter sent and no longer references is alive only if Haiway
still holds it. Events are counted against the bus they were really sent on:
the bus object Haiway keeps in the scope's context (a context variable, read
only to tell buses apart), or, if a Haiway release keeps it elsewhere, the bus
SPEC.md's scope rules say (root and isolated scopes own one, nested ones share
their parent's). So a Haiway whose layout differs from the spec's reports what
its buses really hold. Live subscriptions cannot be counted through
Haiway's public API, so they are reported as ``null`` (unknown).

Stdout carries only protocol lines; everything else goes to stderr.
"""

from __future__ import annotations

import asyncio
import contextvars
import gc
import json
import sys
import traceback
import weakref
from dataclasses import dataclass, field
from typing import Any

PROTOCOL = 1

# Protocol lines go to the real stdout; anything else printed (by us, by
# Haiway, by a logger) goes to stderr.
PROTOCOL_OUT = sys.stdout
sys.stdout = sys.stderr

import haiway  # noqa: E402
from haiway import State, ctx  # noqa: E402

try:  # haiway >= 0.41; 0.35 to 0.40 call it MissingContext
    from haiway import ContextMissing  # noqa: E402
except ImportError:  # pragma: no cover - older releases
    from haiway import MissingContext as ContextMissing  # type: ignore[no-redef]  # noqa: E402


# The context variables Haiway keeps a scope's bus in (0.41 and later; 0.30 to
# 0.40), read only to tell buses apart for `observe`.
BUS_VARIABLES = ("ContextEvents", "EventsContext")


# ----- the catalogue, as real Python types -----------------------------------


class Ping(State):
    """``alpha.Ping``: the base event."""

    id: int


Ping.__module__ = "scopebus.alpha"


class BetaPing(State):
    """``beta.Ping``: same short name as ``alpha.Ping``, another module."""

    id: int


BetaPing.__name__ = "Ping"
BetaPing.__qualname__ = "Ping"
BetaPing.__module__ = "scopebus.beta"


class DerivedPing(Ping):
    """``alpha.DerivedPing``: a subclass of ``alpha.Ping``."""


DerivedPing.__module__ = "scopebus.alpha"

# ``alpha.PingAlias``: another name for the very same class.
PingAlias = Ping


class Wrapped(State):
    """``Wrapped``: a type that holds an ``alpha.Ping``."""

    inner: Ping


class U8:
    """Marker type for ``Generic<u8>``."""


class U16:
    """Marker type for ``Generic<u16>``."""


class Generic[T](State):
    """``Generic<u8>`` / ``Generic<u16>``: two specializations of one generic."""

    id: int


GenericU8 = Generic[U8]
GenericU16 = Generic[U16]


class Login(State):
    """``Login``: an unrelated event."""

    id: int


CATALOGUE: dict[str, type] = {
    "alpha.Ping": Ping,
    "beta.Ping": BetaPing,
    "alpha.DerivedPing": DerivedPing,
    "Wrapped": Wrapped,
    "Generic<u8>": GenericU8,
    "Generic<u16>": GenericU16,
    "alpha.PingAlias": PingAlias,
    "Login": Login,
}

# The routing key of each name (an alias routes as its target), for stats.
ROUTE = {name: ("alpha.Ping" if name == "alpha.PingAlias" else name) for name in CATALOGUE}


def make_event(name: str, event_id: int) -> State:
    cls = CATALOGUE[name]
    if cls is Wrapped:
        return Wrapped(inner=Ping(id=event_id))
    return cls(id=event_id)


def event_id(event: Any) -> int:
    if isinstance(event, Wrapped):
        return event.inner.id
    return event.id


# ----- errors ------------------------------------------------------------------


class AdapterError(Exception):
    """A request the adapter cannot carry out, with a protocol error code."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def exception_name(e: BaseException) -> str:
    return f"{type(e).__module__}.{type(e).__qualname__}"


def error_of(e: BaseException) -> dict[str, Any]:
    """An op's error result for an exception Haiway raised."""
    if isinstance(e, ContextMissing):
        code = "context_missing"
    elif isinstance(e, RuntimeError) and "TaskGroup" in str(e) and (
        "finished" in str(e) or "shutting down" in str(e)
    ):
        # asyncio's task group of an exiting scope refuses new tasks.
        code = "closed"
    else:
        code = "internal"
    return {"code": code, "message": str(e), "exception": exception_name(e)}


class BodyFailure(Exception):
    """What a scope's body raises when the workload makes it fail (`fail_scope`)."""


class SubscriberFailure(Exception):
    """What a subscriber task raises when the workload makes it fail (`fail_subscriber`)."""


def is_own_error(raised: BaseException, failure: BaseException | None) -> bool:
    """Whether `raised` is the body's error itself, or it alone in an exception group."""
    if raised is failure:
        return True
    if isinstance(raised, BaseExceptionGroup) and len(raised.exceptions) == 1:
        return is_own_error(raised.exceptions[0], failure)
    return False


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
    # Set when the adapter itself cancels the subscriber task: any other
    # CancelledError came from the bus and is reported, not swallowed.
    cancelling: bool = False
    # Whether the task waits in a pull (`anext`) right now.
    pulling: bool = False
    # Set while `abandon` cancels the pending pull (as a timeout around it
    # would), until the task has given the pull up; then `given_up` is
    # resolved.
    abandoning: bool = False
    given_up: asyncio.Future | None = None
    # A processor: pulled by a task spawned into its scope's task group
    # (`spawn_processor`), with unlimited credit.
    processor: bool = False
    # The scope it was subscribed in (a failing subscriber's cleanup sends
    # there).
    scope: int | None = None
    # `fail_subscriber`: what its cleanup sends (`{}`: nothing), until the
    # cleanup has run.
    failing: dict[str, Any] | None = None
    # `subscribe_shared`: the second task pulling the same subscription,
    # which goes when this one is dropped or cancelled.
    puller: int | None = None


@dataclass
class WorkerRec:
    release: asyncio.Future
    task: asyncio.Task


class World:
    """Everything of one run: an event loop, scopes, subscriptions, workers."""

    def __init__(self) -> None:
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
        loop = self.loop
        for rec in self.subs.values():
            rec.cancelling = True  # teardown cancels them: not the bus's doing
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
        """Which bus `context` (of `scope`) sends on: Haiway's bus object if
        it can be found, else the spec's owner of `scope`'s bus."""
        for var, value in context.items():
            if var.name in BUS_VARIABLES:
                self.buses[id(value)] = value
                return ("bus", id(value))
        return ("scope", self.scopes[scope].owner)

    def track(self, bus: tuple[str, int], route: str, event: State) -> None:
        """Counts `event` as alive until it is garbage (finalizer)."""
        key = (bus, route)
        ids = self.alive.setdefault(key, set())
        eid = event_id(event)
        ids.add(eid)
        weakref.finalize(event, ids.discard, eid)

    def send(self, scope: int | None, name: str, eid: int) -> dict[str, Any] | None:
        """Sends from the current context; the error result, or None."""
        event = make_event(name, eid)
        try:
            ctx.send(event)
        except Exception as e:  # noqa: BLE001 - every failure is reported
            return error_of(e)
        if scope is not None:
            self.track(self.bus_key(contextvars.copy_context(), scope), ROUTE[name], event)
        return None

    def run(self, coroutine: Any) -> Any:
        return self.loop.run_until_complete(coroutine)

    def now(self, fn: Any, *args: Any, **kwargs: Any) -> Any:
        """Calls `fn` synchronously, as code running on the loop would.

        Haiway's API needs a running event loop, but running the loop to call
        it would let other tasks run first and scramble the order of what
        happens. So the loop is marked as running for this thread just for the
        duration of the call (what ``asyncio`` itself does inside a callback),
        and nothing else runs.
        """
        asyncio.events._set_running_loop(self.loop)  # noqa: SLF001
        try:
            return fn(*args, **kwargs)
        finally:
            asyncio.events._set_running_loop(None)  # noqa: SLF001

    # --- tasks ---

    async def scope_body(self, sid: int, ready: asyncio.Future) -> None:
        rec = self.scopes[sid]
        rec.closing = asyncio.Event()
        try:
            async with ctx.scope(f"scope{sid}", isolated=rec.isolated):
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
                    rec.iterator = None
                    self.observe({"kind": "ended", "sub": sub_id})
                    return
                except asyncio.CancelledError as e:
                    if rec.cancelling:
                        raise
                    if rec.abandoning:
                        # `abandon`: the pull is given up, as a timeout
                        # around it would (asyncio.timeout cancels the
                        # task, then uncancels it); the subscription is kept.
                        asyncio.current_task().uncancel()  # type: ignore[union-attr]
                        rec.abandoning = False
                        if rec.given_up is not None and not rec.given_up.done():
                            rec.given_up.set_result(None)
                        continue
                    if rec.processor and asyncio.current_task().cancelling():  # type: ignore[union-attr]
                        # A processor's task cancelled with its scope's task
                        # group: expected.
                        raise
                    # Nobody cancelled this task: the pull itself raised (in
                    # Haiway, the future every subscription of the type
                    # shares was cancelled by another subscriber's
                    # cancellation).
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
                rec.iterator = None
            raise
        except BaseException as e:  # noqa: BLE001
            self.faults.append(f"the subscriber of sub#{sub_id} failed: {exception_name(e)}: {e}")

    def fail_here(self, sub_id: int, rec: SubRec) -> None:
        """FAIL-2: the subscriber raises where it waits; as the error
        unwinds, the task lets go of its subscription (`finally`)."""
        try:
            raise SubscriberFailure(f"the subscriber of sub#{sub_id} failed")
        finally:
            rec.iterator = None

    def cleanup(self, sub_id: int, rec: SubRec) -> None:
        """A failed subscriber's cleanup, once its task has unwound: its
        event (if any) is sent from the subscription's scope; reported as
        `subscriber_failed` with the send's outcome. Sent from the op, with
        the event loop stopped, as a `send` op right after a
        `drop_subscription` would be: the suite compares the two."""
        rec.iterator = None
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
        rec.iterator = None
        error = {"code": "internal", "message": str(e) or type(e).__name__, "exception": exception_name(e)}
        self.observe({"kind": "failed", "sub": sub_id, "error": error})

    async def worker(self, task_id: int, scope: int, release: asyncio.Future) -> None:
        # Reported so that TASK-3 can tell a task that had started and was
        # waiting (it must not run once its group's cancellation was
        # requested) from one whose first step was already scheduled.
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

    # --- ops ---

    def apply(self, op: dict[str, Any]) -> dict[str, Any]:
        kind = op.get("op")
        handler = getattr(self, f"op_{kind}", None)
        if handler is None:
            raise AdapterError("malformed", f"unknown op `{kind}`")
        return handler(op)

    def op_open_scope(self, op: dict[str, Any]) -> dict[str, Any]:
        sid, parent, isolated = op["scope"], op.get("parent"), bool(op.get("isolated", False))
        if parent is None:
            owner = sid
        else:
            parent_rec = self.scope(parent)
            owner = sid if isolated else parent_rec.owner
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
                rec.task = self.now(self.scope(parent).context.run, ctx.spawn, body)  # type: ignore[union-attr]
            except Exception as e:  # noqa: BLE001
                body.close()
                del self.scopes[sid]
                return {"error": error_of(e)}

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
        return {"ok": "done"}

    def op_fail_scope(self, op: dict[str, Any]) -> dict[str, Any]:
        # The root scope's body raises `BodyFailure` when it next runs.
        rec = self.scope(op["scope"])
        if rec.parent is not None or rec.closing is None or rec.closing.is_set():
            raise AdapterError("malformed", f"scope#{op['scope']} is not an open root scope")
        rec.failing = True
        self.now(rec.closing.set)
        return {"ok": "done"}

    def op_subscribe(self, op: dict[str, Any]) -> dict[str, Any]:
        return self.subscribe_pulled(op.get("scope"), op["ty"], [op["sub"]])

    def op_subscribe_shared(self, op: dict[str, Any]) -> dict[str, Any]:
        # SHARE-1: one subscription (one `ctx.subscribe`), iterated by two
        # tasks at once, each with its own credit, as workers sharing a
        # queue would.
        sub_id, puller = op["sub"], op["puller"]
        result = self.subscribe_pulled(op["scope"], op["ty"], [sub_id, puller])
        if "ok" in result:
            self.subs[sub_id].puller = puller
        return result

    def subscribe_pulled(self, scope: int | None, name: str, pullers: list[int]) -> dict[str, Any]:
        """Subscribes to `name` in `scope` (its context, even once the scope
        has gone: EXIT-1), and starts one subscriber task per handle in
        `pullers`, each iterating that one subscription."""
        try:
            iterator = self.now(self.context_of(scope).run, ctx.subscribe, CATALOGUE[name])
        except AdapterError:
            raise
        except Exception as e:  # noqa: BLE001
            return {"error": error_of(e)}
        for task_id in pullers:
            rec = SubRec(iterator=iterator, scope=scope)
            self.subs[task_id] = rec
            rec.task = self.now(self.loop.create_task, self.subscriber(task_id), context=contextvars.Context())
        return {"ok": "done"}

    def op_spawn_processor(self, op: dict[str, Any]) -> dict[str, Any]:
        # The seed's background processor: the scope subscribes, then spawns
        # (`ctx.spawn`, into its task group) a task that reads the
        # subscription until it ends. (The seed's own example subscribes
        # inside the task; subscribing first fixes which events it sees,
        # VIS-1, whatever the task's first step.)
        sub_id, scope, name = op["sub"], op["scope"], op["ty"]
        context = self.scope(scope).context
        try:
            iterator = self.now(context.run, ctx.subscribe, CATALOGUE[name])  # type: ignore[union-attr]
        except Exception as e:  # noqa: BLE001
            return {"error": error_of(e)}
        rec = SubRec(iterator=iterator, credits=PROCESSOR_CREDIT, processor=True)
        self.subs[sub_id] = rec
        body = self.subscriber(sub_id)
        try:
            rec.task = self.now(context.run, ctx.spawn, body)  # type: ignore[union-attr]
        except Exception as e:  # noqa: BLE001
            body.close()
            rec.iterator = None
            del self.subs[sub_id]
            return {"error": error_of(e)}
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
        # A shared subscription's second task lets go with it, cancelled
        # at the same moment (before the loop runs either).
        ids = [sub_id] + [p for p in [self.sub(sub_id).puller] if p is not None]
        recs = [self.sub(i) for i in ids]
        tasks = set()
        for rec in recs:
            if rec.task is not None and not rec.task.done():
                rec.cancelling = True
                rec.task.cancel()
                tasks.add(rec.task)
        if tasks:
            # Until they have unwound, their frames still hold the
            # subscription.
            self.run(asyncio.wait(tasks))
        for i, rec in zip(ids, recs):
            rec.iterator = None
            del self.subs[i]

    def op_drop_subscription(self, op: dict[str, Any]) -> dict[str, Any]:
        # Haiway's subscriptions have no close method: letting go of one is
        # stopping its reader and dropping the last reference.
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
            # cancellation into its own error, and unwinds, letting go of
            # its subscription (`fail_here`). Complete when the reply is
            # sent.
            rec.cancelling = True
            task.cancel()
            self.run(asyncio.wait({task}))
            # A task cancelled before it first ran never reaches its
            # handler (asyncio throws into the unstarted coroutine).
            raised = None if task.cancelled() else task.exception()
            if raised is not None and not isinstance(raised, SubscriberFailure):
                self.faults.append(f"the subscriber of sub#{sub_id} did not fail as asked: {raised!r}")
        # Its task has unwound (or had not started, or had ended already:
        # its stream ended, or a pull raised); now its cleanup sends.
        self.now(self.cleanup, sub_id, rec)
        del self.subs[sub_id]
        return {"ok": "done"}

    def op_abandon(self, op: dict[str, Any]) -> dict[str, Any]:
        # The subscriber gives up the pull it waits in, as
        # `asyncio.wait_for(anext(subscription), timeout)` does when the
        # timeout fires, and keeps the subscription.
        # The subscriber keeps its credit and pulls again at once, as a loop
        # that retries after a timeout would.
        rec = self.sub(op["sub"])
        task = rec.task
        if task is None or task.done():
            # As a drop of an ended task: the loop does not run.
            return {"ok": "done"}
        # The event loop runs exactly as for a drop (PROTOCOL.md), so that
        # the two differ only in what they do to the subscription: a drop
        # cancels the task and runs `asyncio.wait` until it has unwound,
        # which it does at its first step; here `asyncio.wait` runs until
        # the task has given its pull up, likewise at its first step (or
        # ended), or, if it waits in no pull (no credit, or between two
        # pulls: the abandon changes nothing), on a future already done.
        # Either way the loop takes the same turns, and every other task as
        # many steps, as for the drop.
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
        body = self.worker(task_id, scope, release)
        try:
            task = self.now(self.scope(scope).context.run, ctx.spawn, body)  # type: ignore[union-attr]
        except AdapterError:
            body.close()
            raise
        except Exception as e:  # noqa: BLE001
            body.close()
            return {"error": error_of(e)}
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
        bus = self.bus_key(self.scope(op["scope"]).context, op["scope"])  # type: ignore[arg-type]
        gc.collect()
        stats = []
        for name in CATALOGUE:
            if ROUTE[name] != name:
                continue
            alive = self.alive.get((bus, name), set())
            stats.append(
                {
                    "type": name,
                    "subscriptions": None,
                    "retained": len(alive),
                    "retained_events": sorted(alive),
                }
            )
        return {"ok": {"stats": stats}}

    def step(self) -> bool:
        ready_before = bool(self.loop._ready)  # noqa: SLF001
        self.run(asyncio.sleep(0))
        return ready_before


SETTLE_LIMIT = 100_000

# A processor's credit: more than any run sends.
PROCESSOR_CREDIT = 1 << 40


# ----- the session ----------------------------------------------------------------


def reply(message: dict[str, Any]) -> None:
    PROTOCOL_OUT.write(json.dumps(message, separators=(",", ":")) + "\n")
    PROTOCOL_OUT.flush()


def handle(world: World, request: dict[str, Any]) -> tuple[World, dict[str, Any]]:
    rid = request.get("id", 0)
    kind = request.get("type")
    if kind == "hello":
        if request.get("protocol") != PROTOCOL:
            raise AdapterError(
                "unsupported_protocol",
                f"this adapter speaks protocol {PROTOCOL}, the runner {request.get('protocol')}",
            )
        unknown = [n for n in request.get("catalogue", []) if n not in CATALOGUE]
        if unknown:
            raise AdapterError("not_supported", f"unknown catalogue types: {unknown}")
        return world, {
            "id": rid,
            "type": "hello",
            "protocol": PROTOCOL,
            "name": "haiway",
            "language": "python",
            "version": haiway_version(),
            "capabilities": [
                "isolated",
                "cancel",
                "stats",
                "tasks",
                "step",
                "started",
                "abandon",
                "processors",
                "failures",
                # EXIT-1: every scope's captured context is kept after the
                # scope has gone, and ops naming it run through it.
                "exited_scopes",
                "share",
            ],
        }
    if kind == "reset":
        world.close()
        return World(), {"id": rid, "type": "ok", "observations": []}
    if kind == "op":
        result = world.apply(request["op"])
        check_faults(world)
        return world, {"id": rid, "type": "result", "result": result, "observations": world.take()}
    if kind == "step":
        ran = world.step()
        check_faults(world)
        return world, {"id": rid, "type": "stepped", "ran": ran, "observations": world.take()}
    if kind == "bye":
        return world, {"id": rid, "type": "bye"}
    raise AdapterError("malformed", f"unknown or unsupported request type `{kind}`")


def check_faults(world: World) -> None:
    if world.faults:
        faults, world.faults = world.faults, []
        raise AdapterError("internal", "; ".join(faults))


def haiway_version() -> str:
    try:
        from importlib.metadata import version

        return version("haiway")
    except Exception:  # noqa: BLE001
        return getattr(haiway, "__version__", "unknown")


def main() -> int:
    world = World()
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
            world, response = handle(world, request)
        except AdapterError as e:
            response = {"id": rid, "type": "error", "error": {"code": e.code, "message": e.message}}
        except Exception as e:  # noqa: BLE001 - reported, never swallowed
            traceback.print_exc(file=sys.stderr)
            response = {
                "id": rid,
                "type": "error",
                "error": {"code": "internal", "message": str(e), "exception": exception_name(e)},
            }
        reply(response)
        if response.get("type") == "bye":
            break
    world.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
