#!/usr/bin/env python3
"""Ground truth for conformance/expectations/haiway.toml (Haiway 0.48.0) and
haiway-<version>.toml (the other releases `cargo xtask matrix` judges):
each deviation the suite records for Haiway, shown in plain Haiway code,
public API only, no adapter. One check per rule; the expectations file
says which rules the installed release is recorded to break.

Run it with the suite's own environment (made by
``cargo xtask conformance --impl haiway``); CI runs it:

    target/haiway-venv/bin/python3 conformance/expectations/haiway/ground_truth.py

Usage: ``ground_truth.py [EXPECTATIONS.toml]`` (default: ``../haiway.toml``).
One line per deviation, ``RULE: shown: ...`` or ``RULE: NOT SHOWN: ...``
(the convention of PROTOCOL.md, "Ground truth"). It exits
0 if every deviation the expectations file lists is shown here, 1 if one is
not (the file is then out of date: the suite's run says the same, as an
unexpected pass), 2 if a listed deviation has no check here.
"""

import asyncio
import sys
from collections.abc import Awaitable, Callable
import tomllib
from importlib.metadata import version
from pathlib import Path

try:
    from haiway import State, ctx
except ModuleNotFoundError:
    sys.exit(
        "ground_truth.py needs Haiway: run it with the Python that "
        "`cargo xtask conformance --impl haiway` set up, "
        "${CARGO_TARGET_DIR:-target}/haiway-venv/bin/python3"
    )


class Ping(State):
    id: int


async def cancel_2() -> tuple[bool, str]:
    """A receive abandoned by a timeout (the subscription kept) breaks its
    type's bus: the subscription's own next pull raises CancelledError, so
    does a sibling's, and the next send raises AssertionError. Cancelling a
    subscriber task while it waits does the same: it too abandons the
    receive (one root cause, CANCEL-2)."""
    async with ctx.scope("root"):
        subscription = ctx.subscribe(Ping)
        sibling = ctx.subscribe(Ping)
        try:
            await asyncio.wait_for(anext(subscription), 0.01)
            return False, "a receive completed though nothing was sent"
        except TimeoutError:
            pass  # the receive was abandoned; the subscription is kept
        seen: list[str] = []
        try:
            ctx.send(Ping(id=1))
            seen.append("the next ctx.send succeeded")
        except AssertionError:
            seen.append("the next ctx.send raised AssertionError")
        for name, sub in (("its own next pull", subscription), ("a sibling's pull", sibling)):
            try:
                event = await asyncio.wait_for(anext(sub), 0.5)
                seen.append(f"{name} received event {event.id}")
            except asyncio.CancelledError:
                seen.append(f"{name} raised CancelledError")
            except TimeoutError:
                seen.append(f"{name} waited")
    shown = seen == [
        "the next ctx.send raised AssertionError",
        "its own next pull raised CancelledError",
        "a sibling's pull raised CancelledError",
    ]
    return shown, "after a timeout abandoned a pending receive: " + "; ".join(seen)


class Pong(State):
    id: int


async def pull(subscription: object, seconds: float) -> str:
    """What one pull of `subscription` does within `seconds`: the event's
    id, "ended", "waited", or "raised NAME"."""
    try:
        event = await asyncio.wait_for(anext(subscription), seconds)  # type: ignore[call-overload]
        return f"event {event.id}"
    except StopAsyncIteration:
        return "ended"
    except TimeoutError:
        return "waited"
    except asyncio.CancelledError:
        return "raised CancelledError"
    except Exception as e:  # noqa: BLE001 - what it raised is the finding
        return f"raised {type(e).__name__}"


async def once_closed(act: Callable[[list[str]], Awaitable[None]], hold: bool = False) -> list[str]:
    """Runs `act(seen)` where the bus of an exited scope is closed, and
    returns what it saw. `act` runs in an asyncio task created inside the
    scope (so its context reaches the scope's bus) with asyncio.create_task,
    outside the scope's task group (so the scope does not wait for it); it
    starts once a subscription of another type, made in the scope, has
    ended when pulled (or raised: Haiway 0.36 to 0.40 close a bus by
    cancelling its pending receives), which is what shows the bus closed.
    If that subscription never ends, the bus never closed (Haiway 0.30 to
    0.35): `act` does not run, and `seen` says so. With `hold`, a Ping
    subscription made in the scope is held until `act` is done."""
    seen: list[str] = []

    async def late() -> None:
        outcome = await pull(probe, 2.0)
        if outcome == "waited" or outcome.startswith("event"):
            seen.append(f"the bus never closed (a subscription made before the exit: {outcome})")
            return
        await act(seen)

    async with ctx.scope("scope"):
        probe = ctx.subscribe(Pong)
        held = ctx.subscribe(Ping) if hold else None
        late_task = asyncio.create_task(late())
    await late_task
    del held
    return seen


async def close_2() -> tuple[bool, str]:
    """A send on a closed bus, while a subscription of its type made
    before the close is still held, raises AssertionError instead of
    returning (the close finished, or cancelled, the type's shared future,
    and a send asserts that it is not)."""

    async def send(seen: list[str]) -> None:
        try:
            ctx.send(Ping(id=1))
            seen.append("the send returned")
        except Exception as e:  # noqa: BLE001 - what it raised is the finding
            seen.append(f"the send raised {type(e).__name__}")

    seen = await once_closed(send, hold=True)
    shown = seen == ["the send raised AssertionError"]
    return shown, "a send after the scope exited, a subscription from before held: " + "; ".join(seen)


async def close_3() -> tuple[bool, str]:
    """A subscription made on a closed bus (of a type nobody subscribed
    to before the close) is live: it receives what is sent after, and
    pulled again, waits instead of ending."""

    async def subscribe(seen: list[str]) -> None:
        subscription = ctx.subscribe(Ping)
        ctx.send(Ping(id=1))
        seen.append(f"first pull: {await pull(subscription, 1.0)}")
        seen.append(f"second pull: {await pull(subscription, 0.5)}")

    seen = await once_closed(subscribe)
    shown = "second pull: waited" in seen or "first pull: event 1" in seen
    return shown, "a subscription made after the scope exited: " + "; ".join(seen)


async def waiting_pull(how: str) -> str:
    """What the pull of a subscription that waits (in an asyncio task
    outside the scope's task group) does when its root scope's body
    `returns`, `fails` (raises) or `is cancelled`."""
    outcome: list[str] = []

    async def reader(subscription: object) -> None:
        outcome.append(await pull(subscription, 2.0))

    async def body() -> None:
        async with ctx.scope("scope"):
            reading = asyncio.create_task(reader(ctx.subscribe(Ping)))
            await asyncio.sleep(0)  # it waits in its pull
            if how == "fails":
                raise ValueError("the body fails")
            if how == "is cancelled":
                await asyncio.Event().wait()
        del reading

    running = asyncio.create_task(body())
    await asyncio.sleep(0.05)
    if how == "is cancelled":
        running.cancel()
    try:
        await running
    except (ValueError, BaseExceptionGroup, asyncio.CancelledError):
        pass
    while not outcome:
        await asyncio.sleep(0.05)
    return outcome[0]


async def close_1() -> tuple[bool, str]:
    """A subscription that has received everything and waits when its
    scope exits (its body returns, or the scope is cancelled) does not end:
    its pull raises CancelledError (Haiway 0.36 to 0.40 close a bus by
    cancelling its pending receives), or waits for ever (0.30 to 0.35 never
    close a bus; 0.36 and 0.37 do not close a cancelled scope's)."""
    returned, cancelled = await waiting_pull("returns"), await waiting_pull("is cancelled")
    shown = returned != "ended" or cancelled != "ended"
    return shown, (
        f"a subscription waiting in a pull when its scope's body returned: {returned}; "
        f"when the scope was cancelled: {cancelled}; it should end"
    )


async def proc_1() -> tuple[bool, str]:
    """A processor (ctx.spawn of a task that iterates a subscription) keeps
    its scope from exiting: the bus closes only once the scope's task
    group is done, and the task group waits for the processor, which waits
    for the bus."""
    received: list[int] = []

    async def processor() -> None:
        async for event in ctx.subscribe(Ping):
            received.append(event.id)

    async def scope() -> None:
        async with ctx.scope("scope"):
            ctx.spawn(processor)
            await asyncio.sleep(0)  # the processor subscribes
            ctx.send(Ping(id=1))

    try:
        await asyncio.wait_for(scope(), 1.0)
        return False, f"the scope exited (its processor received {received} and ended)"
    except TimeoutError:
        # Shown only if the processor ran and got the event: then what it
        # waits for is its bus's end, not anything else.
        return received == [1], (
            f"the scope did not exit within 1 s: its processor received {received} and still waits for its bus"
        )


async def scope_3() -> tuple[bool, str]:
    """An isolated scope shares its root's bus: a subscription made in the
    root receives an event sent in the isolated scope."""
    async with ctx.scope("root"):
        subscription = ctx.subscribe(Ping)
        async with ctx.scope("isolated", isolated=True):
            ctx.send(Ping(id=1))
        outcome = await pull(subscription, 0.5)
    shown = outcome == "event 1"
    return shown, f"the root's subscription, after an isolated scope sent event 1: {outcome}"


async def fail_1() -> tuple[bool, str]:
    """A root scope whose body fails does not close its bus as one whose
    body returns does (with no tasks, failing differs from returning only
    in the error it raises): a subscription waiting in a pull when the
    body raises does something else than when it returns."""
    failed, returned = await waiting_pull("fails"), await waiting_pull("returns")
    return failed != returned, (
        f"a subscription waiting in a pull when its root's body fails: {failed}; when it returns: {returned}"
    )


async def task_3() -> tuple[bool, str]:
    """A worker in an isolated scope that has started and waits, released
    right after the root's cancellation was requested, still runs: the
    cancellation reaches the isolated scope's task group only hop by hop
    (root task, then the isolated scope's task, then its group), and the
    woken worker runs first."""
    release = asyncio.Event()
    started = asyncio.Event()
    ran: list[bool] = []

    async def work() -> None:
        started.set()
        await release.wait()
        ran.append(True)

    async def isolated() -> None:
        async with ctx.scope("isolated", isolated=True):
            ctx.spawn(work)
            await asyncio.Event().wait()

    async def root() -> None:
        async with ctx.scope("root"):
            ctx.spawn(isolated)
            await asyncio.Event().wait()

    running = asyncio.create_task(root())
    await started.wait()  # the worker has started and waits for its release
    running.cancel()  # the root's cancellation is requested
    release.set()  # then the worker is released
    try:
        await running
    except asyncio.CancelledError:
        pass
    what = "still ran" if ran else "did not run"
    return bool(ran), (
        f"a started worker of an isolated scope, released after the root's cancellation was requested, {what}"
    )


async def share_1() -> tuple[bool, str]:
    """Two tasks pull one subscription at once, each waiting for one
    event; one event is sent, and both receive it (as workers sharing a
    queue, one of them would)."""
    async with ctx.scope("root"):
        subscription = ctx.subscribe(Ping)
        got: list[str] = []

        async def worker(name: str) -> None:
            event = await anext(subscription)
            got.append(f"{name} received event {event.id}")

        workers = [asyncio.create_task(worker(name)) for name in ("task a", "task b")]
        await asyncio.sleep(0)  # both wait in a pull of the one subscription
        ctx.send(Ping(id=1))
        _, waiting = await asyncio.wait(workers, timeout=0.5)
        if waiting:
            got.append("the other waited")
            # Released by a second event, not cancelled: cancelling a pull
            # breaks the type's bus (CANCEL-2).
            ctx.send(Ping(id=2))
        await asyncio.gather(*workers, return_exceptions=True)
    try:  # the scope has exited: its stream ends (pulled, so that asyncio
        # does not log the end as a future's exception never retrieved)
        await asyncio.wait_for(anext(subscription), 0.5)
    except (StopAsyncIteration, TimeoutError, asyncio.CancelledError):
        pass
    shown = sorted(got) == ["task a received event 1", "task b received event 1"]
    return shown, "one event sent to a subscription two tasks pull at once: " + "; ".join(got)


# Longer than any check's own waits: a check that runs past it is reported
# as not shown (it hung), never left running.
CHECK_SECONDS = 10.0

CHECKS = {
    "CANCEL-2": cancel_2,
    "CLOSE-1": close_1,
    "CLOSE-2": close_2,
    "CLOSE-3": close_3,
    "PROC-1": proc_1,
    "SCOPE-3": scope_3,
    "FAIL-1": fail_1,
    "TASK-3": task_3,
    "SHARE-1": share_1,
}


def main() -> int:
    # The expectations file to show (default: haiway.toml beside this
    # directory); `cargo xtask matrix` passes the one it judges with.
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "haiway.toml"
    listed = tomllib.loads(path.read_text())
    # A file about one release (haiway-X.Y.Z) is shown only on that release.
    recorded_for = str(listed.get("implementation", "")).removeprefix("haiway-")
    installed = version("haiway")
    if recorded_for[:1].isdigit() and recorded_for != installed:
        print(f"{path} records Haiway {recorded_for}, but Haiway {installed} is installed")
        return 2
    rules = [d["rule"] for d in listed.get("deviation", [])]
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
