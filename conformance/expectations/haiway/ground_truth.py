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
import tomllib
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


async def close_3() -> tuple[bool, str]:
    """After a scope's body returned (it waits for a task), a subscription
    made in it is live: it receives what is sent after, and never ends."""
    body_returned = asyncio.Event()
    seen: list[str] = []

    async def late() -> None:
        await body_returned.wait()
        subscription = ctx.subscribe(Ping)
        ctx.send(Ping(id=1))
        try:
            event = await asyncio.wait_for(anext(subscription), 1.0)
            seen.append(f"received event {event.id} sent after the close")
        except StopAsyncIteration:
            return
        try:
            await asyncio.wait_for(anext(subscription), 0.5)
        except StopAsyncIteration:
            return
        except TimeoutError:
            seen.append("then waited for ever instead of ending")

    async with ctx.scope("scope"):
        ctx.spawn(late)
        body_returned.set()
    shown = len(seen) == 2
    return shown, "a subscription made after the scope's body returned " + (
        ", ".join(seen) if seen else "ended at once"
    )


async def close_2() -> tuple[bool, str]:
    """A send after a scope's body returned (its bus is closed), while a
    subscription made before the close is still held, raises
    AssertionError instead of returning (Haiway 0.42.0: the closed bus
    keeps the subscription's finished per-type future, and a send asserts
    that it is not finished)."""
    body_returned = asyncio.Event()
    seen: list[str] = []

    async def late() -> None:
        await body_returned.wait()
        try:
            ctx.send(Ping(id=1))
            seen.append("returned")
        except AssertionError:
            seen.append("raised AssertionError")
        except Exception as e:  # noqa: BLE001 - what it raised is the finding
            seen.append(f"raised {type(e).__name__}")

    async with ctx.scope("scope"):
        subscription = ctx.subscribe(Ping)
        ctx.spawn(late)
        body_returned.set()
    try:  # the subscription made before the close ends
        await asyncio.wait_for(anext(subscription), 0.5)
    except (StopAsyncIteration, TimeoutError, asyncio.CancelledError):
        pass
    shown = seen == ["raised AssertionError"]
    return shown, "a send after the scope's body returned, a subscription from before held, " + (
        ", ".join(seen) if seen else "never ran"
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

CHECKS = {"CANCEL-2": cancel_2, "CLOSE-2": close_2, "CLOSE-3": close_3, "TASK-3": task_3, "SHARE-1": share_1}


def main() -> int:
    # The expectations file to show (default: haiway.toml beside this
    # directory); `cargo xtask matrix` passes the one it judges with.
    path = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(__file__).parent.parent / "haiway.toml"
    listed = tomllib.loads(path.read_text())
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
