/**
 * GridMap: the user-facing map API. Every operation on a partition held in this process runs on
 * the calling thread against shared memory: reads are optimistic (seqlock, no lock, no message),
 * writes take the partition's mutex. See native-notes.md, "Life of a get and a set".
 */
import { isMainThread } from 'node:worker_threads';
import { resolveMapOptions, type MapOptions } from './config.js';
import {
  GridClosedError, InvalidArgumentError, KeyTooLargeError, LockTimeoutError, MemoryFullError,
  UnencodableValueError, ValueTooLargeError, WrongTypeError,
} from './errors.js';
import { ENCODE_OK, ENCODE_TOO_LARGE, ENCODE_UNDEFINED, ValueEncoder, decodeMsgpack, type EncodedValue } from './storage/codec.js';
import { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from './storage/layout.js';
import { NEED_LOCK, READ_SPIN_LIMIT, type ShardStore } from './storage/store.js';
import { lockAsync, lockSync, tryLock, unlock } from './sync/mutex.js';

/** What a map needs from the grid (or attached grid) it belongs to. */
export interface MapHost {
  readonly store: ShardStore;
  readonly encoder: ValueEncoder;
  readonly lockTimeout: number;
  assertOpen(): void;
}

const MISS = 0;
const FOUND = 1;
const EXPIRED = 2;

// Read results land here instead of in a fresh object per call (one reader per thread at a time:
// reads never await between filling and consuming these).
let outValue: unknown;
let outVersion = 0;
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
  switch (store.typeOf(off)) {
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

function finishDecode(store: ShardStore, off: number): void {
  if (store.typeOf(off) === T_MSGPACK) outValue = decodeMsgpack(copyBuf.subarray(0, outValue as number));
}

export class GridMap<V = unknown> {
  readonly name: string;
  readonly defaultTtl: number;
  /** @internal */
  readonly id: number;
  private readonly host: MapHost;
  private readonly store: ShardStore;
  private readonly enc: ValueEncoder;

  /** @internal use grid.map(name) */
  constructor(host: MapHost, name: string, id: number, options?: MapOptions) {
    this.host = host;
    this.store = host.store;
    this.enc = host.encoder;
    this.name = name;
    this.id = id;
    this.defaultTtl = resolveMapOptions(options).ttl;
  }

  // ── key and value preparation (throws typed errors before any lock is taken) ────────────────

  private key(key: string): number {
    if (typeof key !== 'string') throw new InvalidArgumentError(`key must be a string (got ${key === null ? 'null' : typeof key})`);
    if (this.store.setKey(key, this.id) < 0) {
      throw new KeyTooLargeError(`key is ${Buffer.byteLength(key)} bytes, over maxKeyBytes (${this.store.maxKeyBytes})`, { size: Buffer.byteLength(key), limit: this.store.maxKeyBytes });
    }
    return this.store.kpart;
  }

  private value(v: unknown): void {
    const r = this.enc.encode(v);
    if (r === ENCODE_OK) return;
    if (r === ENCODE_TOO_LARGE) throw new ValueTooLargeError(this.enc.error, { size: this.enc.len, limit: this.store.maxValueBytes });
    if (r === ENCODE_UNDEFINED) throw new InvalidArgumentError(this.enc.error);
    throw new UnencodableValueError(this.enc.error);
  }

  private expiry(ttl: number | undefined): number {
    if (ttl === undefined) return this.defaultTtl > 0 ? Date.now() + this.defaultTtl : 0;
    if (typeof ttl !== 'number' || !Number.isFinite(ttl) || ttl < 0) throw new InvalidArgumentError(`options.ttl must be a finite number of ms >= 0 (got ${String(ttl)})`);
    return ttl > 0 ? Date.now() + ttl : 0;
  }

  // ── locking ───────────────────────────────────────────────────────────────────────────────────

  /** Acquires partition p's lock. Returns true when it had to wait (thread scratch may be stale). */
  private async acquire(p: number): Promise<boolean> {
    const st = this.store;
    const li = st.lockIndex(p);
    if (tryLock(st.ci, li)) return false;
    const ok = isMainThread ? await lockAsync(st.ci, li, this.host.lockTimeout) : lockSync(st.ci, li, this.host.lockTimeout);
    if (!ok) throw new LockTimeoutError(`timed out after ${this.host.lockTimeout} ms waiting for the lock of partition ${p}`, { partition: p, timeoutMs: this.host.lockTimeout });
    if (st.closed) {
      unlock(st.ci, li);
      throw new GridClosedError('the grid is closed');
    }
    return true;
  }

  private release(p: number): void {
    this.store.endWrite(p);
    unlock(this.store.ci, this.store.lockIndex(p));
  }

  private memoryFull(): never {
    throw new MemoryFullError('memory budget exhausted and nothing left to evict');
  }

  // ── reads ─────────────────────────────────────────────────────────────────────────────────────

  /** Lock-free read of the current key into outValue. Returns FOUND, MISS, EXPIRED or NEED_LOCK. */
  private readOptimistic(p: number): number {
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s < 0) continue;
      const off = st.probe(p, this.id);
      const r = off >= 0 ? decodeRecord(st, off, 0) : MISS;
      if (!st.readValid(p, s)) continue;
      if (r === FOUND) {
        finishDecode(st, off);
        st.touch(off);
      }
      return r;
    }
    return NEED_LOCK;
  }

  /** Read under the lock (after a writer kept the partition busy for too long). */
  private async readLocked(key: string): Promise<number> {
    const p = this.key(key);
    if (await this.acquire(p)) this.key(key);
    const st = this.store;
    st.beginWrite(p);
    try {
      const off = st.probe(p, this.id);
      if (off < 0) return MISS;
      const r = decodeRecord(st, off, Date.now());
      if (r === EXPIRED) st.expireAt(p, this.id, off);
      else if (r === FOUND) finishDecode(st, off);
      return r;
    } finally {
      this.release(p);
    }
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

  /** @internal synchronous local get; undefined on miss. */
  getLocal(key: string): V | undefined | typeof NEED {
    this.host.assertOpen();
    const p = this.key(key);
    const r = this.readOptimistic(p);
    if (r === FOUND) {
      this.store.hit();
      return outValue as V;
    }
    if (r === NEED_LOCK) return NEED;
    this.store.miss();
    if (r === EXPIRED) this.dropExpired(p);
    return undefined;
  }

  async get(key: string): Promise<V | undefined> {
    const v = this.getLocal(key);
    if (v !== NEED) return v;
    const r = await this.readLocked(key);
    if (r === FOUND) {
      this.store.hit();
      return outValue as V;
    }
    this.store.miss();
    return undefined;
  }

  async has(key: string): Promise<boolean> {
    this.host.assertOpen();
    const p = this.key(key);
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s < 0) continue;
      const off = st.probe(p, this.id);
      const live = off >= 0 && !st.isExpired(off, Date.now());
      if (st.readValid(p, s)) return live;
    }
    return (await this.readLocked(key)) === FOUND;
  }

  async getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array of strings');
    const out = new Array<V | undefined>(keys.length);
    for (let i = 0; i < keys.length; i++) {
      const v = this.getLocal(keys[i]);
      out[i] = v === NEED ? await this.get(keys[i]) : v;
    }
    return out;
  }

  /** Remaining time to live in ms, or undefined when the key is absent or has no expiry. */
  async ttl(key: string): Promise<number | undefined> {
    this.host.assertOpen();
    const p = this.key(key);
    const st = this.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT * 4; spin++) {
      const s = st.readBegin(p);
      if (s < 0) continue;
      const off = st.probe(p, this.id);
      const exp = off >= 0 ? st.expiresAt(off) : 0;
      if (!st.readValid(p, s)) continue;
      if (off < 0 || exp === 0) return undefined;
      const left = exp - Date.now();
      return left > 0 ? left : undefined;
    }
    throw new LockTimeoutError(`partition ${p} stayed busy while reading a ttl`, { partition: p, timeoutMs: 0 });
  }

  async size(): Promise<number> {
    this.host.assertOpen();
    return this.store.mapSize(this.id);
  }

  // ── writes ────────────────────────────────────────────────────────────────────────────────────

  async set(key: string, value: V, options?: { ttl?: number }): Promise<void> {
    this.host.assertOpen();
    const expiresAt = this.expiry(options?.ttl);
    let p = this.key(key);
    this.value(value);
    if (await this.acquire(p)) {
      p = this.key(key);
      this.value(value);
    }
    const st = this.store;
    const e = this.enc;
    st.beginWrite(p);
    try {
      if (st.put(p, this.id, e.type, e.bytes, e.len, e.num, expiresAt) < 0) this.memoryFull();
    } finally {
      this.release(p);
    }
  }

  async delete(key: string): Promise<boolean> {
    this.host.assertOpen();
    let p = this.key(key);
    if (await this.acquire(p)) p = this.key(key);
    this.store.beginWrite(p);
    try {
      return this.store.remove(p, this.id, Date.now());
    } finally {
      this.release(p);
    }
  }

  async setIfAbsent(key: string, value: V, options?: { ttl?: number }): Promise<boolean> {
    this.host.assertOpen();
    const expiresAt = this.expiry(options?.ttl);
    let p = this.key(key);
    this.value(value);
    if (await this.acquire(p)) {
      p = this.key(key);
      this.value(value);
    }
    const st = this.store;
    const e = this.enc;
    st.beginWrite(p);
    try {
      const off = st.probe(p, this.id);
      if (off >= 0) {
        if (!st.isExpired(off, Date.now())) return false;
        st.expireAt(p, this.id, off);
      }
      if (st.put(p, this.id, e.type, e.bytes, e.len, e.num, expiresAt) < 0) this.memoryFull();
      return true;
    } finally {
      this.release(p);
    }
  }

  /**
   * Stores `next` when the current value encodes to the same bytes as `expected` (`expected`
   * undefined matches an absent key). Keeps the entry's expiry.
   */
  async compareAndSet(key: string, expected: V | undefined, next: V): Promise<boolean> {
    this.host.assertOpen();
    this.key(key);
    let exp: EncodedValue | null = null;
    if (expected !== undefined) {
      this.value(expected);
      exp = this.enc.snapshot();
    }
    let p = this.key(key);
    this.value(next);
    if (await this.acquire(p)) {
      p = this.key(key);
      this.value(next);
    }
    const st = this.store;
    const e = this.enc;
    st.beginWrite(p);
    try {
      const now = Date.now();
      let off = st.probe(p, this.id);
      if (off >= 0 && st.isExpired(off, now)) {
        st.expireAt(p, this.id, off);
        off = -1;
      }
      if (off < 0 ? exp !== null : !this.sameValue(off, exp)) return false;
      const expiresAt = off >= 0 ? st.expiresAt(off) : this.expiry(undefined);
      if (st.put(p, this.id, e.type, e.bytes, e.len, e.num, expiresAt) < 0) this.memoryFull();
      return true;
    } finally {
      this.release(p);
    }
  }

  private sameValue(off: number, exp: EncodedValue | null): boolean {
    if (exp === null) return false;
    const st = this.store;
    if (st.typeOf(off) !== exp.type || st.valueLength(off) !== exp.len) return false;
    const vo = st.valueOffset(off);
    if (exp.type === T_NUMBER) return Object.is(st.f64[vo >>> 3], exp.num);
    const b = exp.bytes as Uint8Array;
    for (let i = 0; i < exp.len; i++) if (st.u8[vo + i] !== b[i]) return false;
    return true;
  }

  /** Atomically adds `delta` to a number entry (absent → 0 first) and returns the new value. */
  async increment(key: string, delta = 1): Promise<number> {
    this.host.assertOpen();
    if (typeof delta !== 'number' || !Number.isFinite(delta)) throw new InvalidArgumentError(`delta must be a finite number (got ${String(delta)})`);
    let p = this.key(key);
    if (await this.acquire(p)) p = this.key(key);
    const st = this.store;
    st.beginWrite(p);
    try {
      const now = Date.now();
      let off = st.probe(p, this.id);
      if (off >= 0 && st.isExpired(off, now)) {
        st.expireAt(p, this.id, off);
        off = -1;
      }
      if (off < 0) {
        if (st.put(p, this.id, T_NUMBER, null, 8, delta, this.expiry(undefined)) < 0) this.memoryFull();
        return delta;
      }
      if (st.typeOf(off) !== T_NUMBER) throw new WrongTypeError(`increment needs a number value; key '${key}' holds another type`);
      const n = st.f64[st.valueOffset(off) >>> 3] + delta;
      st.setNumberInPlace(p, off, n);
      return n;
    } finally {
      this.release(p);
    }
  }

  /**
   * Stores many entries. All keys and values are validated before anything is written, so a bad
   * entry rejects the whole call and stores nothing. Each partition is locked once.
   */
  async setMany(entries: ReadonlyArray<readonly [string, V]>, options?: { ttl?: number }): Promise<void> {
    this.host.assertOpen();
    if (!Array.isArray(entries)) throw new InvalidArgumentError('entries must be an array of [key, value] pairs');
    const expiresAt = this.expiry(options?.ttl);
    const byPart = new Map<number, Array<[string, EncodedValue]>>();
    for (const pair of entries) {
      if (!Array.isArray(pair) || pair.length < 2) throw new InvalidArgumentError('entries must be an array of [key, value] pairs');
      const p = this.key(pair[0]);
      this.value(pair[1]);
      let list = byPart.get(p);
      if (list === undefined) byPart.set(p, (list = []));
      list.push([pair[0], this.enc.snapshot()]);
    }
    const st = this.store;
    for (const [p, list] of byPart) {
      await this.acquire(p);
      st.beginWrite(p);
      try {
        for (const [k, v] of list) {
          this.key(k);
          if (st.put(p, this.id, v.type, v.bytes, v.len, v.num, expiresAt) < 0) this.memoryFull();
        }
      } finally {
        this.release(p);
      }
    }
  }

  async clear(): Promise<void> {
    this.host.assertOpen();
    const st = this.store;
    for (let p = 0; p < st.partitions; p++) {
      await this.acquire(p);
      st.beginWrite(p);
      try {
        st.clearMap(p, this.id);
      } finally {
        this.release(p);
      }
    }
  }

  /** Streams [key, value] pairs partition by partition; each partition is copied under its lock. */
  async *entries(): AsyncGenerator<[string, V]> {
    const st = this.store;
    for (let p = 0; p < st.partitions; p++) {
      this.host.assertOpen();
      const batch: Array<[string, V]> = [];
      await this.acquire(p);
      st.beginWrite(p);
      try {
        const now = Date.now();
        st.forEachRecord(p, this.id, (off) => {
          if (st.isExpired(off, now)) return;
          if (decodeRecord(st, off, now) !== FOUND) return;
          finishDecode(st, off);
          batch.push([st.keyOf(off), outValue as V]);
        });
      } finally {
        this.release(p);
      }
      yield* batch;
    }
  }

  [Symbol.asyncIterator](): AsyncGenerator<[string, V]> {
    return this.entries();
  }
}

/** Marker for "the optimistic read gave up; read under the lock". */
export const NEED: unique symbol = Symbol('shardgrid.needLock');

/** Throws GridClosedError; shared by hosts. */
export function closedError(): GridClosedError {
  return new GridClosedError('the grid is closed');
}
