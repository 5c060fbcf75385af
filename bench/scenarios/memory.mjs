// Bytes per entry: N entries of 100-byte values (1,000,000; 200,000 with --quick) in the grid,
// lru-cache, Map and Redis.
import { createGrid } from '../../dist/index.js';
import { gc } from '../lib/gc.mjs';
import { scenario } from '../lib/harness.mjs';
import { GRID_WORKERS, flatValue, makeLru } from '../lib/peers.mjs';

const GRID_BUDGET = '512MB';
const CHUNK = 1000;
// Every entry gets its own key and value string (a cache holds what it is given; sharing one
// value object across entries would make the JS heap peers look cheaper than they are).
const keyOf = (i) => `key:${i}`;
const valueOf = (i) => flatValue(`${i}:`);

const rss = () => { gc(); return process.memoryUsage().rss; };
const heap = () => { gc(); return process.memoryUsage().heapUsed; };

function row(id, name, subject, entries, bytes, how, extra = {}) {
  return { id, name, subject, status: 'ok', entries, bytes, perEntry: bytes / entries, how, ...extra };
}

// Each fill is its own function so nothing of it stays reachable from the caller's frame.
async function fillGrid(N) {
  const rss0 = rss();
  const grid = await createGrid({ workers: GRID_WORKERS, memory: GRID_BUDGET });
  const empty = grid.stats().bytesUsed;
  const rssEmpty = rss();
  const m = grid.map('memory');
  const t0 = performance.now();
  for (let i = 0; i < N; i += CHUNK) {
    const e = [];
    for (let j = i; j < Math.min(N, i + CHUNK); j++) e.push([keyOf(j), valueOf(j)]);
    await m.setMany(e);
  }
  const fillMs = performance.now() - t0;
  const s = grid.stats();
  const rss1 = rss();
  await grid.close();
  return { s, empty, rss0, rssEmpty, rss1, fillMs };
}

function fillHeap(N, make) {
  const h0 = heap();
  const t0 = performance.now();
  const c = make();
  for (let i = 0; i < N; i++) c.set(keyOf(i), valueOf(i));
  const fillMs = performance.now() - t0;
  const h1 = heap();
  return { size: c.size, bytes: h1 - h0, fillMs, keep: c };
}

const usedMemory = async (redis) => Number(/used_memory:(\d+)/.exec(await redis.info('memory'))[1]);

await scenario({
  name: 'memory',
  title: 'memory per entry',
  description: 'Bytes per entry for N entries with distinct keys ("key:<i>") and distinct 100-byte string values. shardgrid: grid.stats().bytesUsed (the whole store, including its fixed index and tables sized by the memory budget), its growth over the empty grid, and the process RSS growth (incl. the grid\'s worker threads); lru-cache and Map: JS heap growth after a full gc; Redis: INFO memory used_memory growth. The grid budget is large enough that nothing is evicted.',
}, async (ctx) => {
  const N = ctx.quick ? 200_000 : 1_000_000;
  const rows = [];

  ctx.progress(`shardgrid: ${N.toLocaleString('en-US')} entries`);
  const g = await fillGrid(N);
  if (g.s.entries !== N) ctx.warn(`the grid holds ${g.s.entries} entries, expected ${N}`);
  if (g.s.evictions !== 0) ctx.warn(`the grid evicted ${g.s.evictions} entries: raise GRID_BUDGET`);
  ctx.extra.grid = { budget: GRID_BUDGET, entries: g.s.entries, bytesUsed: g.s.bytesUsed, emptyBytesUsed: g.empty, liveBytes: g.s.liveBytes, evictions: g.s.evictions, fillMs: g.fillMs };
  rows.push(row('shardgrid', 'shardgrid (stats().bytesUsed)', 'shardgrid', g.s.entries, g.s.bytesUsed, 'bytesUsed ÷ entries', { sg: true, evictions: g.s.evictions, fillMs: g.fillMs }));
  rows.push(row('shardgrid-growth', 'shardgrid (bytesUsed growth)', 'shardgrid', g.s.entries, g.s.bytesUsed - g.empty, `bytesUsed − empty grid's ${(g.empty / 2 ** 20).toFixed(1)} MiB`, { evictions: g.s.evictions }));
  rows.push(row('shardgrid-rss', 'shardgrid (process RSS growth)', 'shardgrid', g.s.entries, g.rss1 - g.rss0, 'RSS delta from before createGrid', { evictions: g.s.evictions }));

  ctx.progress(`lru-cache: ${N.toLocaleString('en-US')} entries`);
  let l = fillHeap(N, () => makeLru({ maxBytes: 512 * 2 ** 20 }));
  if (l.size !== N) ctx.warn(`lru-cache holds ${l.size} entries, expected ${N}`);
  rows.push(row('lru', 'lru-cache (heap growth)', 'lru-cache', l.size, l.bytes, 'heapUsed delta after gc', { fillMs: l.fillMs }));
  l = undefined;

  ctx.progress(`Map: ${N.toLocaleString('en-US')} entries`);
  let mp = fillHeap(N, () => new Map());
  rows.push(row('map', 'Map (heap growth)', 'Map', mp.size, mp.bytes, 'heapUsed delta after gc', { fillMs: mp.fillMs }));
  mp = undefined;

  const redis = await ctx.redis();
  if (redis) {
    ctx.progress(`Redis: ${N.toLocaleString('en-US')} entries`);
    await redis.flushall();
    const m0 = await usedMemory(redis);
    const t0 = performance.now();
    for (let i = 0; i < N; i += CHUNK) {
      const args = [];
      for (let j = i; j < Math.min(N, i + CHUNK); j++) args.push(keyOf(j), valueOf(j));
      await redis.mset(args);
    }
    const fillMs = performance.now() - t0;
    const m1 = await usedMemory(redis);
    const size = await redis.dbsize();
    rows.push(row('redis', 'Redis (used_memory growth)', 'redis', size, m1 - m0, 'INFO memory used_memory delta', { fillMs }));
    await redis.flushall();
  } else {
    rows.push({ id: 'redis', name: 'Redis (used_memory growth)', subject: 'redis', status: 'skipped', note: ctx.redisSkip });
  }

  for (const r of rows) if (r.status === 'ok' && !r.sg) r.ratio = rows[0].perEntry / r.perEntry;
  ctx.table({
    id: 'memory',
    title: `memory per entry, ${N.toLocaleString('en-US')} entries of 100-byte strings`,
    kind: 'custom',
    columns: [
      { key: 'name', label: 'store', fmt: 'text' },
      { key: 'entries', label: 'entries', fmt: 'int' },
      { key: 'perEntry', label: 'bytes/entry', fmt: 'num1' },
      { key: 'bytes', label: 'total', fmt: 'bytes' },
      { key: 'fillMs', label: 'fill ms', fmt: 'int' },
      { key: 'how', label: 'measured as', fmt: 'text' },
      { key: 'ratio', label: 'shardgrid ÷ this', fmt: 'ratio' },
    ],
    rows,
    note: `Grid budget ${GRID_BUDGET}, ${g.s.evictions} evictions. "shardgrid ÷ this" = bytes/entry of the bytesUsed row ÷ bytes/entry of the row (above 1: the grid uses more memory). Fill: grid setMany and Redis MSET in chunks of ${CHUNK}; Map and lru-cache set one by one.`,
    chart: { key: 'perEntry', label: 'bytes per entry', fmt: 'num1', lowerIsBetter: true },
  });
});
