// A copy on a cluster data member (a replicated write, a snapshot chunk) may take room from the
// member's primaries only by evicting what they have not used for a second (COPY_FLOOR, 10 clock
// ticks); then it evicts copies, or its write fails and the caller drops the key as an eviction.
// Before, a member whose memory a migration had filled with copies evicted its primaries' newest
// entries for each copy it applied: in the fault harness (seed 48600, schedule 3: a member leaves
// while all are full), counters incremented every ~50 ms were evicted again and again
// (native-notes.md, "The cluster's LRU"). A store of its own, no threads: the clock moves only
// when the test ticks it.
import { describe, expect, it } from 'vitest';
import { ShardStore, createStoreBuffers } from '../dist/storage/store.js';
import { CLOCK_MASK, G_CLOCK, P_COUNT, P_STRIDE, PART_BASE, T_STRING } from '../dist/storage/layout.js';
import { tryLock, unlock } from '../dist/sync/mutex.js';

const PARTITIONS = 8;
const value = 'v'.repeat(200);

function store(): ShardStore {
  const st = new ShardStore(createStoreBuffers({ partitions: PARTITIONS, memory: 4 * 1024 * 1024, maxMaps: 4, maxKeyBytes: 256, maxValueBytes: 1024 * 1024, reservePages: 0, journalSlots: 256 }));
  // partitions 0-3 primaries here (under a running lease), 4-7 copies
  st.setLeaseEnd(2 ** 31 - 1);
  for (let p = 0; p < PARTITIONS; p++) st.setPrimaryHere(p, p < 4);
  return st;
}

/** Puts key into its partition; the record's offset, or -1 when no room could be made. */
function put(st: ShardStore, mapId: number, key: string): { p: number; off: number } {
  st.setKey(key, mapId);
  const p = st.kpart;
  expect(tryLock(st.ci, st.lockIndex(p))).toBe(true);
  st.beginWrite(p);
  try {
    st.setKey(key, mapId);
    return { p, off: st.put(p, mapId, T_STRING, value, value.length, 0, 0) };
  } finally {
    st.endWrite(p);
    unlock(st.ci, st.lockIndex(p));
  }
}

const count = (st: ShardStore, from: number, to: number): number => {
  let n = 0;
  for (let p = from; p < to; p++) n += st.ci[PART_BASE + p * P_STRIDE + P_COUNT];
  return n;
};

describe('a copy takes room from primaries only by what they have not used for a second', () => {
  it('fails its write rather than evict primary entries used within 10 clock ticks; takes older ones', () => {
    const st = store();
    const id = st.mapId('m');
    // primaries fill the memory (every put stamps the clock's current tick; nothing advances it here)
    // (stats() sums every thread slot and partition: read it only after a put, the one thing here that evicts)
    let i = 0;
    for (let full = false; !full && i < 100_000; i++) {
      st.setKey(`p${i}`, id);
      if (st.kpart < 4) {
        put(st, id, `p${i}`);
        full = st.stats().evictions > 0;
      }
    }
    expect(st.stats().evictions).toBeGreaterThan(0); // the memory is full
    const primaries = count(st, 0, 4);
    expect(primaries).toBeGreaterThan(5000);
    // copies now: no primary entry is older than a tick, so none may be evicted for them
    let refused = 0;
    let stored = 0;
    for (let k = 0; k < 2000; k++) {
      st.setKey(`c${k}`, id);
      if (st.kpart < 4) continue;
      if (put(st, id, `c${k}`).off < 0) refused++;
      else stored++;
    }
    expect(count(st, 0, 4)).toBe(primaries);
    expect(refused).toBeGreaterThan(0);
    // the caller then drops the key as an eviction (Records.putCopyState): one the copy never held
    // is counted too, so the copy's lacking it is on record (and in the harness's eviction log)
    const ev = st.stats().evictions;
    st.setKey('never-held', id);
    const q = st.kpart;
    expect(tryLock(st.ci, st.lockIndex(q))).toBe(true);
    st.beginWrite(q);
    st.setKey('never-held', id);
    expect(st.evictKey(q, id)).toBe(false);
    st.endWrite(q);
    unlock(st.ci, st.lockIndex(q));
    expect(st.stats().evictions).toBe(ev + 1);
    // (what was stored went into room the primaries' puts had left, or pushed out other copies)
    expect(count(st, 4, 8)).toBeLessThanOrEqual(stored);
    // ten ticks later (the clock is the virtual nodes' to advance: here, the test's) every primary
    // entry is a second old: now a copy takes room from them
    Atomics.store(st.ci, G_CLOCK, (st.ci[G_CLOCK] + 10) & CLOCK_MASK);
    let took = 0;
    for (let k = 2000; k < 4000; k++) {
      st.setKey(`c${k}`, id);
      if (st.kpart < 4) continue;
      if (put(st, id, `c${k}`).off >= 0) took++;
    }
    expect(took).toBeGreaterThan(0);
    expect(count(st, 0, 4)).toBeLessThan(primaries);
    // and a primary's own write still evicts young entries (no floor for primaries' writes)
    const before = st.stats().evictions;
    for (let k = 0; k < 20_000; k++) {
      st.setKey(`q${k}`, id);
      if (st.kpart < 4) expect(put(st, id, `q${k}`).off).toBeGreaterThanOrEqual(0);
    }
    expect(st.stats().evictions).toBeGreaterThan(before);
  });
});
