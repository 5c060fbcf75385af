// ReadMemo (src/memo.ts) on its own, over a scripted stand-in for the shard store: the test sets
// each partition's seqlock, each record's version and which record each table slot points at,
// and checks when the memo serves a value, when it admits a key, and what it evicts.
import { describe, expect, it } from 'vitest';
import { MEMO_MISS, ReadMemo } from '../dist/memo.js';
import type { ShardStore } from '../dist/storage/store.js';

const SEQ_BUSY = -1;

/** The parts of ShardStore the memo reads, with state the test controls. */
class FakeStore {
  seq = new Map<number, number>(); // partition → P_SEQ (odd: a writer is active)
  version = new Map<number, number>(); // record offset → version
  slots = new Map<string, number>(); // `${p}:${tref}:${slot}` → record offset
  lruClock = 1;
  touched = 0;
  readBegin(p: number): number {
    const s = this.seq.get(p) ?? 0;
    return (s & 1) === 0 ? s : SEQ_BUSY;
  }
  readValid(p: number, s: number): boolean {
    return (this.seq.get(p) ?? 0) === s;
  }
  slotHolds(p: number, tref: number, slot: number, off: number): boolean {
    return this.slots.get(`${p}:${tref}:${slot}`) === off;
  }
  versionOf(off: number): number {
    return this.version.get(off) ?? 0;
  }
  touch(): number {
    this.touched++;
    return this.lruClock;
  }
  clock(): number {
    return this.lruClock;
  }
}

/** Key i lives in partition i % 7, table ref 1, slot i, record offset 64 * (i + 1), version 1. */
function world(n: number) {
  const st = new FakeStore();
  for (let i = 0; i < n; i++) {
    st.slots.set(`${i % 7}:1:${i}`, 64 * (i + 1));
    st.version.set(64 * (i + 1), 1);
  }
  const store = st as unknown as ShardStore;
  /** A read of key i through the memo: the memoized value, or a "decode" that is then remembered. */
  const read = (memo: ReadMemo, i: number, len = 10): { value: unknown; hit: boolean } => {
    const key = `k${i}`;
    const v = memo.get(key, store);
    if (v !== MEMO_MISS) return { value: v, hit: true };
    const value = `v${i}@${st.versionOf(64 * (i + 1))}`;
    const p = i % 7;
    memo.remember(key, hashOf(i), p, 1, i, 64 * (i + 1), st.versionOf(64 * (i + 1)), 0, st.readBegin(p), st.lruClock, value, len);
    return { value, hit: false };
  };
  return { st, store, read };
}

/** A stand-in slot hash: distinct per key, spread over the doorkeeper's sets. */
const hashOf = (i: number): number => (Math.imul(i + 1, 0x9e3779b1) >>> 0);

describe('ReadMemo', () => {
  it('serves a value while the partition seqlock is unchanged, without looking at the record', () => {
    const { st, read } = world(10);
    const memo = new ReadMemo({ capacity: 8 });
    expect(read(memo, 3)).toEqual({ value: 'v3@1', hit: false });
    st.version.set(64 * 4, 99); // a write that did not move P_SEQ cannot happen; the memo trusts P_SEQ
    expect(read(memo, 3)).toEqual({ value: 'v3@1', hit: true });
  });

  it('once the seqlock moved, serves a value only if its slot still points at the record and the version is the same', () => {
    const { st, read } = world(10);
    const memo = new ReadMemo({ capacity: 8 });
    read(memo, 3); // partition 3
    // another key of partition 3 written: P_SEQ moved, key 3's record untouched
    st.seq.set(3, 2);
    expect(read(memo, 3)).toEqual({ value: 'v3@1', hit: true });
    // key 3 rewritten in place: same slot, new version
    st.seq.set(3, 4);
    st.version.set(64 * 4, 2);
    expect(read(memo, 3)).toEqual({ value: 'v3@2', hit: false });
    expect(read(memo, 3)).toEqual({ value: 'v3@2', hit: true });
    // key 3 moved to another record: the slot no longer points at the memoized offset
    st.seq.set(3, 6);
    st.slots.set('3:1:3', 4096);
    const r = read(memo, 3);
    expect(r.hit).toBe(false);
  });

  it('never serves a value while a writer is active in the partition, or after its expiry', () => {
    const { st, store, read } = world(10);
    const memo = new ReadMemo({ capacity: 8 });
    read(memo, 5);
    st.seq.set(5, 7); // odd: writer active
    expect(memo.get('k5', store)).toBe(MEMO_MISS);
    st.seq.set(5, 8);
    expect(memo.get('k5', store)).toBe('v5@1');
    // an entry with an expiry in the past
    memo.get('k6', store);
    memo.remember('k6', hashOf(6), 6, 1, 6, 64 * 7, 1, Date.now() - 1, 0, 1, 'old', 3);
    expect(memo.get('k6', store)).toBe(MEMO_MISS);
  });

  it('admits small values on their first read while it has room, and only on a prompt second read once full', () => {
    const { read } = world(100);
    const memo = new ReadMemo({ capacity: 16 });
    for (let i = 0; i < 16; i++) read(memo, i);
    expect(memo.size).toBe(16);
    for (let i = 0; i < 16; i++) expect(read(memo, i).hit).toBe(true);
    // full: a new key read once is not admitted
    expect(read(memo, 50).hit).toBe(false);
    expect(memo.has('k50')).toBe(false);
    expect(memo.size).toBe(16);
    // read again soon: admitted, one entry evicted for it
    expect(read(memo, 50).hit).toBe(false);
    expect(memo.has('k50')).toBe(true);
    expect(memo.size).toBe(16);
    expect(read(memo, 50).hit).toBe(true);
  });

  it('is scan-resistant: a round-robin scan over more keys than it holds never evicts what it holds', () => {
    const { read } = world(5000);
    const memo = new ReadMemo({ capacity: 1000, window: 0 }); // bypass off: count every hit
    let hits = 0;
    for (let pass = 0; pass < 3; pass++) for (let i = 0; i < 5000; i++) if (read(memo, i).hit) hits++;
    // the first 1,000 keys were admitted while there was room and stay; the other 4,000 come back
    // only after 4,999 other keys, too late for admission
    expect(memo.size).toBe(1000);
    for (let i = 0; i < 1000; i++) expect(memo.has(`k${i}`)).toBe(true);
    for (let i = 1000; i < 5000; i += 97) expect(memo.has(`k${i}`)).toBe(false);
    expect(hits).toBe(2 * 1000);
  });

  it('skips itself while full and hardly ever hit, then judges again and serves hits once reads hit', () => {
    const { store, read } = world(10_000);
    const memo = new ReadMemo({ capacity: 100, window: 1000 });
    for (let i = 0; i < 100; i++) read(memo, i); // admitted while there was room: full now
    let n = 100;
    // reads of keys never read again: nothing hits
    while (!memo.bypassing && n < 5000) read(memo, n++);
    expect(memo.bypassing).toBe(true);
    expect(n).toBeLessThanOrEqual(2000); // judged at the end of the first window that began full
    // skipped: a held, current key is not served (never wrong: it is read from the store instead)
    expect(memo.has('k5')).toBe(true);
    expect(memo.get('k5', store)).toBe(MEMO_MISS);
    // nothing is admitted while skipped
    read(memo, 9000);
    read(memo, 9000);
    expect(memo.has('k9000')).toBe(false);
    // after 7 windows it looks again; a window of reads that hit keeps it on
    let skipped = 0;
    while (memo.bypassing) {
      read(memo, 0);
      skipped++;
    }
    expect(skipped).toBeLessThanOrEqual(7 * 1000);
    for (let r = 0; r < 3000; r++) read(memo, r % 100);
    expect(memo.bypassing).toBe(false);
    expect(read(memo, 7).hit).toBe(true);
  });

  it('CLOCK: entries read since the hand last passed survive an eviction, unread ones go', () => {
    const { read } = world(200);
    const memo = new ReadMemo({ capacity: 10 });
    for (let i = 0; i < 10; i++) read(memo, i);
    for (const i of [0, 1, 2, 3, 4, 6, 7, 8, 9]) read(memo, i); // every entry but k5 read again
    read(memo, 100);
    read(memo, 100); // admitted: something had to go
    expect(memo.has('k100')).toBe(true);
    expect(memo.has('k5')).toBe(false);
    for (const i of [0, 1, 2, 3, 4, 6, 7, 8, 9]) expect(memo.has(`k${i}`)).toBe(true);
  });

  it('keeps within its byte bound, and an update to a larger value evicts others, never itself', () => {
    const { store, read } = world(200);
    const memo = new ReadMemo({ capacity: 100, maxBytes: 1000, admitValue: 1000 });
    for (let i = 0; i < 100; i++) {
      read(memo, i, 90);
      read(memo, i, 90);
      expect(memo.heldBytes).toBeLessThanOrEqual(1000);
    }
    expect(memo.size).toBeLessThanOrEqual(1000 / 92);
    // an update of a held key to a value near the whole bound
    const held = [...memo].map(([k]) => k);
    const key = held[held.length - 1];
    const i = Number(key.slice(1));
    expect(memo.get(key, store)).not.toBe(MEMO_MISS); // a hit: `last` is the key's entry
    memo.remember(key, hashOf(i), i % 7, 1, i, 64 * (i + 1), 1, 0, 0, 1, 'big', 900);
    expect(memo.has(key)).toBe(true);
    expect(memo.heldBytes).toBeLessThanOrEqual(1000);
  });

  it('admits a value over admitValue only on a prompt second read, and never one over maxValue', () => {
    const { read } = world(100);
    const memo = new ReadMemo({ capacity: 100, admitValue: 1024, maxValue: 4096 });
    expect(read(memo, 1, 2000).hit).toBe(false);
    expect(memo.has('k1')).toBe(false);
    expect(read(memo, 1, 2000).hit).toBe(false);
    expect(memo.has('k1')).toBe(true);
    expect(read(memo, 1, 2000).hit).toBe(true);
    for (let r = 0; r < 3; r++) read(memo, 2, 5000);
    expect(memo.has('k2')).toBe(false);
  });

  it('forget and clear drop entries and their bytes', () => {
    const { store, read } = world(10);
    const memo = new ReadMemo({ capacity: 8 });
    for (let i = 0; i < 5; i++) read(memo, i);
    memo.forget('k2');
    expect(memo.has('k2')).toBe(false);
    expect(memo.get('k2', store)).toBe(MEMO_MISS);
    expect(memo.size).toBe(4);
    memo.clear();
    expect(memo.size).toBe(0);
    expect(memo.heldBytes).toBe(0);
    // and it fills again, reusing the freed entries
    for (let i = 0; i < 8; i++) read(memo, i);
    expect(memo.size).toBe(8);
  });

  it('grows its arrays as keys come, up to its capacity, keeping every entry', () => {
    const { read } = world(3000);
    const memo = new ReadMemo({ capacity: 2000 });
    for (let i = 0; i < 2000; i++) read(memo, i);
    expect(memo.size).toBe(2000);
    for (let i = 0; i < 2000; i++) expect(read(memo, i)).toEqual({ value: `v${i}@1`, hit: true });
  });
});
