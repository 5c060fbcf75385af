/**
 * The CP region: coordination primitives in one SharedArrayBuffer (layout: ./layout.ts).
 *
 * Lock word (slot OWNER):  holder << 2 | LEASED (2) | QUEUED (1), 0 when free. The holder is an
 * owner id: threadId + 1 for a thread, or a CP session's id (openSession; layout.ts).
 *
 * - Fast paths take no slot mutex: an acquire without a lease is one compareExchange 0 → self,
 *   a release of a lease-less hold with nobody queued is one compareExchange self → 0. Either
 *   bit being set makes the release CAS fail, which sends it to the slow path.
 * - Everything else runs under the slot's futex (MUTEX): leased acquires, queueing, hand-off,
 *   lease checks, semaphores and atomicRef writes. These sections are a few loads and stores;
 *   no await and no user code runs inside one.
 * - Fairness: a thread that cannot take the lock claims a waiter record, stamped with the slot's
 *   arrival counter, and sleeps on that record's GRANT word. A release hands the lock *directly*
 *   to the oldest waiter (OWNER becomes the waiter's thread, GRANT = 1, notify that one word),
 *   so the lock is never free while anyone waits and a newcomer cannot barge (FIFO). Semaphores
 *   grant permits to the oldest waiter first and stop at the first that does not fit.
 * - Fencing tokens: TOKEN (float64) is written only by the thread that just became the owner
 *   (after its CAS) or by the mutex holder that hands ownership over, so writes to it are ordered
 *   by the lock itself (seq-cst Atomics on OWNER); it counts up, exact to 2^53, never reused.
 * - Leases: DEADLINE (float64, on the process-wide monotonic clock below) is written and read
 *   only under the mutex, and only means something while LEASED is set. A waiter sleeps no longer
 *   than the holder's deadline; whoever (waiter or acquirer) finds it passed hands the lock on.
 * - Thread exit: `recoverThread(tid)` (from the worker's `exit` event in the thread that created
 *   it) frees its records, returns its permits, and hands on any lock it held; so it does for
 *   every session the thread opened and did not close.
 * - Sessions (grid.cp.session(), one per RESP connection): an owner that is not a thread, so one
 *   thread can hold locks and permits for many independent clients. `closeSession` releases what
 *   the session holds, as a thread's exit does; its caller first ends the session's waits.
 */
import { threadId } from 'node:worker_threads';
import { CpCapacityError, CpKindError, InvalidArgumentError, LockNotHeldError, LockTimeoutError, PermitsNotHeldError } from '../errors.js';
import { permitsNotHeld } from '../cluster/metadata/cp-state.js';
import { HASH_SEED, murmur3 } from '../ring/hash.js';
import { forceTake, holderOf, lockSync, tryLock, unlock } from '../sync/mutex.js';
import {
  CP_MAGIC, CP_MAX_NAME_BYTES, CP_VERSION, D_DEADLINE, D_REF_VER0, D_TOKEN, H_CAPACITY, H_COUNT, H_DIR_LOCK, H_MAGIC, H_MAX_VALUE,
  H_VERSION, H_WAITERS, KIND_NAMES, K_LOCK, K_SEMAPHORE, L_VALUE, RD_LEASE, RD_TOKEN, RECORD_BYTES, R_CELLS_BYTE, R_GRANT, R_HOLD,
  R_SEQ, R_SLOT, R_STATE, R_WAIT, R_WANT, SLOT_BYTES, S_ARRIVE, S_AVAIL, S_HASH, S_KIND, S_MUTEX, S_NAME_LEN, S_NHOLD, S_NWAIT,
  S_OWNER, S_REF_LEN0, S_REF_SEQ, S_TOTAL, E_CREATOR, E_OWNER, OWNER_LIMIT, SESSION_BASE, SESSION_BYTES, cpAreas, type CpLimits,
} from './layout.js';

/** This thread's owner id. */
export const SELF = threadId + 1;
const QUEUED = 1;
const LEASED = 2;
const ME = SELF << 2;

/** "a lock", "an atomicLong": a kind's name with its article. */
const aKind = (k: number): string => `${/^[aeiou]/.test(KIND_NAMES[k]) ? 'an' : 'a'} ${KIND_NAMES[k]}`;

/** "this thread" or "this session", for error texts. */
const whoIs = (o1: number): string => (o1 >= SESSION_BASE ? 'this session' : 'this thread');
/** Longest single sleep of a waiter: it re-checks leases and its own deadline at least this often. */
const MAX_SLEEP_MS = 1000;

// A process-wide monotonic clock in ms. performance.now() counts from each thread's own start;
// process.hrtime is CLOCK_MONOTONIC, the same in every thread, so the offset aligns them.
const CLOCK_OFFSET = Number(process.hrtime.bigint()) / 1e6 - performance.now();
export const monoNow = (): number => performance.now() + CLOCK_OFFSET;

/** A waiter in flight: its record, what it waits for, and (when done) the outcome. */
export interface Pending {
  r: number;
  s: number;
  kind: number;
  /** monotonic ms after which it gives up (Infinity: never) */
  until: number;
  /** lock: the token (0 = not acquired); semaphore: 1 acquired, 0 not */
  result: number;
}

export class CpRegion {
  readonly i32: Int32Array;
  readonly f64: Float64Array;
  readonly i64: BigInt64Array;
  readonly u8: Uint8Array;
  readonly capacity: number;
  readonly maxValueBytes: number;
  readonly waiters: number;
  private readonly slotsW: number;
  private readonly namesB: number;
  private readonly valuesB: number;
  private readonly recW: number;
  private readonly recD: number;
  private readonly sessW: number;

  constructor(readonly buffer: SharedArrayBuffer, readonly lockTimeout: number) {
    this.i32 = new Int32Array(buffer);
    this.f64 = new Float64Array(buffer, 0, buffer.byteLength >> 3);
    this.i64 = new BigInt64Array(buffer, 0, buffer.byteLength >> 3);
    this.u8 = new Uint8Array(buffer);
    if (this.i32[H_MAGIC] !== CP_MAGIC || this.i32[H_VERSION] !== CP_VERSION) throw new Error('not a CP region of this shardgrid version');
    const l: CpLimits = { capacity: this.i32[H_CAPACITY], maxValueBytes: this.i32[H_MAX_VALUE], waiters: this.i32[H_WAITERS] };
    const a = cpAreas(l);
    if (a.total !== buffer.byteLength) throw new Error('CP region has the wrong size');
    this.capacity = l.capacity;
    this.maxValueBytes = l.maxValueBytes;
    this.waiters = l.waiters;
    this.slotsW = a.slots >> 2;
    this.namesB = a.names;
    this.valuesB = a.values;
    this.recW = a.records >> 2;
    this.recD = (a.records + R_CELLS_BYTE) >> 3;
    this.sessW = a.sessions >> 2;
  }

  static create(l: CpLimits): SharedArrayBuffer {
    const a = cpAreas(l);
    const sab = new SharedArrayBuffer(a.total);
    const i32 = new Int32Array(sab);
    i32[H_MAGIC] = CP_MAGIC;
    i32[H_VERSION] = CP_VERSION;
    i32[H_CAPACITY] = l.capacity;
    i32[H_MAX_VALUE] = l.maxValueBytes;
    i32[H_WAITERS] = l.waiters;
    // a record's SLOT is -1 while free, so a record claimed but not yet filled matches no slot
    for (let r = 0; r < l.waiters; r++) i32[(a.records >> 2) + r * (RECORD_BYTES >> 2) + R_SLOT] = -1;
    return sab;
  }

  /** First int32 word of slot s. */
  sw(s: number): number {
    return this.slotsW + s * (SLOT_BYTES >> 2);
  }

  /** First 8-byte cell of slot s. */
  sd(s: number): number {
    return ((this.slotsW << 2) + s * SLOT_BYTES + 64) >> 3;
  }

  private rw(r: number): number {
    return this.recW + r * (RECORD_BYTES >> 2);
  }

  private rd(r: number): number {
    return this.recD + r * (RECORD_BYTES >> 3);
  }

  /** Byte offset of atomicRef buffer b of slot s. */
  valueAt(s: number, b: number): number {
    return this.valuesB + (s * 2 + b) * this.maxValueBytes;
  }

  // ── directory ──────────────────────────────────────────────────────────────────────────────

  /**
   * The slot of primitive `name`, claimed with `kind` (and set up by `init`) on first use.
   * Lookups read without a lock: a slot is never freed, and KIND is stored last.
   */
  slot(name: string, kind: number, init: (s: number) => void): number {
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('a primitive name must be a non-empty string');
    const bytes = Buffer.from(name, 'utf8');
    if (bytes.length > CP_MAX_NAME_BYTES) throw new InvalidArgumentError(`a primitive name is at most ${CP_MAX_NAME_BYTES} UTF-8 bytes`);
    const h = murmur3(bytes, bytes.length, HASH_SEED) | 0; // as stored in the int32 HASH word
    let s = this.find(name, bytes, h, kind);
    if (s >= 0) return s;
    const dir = H_DIR_LOCK;
    if (!tryLock(this.i32, dir) && !lockSync(this.i32, dir, this.lockTimeout)) throw new LockTimeoutError(`the CP directory lock was not free within ${this.lockTimeout} ms`);
    try {
      s = this.find(name, bytes, h, kind);
      if (s >= 0) return s;
      s = -1 - s; // the empty slot the probe ended at
      const w = this.sw(s);
      this.u8.set(bytes, this.namesB + s * CP_MAX_NAME_BYTES);
      this.i32[w + S_HASH] = h;
      this.i32[w + S_NAME_LEN] = bytes.length;
      init(s);
      Atomics.add(this.i32, H_COUNT, 1);
      Atomics.store(this.i32, w + S_KIND, kind); // publishes the name and the initial state
      return s;
    } finally {
      unlock(this.i32, dir);
    }
  }

  /** The slot holding `name`, or -1 - (the empty slot where the probe stopped). */
  private find(name: string, bytes: Buffer, h: number, kind: number): number {
    const cap = this.capacity;
    for (let k = 0; k < cap; k++) {
      const s = ((h >>> 0) + k) % cap;
      const w = this.sw(s);
      const kd = Atomics.load(this.i32, w + S_KIND);
      if (kd === 0) return -1 - s;
      if (this.i32[w + S_HASH] !== h || this.i32[w + S_NAME_LEN] !== bytes.length) continue;
      const at = this.namesB + s * CP_MAX_NAME_BYTES;
      if (Buffer.compare(bytes, this.u8.subarray(at, at + bytes.length)) !== 0) continue;
      if (kd !== kind) throw new CpKindError(`'${name}' is already ${aKind(kd)} (asked for ${aKind(kind)})`, { name, kind: KIND_NAMES[kd], asked: KIND_NAMES[kind] });
      return s;
    }
    throw new CpCapacityError(`the grid already has ${cap} coordination primitives (options.cp.primitives)`, { limit: 'options.cp.primitives' });
  }

  // ── slot mutex ─────────────────────────────────────────────────────────────────────────────

  enter(s: number): void {
    const i = this.sw(s) + S_MUTEX;
    if (!tryLock(this.i32, i) && !lockSync(this.i32, i, this.lockTimeout)) throw new LockTimeoutError(`the internal mutex of a coordination primitive was not free within ${this.lockTimeout} ms`);
  }

  leave(s: number): void {
    unlock(this.i32, this.sw(s) + S_MUTEX);
  }

  // ── records ────────────────────────────────────────────────────────────────────────────────

  private claim(tid1: number, type: number, s: number, want: number): number {
    const n = this.waiters;
    const start = (tid1 * 31) % n;
    for (let k = 0; k < n; k++) {
      const r = (start + k) % n;
      const w = this.rw(r);
      if (Atomics.compareExchange(this.i32, w + R_STATE, 0, (tid1 << 2) | type) !== 0) continue;
      this.i32[w + R_WANT] = want;
      Atomics.store(this.i32, w + R_GRANT, 0);
      Atomics.store(this.i32, w + R_SLOT, s);
      return r;
    }
    throw new CpCapacityError(`all ${n} waiter records are in use (options.cp.waiters)`, { limit: 'options.cp.waiters' });
  }

  private free(r: number): void {
    const w = this.rw(r);
    Atomics.store(this.i32, w + R_SLOT, -1);
    Atomics.store(this.i32, w + R_GRANT, 0);
    Atomics.store(this.i32, w + R_STATE, 0);
  }

  /** Index of the GRANT word of record r (what its waiter sleeps on). */
  grantIndex(r: number): number {
    return this.rw(r) + R_GRANT;
  }

  /** The oldest waiting (not yet granted) record of slot s, or -1. Caller holds the slot mutex. */
  private head(s: number): number {
    let best = -1;
    let bestSeq = 0;
    let seen = 0;
    const need = this.i32[this.sw(s) + S_NWAIT];
    for (let r = 0; r < this.waiters && seen < need; r++) {
      const w = this.rw(r);
      if ((Atomics.load(this.i32, w + R_STATE) & 3) !== R_WAIT || Atomics.load(this.i32, w + R_SLOT) !== s || Atomics.load(this.i32, w + R_GRANT) !== 0) continue;
      seen++;
      const seq = this.i32[w + R_SEQ];
      if (best < 0 || ((seq - bestSeq) | 0) < 0) {
        best = r;
        bestSeq = seq;
      }
    }
    return best;
  }

  /** Queues owner o1 on slot s. Caller holds the slot mutex. */
  private enqueue(s: number, want: number, leaseMs: number, until: number, kind: number, o1: number): Pending {
    const w = this.sw(s);
    const r = this.claim(o1, R_WAIT, s, want);
    this.i32[this.rw(r) + R_SEQ] = this.i32[w + S_ARRIVE]++;
    this.f64[this.rd(r) + RD_LEASE] = leaseMs;
    this.i32[w + S_NWAIT]++;
    return { r, s, kind, until, result: 0 };
  }

  /** Drops a waiter that gave up or died. Caller holds the slot mutex. */
  private dequeue(r: number, s: number): void {
    this.free(r);
    const w = this.sw(s);
    if (--this.i32[w + S_NWAIT] <= 0) {
      this.i32[w + S_NWAIT] = 0;
      if (Atomics.load(this.i32, w + S_KIND) === K_LOCK) Atomics.and(this.i32, w + S_OWNER, ~QUEUED);
    }
  }

  // ── locks ──────────────────────────────────────────────────────────────────────────────────

  ownerIndex(s: number): number {
    return this.sw(s) + S_OWNER;
  }

  tokenIndex(s: number): number {
    return this.sd(s) + D_TOKEN;
  }

  /** Uncontended acquire without a lease by owner o1: one CAS. Returns the token, or 0 when the lock is not free. */
  lockFast(s: number, o1: number): number {
    if (Atomics.compareExchange(this.i32, this.sw(s) + S_OWNER, 0, o1 << 2) !== 0) return 0;
    const d = this.sd(s) + D_TOKEN;
    return (this.f64[d] += 1);
  }

  /** Release of a lease-less hold with nobody queued: one CAS. False sends the caller to unlockSlow. */
  unlockFast(s: number, o1: number): boolean {
    const me = o1 << 2;
    return Atomics.compareExchange(this.i32, this.sw(s) + S_OWNER, me, 0) === me;
  }

  /**
   * Under the slot mutex: take the lock if free (or its holder's lease passed); otherwise queue
   * (when `wait`) and return the pending waiter. Returns a token (> 0), a Pending, or 0.
   */
  lockSlow(s: number, leaseMs: number, wait: boolean, until: number, o1: number): number | Pending {
    const w = this.sw(s);
    this.enter(s);
    try {
      for (;;) {
        const o = Atomics.load(this.i32, w + S_OWNER);
        if (o === 0) {
          const bits = leaseMs === Infinity ? 0 : LEASED;
          if (Atomics.compareExchange(this.i32, w + S_OWNER, 0, (o1 << 2) | bits) !== 0) continue; // a fast-path acquirer won
          const d = this.sd(s);
          if (bits !== 0) this.f64[d + D_DEADLINE] = monoNow() + leaseMs;
          return (this.f64[d + D_TOKEN] += 1);
        }
        if (this.expired(s, o)) {
          this.handOff(s);
          continue;
        }
        if (!wait) return 0;
        // The QUEUED bit makes the holder's fast release fail, so it comes here and hands off.
        if ((o & QUEUED) === 0 && Atomics.compareExchange(this.i32, w + S_OWNER, o, o | QUEUED) !== o) continue;
        return this.enqueue(s, 0, leaseMs, until, K_LOCK, o1);
      }
    } finally {
      this.leave(s);
    }
  }

  private expired(s: number, o: number): boolean {
    return (o & LEASED) !== 0 && this.f64[this.sd(s) + D_DEADLINE] <= monoNow();
  }

  /**
   * The current holder is done (released, lease passed, or thread died): give the lock to the
   * oldest waiter, or free it. Caller holds the slot mutex and the lock is held (OWNER != 0), so no
   * fast-path CAS can interfere.
   */
  private handOff(s: number): void {
    const w = this.sw(s);
    const r = this.i32[w + S_NWAIT] > 0 ? this.head(s) : -1;
    if (r < 0) {
      this.i32[w + S_NWAIT] = 0;
      Atomics.store(this.i32, w + S_OWNER, 0);
      return;
    }
    const rw = this.rw(r);
    const rd = this.rd(r);
    const d = this.sd(s);
    const waiter = Atomics.load(this.i32, rw + R_STATE) >>> 2;
    const lease = this.f64[rd + RD_LEASE];
    const left = --this.i32[w + S_NWAIT];
    const token = (this.f64[d + D_TOKEN] += 1);
    if (lease !== Infinity) this.f64[d + D_DEADLINE] = monoNow() + lease;
    this.f64[rd + RD_TOKEN] = token;
    Atomics.store(this.i32, rw + R_GRANT, 1); // the commit point of the hand-off (see repair)
    Atomics.store(this.i32, w + S_OWNER, (waiter << 2) | (lease !== Infinity ? LEASED : 0) | (left > 0 ? QUEUED : 0));
    Atomics.notify(this.i32, rw + R_GRANT, 1);
  }

  /** Release by owner o1. Throws LockNotHeldError when it does not hold the lock or its lease passed. */
  unlockSlow(s: number, name: string, o1: number): void {
    const w = this.sw(s);
    this.enter(s);
    try {
      const o = Atomics.load(this.i32, w + S_OWNER);
      if (o >>> 2 !== o1) throw new LockNotHeldError(`lock '${name}' is not held by ${whoIs(o1)}`, { name });
      const late = this.expired(s, o);
      this.handOff(s);
      if (late) throw new LockNotHeldError(`the lease of lock '${name}' passed before unlock; another holder may have had it since`, { name });
    } finally {
      this.leave(s);
    }
  }

  isLocked(s: number): boolean {
    const o = Atomics.load(this.i32, this.sw(s) + S_OWNER);
    if (o === 0) return false;
    if ((o & LEASED) === 0) return true;
    this.enter(s);
    try {
      const now = Atomics.load(this.i32, this.sw(s) + S_OWNER);
      return now !== 0 && !this.expired(s, now);
    } finally {
      this.leave(s);
    }
  }

  // ── semaphores ─────────────────────────────────────────────────────────────────────────────

  /** Under the slot mutex: take n permits now if nobody is queued, else queue (when `wait`). */
  acquireSlow(s: number, n: number, wait: boolean, until: number, o1: number): boolean | Pending {
    const w = this.sw(s);
    this.enter(s);
    try {
      if (this.i32[w + S_NWAIT] === 0 && this.i32[w + S_AVAIL] >= n) {
        this.addHold(s, o1, n);
        this.i32[w + S_AVAIL] -= n;
        return true;
      }
      return wait ? this.enqueue(s, n, Infinity, until, K_SEMAPHORE, o1) : false;
    } finally {
      this.leave(s);
    }
  }

  private addHold(s: number, tid1: number, n: number): void {
    const r = this.findHold(s, tid1);
    if (r >= 0) {
      this.i32[this.rw(r) + R_WANT] += n;
      return;
    }
    this.claim(tid1, R_HOLD, s, n);
    this.i32[this.sw(s) + S_NHOLD]++;
  }

  private findHold(s: number, tid1: number): number {
    const need = this.i32[this.sw(s) + S_NHOLD];
    const state = (tid1 << 2) | R_HOLD;
    let seen = 0;
    for (let r = 0; r < this.waiters && seen < need; r++) {
      const w = this.rw(r);
      if ((Atomics.load(this.i32, w + R_STATE) & 3) !== R_HOLD || Atomics.load(this.i32, w + R_SLOT) !== s) continue;
      if (Atomics.load(this.i32, w + R_STATE) === state) return r;
      seen++;
    }
    return -1;
  }

  /** Permits owner o1 holds of semaphore s. */
  heldBy(s: number, o1: number): number {
    this.enter(s);
    try {
      const r = this.findHold(s, o1);
      return r < 0 ? 0 : this.i32[this.rw(r) + R_WANT];
    } finally {
      this.leave(s);
    }
  }

  release(s: number, n: number, name: string, o1: number): void {
    const w = this.sw(s);
    this.enter(s);
    try {
      const r = this.findHold(s, o1);
      const held = r < 0 ? 0 : this.i32[this.rw(r) + R_WANT];
      if (held < n) throw new PermitsNotHeldError(permitsNotHeld(whoIs(o1), held, name, n), { name, held, release: n });
      if (held === n) {
        this.free(r);
        this.i32[w + S_NHOLD]--;
      } else {
        this.i32[this.rw(r) + R_WANT] = held - n;
      }
      this.i32[w + S_AVAIL] += n;
      this.grantPermits(s);
    } finally {
      this.leave(s);
    }
  }

  /** Grants permits to the oldest waiters while they fit (strict FIFO: stops at the first that does not). */
  private grantPermits(s: number): void {
    const w = this.sw(s);
    while (this.i32[w + S_NWAIT] > 0) {
      const r = this.head(s);
      if (r < 0) {
        this.i32[w + S_NWAIT] = 0;
        return;
      }
      const rw = this.rw(r);
      const want = this.i32[rw + R_WANT];
      if (this.i32[w + S_AVAIL] < want) return;
      this.i32[w + S_AVAIL] -= want;
      this.i32[w + S_NWAIT]--;
      // the waiter's record becomes its holding record (no claim that could fail here)
      const tid1 = Atomics.load(this.i32, rw + R_STATE) >>> 2;
      const merge = this.findHold(s, tid1);
      if (merge >= 0) {
        this.i32[this.rw(merge) + R_WANT] += want;
        this.i32[rw + R_WANT] = 0;
        // stays an R_WAIT record with GRANT = 1: the waiter frees it when it wakes
      } else {
        Atomics.store(this.i32, rw + R_STATE, (tid1 << 2) | R_HOLD);
        this.i32[w + S_NHOLD]++;
      }
      Atomics.store(this.i32, rw + R_GRANT, 1);
      Atomics.notify(this.i32, rw + R_GRANT, 1);
    }
  }

  available(s: number): number {
    return Atomics.load(this.i32, this.sw(s) + S_AVAIL);
  }

  // ── waiting ────────────────────────────────────────────────────────────────────────────────

  /**
   * One check of a pending waiter, under the slot mutex. Returns -1 when it is done (p.result
   * holds the outcome), else how long to sleep on its GRANT word before the next check.
   */
  poll(p: Pending): number {
    const { r, s } = p;
    const rw = this.rw(r);
    this.enter(s);
    try {
      if (p.kind === K_LOCK && Atomics.load(this.i32, rw + R_GRANT) === 0) {
        const w = this.sw(s);
        const o = Atomics.load(this.i32, w + S_OWNER);
        // OWNER is never 0 while a waiter is queued; should it be, take it here (under the mutex)
        // so the hand-off below cannot race a fast-path acquirer
        if (o === 0 ? Atomics.compareExchange(this.i32, w + S_OWNER, 0, ME | QUEUED) === 0 : this.expired(s, o)) this.handOff(s);
      }
      if (Atomics.load(this.i32, rw + R_GRANT) !== 0) {
        p.result = p.kind === K_LOCK ? this.f64[this.rd(r) + RD_TOKEN] : 1;
        // a semaphore grant turned the record into the holding record, unless it merged
        if ((Atomics.load(this.i32, rw + R_STATE) & 3) === R_WAIT) this.free(r);
        return -1;
      }
      const now = monoNow();
      if (now >= p.until) {
        this.dequeue(r, s);
        if (p.kind === K_SEMAPHORE) this.grantPermits(s); // it may have blocked smaller requests behind it
        p.result = 0;
        return -1;
      }
      let ms = Math.min(p.until - now, MAX_SLEEP_MS);
      if (p.kind === K_LOCK && (Atomics.load(this.i32, this.sw(s) + S_OWNER) & LEASED) !== 0) ms = Math.min(ms, Math.max(0, this.f64[this.sd(s) + D_DEADLINE] - now) + 1);
      return ms;
    } finally {
      this.leave(s);
    }
  }

  // ── atomicRef ──────────────────────────────────────────────────────────────────────────────

  /**
   * Reads the current value bytes of ref s without a lock (seqlock over two buffers: a writer
   * fills the idle buffer, then bumps REF_SEQ; a read is good when REF_SEQ did not move).
   * Returns the version; `out.bytes` is a copy (null when unset).
   */
  refRead(s: number, out: { bytes: Uint8Array | null }): number {
    const w = this.sw(s);
    const d = this.sd(s);
    for (;;) {
      const q = Atomics.load(this.i32, w + S_REF_SEQ);
      const b = q & 1;
      const len = Atomics.load(this.i32, w + S_REF_LEN0 + b);
      const ver = this.f64[d + D_REF_VER0 + b];
      const at = this.valueAt(s, b);
      const bytes = len >= 0 && len <= this.maxValueBytes ? this.u8.slice(at, at + len) : null;
      if (Atomics.load(this.i32, w + S_REF_SEQ) === q) {
        out.bytes = bytes;
        return ver;
      }
    }
  }

  /** Caller holds the slot mutex. Version of the current value. */
  refVersion(s: number): number {
    const q = this.i32[this.sw(s) + S_REF_SEQ];
    return this.f64[this.sd(s) + D_REF_VER0 + (q & 1)];
  }

  /** Caller holds the slot mutex. True when the current value's bytes equal `bytes` (null: unset). */
  refEquals(s: number, bytes: Uint8Array | null): boolean {
    const w = this.sw(s);
    const b = this.i32[w + S_REF_SEQ] & 1;
    const len = this.i32[w + S_REF_LEN0 + b];
    if (bytes === null || len < 0) return bytes === null && len < 0;
    if (len !== bytes.length) return false;
    const at = this.valueAt(s, b);
    return Buffer.compare(bytes, this.u8.subarray(at, at + len)) === 0;
  }

  /** Caller holds the slot mutex. Writes the idle buffer, then publishes it with a new version. */
  refWrite(s: number, bytes: Uint8Array | null): void {
    const w = this.sw(s);
    const d = this.sd(s);
    const q = this.i32[w + S_REF_SEQ];
    const nb = (q + 1) & 1;
    if (bytes !== null) this.u8.set(bytes, this.valueAt(s, nb));
    Atomics.store(this.i32, w + S_REF_LEN0 + nb, bytes === null ? -1 : bytes.length);
    this.f64[d + D_REF_VER0 + nb] = this.f64[d + D_REF_VER0 + (q & 1)] + 1;
    Atomics.store(this.i32, w + S_REF_SEQ, q + 1); // the commit: readers now see buffer nb
  }

  // ── atomicLong ─────────────────────────────────────────────────────────────────────────────

  longIndex(s: number): number {
    return this.sd(s) + L_VALUE;
  }

  // ── thread exit ────────────────────────────────────────────────────────────────────────────

  /**
   * Thread `deadThreadId` is gone: free its waiter records, return its permits, hand on any lock
   * it held, and repair any slot whose mutex it died holding; then the same for every session it
   * opened and did not close. Returns how many primitives it touched.
   */
  recoverThread(deadThreadId: number): number {
    const i32 = this.i32;
    if (forceTake(i32, H_DIR_LOCK, deadThreadId)) unlock(i32, H_DIR_LOCK); // KIND is stored last: a half-made slot is still empty
    let n = this.recoverOwner(deadThreadId + 1, deadThreadId);
    for (let e = 0; e < this.waiters; e++) {
      const ew = this.sessW + e * (SESSION_BYTES >> 2);
      if (Atomics.load(i32, ew + E_CREATOR) !== deadThreadId + 1) continue;
      n += this.recoverOwner(Atomics.load(i32, ew + E_OWNER), -1);
      Atomics.store(i32, ew + E_CREATOR, 0);
    }
    return n;
  }

  // ── sessions ───────────────────────────────────────────────────────────────────────────────

  /**
   * A new session of this thread: its owner id (>= SESSION_BASE). Entries are shared by every
   * thread; the id of an entry's next session is the last one's + waiters, so ids do not repeat
   * soon. Throws CpCapacityError when options.cp.waiters sessions are open.
   */
  openSession(): number {
    const n = this.waiters;
    const i32 = this.i32;
    const start = (SELF * 31) % n;
    for (let k = 0; k < n; k++) {
      const e = (start + k) % n;
      const ew = this.sessW + e * (SESSION_BYTES >> 2);
      if (Atomics.compareExchange(i32, ew + E_CREATOR, 0, SELF) !== 0) continue;
      const last = Atomics.load(i32, ew + E_OWNER);
      const next = last === 0 || last + n >= OWNER_LIMIT ? SESSION_BASE + e : last + n;
      Atomics.store(i32, ew + E_OWNER, next);
      return next;
    }
    throw new CpCapacityError(`all ${n} CP session entries are in use (options.cp.waiters)`, { limit: 'options.cp.waiters' });
  }

  /**
   * Ends session o1 (from openSession, of this thread): releases its locks and permits and frees
   * its waiter records, as a thread's exit does. The caller has ended the session's waits (no
   * poll of its records may run after this). Returns how many primitives it touched.
   */
  closeSession(o1: number): number {
    const ew = this.sessW + ((o1 - SESSION_BASE) % this.waiters) * (SESSION_BYTES >> 2);
    if (o1 < SESSION_BASE || o1 >= OWNER_LIMIT || Atomics.load(this.i32, ew + E_OWNER) !== o1 || Atomics.load(this.i32, ew + E_CREATOR) === 0) return 0;
    const n = this.recoverOwner(o1, -1);
    Atomics.store(this.i32, ew + E_CREATOR, 0);
    return n;
  }

  /**
   * Frees owner o1's records, returns its permits and hands on its locks. `deadThreadId` (>= 0)
   * is the thread that died, whose slot mutexes are repaired; -1 for a session (a session never
   * holds a mutex: its thread does, inside one call).
   */
  private recoverOwner(o1: number, deadThreadId: number): number {
    const dead = o1;
    const i32 = this.i32;
    const touched = new Set<number>();
    for (let r = 0; r < this.waiters; r++) {
      const w = this.rw(r);
      const st = Atomics.load(i32, w + R_STATE);
      if (st === 0 || st >>> 2 !== dead) continue;
      const s = Atomics.load(i32, w + R_SLOT);
      if (s >= 0 && s < this.capacity) touched.add(s);
      else this.free(r); // claimed, never filled
    }
    for (let s = 0; s < this.capacity; s++) {
      const w = this.sw(s);
      if (Atomics.load(i32, w + S_KIND) === 0) continue;
      if ((deadThreadId >= 0 && holderOf(i32, w + S_MUTEX) === deadThreadId) || Atomics.load(i32, w + S_OWNER) >>> 2 === dead) touched.add(s);
    }
    for (const s of touched) this.recoverSlot(s, dead, deadThreadId);
    return touched.size;
  }

  private recoverSlot(s: number, dead: number, deadThreadId: number): void {
    const w = this.sw(s);
    const i32 = this.i32;
    const mutexWasDead = deadThreadId >= 0 && forceTake(i32, w + S_MUTEX, deadThreadId);
    if (!mutexWasDead) this.enter(s);
    try {
      for (let r = 0; r < this.waiters; r++) {
        const rw = this.rw(r);
        const st = Atomics.load(i32, rw + R_STATE);
        if (st === 0 || st >>> 2 !== dead || Atomics.load(i32, rw + R_SLOT) !== s) continue;
        if ((st & 3) === R_HOLD) {
          i32[w + S_AVAIL] += i32[rw + R_WANT];
          i32[w + S_NHOLD]--;
        } else if (Atomics.load(i32, rw + R_GRANT) === 0) {
          i32[w + S_NWAIT]--;
        }
        this.free(r);
      }
      if (mutexWasDead) this.repair(s);
      const kind = Atomics.load(i32, w + S_KIND);
      if (kind === K_LOCK) {
        const o = Atomics.load(i32, w + S_OWNER);
        if (o >>> 2 === dead) this.handOff(s);
        else if (i32[w + S_NWAIT] <= 0) Atomics.and(i32, w + S_OWNER, ~QUEUED);
      } else if (kind === K_SEMAPHORE) {
        this.grantPermits(s);
      }
    } finally {
      this.leave(s);
    }
  }

  /**
   * The slot's mutex holder died inside a section: recount what the records say. The records are
   * the truth (a waiter is a record, a holding is a record); the counters are derived from them.
   * A hand-off is committed once the waiter's GRANT is 1, so OWNER is set from such a record.
   */
  private repair(s: number): void {
    const w = this.sw(s);
    const i32 = this.i32;
    let nwait = 0;
    let nhold = 0;
    let held = 0;
    let granted = -1;
    for (let r = 0; r < this.waiters; r++) {
      const rw = this.rw(r);
      const st = Atomics.load(i32, rw + R_STATE);
      if (st === 0 || Atomics.load(i32, rw + R_SLOT) !== s) continue;
      if ((st & 3) === R_HOLD) {
        nhold++;
        held += i32[rw + R_WANT];
      } else if (Atomics.load(i32, rw + R_GRANT) === 0) nwait++;
      else granted = r;
    }
    i32[w + S_NWAIT] = nwait;
    i32[w + S_NHOLD] = nhold;
    const kind = i32[w + S_KIND];
    if (kind === K_SEMAPHORE) i32[w + S_AVAIL] = i32[w + S_TOTAL] - held;
    if (kind === K_LOCK && granted >= 0) {
      const lease = this.f64[this.rd(granted) + RD_LEASE];
      Atomics.store(i32, w + S_OWNER, ((Atomics.load(i32, this.rw(granted) + R_STATE) >>> 2) << 2) | (lease !== Infinity ? LEASED : 0) | (nwait > 0 ? QUEUED : 0));
    } else if (kind === K_LOCK && nwait > 0 && Atomics.load(i32, w + S_OWNER) !== 0) {
      Atomics.or(i32, w + S_OWNER, QUEUED);
    }
  }
}
