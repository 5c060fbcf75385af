/**
 * The user-facing coordination primitives over a CpRegion: FencedLock, AtomicLong, AtomicRef,
 * Semaphore, and `grid.cp` that hands them out by name.
 *
 * Every operation has a Promise form (the contract; a clustered grid will serve the same API from
 * its Raft log) and, in-process, a synchronous `*Sync` form. Sync forms that may wait use
 * Atomics.wait and refuse to run on the main thread, whose event loop must never block; the
 * Promise forms wait with Atomics.waitAsync in every thread.
 */
import { isMainThread } from 'node:worker_threads';
import { GridClosedError, InvalidArgumentError, LockNotHeldError, LockTimeoutError, UnsupportedError } from '../errors.js';
import { decodeMsgpack } from '../storage/codec.js';
import { encodeRefValue } from './encode.js';
import { LOCK_KEYS, SEMAPHORE_KEYS, TRY_LOCK_KEYS, leaseMsOf, optionsOf, timeoutMsOf } from './options.js';
import { waitAsyncAlive } from '../sync/mutex.js';
import { CP_LIMITS, isCpName, noSuchSemaphore } from '../cluster/metadata/cp-state.js';
import { K_LOCK, K_LONG, K_REF, K_SEMAPHORE, S_AVAIL, S_REF_LEN0, S_TOTAL } from './layout.js';
import { CpRegion, SELF, monoNow, type Pending } from './region.js';
import { ClusterAtomicLong, ClusterAtomicRef, ClusterFencedLock, ClusterSemaphore, sessionClosed, type ClusterCp } from './cluster.js';

/** Options of {@link FencedLock.lock}, `lockSync` and {@link CoordinationPrimitives.withLock}. */
export interface LockOptions {
  /** The hold ends this many ms after it was granted, unless unlocked first (finite, > 0). Default: no lease (until unlock or thread exit). */
  leaseMs?: number;
}

/** Options of {@link FencedLock.tryLock} and `tryLockSync`. */
export interface TryLockOptions extends LockOptions {
  /** How long to wait for the lock, ms (finite, >= 0). Default 0: do not wait. */
  timeoutMs?: number;
}

/** Options of {@link Semaphore.acquire} and `tryAcquire` (and their `*Sync` forms). */
export interface AcquireOptions {
  /** How long to wait for the permits, ms (finite, >= 0). acquire: default forever; tryAcquire: default 0. */
  timeoutMs?: number;
}

/** Options of {@link CoordinationPrimitives.semaphore}. */
export interface SemaphoreOptions {
  /** Permits of a new semaphore (integer >= 0). Optional for an existing one; when given it must match. */
  permits?: number;
}

/** An atomicRef's value with its version, from {@link AtomicRef.getVersioned}. */
export interface Versioned<T> {
  /** The value; undefined when the ref is unset. */
  value: T | undefined;
  /** Counts the writes of this ref: 0 before the first set. Never repeats, so a version CAS cannot suffer ABA. */
  version: number;
}

// ── argument checks ─────────────────────────────────────────────────────────────────────────────

function leaseOf(o: LockOptions | undefined, keys = LOCK_KEYS): number {
  return leaseMsOf(o, keys) ?? Infinity;
}

/** The give-up time of a wait; no clock read when there is no wait (timeout 0) or no end. */
const untilOf = (timeoutMs: number): number => (timeoutMs === Infinity ? Infinity : timeoutMs === 0 ? 0 : monoNow() + timeoutMs);

function assertMayBlock(what: string): void {
  if (isMainThread) throw new UnsupportedError(`${what} waits with Atomics.wait, which would block the main thread's event loop: use the Promise form there`);
}

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;

function toLong(v: unknown, what: string): bigint {
  if (typeof v === 'bigint') {
    if (v >= INT64_MIN && v <= INT64_MAX) return v;
  } else if (typeof v === 'number' && Number.isSafeInteger(v)) {
    return BigInt(v);
  }
  throw new InvalidArgumentError(`${what} must be a safe integer or a bigint in the signed 64-bit range (got ${typeof v === 'bigint' ? `${v}n` : String(v)})`);
}

// ── owners ──────────────────────────────────────────────────────────────────────────────────────

/**
 * Who holds what a handle acquires: this thread (THREAD), or a session of grid.cp.session()
 * (its own owner id in the region, and the waits to end when it closes).
 */
interface Owner {
  readonly id: number;
  closed: boolean;
  /** Waits in flight (waitAsync): close() ends them (a session's before it releases). */
  readonly pending?: Set<Pending>;
  /** The error of a call on a closed owner: GRID_ERR_CLOSED for a grid's thread, else GRID_ERR_CP_SESSION. */
  readonly closedError?: () => Error;
}

const THREAD: Owner = { id: SELF, closed: false };

/**
 * The owner of what grid.cp's handles take on this thread, one per grid: this thread (SELF), with
 * its waits in flight, so that grid.close() ends them (GRID_ERR_CLOSED) instead of leaving them
 * pending — they kept a process alive for good — and later calls of its handles fail.
 */
export function threadOwner(): Owner {
  return { id: SELF, closed: false, pending: new Set(), closedError: () => new GridClosedError('the grid is closed') };
}

const closedOf = (o: Owner): Error => (o.closedError ?? sessionClosed)();

/** Throws the owner's closed error when it is closed (the atomics' check on every call). */
function live(o: Owner): void {
  if (o.closed) throw closedOf(o);
}

/**
 * Closes owner `o` and ends its waits in flight: each finds its deadline passed and leaves the
 * queue (or takes a grant that came first), then rejects; resolves once none is left.
 */
async function endWaits(o: Owner, r: CpRegion): Promise<void> {
  o.closed = true;
  for (const p of o.pending!) {
    p.until = 0;
    Atomics.notify(r.i32, r.grantIndex(p.r));
  }
  while (o.pending!.size > 0) await new Promise((res) => setImmediate(res));
}

// ── waiting ─────────────────────────────────────────────────────────────────────────────────────

function waitSync(r: CpRegion, p: Pending): number {
  for (;;) {
    const ms = r.poll(p);
    if (ms < 0) return p.result;
    Atomics.wait(r.i32, r.grantIndex(p.r), 0, ms);
  }
}

async function waitAsync(r: CpRegion, p: Pending, o: Owner): Promise<number> {
  o.pending?.add(p);
  try {
    for (;;) {
      const ms = r.poll(p);
      // a session closed meanwhile ended this wait; what it was granted is released by the close.
      // A grid closed meanwhile (its thread owner) ends it too, unless the grant came first.
      if (ms < 0 && o.closed && (o.closedError === undefined || p.result === 0)) throw closedOf(o);
      if (ms < 0) return p.result;
      await waitAsyncAlive(r.i32, r.grantIndex(p.r), 0, ms);
    }
  } finally {
    o.pending?.delete(p);
  }
}

// ── FencedLock ──────────────────────────────────────────────────────────────────────────────────

/**
 * A mutual-exclusion lock shared by every thread that attached the grid, with fencing tokens:
 * every acquisition returns a number greater than any token issued before for this name. Pass
 * the token to the resource you guard and have it refuse older ones (createFence), so a holder
 * that lost its lease (paused, slow) cannot write after the next holder.
 *
 * Held by a thread (or by the session of grid.cp.session() that made the handle), not
 * re-entrant: a second lock() by the same holder waits like any other.
 */
export class FencedLock {
  private readonly i32: Int32Array;
  private readonly f64: Float64Array;
  private readonly owner: number;
  private readonly token: number;
  /** The lock word of a lease-less hold by this handle's owner with nobody queued. */
  private readonly me: number;

  /** @internal use grid.cp.lock(name) */
  constructor(
    private readonly r: CpRegion,
    private readonly s: number,
    /** The primitive's name (the same name is the same primitive in every thread). */
    readonly name: string,
    private readonly o: Owner = THREAD,
  ) {
    this.i32 = r.i32;
    this.f64 = r.f64;
    this.owner = r.ownerIndex(s);
    this.token = r.tokenIndex(s);
    this.me = o.id << 2;
  }

  /**
   * Waits until this thread holds the lock; resolves with its fencing token. Never blocks the
   * event loop. In a clustered grid the hold belongs to the member's CP session (a thread
   * attached to a member: its own session).
   *
   * @param options - `leaseMs`: the hold ends that long after it was granted (default: no lease).
   * @returns The fencing token: greater than every token issued before for this name.
   * @throws {InvalidArgumentError} when `leaseMs` is not a finite number > 0 (GRID_ERR_INVALID_ARGUMENT).
   * @throws {CpKindError} in a clustered grid (which checks the kind on use), when the name is used by a primitive of another kind (GRID_ERR_CP_KIND).
   *
   * @example
   * ```ts
   * const lock = grid.cp.lock('orders');
   * const token = await lock.lock({ leaseMs: 10_000 });
   * try {
   *   await saveOrder(order, token); // the resource refuses older tokens (createFence)
   * } finally {
   *   await lock.unlock();
   * }
   * ```
   */
  async lock(options?: LockOptions): Promise<number> {
    const t = this.start(leaseOf(options), true, Infinity);
    return typeof t === 'number' ? t : waitAsync(this.r, t, this.o);
  }

  /**
   * The token, or undefined when the lock was not acquired within timeoutMs (default 0).
   *
   * @param options - `timeoutMs` (default 0: do not wait) and `leaseMs`.
   * @returns The fencing token, or undefined.
   * @throws {InvalidArgumentError} when `timeoutMs` or `leaseMs` is invalid (GRID_ERR_INVALID_ARGUMENT).
   */
  async tryLock(options?: TryLockOptions): Promise<number | undefined> {
    const timeout = timeoutMsOf(options, 0, TRY_LOCK_KEYS);
    const t = this.start(leaseOf(options, TRY_LOCK_KEYS), timeout > 0, untilOf(timeout));
    const token = typeof t === 'number' ? t : await waitAsync(this.r, t, this.o);
    return token > 0 ? token : undefined;
  }

  /**
   * Releases; GRID_ERR_LOCK_NOT_HELD when this thread does not hold the lock or its lease passed.
   * The next waiter, if any, gets the lock.
   *
   * @throws {LockNotHeldError} when this thread (in a cluster: this member's session) does not hold the lock, or its lease passed (GRID_ERR_LOCK_NOT_HELD).
   */
  async unlock(): Promise<void> {
    this.unlockSync();
  }

  /** Whether some thread holds the lock now (with a lease that has not passed). */
  async isLocked(): Promise<boolean> {
    return this.r.isLocked(this.s);
  }

  /**
   * Worker threads only: blocks until held; returns the token. In-process grids only.
   *
   * @param options - `leaseMs`, as for lock().
   * @returns The fencing token.
   * @throws {UnsupportedError} on the main thread, and in a clustered grid (GRID_ERR_UNSUPPORTED).
   */
  lockSync(options?: LockOptions): number {
    const lease = leaseOf(options);
    assertMayBlock('lockSync');
    const t = this.start(lease, true, Infinity);
    return typeof t === 'number' ? t : waitSync(this.r, t);
  }

  /**
   * Any thread with timeoutMs 0 (the default: never waits); worker threads only for timeoutMs > 0.
   * In-process grids only.
   *
   * @param options - `timeoutMs` and `leaseMs`, as for tryLock().
   * @returns The fencing token, or undefined when the lock was not acquired in time.
   * @throws {UnsupportedError} with timeoutMs > 0 on the main thread, and in a clustered grid (GRID_ERR_UNSUPPORTED).
   */
  tryLockSync(options?: TryLockOptions): number | undefined {
    // the uncontended call without options: the region's lockFast, inlined (one CAS, the token)
    if (options === undefined && !this.o.closed) {
      if (Atomics.compareExchange(this.i32, this.owner, 0, this.me) === 0) return (this.f64[this.token] += 1);
      const t = this.r.lockSlow(this.s, Infinity, false, 0, this.o.id) as number;
      return t > 0 ? t : undefined;
    }
    const lease = leaseOf(options, TRY_LOCK_KEYS);
    const timeout = timeoutMsOf(options, 0, TRY_LOCK_KEYS);
    if (timeout > 0) assertMayBlock('tryLockSync with timeoutMs > 0');
    const t = this.start(lease, timeout > 0, untilOf(timeout));
    const token = typeof t === 'number' ? t : waitSync(this.r, t);
    return token > 0 ? token : undefined;
  }

  /**
   * unlock() without a promise. In-process grids only.
   *
   * @throws {LockNotHeldError} when this thread does not hold the lock, or its lease passed (GRID_ERR_LOCK_NOT_HELD).
   * @throws {UnsupportedError} in a clustered grid (GRID_ERR_UNSUPPORTED).
   */
  unlockSync(): void {
    // the region's unlockFast, inlined: fails when LEASED or QUEUED is set, or another owner holds it
    if (Atomics.compareExchange(this.i32, this.owner, this.me, 0) !== this.me) {
      if (this.o.closed) throw this.o.closedError !== undefined ? closedOf(this.o) : new LockNotHeldError(`lock '${this.name}': this CP session is closed, and with it the hold`, { name: this.name });
      this.r.unlockSlow(this.s, this.name, this.o.id);
    }
  }

  /** isLocked() without a promise. In-process grids only (GRID_ERR_UNSUPPORTED in a clustered grid). */
  isLockedSync(): boolean {
    return this.r.isLocked(this.s);
  }

  /** A token (> 0), 0 (not free and not waiting), or the pending waiter to drive. */
  private start(lease: number, wait: boolean, until: number): number | Pending {
    if (this.o.closed) throw closedOf(this.o);
    if (lease === Infinity) {
      const t = this.r.lockFast(this.s, this.o.id);
      if (t > 0) return t;
    }
    return this.r.lockSlow(this.s, lease, wait, until, this.o.id);
  }
}

// ── AtomicLong ──────────────────────────────────────────────────────────────────────────────────

/**
 * A signed 64-bit counter (bigint; arguments may be safe-integer numbers). Arithmetic wraps as Java's long does.
 * In a clustered grid it holds a safe integer (±2^53-1; outside it GRID_ERR_CP_RANGE), and the
 * `*Sync` forms throw GRID_ERR_UNSUPPORTED. Arguments that are not a safe integer or a 64-bit
 * bigint throw GRID_ERR_INVALID_ARGUMENT.
 *
 * @example
 * ```ts
 * const seq = grid.cp.atomicLong('seq');
 * const next = await seq.incrementAndGet(); // 1n
 * ```
 */
export class AtomicLong {
  private readonly a: BigInt64Array;
  private readonly i: number;

  /** @internal use grid.cp.atomicLong(name) */
  constructor(
    r: CpRegion,
    s: number,
    /** The primitive's name (the same name is the same primitive in every thread). */
    readonly name: string,
    /** The grid's thread owner: closed with the grid (then every call is GRID_ERR_CLOSED). */
    private readonly o: Owner = THREAD,
  ) {
    this.a = r.i64;
    this.i = r.longIndex(s);
  }

  /** get() without a promise (in-process grids only). */
  getSync(): bigint {
    live(this.o);
    return Atomics.load(this.a, this.i);
  }

  /** set() without a promise (in-process grids only). */
  setSync(value: number | bigint): void {
    live(this.o);
    Atomics.store(this.a, this.i, toLong(value, 'value'));
  }

  /** addAndGet() without a promise (in-process grids only). */
  addAndGetSync(delta: number | bigint): bigint {
    live(this.o);
    const d = toLong(delta, 'delta');
    return BigInt.asIntN(64, Atomics.add(this.a, this.i, d) + d);
  }

  /** getAndAdd() without a promise (in-process grids only). */
  getAndAddSync(delta: number | bigint): bigint {
    live(this.o);
    return Atomics.add(this.a, this.i, toLong(delta, 'delta'));
  }

  /** incrementAndGet() without a promise (in-process grids only). */
  incrementAndGetSync(): bigint {
    live(this.o);
    return BigInt.asIntN(64, Atomics.add(this.a, this.i, 1n) + 1n);
  }

  /** compareAndSet() without a promise (in-process grids only). */
  compareAndSetSync(expected: number | bigint, next: number | bigint): boolean {
    live(this.o);
    const e = toLong(expected, 'expected');
    return Atomics.compareExchange(this.a, this.i, e, toLong(next, 'next')) === e;
  }

  /** The current value. */
  async get(): Promise<bigint> {
    return this.getSync();
  }

  /**
   * Sets the value.
   *
   * @param value - A safe integer or a signed 64-bit bigint.
   */
  async set(value: number | bigint): Promise<void> {
    this.setSync(value);
  }

  /**
   * Adds `delta` atomically.
   *
   * @param delta - A safe integer or a signed 64-bit bigint.
   * @returns The new value.
   */
  async addAndGet(delta: number | bigint): Promise<bigint> {
    return this.addAndGetSync(delta);
  }

  /**
   * Adds `delta` atomically.
   *
   * @param delta - A safe integer or a signed 64-bit bigint.
   * @returns The value before the addition.
   */
  async getAndAdd(delta: number | bigint): Promise<bigint> {
    return this.getAndAddSync(delta);
  }

  /** Adds 1 atomically; returns the new value. */
  async incrementAndGet(): Promise<bigint> {
    return this.incrementAndGetSync();
  }

  /**
   * Sets `next` when the value is `expected`, atomically.
   *
   * @param expected - The value the counter must hold.
   * @param next - The new value.
   * @returns True when the value was set.
   */
  async compareAndSet(expected: number | bigint, next: number | bigint): Promise<boolean> {
    return this.compareAndSetSync(expected, next);
  }
}

// ── AtomicRef ───────────────────────────────────────────────────────────────────────────────────

/**
 * A value (anything msgpackr encodes; undefined = unset) with a version. Stored in the CP region
 * itself, in a bounded per-name area (options.cp.maxValueBytes, encoded): larger values fail with
 * GRID_ERR_VALUE_TOO_LARGE. compareAndSet compares *encoded bytes* (msgpack), so objects with the
 * same keys in a different order differ, and 1 and 1.0 are equal. Reads take no lock.
 * In a clustered grid values may be up to 64 KiB encoded, and the `*Sync` forms throw
 * GRID_ERR_UNSUPPORTED.
 *
 * @example
 * ```ts
 * const cfg = grid.cp.atomicRef<{ mode: string }>('config');
 * const { value, version } = await cfg.getVersioned();
 * await cfg.compareAndSetVersion(version, { mode: 'b' }); // false if another write came first
 * ```
 */
export class AtomicRef<T = unknown> {
  private readonly out: { bytes: Uint8Array | null } = { bytes: null };

  /** @internal use grid.cp.atomicRef(name) */
  constructor(
    private readonly r: CpRegion,
    private readonly s: number,
    /** The primitive's name (the same name is the same primitive in every thread). */
    readonly name: string,
    /** The grid's thread owner: closed with the grid (then every call is GRID_ERR_CLOSED). */
    private readonly o: Owner = THREAD,
  ) {}

  /** get() without a promise (in-process grids only). */
  getSync(): T | undefined {
    live(this.o);
    this.r.refRead(this.s, this.out);
    return this.decode();
  }

  /** getVersioned() without a promise (in-process grids only). */
  getVersionedSync(): Versioned<T> {
    live(this.o);
    const version = this.r.refRead(this.s, this.out);
    return { value: this.decode(), version };
  }

  /** set() without a promise (in-process grids only). */
  setSync(value: T | undefined): void {
    live(this.o);
    const b = this.encode(value);
    this.write(() => true, b);
  }

  /** Sets `next` when the current value encodes to the same bytes as `expected` (compareAndSet() without a promise; in-process grids only). */
  compareAndSetSync(expected: T | undefined, next: T | undefined): boolean {
    live(this.o);
    const e = this.encode(expected, false);
    const b = this.encode(next);
    return this.write(() => this.r.refEquals(this.s, e), b);
  }

  /** Sets `next` when the ref's version is still `version` (from getVersioned); compareAndSetVersion() without a promise, in-process grids only. */
  compareAndSetVersionSync(version: number, next: T | undefined): boolean {
    live(this.o);
    if (!Number.isSafeInteger(version) || version < 0) throw new InvalidArgumentError(`version must be an integer >= 0 (got ${String(version)})`);
    const b = this.encode(next);
    return this.write(() => this.r.refVersion(this.s) === version, b);
  }

  /** The value, or undefined when unset. */
  async get(): Promise<T | undefined> {
    return this.getSync();
  }

  /** The value with its version (the count of writes: 0 before the first set). */
  async getVersioned(): Promise<Versioned<T>> {
    return this.getVersionedSync();
  }

  /**
   * Sets the value.
   *
   * @param value - Anything msgpackr encodes; undefined unsets the ref.
   * @throws {ValueTooLargeError} when the encoded value is over options.cp.maxValueBytes, or 64 KiB in a clustered grid (GRID_ERR_VALUE_TOO_LARGE).
   * @throws {UnencodableValueError} when the value cannot be encoded (GRID_ERR_UNENCODABLE_VALUE).
   */
  async set(value: T | undefined): Promise<void> {
    this.setSync(value);
  }

  /**
   * Sets `next` when the current value encodes to the same bytes as `expected` (undefined:
   * unset), atomically.
   *
   * @param expected - The value the ref must hold, compared by its msgpack encoding.
   * @param next - The new value (undefined unsets the ref).
   * @returns True when `next` was set.
   * @throws {ValueTooLargeError} when `next` encoded is over options.cp.maxValueBytes, or 64 KiB in a clustered grid (GRID_ERR_VALUE_TOO_LARGE).
   */
  async compareAndSet(expected: T | undefined, next: T | undefined): Promise<boolean> {
    return this.compareAndSetSync(expected, next);
  }

  /**
   * Sets `next` when the ref's version is still `version` (from getVersioned): versions never
   * repeat, so this cannot suffer ABA.
   *
   * @param version - The version read before (an integer >= 0).
   * @param next - The new value (undefined unsets the ref).
   * @returns True when `next` was set.
   * @throws {InvalidArgumentError} when `version` is not an integer >= 0 (GRID_ERR_INVALID_ARGUMENT).
   * @throws {ValueTooLargeError} when `next` encoded is over options.cp.maxValueBytes, or 64 KiB in a clustered grid (GRID_ERR_VALUE_TOO_LARGE).
   */
  async compareAndSetVersion(version: number, next: T | undefined): Promise<boolean> {
    return this.compareAndSetVersionSync(version, next);
  }

  private write(when: () => boolean, bytes: Uint8Array | null): boolean {
    this.r.enter(this.s);
    try {
      if (!when()) return false;
      this.r.refWrite(this.s, bytes);
      return true;
    } finally {
      this.r.leave(this.s);
    }
  }

  private encode(v: unknown, bounded = true): Uint8Array | null {
    return encodeRefValue(v, this.name, this.r.maxValueBytes, 'options.cp.maxValueBytes', bounded);
  }

  private decode(): T | undefined {
    const b = this.out.bytes;
    return b === null ? undefined : (decodeMsgpack(b) as T);
  }
}

// ── Semaphore ───────────────────────────────────────────────────────────────────────────────────

/**
 * Counting semaphore. Permits are held by the thread that acquired them (or by the session of
 * grid.cp.session() that made the handle): only that holder may release them
 * (GRID_ERR_PERMITS_NOT_HELD otherwise), and they return by themselves when the thread exits (the
 * session closes). Fair: waiters are served in arrival order, and a waiter for many permits is not
 * overtaken by later ones for fewer. In a clustered grid permits are held by the member's CP
 * session, and the `*Sync` forms throw GRID_ERR_UNSUPPORTED.
 *
 * @example
 * ```ts
 * const slots = grid.cp.semaphore('slots', { permits: 3 });
 * await slots.acquire(2, { timeoutMs: 1_000 });
 * try { ... } finally { await slots.release(2); }
 * ```
 */
export class Semaphore {
  /** @internal use grid.cp.semaphore(name, { permits }) */
  constructor(
    private readonly r: CpRegion,
    private readonly s: number,
    /** The primitive's name (the same name is the same primitive in every thread). */
    readonly name: string,
    /**
     * The semaphore's permits in all (given when it was created). In a clustered grid: the
     * `permits` given to grid.cp.semaphore, or -1 when none were given.
     */
    readonly permits: number,
    private readonly o: Owner = THREAD,
  ) {}

  /**
   * Waits for n permits (default 1); GRID_ERR_LOCK_TIMEOUT when timeoutMs passes first.
   *
   * @param n - Permits to acquire: an integer from 1 to the semaphore's permits.
   * @param options - `timeoutMs` (default: wait forever).
   * @throws {LockTimeoutError} when the permits were not acquired within `timeoutMs` (GRID_ERR_LOCK_TIMEOUT).
   * @throws {InvalidArgumentError} when `n` is not an integer >= 1, is more than the semaphore has in all, or `timeoutMs` is invalid (GRID_ERR_INVALID_ARGUMENT).
   */
  async acquire(n = 1, options?: AcquireOptions): Promise<void> {
    const timeout = timeoutMsOf(options, Infinity);
    const t = this.start(this.count(n), true, untilOf(timeout));
    if (t === false || (typeof t === 'object' && (await waitAsync(this.r, t, this.o)) === 0)) throw this.timedOut(n, timeout);
  }

  /**
   * Whether n permits (default 1) were acquired within timeoutMs (default 0).
   *
   * @param n - Permits to acquire, as for acquire().
   * @param options - `timeoutMs` (default 0: do not wait).
   * @throws {InvalidArgumentError} when `n` or `timeoutMs` is invalid (GRID_ERR_INVALID_ARGUMENT).
   */
  async tryAcquire(n = 1, options?: AcquireOptions): Promise<boolean> {
    const timeout = timeoutMsOf(options, 0);
    const t = this.start(this.count(n), timeout > 0, untilOf(timeout));
    return typeof t === 'boolean' ? t : (await waitAsync(this.r, t, this.o)) === 1;
  }

  /**
   * Returns n permits (default 1) that this thread holds; waiters are served in arrival order.
   *
   * @param n - Permits to release: an integer >= 1.
   * @throws {PermitsNotHeldError} when this thread (in a cluster: this member's session) holds fewer than `n` (GRID_ERR_PERMITS_NOT_HELD).
   * @throws {InvalidArgumentError} when `n` is not an integer >= 1 or is more than the semaphore has in all (GRID_ERR_INVALID_ARGUMENT).
   */
  async release(n = 1): Promise<void> {
    this.releaseSync(n);
  }

  /** The permits not held by anyone now. */
  async availablePermits(): Promise<number> {
    return this.availablePermitsSync();
  }

  /**
   * acquire() that blocks: worker threads only, in-process grids only.
   *
   * @throws {UnsupportedError} on the main thread, and in a clustered grid (GRID_ERR_UNSUPPORTED).
   * @throws {LockTimeoutError} when the permits were not acquired within `timeoutMs` (GRID_ERR_LOCK_TIMEOUT).
   */
  acquireSync(n = 1, options?: AcquireOptions): void {
    const timeout = timeoutMsOf(options, Infinity);
    const want = this.count(n);
    assertMayBlock('acquireSync');
    const t = this.start(want, true, untilOf(timeout));
    if (t === false || (typeof t === 'object' && waitSync(this.r, t) === 0)) throw this.timedOut(n, timeout);
  }

  /**
   * tryAcquire() without a promise. Any thread with timeoutMs 0 (the default); worker threads only for timeoutMs > 0.
   *
   * @throws {UnsupportedError} with timeoutMs > 0 on the main thread, and in a clustered grid (GRID_ERR_UNSUPPORTED).
   */
  tryAcquireSync(n = 1, options?: AcquireOptions): boolean {
    const timeout = timeoutMsOf(options, 0);
    const want = this.count(n);
    if (timeout > 0) assertMayBlock('tryAcquireSync with timeoutMs > 0');
    const t = this.start(want, timeout > 0, untilOf(timeout));
    return typeof t === 'boolean' ? t : waitSync(this.r, t) === 1;
  }

  /** release() without a promise (in-process grids only). */
  releaseSync(n = 1): void {
    const k = this.count(n);
    if (this.o.closed) throw closedOf(this.o);
    this.r.release(this.s, k, this.name, this.o.id);
  }

  /** availablePermits() without a promise (in-process grids only). */
  availablePermitsSync(): number {
    return this.r.available(this.s);
  }

  /** Permits this thread holds now (in-process grids only). */
  heldPermitsSync(): number {
    return this.o.closed ? 0 : this.r.heldBy(this.s, this.o.id);
  }

  private start(n: number, wait: boolean, until: number): boolean | Pending {
    if (this.o.closed) throw closedOf(this.o);
    return this.r.acquireSlow(this.s, n, wait, until, this.o.id);
  }

  private count(n: unknown): number {
    if (!Number.isInteger(n) || (n as number) < 1) throw new InvalidArgumentError(`permits to acquire or release must be an integer >= 1 (got ${String(n)})`);
    if ((n as number) > this.permits) throw new InvalidArgumentError(`semaphore '${this.name}' has ${this.permits} permits in all: ${String(n)} can never be granted`);
    return n as number;
  }

  private timedOut(n: number, timeout: number): LockTimeoutError {
    return new LockTimeoutError(`semaphore '${this.name}': ${n} permit(s) not acquired within ${timeout} ms`, { name: this.name });
  }
}

// ── grid.cp ─────────────────────────────────────────────────────────────────────────────────────

const ATTACHED_MESSAGE = 'grid.cp is not available on this attachment (an internal one, without a CP region or a member to forward to)';

function checkName(name: unknown): string {
  if (!isCpName(name)) throw new InvalidArgumentError(`a CP primitive name must be a string of 1 to ${CP_LIMITS.maxNameBytes} UTF-8 bytes`);
  return name;
}

/**
 * `grid.cp`: coordination primitives by name; the same name gives the same primitive in every
 * attached thread — or, in a clustered grid, in every member (served by the Raft log: cp/cluster.ts).
 */
export class CoordinationPrimitives {
  private readonly made = new Map<string, FencedLock | AtomicLong | AtomicRef<any> | Semaphore>();

  /** @internal */
  constructor(
    protected readonly region: CpRegion | undefined,
    protected readonly assertOpen: () => void,
    protected readonly cluster?: ClusterCp,
    protected readonly owner: Owner = THREAD,
    /** The open sessions of this grid handle (closed with it). */
    protected readonly sessions: Set<CpSession> = new Set(),
  ) {}

  /**
   * A CP session: primitives whose locks and permits belong to the session rather than to this
   * thread (in a cluster: to this member's session). Use one per independent client that shares
   * a thread, such as one per connection of a server, so that one client cannot unlock what
   * another holds, and so that what a client holds is released when it goes away:
   * `session.close()` releases its locks (the next waiter gets them) and permits, and ends its
   * waits (they reject with GRID_ERR_CP_SESSION). In one process a session also ends when the
   * thread that opened it exits; in a cluster it is a CP session of its own on the Raft log,
   * kept alive by heartbeats and ended by the state machine if they stop (options.cp.sessionTtlMs).
   *
   * @returns An open session; its lock(), semaphore(), atomicLong() and atomicRef() work as grid.cp's.
   * @throws {CpCapacityError} (in-process) when options.cp.waiters sessions are open (GRID_ERR_CP_CAPACITY).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   *
   * @example
   * ```ts
   * const s = grid.cp.session();
   * const token = await s.lock('orders').lock({ leaseMs: 10_000 });
   * await s.close(); // releases 'orders' if still held
   * ```
   */
  session(): CpSession {
    this.assertOpen();
    // a closed session opens no more (its sub-sessions worked on)
    if (this.owner.closed) throw closedOf(this.owner);
    let s: CpSession;
    if (this.cluster !== undefined) {
      s = new CpSession(undefined, this.assertOpen, this.cluster.fork(), THREAD, this.sessions);
    } else {
      const r = this.region;
      if (r === undefined) throw new UnsupportedError(ATTACHED_MESSAGE);
      s = new CpSession(r, this.assertOpen, undefined, { id: r.openSession(), closed: false, pending: new Set() }, this.sessions);
    }
    this.sessions.add(s);
    return s;
  }

  /** The owner atomics check: the grid's thread owner (closed with the grid); a session's atomics are not the session's. */
  private gridOwner(): Owner {
    return this.owner.closedError !== undefined ? this.owner : THREAD;
  }

  /** @internal grid.close: closes the sessions opened through this handle, and ends this thread's waits. */
  async closeSessions(): Promise<void> {
    await Promise.all([...this.sessions].map((s) => s.close()));
    // this thread's own waits reject with GRID_ERR_CLOSED (a grant that came first is kept)
    if (this.owner.closedError !== undefined && this.region !== undefined) await endWaits(this.owner, this.region);
  }

  /**
   * The lock named `name`: the same name is the same lock in every thread (and, clustered, in
   * every member). Creating the handle acquires nothing.
   *
   * @param name - 1 to 256 UTF-8 bytes.
   * @throws {InvalidArgumentError} when `name` is not a string of 1 to 256 UTF-8 bytes (GRID_ERR_INVALID_ARGUMENT).
   * @throws {CpKindError} (in-process) when the name is used by a primitive of another kind (GRID_ERR_CP_KIND); clustered, on first use.
   * @throws {CpCapacityError} (in-process) when options.cp.primitives names are in use (GRID_ERR_CP_CAPACITY).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   *
   * @example
   * ```ts
   * const lock = grid.cp.lock('orders');
   * const token = await lock.lock({ leaseMs: 10_000 }); // fencing token: strictly increasing per name
   * await lock.unlock();
   * ```
   */
  lock(name: string): FencedLock {
    if (this.cluster !== undefined) return this.clustered(`l:${checkName(name)}`, () => new ClusterFencedLock(this.cluster!, name)) as unknown as FencedLock;
    return this.get(name, K_LOCK, (r, s) => new FencedLock(r, s, name, this.owner));
  }

  /** Clustered: one object per name and kind (the kind is checked by the state machine on use: GRID_ERR_CP_KIND). */
  private clustered<P>(key: string, make: () => P): P {
    this.assertOpen();
    const known = this.made.get(key);
    if (known !== undefined) return known as unknown as P;
    const p = make();
    this.made.set(key, p as unknown as FencedLock);
    return p;
  }

  /**
   * Runs fn while holding lock `name`, with its token; unlocks afterwards (GRID_ERR_LOCK_NOT_HELD if the lease passed meanwhile).
   * When fn throws, the lock is released and fn's error is rethrown.
   *
   * @param name - The lock's name.
   * @param fn - Called with the fencing token; pass it to the resource.
   * @param options - `leaseMs`, as for FencedLock.lock().
   * @returns What fn returned.
   * @throws {LockNotHeldError} when fn returned but the lease had passed meanwhile (GRID_ERR_LOCK_NOT_HELD).
   */
  async withLock<T>(name: string, fn: (token: number) => T | Promise<T>, options?: LockOptions): Promise<T> {
    const lock = this.lock(name);
    // checked before the lock is taken (it used to be taken, then fn's TypeError released it)
    if (typeof fn !== 'function') throw new InvalidArgumentError(`withLock('${name}'): fn must be a function (got ${typeof fn})`);
    const token = await lock.lock(options);
    let result: T;
    try {
      result = await fn(token);
    } catch (e) {
      try {
        await lock.unlock();
      } catch (u) {
        if (!(u instanceof LockNotHeldError)) throw u;
      }
      throw e;
    }
    await lock.unlock();
    return result;
  }

  /**
   * The atomicLong named `name`.
   *
   * @param name - 1 to 256 UTF-8 bytes.
   * @throws {InvalidArgumentError} when `name` is not a string of 1 to 256 UTF-8 bytes (GRID_ERR_INVALID_ARGUMENT).
   * @throws {CpKindError} (in-process) when the name is used by a primitive of another kind (GRID_ERR_CP_KIND).
   * @throws {CpCapacityError} (in-process) when options.cp.primitives names are in use (GRID_ERR_CP_CAPACITY).
   */
  atomicLong(name: string): AtomicLong {
    if (this.cluster !== undefined) return this.clustered(`n:${checkName(name)}`, () => new ClusterAtomicLong(this.cluster!, name)) as unknown as AtomicLong;
    return this.get(name, K_LONG, (r, s) => new AtomicLong(r, s, name, this.gridOwner()));
  }

  /**
   * The atomicRef named `name` (unset until first written).
   *
   * @typeParam T - The type of the value (not checked at run time).
   * @param name - 1 to 256 UTF-8 bytes.
   * @throws {InvalidArgumentError} when `name` is not a string of 1 to 256 UTF-8 bytes (GRID_ERR_INVALID_ARGUMENT).
   * @throws {CpKindError} (in-process) when the name is used by a primitive of another kind (GRID_ERR_CP_KIND).
   * @throws {CpCapacityError} (in-process) when options.cp.primitives names are in use (GRID_ERR_CP_CAPACITY).
   */
  atomicRef<T = unknown>(name: string): AtomicRef<T> {
    if (this.cluster !== undefined) return this.clustered(`r:${checkName(name)}`, () => new ClusterAtomicRef<T>(this.cluster!, name)) as unknown as AtomicRef<T>;
    return this.get(name, K_REF, (r, s) => new AtomicRef<T>(r, s, name, this.gridOwner()));
  }

  /**
   * The semaphore named `name`. The first call must give `permits`; later calls may omit them,
   * and when they give them they must match.
   *
   * @param name - 1 to 256 UTF-8 bytes.
   * @param options - `permits` of the semaphore (an integer from 0 to 2147483647).
   * @throws {InvalidArgumentError} when `permits` is invalid, is missing for a semaphore that does
   * not exist yet, or differs from the semaphore's (GRID_ERR_INVALID_ARGUMENT; clustered, checked on first use).
   * @throws {CpKindError} (in-process) when the name is used by a primitive of another kind (GRID_ERR_CP_KIND).
   * @throws {CpCapacityError} (in-process) when options.cp.primitives names are in use (GRID_ERR_CP_CAPACITY).
   */
  semaphore(name: string, options?: SemaphoreOptions): Semaphore {
    const permits = optionsOf(options, 'semaphore', SEMAPHORE_KEYS).permits as number | undefined;
    if (permits !== undefined && (!Number.isInteger(permits) || permits < 0 || permits > 0x7fffffff)) throw new InvalidArgumentError(`permits must be an integer from 0 to 2147483647 (got ${String(permits)})`, { option: 'permits' });
    if (this.cluster !== undefined) {
      // the permit count is checked against the semaphore's by the state machine, on first use
      return this.clustered(`s:${checkName(name)}:${permits ?? -1}`, () => new ClusterSemaphore(this.cluster!, name, permits ?? -1)) as unknown as Semaphore;
    }
    const sem = this.get(name, K_SEMAPHORE, (r, s) => new Semaphore(r, s, name, r.i32[r.sw(s) + S_TOTAL], this.owner), (r, s) => {
      if (permits === undefined) throw new InvalidArgumentError(noSuchSemaphore(name), { option: 'permits' });
      r.i32[r.sw(s) + S_TOTAL] = permits;
      r.i32[r.sw(s) + S_AVAIL] = permits;
    });
    if (permits !== undefined && permits !== sem.permits) throw new InvalidArgumentError(`semaphore '${name}' was created with ${sem.permits} permits, not ${permits}`, { option: 'permits' });
    return sem;
  }

  private get<P extends FencedLock | AtomicLong | AtomicRef<any> | Semaphore>(name: string, kind: number, make: (r: CpRegion, s: number) => P, init?: (r: CpRegion, s: number) => void): P {
    this.assertOpen();
    checkName(name); // a Symbol reached the region's byte count as a TypeError
    const r = this.region;
    if (r === undefined) throw new UnsupportedError(ATTACHED_MESSAGE);
    const key = `${kind}:${name}`;
    const known = this.made.get(key);
    if (known !== undefined) return known as P;
    const s = r.slot(name, kind, (slot) => {
      init?.(r, slot);
      const w = r.sw(slot);
      r.i32[w + S_REF_LEN0] = -1; // atomicRef: both buffers unset
      r.i32[w + S_REF_LEN0 + 1] = -1;
    });
    const p = make(r, s);
    this.made.set(key, p);
    return p;
  }
}

/**
 * A CP session (grid.cp.session()): the same primitives, held by the session instead of the
 * thread. close() releases what it holds and ends its waits; after it, every acquire fails with
 * GRID_ERR_CP_SESSION.
 */
export class CpSession extends CoordinationPrimitives {
  private closing: Promise<void> | undefined;

  /** True once close() was called. */
  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Ends the session: its waits reject (GRID_ERR_CP_SESSION), its locks go to their next waiter,
   * its permits return. In a cluster: closes its CP session on the Raft log (best effort; the
   * session's TTL ends it otherwise). Calling it again returns the same promise.
   */
  close(): Promise<void> {
    this.closing ??= this.end();
    return this.closing;
  }

  private async end(): Promise<void> {
    this.sessions.delete(this);
    if (this.cluster !== undefined) return this.cluster.close();
    // its waits reject; a grant that came first is handed on by closeSession
    await endWaits(this.owner, this.region!);
    this.region!.closeSession(this.owner.id);
  }
}
