import { describe, expect, it } from 'vitest';
import { createGrid, type GridMap } from '../dist/index.js';
import { CLOCK_MASK, E_FLAGS, E_KEYMAP, E_VALLEN, F_LIVE, G_CLOCK, G_HEAP_LOCK, P_LIVE_BYTES, P_OPEN_PAGE, P_PAGES, P_STRIDE, PART_BASE, PG_LIVE, PG_STRIDE, PG_USED } from '../dist/storage/layout.js';
import { holderOf, tryLock, unlock } from '../dist/sync/mutex.js';
import { threadId } from 'node:worker_threads';

/** The store internals these tests drive (compaction, allocation, the table and the views). */
interface Internals {
  ci: Int32Array;
  u8: Uint8Array;
  u32: Uint32Array;
  acc: Uint16Array;
  kpart: number;
  pageShift: number;
  geo: { pageBase: number };
  setKey(key: string, mapId: number): number;
  lockIndex(p: number): number;
  beginWrite(p: number): void;
  endWrite(p: number): void;
  alloc(p: number, size: number): number;
  compact(p: number, need: number): boolean;
  check(p: number): string[];
  probe(p: number, mapId: number): number;
  partitions: number;
  releaseOnePage(q: number): boolean;
  compactionVictims(p: number, need: number): number[] | null;
  evictSampled(p: number, rounds: number): number;
  compactShort: number;
  releaseInBackground(among: readonly number[]): boolean;
  victimOrder(p: number, among: readonly number[] | null): number[];
  primaryEvictions(): number;
  tickClock(): void;
}

/** `n` keys of map `mapId` whose partition is `p`, named prefix + a number. */
function keysOf(st: Internals, p: number, mapId: number, n: number, prefix: string): string[] {
  const out: string[] = [];
  for (let i = 0; out.length < n; i++) {
    st.setKey(`${prefix}${i}`, mapId);
    if (st.kpart === p) out.push(`${prefix}${i}`);
  }
  return out;
}

/** fn() under q's lock, inside beginWrite (as the store's writers call what it tests). */
function writing<T>(st: Internals, q: number, fn: () => T): T {
  const li = st.lockIndex(q);
  expect(tryLock(st.ci, li)).toBe(true);
  st.beginWrite(q);
  try {
    return fn();
  } finally {
    st.endWrite(q);
    unlock(st.ci, li);
  }
}

/** st.check(p) under p's lock. */
function checked(st: Internals, p: number): string[] {
  const li = st.lockIndex(p);
  expect(tryLock(st.ci, li)).toBe(true);
  try {
    return st.check(p);
  } finally {
    unlock(st.ci, li);
  }
}

/**
 * A one-thread 16 MB grid, its map `name` and the partition of the key 'seed' there, for `fn`.
 * `quiet`: the virtual node's timer (clock, expiry, background eviction) does not run during `fn`
 * (its first tick is a minute away), so that it neither holds a partition's lock the test takes
 * nor frees pages the test counts.
 */
async function inPartition(name: string, fn: (m: GridMap<string>, st: Internals, mapId: number, p: number) => Promise<void> | void, quiet = false): Promise<void> {
  const grid = await createGrid({ workers: 1, memory: '16MB', ...(quiet ? { expiryInterval: 60_000 } : {}) });
  try {
    const m = grid.map<string>(name);
    const st = grid.store as unknown as Internals;
    const mapId = (m as unknown as { id: number }).id;
    st.setKey('seed', mapId);
    await fn(m, st, mapId, st.kpart);
  } finally {
    await grid.close();
  }
}

describe('compaction', () => {
  it('moves every live entry of a page whose headers do not tile it (left by a writer that died mid-allocation)', async () => {
    await inPartition('compact', (m, st, mapId, p) => {
      const value = (k: string) => k.padEnd(100, '.');
      // every key here is at most 8 bytes: each record is 32 + 8 + 104 = 144 bytes
      const first = keysOf(st, p, mapId, 10, 'a');
      for (const k of first) m.setSync(k, value(k));
      // 64 bytes allocated and never written, as a writer that died mid-allocation leaves them
      // (the repair recounts the live bytes from the table, not the page's bump offset). The old
      // bytes there can look like a live record's header: here one whose size (208) runs over the
      // next record, so a walk of the page by headers steps over that record.
      const li = st.lockIndex(p);
      expect(tryLock(st.ci, li)).toBe(true);
      st.beginWrite(p);
      const off = st.alloc(p, 64);
      st.u32[(off + E_KEYMAP) >>> 2] = (mapId << 16) >>> 0;
      st.u32[(off + E_VALLEN) >>> 2] = 208 - 32;
      st.u8[off + E_FLAGS] = F_LIVE;
      st.ci[st.geo.pageBase + (off >>> st.pageShift) * PG_STRIDE + PG_LIVE] -= 64;
      st.ci[PART_BASE + p * P_STRIDE + P_LIVE_BYTES] -= 64;
      st.endWrite(p);
      unlock(st.ci, li);
      const second = keysOf(st, p, mapId, 10, 'b');
      for (const k of second) m.setSync(k, value(k));
      // the first record after the garbage is second[0]'s: on the same page, right after it
      const stepped = second[0];
      // thin the page out so that compaction takes it (live bytes under half a page; the
      // partition's table lies there too)
      const gone = [...first.slice(0, 9), ...second.slice(5)];
      const kept = [first[9], ...second.slice(0, 5)];
      for (const k of gone) m.deleteSync(k);
      expect(tryLock(st.ci, li)).toBe(true);
      st.beginWrite(p);
      let moved: boolean;
      try {
        moved = st.compact(p, 64); // room for a 64-byte record: copies the one page into a fresh one
      } finally {
        st.endWrite(p);
        unlock(st.ci, li);
      }
      expect(moved).toBe(true);
      expect(checked(st, p)).toEqual([]);
      expect(kept).toContain(stepped);
      for (const k of kept) expect(m.getSync(k)).toBe(value(k));
      for (const k of gone) expect(m.getSync(k)).toBeUndefined();
    });
  });

  it('keeps the open page, and its room, for the next records: it neither copies it away nor swaps it for a page it filled', async () => {
    await inPartition('open', (m, st, mapId, p) => {
      const value = (k: string) => k.padEnd(100, '.');
      const openPage = () => st.ci[PART_BASE + p * P_STRIDE + P_OPEN_PAGE];
      // ~4 pages of 144-byte records (4 KiB pages), two of every three deleted: sparse pages to
      // compact; then records until the partition takes a fresh open page, which holds one: the
      // sparsest page of all by live bytes, and the roomiest
      const keys = keysOf(st, p, mapId, 400, 'o');
      let n = 0;
      for (; n < 120; n++) m.setSync(keys[n], value(keys[n]));
      for (let i = 0; i < 120; i++) if (i % 3 !== 0) m.deleteSync(keys[i]);
      for (const before = openPage(); openPage() === before; n++) m.setSync(keys[n], value(keys[n]));
      const open = openPage();
      const used = st.ci[st.geo.pageBase + open * PG_STRIDE + PG_USED];
      expect(used).toBe(144);
      const li = st.lockIndex(p);
      expect(tryLock(st.ci, li)).toBe(true);
      st.beginWrite(p);
      try {
        expect(st.compact(p, 0)).toBe(true); // pages went back to the pool
      } finally {
        st.endWrite(p);
        unlock(st.ci, li);
      }
      expect(st.ci[PART_BASE + p * P_STRIDE + P_OPEN_PAGE]).toBe(open);
      expect(st.ci[st.geo.pageBase + open * PG_STRIDE + PG_USED]).toBe(used);
      expect(checked(st, p)).toEqual([]);
      for (let i = 0; i < n; i++) expect(m.getSync(keys[i])).toBe(i < 120 && i % 3 !== 0 ? undefined : value(keys[i]));
    });
  });

  // A record under 64 bytes shares its unit of the access map with the next record; compaction
  // copied each record's stamp to its new unit in turn, so the later one's replaced the earlier's
  it("keeps a small record's access stamp when the record moved after it lands in the same unit of the access map", async () => {
    await inPartition(
      'stamps',
      (m, st, mapId, p) => {
        // triples of a hot record (32 + 8 + 8 = 48 bytes), a cold one (144) and one deleted below:
        // packed by the compaction as hot, cold, hot, cold..., each cold one starts in its hot one's unit
        const hot = keysOf(st, p, mapId, 40, 'h');
        const cold = keysOf(st, p, mapId, 40, 'c');
        const gone = keysOf(st, p, mapId, 40, 'g');
        for (let i = 0; i < 40; i++) {
          m.setSync(hot[i], 'hot');
          m.setSync(cold[i], cold[i].padEnd(100, '.'));
          m.setSync(gone[i], gone[i].padEnd(100, '.'));
        }
        for (const k of gone) m.deleteSync(k);
        // 5 s later (the clock is the test's: the virtual node's timer is a minute away) the hot keys are read
        const read = (st.ci[G_CLOCK] + 50) & CLOCK_MASK;
        st.ci[G_CLOCK] = read;
        for (const k of hot) expect(m.getSync(k)).toBe('hot');
        const where = (k: string): number => {
          st.setKey(k, mapId);
          return st.probe(p, mapId);
        };
        const before = hot.map(where);
        expect(writing(st, p, () => st.compact(p, 0))).toBe(true);
        const after = hot.map(where);
        const moved = hot.filter((_, i) => after[i] !== before[i]);
        expect(moved.length).toBeGreaterThan(20);
        // every hot record moved still reads as accessed at `read` (the old code: the cold record's write tick)
        for (const k of moved) expect(st.acc[where(k) >>> 6], k).toBe(read);
        expect(checked(st, p)).toEqual([]);
      },
      true,
    );
  });
});

describe('making room', () => {
  it('evicts from a partition only while compacting its pages could not free one, and asks whether it can only once evictions freed what it fell short by', async () => {
    await inPartition('room', (m, st, mapId, p) => {
      // a full grid whose pages are as mixed as they stay: fresh keys past the first evictions
      for (let i = 0; i < 250_000; i++) m.setSync(`k${i}`, String(i % 10).repeat(100));
      const ask = st.compactionVictims;
      const evict = st.evictSampled;
      let asks = 0;
      let rounds = 0;
      let couldCompact = 0;
      st.compactionVictims = (q, need) => {
        asks++;
        return ask.call(st, q, need);
      };
      st.evictSampled = (q, r) => {
        rounds++;
        // the answer compaction would give now (asking has no effect but on its scratch)
        const short = st.compactShort;
        if (ask.call(st, q, 0) !== null) couldCompact++;
        st.compactShort = short;
        return evict.call(st, q, r);
      };
      try {
        for (let k = 0; k < 6; k++) expect(writing(st, p, () => st.releaseOnePage(p))).toBe(true);
      } finally {
        st.compactionVictims = ask;
        st.evictSampled = evict;
      }
      expect(couldCompact).toBe(0);
      // it asked before every round of 4 evictions, and once more for the compaction that freed
      // the page (asks = rounds + 6), until 2026-11-27
      expect(rounds).toBeGreaterThan(20);
      expect(asks).toBeLessThan(rounds);
      expect(checked(st, p)).toEqual([]);
    }, true);
  });
});

describe("the virtual nodes' background eviction", () => {
  it('takes no entry used within two clock ticks, and older ones while keys read since stay', async () => {
    await inPartition('background', (m, st) => {
      // a full grid (the virtual node's timer is off: its clock stays at 0, and nothing runs in the
      // background but what the test calls)
      for (let i = 0; i < 250_000; i++) m.setSync(`k${i}`, String(i % 10).repeat(100));
      const all = Array.from({ length: st.partitions }, (_, q) => q);
      const evicted = st.primaryEvictions();
      expect(evicted).toBeGreaterThan(0);
      // every entry is at age 0: nothing is taken
      expect(st.releaseInBackground(all)).toBe(false);
      expect(st.primaryEvictions()).toBe(evicted);
      // (the rule before: the oldest candidate emptied a page at no floor, ages 0 included)
      const q = st.victimOrder(-1, all)[0];
      expect(writing(st, q, () => st.releaseOnePage(q))).toBe(true);
      expect(st.primaryEvictions()).toBeGreaterThan(evicted);
      // three ticks on, 5,000 keys are read (age 0 again); the rest are older than the floor
      for (let t = 0; t < 3; t++) st.tickClock();
      const hot: string[] = [];
      for (let i = 249_999; hot.length < 5000; i--) if (m.getSync(`k${i}`) !== undefined) hot.push(`k${i}`);
      const before = st.primaryEvictions();
      let freed = 0;
      while (freed < 200 && st.releaseInBackground(all)) freed++;
      expect(freed).toBe(200);
      expect(st.primaryEvictions()).toBeGreaterThan(before);
      for (const k of hot) expect(m.getSync(k), k).toBe(String(Number(k.slice(1)) % 10).repeat(100));
    }, true);
  });
});

describe('recovery after a thread died holding a partition lock', () => {
  it('repairs the partition under the heap lock, as every change of the free-page count is made', async () => {
    // repair frees the pages nothing references and adds them to the free count; without the heap
    // lock another thread's claim or release at that moment was lost from the count (CI,
    // 2026-11-28: "340 free pages recorded, 339 in the page table")
    await inPartition('recover', (m, st, mapId, p) => {
      for (let i = 0; i < 50; i++) m.setSync(`r${i}`, 'x'.repeat(100));
      const s = st as unknown as Internals & { recoverDeadThread(tid: number): number[]; repair(q: number): void };
      const dead = 250; // a thread id no thread of this process has
      Atomics.store(st.ci, st.lockIndex(p), (dead + 1) << 1); // as its lock word would be
      const repair = s.repair;
      const heldBy: number[] = [];
      s.repair = function (q: number) {
        heldBy.push(holderOf(st.ci, G_HEAP_LOCK));
        return repair.call(this, q);
      };
      try {
        expect(s.recoverDeadThread(dead)).toEqual([p]);
      } finally {
        s.repair = repair;
      }
      expect(heldBy).toEqual([threadId]);
      expect(holderOf(st.ci, G_HEAP_LOCK)).toBe(-1);
      expect(checked(st, p)).toEqual([]);
      for (let i = 0; i < 50; i++) expect(m.getSync(`r${i}`)).toBe('x'.repeat(100));
    }, true);
  });
});

describe("a partition's hash table", () => {
  it('finds every present key and no deleted one through random inserts and deletes in one partition (tombstones turned back into empty slots)', async () => {
    await inPartition('table', async (m, st, mapId, p) => {
      // 200 keys of one partition: its table grows to a few hundred slots, and keys share probe runs
      const keys = keysOf(st, p, mapId, 200, 't');
      const model = new Map<string, string>();
      let seed = 12345;
      const rand = (n: number) => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % n);
      for (let op = 0; op < 20_000; op++) {
        const k = keys[rand(keys.length)];
        if (rand(3) === 0) {
          expect(m.deleteSync(k)).toBe(model.delete(k));
        } else {
          const v = `${k}:${op}`;
          m.setSync(k, v);
          model.set(k, v);
        }
        if (op % 500 === 499) {
          for (const key of keys) expect(m.getSync(key)).toBe(model.get(key));
          expect(checked(st, p)).toEqual([]);
        }
      }
      expect(await m.size()).toBe(model.size);
    });
  });
});

describe('an insert', () => {
  it('probes its partition\'s table once when no room had to be made (it probed again after allocating before)', async () => {
    await inPartition('probes', (m, st, mapId, p) => {
      m.setSync('seed', 'x'); // the partition's first entry, which makes its table
      const [fresh] = keysOf(st, p, mapId, 1, 'fresh');
      const probe = st.probe;
      let probes = 0;
      st.probe = (p, mapId) => {
        probes++;
        return probe.call(st, p, mapId);
      };
      try {
        m.setSync(fresh, 'a value');
        expect(probes).toBe(1);
        probes = 0;
        m.setSync(fresh, 'a longer value'); // another size: a new record, the old one freed
        expect(probes).toBe(1);
      } finally {
        st.probe = probe;
      }
      expect(m.getSync(fresh)).toBe('a longer value');
      expect(checked(st, p)).toEqual([]);
    });
  });

  it('into a full grid finds its key where it put it, whatever the room it made evicted or moved', async () => {
    await inPartition('full', (m, st) => {
      // values of a few sizes, so that overwrites of present keys take new records as well
      const value = (i: number) => String(i % 10).repeat(60 + (i % 4) * 40);
      const wrong: string[] = [];
      for (let i = 0; i < 150_000; i++) {
        m.setSync(`k${i}`, value(i));
        if (i >= 50 && i % 7 === 3) {
          // a present key of another size: its old record may be evicted by the room made for it
          const k = i - 50;
          m.setSync(`k${k}`, value(k + 1));
          if (m.getSync(`k${k}`) !== value(k + 1)) wrong.push(`k${k}`);
        }
        if (m.getSync(`k${i}`) !== value(i)) wrong.push(`k${i}`);
      }
      expect(wrong).toEqual([]);
      // the grid was full: the oldest went. Eviction samples, so a few may be left (k0 alone was,
      // once, under a clean-clone CI run's load; 0-12 of the first 1,000 in local runs)
      let oldest = 0;
      for (let k = 0; k < 1000; k++) if (m.getSync(`k${k}`) !== undefined) oldest++;
      expect(oldest).toBeLessThan(50);
      const errs: string[] = [];
      for (let p = 0; p < st.partitions; p++) errs.push(...checked(st, p));
      expect(errs).toEqual([]);
      // (quiet: the virtual node's background eviction held a partition's lock that `checked`
      // takes, and the test failed on tryLock once, 2026-11-28)
    }, true);
  });
});

describe('a hash table that is a run of pages, moved out of a window', () => {
  it('by a writer that dies halfway (pages claimed, or the new place published) leaves what repair makes whole: the pages held for nothing freed, every key found', async () => {
    // A death is simulated by an exception at the step (the locks come free on the way out; a
    // real death leaves them to recoverDeadThread, which calls repair the same way).
    const grid = await createGrid({ workers: 1, memory: '8MB', expiryInterval: 60_000 });
    try {
      const m = grid.map<string | Uint8Array>('w');
      const value = (i: number) => `v${i}-${'x'.repeat(94)}`;
      let n = 0;
      while (grid.stats().evictions < 25_000) for (let k = 0; k < 1000; k++, n++) m.setSync(`k${n}`, value(n));
      const st = grid.store as unknown as Internals & { moveTableRun(p: number, q: number, from: number, to: number): boolean; takePagesOutside(p: number, n: number, from: number, to: number): number; freeRecord(p: number, off: number): void; repair(p: number): void; ci: Int32Array };
      const pages = (q: number): number => st.ci[PART_BASE + q * P_STRIDE + P_PAGES];
      const move = st.moveTableRun;
      for (const step of ['takePagesOutside', 'freeRecord'] as const) {
        const real = st[step] as (...a: number[]) => number;
        let dying = -1;
        st.moveTableRun = function (p, q, from, to) {
          // die right after pages are claimed (for the table, or for records moved off its new
          // place), or once the new place is published (freeing the old run)
          (st as unknown as Record<string, unknown>)[step] = (...a: number[]) => {
            if (step === 'takePagesOutside' && real.apply(st, a) < 0) return -1;
            (st as unknown as Record<string, unknown>)[step] = real;
            dying = a[0];
            throw new Error(`died at ${step}`);
          };
          return move.call(this, p, q, from, to);
        };
        try {
          expect(() => m.setSync(`big-${step}`, new Uint8Array(512_000))).toThrow(`died at ${step}`);
        } finally {
          st.moveTableRun = move;
          (st as unknown as Record<string, unknown>)[step] = real;
        }
        expect(dying).toBeGreaterThanOrEqual(0);
        const before = pages(dying);
        const li = st.lockIndex(dying);
        expect(tryLock(st.ci, li)).toBe(true);
        try {
          st.repair(dying);
        } finally {
          unlock(st.ci, li);
        }
        // the pages just claimed (or the old run) held nothing a slot points to: repair freed them
        expect([step, pages(dying) < before]).toEqual([step, true]);
      }
      const wrong: string[] = [];
      for (let i = 0; i < n; i++) {
        const v = m.getSync(`k${i}`);
        if (v !== undefined && v !== value(i)) wrong.push(`k${i}`);
      }
      expect(wrong).toEqual([]);
      const errs: string[] = [];
      for (let p = 0; p < st.partitions; p++) errs.push(...checked(st, p));
      expect(errs).toEqual([]);
      // the next such write fits
      m.setSync('big', new Uint8Array(512_000).fill(9));
      expect((m.getSync('big') as Uint8Array).every((b) => b === 9)).toBe(true);
    } finally {
      await grid.close();
    }
  });
});
