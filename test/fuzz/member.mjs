// The member under attack for test/fuzz/fuzz.mjs: a Transport in its own process (so a crash is
// seen as an exit), with a 'get' handler over a small map, an 'apply' handler that counts, and a
// FAST server stub. Prints {"url": ...} once listening; answers 'stats' with its counters.
import { Transport } from '../../dist/transport/index.js';
import { UnsupportedError } from '../../dist/errors.js';

const secret = process.env.FUZZ_SECRET;
const t = await Transport.listen({ host: '127.0.0.1', port: 0, secret, memberId: 'fuzz-member', log: () => undefined });
const data = new Map();
for (let i = 0; i < 1000; i++) data.set(`k${i}`, `value-${i}`);
let applied = 0;
let fast = 0;
t.handle('get', (k) => data.get(k) ?? null);
t.handle('apply', () => ++applied);
t.handle('stats', () => ({ applied, fast, rss: process.memoryUsage().rss, heap: process.memoryUsage().heapUsed }));
// one error for every FAST request: a stub's cost should not be an Error with a stack trace per call
const STUB = new UnsupportedError('fuzz member: FAST stub');
const stub = (peer, r) => {
  fast++;
  peer.replyError(r.id, STUB);
};
t.serveFast({ get: stub, set: stub, mget: stub, rep: stub });
process.stdout.write(`${JSON.stringify({ url: t.url })}\n`);
process.on('SIGTERM', () => t.close().then(() => process.exit(0)));
