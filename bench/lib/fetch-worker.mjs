// Worker of bench/scenarios/fetch.mjs: `ops` read-through reads of Zipf(0.99) keys, with
// `inflight` calls at once; a miss loads from a backend (a function that counts its calls in
// calls[0] and answers after `backendMs`). shardgrid: grid.map(...).fetch(key, loader) on the
// grid the main thread made (one copy for all threads, one load per key across them);
// lru-cache: a private LRUCache per thread with fetchMethod (one load per key per thread).
import { parentPort, workerData } from 'node:worker_threads';
import { LRUCache } from 'lru-cache';
import { attachGrid } from '../../dist/index.js';
import { zipfSampler } from './zipf.mjs';

const { variant, handle, keys, ops, inflight, backendMs, calls, gate, seed, maxEntries } = workerData;
const count = new Int32Array(calls);
const g = new Int32Array(gate);
const VALUE = 'v'.repeat(100);
const backend = async (key) => {
  Atomics.add(count, 0, 1);
  if (backendMs > 0) await new Promise((r) => setTimeout(r, backendMs));
  return `${key}:${VALUE}`;
};
const draw = zipfSampler(keys, 0.99, seed);
const idx = Array.from({ length: ops }, () => `k${draw()}`);
let read;
let close = async () => {};
if (variant === 'shardgrid') {
  const grid = await attachGrid(handle);
  const m = grid.map('fetch-bench');
  read = (k) => m.fetch(k, backend);
  close = () => grid.close();
} else {
  const lru = new LRUCache({ max: maxEntries, fetchMethod: (k) => backend(k) });
  read = (k) => lru.fetch(k);
}
Atomics.add(g, 1, 1);
Atomics.wait(g, 0, 0);
const t0 = performance.now();
let next = 0;
await Promise.all(Array.from({ length: inflight }, async () => {
  while (next < ops) {
    const v = await read(idx[next++]);
    if (typeof v !== 'string') throw new Error('bad value');
  }
}));
const elapsedMs = performance.now() - t0;
parentPort.postMessage({ elapsedMs });
await close();
