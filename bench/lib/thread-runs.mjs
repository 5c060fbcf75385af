// Running the threads scenario's worker threads (bench/lib/thread-worker.mjs), shared by
// bench/scenarios/threads.mjs and bench/profile.mjs, and the CPU baseline that says how much
// parallelism the machine gives at the moment.
import os from 'node:os';
import { Worker } from 'node:worker_threads';
import { GRID_MEMORY_BYTES } from './peers.mjs';

const WORKER = new URL('./thread-worker.mjs', import.meta.url);

/** 1, 2, 4, … up to os.availableParallelism(). */
export function threadCounts() {
  const max = Math.max(1, os.availableParallelism());
  const out = [];
  for (let n = 1; n <= max; n *= 2) out.push(n);
  return out;
}

/**
 * One run of `threads` worker threads of bench/lib/thread-worker.mjs, started together on a shared
 * flag. Resolves to each thread's 'done' message. `profile`: each thread profiles its measured
 * run and sends the V8 profile back (bench/profile.mjs threads).
 */
export async function runOnce({ variant, threads, keys, opsTarget, maxMs, warmupMs, handle, writeRatio = 0.1, profile = false }) {
  const go = new SharedArrayBuffer(4);
  const workers = [];
  const done = [];
  const ready = [];
  for (let t = 0; t < threads; t++) {
    const w = new Worker(WORKER, {
      workerData: { variant, handle, keys, seed: 1000 + t * 17, opsTarget, maxMs, warmupMs, writeRatio, go, lruMaxBytes: GRID_MEMORY_BYTES, profile },
    });
    workers.push(w);
    const failed = new Promise((_, reject) => {
      w.once('error', reject);
      w.once('exit', (code) => reject(new Error(`benchmark thread exited with code ${code}`)));
    });
    failed.catch(() => undefined);
    ready.push(Promise.race([new Promise((r) => w.once('message', r)), failed]));
    done.push(Promise.race([new Promise((r) => w.on('message', (m) => m.type === 'done' && r(m))), failed]));
  }
  await Promise.all(ready);
  const flag = new Int32Array(go);
  Atomics.store(flag, 0, 1);
  Atomics.notify(flag, 0);
  const results = await Promise.all(done);
  await Promise.all(workers.map((w) => new Promise((r) => (w.threadId === -1 ? r() : w.once('exit', r)))));
  return results;
}

// Pure computation in 1 and N threads: how much parallelism the machine gives right now (on a
// shared or throttled machine it can be far below N, and every threads figure with it).
const SPIN = `const { parentPort, workerData } = require('node:worker_threads');
let x = 0, n = 0; const t = performance.now();
while (performance.now() - t < workerData) { for (let i = 0; i < 1e5; i++) x += Math.sqrt(i + (x % 7)); n += 1e5; }
parentPort.postMessage(n / (performance.now() - t) + (x === -1 ? 1 : 0));`;

/** Aggregate rate of pure computation in `threads` threads ÷ the rate of one thread. */
export async function cpuScaling(threads, ms) {
  const rate = async (n) => {
    const r = await Promise.all(Array.from({ length: n }, () => new Promise((resolve, reject) => {
      const w = new Worker(SPIN, { eval: true, workerData: ms });
      w.once('message', resolve);
      w.once('error', reject);
    })));
    return r.reduce((a, b) => a + b, 0);
  };
  const one = await rate(1);
  return (await rate(threads)) / one;
}
