// Read-through under a Zipf load from 2 threads (issue 15): shardgrid's map.fetch, where a miss
// is loaded once for all threads, against a private lru-cache per thread with fetchMethod, in the
// same run. Reports backend calls (what a read-through cache is for) and throughput.
import { Worker } from 'node:worker_threads';
import { createGrid } from '../../dist/index.js';
import { scenario } from '../lib/harness.mjs';

const WORKER = new URL('../lib/fetch-worker.mjs', import.meta.url);

await scenario({
  name: 'fetch',
  title: 'fetch: read-through from 2 threads, map.fetch vs lru-cache fetch',
  description: '2 worker threads each read `ops` Zipf(0.99) keys out of 100,000 (each thread its own sequence) through a read-through cache, 32 calls in flight per thread, starting cold. A miss loads a 100-byte value from a backend function that answers after 1 ms and counts its calls. shardgrid: both threads attach ONE grid and call map.fetch (a miss is loaded once for both threads). lru-cache: each thread has its own LRUCache (max = the key count, so nothing is evicted) with fetchMethod. Backend calls are the sum over threads; ops/s = all reads ÷ time until the last thread is done.',
}, async (ctx) => {
  const keys = 100_000;
  const ops = ctx.quick ? 50_000 : 300_000;
  const rows = [];
  for (const variant of ['shardgrid', 'lru-cache']) {
    ctx.progress(variant);
    const grid = variant === 'shardgrid' ? await createGrid({ workers: 2, memory: '256MB' }) : undefined;
    const calls = new SharedArrayBuffer(4);
    const gate = new SharedArrayBuffer(8);
    const g = new Int32Array(gate);
    const workers = [1, 2].map((seed) => new Worker(WORKER, { workerData: { variant, handle: grid?.handle, keys, ops, inflight: 32, backendMs: 1, calls, gate, seed, maxEntries: keys } }));
    const done = workers.map((w) => new Promise((resolve, reject) => {
      w.once('message', resolve);
      w.once('error', reject);
    }));
    while (Atomics.load(g, 1) < workers.length) await new Promise((r) => setTimeout(r, 5));
    Atomics.store(g, 0, 1);
    Atomics.notify(g, 0);
    const res = await Promise.all(done);
    await Promise.all(workers.map((w) => w.terminate()));
    await grid?.close();
    const wall = Math.max(...res.map((r) => r.elapsedMs));
    const backendCalls = new Int32Array(calls)[0];
    rows.push({
      id: variant === 'shardgrid' ? 'sg-fetch' : 'lru-fetch',
      name: variant === 'shardgrid' ? 'shardgrid map.fetch (one grid, 2 threads)' : 'lru-cache fetch (a cache per thread, 2 threads)',
      subject: variant,
      sg: variant === 'shardgrid',
      status: 'ok',
      opsPerSec: (2 * ops) / (wall / 1000),
      backendCalls,
      hitRate: 100 * (1 - backendCalls / (2 * ops)),
      seconds: wall / 1000,
    });
  }
  rows[1].ratio = rows[0].opsPerSec / rows[1].opsPerSec;
  rows[1].callsRatio = rows[0].backendCalls / rows[1].backendCalls;
  ctx.table({
    id: 'fetch-2-threads',
    title: `fetch: 2 threads × ${ops.toLocaleString('en-US')} Zipf(0.99) reads of 100,000 keys, backend 1 ms`,
    kind: 'custom',
    columns: [
      { key: 'name', label: 'read-through cache', fmt: 'text' },
      { key: 'opsPerSec', label: 'reads/s (both threads)', fmt: 'rate' },
      { key: 'backendCalls', label: 'backend calls', fmt: 'int' },
      { key: 'hitRate', label: 'hit rate %', fmt: 'pct' },
      { key: 'seconds', label: 'seconds', fmt: 'num1' },
      { key: 'ratio', label: 'shardgrid ÷ this (reads/s)', fmt: 'ratio' },
      { key: 'callsRatio', label: 'shardgrid ÷ this (backend calls)', fmt: 'ratio' },
    ],
    rows,
    note: 'Cold start: every key is a miss the first time. lru-cache loads a key once per thread that misses it; map.fetch once for both threads (and merges concurrent misses across them).',
    chart: { key: 'opsPerSec', label: 'reads/s', fmt: 'rate' },
  });
});
