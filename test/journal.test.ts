/**
 * The eviction journal (src/storage/journal.ts): a bounded many-producer, one-consumer ring in
 * shared memory. Entries come out whole and in each producer's order, a full ring drops (and
 * counts) rather than overwrites, and a producer that died between claiming and publishing
 * stalls the consumer only for a while.
 */
import { Worker } from 'node:worker_threads';
import { describe, expect, it } from 'vitest';
import { EvictionJournal, J_EVICTED, J_TOUCHED, slotsFor } from '../dist/storage/journal.js';
import { geometry, PART_BASE, P_STRIDE, P_WRITE_SEQ } from '../dist/storage/layout.js';
import { ShardStore, createStoreBuffers } from '../dist/storage/store.js';
import { tryLock, unlock } from '../dist/sync/mutex.js';

const PRODUCER = new URL('./fixtures/journal-producer.mjs', import.meta.url);
const PARTITIONS = 64;

function journal(slots: number, maxKey = 4096): { control: SharedArrayBuffer; base: number; j: EvictionJournal } {
  const geo = geometry(PARTITIONS, 12, 16, 4, slots);
  const control = new SharedArrayBuffer(geo.controlBytes);
  EvictionJournal.init(new Int32Array(control), geo.journalBase, slots);
  return { control, base: geo.journalBase, j: new EvictionJournal(new Int32Array(control), geo.journalBase, maxKey) };
}

const bytes = (len: number, seed: number): Uint8Array => Uint8Array.from({ length: len }, (_, i) => (seed * 7 + i * 13) & 0xff);

function drainAll(j: EvictionJournal, now?: number): Array<{ p: number; map: number; key: Uint8Array }> {
  const out: Array<{ p: number; map: number; key: Uint8Array }> = [];
  j.drain((p, map, key, len) => out.push({ p, map, key: key.slice(0, len) }), 1 << 30, PARTITIONS, now);
  return out;
}

describe('eviction journal', () => {
  it('gives back every entry whole and in order, keys of one slot and of many, over many laps', () => {
    const { j } = journal(64);
    let seed = 0;
    for (let lap = 0; lap < 40; lap++) {
      const sent: Array<{ p: number; map: number; key: Uint8Array }> = [];
      // lengths around the slot boundaries (112 in the first slot, 120 in each further one)
      for (const len of [0, 1, 111, 112, 113, 232, 233, 500, 1000]) {
        const e = { p: seed % PARTITIONS, map: seed % 5, key: bytes(len, seed++) };
        if (j.push(e.p, e.map, e.key, 0, len)) sent.push(e);
      }
      expect(sent.length).toBe(9); // 1+1+1+1+2+2+3+5+9 = 25 slots of 64
      expect(drainAll(j)).toEqual(sent);
    }
    expect(j.lostCount).toBe(0);
    expect(j.pending()).toBe(false);
  });

  it('a full ring drops entries (counted) instead of overwriting; draining makes room again', () => {
    const { j } = journal(16);
    let ok = 0;
    for (let i = 0; i < 20; i++) if (j.push(i % PARTITIONS, 1, bytes(10, i), 0, 10)) ok++;
    expect(ok).toBe(16);
    expect(j.lostCount).toBe(4);
    // a key that would take more than a quarter of the ring is never recorded
    expect(j.push(0, 1, bytes(1000, 1), 0, 1000)).toBe(false);
    expect(j.lostCount).toBe(5);
    const got = drainAll(j);
    expect(got.map((e) => e.key)).toEqual(Array.from({ length: 16 }, (_, i) => bytes(10, i)));
    expect(j.push(3, 2, bytes(10, 99), 0, 10)).toBe(true);
    expect(drainAll(j)).toEqual([{ p: 3, map: 2, key: bytes(10, 99) }]);
  });

  it('on the consumer thread, with enableSpill, a full ring keeps evictions aside instead of losing them; touches and other objects still drop', () => {
    const { control, base, j } = journal(16);
    j.enableSpill();
    const sent: Array<{ p: number; map: number; key: Uint8Array }> = [];
    for (let i = 0; i < 1000; i++) {
      const e = { p: i % PARTITIONS, map: i % 3, key: bytes(10 + (i % 300), i) };
      expect(j.push(e.p, e.map, e.key, 0, e.key.length)).toBe(true);
      sent.push(e);
    }
    // a key longer than a quarter of the ring goes aside too
    const long = { p: 5, map: 1, key: bytes(1000, 7) };
    expect(j.push(long.p, long.map, long.key, 0, 1000)).toBe(true);
    sent.push(long);
    expect(j.lostCount).toBe(0);
    // a touch never goes aside (evictions come first)
    expect(j.push(0, 1, bytes(10, 1), 0, 10, 1)).toBe(false);
    // another thread's object over the same ring drops, as before
    const other = new EvictionJournal(new Int32Array(control), base, 4096);
    expect(other.push(0, 1, bytes(10, 1), 0, 10)).toBe(false);
    expect(j.lostCount).toBe(1);
    expect(j.pending()).toBe(true);
    // a bounded drain takes the ring first, then the list, in order
    const first: Array<{ p: number; map: number; key: Uint8Array }> = [];
    j.drain((p, map, key, len) => first.push({ p, map, key: key.slice(0, len) }), 300, PARTITIONS);
    expect(first.length).toBe(300);
    const got = [...first, ...drainAll(j)];
    expect(got).toEqual(sent);
    expect(j.pending()).toBe(false);
    // and the ring works on after it
    expect(j.push(3, 2, bytes(10, 99), 0, 10)).toBe(true);
    expect(drainAll(j)).toEqual([{ p: 3, map: 2, key: bytes(10, 99) }]);
  });

  it('a producer that claimed slots and died stalls the consumer only until STALL_DRAINS drains and STALL_MS passed', () => {
    const { control, base, j } = journal(64);
    const ci = new Int32Array(control);
    j.push(1, 1, bytes(5, 1), 0, 5);
    // a dead producer: claims 3 slots (the tail moves) and never writes or publishes them
    const tail = Atomics.load(ci, base);
    Atomics.store(ci, base, tail + 3);
    j.push(2, 1, bytes(300, 2), 0, 300);
    expect(slotsFor(300)).toBe(3);
    expect(drainAll(j, 0)).toEqual([{ p: 1, map: 1, key: bytes(5, 1) }]);
    // many drains in a moment (a paused process resumes) are not enough, nor is time alone
    for (let i = 0; i < 100; i++) expect(drainAll(j, 10)).toEqual([]);
    expect(drainAll(j, 5000)).toEqual([{ p: 2, map: 1, key: bytes(300, 2) }]);
    expect(j.lostCount).toBe(3);
    expect(j.pending()).toBe(false);
    // and the ring keeps working over the skipped slots' next laps
    for (let lap = 0; lap < 5; lap++) {
      for (let i = 0; i < 10; i++) expect(j.push(i, 0, bytes(200, i), 0, 200)).toBe(true);
      expect(drainAll(j).length).toBe(10);
    }
  });

  it('entries of concurrent producer threads arrive whole, once, and in each thread\'s order', async () => {
    const maxKey = 400;
    const { control, base, j } = journal(256, maxKey);
    const count = 20_000;
    const threads = [1, 2, 3];
    const done = new SharedArrayBuffer(8);
    const flags = new Int32Array(done);
    const workers = threads.map((thread) => new Worker(PRODUCER, { workerData: { control, base, thread, count, maxKey, done } }));
    const errors: unknown[] = [];
    for (const w of workers) w.once('error', (e) => errors.push(e));
    const next = new Map<number, number>(threads.map((t) => [t, -1]));
    const got = new Map<number, number>(threads.map((t) => [t, 0]));
    const bad: string[] = [];
    const visit = (p: number, map: number, key: Uint8Array, len: number): void => {
      const t = key[0];
      const n = new DataView(key.buffer, key.byteOffset).getUint32(1);
      if (map !== t || p !== n % 64 || len !== 8 + ((n * 37) % (maxKey - 8))) bad.push(`header of ${t}/${n}`);
      for (let i = 5; i < len; i++) if (key[i] !== ((t * 31 + n + i) & 0xff)) { bad.push(`byte ${i} of ${t}/${n}`); break; }
      if (n !== next.get(t)! + 1) bad.push(`order: ${t}/${n} after ${next.get(t)}`);
      next.set(t, n);
      got.set(t, got.get(t)! + 1);
    };
    // the consumer spins (the producers report through shared memory, not messages)
    const deadline = Date.now() + 20_000;
    let drains = 0;
    while (Atomics.load(flags, 0) < threads.length && Date.now() < deadline) {
      j.drain(visit, 64, PARTITIONS);
      drains++;
    }
    j.drain(visit, 1 << 30, PARTITIONS);
    await Promise.all(workers.map((w) => new Promise((r) => (w.threadId === -1 ? r(undefined) : w.once('exit', r)))));
    expect(errors).toEqual([]);
    expect(bad.slice(0, 5)).toEqual([]);
    expect(threads.map((t) => got.get(t))).toEqual(threads.map(() => count));
    // a full ring refused pushes (counted lost) and the producers retried: the ring lapped under contention
    expect(j.lostCount).toBe(Atomics.load(flags, 1));
    expect(drains).toBeGreaterThan(10);
    expect(j.pending()).toBe(false);
  });

  // Touches shared the eviction ring and were recorded only while it was at most half full: under
  // a write burst on a loaded machine it stayed fuller, and copies aged the hot keys by their one
  // write (evict-failover.integration: copies evicted hot keys by stamps 12-21 s old)
  it("the touch sweep journals a primary's read keys while the eviction ring is full: touches have a ring of their own", () => {
    const st = new ShardStore(createStoreBuffers({ partitions: 8, memory: 4 * 1024 * 1024, maxMaps: 4, maxKeyBytes: 256, maxValueBytes: 1024 * 1024, reservePages: 0, journalSlots: 256 }));
    servesAll(st);
    const id = st.mapId('m');
    // (fewer than the touch ring's 64 slots: a sweep that fills it resumes at its next tick)
    const keys = keysOf3(st, id, 't', 50);
    const since = st.clock();
    putAll(st, id, keys, 'v', 0);
    // (the keys count as written before the last sweep started: only reads are touches)
    const floor = st.writeSeq(3);
    // the eviction ring full of evictions (a main thread that drains late)
    let evictions = 0;
    while (st.journal.push(1, id, bytes(20, evictions), 0, 20, J_EVICTED)) evictions++;
    expect(evictions).toBe(256);
    expect(tryLock(st.ci, st.lockIndex(3))).toBe(true);
    let at: number;
    try {
      at = st.journalTouched(3, since, 0, 1000, floor);
    } finally {
      unlock(st.ci, st.lockIndex(3));
    }
    expect(at).toBe(-1); // the walk is done
    expect(st.touchesJournaled).toBe(keys.length);
    const touched: string[] = [];
    st.touches.drain((p, map, key, len, kind) => {
      expect([p, map, kind]).toEqual([3, id, J_TOUCHED]);
      touched.push(Buffer.from(key.subarray(0, len)).toString());
    }, 1 << 30, 8);
    expect(touched.sort()).toEqual([...keys].sort());
    // and every eviction is still there; lost only the one push that found the ring full
    let drained = 0;
    st.journal.drain(() => drained++, 1 << 30, 8);
    expect(drained).toBe(256);
    expect(st.journal.lostCount).toBe(1);
  });

  // A copy stamps a key when it applies its write; the sweep journalled every written key as well:
  // under a write burst its budget (1,000 a tick) and the touches on the wire went on keys the
  // copies had just stamped, ahead of the keys that were only read
  it('the touch sweep journals the keys read since the last sweep, not those written since: their copies stamped them', () => {
    const st = new ShardStore(createStoreBuffers({ partitions: 8, memory: 4 * 1024 * 1024, maxMaps: 4, maxKeyBytes: 256, maxValueBytes: 1024 * 1024, reservePages: 0, journalSlots: 256 }));
    servesAll(st);
    const id = st.mapId('m');
    const keys = keysOf3(st, id, 'w', 40);
    const write = (ks: string[]): void => putAll(st, id, ks, 'v', 0);
    const [old, fresh, rewritten] = [keys.slice(0, 15), keys.slice(15, 30), keys.slice(30)];
    // the partition's write sequence just below its wrap at 2^32: the writes after the floor wrap
    st.cu[PART_BASE + 3 * P_STRIDE + P_WRITE_SEQ] = 2 ** 32 - 30;
    write([...old, ...rewritten]);
    // the last sweep starts: then `fresh` is written and `rewritten` written again
    const since = st.clock();
    const floor = st.writeSeq(3);
    write([...fresh, ...rewritten]);
    // read: the old keys (stamped at this tick, as the writes were: all of them are in the window)
    for (const k of old) {
      st.setKey(k, id);
      const off = st.probe(3, id);
      expect(off).toBeGreaterThanOrEqual(0);
      st.touch(off);
    }
    expect(tryLock(st.ci, st.lockIndex(3))).toBe(true);
    try {
      expect(st.journalTouched(3, since, 0, 1000, floor)).toBe(-1);
    } finally {
      unlock(st.ci, st.lockIndex(3));
    }
    const touched: string[] = [];
    st.touches.drain((_p, _map, key, len) => touched.push(Buffer.from(key.subarray(0, len)).toString()), 1 << 30, 8);
    expect(touched.sort()).toEqual([...old].sort());
    expect(st.touchesJournaled).toBe(old.length);
    expect(floor).toBe(2 ** 32 - 30 + old.length + rewritten.length);
    expect(st.writeSeq(3)).toBe((floor + fresh.length + rewritten.length) % 2 ** 32); // it wrapped
  });
  // The worker's sweep took p's lock but never looked whether another thread had grown the heap:
  // a table rebuilt in pages grown since read past the worker's views (undefined slots taken for
  // records), so no key of that partition was journalled until something else refreshed them.
  // Under a write burst every growing partition's table moves (evict-failover.integration: the
  // hot keys of most partitions went untouched for 6-10 s, and copies evicted them)
  it("the touch sweep reads a partition whose table another thread moved into pages grown since this thread's views", () => {
    const { sweeper, id, keys } = grownByAnotherThread(0);
    const since = sweeper.clock();
    const floor = sweeper.writeSeq(3); // the keys count as written before the last sweep
    const touched = new Set<string>();
    let junk = 0;
    let journaled = 0;
    // as the worker does: a sweep that fills the touch ring resumes where it stopped once drained
    for (let at = 0, calls = 0; at >= 0; calls++) {
      expect(calls).toBeLessThan(100);
      expect(tryLock(sweeper.ci, sweeper.lockIndex(3))).toBe(true);
      try {
        at = sweeper.journalTouched(3, since, at, 100_000, floor);
      } finally {
        unlock(sweeper.ci, sweeper.lockIndex(3));
      }
      journaled += sweeper.touchesJournaled;
      sweeper.touches.drain((p, map, key, len) => {
        if (p !== 3 || map !== id) junk++;
        else touched.add(Buffer.from(key.subarray(0, len)).toString());
      }, 1 << 30, 8);
    }
    expect(junk).toBe(0);
    expect(touched.size).toBe(keys.length);
    expect(journaled).toBe(keys.length);
  });

  // INFO keyspace's avg_ttl sample (the RESP server's thread) had the same blind spot
  it("INFO's TTL sample reads a partition whose table another thread moved into pages grown since this thread's views", () => {
    const expiresAt = Date.now() + 600_000;
    const { sweeper, keys } = grownByAnotherThread(expiresAt);
    const id = sweeper.mapId('m');
    const acc = { sum: 0, n: 0 };
    expect(tryLock(sweeper.ci, sweeper.lockIndex(3))).toBe(true);
    try {
      sweeper.ttlSample(3, id, Date.now(), keys.length, 1 << 20, acc);
    } finally {
      unlock(sweeper.ci, sweeper.lockIndex(3));
    }
    expect(acc.n).toBe(keys.length);
    expect(acc.sum / acc.n).toBeGreaterThan(500_000);
    expect(acc.sum / acc.n).toBeLessThanOrEqual(600_000);
  });
});

/**
 * Two stores on one set of buffers, as two threads have them: `writer` fills partition 3 with
 * 4,000 values of 3 KB (expiring at `expiresAt`, 0: never), growing the heap past the views
 * `sweeper` took at the start, and the partition's table is rebuilt beyond them.
 */
function grownByAnotherThread(expiresAt: number): { sweeper: ShardStore; writer: ShardStore; id: number; keys: string[] } {
  const buffers = createStoreBuffers({ partitions: 8, memory: 64 * 1024 * 1024, maxMaps: 4, maxKeyBytes: 256, maxValueBytes: 1024 * 1024, reservePages: 0, journalSlots: 8192 });
  const sweeper = new ShardStore(buffers); // the virtual node's thread
  const writer = new ShardStore(buffers); // the thread that writes (and grows the heap)
  servesAll(writer);
  const id = writer.mapId('m');
  const keys = keysOf3(writer, id, 'g', 4000);
  putAll(writer, id, keys, 'v'.repeat(3000), expiresAt);
  // the table now lies beyond what the sweeper's views cover
  expect((writer.tableRef(3) - 1) * 8).toBeGreaterThan(sweeper.u8.length);
  return { sweeper, writer, id, keys };
}

/** Writes `value` (a string record) under each of `keys`, all of partition 3, as its writer thread does. */
function putAll(st: ShardStore, id: number, keys: string[], value: string, expiresAt: number): void {
  expect(tryLock(st.ci, st.lockIndex(3))).toBe(true);
  st.beginWrite(3);
  try {
    for (const k of keys) {
      st.setKey(k, id);
      expect(st.put(3, id, 1, value, value.length, 0, expiresAt)).toBeGreaterThanOrEqual(0);
    }
  } finally {
    st.endWrite(3);
    unlock(st.ci, st.lockIndex(3));
  }
}

/** A cluster member's store that is the serving primary of all 8 partitions. */
function servesAll(st: ShardStore): void {
  st.setLeaseEnd(2 ** 31 - 1);
  for (let p = 0; p < 8; p++) st.setPrimaryHere(p, true);
}

/** `n` keys `<prefix><i>` of map `id` that fall in partition 3. */
function keysOf3(st: ShardStore, id: number, prefix: string, n: number): string[] {
  const keys: string[] = [];
  for (let i = 0; keys.length < n; i++) {
    st.setKey(`${prefix}${i}`, id);
    if (st.kpart === 3) keys.push(`${prefix}${i}`);
  }
  return keys;
}
