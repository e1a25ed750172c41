#!/usr/bin/env node
/**
 * The scopebus adapter for Node's built-in `node:events`, on the Node kit.
 *
 * A bus is an `EventEmitter`; a subscription is the async iterator
 * `events.on(emitter, name, { close: ['close'] })` (pulled: each `next()`
 * yields the arguments of one `emit`, queued without bound per iterator);
 * a send is `emitter.emit(name, event)`. Event names are the catalogue's
 * canonical wire names (`kit.route`: the alias `alpha.PingAlias` is the
 * name `alpha.Ping`); none of them is `error` (which `events.on` turns into
 * a rejected pull) or `close`.
 *
 * node:events has no scopes, task groups, "no bus" error, close or types,
 * so the kit emulates them (`kit.EmulatedScopes`): an emitter per root or
 * isolated scope. Closing a scope's bus is what a user of `events.on` would
 * do: create every iterator with the `close` option and `emit('close')`
 * when the emitter is done. Each iterator then stops listening at once,
 * resolves its pending pulls with `done`, and hands out what it had queued
 * before it ends (drain, then end). Sends and subscribes after the close
 * are refused by the emulation (`closed`). A dropped subscription is
 * `iterator.return()`.
 *
 * `abandon` gives up a pending `next()` the only way JavaScript can, the
 * way `Promise.race([it.next(), timeout])` does: the promise is forgotten,
 * not withdrawn, and the subscriber pulls again at once.
 */

import { EventEmitter, on } from 'node:events';
import * as kit from '../../kits/node/scopebus-kit.mjs';

// Ends every iterator of an emitter (the `close` option of `events.on`).
const CLOSE = 'close';

class NodeEventsBinding extends kit.EmulatedScopes {
  name = 'node-events';
  // Emitters that have emitted CLOSE: their iterators no longer listen.
  #closed = new WeakSet();
  capabilities = [
    'isolated',
    'cancel',
    // Retained events: WeakRefs on the events after a full GC (the kit);
    // live subscriptions: the emitter's own `listenerCount`, while it is open.
    'stats',
    'tasks',
    'started',
    'abandon',
    'processors',
    'failures',
    'exited_scopes',
    // Two tasks may await `next()` of one `events.on` iterator: each emit
    // settles the oldest pending pull.
    'share',
  ];
  emulates = ['types', 'scopes', 'close', 'tasks', 'context_missing'];

  // node:events is part of Node: its version is Node's.
  version() { return process.versions.node; }

  newBus() {
    const bus = new EventEmitter();
    // Every iterator adds listeners (its name, `error`, `close`): many
    // subscriptions are expected here, not a leak.
    bus.setMaxListeners(0);
    return bus;
  }

  publish(bus, name, event) { bus.emit(kit.route(name), event); }
  open(bus, name) { return on(bus, kit.route(name), { close: [CLOSE] }); }
  // `events.on` yields the array of `emit`'s arguments.
  eventOf(args) { return args[0]; }
  letGo(iterator) { iterator.return(); }
  closeBus(owned) {
    this.#closed.add(owned.bus);
    owned.bus.emit(CLOSE);
  }

  // A closed emitter no longer knows its iterators: one stops listening at
  // the close, but its stream ends only when it is next pulled. So it can
  // count live subscriptions only while it is open.
  liveSubscriptions(bus, name) { return this.#closed.has(bus) ? null : bus.listenerCount(name); }
}

kit.main(new NodeEventsBinding());
