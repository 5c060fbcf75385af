import { Worker } from 'node:worker_threads';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, attachGrid, AttachError, GridClosedError, GridError } from '../dist/index.js';
import type { Grid, GridMap } from '../dist/index.js';
import { FREE, G_HEAP_LOCK, PG_OWNER, PG_STRIDE } from '../dist/storage/layout.js';
import { lockSync, unlock } from '../dist/sync/mutex.js';

const OPS = new URL('./fixtures/worker-ops.mjs', import.meta.url);
const DIE = new URL('./fixtures/die-holding-lock.mjs', import.meta.url);
const REWRITE = new URL('./fixtures/die-mid-rewrite.mjs', import.meta.url);
const NESTED = new URL('./fixtures/nested-holder.mjs', import.meta.url);
const HOLD = new URL('./fixtures/hold-lock.mjs', import.meta.url);
const HOLD_WORD = new URL('./fixtures/hold-word.mjs', import.meta.url);

/** The store internals the table-move test drives and wraps. */
interface TableMoves {
  ci: Int32Array;
  u8: Uint8Array;
  pageShift: number;
  geo: { pageBase: number };
  tableMoves: number;
  tableRef(q: number): number;
  recordSize(off: number): number;
  heapLock(): void;
  lockIndex(p: number): number;
  beginWrite(p: number): void;
  endWrite(p: number): void;
  moveTablesOut(p: number, first: number, n: number): boolean;
  moveTableRun(p: number, q: number, from: number, to: number): boolean;
}

function run<T>(grid: Grid, job: string, args: Record<string, unknown>): { worker: Worker; done: Promise<T> } {
  const worker = new Worker(OPS, { workerData: { handle: grid.handle, job, args } });
  const done = new Promise<T>((resolve, reject) => {
    worker.on('message', (m) => {
      if ('result' in m) resolve(m.result as T);
    });
    worker.once('error', reject);
  });
  return { worker, done };
}

/** Checks every partition's bookkeeping and the page pool from the main thread. */
async function consistency(grid: Grid): Promise<string[]> {
  const { lockAsync, unlock } = await import('../dist/sync/mutex.js');
  const st = grid.store;
  const errs: string[] = [];
  for (let p = 0; p < st.partitions; p++) {
    if (!(await lockAsync(st.ci, st.lockIndex(p), 5000))) {
      errs.push(`p${p}: lock not released`);
      continue;
    }
    try {
      errs.push(...st.check(p));
    } finally {
      unlock(st.ci, st.lockIndex(p));
    }
  }
  return errs;
}

describe('threads sharing one grid', () => {
  let grid: Grid;
  beforeAll(async () => {
    grid = await createGrid({ workers: 2, memory: '64MB' });
  });
  afterAll(async () => {
    await grid.close();
  });

  it('a worker thread attached by handle sees the same data and its writes are seen by main', async () => {
    const m = grid.map<unknown>('shared');
    await m.set('a', 'from main');
    await m.set('b', { n: 1 });
    const { done } = run<unknown[]>(grid, 'readAndWrite', { keys: ['a', 'b', 'zzz'], tag: 7 });
    expect(await done).toEqual(['from main', { n: 1 }, undefined]);
    expect(await m.get('from-worker')).toEqual({ tid: 7, ok: true });
  });

  it('attachGrid on the same thread gives the same data, and bad handles are refused', async () => {
    const same = await attachGrid(grid.handle);
    await grid.map<string>('shared').set('same-thread', 'yes');
    expect(await same.map<string>('shared').get('same-thread')).toBe('yes');
    await expect(attachGrid({} as never)).rejects.toBeInstanceOf(AttachError);
    await expect(attachGrid({ ...grid.handle, buffers: { control: new SharedArrayBuffer(64), heap: new SharedArrayBuffer(64), access: new SharedArrayBuffer(64) } })).rejects.toBeInstanceOf(AttachError);
    await same.close();
    expect(await grid.map<string>('shared').get('same-thread')).toBe('yes'); // detaching does not close the grid
  });

  it('many calls of one thread in flight at once never write each other\'s keys (main thread and 2 workers at a time)', { timeout: 60_000 }, async () => {
    // Before the fix a call that found its lock free still awaited, and others of its thread ran in
    // between: it then wrote their key (wrong values, duplicate keys), and on a worker two calls
    // on one partition deadlocked until GRID_ERR_LOCK_TIMEOUT.
    const { interleave } = await import('./fixtures/interleave.mjs');
    const workers = ['w1:', 'w2:'].map((prefix) => run<string[]>(grid, 'interleave', { map: 'interleave', prefix }).done);
    expect(await interleave(grid.map('interleave'), 'main:')).toEqual([]);
    for (const problems of await Promise.all(workers)) expect(problems).toEqual([]);
    expect(await consistency(grid)).toEqual([]);
  });

  it('counters incremented concurrently from four threads add up exactly', async () => {
    const keys = ['c0', 'c1', 'c2', 'c3', 'c4'];
    const times = 4000;
    const jobs = [0, 1, 2].map(() => run<number>(grid, 'increment', { keys, times }).done);
    const m = grid.map<number>('counters');
    for (let i = 0; i < times; i++) for (const k of keys) await m.increment(k, 1);
    await Promise.all(jobs);
    for (const k of keys) expect(await m.get(k)).toBe(times * 4);
  });

  it('readers never see a torn value while another thread rewrites it', async () => {
    // [0] stop flag, [1] writes so far, [2] reads so far by the reader threads, [3] readers past
    // their 100th read (on a loaded machine one worker can start seconds after the other)
    const stop = new SharedArrayBuffer(16);
    const progress = new Int32Array(stop);
    const writer = run<number>(grid, 'rewrite', { key: 'hot', until: stop });
    const readers = [0, 1].map(() => run<{ reads: number; torn: number }>(grid, 'readTorn', { key: 'hot', until: stop }));
    // the main thread reads too
    const m = grid.map<string>('torn');
    let mainReads = 0;
    let mainTorn = 0;
    const t = Date.now();
    // at least 2.5 s, and until the race was exercised enough (a loaded machine is slow), at most 30 s
    const enough = () => Atomics.load(progress, 1) >= 1500 && Atomics.load(progress, 2) >= 3000 && Atomics.load(progress, 3) >= 2;
    while (Date.now() - t < 2500 || (!enough() && Date.now() - t < 30_000)) {
      const v = await m.get('hot');
      if (v !== undefined) {
        const bar = v.lastIndexOf('|');
        const len = Number(v.slice(bar + 1));
        if (bar !== len || v.slice(0, bar) !== v[0].repeat(len)) mainTorn++;
      }
      mainReads++;
      if (mainReads % 64 === 0) await new Promise((r) => setImmediate(r));
    }
    Atomics.store(new Int32Array(stop), 0, 1);
    const writes = await writer.done;
    const results = await Promise.all(readers.map((r) => r.done));
    expect(writes).toBeGreaterThan(1000);
    expect(results[0].reads + results[1].reads).toBeGreaterThan(2000);
    for (const r of results) {
      expect(r.reads).toBeGreaterThan(100);
      expect(r.torn).toBe(0);
    }
    expect(mainTorn).toBe(0);
  });

  it('a thread that dies holding a partition lock leaves the grid usable and consistent', async () => {
    const m = grid.map<string>('victim');
    await m.set('before', 'kept');
    const w = new Worker(DIE, { workerData: { handle: grid.handle, key: 'victim-key', mapId: m.id } });
    const code = await new Promise<number>((r) => w.once('exit', r));
    expect(code).toBe(3);
    // The lock was taken over and the partition repaired from the worker's exit event.
    await m.set('victim-key', 'after');
    expect(await m.get('victim-key')).toBe('after');
    expect(await m.get('before')).toBe('kept');
    expect(grid.stats().recoveries).toBeGreaterThanOrEqual(1);
    expect(await consistency(grid)).toEqual([]);
  });

  it('a thread that dies in the middle of an in-place overwrite leaves no torn entry behind', async () => {
    // A same-size overwrite rewrites the record where it is. A thread terminated after it wrote
    // the new length and type but before the new bytes left the key with a msgpack type over the
    // old string's bytes: the repair kept it, and get() and entries() threw msgpackr's untyped
    // "Data read, but end of buffer not reached" for good.
    const m = grid.map<unknown>('rewrite-victim');
    const old = 'o'.repeat(30);
    const next = { a: 'n'.repeat(20), b: 1 }; // msgpack of 28 bytes: the same record size as the 30-byte string
    await m.set('k', old);
    await m.set('other', 'kept');
    expect(await m.get('k')).toBe(old); // memoized by this thread too
    const w = new Worker(REWRITE, { workerData: { handle: grid.handle, map: 'rewrite-victim', key: 'k', value: next } });
    expect(await new Promise<number>((r) => w.once('exit', r))).toBe(4);
    // the write did not complete: the key holds the old value or nothing, never a mix of both
    const got = await m.get('k');
    expect(got === undefined || got === old).toBe(true);
    const listed = new Map<string, unknown>();
    for await (const [k, v] of m.entries()) listed.set(k, v);
    expect(listed.get('k')).toBe(got);
    expect(listed.get('other')).toBe('kept');
    expect(await m.size()).toBe(listed.size);
    await m.set('k', next);
    expect(await m.get('k')).toEqual(next);
    expect(await consistency(grid)).toEqual([]);
  });

  it('a lock held by a worker that an attached worker started is recovered: when it dies, and when Node ends it with its parent', async () => {
    // Only the thread that starts a worker sees it start and exit. A worker's own workers (an
    // attached thread's aggregate pool, or the user's) were seen by nobody that recovered locks:
    // a worker running aggregations, terminated mid-scan, left its pool threads' partition
    // locks taken for good, and every later write of those partitions failed with GRID_ERR_LOCK_TIMEOUT.
    const m = grid.map<string>('nested');
    for (const mode of ['child-dies', 'parent-dies'] as const) {
      const key = `nested-${mode}`;
      grid.store.setKey(key, m.id);
      const p = grid.store.kpart;
      const repairs = () => grid.stats().partitions[p].repairs;
      const before = repairs();
      const recoveries = grid.stats().recoveries;
      const w = new Worker(NESTED, { workerData: { handle: grid.handle, key, mapId: m.id, mode, role: 'parent' } });
      const said = await new Promise<string>((r, j) => {
        w.once('message', r);
        w.once('error', j);
      });
      expect(said).toBe(mode === 'child-dies' ? 'holder exited 3' : 'held');
      await w.terminate();
      await m.set(key, 'after'); // GRID_ERR_LOCK_TIMEOUT when the holder's lock stayed taken
      expect(await m.get(key)).toBe('after');
      expect(repairs()).toBe(before + 1);
      // 'child-dies': its parent, still alive, recovered it; 'parent-dies': the member did
      expect(grid.stats().recoveries).toBe(recoveries + (mode === 'parent-dies' ? 1 : 0));
    }
    expect(await consistency(grid)).toEqual([]);
  });

  it('workers terminated in the middle of writes leave the grid usable and consistent', async () => {
    const m = grid.map<string>('churn');
    for (let round = 0; round < 12; round++) {
      const { worker } = run(grid, 'writeForever', { prefix: `r${round}` });
      await new Promise<void>((r) => worker.once('message', () => r()));
      await new Promise((r) => setTimeout(r, 5 + ((round * 37) % 40)));
      await worker.terminate();
    }
    for (let i = 0; i < 2000; i++) await m.set(`after:${i}`, `v${i}`);
    for (let i = 0; i < 2000; i++) expect(await m.get(`after:${i}`)).toBe(`v${i}`);
    expect(await consistency(grid)).toEqual([]);
    expect(grid.store.checkHeap()).toEqual([]);
  });

  it('a crashed virtual node is restarted and the data stays', async () => {
    const m = grid.map<string>('vnode-crash');
    for (let i = 0; i < 500; i++) await m.set(`k${i}`, `v${i}`);
    const before = grid.stats().workers[0];
    // Reach the virtual node the way a crash would: terminate its thread.
    const vnodes = (grid as unknown as { vnodes: Array<{ worker: Worker }> }).vnodes;
    await vnodes[0].worker.terminate();
    const deadline = Date.now() + 10_000;
    while (grid.stats().workers[0].restarts === before.restarts && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    expect(grid.stats().workers[0].restarts).toBe(before.restarts + 1);
    for (let i = 0; i < 500; i++) expect(await m.get(`k${i}`)).toBe(`v${i}`);
    expect(await consistency(grid)).toEqual([]);
  });
});

/** Keys `prefix + i` (i < count) whose value is not insertRange's: up to 10, as "key -> value". */
async function misread(m: GridMap<string>, prefix: string, count: number, width: number): Promise<string[]> {
  const keys = Array.from({ length: count }, (_, i) => `${prefix}${i}`);
  const values = await m.getMany(keys);
  const wrong: string[] = [];
  keys.forEach((key, i) => {
    if (values[i] !== `${key}=`.padEnd(width, '.') && wrong.length < 10) wrong.push(`${key} -> ${String(values[i])}`);
  });
  return wrong;
}

describe('heap growth while threads insert', () => {
  // Regression: a thread whose views of the growable heap predated another thread's growth could
  // take pages beyond them (takePages must refresh), then throw RangeError writing the record or
  // loop forever in ensureTableRoom holding the partition lock. A 24MB grid grows its heap in
  // steps of 1/16 of its budget, so two threads inserting 90,000 entries (about 18MB with their
  // tables, within the budget: nothing is evicted) make it grow about eleven times per round, each
  // time with both threads taking pages. Without the refresh nearly every round failed.
  it('two threads insert distinct keys: no error, every entry readable, partitions consistent', async () => {
    const count = 45_000;
    const width = 100;
    for (let round = 0; round < 2; round++) {
      const grid = await createGrid({ workers: 2, memory: '24MB' });
      const jobs = [0, 1].map((t) => run<number>(grid, 'insertRange', { map: 'grow', prefix: `r${round}t${t}:`, count, width }));
      const exited = jobs.map((j) => new Promise((r) => j.worker.once('exit', r)));
      let finished = false;
      try {
        let timer: NodeJS.Timeout | undefined;
        const stuck = new Promise<never>((_, reject) => {
          timer = setTimeout(() => reject(new Error(`round ${round}: inserting threads still running after 20 s (stuck holding a partition lock?)`)), 20_000);
        });
        try {
          expect(await Promise.race([Promise.all(jobs.map((j) => j.done)), stuck])).toEqual([count, count]);
        } finally {
          clearTimeout(timer);
        }
        await Promise.all(exited);
        finished = true;
        expect(grid.stats().evictions).toBe(0); // the budget holds every entry, so counts are exact
        const m = grid.map<string>('grow');
        for (let t = 0; t < 2; t++) expect(await misread(m, `r${round}t${t}:`, count, width)).toEqual([]);
        expect(await m.size()).toBe(2 * count);
        expect(grid.stats().entries).toBe(2 * count);
        expect(await consistency(grid)).toEqual([]);
        expect(grid.store.checkHeap()).toEqual([]);
      } finally {
        if (!finished) await Promise.all(jobs.map((j) => j.worker.terminate()));
        await Promise.race([grid.close(), new Promise((r) => setTimeout(r, 5000))]);
      }
    }
  }, 90_000);

  it('the main thread reads entries another thread wrote into heap it grew, on the first read', async () => {
    // Regression: probe refreshed the views when a record lay beyond them but kept checking it
    // through the stale local array, so the first read of such an entry missed (the demo's
    // "main sees the workers' writes" check). Main writes first, so the partitions' tables lie
    // within its views; the worker's records then go into pages its growth adds.
    const grid = await createGrid({ workers: 2, memory: '24MB' });
    try {
      const m = grid.map<string>('grow');
      for (let i = 0; i < 20_000; i++) await m.set(`main:${i}`, `main:${i}=`.padEnd(100, '.'));
      const viewBytes = grid.store.u8.length;
      expect(await run<number>(grid, 'insertRange', { map: 'grow', prefix: 'worker:', count: 20_000, width: 100 }).done).toBe(20_000);
      expect(grid.store.buffers.heap.byteLength).toBeGreaterThan(viewBytes); // the worker grew the heap
      expect(await misread(m, 'worker:', 20_000, 100)).toEqual([]);
      expect(await misread(m, 'main:', 20_000, 100)).toEqual([]);
      expect(grid.stats().misses).toBe(0);
    } finally {
      await grid.close();
    }
  });
});

describe('runs of pages made room for while other threads write', () => {
  it('1 MiB values into a full grid beside a writer and two readers: no torn value, partitions and page pool consistent', { timeout: 120_000 }, async () => {
    // evacuateWindow takes other partitions' locks (tryLock) and evicts their entries on the
    // chosen pages while the workers write and read the same partitions
    const grid = await createGrid({ workers: 2, memory: '32MB' });
    try {
      const small = grid.map<string>('fill');
      for (let i = 0; grid.stats().evictions < 2000; ) for (let k = 0; k < 100; k++, i++) small.setSync(`f${i}`, 'x'.repeat(400));
      const stop = new SharedArrayBuffer(16);
      const writer = run<number>(grid, 'rewrite', { key: 'hot', until: stop });
      const readers = [0, 1].map(() => run<{ reads: number; torn: number }>(grid, 'readTorn', { key: 'hot', until: stop }));
      const big = grid.map<Uint8Array>('big');
      try {
        // the big writes start once the writer thread writes (flag slot 1 counts its rounds): with
        // the fill quick, its thread could still be starting when the 20 writes were done
        const progress = new Int32Array(stop);
        for (const t0 = Date.now(); Atomics.load(progress, 1) === 0; await new Promise((r) => setTimeout(r, 10))) {
          if (Date.now() - t0 > 30_000) throw new Error('the writer thread wrote nothing within 30 s');
        }
        // every write succeeds; what reads back is whole. (Whether a value is still there is not
        // asserted: in a full cache the workers' writes evict, and a partition holding a 256-page
        // run is the first that stealPage asks for a page.)
        for (let j = 0; j < 20; j++) {
          await big.set(`b${j}`, new Uint8Array(1024 * 1024).fill(j + 1));
          const v = await big.get(`b${j}`);
          if (v !== undefined) expect(v.length === 1024 * 1024 && v.every((b) => b === j + 1)).toBe(true);
          for (let k = 0; k < 500; k++) small.setSync(`g${j}:${k}`, 'y'.repeat(400));
        }
      } finally {
        // the workers stop before the grid closes, whatever failed
        Atomics.store(new Int32Array(stop), 0, 1);
      }
      expect(await writer.done).toBeGreaterThan(0);
      for (const r of await Promise.all(readers.map((x) => x.done))) expect(r.torn).toBe(0);
      expect(await consistency(grid)).toEqual([]);
      expect(grid.store.checkHeap()).toEqual([]);
    } finally {
      await grid.close();
    }
  });
});

describe('hash tables that are runs of pages, moved out of a window while other threads read', () => {
  it('readers of fixed keys on another thread never see a wrong value, nor miss a key that is there, while their tables move', { timeout: 60_000 }, async () => {
    // 8 MB in 271 partitions: every table is a run of pages, and every window of a 400-800 KB
    // value holds some, which move out of it (moveTableRun, under the owner's lock inside
    // beginWrite) while two attached threads read their keys without a lock (seqlock). The whole
    // large-write path, end to end; it does not catch a move left outside beginWrite (3 runs of
    // 3 passed such a build: most of these reads are memo hits, which read no table, and a probe
    // that loaded the old place reads it intact unless the freed pages were written over in the
    // nanoseconds it takes): the next test does, with readers that stall inside the probe
    const grid = await createGrid({ workers: 1, memory: '8MB' });
    try {
      const m = grid.map<string | Uint8Array>('w');
      let n = 0;
      // (stats() per 1,000 writes: it builds every partition's figures)
      while (grid.stats().evictions < 25_000) for (let k = 0; k < 1000; k++, n++) m.setSync(`k${n}`, `v${n}-${'x'.repeat(94)}`);
      const st = grid.store as unknown as { tableMoves: number };
      const stop = new SharedArrayBuffer(8);
      const flag = new Int32Array(stop);
      const readers = [0, 1].map((r) => run<{ reads: number; hits: number; wrong: number; back: number }>(grid, 'readFixed', { map: 'w', from: n - 10_000 + r * 5000, to: n - 5000 + r * 5000, until: stop }));
      let ended = false;
      const settled = Promise.allSettled(readers.map((x) => x.done)).then(() => (ended = true));
      const passes = async (k: number) => {
        while (!ended && Atomics.load(flag, 1) < k) await new Promise((res) => setTimeout(res, 5));
      };
      try {
        // both readers under way before the first move
        await passes(2);
        const moves = st.tableMoves;
        for (let j = 0; j < 12; j++) {
          m.setSync(`big${j}`, new Uint8Array(400_000 + (j % 5) * 100_000).fill(j + 1));
          for (let k = 0; k < 500; k++) m.setSync(`f${j}:${k}`, 'y'.repeat(100));
          await new Promise((res) => setImmediate(res));
        }
        expect(st.tableMoves).toBeGreaterThan(moves);
        // and a pass over their keys after the last move
        await passes(Atomics.load(flag, 1) + 2);
      } finally {
        // the readers stop before the grid closes, whatever failed
        Atomics.store(flag, 0, 1);
        await settled;
      }
      for (const r of await Promise.all(readers.map((x) => x.done))) {
        expect(r.wrong).toBe(0);
        // no key read absent that was there all along (these keys are never written again)
        expect(r.back).toBe(0);
        expect(r.hits).toBeGreaterThan(0);
      }
      expect(await consistency(grid)).toEqual([]);
      expect(grid.store.checkHeap()).toEqual([]);
    } finally {
      await grid.close();
    }
  });

  it('a reader stalled between loading its table\'s place and reading its slots, while the table moves and the old pages are written over, reads again: no key read absent, no wrong value', { timeout: 30_000 }, async () => {
    // moveTablesOut as allocRun calls it (the writer's partition locked, inside beginWrite), over
    // a window of one page, the head of a table the readers read: that table moves (under its
    // owner's lock, inside beginWrite) and its old run is zeroed at once, inside the move, under
    // the heap lock while its pages are still free (as the next claim of them would write them
    // over, later). Each read of the two readers (readStalled) stalls in its probe, after the
    // probe loaded the table's place, until the table moved. A move outside its owner's
    // beginWrite/endWrite lets such a read pass its seqlock check with empty slots: key absent.
    const grid = await createGrid({ workers: 1, memory: '4MB', partitions: 64, expiryInterval: 60_000 });
    try {
      const m = grid.map<Uint8Array>('t');
      const partOf = (k: string): number => (m as unknown as { key(k: string): number }).key(k);
      // 4 KiB pages; 600 keys in each of partitions 0-3 (tables of 8 KiB: runs of three pages);
      // partition 63 writes
      const nums: number[] = [];
      for (let i = 0; nums.length < 2400; i++) if (partOf(`t${i}`) < 4) nums.push(i);
      for (const i of nums) {
        const v = new Uint8Array(64).fill(i & 0xff);
        new DataView(v.buffer).setUint32(0, i, true);
        m.setSync(`t${i}`, v);
      }
      const st = grid.store as unknown as TableMoves;
      const move = st.moveTableRun;
      let zeroed = 0;
      st.moveTableRun = function (p, q, from, to) {
        const off = (this.tableRef(q) - 1) * 8;
        const size = this.recordSize(off);
        const moved = move.call(this, p, q, from, to);
        if (!moved || (this.tableRef(q) - 1) * 8 === off) return moved;
        this.heapLock();
        try {
          let free = true;
          for (let g = off >>> this.pageShift; g <= (off + size - 1) >>> this.pageShift; g++) free &&= this.ci[this.geo.pageBase + g * PG_STRIDE + PG_OWNER] === FREE;
          if (free) {
            this.u8.fill(0, off, off + size);
            zeroed++;
          }
        } finally {
          unlock(this.ci, G_HEAP_LOCK);
        }
        return moved;
      };
      const stop = new SharedArrayBuffer(8);
      const flag = new Int32Array(stop);
      const readers = [0, 1].map((r) => run<{ reads: number; absent: number; wrong: number; busy: number; crossed: number }>(grid, 'readStalled', { map: 't', nums: nums.filter((_, k) => k % 2 === r), until: stop }));
      let ended = false;
      const settled = Promise.allSettled(readers.map((x) => x.done)).then(() => (ended = true));
      const moves = st.tableMoves;
      const w = st.lockIndex(63);
      try {
        // round robin over the four tables, a move a millisecond, until the readers' stalls
        // outlived 200 moves (flag[1])
        for (let k = 0; k < 3000 && !ended && Atomics.load(flag, 1) < 200; k++) {
          const head = ((st.tableRef(k % 4) - 1) * 8) >>> st.pageShift;
          expect(lockSync(st.ci, w, 5000)).toBe(true);
          st.beginWrite(63);
          try {
            st.moveTablesOut(63, head, 1);
          } finally {
            st.endWrite(63);
            unlock(st.ci, w);
          }
          await new Promise((res) => setTimeout(res, 1));
        }
      } finally {
        st.moveTableRun = move;
        Atomics.store(flag, 0, 1);
        await settled;
      }
      for (const r of await Promise.all(readers.map((x) => x.done))) {
        // the interleaving this is about happened to each reader, and no read went wrong
        expect(r.crossed).toBeGreaterThan(0);
        expect({ absent: r.absent, wrong: r.wrong }).toEqual({ absent: 0, wrong: 0 });
      }
      expect(st.tableMoves).toBeGreaterThan(moves);
      expect(zeroed).toBeGreaterThan(0);
      expect(nums.filter((i) => m.getSync(`t${i}`)?.[4] !== (i & 0xff))).toEqual([]);
      expect(await consistency(grid)).toEqual([]);
      expect(grid.store.checkHeap()).toEqual([]);
    } finally {
      await grid.close();
    }
  });
});

describe('per-thread hit and miss counters', () => {
  it('stay exact after more than 256 attachments: a thread that attaches again keeps its counter slot, no two live threads share one', async () => {
    // Every attachGrid took the next of 256 counter slots, round robin: the 254th attachment of
    // a worker (a task that attaches per call) shared the main thread's slot, and the two
    // threads' plain increments of one counter lost hits.
    const g = await createGrid({ workers: 1, memory: '16MB' }); // slots: this thread 0, the virtual node 1
    try {
      const m = g.map<string>('hits');
      await m.set('k', 'v');
      const go = new SharedArrayBuffer(4);
      const reads = 300_000;
      const w = run<number>(g, 'reattachThenRead', { map: 'hits', key: 'k', attaches: 253, reads, go }); // + the fixture's own attach = 254
      await new Promise<void>((r) => w.worker.once('message', () => r()));
      const before = g.stats().hits;
      Atomics.store(new Int32Array(go), 0, 1);
      Atomics.notify(new Int32Array(go), 0);
      let mine = 0;
      for (let i = 0; i < reads; i++) if (m.getSync('k') !== undefined) mine++;
      const theirs = await w.done;
      expect(g.stats().hits - before).toBe(mine + theirs);
    } finally {
      await g.close();
    }
  });
});

describe('internal locks held too long', () => {
  it('a write that needs the heap lock and a map that needs the registry lock fail with GRID_ERR_LOCK_TIMEOUT, not a bare Error', async () => {
    const { G_HEAP_LOCK, G_MAP_LOCK } = await import('../dist/storage/layout.js');
    const g = await createGrid({ workers: 1, memory: '16MB', lockTimeout: 300 });
    const m = g.map<string>('first');
    const errorOf = async (f: () => unknown) => {
      try {
        await f();
        return 'no error';
      } catch (e) {
        return e instanceof GridError ? (e.code as string) : `untyped: ${(e as Error).message}`;
      }
    };
    const holding = async (index: number, f: () => unknown) => {
      const flag = new SharedArrayBuffer(8);
      const f32 = new Int32Array(flag);
      const w = new Worker(HOLD_WORD, { workerData: { handle: g.handle, index, flag } });
      try {
        while (Atomics.load(f32, 0) === 0) await new Promise((r) => setTimeout(r, 5));
        return await errorOf(f);
      } finally {
        Atomics.store(f32, 1, 1);
        Atomics.notify(f32, 1);
        await new Promise((r) => w.once('exit', r));
      }
    };
    try {
      // a fresh grid: the first write of a partition takes pages for its table and records
      expect(await holding(G_HEAP_LOCK, () => m.set('k', 'v'))).toBe('GRID_ERR_LOCK_TIMEOUT');
      expect(await holding(G_MAP_LOCK, () => g.map('second'))).toBe('GRID_ERR_LOCK_TIMEOUT');
      await m.set('k', 'v'); // both work once the locks are free
      expect(await g.map<string>('second').get('k')).toBeUndefined();
      expect(await m.get('k')).toBe('v');
    } finally {
      await g.close();
    }
  });
});

describe('after close', () => {
  it('writers waiting for a lock when the grid closes fail at once with GRID_ERR_CLOSED, in the main thread and in workers', async () => {
    // close() wakes every waiter, but the waits went back to sleep: they ended lockTimeout later
    // with GRID_ERR_LOCK_TIMEOUT, as if the lock were the trouble.
    const g = await createGrid({ workers: 1, memory: '16MB', lockTimeout: 5000 });
    const m = g.map<string>('held-at-close');
    const flag = new SharedArrayBuffer(8);
    const holder = new Worker(HOLD, { workerData: { handle: g.handle, key: 'k', mapId: m.id, holdMs: 20_000, flag } });
    const held = new Int32Array(flag);
    try {
      while (Atomics.load(held, 0) === 0) await new Promise((r) => setTimeout(r, 5));
      const waiter = run<{ code: string; ms: number }>(g, 'writeHeldKey', { map: 'held-at-close', key: 'k' });
      await new Promise<void>((r) => waiter.worker.once('message', () => r()));
      const t = performance.now();
      const mainWrite = m.set('k', 'main').then(
        () => 'no error',
        (e: { code?: string }) => e.code,
      );
      await new Promise((r) => setTimeout(r, 100)); // both are asleep on the lock now
      await g.close();
      expect(await mainWrite).toBe('GRID_ERR_CLOSED');
      const w = await waiter.done;
      expect(w.code).toBe('GRID_ERR_CLOSED');
      expect(performance.now() - t).toBeLessThan(2500); // not the 5 s lockTimeout
    } finally {
      Atomics.store(held, 1, 1);
      Atomics.notify(held, 1);
      await new Promise((r) => holder.once('exit', r));
    }
  });

  it('attaching to a closed grid fails with GRID_ERR_CLOSED', async () => {
    const g = await createGrid({ workers: 1, memory: '16MB' });
    const h = g.handle;
    await g.close();
    await expect(attachGrid(h)).rejects.toBeInstanceOf(GridClosedError);
  });
});
