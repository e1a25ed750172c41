// Ground truth for conformance/expectations/node-events.toml: each
// deviation the suite records for node:events, shown in plain Node.js
// code, public API only, no adapter (PROTOCOL.md, "Ground truth").
//
//   node conformance/expectations/node-events/ground_truth.mjs conformance/expectations/node-events.toml
//
// Prints `RULE: shown: ...` or `RULE: NOT SHOWN: ...` per listed deviation;
// exits 0 if every one is shown, 1 if one is not, 2 if one has no check here.
import { EventEmitter, on } from 'node:events';
import { readFileSync } from 'node:fs';

// CANCEL-2: a pull abandoned by a timeout (Promise.race) keeps its place in
// the iterator's queue; the next event goes to it and is lost.
async function cancel2() {
  const bus = new EventEmitter();
  const subscription = on(bus, 'alpha.Ping');
  const sibling = on(bus, 'alpha.Ping');
  const timeout = new Promise((resolve) => setImmediate(() => resolve('timed out')));
  const first = await Promise.race([subscription.next(), timeout]);
  if (first !== 'timed out') return [false, 'the abandoned pull completed though nothing was sent'];
  bus.emit('alpha.Ping', { id: 1 });
  bus.emit('alpha.Ping', { id: 2 });
  const next = (await subscription.next()).value[0].id;
  const siblingGot = [(await sibling.next()).value[0].id, (await sibling.next()).value[0].id];
  const shown = next === 2 && siblingGot.join() === '1,2';
  return [shown, `after a timeout gave up a pending pull, events 1 and 2 were sent: the subscription's next pull got event ${next} (event 1 went to the abandoned pull); a sibling iterator got ${siblingGot.join(' and ')}`];
}

const CHECKS = { 'CANCEL-2': cancel2 };
const file = process.argv[2] ?? new URL('../node-events.toml', import.meta.url).pathname;
const rules = [...readFileSync(file, 'utf8').matchAll(/^rule = "([A-Z]+-\d+)"/gm)].map((m) => m[1]);
const unchecked = rules.filter((r) => !(r in CHECKS));
if (unchecked.length) {
  console.log(`no ground truth here for: ${unchecked.join(', ')}`);
  process.exit(2);
}
let failed = 0;
for (const rule of rules) {
  const [shown, what] = await CHECKS[rule]();
  console.log(`${rule}: ${shown ? 'shown' : 'NOT SHOWN'}: ${what}`);
  failed += shown ? 0 : 1;
}
process.exit(failed ? 1 : 0);
