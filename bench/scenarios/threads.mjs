// N worker threads sharing ONE grid, against N threads each keeping a private lru-cache over the
// same keys. Aggregate throughput, hit rate (read-through: a miss loads from a backing store and
// stores), and memory held by the cache(s).
import { createGrid } from '../../dist/index.js';
import { scenario } from '../lib/harness.mjs';
import { GRID_MEMORY, GRID_WORKERS } from '../lib/peers.mjs';
import { cpuScaling, runOnce, threadCounts } from '../lib/thread-runs.mjs';

await scenario({
  name: 'threads',
  title: 'threads: one shared grid vs a private lru-cache per thread',
  description: 'N worker threads (1 … availableParallelism, powers of two) each run the same number of operations of a 90/10 get/set mix over Zipf(0.99) keys (each thread its own sequence), starting cold; aggregate ops/s = all operations ÷ time until the last thread is done. A get that misses loads the 100-byte value from a backing store (a function) and stores it. shardgrid: every thread attaches to ONE grid created by the main thread (attachGrid(grid.handle)). lru-cache: every thread keeps its own cache (maxSize = the grid budget). Memory: the grid\'s stats().bytesUsed (one copy, shared), the lru-caches\' heap growth summed over threads (measured in each thread after gc).',
}, async (ctx) => {
  const keys = ctx.quick ? 20_000 : 100_000;
  const opsTarget = ctx.quick ? 150_000 : 1_000_000;
  const maxMs = ctx.quick ? 3_000 : 20_000;
  const warmupMs = ctx.quick ? 150 : 400;
  const rows = [];
  const maxThreads = threadCounts().at(-1);
  let cpuBefore;
  if (maxThreads > 1) {
    ctx.progress('CPU baseline (before)');
    cpuBefore = await cpuScaling(maxThreads, ctx.quick ? 300 : 1000);
  }
  for (const threads of threadCounts()) {
    for (const variant of ['shardgrid', 'lru-cache']) {
      ctx.progress(`${variant}, ${threads} thread${threads > 1 ? 's' : ''}`);
      let grid;
      let handle;
      let emptyBytes = 0;
      if (variant === 'shardgrid') {
        grid = await createGrid({ workers: GRID_WORKERS, memory: GRID_MEMORY });
        handle = grid.handle;
        emptyBytes = grid.stats().bytesUsed;
      }
      try {
        const res = await runOnce({ variant, threads, keys, opsTarget, maxMs, warmupMs, handle });
        const sum = (f) => res.reduce((a, r) => a + f(r), 0);
        // All threads start together on a shared flag; the run lasts until the last one is done.
        const wallMs = Math.max(...res.map((r) => r.elapsedMs));
        const opsPerSec = sum((r) => r.ops) / (wallMs / 1000);
        if (res.some((r) => r.ops < opsTarget)) ctx.warn(`${variant}, ${threads} threads: stopped at the ${maxMs / 1000} s cap before ${opsTarget} operations per thread`);
        const hits = sum((r) => r.hits);
        const misses = sum((r) => r.misses);
        const row = {
          id: `${variant === 'shardgrid' ? 'shardgrid' : 'lru'}-${threads}`,
          name: `${variant === 'shardgrid' ? 'shardgrid (shared)' : 'lru-cache (private)'}, ${threads} thread${threads > 1 ? 's' : ''}`,
          subject: variant,
          group: `t${threads}`,
          sg: variant === 'shardgrid',
          status: 'ok',
          threads,
          opsPerSec,
          perThread: opsPerSec / threads,
          hitRate: hits / (hits + misses),
          misses,
          opsPerThread: opsTarget,
          seconds: wallMs / 1000,
        };
        if (grid) {
          const s = grid.stats();
          row.entries = s.entries;
          row.memory = s.bytesUsed;
          row.growth = s.bytesUsed - emptyBytes;
          row.memoryHow = 'stats().bytesUsed';
          row.evictions = s.evictions;
          if (s.evictions > 0) ctx.warn(`the grid evicted ${s.evictions} entries (${threads} threads)`);
        } else {
          row.entries = sum((r) => r.entries);
          row.memory = sum((r) => r.heapDelta);
          row.growth = row.memory;
          row.memoryHow = 'Σ heap growth';
        }
        row.threadHeapGrowth = sum((r) => r.heapDelta);
        rows.push(row);
      } finally {
        await grid?.close();
      }
    }
  }
  const one = Object.fromEntries(rows.filter((r) => r.threads === 1).map((r) => [r.subject, r.opsPerSec]));
  for (const r of rows) {
    r.scaling = r.opsPerSec / one[r.subject];
    if (!r.sg) {
      const sg = rows.find((x) => x.sg && x.threads === r.threads);
      if (sg) r.ratio = sg.opsPerSec / r.opsPerSec;
    }
  }
  ctx.table({
    id: 'threads',
    title: `threads: aggregate throughput, hit rate and memory (${keys.toLocaleString('en-US')} keys, ${opsTarget.toLocaleString('en-US')} operations per thread, cold start)`,
    kind: 'custom',
    columns: [
      { key: 'name', label: 'variant', fmt: 'text' },
      { key: 'opsPerSec', label: 'aggregate ops/s', fmt: 'rate' },
      { key: 'perThread', label: 'per thread', fmt: 'rate' },
      { key: 'scaling', label: 'vs 1 thread', fmt: 'ratio' },
      { key: 'hitRate', label: 'hit rate', fmt: 'percent' },
      { key: 'misses', label: 'loads', fmt: 'int' },
      { key: 'seconds', label: 'seconds', fmt: 'num1' },
      { key: 'entries', label: 'entries', fmt: 'int' },
      { key: 'memory', label: 'cache memory', fmt: 'bytes' },
      { key: 'ratio', label: 'shardgrid ÷ this', fmt: 'ratio' },
    ],
    rows,
    note: 'The 1- and 2-thread figures are in the same process, one run after the other; shardgrid calls are awaited, lru-cache calls are synchronous. "loads" = misses filled from the backing store.',
    chart: { key: 'opsPerSec', label: 'aggregate ops/s', fmt: 'rate' },
  });
  ctx.table({
    id: 'threads-memory',
    title: 'threads: memory held by the cache(s)',
    kind: 'custom',
    columns: [
      { key: 'name', label: 'variant', fmt: 'text' },
      { key: 'entries', label: 'entries', fmt: 'int' },
      { key: 'memory', label: 'cache memory', fmt: 'bytes' },
      { key: 'growth', label: 'growth over empty', fmt: 'bytes' },
      { key: 'memoryHow', label: 'measured as', fmt: 'text' },
      { key: 'threadHeapGrowth', label: 'Σ thread heap growth', fmt: 'bytes' },
    ],
    note: 'shardgrid: stats().bytesUsed of the one shared store (its fixed tables are sized by the 256 MB budget; "growth" leaves them out); the threads\' own heap growth is listed for completeness. lru-cache: the sum over threads of each thread\'s heap growth after gc (every thread holds its own copy).',
    rows: rows.map((r) => ({ ...r, id: `${r.id}-memory` })),
    chart: { key: 'memory', label: 'cache memory (bytes)', fmt: 'bytes', lowerIsBetter: true },
  });
  ctx.extra.threadCounts = threadCounts();
  if (maxThreads > 1) {
    ctx.progress('CPU baseline (after)');
    const after = await cpuScaling(maxThreads, ctx.quick ? 300 : 1000);
    ctx.extra.cpuScaling = { threads: maxThreads, before: cpuBefore, after };
    ctx.note(`CPU baseline: pure computation in ${maxThreads} threads ran ${cpuBefore.toFixed(2)}x (before the runs) and ${after.toFixed(2)}x (after) as fast as in one thread — what this machine gave at the time (${maxThreads}x is ideal; less means other load shared the cores).`);
  }
});
