// Measured costs of the primitives native-notes.md talks about (single thread, this machine):
// a postMessage round trip to a worker, an uncontended lock/unlock, a seqlock read window, a local
// get and set through the public API. Usage: node bench/costs.mjs
import { Worker } from 'node:worker_threads';
import { createGrid } from '../dist/index.js';
import { tryLock, unlock } from '../dist/sync/mutex.js';

const grid = await createGrid({ workers: 1, memory: '64MB' });
const m = grid.map('costs');
const st = grid.store;
const value = 'v'.repeat(100);
for (let i = 0; i < 1000; i++) await m.set(`k${i}`, value);

const per = async (name, n, fn) => {
  for (let i = 0; i < Math.min(n, 10000); i++) await fn(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) await fn(i);
  const ns = Number(process.hrtime.bigint() - t) / n;
  console.log(`${name.padEnd(44)} ${ns.toFixed(0).padStart(7)} ns/op`);
  return ns;
};

const w = new Worker('const { parentPort } = require("node:worker_threads"); parentPort.on("message", (m) => parentPort.postMessage(m));', { eval: true });
await per('postMessage round trip to a worker', 20000, () => new Promise((r) => { w.once('message', r); w.postMessage(1); }));
await w.terminate();
const li = st.lockIndex(0);
const ci = st.ci;
let s = 0;
const sync = (name, n, fn) => {
  for (let i = 0; i < 100000; i++) fn(i);
  const t = process.hrtime.bigint();
  for (let i = 0; i < n; i++) fn(i);
  console.log(`${name.padEnd(44)} ${(Number(process.hrtime.bigint() - t) / n).toFixed(1).padStart(7)} ns/op`);
};
sync('uncontended lock + unlock (CAS + exchange)', 5e6, () => { tryLock(ci, li); unlock(ci, li); });
sync('seqlock read window (2 Atomics.load)', 5e6, () => { const q = st.readBegin(3); s += st.readValid(3, q) ? 1 : 0; });
sync('key encode + hash (setKey, 6-char key)', 5e6, (i) => { s += st.setKey(`k${i % 1000}`, 0); });
sync('local get, sync core (100 B string)', 3e6, (i) => { s += m.getLocal(`k${i % 1000}`).length; });
await per('get through the public API (awaited)', 2e6, (i) => m.get(`k${i % 1000}`));
await per('set through the public API (awaited)', 1e6, (i) => m.set(`k${i % 1000}`, value));
await per('increment through the public API (awaited)', 1e6, () => m.increment('counter'));
console.log(s > 0 ? '' : '-');
await grid.close();
