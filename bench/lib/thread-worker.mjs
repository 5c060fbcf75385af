// One worker thread of the `threads` scenario. It either attaches to the shared grid (variant
// 'shardgrid') or keeps its own private lru-cache (variant 'lru-cache'), then runs a 90/10
// get/set mix over Zipf keys for a fixed number of operations (so hit rates compare): a get that misses loads the value from the
// "backing store" (a function that builds it) and stores it, as a read-through cache would.
// Start is synchronised through a shared Int32 flag so all threads begin together. With
// workerData.profile the measured run is CPU-profiled (bench/profile.mjs threads) and the V8
// profile goes back in the 'done' message.
import { parentPort, threadId, workerData } from 'node:worker_threads';
import { attachGrid } from '../../dist/index.js';
import { heapUsed } from './gc.mjs';
import { startProfile } from './profiler.mjs';
import { flatValue, makeLru } from './peers.mjs';
import { flags, zipfIndices } from './zipf.mjs';

const { variant, handle, keys, seed, opsTarget, maxMs, warmupMs, writeRatio, go, lruMaxBytes, profile } = workerData;
const SEQ = 1 << 20;
const MASK = SEQ - 1;
const idx = zipfIndices(keys, SEQ, { s: 0.99, seed });
const write = flags(SEQ, writeRatio, seed + 1);
const flag = new Int32Array(go);

/** The backing store: what a miss costs to fill (here: building the 100-byte value). */
const load = (id) => flatValue(`${id}:`);
const heap = heapUsed;

// Runs until `target` operations are done or `ms` have passed, whichever comes first.
async function runGrid(m, prefix, target, ms) {
  let i = (seed * 7919) & MASK;
  let ops = 0, hits = 0, misses = 0, writes = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  for (;;) {
    for (let b = 0; b < 256; b++) {
      const j = (i = (i + 1) & MASK);
      const id = idx[j];
      const k = prefix + id;
      if (write[j] === 1) {
        await m.set(k, load(id));
        writes++;
      } else if ((await m.get(k)) === undefined) {
        misses++;
        await m.set(k, load(id));
      } else hits++;
    }
    ops += 256;
    if (ops >= target || performance.now() >= end) break;
  }
  return { ops, hits, misses, writes, elapsedMs: performance.now() - t0 };
}

function runLru(c, prefix, target, ms) {
  let i = (seed * 7919) & MASK;
  let ops = 0, hits = 0, misses = 0, writes = 0;
  const t0 = performance.now();
  const end = t0 + ms;
  for (;;) {
    for (let b = 0; b < 256; b++) {
      const j = (i = (i + 1) & MASK);
      const id = idx[j];
      const k = prefix + id;
      if (write[j] === 1) {
        c.set(k, load(id));
        writes++;
      } else if (c.get(k) === undefined) {
        misses++;
        c.set(k, load(id));
      } else hits++;
    }
    ops += 256;
    if (ops >= target || performance.now() >= end) break;
  }
  return { ops, hits, misses, writes, elapsedMs: performance.now() - t0 };
}

// In its own function so that no frame of the module body keeps the warm-up cache reachable.
function warmLru() {
  runLru(makeLru({ maxBytes: lruMaxBytes }), 'warm:', Infinity, warmupMs);
}

let result;
if (variant === 'shardgrid') {
  const grid = await attachGrid(handle);
  // Warm the JIT on another map, so the measured run starts with compiled code but a cold cache.
  const warm = grid.map(`threads-warmup-${threadId}`);
  await runGrid(warm, 'warm:', Infinity, warmupMs);
  await warm.clear();
  const heap0 = heap();
  const m = grid.map('threads');
  parentPort.postMessage({ type: 'ready' });
  Atomics.wait(flag, 0, 0);
  const stop = profile ? await startProfile() : undefined;
  result = await runGrid(m, 'key:', opsTarget, maxMs);
  if (stop) result.profile = await stop();
  result.heapDelta = heap() - heap0;
  result.entries = undefined;
  await grid.close();
} else {
  warmLru();
  const heap0 = heap();
  const lru = makeLru({ maxBytes: lruMaxBytes });
  parentPort.postMessage({ type: 'ready' });
  Atomics.wait(flag, 0, 0);
  const stop = profile ? await startProfile() : undefined;
  result = runLru(lru, 'key:', opsTarget, maxMs);
  if (stop) result.profile = await stop();
  result.heapDelta = heap() - heap0;
  result.entries = lru.size;
}
parentPort.postMessage({ type: 'done', ...result });
