/**
 * scopebus adapter kit for Node.js (ES module, Node 20, no dependencies).
 *
 * An adapter judges one event bus through the scopebus adapter protocol
 * (PROTOCOL.md at the repository's root). This module owns the protocol: the
 * session on stdin/stdout, the handshake, request ids and error codes, a
 * fresh world per run (`reset`), the observations, subscriber tasks with
 * credit, workers, processors, abandoned and failed pulls, shared
 * subscriptions, `settle`, and `observe` (retained events counted exactly
 * with WeakRefs on the events, read after a full garbage collection). An
 * adapter is only the mapping onto its bus: a subclass of `Binding` (or of
 * `EmulatedScopes`, for a bus without scopes) handed to `main`. See
 * README.md beside this file.
 *
 * Invariants the kit keeps, so that an adapter need not:
 *
 * - determinism: Node cannot stop its event loop between requests, so each
 *   request is handled to quiescence before its reply is written. The op
 *   runs, then `World.runUntil` lets the microtasks run and releases the
 *   turns tasks yielded (`World.turn`, the kit's only macrotask source) in
 *   batches, one per event loop iteration, until no task waits for a turn.
 *   Nothing is pending when a reply goes out, so nothing runs while the
 *   next line is awaited; and since only `runUntil` releases turns, not
 *   even after `did_not_settle`. No timers are used, ever.
 * - cancellation is the kit's own, AbortController-style: each `Task` owns
 *   an AbortController, and every await of a kit task goes through
 *   `task.wait`, which rejects with the task's `Cancelled` once it is
 *   aborted (and at every later wait). Only the op naming a task
 *   (`cancel_subscriber`, `drop_subscription`, `fail_subscriber`,
 *   `cancel_scope`) and a task group whose owner is cancelled or fails
 *   cancel tasks; a rejection that is not the task's own `Cancelled` is the
 *   bus's, and is reported, never swallowed.
 * - exact retained counts: an event is held only by the bus. The kit makes
 *   it, sends it and forgets it; a pull's result is mapped to the event's
 *   id by the first reaction to the bus's own promise (`outcomeOf`), so no
 *   promise, closure or suspended frame of the kit holds an event (V8's
 *   compiler threads keep closures' contexts alive for a while, so a closure
 *   that reached an event would make it look retained, at random).
 * - stdout carries only protocol lines: `console.log` and
 *   `process.stdout.write` go to stderr.
 */

import { AsyncLocalStorage } from 'node:async_hooks';
import v8 from 'node:v8';
import vm from 'node:vm';

export const PROTOCOL = 1;
// A processor's credit: more than any run sends.
const PROCESSOR_CREDIT = Number.MAX_SAFE_INTEGER;
// Event loop iterations (batches of turns) one request may take to quiesce.
const SETTLE_LIMIT = 100_000;

// Protocol lines go to the real stdout; anything else written there goes to stderr.
const protocolWrite = process.stdout.write.bind(process.stdout);
process.stdout.write = process.stderr.write.bind(process.stderr);

// A full, synchronous garbage collection, for exact retained counts.
v8.setFlagsFromString('--expose-gc');
const collectGarbage = vm.runInNewContext('gc');

// ----- the catalogue ---------------------------------------------------------

// `alpha.Ping` is the base event; `beta.Ping` a class of the same name
// elsewhere; `alpha.DerivedPing` a subclass; `Wrapped` holds an `alpha.Ping`
// (its `inner`); JavaScript has no type arguments at run time, so the
// closest thing to `Generic<u8>`/`Generic<u16>` is a subclass per argument
// of one generic class; `Login` is unrelated. Every event carries its `id`.
export class Ping { constructor(id) { this.id = id; } }
export const BetaPing = { Ping: class Ping { constructor(id) { this.id = id; } } }.Ping;
export class DerivedPing extends Ping {}
export class Wrapped { constructor(inner) { this.inner = inner; } }
export class Generic { constructor(id) { this.id = id; } }
export class GenericU8 extends Generic {}
export class GenericU16 extends Generic {}
export class Login { constructor(id) { this.id = id; } }

/** Catalogue name -> class; `alpha.PingAlias` is the very class `alpha.Ping`. */
export function plainCatalogue() {
  return {
    'alpha.Ping': Ping, 'beta.Ping': BetaPing, 'alpha.DerivedPing': DerivedPing, Wrapped,
    'Generic<u8>': GenericU8, 'Generic<u16>': GenericU16, 'alpha.PingAlias': Ping, Login,
  };
}

/** The canonical wire name a catalogue name routes as (an alias as the type
 * it names; `observe` reports it there). Buses keyed by strings route by it. */
export const route = (name) => (name === 'alpha.PingAlias' ? 'alpha.Ping' : name);

/** The id an event carries (a `Wrapped` carries its inner ping's). */
export const eventId = (event) => (event.inner != null ? event.inner.id : event.id);

// ----- errors ----------------------------------------------------------------

/** A request the adapter cannot carry out, with a protocol error code. */
export class AdapterError extends Error {
  constructor(code, message) { super(message); this.code = code; }
}
/** What a scope's body throws when made to fail (`fail_scope`). */
export class BodyFailure extends Error {}
/** What a subscriber task throws when made to fail (`fail_subscriber`). */
export class SubscriberFailure extends Error {}
/** The kit's cancellation of one task (what its AbortController aborts with). */
export class Cancelled extends Error {}
/** `EmulatedScopes`: a send, subscribe or spawn on a closed bus or finished task group. */
export class Closed extends Error {}
/** `EmulatedScopes`: a send or subscribe outside every scope. */
export class ContextMissing extends Error {}

/** An error's type name, as `exception` fields give it. */
export const exceptionName = (e) => (e instanceof Error ? (e.constructor?.name ?? e.name) : `thrown ${typeof e}`);
const messageOf = (e) => (e instanceof Error ? e.message : String(e)) || exceptionName(e);
const describe = (e) => `${exceptionName(e)}: ${messageOf(e)}`;

/** Whether `raised` is the body's error itself, or it alone in an AggregateError. */
function isOwnError(raised, failure) {
  if (raised === failure) return true;
  return raised instanceof AggregateError && raised.errors.length === 1 && isOwnError(raised.errors[0], failure);
}

function deferred() {
  let resolve;
  const promise = new Promise((ok) => { resolve = ok; });
  return { promise, resolve };
}

/** One event loop iteration: every microtask queued before it has run. */
const barrier = () => new Promise((resolve) => setImmediate(resolve));

// ----- tasks and task groups ------------------------------------------------

const TASK = new AsyncLocalStorage();
/** The kit task running the current code (undefined outside kit tasks). */
export const currentTask = () => TASK.getStore();
// The context of code outside every scope: no store of any AsyncLocalStorage.
const EMPTY = AsyncLocalStorage.snapshot();

/**
 * A task: `fn(task)` run in the async context it was made in (so it sees
 * the scope it was spawned in). Its first step runs on a later microtask,
 * never inside the call that made it, and not at all if it is cancelled
 * first (as an asyncio task cancelled before it ran). `done` resolves when
 * it has finished and never rejects; `error` is what it ended with.
 */
export class Task {
  constructor(fn) {
    this.controller = new AbortController();
    this.started = false;
    this.finished = false;
    this.error = undefined;
    this.done = TASK.run(this, () => this.#run(fn));
  }

  get signal() { return this.controller.signal; }
  get cancelled() { return this.signal.aborted; }
  /** Whether `e` is this task's own cancellation (anything else is not the kit's doing). */
  isOwnCancel(e) { return this.cancelled && e === this.signal.reason; }

  cancel() {
    if (!this.finished && !this.cancelled) this.controller.abort(new Cancelled('the task was cancelled'));
  }

  /** `promise`, unless the task is (or gets) cancelled first: then its `Cancelled`. */
  wait(promise) {
    const { signal } = this;
    if (signal.aborted) return Promise.reject(signal.reason);
    return new Promise((resolve, reject) => {
      const onAbort = () => reject(signal.reason);
      signal.addEventListener('abort', onAbort, { once: true });
      const settle = (then) => (value) => { signal.removeEventListener('abort', onAbort); then(value); };
      Promise.resolve(promise).then(settle(resolve), settle(reject));
    });
  }

  async #run(fn) {
    try {
      await this.wait(undefined);
      this.started = true;
      await fn(this);
    } catch (e) {
      this.error = e;
    } finally {
      this.finished = true;
    }
  }
}

/**
 * A task group, as asyncio's TaskGroup: `exit` (called in its owner's task
 * once the body has ended) waits for every task, those spawned meanwhile
 * included; if the body failed, or the owner is cancelled while it waits,
 * it cancels them all, waits for them to unwind, and throws that error.
 * Spawning is refused (`Closed`) once it is finished or cancelling.
 */
export class TaskGroup {
  tasks = new Set();
  exiting = false;
  aborting = false;
  finished = false;

  spawn(fn) {
    if (this.finished || this.aborting || (this.exiting && this.tasks.size === 0)) {
      throw new Closed(`the task group is ${this.aborting ? 'shutting down' : 'finished'}`);
    }
    const task = new Task(fn);
    this.tasks.add(task);
    task.done.then(() => this.tasks.delete(task));
    return task;
  }

  async exit(error = null) {
    this.exiting = true;
    error ??= await currentTask().wait(this.#idle()).then(() => null, (e) => e);
    if (error != null) {
      this.aborting = true;
      for (const task of this.tasks) task.cancel();
      await this.#idle();
    }
    this.finished = true;
    if (error != null) throw error;
  }

  async #idle() {
    while (this.tasks.size) await Promise.all([...this.tasks].map((t) => t.done));
  }
}

// ----- the binding: what an adapter writes -----------------------------------

/**
 * The mapping of the protocol onto one bus. Every method is called
 * synchronously, in the async context of the scope the op names (`send`,
 * `subscribe`, `spawn`, `busOf`) or of the scope's parent (`scope`); only
 * `scope` may await. See README.md for what each must do.
 */
export class Binding {
  name = 'unnamed';
  language = 'javascript';
  capabilities = []; // PROTOCOL.md, "Capabilities"
  emulates = []; // PROTOCOL.md, "Emulated features"

  version() { return 'unknown'; }
  runtime() { return `Node.js ${process.version}`; }
  eventTypes() { return plainCatalogue(); }
  /** Runs `body()` inside a new scope; settles as the scope has exited, with what it raised. */
  scope(sid, isolated, body) { throw new Error('Binding.scope is not implemented'); }
  send(name, event) { throw new Error('Binding.send is not implemented'); }
  /** Subscribes now; returns an async iterator (`next()` gives `{done: true}` at the end). */
  subscribe(name) { throw new Error('Binding.subscribe is not implemented'); }
  /** Starts `fn` in the current scope's task group; returns its kit `Task`. */
  spawn(fn) { throw new Error('Binding.spawn is not implemented'); }
  eventOf(value) { return value; }
  letGo(subscription) {}
  errorCode(error) { return 'internal'; }
  busOf() { return null; }
  liveSubscriptions(bus, name) { return null; }
}

// ----- emulated scopes, task groups and ContextMissing ------------------------

/** A bus `EmulatedScopes` made for a root or isolated scope, and its task group. */
export class OwnedBus {
  constructor(bus) { Object.assign(this, { bus, group: new TaskGroup(), closed: false }); }
}

// The OwnedBus the current scope reaches (set by EmulatedScopes.scope).
const CURRENT_BUS = new AsyncLocalStorage();

/**
 * A binding for a bus with no scopes, task groups or "no bus" error: a root
 * or isolated scope makes a bus (`newBus`) and a `TaskGroup`, a nested one
 * shares its parent's; as the owner's body returns (or fails, or is
 * cancelled) its bus is closed (`closeBus`) BEFORE the group is waited for
 * (PROC-1); a send or subscribe on a closed bus throws `Closed`, outside
 * every scope `ContextMissing`. Override `newBus`, `publish`, `open`, and
 * `closeBus` if your subscriptions must be ended by hand (emulate `close`).
 */
export class EmulatedScopes extends Binding {
  emulates = ['scopes', 'tasks', 'context_missing'];

  newBus() { throw new Error('EmulatedScopes.newBus is not implemented'); }
  publish(bus, name, event) { throw new Error('EmulatedScopes.publish is not implemented'); }
  open(bus, name) { throw new Error('EmulatedScopes.open is not implemented'); }
  closeBus(owned) {}

  reach() {
    const owned = CURRENT_BUS.getStore();
    if (owned == null) throw new ContextMissing('no scope, so no bus, in reach');
    if (owned.closed) throw new Closed('the bus of this scope is closed');
    return owned;
  }

  async scope(sid, isolated, body) {
    if (CURRENT_BUS.getStore() != null && !isolated) return body();
    const owned = new OwnedBus(this.newBus());
    const error = await CURRENT_BUS.run(owned, body).then(() => null, (e) => e);
    owned.closed = true;
    this.closeBus(owned);
    await owned.group.exit(error);
  }

  send(name, event) { this.publish(this.reach().bus, name, event); }
  subscribe(name) { return this.open(this.reach().bus, name); }

  spawn(fn) {
    const owned = CURRENT_BUS.getStore();
    if (owned == null) throw new ContextMissing('no scope, so no task group, in reach');
    return owned.group.spawn(fn);
  }

  errorCode(error) {
    if (error instanceof ContextMissing) return 'context_missing';
    return error instanceof Closed ? 'closed' : 'internal';
  }

  busOf() { return CURRENT_BUS.getStore()?.bus ?? null; }
}

// ----- the world of one run ----------------------------------------------------

// What one pull gave, besides an event's id.
const END = Symbol('end');
const ABANDONED = Symbol('abandoned');
const FAILED = Symbol('failed');
const OK = { ok: 'done' };

/** Everything of one run: scopes, subscriptions, workers, the turns tasks
 * wait for, the events sent (weakly), and the observations not yet reported.
 * `reset` drops it whole: quiescent, it has nothing left to run. */
class World {
  constructor(binding) {
    this.binding = binding;
    this.types = binding.eventTypes();
    this.scopes = new Map();
    this.subs = new Map();
    this.workers = new Map();
    this.observations = [];
    this.faults = [];
    this.parked = []; // resolvers of tasks waiting for their turn
    this.alive = new Map(); // `${bus}|${type}` -> Map(event id -> WeakRef)
    this.busIds = new Map(); // bus object -> number (kept, so ids stay unique)
    // A pull's result, mapped to END or the event's id as the first reaction
    // to the bus's own promise: no promise or closure of the kit ever holds
    // an event (V8's compiler threads may keep closures' contexts alive for
    // a while, which would make a received event look retained).
    this.outcomeOf = (result) => (result.done ? END : eventId(binding.eventOf(result.value)));
  }

  observe(observation) { this.observations.push(observation); }
  take() { return this.observations.splice(0); }

  // --- scheduling ---

  /** A task yields to the others (asyncio's `sleep(0)`): it resumes in the
   * next batch `runUntil` releases, never between requests. */
  turn() { return new Promise((resolve) => this.parked.push(resolve)); }

  /** Runs the world until `until` settles (without it: until no task waits
   * for a turn). Each iteration lets every queued microtask run, then
   * releases the turns taken so far. Whether it got there in SETTLE_LIMIT. */
  async runUntil(until = null) {
    let settled = false;
    until?.then(() => { settled = true; }, () => { settled = true; });
    for (let i = 0; i < SETTLE_LIMIT; i++) {
      await barrier();
      if (settled) return true;
      if (this.parked.length === 0) return until == null;
      for (const resume of this.parked.splice(0)) resume();
    }
    return false;
  }

  // --- handles and helpers ---

  handle(map, id, what) {
    const rec = map.get(id);
    if (rec == null) throw new AdapterError('unknown_handle', `${what}#${id} is not a handle of this run`);
    return rec;
  }

  scope(sid) { return this.handle(this.scopes, sid, 'scope'); }
  sub(subId) { return this.handle(this.subs, subId, 'sub'); }

  /** Runs a function in the scope's captured context, or outside every scope. */
  contextOf(scope) { return scope == null ? EMPTY : this.scope(scope).context; }

  /** The op's error result for what the bus threw. */
  errorResult(e) {
    if (e instanceof AdapterError) throw e;
    return { code: this.binding.errorCode(e), message: messageOf(e), exception: exceptionName(e) };
  }

  /** `fn()`'s value, or the op's error result for what the bus threw. */
  attempt(fn) {
    try {
      return { value: fn() };
    } catch (e) {
      return { error: this.errorResult(e) };
    }
  }

  makeEvent(name, eid) {
    const cls = this.types[name];
    return name === 'Wrapped' ? new cls(new this.types['alpha.Ping'](eid)) : new cls(eid);
  }

  /** In the current context (of `scope`): which bus it reaches, as a key. */
  busKey(scope) {
    const bus = this.binding.busOf();
    if (bus == null) return `scope#${this.scopes.get(scope).owner}`;
    if (!this.busIds.has(bus)) this.busIds.set(bus, this.busIds.size);
    return `bus#${this.busIds.get(bus)}`;
  }

  /** Sends from the current context (of `scope`); the error result, or
   * null. The event is then tracked weakly, until the bus lets go of it. */
  send(scope, name, eid) {
    const event = this.makeEvent(name, eid);
    try {
      this.binding.send(name, event);
    } catch (e) {
      return this.errorResult(e);
    }
    if (scope != null) {
      const key = `${this.busKey(scope)}|${route(name)}`;
      if (!this.alive.has(key)) this.alive.set(key, new Map());
      this.alive.get(key).set(eid, new WeakRef(event));
    }
    return null;
  }

  /** Spawns `fn` into the task group of the scope whose context is `context`. */
  spawnIn(context, fn) { return context(() => this.binding.spawn(fn)); }

  /** The kit lets go of `rec`'s subscription; the binding hears of it once
   * the last task pulling it has let go. */
  letGo(rec) {
    const { iterator } = rec;
    rec.iterator = null;
    if (iterator == null) return;
    for (const other of this.subs.values()) if (other !== rec && other.iterator === iterator) return;
    try {
      this.binding.letGo(iterator);
    } catch (e) {
      this.faults.push(`letting go of a subscription failed: ${describe(e)}`);
    }
  }

  newSub(iterator, scope, credits = 0) {
    // `wake` resolves a wait for credit; `abandon` gives up the pending pull
    // (set only while one is pending).
    return { iterator, scope, credits, task: null, wake: null, abandon: null, processor: false, failing: null, puller: null };
  }

  // --- tasks ---

  /** A scope's body: enters the scope, captures its context, waits for
   * `close_scope` (or fails, or is cancelled), and reports how it ended. */
  async scopeBody(sid, rec, entered) {
    const task = currentTask();
    try {
      await this.binding.scope(sid, rec.isolated, async () => {
        rec.context = AsyncLocalStorage.snapshot();
        entered();
        await task.wait(rec.closing.promise);
        if (rec.failing) throw (rec.failure = new BodyFailure(`scope#${sid}'s body failed`));
        this.observe({ kind: 'scope_closing', scope: sid });
      });
      this.observe({ kind: 'scope_exited', scope: sid });
    } catch (e) {
      if (e instanceof Cancelled && task.cancelled) {
        this.observe({ kind: 'scope_cancelled', scope: sid });
      } else if (rec.failing) {
        // FAIL-1: what the scope raised, said as it is.
        const error = { code: 'internal', message: messageOf(e), exception: exceptionName(e) };
        this.observe({ kind: 'scope_failed', scope: sid, error, own: isOwnError(e, rec.failure) });
      } else {
        this.faults.push(`scope#${sid} failed: ${describe(e)}`);
      }
    }
  }

  /** A subscriber task: pulls only with credit, reports `received` per
   * event and then yields one turn, `ended` at the end of the stream. */
  async subscriber(subId, rec) {
    const task = currentTask();
    try {
      for (;;) {
        while (rec.credits === 0) await task.wait(new Promise((resolve) => { rec.wake = resolve; }));
        const got = await this.pullOnce(subId, rec, task);
        if (got === ABANDONED) continue;
        if (got === FAILED) return;
        if (got === END) {
          this.letGo(rec);
          this.observe({ kind: 'ended', sub: subId });
          return;
        }
        rec.credits -= 1;
        this.observe({ kind: 'received', sub: subId, event: got });
        await task.wait(this.turn());
      }
    } catch (e) {
      if (!task.isOwnCancel(e)) {
        this.faults.push(`the subscriber of sub#${subId} failed: ${describe(e)}`);
        return;
      }
      // Cancelled by the kit. A processor (cancelled with its group, or by
      // `cancel_subscriber`) lets go as the user's loop would; a failing
      // subscriber throws its own error and lets go as it unwinds; after a
      // drop or cancel the op lets go, once the task has unwound.
      if (rec.processor) this.letGo(rec);
      if (rec.failing != null) {
        this.letGo(rec);
        throw new SubscriberFailure(`the subscriber of sub#${subId} failed`);
      }
    }
  }

  /** One pull: the event's id, END, ABANDONED (given up by `abandon` as a
   * timeout around it would: a JavaScript promise cannot be withdrawn, so
   * the pending `next()` is only forgotten), or FAILED (the pull rejected:
   * reported). The task's own cancellation is rethrown. */
  async pullOnce(subId, rec, task) {
    const abandoned = deferred();
    rec.abandon = () => abandoned.resolve(ABANDONED);
    try {
      const pulled = Promise.resolve(rec.iterator.next()).then(this.outcomeOf);
      return await task.wait(Promise.race([pulled, abandoned.promise]));
    } catch (e) {
      if (task.isOwnCancel(e)) throw e;
      this.letGo(rec);
      this.observe({ kind: 'failed', sub: subId, error: { code: 'internal', message: messageOf(e), exception: exceptionName(e) } });
      return FAILED;
    } finally {
      rec.abandon = null;
    }
  }

  /** A worker: reports `task_started`, waits for its release, sends (in its
   * scope's context, which it runs in), reports `task_done`. */
  async worker(taskId, scope, release) {
    const task = currentTask();
    this.observe({ kind: 'task_started', task: taskId });
    const spec = await task.wait(release);
    const observation = { kind: 'task_done', task: taskId };
    if (spec != null) observation.sent = { event: spec.event, error: this.send(scope, spec.ty, spec.event) };
    this.observe(observation);
  }

  // --- ops: each `op_<name>`, then the world runs to quiescence ---

  async apply(op) {
    const handler = this[`op_${op?.op}`];
    if (typeof handler !== 'function') throw new AdapterError('malformed', `unknown op \`${op?.op}\``);
    const result = await handler.call(this, op);
    if (!(await this.runUntil())) {
      throw new AdapterError('did_not_settle', `still runnable after ${SETTLE_LIMIT} event loop iterations`);
    }
    return result;
  }

  async op_open_scope({ scope: sid, parent = null, isolated = false }) {
    const owner = parent == null || isolated ? sid : this.scope(parent).owner;
    const rec = { parent, isolated, owner, task: null, context: null, closing: deferred(), failing: false, failure: null };
    this.scopes.set(sid, rec);
    const entered = deferred();
    const body = () => this.scopeBody(sid, rec, entered.resolve);
    // A root starts in a fresh context; a nested scope is a task of its parent's task group.
    const { value: task, error } = this.attempt(() => (parent == null ? EMPTY(() => new Task(body)) : this.spawnIn(this.scope(parent).context, body)));
    if (error) {
      this.scopes.delete(sid);
      return { error };
    }
    rec.task = task;
    await this.runUntil(Promise.race([entered.promise, task.done]));
    if (rec.context == null) {
      this.scopes.delete(sid);
      throw new AdapterError('internal', `scope#${sid} did not start`);
    }
    return OK;
  }

  op_close_scope({ scope }) { this.scope(scope).closing.resolve(); return OK; }

  op_cancel_scope({ scope }) { this.scope(scope).task.cancel(); return OK; }

  op_fail_scope({ scope }) {
    // The root scope's body throws `BodyFailure` when it next runs.
    const rec = this.scope(scope);
    if (rec.parent != null || rec.failing) throw new AdapterError('malformed', `scope#${scope} is not an open root scope`);
    rec.failing = true;
    rec.closing.resolve();
    return OK;
  }

  op_subscribe({ sub, scope = null, ty }) { return this.subscribePulled(scope, ty, [sub]); }

  op_subscribe_shared({ sub, puller, scope, ty }) {
    // SHARE-1: one subscription, pulled by two tasks at once, each with its own credit.
    const result = this.subscribePulled(scope, ty, [sub, puller]);
    if (result.ok) this.subs.get(sub).puller = puller;
    return result;
  }

  /** Subscribes to `name` in `scope`'s context (even once the scope has
   * gone: EXIT-1), and starts one subscriber task (outside every scope) per
   * handle in `pullers`, each pulling that one subscription. */
  subscribePulled(scope, name, pullers) {
    const { value: iterator, error } = this.attempt(() => this.contextOf(scope)(() => this.binding.subscribe(name)));
    if (error) return { error };
    for (const subId of pullers) {
      const rec = this.newSub(iterator, scope);
      this.subs.set(subId, rec);
      rec.task = EMPTY(() => new Task(() => this.subscriber(subId, rec)));
    }
    return OK;
  }

  op_spawn_processor({ sub: subId, scope, ty }) {
    // The seed's background processor: the scope subscribes now (which fixes
    // what it sees), then spawns into its task group a task that reads the
    // subscription until it ends.
    const { context } = this.scope(scope);
    const subscribed = this.attempt(() => context(() => this.binding.subscribe(ty)));
    if (subscribed.error) return { error: subscribed.error };
    const rec = this.newSub(subscribed.value, scope, PROCESSOR_CREDIT);
    rec.processor = true;
    this.subs.set(subId, rec);
    const spawned = this.attempt(() => this.spawnIn(context, () => this.subscriber(subId, rec)));
    if (spawned.error) {
      this.letGo(rec);
      this.subs.delete(subId);
      return { error: spawned.error };
    }
    rec.task = spawned.value;
    return OK;
  }

  op_send({ scope = null, ty, event }) {
    const error = this.contextOf(scope)(() => this.send(scope, ty, event));
    return error == null ? OK : { error };
  }

  op_consume({ sub, k }) {
    const rec = this.sub(sub);
    rec.credits += k;
    rec.wake?.();
    return OK;
  }

  /** Cancels the subscriber task of `sub` (and a shared subscription's
   * puller, at the same moment), runs until they have unwound, and lets go
   * of the subscription: complete when the reply is sent. */
  async op_drop_subscription({ sub }) {
    const ids = [sub, this.sub(sub).puller].filter((id) => id != null);
    const recs = ids.map((id) => this.sub(id));
    for (const rec of recs) rec.task.cancel();
    await this.runUntil(Promise.all(recs.map((rec) => rec.task.done)));
    ids.forEach((id, i) => {
      this.letGo(recs[i]);
      this.subs.delete(id);
    });
    return OK;
  }

  op_cancel_subscriber(op) { return this.op_drop_subscription(op); }

  async op_fail_subscriber({ sub, send = null }) {
    const rec = this.sub(sub);
    if (rec.processor) throw new AdapterError('malformed', `sub#${sub} is a processor`);
    rec.failing = send ?? {};
    const { task } = rec;
    if (!task.finished) {
      // It throws where it waits and lets go as it unwinds (`subscriber`).
      task.cancel();
      await this.runUntil(task.done);
      if (task.started && !(task.error instanceof SubscriberFailure)) {
        this.faults.push(`the subscriber of sub#${sub} did not fail as asked: ${task.error}`);
      }
    }
    // Unwound (or never ran, or had ended): its cleanup sends from the
    // subscription's scope, from the op, as a `send` after a drop would.
    this.letGo(rec);
    const observation = { kind: 'subscriber_failed', sub };
    if (rec.failing.ty != null) {
      const { ty, event } = rec.failing;
      observation.sent = { event, error: this.contextOf(rec.scope)(() => this.send(rec.scope, ty, event)) };
    }
    this.observe(observation);
    this.subs.delete(sub);
    return OK;
  }

  op_abandon({ sub }) {
    // The subscriber gives up the pull it waits in (if any), keeps its
    // subscription and credit, and pulls again at once; then the world runs
    // to quiescence, exactly as after a drop.
    this.sub(sub).abandon?.();
    return OK;
  }

  op_reenter() { throw new AdapterError('not_supported', 'JavaScript buses call no user code under a lock of their own'); }

  op_spawn({ task: taskId, scope }) {
    const release = deferred();
    const worker = () => this.worker(taskId, scope, release.promise);
    const { value: task, error } = this.attempt(() => this.spawnIn(this.scope(scope).context, worker));
    if (error) return { error };
    this.workers.set(taskId, { release, task });
    return OK;
  }

  op_release({ task, send = null }) {
    this.handle(this.workers, task, 'task').release.resolve(send);
    return OK;
  }

  op_settle() { return OK; } // `apply` runs every op to quiescence

  async op_observe({ scope }) {
    const { context } = this.scope(scope);
    // A new job (no WeakRef target is kept alive for the current one), then
    // a full collection; twice, so that what V8 itself held for a moment
    // (a compiler thread's handles) is gone: an event left is held by someone.
    for (let round = 0; round < 2; round++) {
      await barrier();
      collectGarbage();
    }
    const key = context(() => this.busKey(scope));
    const bus = context(() => this.binding.busOf());
    const stats = [];
    for (const name of Object.keys(this.types).filter((n) => route(n) === n)) {
      const refs = this.alive.get(`${key}|${name}`) ?? new Map();
      for (const [eid, ref] of refs) if (ref.deref() === undefined) refs.delete(eid);
      const retained = [...refs.keys()].sort((a, b) => a - b);
      const subscriptions = bus == null ? null : this.binding.liveSubscriptions(bus, name);
      stats.push({ type: name, subscriptions, retained: retained.length, retained_events: retained });
    }
    return { ok: { stats } };
  }
}

// ----- the session -------------------------------------------------------------

function hello(binding, world, request) {
  if (request.protocol !== PROTOCOL) {
    throw new AdapterError('unsupported_protocol', `this adapter speaks protocol ${PROTOCOL}, the runner ${request.protocol}`);
  }
  const unknown = (request.catalogue ?? []).filter((name) => !(name in world.types));
  if (unknown.length) throw new AdapterError('not_supported', `unknown catalogue types: ${unknown.join(', ')}`);
  const { name, language, capabilities, emulates } = binding;
  const answer = { type: 'hello', protocol: PROTOCOL, name, language, version: binding.version(), runtime: binding.runtime(), capabilities };
  return emulates.length ? { ...answer, emulates } : answer;
}

/** The reply (without its id) to one request, and the world after it. */
async function handle(binding, world, request) {
  switch (request.type) {
    case 'hello': return [world, hello(binding, world, request)];
    case 'reset': return [new World(binding), { type: 'ok', observations: [] }];
    case 'bye': return [world, { type: 'bye' }];
    case 'op': {
      const result = await world.apply(request.op);
      const faults = world.faults.splice(0);
      if (faults.length) throw new AdapterError('internal', faults.join('; '));
      return [world, { type: 'result', result, observations: world.take() }];
    }
    default: throw new AdapterError('malformed', `unknown or unsupported request type \`${request.type}\``);
  }
}

/** The lines of stdin, as they come. */
async function* lines() {
  let buffer = '';
  process.stdin.setEncoding('utf8');
  for await (const chunk of process.stdin) {
    buffer += chunk;
    for (let nl = buffer.indexOf('\n'); nl >= 0; nl = buffer.indexOf('\n')) {
      yield buffer.slice(0, nl);
      buffer = buffer.slice(nl + 1);
    }
  }
}

function parse(line) {
  let request;
  try {
    request = JSON.parse(line);
  } catch (e) {
    throw new AdapterError('malformed', messageOf(e));
  }
  if (request?.constructor !== Object) throw new AdapterError('malformed', 'a request must be a JSON object');
  return request;
}

/** Serves the protocol on stdin/stdout for `binding` until `bye` or the end
 * of input, one request at a time, each handled to quiescence first. */
export async function main(binding) {
  let world = new World(binding);
  // A rejection nobody handled is a fault of the run, reported on the next reply.
  process.on('unhandledRejection', (e) => world.faults.push(`unhandled rejection: ${describe(e)}`));
  const reply = (message) => protocolWrite(`${JSON.stringify(message)}\n`);
  for await (const line of lines()) {
    if (!line.trim()) continue;
    let request = {};
    let response;
    try {
      request = parse(line);
      [world, response] = await handle(binding, world, request);
    } catch (e) {
      if (!(e instanceof AdapterError)) console.error(e);
      const error = e instanceof AdapterError ? { code: e.code, message: e.message } : { code: 'internal', message: messageOf(e), exception: exceptionName(e) };
      response = { type: 'error', error };
    }
    reply({ id: request.id ?? 0, ...response });
    if (response.type === 'bye') process.exit(0);
  }
  process.exit(0);
}
