// The member under attack for test/fuzz/fuzz.mjs: a Transport in its own process (so a crash is
// seen as an exit), with a 'get' handler over a small map, an 'apply' handler that counts, and a
// FAST server stub. Prints {"url": ...} once listening; answers 'stats' with its counters and with
// what its main thread spent (CPU, event-loop utilization, loop delay, time waiting for a core).
//
// A 'get' whose body is [key, t] (t: the client's process.hrtime in µs, a clock shared by every
// process of the machine) is answered with [value, t'] (t': the member's hrtime when the handler
// ran), so the client can split a round trip into the way in (client -> member handler, which
// holds the member's queueing) and the way back.
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Transport } from '../../dist/transport/index.js';
import { UnsupportedError } from '../../dist/errors.js';
import { sched, us } from './clock.mjs';

const secret = process.env.FUZZ_SECRET;
const t = await Transport.listen({ host: '127.0.0.1', port: 0, secret, memberId: 'fuzz-member', log: () => undefined });
const data = new Map();
for (let i = 0; i < 1000; i++) data.set(`k${i}`, `value-${i}`);
let applied = 0;
let fast = 0;
const delay = monitorEventLoopDelay({ resolution: 1 });
delay.enable();
t.handle('get', (k) => (Array.isArray(k) && k.length === 2 && typeof k[0] === 'string' ? [data.get(k[0]) ?? null, us()] : data.get(k) ?? null));
t.handle('apply', () => ++applied);
t.handle('stats', () => {
  // loop delay since the previous 'stats' (ms): how late a 1 ms timer fired, i.e. how long a turn of this loop ran
  const loop = { p50: delay.percentile(50) / 1e6, p99: delay.percentile(99) / 1e6, max: delay.max / 1e6 };
  delay.reset();
  return { applied, fast, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed, cpu: process.cpuUsage(), elu: performance.eventLoopUtilization(), sched: sched(), loop };
});
// one error for every FAST request: a stub's cost should not be an Error with a stack trace per call
const STUB = new UnsupportedError('fuzz member: FAST stub');
const stub = (peer, r) => {
  fast++;
  peer.replyError(r.id, STUB);
};
t.serveFast({ get: stub, set: stub, mget: stub, rep: stub });
process.stdout.write(`${JSON.stringify({ url: t.url })}\n`);
process.on('SIGTERM', () => t.close().then(() => process.exit(0)));
