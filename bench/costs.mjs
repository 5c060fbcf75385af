// Measured costs of the primitives the hot path is made of (single thread, this machine), with
// tinybench: what a Promise and an await cost next to a sync call, Atomics.load against plain
// reads, the clocks, Map.get with a string key, the hash, string decoding out of shared memory, the
// lock, a postMessage round trip, and get/set through the public API.
//
// A tinybench task times every call with performance.now(), which costs more than most of these
// operations, so each task runs its operation `n` times in a loop and the figure is per operation:
// the median batch time ÷ n, best (lowest) of --runs whole passes (default 3; the machine is
// shared and noisy). The loop's own cost (counter, sink) is in every figure; the "empty loop" row
// shows it. Reads go through an index that changes every iteration, so the JIT cannot hoist them.
//
// Usage: npm run build && node bench/costs.mjs [--runs R] [--quick]
import { parseArgs } from 'node:util';
import { Worker } from 'node:worker_threads';
import { Bench } from 'tinybench';
import { createGrid } from '../dist/index.js';
import { HASH_SEED, murmur3Ascii } from '../dist/ring/hash.js';
import { tryLock, unlock } from '../dist/sync/mutex.js';

const { values: opt } = parseArgs({ options: { runs: { type: 'string', default: '3' }, quick: { type: 'boolean', default: false } } });
const RUNS = Number(opt.runs);
const TIME = opt.quick ? 150 : 500;

const grid = await createGrid({ workers: 1, memory: '64MB' });
const m = grid.map('costs');
const st = grid.store;
const value = 'v'.repeat(100);
const KEYS = 1000;
const gridKeys = Array.from({ length: KEYS }, (_, i) => `k${i}`);
for (const k of gridKeys) await m.set(k, value);

// ── operands ────────────────────────────────────────────────────────────────────────────────────

const shared = new Int32Array(new SharedArrayBuffer(4096));
const local = new Int32Array(1024);
const plain = Array.from({ length: 1024 }, (_, i) => i);
const sharedF64 = new Float64Array(new SharedArrayBuffer(4096));
for (let i = 0; i < 1024; i++) shared[i] = local[i] = i;
// 20-character keys as an application builds them ("user:session:000042"); a Map of 10,000
const MAPN = 10_000;
const keys20 = Array.from({ length: MAPN }, (_, i) => `user:session:${String(i).padStart(7, '0')}`);
const map = new Map(keys20.map((k, i) => [k, i]));
const heapBuf = Buffer.from(st.buffers.heap, 0, 4096);
heapBuf.write(value, 1024, 'latin1');
const utf8Slice = Buffer.prototype.utf8Slice;
const latin1Slice = Buffer.prototype.latin1Slice;
// a scratch shared buffer for the value-copy rows (not the grid's heap, which holds the grid's records)
const writeSab = new SharedArrayBuffer(8192);
const writeBuf = Buffer.from(writeSab);
const writeU8 = new Uint8Array(writeSab);
const v16 = value.slice(0, 16);
const heap = st.buffers.heap; // growable: its byteLength is a getter call
const RESOLVED = Promise.resolve();
const id = (x) => x;
const asyncId = async (x) => x;
const lockI = st.lockIndex(0);
// A memo-sized Map (MEMO_MAX_ENTRIES in src/map.ts) kept full while new keys come in: evicting the
// oldest entry through keys().next(), as GridMap.remember did, against a ring of inserted keys (as
// its memo queue does now).
const CAP = 16_384;
const evKeys = Array.from({ length: 2 * CAP }, (_, i) => `memo:key:${i}`);
const fifo = new Map(evKeys.slice(0, CAP).map((k) => [k, 0]));
const ringMap = new Map(evKeys.slice(0, CAP).map((k) => [k, 0]));
const ring = evKeys.slice(0, CAP);
let fifoAt = CAP;
let ringAt = CAP;
let ringPos = 0;

let sink = 0;
let sinkV;

/**
 * [name, n, fn]: fn(n) runs the operation n times (an async fn for awaited operations).
 * Every loop is its own function so its type feedback is its own.
 */
const TASKS = [
  ['empty loop (counter + sink)', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += i; sink += s; }],
  // the Promise floor
  ['sync call id(x) (may be inlined)', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += id(i); sink += s; }],
  ['await x (x not a promise)', 1000, async (n) => { let s = 0; for (let i = 0; i < n; i++) s += await i; sink += s; }],
  ['await Promise.resolve(x)', 1000, async (n) => { let s = 0; for (let i = 0; i < n; i++) s += await Promise.resolve(i); sink += s; }],
  ['await of one shared resolved promise', 1000, async (n) => { for (let i = 0; i < n; i++) await RESOLVED; sink += n; }],
  ['await asyncFn(x) (an async function call)', 1000, async (n) => { let s = 0; for (let i = 0; i < n; i++) s += await asyncId(i); sink += s; }],
  // memory reads
  ['plain JS array read a[i]', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += plain[i & 1023]; sink += s; }],
  ['Int32Array read (not shared)', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += local[i & 1023]; sink += s; }],
  ['Int32Array read (shared, plain)', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += shared[i & 1023]; sink += s; }],
  ['Atomics.load (shared Int32Array)', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += Atomics.load(shared, i & 1023); sink += s; }],
  ['Float64Array (shared) increment f[i]++', 1000, (n) => { for (let i = 0; i < n; i++) sharedF64[i & 7]++; sink += sharedF64[0]; }],
  ['Atomics.store (shared Int32Array)', 1000, (n) => { for (let i = 0; i < n; i++) Atomics.store(shared, i & 15, i); sink += shared[0]; }],
  ['growable heap byteLength vs view length (beginWrite)', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) if (st.u8.length !== heap.byteLength) s++; sink += s; }],
  ['Atomics.add (shared Int32Array)', 1000, (n) => { for (let i = 0; i < n; i++) Atomics.add(shared, i & 15, 1); sink += shared[0]; }],
  ['lock + unlock (compareExchange + exchange)', 1000, (n) => { for (let i = 0; i < n; i++) { tryLock(st.ci, lockI); unlock(st.ci, lockI); } sink += n; }],
  // clocks
  ['Date.now()', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += Date.now(); sink += s; }],
  ['performance.now()', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += performance.now(); sink += s; }],
  // keys
  ['Map.get, 20-char key (hash cached), 10k entries', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += map.get(keys20[i % MAPN]); sink += s; }],
  ['Map.get, 20-char key built per call', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += map.get(`user:session:${i % 1000 === 0 ? '0000000' : '0000042'}`); sink += s; }],
  ['murmur3Ascii, 20-char key', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += murmur3Ascii(keys20[i % MAPN], HASH_SEED); sink += s; }],
  ['store.setKey (hash + partition), 20-char key', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += st.setKey(keys20[i % MAPN], 0); sink += s; }],
  ['full Map: evict oldest via keys().next() + delete, then set', 100, (n) => { for (let i = 0; i < n; i++) { fifo.delete(fifo.keys().next().value); fifo.set(evKeys[fifoAt], i); fifoAt = (fifoAt + 1) % evKeys.length; } sink += fifo.size; }],
  ['full Map: evict oldest via a ring of keys + delete, then set', 100, (n) => { for (let i = 0; i < n; i++) { const k = evKeys[ringAt]; ringMap.delete(ring[ringPos]); ring[ringPos] = k; ringPos = (ringPos + 1) % CAP; ringMap.set(k, i); ringAt = (ringAt + 1) % evKeys.length; } sink += ringMap.size; }],
  // values
  ['utf8Slice 100 B out of shared memory', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += utf8Slice.call(heapBuf, 1024, 1124).length; sink += s; }],
  ['latin1Slice 100 B out of shared memory', 1000, (n) => { let s = 0; for (let i = 0; i < n; i++) s += latin1Slice.call(heapBuf, 1024, 1124).length; sink += s; }],
  ['latin1Write 100 B into shared memory', 1000, (n) => { for (let i = 0; i < n; i++) writeBuf.latin1Write(value, 4096 + ((i & 15) << 7), 100); sink += writeU8[4096]; }],
  ['JS loop charCodeAt -> shared Uint8Array, 100 B', 1000, (n) => { for (let i = 0; i < n; i++) { const at = 4096 + ((i & 15) << 7); for (let j = 0; j < 100; j++) writeU8[at + j] = value.charCodeAt(j); } sink += writeU8[4096]; }],
  ['latin1Write 16 B into shared memory', 1000, (n) => { for (let i = 0; i < n; i++) writeBuf.latin1Write(v16, 4096 + ((i & 15) << 7), 16); sink += writeU8[4096]; }],
  ['JS loop charCodeAt -> shared Uint8Array, 16 B', 1000, (n) => { for (let i = 0; i < n; i++) { const at = 4096 + ((i & 15) << 7); for (let j = 0; j < 16; j++) writeU8[at + j] = v16.charCodeAt(j); } sink += writeU8[4096]; }],
  // the public API (1,000 keys, 100 B strings: a working set that stays in the CPU caches)
  ['map.getSync (memo hit), 1,000 keys', 1000, (n) => { let r; for (let i = 0; i < n; i++) r = m.getSync(gridKeys[i % KEYS]); sinkV = r; }],
  ['await map.get (memo hit), 1,000 keys', 1000, async (n) => { let r; for (let i = 0; i < n; i++) r = await m.get(gridKeys[i % KEYS]); sinkV = r; }],
  ['await map.set 100 B (overwrite), 1,000 keys', 100, async (n) => { for (let i = 0; i < n; i++) await m.set(gridKeys[i % KEYS], value); sink += n; }],
  ['await map.increment (in place)', 100, async (n) => { for (let i = 0; i < n; i++) await m.increment('counter'); sink += n; }],
];

const w = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
TASKS.push(['postMessage round trip to a worker', 1, () => new Promise((r) => { w.once('message', r); w.postMessage(1); })]);

const best = new Map();
for (let run = 0; run < RUNS; run++) {
  const bench = new Bench({ time: TIME, warmupTime: TIME / 4, throws: true });
  for (const [name, n, fn] of TASKS) bench.add(name, () => fn(n));
  await bench.run();
  for (const [name, n] of TASKS) {
    const ns = (bench.getTask(name).result.latency.p50 * 1e6) / n;
    best.set(name, Math.min(best.get(name) ?? Infinity, ns));
  }
}
await w.terminate();

const width = Math.max(...TASKS.map(([name]) => name.length));
console.log(`Costs per operation, ns (median batch ÷ batch size, best of ${RUNS} passes; Node ${process.version}):`);
for (const [name] of TASKS) {
  const ns = best.get(name);
  console.log(`  ${name.padEnd(width)}  ${(ns >= 100 ? ns.toFixed(0) : ns.toFixed(1)).padStart(8)}`);
}
if (sink === -1 || sinkV === Symbol.for('never')) console.log(sink);
await grid.close();
