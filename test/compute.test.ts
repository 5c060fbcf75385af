import { fileURLToPath } from 'node:url';
import { Worker, threadId } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  attachGrid, createGrid, AttachError, ComputeError, GridClosedError, InvalidArgumentError, InvalidOptionError, ModuleLoadError,
  TimeoutError, UnencodableValueError, UnknownModuleError, WrongTypeError,
} from '../dist/index.js';
import type { AggregatorRef, Grid, GridMap } from '../dist/index.js';
import { aggregatePartitions, combineAndFinish } from '../dist/compute/index.js';
import { resolveOptions } from '../dist/config.js';

const PROCS_URL = new URL('./fixtures/compute-procs.mjs', import.meta.url);
const PROCS = PROCS_URL.href;
const WORKER = new URL('./fixtures/compute-worker.mjs', import.meta.url);
/** The registry of the grids below: compute-procs.mjs under the name 'procs'. */
const compute = { modules: { procs: PROCS_URL } };
const proc = (name: string) => ({ module: 'procs', name });
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function runWorker<T>(grid: Grid, job: string, args: Record<string, unknown>): Promise<T> {
  const w = new Worker(WORKER, { workerData: { handle: grid.handle, job, args } });
  return new Promise<T>((resolve, reject) => {
    w.on('message', (m) => (m.error !== undefined ? reject(Object.assign(new Error(m.error.message), m.error)) : resolve(m.result as T)));
    w.once('error', reject);
  });
}

async function rejection(p: Promise<unknown>): Promise<Error & { code?: string; data?: Record<string, unknown> }> {
  try {
    await p;
  } catch (e) {
    return e as Error;
  }
  throw new Error('expected a rejection');
}

describe('entry processors: map.compute', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 2, memory: '64MB', compute });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('passes value undefined for an absent key, stores what the processor assigns and returns its result', async () => {
    const m = grid.map<number>('c-basic');
    expect(await m.compute('a', proc('peek'))).toEqual({ key: 'a', value: undefined, absent: true });
    expect(await m.has('a')).toBe(false); // reading an absent key creates nothing
    expect(await m.compute('a', proc('increment'), 5)).toBe(5);
    expect(await m.compute('a', proc('increment'), 2)).toBe(7);
    expect(await m.get('a')).toBe(7);
  });

  it('leaves the entry untouched when the processor assigns nothing', async () => {
    const m = grid.map<unknown>('c-peek');
    await m.set('k', { deep: [1, 2, 3] });
    expect(await m.compute('k', proc('peek'))).toEqual({ key: 'k', value: { deep: [1, 2, 3] }, absent: false });
    expect(await m.get('k')).toEqual({ deep: [1, 2, 3] });
  });

  it('deletes the key when the processor assigns undefined', async () => {
    const m = grid.map<string>('c-take');
    await m.set('k', 'v');
    expect(await m.compute('k', proc('take'))).toBe('v');
    expect(await m.has('k')).toBe(false);
    expect(await m.size()).toBe(0);
    expect(await m.compute('k', proc('take'))).toBeUndefined(); // absent: nothing to delete
  });

  it('stores an object changed in place once the processor assigns it back', async () => {
    const m = grid.map<number[]>('c-push');
    for (let i = 0; i < 3; i++) await m.compute('list', proc('push'), i);
    expect(await m.get('list')).toEqual([0, 1, 2]);
  });

  it('keeps the TTL when the value is not assigned, and also when a new value is assigned', async () => {
    const m = grid.map<string>('c-ttl');
    await m.set('k', 'v', { ttl: 60_000 });
    await m.compute('k', proc('peek'));
    expect(await m.ttl('k')).toBeGreaterThan(55_000);
    await m.compute('k', proc('replace'), 'w');
    expect(await m.get('k')).toBe('w');
    expect(await m.ttl('k')).toBeGreaterThan(55_000);
  });

  it("gives a key the processor creates the map's default TTL, and treats an expired entry as absent", async () => {
    const m = grid.map<string>('c-ttl-default', { ttl: 30_000 });
    await m.compute('new', proc('replace'), 'x');
    expect(await m.ttl('new')).toBeGreaterThan(25_000);
    await m.set('old', 'gone', { ttl: 5 });
    await sleep(20);
    expect(await m.compute('old', proc('peek'))).toEqual({ key: 'old', value: undefined, absent: true });
    expect(await m.has('old')).toBe(false);
  });

  it('runs the processor on the calling thread', async () => {
    const m = grid.map('c-where');
    expect(await m.compute('k', proc('whereAmI'))).toBe(threadId);
  });

  it('registers a module given as a URL object, a file URL string or an absolute path, and calls name it', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 31, compute: { modules: { a: PROCS_URL, b: PROCS, c: fileURLToPath(PROCS_URL) } } });
    try {
      const m = g.map<number>('c-refs');
      for (const module of ['a', 'b', 'c']) await m.compute('k', { module, name: 'increment' });
      expect(await m.get('k')).toBe(3);
    } finally {
      await g.close();
    }
  });

  it('refuses a module name the grid did not register, and a path or URL given in a call, with GRID_ERR_UNKNOWN_MODULE', async () => {
    const m = grid.map<number>('c-unknown');
    for (const module of ['other', '/nonexistent/dir/procs.mjs', PROCS, fileURLToPath(PROCS_URL), 'data:text/javascript,export const increment = () => 1']) {
      const e = await rejection(m.compute('k', { module, name: 'increment' }));
      expect(e).toBeInstanceOf(UnknownModuleError);
      expect(e).toBeInstanceOf(ModuleLoadError); // a kind of module error: older catch blocks still see it
      expect(e.code).toBe('GRID_ERR_UNKNOWN_MODULE');
      expect(e.message).toContain('options.compute.modules');
    }
    const agg = await rejection(m.aggregate({ module: PROCS, name: 'stats' }));
    expect(agg.code).toBe('GRID_ERR_UNKNOWN_MODULE');
    expect(await m.has('k')).toBe(false);
  });

  it('a grid without registered modules refuses every module name, and built-in aggregators still work', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 31 });
    try {
      const m = g.map<number>('m');
      await m.set('a', 2);
      expect((await rejection(m.compute('a', proc('increment')))).code).toBe('GRID_ERR_UNKNOWN_MODULE');
      expect(await m.aggregate('sum')).toBe(2);
    } finally {
      await g.close();
    }
  });

  it('rejects an unknown export and an export that is not a function with GRID_ERR_MODULE', async () => {
    const m = grid.map<number>('c-load');
    const noExport = await rejection(m.compute('k', proc('doesNotExist')));
    expect(noExport).toBeInstanceOf(ModuleLoadError);
    expect(noExport.message).toContain("no export 'doesNotExist'");
    expect(await rejection(m.compute('k', proc('notAFunction')))).toBeInstanceOf(ModuleLoadError);
    expect(await m.has('k')).toBe(false);
  });

  it('rejects malformed processor references with GRID_ERR_INVALID_ARGUMENT', async () => {
    const m = grid.map('c-args');
    for (const bad of [undefined, 'increment', { module: PROCS_URL, name: 'increment' }, { module: 'procs' }, { module: 'procs', name: '' }, { module: '', name: 'x' }, { module: 42, name: 'x' }]) {
      expect(await rejection(m.compute('k', bad as never))).toBeInstanceOf(InvalidArgumentError);
    }
    expect(await rejection(m.compute(42 as never, proc('peek')))).toBeInstanceOf(InvalidArgumentError);
  });

  it('a processor that throws rejects with GRID_ERR_COMPUTE keeping its error name and message; the entry is unchanged and the next call works', async () => {
    const m = grid.map<string>('c-throws');
    await m.set('k', 'before');
    const e = await rejection(m.compute('k', proc('throws')));
    expect(e).toBeInstanceOf(ComputeError);
    expect(e.code).toBe('GRID_ERR_COMPUTE');
    expect(e.message).toContain('RangeError: no thanks for k');
    expect(e.data).toMatchObject({ errorName: 'RangeError', errorMessage: 'no thanks for k', export: 'throws', module: 'procs', url: PROCS });
    expect(await m.get('k')).toBe('before');
    // the lock was released: a plain write and another processor go through
    await m.set('k', 'after');
    expect(await m.compute('k', proc('replace'), 'again')).toBe('after');
    expect(await m.get('k')).toBe('again');
  });

  it('a processor that stores a function or a Symbol rejects with GRID_ERR_UNENCODABLE_VALUE and the entry is unchanged', async () => {
    const m = grid.map<string>('c-unencodable');
    await m.set('k', 'kept', { ttl: 60_000 });
    expect(await rejection(m.compute('k', proc('storesFunction')))).toBeInstanceOf(UnencodableValueError);
    expect(await rejection(m.compute('k', proc('storesSymbol')))).toBeInstanceOf(UnencodableValueError);
    expect(await rejection(m.compute('absent', proc('storesSymbol')))).toBeInstanceOf(UnencodableValueError);
    expect(await m.get('k')).toBe('kept');
    expect(await m.ttl('k')).toBeGreaterThan(55_000);
    expect(await m.has('absent')).toBe(false);
  });

  it('a result that cannot be encoded rejects with GRID_ERR_UNENCODABLE_VALUE and nothing is stored', async () => {
    const m = grid.map<string>('c-result');
    await m.set('k', 'kept');
    expect(await rejection(m.compute('k', proc('returnsFunction')))).toBeInstanceOf(UnencodableValueError);
    expect(await m.get('k')).toBe('kept');
  });

  it('an async processor rejects with GRID_ERR_COMPUTE and nothing is stored', async () => {
    const m = grid.map<string>('c-async');
    await m.set('k', 'kept');
    const e = await rejection(m.compute('k', proc('isAsync')));
    expect(e).toBeInstanceOf(ComputeError);
    expect(e.message).toContain('must be synchronous');
    expect(await m.get('k')).toBe('kept');
  });

  it('concurrent computes on one thread each see the previous one (no lost update between awaits)', async () => {
    const m = grid.map<number>('c-same-thread');
    const keys = Array.from({ length: 40 }, (_, i) => `k${i}`);
    await Promise.all(keys.flatMap((k) => [m.compute(k, proc('increment'), 1), m.compute(k, proc('increment'), 2)]));
    expect(await m.getMany(keys)).toEqual(keys.map(() => 3));
  });

  it('10,000 increments from the main thread and 3 attached worker threads leave exactly 10,000', async () => {
    for (let round = 0; round < 3; round++) {
      const map = `c-race-${round}`;
      const m = grid.map<number>(map);
      const per = 2500;
      const workers = [0, 1, 2].map(() => runWorker<number>(grid, 'increments', { map, key: 'counter', times: per, window: 8 }));
      for (let i = 0; i < per; i += 8) {
        const batch: Promise<unknown>[] = [];
        for (let j = i; j < Math.min(per, i + 8); j++) batch.push(m.compute('counter', proc('increment'), 1));
        await Promise.all(batch);
      }
      expect(await Promise.all(workers)).toEqual([per, per, per]);
      expect(await m.get('counter')).toBe(10_000);
    }
  });
});

// ── the processor time limit (options.compute.processorTimeoutMs) ──────────────────────────────

describe('entry processors: the time limit', () => {
  it('stops an endless processor after its limit with GRID_ERR_TIMEOUT naming it; the key is unchanged and its partition usable at once', { timeout: 30_000 }, async () => {
    // one partition: every key below shares the runaway's partition lock. (In one process the
    // limit is opt-in: the default is 0, no watchdog; a cluster's default is 2000.)
    expect(resolveOptions({}).compute.processorTimeoutMs).toBe(0);
    expect(resolveOptions({ cluster: { secret: 'x'.repeat(32) } }).compute.processorTimeoutMs).toBe(2000);
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 1, compute: { ...compute, processorTimeoutMs: 2000 } });
    try {
      const m = g.map<unknown>('t-forever');
      await m.set('k', 'before');
      const t0 = Date.now();
      const e = await rejection(m.compute('k', proc('forever')));
      const took = Date.now() - t0;
      expect(e).toBeInstanceOf(TimeoutError);
      expect(e.code).toBe('GRID_ERR_TIMEOUT');
      expect(e.message).toContain("'forever'");
      expect(e.message).toContain("'procs'");
      expect(e.data).toMatchObject({ module: 'procs', export: 'forever', timeoutMs: 2000 });
      expect(took).toBeLessThan(2000 + 5000); // the limit and generous slack
      expect(await m.get('k')).toBe('before');
      // the lock was released: the synchronous form (200 ms lock wait) and a compute of the same key go through
      m.setSync('other', 1);
      expect(await m.compute('k', proc('replace'), 'after')).toBe('before');
      expect(await m.get('k')).toBe('after');
      expect(m.getSync('other')).toBe(1);
    } finally {
      await g.close();
    }
  });

  it('compute.processorTimeoutMs sets the limit (a processor within it completes) and is validated from the rule table', { timeout: 30_000 }, async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 7, compute: { ...compute, processorTimeoutMs: 400 } });
    try {
      const m = g.map<number>('t-limit');
      expect(await m.compute('n', proc('spin'), 20)).toBe(1);
      const e = await rejection(m.compute('n', proc('forever')));
      expect(e.code).toBe('GRID_ERR_TIMEOUT');
      expect(e.data).toMatchObject({ export: 'forever', timeoutMs: 400 });
      expect(await m.compute('n', proc('spin'), 1)).toBe(2);
      // a thread attached by handle has the creating grid's limit, and its watchdog
      const w = await rejection(runWorker(g, 'compute', { map: 't-limit', key: 'n', name: 'forever' }));
      expect(w.code).toBe('GRID_ERR_TIMEOUT');
      expect(w.message).toContain('400 ms');
      expect(await m.compute('n', proc('spin'), 1)).toBe(3);
    } finally {
      await g.close();
    }
    for (const bad of [-1, 1.5, '1000', 2 ** 31]) {
      const e = await rejection(createGrid({ workers: 1, memory: '16MB', compute: { processorTimeoutMs: bad as number } }));
      expect(e).toBeInstanceOf(InvalidOptionError);
      expect(e.message).toContain('options.compute.processorTimeoutMs');
    }
  });
});

// ── aggregations ─────────────────────────────────────────────────────────────────────────────────

interface Doc {
  a?: { b: number };
  n: number;
  tag: string;
  neg: number;
}

const N = 3000;
const doc = (i: number): Doc => ({ ...(i % 10 === 0 ? {} : { a: { b: i * 3 } }), n: i % 7, tag: `t${i % 13}`, neg: -i / 4 });
const num = (i: number): number => ((i * 7919) % 10007) - 5000 + (i % 3) / 8;
const sorted = (xs: unknown[]) => [...xs].sort((x, y) => (String(x) < String(y) ? -1 : String(x) > String(y) ? 1 : 0));

describe('aggregations: map.aggregate in the compute pool', () => {
  let grid: Grid;
  let docs: GridMap<Doc>;
  let nums: GridMap<number>;
  beforeAll(async () => {
    grid = await createGrid({ workers: 2, memory: '64MB', compute });
    docs = grid.map<Doc>('docs');
    nums = grid.map<number>('nums');
    const other = grid.map<number>('other'); // same partitions, another map: must not be counted
    await docs.setMany(Array.from({ length: N }, (_, i) => [`d${i}`, doc(i)] as const));
    await nums.setMany(Array.from({ length: N }, (_, i) => [`n${i}`, num(i)] as const));
    await other.setMany(Array.from({ length: 500 }, (_, i) => [`d${i}`, 1e9] as const));
    await nums.set('expiring', 1e12, { ttl: 5 }); // expired entries are not aggregated
    await sleep(20);
  });
  afterAll(async () => {
    await grid.close();
  });

  const plainNums = () => Array.from({ length: N }, (_, i) => num(i));
  const plainDocs = () => Array.from({ length: N }, (_, i) => doc(i));

  it('count, sum, min, max and distinct over number values match a plain JS computation', async () => {
    const xs = plainNums();
    expect(await nums.aggregate('count')).toBe(N);
    expect(await nums.aggregate<number>('sum')).toBeCloseTo(xs.reduce((a, b) => a + b, 0), 6);
    expect(await nums.aggregate('min')).toBe(Math.min(...xs));
    expect(await nums.aggregate('max')).toBe(Math.max(...xs));
    expect(sorted(await nums.aggregate<number[]>('distinct'))).toEqual(sorted([...new Set(xs)]));
  });

  it('count, sum, min, max and distinct over a dot-path field match a plain JS computation', async () => {
    const ds = plainDocs();
    const ab = ds.filter((d) => d.a !== undefined).map((d) => d.a!.b);
    expect(await docs.aggregate('count', { field: 'a.b' })).toBe(ab.length);
    expect(await docs.aggregate('sum', { field: 'a.b' })).toBe(ab.reduce((a, b) => a + b, 0));
    expect(await docs.aggregate('min', { field: 'a.b' })).toBe(Math.min(...ab));
    expect(await docs.aggregate('max', { field: 'a.b' })).toBe(Math.max(...ab));
    expect(await docs.aggregate<number>('sum', { field: 'neg' })).toBeCloseTo(ds.reduce((a, d) => a + d.neg, 0), 6);
    expect(await docs.aggregate('min', { field: 'neg' })).toBe(Math.min(...ds.map((d) => d.neg)));
    expect(sorted(await docs.aggregate<string[]>('distinct', { field: 'tag' }))).toEqual(sorted([...new Set(ds.map((d) => d.tag))]));
    expect(sorted(await docs.aggregate<number[]>('distinct', { field: 'n' }))).toEqual([0, 1, 2, 3, 4, 5, 6]);
  });

  it('count without a field counts every entry; distinct without a field compares objects by content', async () => {
    expect(await docs.aggregate('count')).toBe(N);
    const shapes = grid.map<unknown>('shapes');
    await shapes.setMany([['a', { x: 1 }], ['b', { x: 1 }], ['c', { x: 2 }], ['d', 'x'], ['e', 'x'], ['f', 3]]);
    const d = await shapes.aggregate<unknown[]>('distinct');
    expect(d).toHaveLength(4);
    expect(d).toEqual(expect.arrayContaining([{ x: 1 }, { x: 2 }, 'x', 3]));
  });

  it('sum, min and max of values that are not numbers reject with GRID_ERR_WRONG_TYPE', async () => {
    expect(await rejection(docs.aggregate('sum'))).toBeInstanceOf(WrongTypeError);
    expect(await rejection(docs.aggregate('max', { field: 'tag' }))).toBeInstanceOf(WrongTypeError);
    expect(await docs.aggregate('count')).toBe(N); // and the pool carries on
  });

  it('an empty map aggregates to 0, undefined or []', async () => {
    const empty = grid.map('empty');
    expect(await empty.aggregate('count')).toBe(0);
    expect(await empty.aggregate('sum')).toBe(0);
    expect(await empty.aggregate('min')).toBeUndefined();
    expect(await empty.aggregate('distinct')).toEqual([]);
    expect(await empty.aggregate({ module: 'procs', name: 'stats' })).toEqual({ n: 0, sum: 0, longestKey: '', mean: undefined });
  });

  it('rejects unknown built-ins and malformed arguments with GRID_ERR_INVALID_ARGUMENT', async () => {
    for (const [agg, arg] of [['avg', undefined], ['sum', { field: '' }], ['sum', { field: 'a..b' }], ['sum', { fld: 'a' }], ['count', 'a.b'], [{ module: '', name: 'stats' }, undefined], [{ module: PROCS_URL, name: 'stats' }, undefined]] as Array<[AggregatorRef, unknown]>) {
      expect(await rejection(docs.aggregate(agg, arg))).toBeInstanceOf(InvalidArgumentError);
    }
  });

  it('a user aggregator runs init/accumulate per task, combine and finish on the caller', async () => {
    const ds = plainDocs();
    const r = await docs.aggregate<{ n: number; sum: number; mean: number; longestKey: string }>({ module: 'procs', name: 'stats' }, { field: 'n' });
    const sum = ds.reduce((a, d) => a + d.n, 0);
    expect(r).toEqual({ n: N, sum, mean: sum / N, longestKey: `d${N - 1}` });
    // no finish: the combined accumulator is the result
    expect(await docs.aggregate({ module: 'procs', name: 'fieldSum' }, { field: 'neg' })).toBeCloseTo(ds.reduce((a, d) => a + d.neg, 0), 6);
  });

  it('user aggregator failures reject with GRID_ERR_MODULE / GRID_ERR_COMPUTE / GRID_ERR_UNENCODABLE_VALUE and the pool serves the next call', async () => {
    const next = async () => expect(await docs.aggregate({ module: 'procs', name: 'stats' })).toMatchObject({ n: 0, longestKey: `d${N - 1}` });
    expect(await rejection(docs.aggregate({ module: '/nonexistent/agg.mjs', name: 'stats' }))).toBeInstanceOf(UnknownModuleError);
    await next();
    expect(await rejection(docs.aggregate({ module: 'procs', name: 'nope' }))).toBeInstanceOf(ModuleLoadError);
    await next();
    expect(await rejection(docs.aggregate({ module: 'procs', name: 'notAnAggregator' }))).toBeInstanceOf(ModuleLoadError);
    await next();
    const thrown = await rejection(docs.aggregate({ module: 'procs', name: 'throwingAggregator' }));
    expect(thrown).toBeInstanceOf(ComputeError);
    expect(thrown.data).toMatchObject({ errorName: 'TypeError', step: 'accumulate' });
    expect(thrown.message).toMatch(/TypeError: bad entry d\d+/);
    await next();
    expect(await rejection(docs.aggregate({ module: 'procs', name: 'unclonableAggregator' }))).toBeInstanceOf(UnencodableValueError);
    await next();
    expect(await rejection(docs.aggregate({ module: 'procs', name: 'stats' }, { field: 'n', fn: () => 1 }))).toBeInstanceOf(InvalidArgumentError);
    await next();
    expect(await docs.aggregate('count')).toBe(N);
    expect(grid.computePool().size).toBe(2);
  });

  it('aggregatePartitions over disjoint partition sets, merged by combineAndFinish, equals the whole aggregation', async () => {
    const all = Array.from({ length: grid.store.partitions }, (_, i) => i);
    const halves = [all.filter((p) => p % 2 === 0), all.filter((p) => p % 2 === 1)];
    for (const [agg, arg] of [['sum', { field: 'a.b' }], ['max', { field: 'neg' }], ['distinct', { field: 'tag' }], [{ module: 'procs', name: 'stats' }, { field: 'n' }]] as Array<[AggregatorRef, unknown]>) {
      const partials = await Promise.all(halves.map((h) => aggregatePartitions(grid, 'docs', h, agg, arg)));
      const merged = await combineAndFinish(grid, agg, partials, arg);
      const whole = await docs.aggregate(agg, arg);
      if (Array.isArray(whole)) expect(sorted(merged as unknown[])).toEqual(sorted(whole));
      else expect(merged).toEqual(whole);
    }
    expect(await rejection(aggregatePartitions(grid, 'docs', [0, 0], 'count'))).toBeInstanceOf(InvalidArgumentError);
    expect(await rejection(aggregatePartitions(grid, 'docs', [grid.store.partitions], 'count'))).toBeInstanceOf(InvalidArgumentError);
  });

  it('a grid attached in a worker thread aggregates with its own pool', async () => {
    const r = await runWorker<number>(grid, 'aggregate', { map: 'docs', aggregator: 'sum', arg: { field: 'n' } });
    expect(r).toBe(plainDocs().reduce((a, d) => a + d.n, 0));
  });

  it("a grid attached in a worker thread runs user aggregators by name through the handle's registry, and refuses other names", async () => {
    const r = await runWorker<{ n: number }>(grid, 'aggregate', { map: 'docs', aggregator: { module: 'procs', name: 'stats' }, arg: { field: 'n' } });
    expect(r.n).toBe(N);
    const e = await rejection(runWorker(grid, 'aggregate', { map: 'docs', aggregator: { module: PROCS, name: 'stats' } }));
    expect((e as { code?: string }).code).toBe('GRID_ERR_UNKNOWN_MODULE');
  });

  it('attachGrid refuses a handle whose registry holds anything but file: URLs', async () => {
    for (const modules of [{ evil: 'data:text/javascript,export default 1' }, { evil: 'https://example.com/x.mjs' }, { 'bad name': PROCS }, 'procs']) {
      expect(await rejection(attachGrid({ ...grid.handle, modules } as never))).toBeInstanceOf(AttachError);
    }
  });

  it('an attached grid on the same thread aggregates, and closing it leaves the member usable', async () => {
    const same = await attachGrid(grid.handle);
    expect(await same.map('docs').aggregate('count')).toBe(N);
    await same.close();
    expect(await docs.aggregate('count')).toBe(N);
  });
});

describe('the compute pool lifecycle', () => {
  it('aggregate after close rejects with GRID_ERR_CLOSED', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 31 });
    const m = g.map<number>('m');
    await m.set('a', 1);
    expect(await m.aggregate('sum')).toBe(1);
    await g.close();
    expect(await rejection(m.aggregate('sum'))).toBeInstanceOf(GridClosedError);
    expect(await rejection(m.compute('a', proc('increment')))).toBeInstanceOf(GridClosedError);
  });

  it('aggregate after close rejects with GRID_ERR_CLOSED when no pool was ever created', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 31 });
    const m = g.map<number>('m');
    await g.close();
    expect(await rejection(m.aggregate('count'))).toBeInstanceOf(GridClosedError);
  });

  it('options.computeWorkers sets the pool size and is validated from the rule table', async () => {
    const g = await createGrid({ workers: 2, memory: '16MB', partitions: 31, computeWorkers: 1 });
    try {
      expect(g.computePool().size).toBe(1);
      await g.map<number>('m').set('a', 2);
      expect(await g.map('m').aggregate('sum')).toBe(2);
    } finally {
      await g.close();
    }
    for (const bad of [0, 1.5, 300, 'two']) {
      const e = await rejection(createGrid({ workers: 1, memory: '16MB', computeWorkers: bad as never }));
      expect(e).toBeInstanceOf(InvalidOptionError);
      expect(e.message).toContain('options.computeWorkers');
    }
  });

  it('options.compute.workers sets the pool size; giving it and options.computeWorkers is refused', async () => {
    const g = await createGrid({ workers: 2, memory: '16MB', partitions: 31, compute: { workers: 1 } });
    try {
      expect(g.computePool().size).toBe(1);
    } finally {
      await g.close();
    }
    const e = await rejection(createGrid({ workers: 1, memory: '16MB', computeWorkers: 1, compute: { workers: 1 } }));
    expect(e).toBeInstanceOf(InvalidOptionError);
    expect(e.message).toContain('options.compute.workers');
  });

  it('options.compute.timeoutMs bounds an aggregation: a runaway user aggregator fails with GRID_ERR_TIMEOUT, its thread is replaced, and the next aggregation runs', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB', partitions: 31, compute: { ...compute, workers: 1, timeoutMs: 2000 } }); // room for a replacement thread to start
    try {
      const m = g.map<number>('runaway');
      await m.setMany(Array.from({ length: 50 }, (_, i) => [`k${i}`, i] as [string, number]));
      const t0 = Date.now();
      const e = await rejection(m.aggregate(proc('runawayAggregator')));
      expect(e.code).toBe('GRID_ERR_TIMEOUT');
      expect(e.data).toMatchObject({ timeoutMs: 2000 });
      expect(Date.now() - t0).toBeLessThan(6000);
      // before: the pool's only thread stayed in the loop and this waited behind it for good
      expect(await m.aggregate('count')).toBe(50);
      expect(await m.aggregate(proc('stats'))).toMatchObject({ n: 50 });
    } finally {
      await g.close();
    }
    for (const bad of [0, -1, 1.5, 2 ** 31, '1000']) {
      const e = await rejection(createGrid({ workers: 1, memory: '16MB', compute: { timeoutMs: bad as number } }));
      expect(e).toBeInstanceOf(InvalidOptionError);
      expect(e.message).toContain('options.compute.timeoutMs');
    }
  });
});
