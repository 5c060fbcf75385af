/**
 * GridMap: the user-facing map API. Every operation on a partition held in this process runs on
 * the calling thread against shared memory: reads are optimistic (seqlock, no lock, no message),
 * writes take the partition's mutex. See native-notes.md, "Life of a get and a set".
 *
 * This file holds GridMap itself: the single-key operations (the performance-tuned hot path:
 * getLocal/getSync/get, set/setSync, delete, increment, and their read and lock helpers) and the
 * public method and doc of every operation. Those of many entries (setMany, clear, entries) are
 * in src/map-bulk.ts; setIfAbsent, compareAndSet and the byte updates in src/map-atomic.ts;
 * compute and aggregate next to the data in src/compute/local.ts; the read memo in src/memo.ts;
 * MapHost and what those modules use of a map (MapCore) in src/map-host.ts.
 */
import { isMainThread } from 'node:worker_threads';
import { setTtl, shownArg, type SetOptions } from './config.js';
import {
  GridClosedError, InvalidArgumentError, KeyTooLargeError, LockTimeoutError, MemoryFullError,
  UnencodableValueError, UnsupportedError, ValueTooLargeError, WrongTypeError,
} from './errors.js';
import { ENCODE_OK, ENCODE_TOO_LARGE, ENCODE_UNDEFINED, ValueEncoder, decodeMsgpack } from './storage/codec.js';
import { G_CLOSED, T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from './storage/layout.js';
import { KEY_MALFORMED, NEED_LOCK, READ_SPIN_LIMIT, SEQ_BUSY, type ShardStore } from './storage/store.js';
import { lockAsync, lockSync, tryLock, unlock } from './sync/mutex.js';
import type { AggregatorRef, ComputeRef, ProcessorReply, ProcessorTask } from './compute/types.js';
import { decodeCopied } from './compute/decode.js';
import { aggregate as aggregateHere, applyComputed as applyComputedHere, computeLocal as computeHere, computeTask as computeTaskHere, scanPartition as scanHere, type ScanField, type ScanVisit } from './compute/local.js';
import { clear as clearAll, entries as entriesOf, setMany as setAll } from './map-bulk.js';
import { byteUpdate, compareAndSet as compareAndSetHere, setIfAbsent as setIfAbsentHere, updateBytes as updateBytesHere, updateLocked } from './map-atomic.js';
import { EXPIRED_RECORD, NO_RECORD, type MapHost } from './map-host.js';
import { MEMO_MISS, ReadMemo } from './memo.js';
import type { UpdateReply } from './updates.js';
import { CLAIM_MAP, fetchThrough, type FetchOptions, type Loader } from './fetch.js';

export { claimMapOptions, closedError, type MapHost } from './map-host.js';

const MISS = 0;
const FOUND = 1;
const EXPIRED = 2;

// Read results land here instead of in a fresh object per call (one reader per thread at a time:
// reads never await between filling and consuming these).
let outValue: unknown;
let outVersion = 0;
let outOff = -1;
let outExp = 0;
/** Value length in the record of the last decodeRecord (read inside the window). */
let outLen = 0;
let outType = 0;
let outSlot = -1;
let outTref = 0;
/** Partition seqlock value of the window the last optimistic read validated in. */
let outSeq = 0;
/** LRU clock value the last optimistic read stamped the access map with. */
let outTick = 0;

/** Longest a getSync waits for the lock of a partition a writer keeps busy before it throws. */
const GETSYNC_WAIT_MS = 200;
let copyBuf = new Uint8Array(4096);

const utf8Slice = (Buffer.prototype as unknown as { utf8Slice?: (s: number, e: number) => string }).utf8Slice;

function readString(store: ShardStore, vo: number, vlen: number): string {
  return utf8Slice !== undefined ? utf8Slice.call(store.buf, vo, vo + vlen) : store.buf.toString('utf8', vo, vo + vlen);
}

/**
 * Decodes the record at `off` into outValue. Runs inside a seqlock window, so it must tolerate a
 * record that is being overwritten: every length is bounds-checked, msgpack bytes are only copied
 * here and decoded after the window validated. Returns FOUND, EXPIRED, or MISS (bad bounds).
 */
function decodeRecord(store: ShardStore, off: number, now: number): number {
  const exp = store.expiresAt(off);
  if (exp !== 0 && exp <= (now === 0 ? Date.now() : now)) return EXPIRED;
  const vlen = store.valueLength(off);
  const vo = store.valueOffset(off);
  if (!store.inBounds(vo + vlen)) return MISS;
  outVersion = store.versionOf(off);
  outLen = vlen;
  outOff = off;
  outExp = exp;
  const type = (outType = store.typeOf(off));
  switch (type) {
    case T_STRING:
      outValue = readString(store, vo, vlen);
      return FOUND;
    case T_NUMBER:
      outValue = store.f64[vo >>> 3];
      return FOUND;
    case T_BYTES: {
      const b = Buffer.allocUnsafe(vlen);
      b.set(store.u8.subarray(vo, vo + vlen));
      outValue = b;
      return FOUND;
    }
    case T_MSGPACK:
      if (copyBuf.length < vlen) copyBuf = new Uint8Array(Math.max(vlen, copyBuf.length * 2));
      copyBuf.set(store.u8.subarray(vo, vo + vlen));
      outValue = vlen; // decoded after validation
      return FOUND;
    default:
      return MISS;
  }
}

/**
 * Decodes the msgpack bytes decodeRecord copied, once the read validated. By the type decodeRecord
 * read inside the window (`outType`): the record's own type byte, read again here, may already
 * belong to another record (the entry rewritten, moved by compaction, its memory reused), and a
 * reader then returned a msgpack value's byte length as its value, or decoded a string's bytes.
 */
function finishDecode(): void {
  if (outType === T_MSGPACK) outValue = decodeMsgpack(copyBuf.subarray(0, outValue as number));
}

/** Kinds of map operations counted for metrics (GridMap.ops). */
export const OP_KINDS = Object.freeze(['get', 'set', 'delete', 'atomic', 'read'] as const);
export const OP_GET = 0;
export const OP_SET = 1;
export const OP_DELETE = 2;
/** setIfAbsent, compareAndSet, increment, compute, byte updates. */
export const OP_ATOMIC = 3;
/** has, ttl. */
export const OP_READ = 4;

const NO_MAP_OPTIONS = Object.freeze({ ttl: 0, cacheValues: true });

/**
 * A named map of a grid, from {@link Grid.map}. Keys are strings; values are strings, numbers,
 * byte arrays (fast paths) or anything msgpackr encodes. In a single-process grid every operation
 * runs on the calling thread against shared memory: reads are optimistic (no lock, no message),
 * writes take the key's partition lock. In a cluster member the same API routes each key to its
 * primary and resolves writes once the primary and every backup applied them; operations retry
 * moved partitions and lost members for up to 15 s before a typed error
 * (GRID_ERR_PARTITION_MOVED, GRID_ERR_PARTITION_UNAVAILABLE, GRID_ERR_MEMBER_UNREACHABLE), and a
 * write that cannot reach enough copies fails with GRID_ERR_TIMEOUT. Every failure is a
 * {@link GridError} with a stable `code`.
 *
 * @typeParam V - The type of the values (not checked at run time).
 *
 * @example
 * ```ts
 * const users = grid.map<{ name: string }>('users', { ttl: 60_000 });
 * await users.set('u:1', { name: 'Ada' }, { ttl: 5_000 });
 * console.log(await users.get('u:1'));            // { name: 'Ada' }
 * console.log(await users.increment('visits'));   // 1: atomic across threads
 * for await (const [key, value] of users) console.log(key, value);
 * ```
 */
export class GridMap<V = unknown> {
  /** The map's name (the same name is the same map in every thread). */
  readonly name: string;
  /**
   * @internal Operations this thread ran on this map handle, by kind (OP_KINDS): one add per call
   * on the calling thread, read by the metrics collector. Attached threads count their own.
   */
  readonly ops = new Float64Array(OP_KINDS.length);
  /** @internal False in RoutedMap, which counts at its own entry points (its local paths call these). */
  protected countOps = true;
  /** @internal */
  readonly id: number;
  /** @internal The grid this map belongs to. */
  readonly host: MapHost;
  /** @internal The grid's shared memory. */
  readonly store: ShardStore;
  /** @internal This thread's value encoder. */
  readonly enc: ValueEncoder;
  /** @internal The grid's own map of fetch claims (CLAIM_MAP): its calls pass while close() releases the claims (MapHost.assertOpen). */
  readonly internal: boolean;
  /** The map's registered options, once registered (they never change after): see registered(). */
  private opts: { ttl: number; cacheValues: boolean } | undefined;
  /** Whether setSync/deleteSync may write here (not in a cluster: see MapHost.clustered). */
  private readonly syncWrites: boolean;
  /**
   * This thread's read memo for this map (src/memo.ts): decoded values of recent reads, served
   * while provably current. Bounds and admission: MEMO_DEFAULTS.
   */
  private readonly memos = new ReadMemo();

  /**
   * Not for use: a map comes from {@link Grid.map}. Left in the declarations on purpose: without
   * it they would show a constructor that takes no arguments.
   */
  constructor(host: MapHost, name: string, id: number) {
    this.host = host;
    this.store = host.store;
    this.enc = host.encoder;
    this.name = name;
    this.id = id;
    this.internal = name === CLAIM_MAP;
    this.syncWrites = host.clustered !== true;
  }

  /** The map's options for the whole grid: those registered by grid.map(name, options) in any thread, else the defaults. */
  private registered(): { ttl: number; cacheValues: boolean } {
    if (this.opts !== undefined) return this.opts;
    const r = this.store.mapOptions(this.id); // one Atomics.load until some thread registers
    if (r === undefined) return NO_MAP_OPTIONS;
    return (this.opts = r);
  }

  /** Default time to live of this map's entries, ms (0: none), as registered for the whole grid. */
  get defaultTtl(): number {
    return this.registered().ttl;
  }

  // ── key and value preparation (throws typed errors before any lock is taken) ────────────────

  /** @internal Validates and encodes `key` into the store's key scratch; returns its partition. */
  key(key: string): number {
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string (got ${key === null ? 'null' : typeof key})`);
    const n = this.store.setKey(key, this.id);
    if (n < 0) {
      if (n === KEY_MALFORMED) throw new InvalidArgumentError('key is not well-formed UTF-16 (a lone surrogate, such as half of an emoji cut by slice): in UTF-8 it would be the same key as others');
      throw new KeyTooLargeError(`key is ${Buffer.byteLength(key)} bytes, over maxKeyBytes (${this.store.maxKeyBytes})`, { size: Buffer.byteLength(key), limit: this.store.maxKeyBytes });
    }
    return this.store.kpart;
  }

  /** @internal Validates and encodes `v` into this thread's encoder. */
  value(v: unknown): void {
    const r = this.enc.encode(v);
    if (r === ENCODE_OK) return;
    if (r === ENCODE_TOO_LARGE) throw new ValueTooLargeError(this.enc.error, { size: this.enc.len, limit: this.store.maxValueBytes });
    if (r === ENCODE_UNDEFINED) throw new InvalidArgumentError(this.enc.error);
    throw new UnencodableValueError(this.enc.error);
  }

  /** @internal The expiry time a write's options (`{ ttl }`, a number of ms, or undefined: the map's default) give; throws on bad options. */
  expiry(options: SetOptions | number | undefined): number {
    const ttl = setTtl(options);
    if (ttl === undefined) {
      const d = this.registered().ttl;
      return d > 0 ? Date.now() + d : 0;
    }
    return ttl > 0 ? Date.now() + ttl : 0;
  }

  // ── locking ───────────────────────────────────────────────────────────────────────────────────

  /**
   * @internal Takes p's lock for a section that follows without any await. Returns undefined
   * when the lock is held now, with nothing else of this thread having run in between (the key
   * and value scratch are intact); or, on the main thread under contention, a promise to await,
   * after which the caller must re-derive its scratch (key(), value()).
   *
   * Never `await` a lock that was free: even an already-resolved await lets other calls of this
   * thread run while the lock is held, which (a) overwrites the thread's key scratch, so the
   * resumed call wrote another call's key (two concurrent increments on one thread corrupted a
   * partition that way), and (b) on a worker, lets another call of the same thread block
   * synchronously (Atomics.wait) on the lock its holder can then never release. So a worker takes
   * it with no await at all; the main thread may await (its contenders wait with waitAsync and
   * never block the holder). `asyncWait`: wait with waitAsync on a worker too (a thread whose
   * waits are all asynchronous never blocks a holder of its own: compute/local.ts computeTask).
   */
  lockNow(p: number, asyncWait = isMainThread): Promise<unknown> | undefined {
    const st = this.store;
    const li = st.lockIndex(p);
    if (tryLock(st.ci, li)) return undefined;
    if (asyncWait) return this.acquire(p);
    this.checkTaken(p, lockSync(st.ci, li, this.host.lockTimeout, G_CLOSED), this.host.lockTimeout);
    return undefined;
  }

  /**
   * Main-thread wait for partition p's lock (lockNow's slow path, after tryLock failed). Resolves
   * once it is held; the caller then re-derives its thread scratch (key, encoded value), which
   * other calls of this thread may have used while it waited.
   */
  private async acquire(p: number): Promise<void> {
    const t = this.host.lockTimeout;
    this.checkTaken(p, await lockAsync(this.store.ci, this.store.lockIndex(p), t, G_CLOSED), t);
  }

  /**
   * After a wait for p's lock: a typed error when the grid closed meanwhile (the wait ends when
   * it does; a lock taken is let go first), or when the wait timed out.
   */
  private checkTaken(p: number, taken: boolean, timeoutMs: number, message?: string): void {
    if (!taken && this.store.closed) throw new GridClosedError('the grid is closed');
    if (!taken) throw new LockTimeoutError(message ?? `timed out after ${timeoutMs} ms waiting for the lock of partition ${p}`, { partition: p, timeoutMs });
    const st = this.store;
    if (st.closed) {
      unlock(st.ci, st.lockIndex(p));
      throw new GridClosedError('the grid is closed');
    }
  }

  /** @internal Ends p's write section and lets go of its lock. */
  release(p: number): void {
    this.store.endWrite(p);
    unlock(this.store.ci, this.store.lockIndex(p));
  }

  /** @internal Throws GRID_ERR_MEMORY_FULL (a put that found no room). */
  memoryFull(): never {
    throw new MemoryFullError(this.store.fullMessage());
  }

  // ── reads ─────────────────────────────────────────────────────────────────────────────────────

  /** Lock-free read of the current key into outValue. Returns FOUND, MISS, EXPIRED or NEED_LOCK. */
  private readOptimistic(p: number): number {
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s === SEQ_BUSY) continue;
      const off = st.probe(p, this.id);
      const r = off >= 0 ? decodeRecord(st, off, 0) : MISS;
      outSlot = st.lastSlot;
      outTref = st.tableRef(p);
      if (!st.readValid(p, s)) continue;
      if (r === FOUND) {
        finishDecode();
        outTick = st.touch(off);
        outSeq = s;
      }
      return r;
    }
    return NEED_LOCK;
  }

  /** Read under the lock (after a writer kept the partition busy for too long). */
  private async readLocked(key: string): Promise<number> {
    let p = this.key(key);
    const wait = this.lockNow(p);
    if (wait !== undefined) {
      await wait;
      p = this.key(key);
    }
    return this.readHeld(p);
  }

  /** The read of readLocked once partition p's lock is held; releases it. */
  private readHeld(p: number): number {
    const st = this.store;
    st.beginWrite(p);
    try {
      const off = st.probe(p, this.id);
      if (off < 0) return MISS;
      const r = decodeRecord(st, off, Date.now());
      if (r === EXPIRED) st.expireAt(p, this.id, off);
      else if (r === FOUND) finishDecode();
      return r;
    } finally {
      this.release(p);
    }
  }

  /**
   * @internal The value of the record at `off`, for code that holds its partition's lock
   * (compute, scans, entries: src/compute/local.ts, src/map-bulk.ts); EXPIRED_RECORD when its
   * entry expired by `now`, NO_RECORD when its bounds do not hold. `copied`: a msgpack value is
   * decoded with decodeCopied (partition scans), else as a read decodes it.
   */
  lockedValue(off: number, now: number, copied: boolean): unknown {
    const st = this.store;
    const r = decodeRecord(st, off, now);
    if (r !== FOUND) return r === EXPIRED ? EXPIRED_RECORD : NO_RECORD;
    if (copied && outType === T_MSGPACK) return decodeCopied(copyBuf, outValue as number);
    finishDecode();
    return outValue;
  }

  /** Lazy expiry: drop an expired entry if its lock is free right now (never waits). */
  private dropExpired(p: number): void {
    const st = this.store;
    if (!tryLock(st.ci, st.lockIndex(p))) return;
    st.beginWrite(p);
    try {
      const off = st.probe(p, this.id);
      if (off >= 0 && st.isExpired(off, Date.now())) st.expireAt(p, this.id, off);
    } finally {
      this.release(p);
    }
  }

  /**
   * Records the location and value of the read that just validated (strings, numbers, objects;
   * byte arrays are never memoized, objects only with cacheValues). Call right after
   * memos.get(key) missed; the store's key scratch still holds `key`.
   */
  private remember(key: string, p: number, value: unknown): void {
    if (outType === T_BYTES || (outType === T_MSGPACK && !this.registered().cacheValues)) {
      if (this.memos.last >= 0) this.memos.forget(key);
      return;
    }
    this.memos.remember(key, this.store.ksh, p, outTref, outSlot, outOff, outVersion, outExp, outSeq, outTick, value, outLen);
  }

  /** @internal synchronous local get; undefined on miss, NEED when it must read under the lock. */
  getLocal(key: string): V | undefined | typeof NEED {
    if (this.countOps) this.ops[OP_GET]++;
    this.host.assertOpen(this.internal);
    const hit = this.memos.get(key, this.store);
    if (hit !== MEMO_MISS) {
      this.store.hit();
      return hit as V;
    }
    const p = this.key(key);
    const r = this.readOptimistic(p);
    if (r === FOUND) {
      this.store.hit();
      this.remember(key, p, outValue);
      return outValue as V;
    }
    if (r === NEED_LOCK) return NEED;
    this.store.miss();
    // the key is gone: let go of its memo's value now rather than when the CLOCK hand gets to it
    if (this.memos.last >= 0) this.memos.forget(key);
    if (r === EXPIRED) this.dropExpired(p);
    return undefined;
  }

  /**
   * Synchronous get of a key held in this process (every key of a single-process grid). The
   * returned object may be shared with other gets of this thread: do not mutate it (see
   * MapOptions.cacheValues). Throws a GridError when the partition stayed locked by a writer for
   * longer than an optimistic read allows; use get() there.
   *
   * @param key - The key.
   * @returns The value, or undefined when the key is absent or its entry expired.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the partition stayed locked by a writer for 200 ms (GRID_ERR_LOCK_TIMEOUT).
   * @throws {UnsupportedError} in a cluster member or a thread attached to one, when the key's
   * primary is not this process (GRID_ERR_UNSUPPORTED).
   * @throws {PartitionUnavailableError} in a cluster, when this member holds no lease for the
   * key's partition now (GRID_ERR_PARTITION_UNAVAILABLE).
   */
  getSync(key: string): V | undefined {
    const v = this.getLocal(key);
    return v !== NEED ? v : this.getSyncBusy(key);
  }

  /**
   * getSync when a writer kept the partition busy through a whole optimistic spin: usually a
   * writer thread the OS preempted inside its critical section (on 2 cores with 4 busy threads
   * this happened about once per 20,000 reads of a key rewritten back to back). Take the lock
   * synchronously and read under it. lockSync sleeps on the lock word (in 1 ms slices on the main
   * thread) instead of spinning, so the preempted writer gets the core back; a busy spin here
   * competed with it and, on a loaded 2-core CI machine, outlasted a 20 ms deadline. After
   * GETSYNC_WAIT_MS without the lock it gives up with a typed error (a holder that died is only
   * recovered once this thread's event loop runs again).
   */
  private getSyncBusy(key: string): V | undefined {
    const st = this.store;
    const p = this.key(key);
    const taken = lockSync(st.ci, st.lockIndex(p), GETSYNC_WAIT_MS, G_CLOSED);
    this.checkTaken(p, taken, GETSYNC_WAIT_MS, `partition of key '${key}' stayed locked for ${GETSYNC_WAIT_MS} ms; use get()`);
    return this.counted(this.readHeld(p));
  }

  /** The value of a read under the lock, counted as a hit or a miss. */
  private counted(r: number): V | undefined {
    if (r === FOUND) {
      this.store.hit();
      return outValue as V;
    }
    this.store.miss();
    return undefined;
  }

  /**
   * The value of `key`. A hit on a key held in this process is served from shared memory on the
   * calling thread (or from this thread's read memo, while the entry is unchanged). The returned
   * object may be shared with other gets of this thread: do not mutate it (see
   * MapOptions.cacheValues).
   *
   * @param key - The key.
   * @returns The value, or undefined when the key is absent or its entry expired.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   *
   * @example
   * ```ts
   * const user = await users.get('u:1'); // undefined when absent
   * ```
   */
  get(key: string): Promise<V | undefined> {
    // Not an async function: a hit costs one resolved promise and no async frame.
    let v: V | undefined | typeof NEED;
    try {
      v = this.getLocal(key);
    } catch (err) {
      return Promise.reject(err);
    }
    return v !== NEED ? Promise.resolve(v) : this.getLocked(key);
  }

  private async getLocked(key: string): Promise<V | undefined> {
    return this.counted(await this.readLocked(key));
  }

  /**
   * Whether `key` has an entry that has not expired.
   *
   * @param key - The key.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  async has(key: string): Promise<boolean> {
    if (this.countOps) this.ops[OP_READ]++;
    this.host.assertOpen(this.internal);
    const p = this.key(key);
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s === SEQ_BUSY) continue;
      const off = st.probe(p, this.id);
      const live = off >= 0 && !st.isExpired(off, Date.now());
      if (st.readValid(p, s)) return live;
    }
    return (await this.readLocked(key)) === FOUND;
  }

  /**
   * The values of `keys`, in their order (undefined for each absent or expired key).
   *
   * @param keys - The keys.
   * @throws {InvalidArgumentError} when `keys` is not an array, or one of them is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when a key is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when a key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  async getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array of strings');
    const out = new Array<V | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const v = this.getLocal(keys[i]);
      out[i] = v === NEED ? await this.get(keys[i]) : v;
    }
    return out;
  }

  /**
   * Remaining time to live in ms, or undefined when the key is absent or has no expiry.
   *
   * @param key - The key.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when writers kept the partition busy through every read attempt (GRID_ERR_LOCK_TIMEOUT).
   */
  async ttl(key: string): Promise<number | undefined> {
    if (this.countOps) this.ops[OP_READ]++;
    this.host.assertOpen(this.internal);
    const p = this.key(key);
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT * 4; spin++) {
      const s = st.readBegin(p);
      if (s === SEQ_BUSY) continue;
      const off = st.probe(p, this.id);
      const exp = off >= 0 ? st.expiresAt(off) : 0;
      if (!st.readValid(p, s)) continue;
      if (off < 0 || exp === 0) return undefined;
      const left = exp - Date.now();
      return left > 0 ? left : undefined;
    }
    throw new LockTimeoutError(`partition ${p} stayed busy while reading a ttl`, { partition: p, timeoutMs: 0 });
  }

  /**
   * The number of entries of this map (in a cluster, counted by every member over the partitions
   * it is the primary of). Read from per-partition counters, without a lock: entries whose time
   * to live passed count until they are reclaimed.
   *
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   */
  async size(): Promise<number> {
    this.host.assertOpen(this.internal);
    return this.store.mapSize(this.id);
  }

  /**
   * @internal Entries of this map that have an expiry (RESP's INFO keyspace `expires`), counted
   * like size(): per-partition counters, entries whose time passed included until reclaimed.
   */
  async expiring(): Promise<number> {
    this.host.assertOpen(this.internal);
    let n = 0;
    for (let p = 0; p < this.store.partitions; p++) n += this.store.mapTtlCountIn(p, this.id);
    return n;
  }

  // ── writes ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Stores `value` under `key`. The key and value are validated and encoded before any lock is
   * taken, so a bad one leaves nothing half done. In a cluster the promise resolves once the
   * primary and every backup applied the write.
   *
   * @param key - The key.
   * @param value - The value: a string, a number, a byte array, or anything msgpackr encodes (not undefined).
   * @param options - `{ ttl }` or a number of ms: the entry's time to live (0: none); absent: the map's default ttl.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {ValueTooLargeError} when the encoded value is over options.maxValueBytes (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {UnencodableValueError} when msgpackr cannot encode the value (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {InvalidArgumentError} when `value` is undefined, or `options` is not `{ ttl }` with a finite ttl >= 0 or such a number (GRID_ERR_INVALID_ARGUMENT).
   * @throws {MemoryFullError} when the memory budget is exhausted and nothing is left to evict (GRID_ERR_MEMORY_FULL).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   *
   * @example
   * ```ts
   * await users.set('u:1', { name: 'Ada' });                 // the map's default ttl
   * await users.set('u:1', { name: 'Ada' }, { ttl: 5_000 }); // or set(key, value, 5_000)
   * ```
   */
  set(key: string, value: V, options?: SetOptions | number): Promise<void> {
    if (this.countOps) this.ops[OP_SET]++;
    // Not an async function: when the partition lock is free (nearly always) the write happens
    // right here and the caller gets one shared, already-resolved promise.
    try {
      this.host.assertOpen(this.internal);
      const expiresAt = this.expiry(options);
      const p = this.key(key);
      this.value(value);
      const st = this.store;
      if (!tryLock(st.ci, st.lockIndex(p))) return this.setContended(key, value, expiresAt);
      this.putLocked(p, expiresAt);
      return RESOLVED;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  private async setContended(key: string, value: V, expiresAt: number): Promise<void> {
    let p = this.key(key);
    this.value(value);
    const wait = this.lockNow(p);
    if (wait !== undefined) {
      await wait;
      p = this.key(key);
      this.value(value);
    }
    this.putLocked(p, expiresAt);
  }

  /** Stores the encoder's value under the current key; the caller holds p's lock, released here. */
  private putLocked(p: number, expiresAt: number): void {
    const st = this.store;
    const e = this.enc;
    st.beginWrite(p);
    try {
      if (st.put(p, this.id, e.type, e.bytes, e.len, e.num, expiresAt) < 0) this.memoryFull();
    } finally {
      this.release(p);
    }
  }

  /**
   * Synchronous set of a key held in this process (every key of a single-process grid), for code
   * that writes as it would to lru-cache. Same validation and typed errors as set(). When another
   * thread holds the key's partition lock, waits for it synchronously: a worker with Atomics.wait
   * up to the grid's lockTimeout, the main thread in 1 ms slices up to GETSYNC_WAIT_MS, then
   * GRID_ERR_LOCK_TIMEOUT (use set(), which waits without blocking the event loop). In a cluster
   * member, or a thread attached to one, throws GRID_ERR_UNSUPPORTED: writes there are replicated.
   *
   * @param key - The key.
   * @param value - The value, as for set().
   * @param options - `{ ttl }` or a number of ms, as for set().
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {ValueTooLargeError} when the encoded value is over options.maxValueBytes (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {UnencodableValueError} when msgpackr cannot encode the value (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {InvalidArgumentError} when `value` is undefined, or `options` is not `{ ttl }` with a finite ttl >= 0 or such a number (GRID_ERR_INVALID_ARGUMENT).
   * @throws {MemoryFullError} when the memory budget is exhausted and nothing is left to evict (GRID_ERR_MEMORY_FULL).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the partition lock stayed busy for as long as described above (GRID_ERR_LOCK_TIMEOUT).
   * @throws {UnsupportedError} in a cluster member or a thread attached to one (GRID_ERR_UNSUPPORTED).
   */
  setSync(key: string, value: V, options?: SetOptions | number): void {
    if (this.countOps) this.ops[OP_SET]++;
    this.host.assertOpen(this.internal);
    this.assertSyncWrites('setSync', key);
    const expiresAt = this.expiry(options);
    const p = this.key(key);
    this.value(value);
    this.lockSyncNow(p, 'setSync', key);
    // held with nothing of this thread run in between (no await): the key and value scratch are intact
    this.putLocked(p, expiresAt);
  }

  /**
   * Synchronous delete of a key held in this process; returns whether it existed. Waits for a
   * busy lock as setSync does; GRID_ERR_UNSUPPORTED in a cluster.
   *
   * @param key - The key.
   * @returns True when an entry that had not expired was deleted.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the partition lock stayed busy for as long as setSync waits (GRID_ERR_LOCK_TIMEOUT).
   * @throws {UnsupportedError} in a cluster member or a thread attached to one (GRID_ERR_UNSUPPORTED).
   */
  deleteSync(key: string): boolean {
    if (this.countOps) this.ops[OP_DELETE]++;
    this.host.assertOpen(this.internal);
    this.assertSyncWrites('deleteSync', key);
    const p = this.key(key);
    this.lockSyncNow(p, 'deleteSync', key);
    this.store.beginWrite(p);
    try {
      return this.store.remove(p, this.id, Date.now());
    } finally {
      this.release(p);
    }
  }

  private assertSyncWrites(op: string, key: string): void {
    if (!this.syncWrites) throw new UnsupportedError(`${op}: writes in a cluster are routed and replicated and cannot complete synchronously (key '${key}'); use ${op === 'setSync' ? 'set' : 'delete'}()`);
  }

  /** Takes p's lock without yielding (see setSync for how long it waits); throws on timeout or close. */
  private lockSyncNow(p: number, op: string, key: string): void {
    const st = this.store;
    const li = st.lockIndex(p);
    if (tryLock(st.ci, li)) return;
    const ms = isMainThread ? GETSYNC_WAIT_MS : this.host.lockTimeout;
    this.checkTaken(p, lockSync(st.ci, li, ms, G_CLOSED), ms, `${op}: partition of key '${key}' stayed locked for ${ms} ms; use ${op === 'setSync' ? 'set' : 'delete'}()`);
  }

  /**
   * Deletes `key`'s entry.
   *
   * @param key - The key.
   * @returns True when an entry that had not expired was deleted.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  async delete(key: string): Promise<boolean> {
    if (this.countOps) this.ops[OP_DELETE]++;
    this.host.assertOpen(this.internal);
    let p = this.key(key);
    const wait = this.lockNow(p);
    if (wait !== undefined) {
      await wait;
      p = this.key(key);
    }
    this.store.beginWrite(p);
    try {
      return this.store.remove(p, this.id, Date.now());
    } finally {
      this.release(p);
    }
  }

  /**
   * Stores `value` only when `key` has no entry (an expired one counts as none), atomically.
   *
   * @param key - The key.
   * @param value - The value, as for set().
   * @param options - `{ ttl }` or a number of ms, as for set().
   * @returns True when the value was stored.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {ValueTooLargeError} when the encoded value is over options.maxValueBytes (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {UnencodableValueError} when msgpackr cannot encode the value (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {InvalidArgumentError} when `value` is undefined, or `options` is not `{ ttl }` with a finite ttl >= 0 or such a number (GRID_ERR_INVALID_ARGUMENT).
   * @throws {MemoryFullError} when the memory budget is exhausted and nothing is left to evict (GRID_ERR_MEMORY_FULL).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  setIfAbsent(key: string, value: V, options?: SetOptions | number): Promise<boolean> {
    if (this.countOps) this.ops[OP_ATOMIC]++;
    return setIfAbsentHere(this, key, value, options);
  }

  /**
   * Stores `next` when the current value encodes to the same bytes as `expected` (`expected`
   * undefined matches an absent key). Keeps the entry's expiry (a new entry gets the map's
   * default ttl).
   *
   * @param key - The key.
   * @param expected - The value the entry must hold, or undefined for no entry.
   * @param next - The value to store.
   * @returns True when `next` was stored.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {ValueTooLargeError} when the encoded value is over options.maxValueBytes (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {UnencodableValueError} when msgpackr cannot encode the value (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {InvalidArgumentError} when `next` is undefined (GRID_ERR_INVALID_ARGUMENT).
   * @throws {MemoryFullError} when the memory budget is exhausted and nothing is left to evict (GRID_ERR_MEMORY_FULL).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  compareAndSet(key: string, expected: V | undefined, next: V): Promise<boolean> {
    if (this.countOps) this.ops[OP_ATOMIC]++;
    return compareAndSetHere(this, key, expected, next);
  }

  /**
   * @internal The live record of the current key in partition p, or -1; an expired one is dropped
   * first. The caller holds p's lock inside beginWrite.
   */
  liveRecord(p: number, now: number): number {
    const st = this.store;
    const off = st.probe(p, this.id);
    if (off < 0 || !st.isExpired(off, now)) return off;
    st.expireAt(p, this.id, off);
    return -1;
  }

  /**
   * Atomically adds `delta` to a number entry (absent → 0 first) and returns the new value. A new
   * entry gets the map's default ttl; an existing one keeps its expiry.
   *
   * @param key - The key.
   * @param delta - What to add (default 1); a finite number.
   * @returns The new value.
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {InvalidArgumentError} when `delta` is not a finite number, or the sum would not be (past ±1.8e308; the value stays) (GRID_ERR_INVALID_ARGUMENT).
   * @throws {WrongTypeError} when the entry holds a value that is not a number (GRID_ERR_WRONG_TYPE).
   * @throws {MemoryFullError} when the memory budget is exhausted and nothing is left to evict (GRID_ERR_MEMORY_FULL).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  async increment(key: string, delta = 1): Promise<number> {
    if (this.countOps) this.ops[OP_ATOMIC]++;
    this.host.assertOpen(this.internal);
    if (typeof delta !== 'number' || !Number.isFinite(delta)) throw new InvalidArgumentError(`delta must be a finite number (got ${shownArg(delta)})`);
    let p = this.key(key);
    const wait = this.lockNow(p);
    if (wait !== undefined) {
      await wait;
      p = this.key(key);
    }
    const st = this.store;
    st.beginWrite(p);
    try {
      const off = this.liveRecord(p, Date.now());
      if (off < 0) {
        if (st.put(p, this.id, T_NUMBER, null, 8, delta, this.expiry(undefined)) < 0) this.memoryFull();
        return delta;
      }
      if (st.typeOf(off) !== T_NUMBER) throw new WrongTypeError(`increment needs a number value; key '${key}' holds another type`);
      const old = st.f64[st.valueOffset(off) >>> 3];
      const n = old + delta;
      // past the largest double: refused, as Redis refuses an INCRBYFLOAT to inf (it stored Infinity)
      if (!Number.isFinite(n)) throw new InvalidArgumentError(`increment of key '${key}' by ${delta} would make it ${n}; it stays ${old}`);
      st.setNumberInPlace(p, off, n);
      return n;
    } finally {
      this.release(p);
    }
  }

  /**
   * @internal An atomic read-modify-write of `key` seen as a byte string: the update named `kind`
   * (src/updates.ts) reads the current bytes and expiry and decides what to store, all under the
   * partition lock (RESP's SET NX/XX/GET, INCR, APPEND, GETDEL, EXPIRE...). A value stored by the
   * library API is seen as its bytes: UTF-8 of a string, the decimal text of a number, the msgpack
   * bytes of anything else. What it writes is a byte array (T_BYTES).
   */
  updateBytes(key: string, kind: string, arg: unknown): Promise<UpdateReply> {
    if (this.countOps) this.ops[OP_ATOMIC]++;
    return updateBytesHere(this, key, kind, arg);
  }

  /**
   * @internal updateBytes done in the call when p's lock is free now (nearly always): the reply,
   * or undefined when the lock is taken (then call updateBytes). This map's own memory only: a
   * routed map must not be given it (the RESP endpoint uses it on single-process grids only).
   */
  updateBytesNow(key: string, kind: string, arg: unknown): UpdateReply | undefined {
    this.host.assertOpen(this.internal);
    const fn = byteUpdate(kind);
    const p = this.key(key);
    const st = this.store;
    if (!tryLock(st.ci, st.lockIndex(p))) return undefined;
    if (this.countOps) this.ops[OP_ATOMIC]++;
    return updateLocked(this, p, fn, kind, arg);
  }

  /** @internal The live keys of this map in partition `p` (RESP SCAN walks partitions with it). */
  async keysIn(p: number): Promise<string[]> {
    const out: string[] = [];
    await this.scanPartition(p, true, false, (k) => void out.push(k as string));
    return out;
  }

  /**
   * Stores many entries. All keys and values are validated before anything is written, so a bad
   * entry rejects the whole call and stores nothing. Each partition is locked once, and the call
   * suspends only when a lock is busy. Entries of one key are written in the order given. In a
   * cluster a retried setMany may write a key's value again (it carries no request id).
   *
   * @param entries - `[key, value]` pairs.
   * @param options - `{ ttl }` or a number of ms for every entry, as for set().
   * @throws {InvalidArgumentError} when `entries` is not an array of `[key, value]` pairs, a key
   * is not a string, a value is undefined, or `options` is invalid (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when a key is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {ValueTooLargeError} when an encoded value is over options.maxValueBytes (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {UnencodableValueError} when msgpackr cannot encode a value (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {MemoryFullError} when the memory budget is exhausted and nothing is left to evict (GRID_ERR_MEMORY_FULL).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when a key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  setMany(entries: ReadonlyArray<readonly [string, V]>, options?: SetOptions | number): Promise<void> {
    if (this.countOps && Array.isArray(entries)) this.ops[OP_SET] += entries.length;
    return setAll(this, entries, options);
  }

  /**
   * Read-through: the value of `key`, or, on a miss, `loader(key)`'s result, stored (with
   * `options.ttl`, else the map's) and returned. Concurrent misses of one key in every thread of
   * the process and, in a cluster, on every member call `loader` once; the others get its result,
   * or a `GRID_ERR_FETCH_LOADER` error with its message when it throws (nothing is cached then).
   * `staleWhileRevalidate: ms` serves a value up to that long past its ttl while one caller
   * refreshes it in the background. See src/fetch.ts.
   *
   * @param key - The key.
   * @param loader - Called with `key` on a miss; its result (or the value its promise resolves to) is stored and returned.
   * @param options - `ttl` of the loaded value, `staleWhileRevalidate` ms, `timeoutMs` (default 30000); or a number of ms, the ttl, as for set() (0: no expiry).
   * @returns The stored or loaded value.
   * @throws {TimeoutError} when another caller's load did not finish within `timeoutMs` (30 s) (GRID_ERR_TIMEOUT).
   * @throws {FetchLoaderError} when the loader of another thread or member, whose load this call
   * waited for, threw (GRID_ERR_FETCH_LOADER); the error of this caller's own loader is thrown as it is.
   * @throws {InvalidArgumentError} when `loader` is not a function, `options` has an unknown or
   * invalid field, is a number that is not a finite ttl >= 0, or `staleWhileRevalidate` is given with no ttl here nor in the map (GRID_ERR_INVALID_ARGUMENT).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   *
   * @example
   * ```ts
   * const user = await users.fetch('u:42', async (key) => db.loadUser(key), { ttl: 60_000 });
   * const same = await users.fetch('u:42', async (key) => db.loadUser(key), 60_000); // the ttl, as set(key, value, 60_000)
   * ```
   */
  async fetch(key: string, loader: Loader<V>, options?: FetchOptions | number): Promise<V> {
    this.host.assertOpen(this.internal);
    const claims = this.host.map?.(CLAIM_MAP);
    if (claims === undefined) throw new UnsupportedError('map.fetch needs the map of a grid');
    // a bare number is the ttl, read exactly as set() reads one (setTtl: finite, >= 0, 0 = no expiry)
    return fetchThrough<V>(this, claims, key, loader, typeof options === 'number' ? { ttl: setTtl(options) } : options);
  }

  /**
   * Deletes every entry of this map, partition by partition, each under its lock (not atomically
   * across partitions); the other maps are untouched. In a cluster, on every member.
   *
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when a partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  clear(): Promise<void> {
    return clearAll(this);
  }

  /**
   * Streams [key, value] pairs partition by partition; each partition is copied under its lock.
   * Expired entries are skipped. Unordered.
   *
   * @throws {GridClosedError} when the grid is closed before the iteration ends (GRID_ERR_CLOSED).
   */
  entries(): AsyncGenerator<[string, V]> {
    return entriesOf<V>(this);
  }

  // ── compute next to the data (src/compute/local.ts; native-notes.md, "Compute") ───────────────

  /**
   * Runs an entry processor on `key`'s entry atomically (no other write to the key interleaves)
   * and returns its result. `processor` is `{ module, name }`: the name of a module registered at
   * start (options.compute.modules) and one of its exports, called as `fn(entry, arg)` with
   * `entry = { key, value }`; an unregistered name fails with GRID_ERR_UNKNOWN_MODULE. What it
   * assigns to `entry.value` is stored (undefined deletes the key); not assigning leaves the entry
   * untouched. Processors are synchronous and must not write to the grid themselves. One that
   * runs longer than options.compute.processorTimeoutMs (default 2 s) is stopped.
   *
   * @typeParam R - The type of the processor's result.
   * @param key - The key.
   * @param processor - `{ module, name }`: a module registered in options.compute.modules and one of its exports.
   * @param arg - The processor's second argument.
   * @returns The processor's return value.
   * @throws {InvalidArgumentError} when `processor` is not `{ module, name }` of non-empty strings (GRID_ERR_INVALID_ARGUMENT).
   * @throws {UnknownModuleError} when `processor.module` is not a registered module name (GRID_ERR_UNKNOWN_MODULE).
   * @throws {ModuleLoadError} when the module cannot be loaded, or the export is missing or not a function (GRID_ERR_MODULE).
   * @throws {ComputeError} when the processor throws or returns a Promise; the entry is unchanged (GRID_ERR_COMPUTE).
   * @throws {TimeoutError} when the processor ran longer than options.compute.processorTimeoutMs and was stopped; the entry is unchanged (GRID_ERR_TIMEOUT).
   * @throws {UnencodableValueError} when the result or the value it stores cannot be encoded; the entry is unchanged (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {ValueTooLargeError} when the value it stores is over options.maxValueBytes encoded; the entry is unchanged (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {InvalidArgumentError} when `key` is not a string (GRID_ERR_INVALID_ARGUMENT).
   * @throws {KeyTooLargeError} when `key` is over options.maxKeyBytes UTF-8 bytes (GRID_ERR_KEY_TOO_LARGE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   * @throws {LockTimeoutError} when the key's partition lock was not acquired within options.lockTimeout (GRID_ERR_LOCK_TIMEOUT).
   */
  compute<R = unknown>(key: string, processor: ComputeRef, arg?: unknown): Promise<R> {
    return this.computeLocal<R>(key, processor, arg);
  }

  /**
   * @internal compute on this thread, for a key whose partition is held in this process. The
   * module is loaded before the lock is taken; the processor runs under the partition lock, for at
   * most `limitMs` (default options.compute.processorTimeoutMs; 0: no limit).
   */
  computeLocal<R = unknown>(key: string, processor: ComputeRef, arg?: unknown, limitMs = this.host.processorTimeoutMs): Promise<R> {
    if (this.countOps) this.ops[OP_ATOMIC]++;
    return computeHere(this, key, processor, arg, limitMs) as Promise<R>;
  }

  /** @internal An entry processor as a compute pool task (a cluster member's compute; compute/local.ts). */
  computeTask(t: ProcessorTask): Promise<ProcessorReply> {
    return computeTaskHere(this, t);
  }

  /** @internal The caller's half of computeTask: pool thread `tid`'s write applied under the lock it kept (compute/local.ts). */
  applyComputed(key: string, reply: ProcessorReply, tid: number): Uint8Array | undefined {
    return applyComputedHere(this, key, reply, tid);
  }

  /**
   * Aggregates this map's entries in the grid's compute pool: one task per pool thread over a
   * share of the partitions, partial results combined here. `aggregator` is a built-in
   * ('count', 'sum', 'min', 'max', 'distinct'; `arg` `{ field: 'a.b' }` or none) or `{ module,
   * name }` naming a registered module and its `{ init, accumulate, combine, finish? }` export.
   *
   * @typeParam R - The type of the result.
   * @param aggregator - A built-in name, or `{ module, name }` of a registered module's aggregator export.
   * @param arg - `{ field }` for a built-in (a dot path into object values), or the user aggregator's argument.
   * @returns The combined (and, with `finish`, finished) result.
   * @throws {InvalidArgumentError} when `aggregator` is not a built-in or `{ module, name }`, or a built-in's `arg` is invalid (GRID_ERR_INVALID_ARGUMENT).
   * @throws {WrongTypeError} when `sum`, `min` or `max` meet a value or field that is not a number (GRID_ERR_WRONG_TYPE).
   * @throws {UnknownModuleError} when `aggregator.module` is not a registered module name (GRID_ERR_UNKNOWN_MODULE).
   * @throws {ModuleLoadError} when the module cannot be loaded or its export is not an aggregator (GRID_ERR_MODULE).
   * @throws {ComputeError} when a function of the user aggregator throws or returns a Promise (GRID_ERR_COMPUTE).
   * @throws {UnencodableValueError} when a user aggregator's accumulator cannot be passed between threads (GRID_ERR_UNENCODABLE_VALUE).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   *
   * @example
   * ```ts
   * await orders.aggregate('sum', { field: 'price' });
   * await orders.aggregate({ module: 'procs', name: 'revenue' });
   * ```
   */
  aggregate<R = unknown>(aggregator: AggregatorRef, arg?: unknown): Promise<R> {
    return aggregateHere(this, aggregator, arg) as Promise<R>;
  }

  /**
   * @internal Visits this map's live entries in partition `p` under the partition's lock, decoding
   * keys and values only when asked. Nothing is written, so the seqlock stays even and readers are
   * not held up. `visit` must not use the grid.
   */
  scanPartition(p: number, keys: boolean, values: boolean, visit: ScanVisit, field?: ScanField): Promise<void> {
    return scanHere(this, p, keys, values, visit, field);
  }

  /** `for await (const [key, value] of map)`: the same as {@link GridMap.entries}. */
  [Symbol.asyncIterator](): AsyncGenerator<[string, V]> {
    return this.entries();
  }
}

/**
 * The one already-resolved promise `set` returns when the write happened in the call (the lock
 * was free): a caller may compare against it to reply at once (the RESP endpoint). @internal
 */
export const RESOLVED: Promise<void> = Promise.resolve();

/** Marker for "the optimistic read gave up; read under the lock". */
export const NEED: unique symbol = Symbol('shardgrid.needLock');
