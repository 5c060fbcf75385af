// Aggregation next to the data: the grid's compute pool (2 threads) against the same loop over a
// JS Map on the main thread, and against a main-thread loop over the grid's own entries().
// Also: the pool's per-task overhead (a no-op task round trip) and one task per partition vs one
// task per pool thread. Plain timing (median of several runs after a warm-up): an aggregation over
// 1M entries is long-running, tinybench's per-op framing adds nothing here.
//
// Usage: npm run build && node bench/compute.mjs [--quick]
// This file is also the module of the user aggregator (`priceStats`): pool threads import it,
// so the benchmark itself only runs on the main thread.
import { isMainThread } from 'node:worker_threads';

/** A user aggregator: count, sum, min and max of `price`. */
export const priceStats = {
  init: () => ({ n: 0, sum: 0, min: Infinity, max: -Infinity }),
  accumulate(acc, _key, v) {
    const x = v.price;
    acc.n++;
    acc.sum += x;
    if (x < acc.min) acc.min = x;
    if (x > acc.max) acc.max = x;
    return acc;
  },
  combine: (a, b) => ({ n: a.n + b.n, sum: a.sum + b.sum, min: Math.min(a.min, b.min), max: Math.max(a.max, b.max) }),
};

// Not awaited at top level: the main thread imports this module too (to load priceStats), and an
// import of a module still in its top-level await would wait for itself forever.
/** An entry processor: adds `by` to a number entry. */
export function addTo(entry, by) {
  entry.value = (entry.value ?? 0) + by;
  return entry.value;
}

if (isMainThread) main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});

async function main() {
  const { createGrid } = await import('../dist/index.js');
  const { runGroups } = await import('../dist/compute/aggregate.js');
  const { resolveAggregator } = await import('../dist/compute/aggregators.js');

  const quick = process.argv.includes('--quick');
  const N = quick ? 100_000 : 1_000_000;
  const RUNS = quick ? 5 : 7;
  const POOL = 2;

  // this file is also the compute module: registered at start under the name 'bench', named in calls
  const grid = await createGrid({ workers: 2, compute: { workers: POOL, modules: { bench: import.meta.url } }, memory: quick ? '128MB' : '512MB' });
  const gm = grid.map('orders');
  const js = new Map();
  const doc = (i) => ({ id: i, price: (i * 7919) % 1000 / 4, qty: i % 17, sku: `sku-${i % 5000}` });
  for (let i = 0; i < N; i += 10_000) {
    const batch = [];
    for (let j = i; j < Math.min(N, i + 10_000); j++) {
      const d = doc(j);
      batch.push([`order:${j}`, d]);
      js.set(`order:${j}`, d);
    }
    await gm.setMany(batch);
  }

  const median = (xs) => [...xs].sort((a, b) => a - b)[xs.length >> 1];
  async function time(fn) {
    let check;
    await fn(); // warm-up (and, for the pool, thread start and module load)
    const ts = [];
    for (let r = 0; r < RUNS; r++) {
      const t = performance.now();
      check = await fn();
      ts.push(performance.now() - t);
    }
    return { ms: median(ts), check };
  }

  const rows = [];
  const row = (scenario, task, { ms, check }, base) => {
    rows.push({ scenario, task, 'median ms': ms.toFixed(1), 'M entries/s': (N / ms / 1000).toFixed(2), 'vs Map loop': base === undefined ? '—' : `${(base / ms).toFixed(2)}x`, result: typeof check === 'number' ? check.toFixed(0) : JSON.stringify(check) });
    return ms;
  };

  // ── sum over a numeric field ──
  const mapSum = await time(() => {
    let s = 0;
    for (const v of js.values()) s += v.price;
    return s;
  });
  const base1 = row("sum of 'price'", 'Map loop, main thread', mapSum);
  row("sum of 'price'", 'grid entries() loop, main thread', await time(async () => {
    let s = 0;
    for await (const [, v] of gm.entries()) s += v.price;
    return s;
  }), base1);
  row("sum of 'price'", `grid aggregate('sum'), pool of ${POOL}`, await time(() => gm.aggregate('sum', { field: 'price' })), base1);

  // ── a user aggregator ──
  const mapStats = await time(() => {
    let acc = priceStats.init();
    for (const [k, v] of js) acc = priceStats.accumulate(acc, k, v);
    return acc.sum;
  });
  const base2 = row('user aggregator priceStats', 'Map loop, main thread', mapStats);
  const ref = { module: 'bench', name: 'priceStats' };
  row('user aggregator priceStats', `grid aggregate(user), pool of ${POOL}`, await time(async () => (await gm.aggregate(ref)).sum), base2);

  // ── task split: one task per partition vs one per pool thread ──
  const parts = Array.from({ length: grid.store.partitions }, (_, i) => i);
  const sum = await resolveAggregator('sum', grid.modules);
  const perThread = await time(() => runGroups(grid, 'orders', parts, sum, { field: 'price' }, POOL));
  const perPartition = await time(() => runGroups(grid, 'orders', parts, sum, { field: 'price' }, parts.length));
  row("sum of 'price'", `${POOL} tasks (one per pool thread)`, perThread, base1);
  row("sum of 'price'", `${parts.length} tasks (one per partition)`, perPartition, base1);

  console.log(`\n${N.toLocaleString('en-US')} entries (objects of 4 fields), ${grid.store.partitions} partitions, Node ${process.version}, ${RUNS} runs (median)\n`);
  console.table(rows);

  // ── per-task overhead: a no-op task round trip through piscina ──
  const pool = grid.computePool();
  for (let i = 0; i < 500; i++) await pool.run({ kind: 'noop' });
  const K = quick ? 2000 : 10_000;
  let t = performance.now();
  for (let i = 0; i < K; i++) await pool.run({ kind: 'noop' });
  const seq = ((performance.now() - t) * 1000) / K;
  t = performance.now();
  for (let i = 0; i < K; i += 64) await Promise.all(Array.from({ length: 64 }, () => pool.run({ kind: 'noop' })));
  const par = ((performance.now() - t) * 1000) / K;
  // an empty aggregation: the fixed cost of one aggregate call (tasks, attach, resolve, combine)
  const empty = grid.map('empty');
  for (let i = 0; i < 20; i++) await empty.aggregate('count');
  t = performance.now();
  for (let i = 0; i < 200; i++) await empty.aggregate('count');
  const emptyAgg = ((performance.now() - t) * 1000) / 200;
  console.log(`\npool task overhead: no-op round trip ${seq.toFixed(1)} µs sequential, ${par.toFixed(1)} µs each with 64 in flight`);
  console.log(`aggregate('count') over an empty map (${POOL} tasks, ${grid.store.partitions} partition scans): ${emptyAgg.toFixed(0)} µs per call`);
  // ── an entry processor against the built-in increment (both on the main thread, awaited) ──
  const counters = grid.map('counters');
  const inc = { module: 'bench', name: 'addTo' };
  const M = quick ? 20_000 : 100_000;
  const perCall = async (fn) => {
    for (let i = 0; i < 2000; i++) await fn(i);
    const t0 = performance.now();
    for (let i = 0; i < M; i++) await fn(i);
    return ((performance.now() - t0) * 1000) / M;
  };
  const viaCompute = await perCall((i) => counters.compute(`c${i % 1000}`, inc, 1));
  const viaIncrement = await perCall((i) => counters.increment(`i${i % 1000}`, 1));
  console.log(`compute(key, addTo, 1) ${viaCompute.toFixed(2)} µs per call vs increment(key, 1) ${viaIncrement.toFixed(2)} µs (awaited one by one)`);
  console.log(`one task per partition costs ${((perPartition.ms - perThread.ms)).toFixed(1)} ms more per aggregation than one task per thread (${parts.length} vs ${POOL} tasks)`);

  await grid.close();
}
