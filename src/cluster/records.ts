/**
 * Raw entry states for replication and migration, on a member's main thread.
 *
 * A state is what a key holds right now, already encoded: `null` (absent) or
 * `[type, payload, expiresAt]` (payload a string, bytes or a number per the type tag). Replication
 * ships states, not operations: after a write, the primary reads the key's state and sends it in
 * the same synchronous run (see `withState`), so the states a backup receives over the ordered
 * connection are in the order the primary's partition saw them, and the last one it applies is
 * the newest, whatever interleaved. Migration ships a whole partition's states the same way.
 *
 * Applying on the receiver is serialized per partition: when the partition lock is busy (a
 * virtual node sweeping it), later states for that partition queue behind, so arrival order is
 * kept.
 */
import { GridClosedError, LockTimeoutError, MemoryFullError, PartitionUnavailableError, ProtocolError, ValueTooLargeError } from '../errors.js';
import { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from '../storage/layout.js';
import { READ_SPIN_LIMIT, SEQ_BUSY, type ShardStore } from '../storage/store.js';
import { lockAsync, lockSync, tryLock, unlock } from '../sync/mutex.js';

/** Longest stateNow blocks the main thread on a busy partition (then a retryable error). */
const STATE_NOW_WAIT_MS = 200;

export type RawState = null | [type: number, payload: string | Uint8Array | number, expiresAt: number];
/** One entry of a partition snapshot: [mapName, key, state]. */
export type RawEntry = [string, string, Exclude<RawState, null>];

const TYPES = new Set([T_STRING, T_NUMBER, T_BYTES, T_MSGPACK]);

/** Bytes of a state's value as stored (a number: 8). */
function stateBytes(s: Exclude<RawState, null>): number {
  const v = s[1];
  return typeof v === 'string' ? Buffer.byteLength(v) : typeof v === 'number' ? 8 : v.length;
}

/** Checks a state received from a peer before it may touch shared memory. */
export function checkState(s: unknown, maxValueBytes: number): RawState {
  if (s === null) return null;
  if (!Array.isArray(s) || s.length !== 3) throw new ProtocolError('malformed entry state');
  const [type, payload, exp] = s as unknown[];
  if (typeof type !== 'number' || !TYPES.has(type)) throw new ProtocolError('entry state has an unknown type tag');
  if (typeof exp !== 'number' || !Number.isFinite(exp) || exp < 0) throw new ProtocolError('entry state has a bad expiry');
  if (type === T_NUMBER ? typeof payload !== 'number' : type === T_STRING ? typeof payload !== 'string' : !(payload instanceof Uint8Array)) {
    throw new ProtocolError('entry state payload does not match its type tag');
  }
  const len = typeof payload === 'string' ? Buffer.byteLength(payload) : payload instanceof Uint8Array ? payload.length : 8;
  if (len > maxValueBytes) throw new ValueTooLargeError(`replicated value is ${len} bytes, over maxValueBytes (${maxValueBytes})`, { size: len, limit: maxValueBytes });
  return [type, payload as string | Uint8Array | number, exp];
}

interface Job {
  fn: () => unknown;
  resolve: (v: unknown) => void;
  reject: (e: unknown) => void;
}

export class Records {
  private readonly store: ShardStore;
  private readonly lockTimeout: number;
  /** Partitions with applies waiting for the lock, in arrival order. */
  private readonly queues = new Map<number, Job[]>();

  constructor(store: ShardStore, lockTimeout: number) {
    this.store = store;
    this.lockTimeout = lockTimeout;
  }

  /**
   * The map looked up last and its id: a store's map ids never change once registered, and
   * `store.mapId` encodes and hashes the name and compares its bytes (a cluster member's sets of
   * one map looked it up on every write).
   */
  private lastMap: string | undefined;
  private lastMapId = -1;

  private mapId(name: string): number {
    if (name === this.lastMap) return this.lastMapId;
    const id = this.store.mapId(name);
    if (id < 0) throw new ProtocolError(`cannot register map '${name.slice(0, 40)}' (registry full or name too long)`);
    this.lastMap = name;
    this.lastMapId = id;
    return id;
  }

  /**
   * The current state of `key` in map `name` (caller's synchronous run; null when absent or
   * expired). `touch`: a record found is stamped as accessed (a client's read).
   */
  private readState(p: number, mapId: number, touch = false): RawState | undefined {
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s === SEQ_BUSY) continue;
      const off = st.probe(p, mapId);
      const r = this.stateAt(off);
      if (st.readValid(p, s)) {
        if (touch && r !== null) st.touch(off);
        return r;
      }
    }
    return undefined; // writer busy
  }

  private stateAt(off: number): RawState {
    const st = this.store;
    if (off < 0) return null;
    const exp = st.expiresAt(off);
    if (exp !== 0 && exp <= Date.now()) return null;
    const type = st.typeOf(off);
    const vlen = st.valueLength(off);
    const vo = st.valueOffset(off);
    if (!st.inBounds(vo + vlen)) return null; // torn view: the seqlock check discards it
    if (type === T_NUMBER) return [type, st.f64[vo >>> 3], exp];
    if (type === T_STRING) return [type, st.buf.toString('utf8', vo, vo + vlen), exp];
    return [type, Buffer.from(st.u8.subarray(vo, vo + vlen)), exp];
  }

  /**
   * Reads key's current state and calls `use(state)` in the same synchronous run (under the
   * partition lock when a writer kept it busy). Whatever `use` sends is ordered after every write
   * the partition saw before the read. `touch`: a client's read (get, has, ttl), which stamps the
   * record as accessed as the lock-free read of a map does; until 2026-11-28 this path stamped
   * nothing, and it serves every read of a partition with a write being replicated, so under a
   * write burst the keys read most aged as if never read (evict-failover.integration: hot keys
   * evicted at ages of 10-57 s while read every second).
   */
  withState<T>(mapName: string, key: string, use: (p: number, s: RawState) => T, touch = false): T | Promise<T> {
    const st = this.store;
    const id = this.mapId(mapName);
    st.setKey(key, id);
    const p = st.kpart;
    const s = this.readState(p, id, touch);
    if (s !== undefined) return use(p, s);
    return this.lock(p).then(() => {
      try {
        st.setKey(key, id);
        const off = st.probe(p, id);
        const r = this.stateAt(off);
        if (touch && r !== null) st.touch(off);
        return use(p, r);
      } finally {
        unlock(st.ci, st.lockIndex(p));
      }
    });
  }

  /**
   * Key's current state, synchronously: read optimistically, or under the partition lock taken
   * in short blocking slices when a writer (a virtual node sweeping the partition) keeps it busy.
   * It blocks this (main) thread at most STATE_NOW_WAIT_MS: a holder that died is only recovered
   * once the event loop runs again, so it gives up with a retryable error instead of waiting for
   * the lock timeout. Never call it while this thread holds p's lock (use `stateHere`).
   */
  stateNow(mapName: string, key: string): RawState {
    const st = this.store;
    const id = this.mapId(mapName);
    st.setKey(key, id);
    const p = st.kpart;
    const s = this.readState(p, id);
    if (s !== undefined) return s;
    const li = st.lockIndex(p);
    if (!lockSync(st.ci, li, STATE_NOW_WAIT_MS)) throw new PartitionUnavailableError(`partition ${p} stayed locked for ${STATE_NOW_WAIT_MS} ms`, { partition: p });
    try {
      st.setKey(key, id);
      return this.stateAt(st.probe(p, id));
    } finally {
      unlock(st.ci, li);
    }
  }

  /** The state of the store's current key in map `mapId` of partition p; the caller holds p's lock. */
  stateHere(p: number, mapId: number): RawState {
    return this.stateAt(this.store.probe(p, mapId));
  }

  /** Every live entry of partition p, all maps, and `use(entries)` in the same synchronous run. */
  async withSnapshot<T>(p: number, use: (entries: RawEntry[]) => T): Promise<T> {
    const st = this.store;
    await this.lock(p);
    try {
      if (st.u8.length !== st.buffers.heap.byteLength) st.refresh();
      const names = st.mapNames();
      const out: RawEntry[] = [];
      for (let id = 0; id < names.length; id++) {
        if (st.mapCountIn(p, id) === 0) continue;
        st.forEachRecord(p, id, (off) => {
          const s = this.stateAt(off);
          if (s !== null) out.push([names[id], st.keyOf(off), s]);
        });
      }
      return use(out);
    } finally {
      unlock(st.ci, st.lockIndex(p));
    }
  }

  private async lock(p: number): Promise<void> {
    const st = this.store;
    const li = st.lockIndex(p);
    if (tryLock(st.ci, li)) return;
    if (!(await lockAsync(st.ci, li, this.lockTimeout))) throw new LockTimeoutError(`timed out waiting for the lock of partition ${p}`, { partition: p, timeoutMs: this.lockTimeout });
    if (st.closed) {
      unlock(st.ci, li);
      throw new GridClosedError('the grid is closed');
    }
  }

  /**
   * Runs `fn` (which writes partition p) under p's lock, after every earlier apply for p. Runs at
   * once when nothing is queued and the lock is free; otherwise returns a promise.
   */
  serial<T>(p: number, fn: () => T): T | Promise<T> {
    if (this.beginNow(p)) return this.run(p, fn);
    return new Promise<T>((resolve, reject) => {
      const job: Job = { fn, resolve: resolve as (v: unknown) => void, reject };
      const q = this.queues.get(p);
      if (q !== undefined) q.push(job);
      else {
        this.queues.set(p, [job]);
        void this.drain(p);
      }
    });
  }

  private async drain(p: number): Promise<void> {
    const q = this.queues.get(p)!;
    while (q.length > 0) {
      try {
        await this.lock(p);
      } catch (e) {
        this.queues.delete(p); // the grid closed or the lock is wedged: fail what waits
        for (const job of q) job.reject(e);
        return;
      }
      const job = q.shift()!;
      try {
        job.resolve(this.locked(p, job.fn)); // releases; the next job takes the lock again
      } catch (e) {
        job.reject(e);
      }
    }
    this.queues.delete(p);
  }

  private locked<T>(p: number, fn: () => T): T {
    this.store.beginWrite(p);
    return this.run(p, fn);
  }

  /** Runs `fn` in a write begun on p (beginNow, locked), then ends it and releases p's lock. */
  private run<T>(p: number, fn: () => T): T {
    try {
      return fn();
    } finally {
      this.endNow(p);
    }
  }

  /**
   * `serial` without a closure, for a write that can run now: true when nothing is queued for p
   * and its lock was free — p's lock is then held for a write, and the caller writes in this
   * synchronous run and calls `endNow(p)` (in a `finally`). False: nothing taken, use `serial`.
   */
  beginNow(p: number): boolean {
    const st = this.store;
    if (this.queues.has(p) || !tryLock(st.ci, st.lockIndex(p))) return false;
    st.beginWrite(p);
    return true;
  }

  /** Ends a write begun by `beginNow` (or by `serial`) and releases p's lock. */
  endNow(p: number): void {
    const st = this.store;
    st.endWrite(p);
    unlock(st.ci, st.lockIndex(p));
  }

  /** Stores a state for key of map `name` (caller holds p's lock inside serial()); GRID_ERR_MEMORY_FULL when no room could be made. */
  putState(mapName: string, key: string, s: RawState): void {
    if (!this.store1(mapName, key, s)) throw new MemoryFullError(this.store.fullMessage());
  }

  /**
   * A copy's side of putState (a replicated write, a snapshot entry): when no room can be made
   * for the new value, or it is over this member's maxValueBytes (a member with less memory than
   * the primary's has a lower default), the key is dropped here as an eviction instead (counted,
   * and in the nemesis eviction log). Failing the write instead dropped the copy from the table,
   * and every copy streamed after it failed the same way: the partition stayed migrating and each
   * write to it timed out. Keeping the old value would let a failover bring it back. False when
   * dropped.
   */
  putCopyState(mapName: string, key: string, s: RawState): boolean {
    if ((s === null || stateBytes(s) <= this.store.maxValueBytes) && this.store1(mapName, key, s)) return true;
    const st = this.store;
    const id = this.mapId(mapName);
    if (st.setKey(key, id) < 0) throw new ProtocolError('replicated key is over maxKeyBytes');
    st.evictKey(st.kpart, id);
    return false;
  }

  private store1(mapName: string, key: string, s: RawState): boolean {
    const st = this.store;
    const id = this.mapId(mapName);
    if (st.setKey(key, id) < 0) throw new ProtocolError('replicated key is over maxKeyBytes');
    const p = st.kpart;
    if (s === null) {
      st.remove(p, id, Date.now());
      return true;
    }
    const [type, payload, exp] = s;
    let r: number;
    if (type === T_NUMBER) r = st.put(p, id, type, null, 8, payload as number, exp);
    else if (type === T_STRING) r = st.put(p, id, type, payload as string, Buffer.byteLength(payload as string), 0, exp);
    else r = st.put(p, id, type, payload as Uint8Array, (payload as Uint8Array).length, 0, exp);
    return r >= 0;
  }

  /** Partition of `key` (any map: the partition does not depend on the map). */
  partitionOf(key: string): number {
    this.store.setKey(key, 0);
    return this.store.kpart;
  }

  /** Drops every entry of map `mapName` in partition p; caller holds p's lock inside serial(). */
  clearMap(p: number, mapName: string): void {
    this.store.clearMap(p, this.mapId(mapName));
  }

  /** Drops every entry of partition p (all maps); caller holds p's lock inside serial(). */
  clearPartition(p: number): void {
    const st = this.store;
    const n = st.mapNames().length;
    for (let id = 0; id < n; id++) if (st.mapCountIn(p, id) > 0) st.clearMap(p, id);
  }
}
