import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../dist/index.js';

const MB = 1024 * 1024;

/** The store's own consistency checks: the page pool, then every partition's bookkeeping. */
/**
 * The store's consistency checks, with every partition's lock held: the virtual nodes evict,
 * compact and expire in the background, and a check that read a partition while one of them was
 * moving its records saw counts and page totals half updated (a clean-clone CI run under load,
 * 2026-11-27: eight "errors" in one partition of a grid whose checks pass under the lock).
 */
async function storeErrors(grid: Grid): Promise<string[]> {
  const { lockAsync, unlock } = await import('../dist/sync/mutex.js');
  const st = (grid as unknown as { store: { partitions: number; ci: Int32Array; lockIndex(p: number): number; check(p: number): string[]; checkHeap(): string[] } }).store;
  const held: number[] = [];
  try {
    for (let p = 0; p < st.partitions; p++) {
      if (!(await lockAsync(st.ci, st.lockIndex(p), 5000))) return [`p${p}: lock not released`];
      held.push(p);
    }
    const errs: string[] = [...st.checkHeap()];
    for (let p = 0; p < st.partitions; p++) errs.push(...st.check(p));
    return errs;
  } finally {
    for (const p of held) unlock(st.ci, st.lockIndex(p));
  }
}

describe('memory budget', () => {
  it('evicts to keep bytesUsed within the budget under a write load of three times the budget', async () => {
    const grid = await createGrid({ workers: 2, memory: '16MB' });
    try {
      const m = grid.map<string>('evict');
      const limit = grid.stats().bytesLimit;
      let written = 0;
      let i = 0;
      let maxUsed = 0;
      while (written < 3 * 16 * MB) {
        const v = String(i % 10).repeat(100 + ((i * 131) % 1900));
        await m.set(`k${i}`, v);
        written += v.length;
        i++;
        if (i % 1000 === 0) maxUsed = Math.max(maxUsed, grid.stats().bytesUsed);
      }
      const s = grid.stats();
      expect(Math.max(maxUsed, s.bytesUsed)).toBeLessThanOrEqual(limit);
      expect(s.evictions).toBeGreaterThan(0);
      expect(s.entries).toBe(i - s.evictions);
      // approximately LRU: the newest entries survive (sampled eviction may take a rare one). Alone
      // this is 0-2 of 1,000; in one loaded CI run it was 11 (2026-11-27; not explained: the
      // virtual nodes that advance the LRU clock may have been starved, so that recent entries tied
      // with older ones). Random replacement in a cache of ~10,500 entries would lose ~47 of the
      // newest 1,000 (1,000 - C(1 - e^(-1000/C))), so 20 still tells approximate LRU from random.
      // (The oldest-keys check below cannot: random replacement keeps ~1 % of them too.)
      let missing = 0;
      for (let k = i - 1000; k < i; k++) {
        const v = await m.get(`k${k}`);
        if (v === undefined) missing++;
        else expect(v).toBe(String(k % 10).repeat(100 + ((k * 131) % 1900)));
      }
      expect(missing).toBeLessThanOrEqual(20);
      // while most of the oldest are gone
      let oldKept = 0;
      for (let k = 0; k < 1000; k++) if ((await m.get(`k${k}`)) !== undefined) oldKept++;
      expect(oldKept).toBeLessThan(100);
      // and large values still fit after the heap filled up
      await m.set('large', 'L'.repeat(200_000));
      expect((await m.get('large'))?.length).toBe(200_000);
      expect(grid.stats().bytesUsed).toBeLessThanOrEqual(limit);
    } finally {
      await grid.close();
    }
  });

  it('a value of many pages fits into a full grid by emptying one window, and evicts about what it needs', { timeout: 120_000 }, async () => {
    // 64 MB: 4 KiB pages, so a 1 MiB value is a run of 256 contiguous pages, and each of the 271
    // partitions pins a page with its hash table. Before, such a write evicted sampled entries all
    // over the heap until 256 freed pages happened to lie side by side: in a full grid it evicted
    // ~85 % of the entries and then failed with GRID_ERR_MEMORY_FULL (found by trying the library).
    const grid = await createGrid({ workers: 2, memory: '64MB' });
    try {
      const small = grid.map<string>('small');
      let i = 0;
      while (grid.stats().evictions < 1000) for (let k = 0; k < 100; k++) small.setSync(`s${i++}`, 'v'.repeat(500));
      for (let j = 0; j < 20_000; j++) small.setSync(`s${i++}`, 'v'.repeat(500));
      const before = grid.stats().entries;
      const big = grid.map<Uint8Array>('big');
      const value = (j: number) => new Uint8Array(MB).fill(j + 1);
      for (let j = 0; j < 10; j++) await big.set(`b${j}`, value(j));
      const after = grid.stats().entries;
      // 10 MiB of values take the room of ~15,000 small entries (~700 B each with their records);
      // allow twice that, against the ~78,000 the old allocation lost at the first write
      expect(before - after - 10).toBeLessThan(30_000);
      let held = 0;
      for (let j = 0; j < 10; j++) {
        const v = await big.get(`b${j}`);
        if (v === undefined) continue;
        held++;
        expect(v.length).toBe(MB);
        expect(v.every((b) => b === j + 1)).toBe(true);
      }
      // 10 of 10 on a quiet machine; under load the virtual nodes' background eviction took up
      // to 3 (7 of 10 beside three busy loops) when it chose the partition holding the most pages
      // (these runs). It now chooses by the age of sampled entries, but these values are written
      // within a tick or two of the small ones, and equal ages still go to the most pages
      expect(held).toBeGreaterThanOrEqual(3);
      expect(grid.stats().bytesUsed).toBeLessThanOrEqual(grid.stats().bytesLimit);
      expect(await storeErrors(grid)).toEqual([]);
    } finally {
      await grid.close();
    }
  });

  it('a run that needs a window moves the entries on it out instead of evicting them: the keys just read stay', { timeout: 60_000 }, async () => {
    // 16 MB: 4 KiB pages, so a 60 KiB value (and every hash table past 2 KiB) is a run of
    // contiguous pages, which a full heap rarely has. Emptying a window evicted every entry on it
    // whatever its age: of 2,000 keys read just before each of 40 such writes, the old code kept
    // 1,606-1,610 here; they are now moved out, and makeRoom's LRU evicts for the room.
    const grid = await createGrid({ workers: 1, memory: '16MB' });
    try {
      const m = grid.map<string>('w');
      const v = 'x'.repeat(100);
      let i = 0;
      while (grid.stats().evictions < 20_000) for (let k = 0; k < 1000; k++) m.setSync(`k${i++}`, v);
      const hot: string[] = [];
      for (let k = 0; hot.length < 2000; k++) {
        const key = `k${(k * 7919) % i}`;
        if (m.getSync(key) !== undefined && !hot.includes(key)) hot.push(key);
      }
      const big = 'y'.repeat(60 * 1024);
      for (let r = 0; r < 40; r++) {
        await new Promise((res) => setTimeout(res, 110)); // a clock tick: the keys read next are the freshest
        for (const k of hot) m.getSync(k);
        m.setSync(`big${r}`, big);
      }
      let kept = 0;
      for (const k of hot) if (m.getSync(k) !== undefined) kept++;
      expect(kept).toBeGreaterThanOrEqual(1930); // 1,962-1,987 now: the rest went to the virtual nodes' background eviction
      expect(await storeErrors(grid)).toEqual([]);
    } finally {
      await grid.close();
    }
  });

  it('values of most of a MiB fit into a full 16 MB grid: a window may hold hash tables, which move', { timeout: 60_000 }, async () => {
    // 16 MB, 4 KiB pages: 271 partitions' tables, each pinning its page. In a /tmp script (fill
    // with 500 B values to 2,000 evictions, then 5 writes of one size) 768 KiB or 1,000 KiB values
    // failed with GRID_ERR_MEMORY_FULL, 0 of 5, with ~20,000 entries there to evict (found by
    // trying RESP APPEND); which size failed changed from run to run, and this test's schedule
    // did not fail on the old code in 6 runs: a regression guard, not a detector. A window's
    // entries now move out (clearWindow), and a small table moves off it with its page.
    for (const size of [640 * 1024, 768 * 1024, 896 * 1024, 1000 * 1024]) {
      const grid = await createGrid({ workers: 1, memory: '16MB' });
      try {
        const m = grid.map<string | Uint8Array>('w');
        for (let i = 0; grid.stats().evictions < 2000; ) for (let k = 0; k < 100; k++, i++) m.setSync(`k${i}`, 'x'.repeat(500));
        for (let r = 0; r < 5; r++) m.setSync(`big${r}`, new Uint8Array(size).fill(r + 1));
        const last = m.getSync('big4') as Uint8Array;
        expect(last.length).toBe(size);
        expect(last.every((b) => b === 5)).toBe(true);
        expect(await storeErrors(grid)).toEqual([]);
      } finally {
        await grid.close();
      }
    }
  });

  it('a large value just written outlives older small entries: later writes evict those first', { timeout: 60_000 }, async () => {
    // 16 MB: 4 KiB pages, so the 256 KiB value is a run of 64 pages in one partition. Eviction
    // used to free pages from the partition holding the most pages, which is that one: the next
    // small writes of any key emptied it, the value just written with it, while hundreds of
    // thousands of older entries stayed (64 MB grid, 1 MiB value: gone after ~1,000 writes).
    const grid = await createGrid({ workers: 2, memory: '16MB' });
    try {
      const m = grid.map<string>('lru');
      const v = 'o'.repeat(100);
      let i = 0;
      while (grid.stats().evictions === 0) for (let k = 0; k < 100; k++) await m.set(`old${i++}`, v);
      for (let k = 0; k < 5000; k++) await m.set(`old${i++}`, v);
      // the LRU clock ticks every 100 ms: let the old entries age by a few ticks
      await new Promise((r) => setTimeout(r, 350));
      const big = 'B'.repeat(256 * 1024);
      await m.set('big', big);
      let lostAfter = -1;
      // ~5,000 records of ~150 B: three times the room of the big value
      for (let k = 0; k < 5000; k++) {
        await m.set(`new${k}`, 'n'.repeat(100));
        if (k % 100 === 99 && lostAfter < 0 && (await m.get('big')) === undefined) lostAfter = k + 1;
      }
      expect(lostAfter).toBe(-1);
      expect((await m.get('big'))?.length).toBe(big.length);
      let oldLeft = 0;
      for (let k = 0; k < i; k++) if (m.getSync(`old${k}`) !== undefined) oldLeft++;
      // room came from the older entries (at least the big value's worth of them went)
      expect(oldLeft).toBeGreaterThan(0);
      expect(oldLeft).toBeLessThan(i - 1500);
      expect(grid.stats().bytesUsed).toBeLessThanOrEqual(grid.stats().bytesLimit);
    } finally {
      await grid.close();
    }
  });

  it('a full grid under churn keeps its pages mostly live: compaction packs sparse pages into fewer instead of evicting', { timeout: 60_000 }, async () => {
    // Eviction takes entries all over a partition's pages; a page is freed only when it empties
    // or compacts. When compaction only ever packed pages that fit into one, the pages of a full
    // grid under churn settled at ~73 % live (64 MB, 100 B values: 277,000 entries held instead
    // of the 349,000 at the first eviction).
    const grid = await createGrid({ workers: 2, memory: '16MB' });
    try {
      const m = grid.map<string>('churn');
      const value = (i: number) => String(i % 10).repeat(40 + ((i * 37) % 400));
      let i = 0;
      // stats() builds every partition's figures: read once per 100 writes (a call per write was most of this test's time)
      while (grid.stats().evictions === 0) for (let k = 0; k < 100; k++) m.setSync(`k${i}`, value(i++));
      const atFirst = grid.stats().entries;
      let written = 0;
      while (written < 3 * 16 * MB) {
        const v = value(i);
        m.setSync(`k${i++}`, v);
        written += v.length;
      }
      const s = grid.stats();
      const live = s.partitions.reduce((a, p) => a + p.liveBytes, 0);
      expect(s.bytesUsed).toBeLessThanOrEqual(s.bytesLimit);
      // 0.79 of the pages live and 0.90-0.91 of the entries at the first eviction kept (3 runs);
      // 0.675-0.679 and 0.764 before
      expect(live / s.bytesUsed).toBeGreaterThan(0.75);
      expect(s.entries).toBeGreaterThan(0.85 * atFirst);
      expect(await storeErrors(grid)).toEqual([]);
      // the newest entries are whole
      for (let k = i - 2000; k < i; k++) {
        const v = m.getSync(`k${k}`);
        if (v !== undefined) expect(v).toBe(value(k));
      }
    } finally {
      await grid.close();
    }
  });

  it('reclaims overwritten and deleted space: churn of ten times the budget never runs out of memory or evicts live data', async () => {
    const grid = await createGrid({ workers: 2, memory: '16MB' });
    try {
      const m = grid.map<string>('churn');
      const keys = 1000;
      const latest = new Map<number, string>();
      let written = 0;
      let n = 0;
      while (written < 10 * 16 * MB) {
        const k = (n * 7919) % keys;
        if (n % 5 === 4) {
          await m.delete(`c${k}`);
          latest.delete(k);
        } else {
          const v = String.fromCharCode(65 + (n % 26)).repeat(64 + ((n * 37) % 8000));
          await m.set(`c${k}`, v);
          latest.set(k, v);
          written += v.length;
        }
        n++;
      }
      const s = grid.stats();
      expect(s.evictions).toBe(0);
      expect(s.bytesUsed).toBeLessThanOrEqual(s.bytesLimit);
      expect(await m.size()).toBe(latest.size);
      for (let k = 0; k < keys; k++) expect(await m.get(`c${k}`)).toBe(latest.get(k));
    } finally {
      await grid.close();
    }
  });

  // Heap offsets were computed as `page << pageShift`, a signed 32-bit shift: from 2 GiB on they
  // came out negative, so a grid of memory '3GB' refused every write past ~2 GB of data with
  // GRID_ERR_MEMORY_FULL ("nothing left to evict") and evicted nothing. Writes ~2.3 GB (the
  // pages are real memory while the test runs).
  it('a budget over 2 GiB stores data past the first 2 GiB: heap offsets stay positive', { timeout: 120_000 }, async () => {
    const grid = await createGrid({ workers: 1, memory: '2560MB' });
    try {
      const m = grid.map<Buffer>('past2g');
      const v = Buffer.alloc(1_000_000, 0x5a);
      const n = 2300;
      for (let i = 0; i < n; i++) {
        v.writeUInt32LE(i, 0);
        v.writeUInt32LE(i, v.length - 4);
        await m.set(`k${i}`, v);
      }
      expect(grid.stats().bytesUsed).toBeGreaterThan(2 ** 31);
      for (let i = 0; i < n; i++) {
        const b = await m.get(`k${i}`);
        expect(b?.length).toBe(v.length);
        expect([b?.readUInt32LE(0), b?.readUInt32LE(v.length - 4)]).toEqual([i, i]);
      }
      expect(grid.stats().evictions).toBe(0);
      expect(await storeErrors(grid)).toEqual([]);
    } finally {
      await grid.close();
    }
  });
});

describe('a value needing a window where hash tables of a run lie (8 MB cut into 271 partitions)', () => {
  // Every table there is a run of pages (two 4 KiB pages, or one), so every window of ~500 KiB
  // holds some. A table's run could not move, and with 30,000 entries there to evict such a write
  // failed ("memory budget too fragmented"; before that "nothing left to evict", found by helper
  // 31, 2026-11-27). Now each table of the window moves to a run outside it (one freed by moving
  // small records off it, when none is free), its owner locked before anything is evicted for
  // the window. One grid for both tests, in this order; the virtual node's timer is a minute
  // away, so that no background eviction changes the counts.
  let grid: Grid;
  let m: ReturnType<Grid['map']>;
  let n = 0;
  const value = (i: number) => `v${i}-${'x'.repeat(94)}`;
  beforeAll(async () => {
    grid = await createGrid({ workers: 1, memory: '8MB', expiryInterval: 60_000 });
    m = grid.map('w');
    // (stats() per 1,000 writes: it builds every partition's figures)
    while (grid.stats().evictions < 25_000) for (let k = 0; k < 1000; k++, n++) m.setSync(`k${n}`, value(n));
  });
  afterAll(async () => {
    await grid.close();
  });

  it('is refused before anything is evicted for it when a table there cannot move (its owner busy)', async () => {
    // A prototype (2026-11-28) evicted for the window first and found out after that a table had
    // nowhere to go: under churn each failed attempt cost thousands of entries. One busy owner
    // now leaves the windows without a table (none here: refused, as before).
    const { tryLock, unlock } = await import('../dist/sync/mutex.js');
    const { PART_BASE, P_STRIDE, P_COUNT, P_TOMBS, P_TABLE_CAP } = await import('../dist/storage/layout.js');
    const st = grid.store as unknown as { partitions: number; ci: Int32Array; kpart: number; lockIndex(p: number): number; setKey(key: string, mapId: number): number };
    // a key whose partition's table takes one more entry without growing: a table that grows takes
    // room in its own partition, and may evict there for it (CI, 2026-11-28: 60 entries gone)
    const mapId = (m as unknown as { id: number }).id;
    const roomy = (q: number): boolean => {
      const b = PART_BASE + q * P_STRIDE;
      return (st.ci[b + P_COUNT] + st.ci[b + P_TOMBS] + 1) * 4 <= st.ci[b + P_TABLE_CAP] * 3;
    };
    let key = '';
    for (let i = 0; key === ''; i++) {
      st.setKey(`big${i}`, mapId);
      if (roomy(st.kpart)) key = `big${i}`;
    }
    const p = st.kpart;
    const held: number[] = [];
    try {
      // every other partition busy: this thread holds its lock
      for (let q = 0; q < st.partitions; q++) if (q !== p && tryLock(st.ci, st.lockIndex(q))) held.push(q);
      expect(held.length).toBe(st.partitions - 1);
      const { entries, evictions } = grid.stats();
      let refused: unknown;
      try {
        m.setSync(key, new Uint8Array(512_000));
      } catch (e) {
        refused = e;
      }
      expect(grid.stats().entries).toBe(entries);
      expect(grid.stats().evictions).toBe(evictions);
      expect(refused).toMatchObject({ code: 'GRID_ERR_MEMORY_FULL', message: expect.stringMatching(/too fragmented for this value: no \d+ KiB of contiguous pages/) });
    } finally {
      for (const q of held) unlock(st.ci, st.lockIndex(q));
    }
  });

  it('fits, its tables moved out of the window first, and every key left reads back its own value', async () => {
    const st = grid.store as unknown as { tableMoves: number };
    m.setSync('big', new Uint8Array(512_000).fill(7));
    const back = m.getSync('big') as Uint8Array;
    expect(back.length).toBe(512_000);
    expect(back.every((b) => b === 7)).toBe(true);
    expect(st.tableMoves).toBeGreaterThan(0);
    // the moved tables find every key they held
    const wrong: string[] = [];
    let kept = 0;
    for (let i = 0; i < n; i++) {
      const v = m.getSync(`k${i}`);
      if (v === undefined) continue;
      kept++;
      if (v !== value(i)) wrong.push(`k${i}`);
    }
    expect(wrong).toEqual([]);
    // ~35,000 entries before; the room cost ~6,500 of them (/tmp script)
    expect(kept).toBeGreaterThan(20_000);
    expect(await storeErrors(grid)).toEqual([]);
  });
});
