/**
 * The cluster's side of FAST frames (transport/fast.ts): writing get / set / getMany / replicated
 * write records, reading their replies into values, and the pending calls that wait for them.
 *
 * A value crosses the wire as the bytes the store holds (type tag, expiry, payload), written into
 * the outgoing frame straight from the encoder (requests) or from shared memory (replies,
 * replicated writes) and decoded on arrival with the store's own codec: strings from their UTF-8,
 * numbers from their float64, byte arrays copied, everything else msgpack.
 */
import { MemberUnreachableError, RetryableGridError } from '../errors.js';
import { decodeMsgpack, type ValueEncoder } from '../storage/codec.js';
import { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from '../storage/layout.js';
import {
  ABSENT, GET_HEAD, MGET_HEAD, O_GET, O_MGET, O_REP, O_SET, R_OK, R_STATE, R_STATES, REP_HEAD, SET_HEAD, VALUE_HEAD, readF64,
  type FastReader, type FastWriter,
} from '../transport/fast.js';
import { FastCall, type FastPeer } from '../transport/transport.js';
import type { Done } from './context.js';
import type { RawState } from './records.js';

/** The value of a STATE read from a frame; undefined when absent or expired. */
export function valueAt(b: Buffer, type: number, exp: number, off: number, len: number): unknown {
  if (type < 0) return undefined;
  if (exp !== 0 && exp <= Date.now()) return undefined;
  switch (type) {
    case T_STRING:
      return (b as unknown as Utf8Slicer).utf8Slice(off, off + len); // toString without its argument checks
    case T_NUMBER:
      return readF64(b, off);
    case T_BYTES: {
      const out = Buffer.allocUnsafe(len); // a copy: the frame is not the caller's to keep
      b.copy(out, 0, off, off + len);
      return out;
    }
    case T_MSGPACK:
      return decodeMsgpack(b.subarray(off, off + len));
    default:
      return undefined; // validateFast admits tags 0..3 only
  }
}

interface Utf8Slicer {
  utf8Slice(start: number, end: number): string;
}

/** A STATE as a RawState (for the generic paths). */
export function rawAt(b: Buffer, type: number, exp: number, off: number, len: number): RawState {
  if (type < 0) return null;
  if (type === T_NUMBER) return [type, readF64(b, off), exp];
  if (type === T_STRING) return [type, b.toString('utf8', off, off + len), exp];
  return [type, Buffer.from(b.subarray(off, off + len)), exp];
}

/** Bytes of a RawState's STATE. */
export function rawSize(s: RawState): number {
  if (s === null) return 1;
  const v = s[1];
  return VALUE_HEAD + (typeof v === 'number' ? 8 : typeof v === 'string' ? Buffer.byteLength(v, 'utf8') : v.length);
}

export function writeRaw(w: FastWriter, s: RawState): void {
  if (s === null) {
    w.u8(ABSENT);
    return;
  }
  const [type, v, exp] = s;
  w.u8(type);
  w.f64(exp);
  if (typeof v === 'number') {
    w.u32(8);
    w.f64(v);
  } else if (typeof v === 'string') {
    const n = Buffer.byteLength(v, 'utf8');
    w.u32(n);
    w.str(v, n);
  } else {
    w.u32(v.length);
    w.bytes(v, 0, v.length);
  }
}

// ── requests ────────────────────────────────────────────────────────────────────────────────────

/**
 * Starts a request record of `need` bytes: names the map on the connection if new, registers the
 * call and writes [op, id, map]. Undefined (nothing written) when the record does not fit a
 * FAST frame or the map cannot be named on this connection: the caller then uses grid.op.
 */
function begin(peer: FastPeer, op: number, map: string, need: number, c: FastCall): FastWriter | undefined {
  if (need > peer.maxRecord) return undefined;
  const mi = peer.mapIndex(map);
  if (mi < 0) return undefined;
  const w = peer.room(need);
  w.u8(op);
  w.u32(peer.call(c));
  w.u16(mi);
  return w;
}

/** Sends a GET of `key` (`klen` UTF-8 bytes). */
export function sendGet(peer: FastPeer, map: string, key: string, klen: number, c: FastCall): boolean {
  const w = begin(peer, O_GET, map, GET_HEAD + klen, c);
  if (w === undefined) return false;
  w.u16(klen);
  w.str(key, klen);
  return true;
}

/** Sends a SET of the encoder's current value under request id `rid` (ASCII, cluster/dedupe.ts). */
export function sendSet(peer: FastPeer, map: string, key: string, klen: number, rid: string, e: ValueEncoder, expiresAt: number, c: FastCall): boolean {
  const w = begin(peer, O_SET, map, SET_HEAD + klen + rid.length + VALUE_HEAD + e.len, c);
  if (w === undefined) return false;
  w.u16(klen);
  w.str(key, klen);
  w.u8(rid.length);
  w.str(rid, rid.length);
  w.u8(e.type);
  w.f64(expiresAt);
  w.u32(e.len);
  if (e.type === T_NUMBER) w.f64(e.num);
  else if (typeof e.bytes === 'string') w.str(e.bytes, e.len);
  else w.bytes(e.bytes, 0, e.len);
  return true;
}

/** Sends one MGET of `keys`. */
export function sendMget(peer: FastPeer, map: string, keys: readonly string[], c: FastCall): boolean {
  const lens = new Array<number>(keys.length);
  let need = MGET_HEAD;
  for (let i = 0; i < keys.length; i++) need += 2 + (lens[i] = Buffer.byteLength(keys[i], 'utf8'));
  const w = begin(peer, O_MGET, map, need, c);
  if (w === undefined) return false;
  w.u32(keys.length);
  for (let i = 0; i < keys.length; i++) {
    w.u16(lens[i]);
    w.str(keys[i], lens[i]);
  }
  return true;
}

/** Key bytes of a replicated write: a string, or bytes of a received frame. */
export type KeySource = { s: string; b?: undefined; off?: undefined; len: number } | { s?: undefined; b: Uint8Array; off: number; len: number };

/**
 * Sends a REP (replicated state) of key; the state is a RawState or a STATE in a received frame.
 * `rid` (ASCII, or undefined): the request id of the write, which the copy records (dedupe.ts).
 */
export function sendRep(
  peer: FastPeer, map: string, version: number, tableVersion: number, key: KeySource, rid: string | undefined,
  raw: RawState | undefined, b: Buffer | undefined, type: number, exp: number, off: number, len: number,
  c: FastCall,
): boolean {
  const size = raw !== undefined ? rawSize(raw) : type < 0 ? 1 : VALUE_HEAD + len;
  const rlen = rid === undefined ? 0 : rid.length;
  const w = begin(peer, O_REP, map, REP_HEAD + key.len + rlen + size, c);
  if (w === undefined) return false;
  w.f64(version);
  w.f64(tableVersion);
  w.u16(key.len);
  if (key.s !== undefined) w.str(key.s, key.len);
  else w.bytes(key.b, key.off, key.off + key.len);
  w.u8(rlen);
  if (rid !== undefined) w.str(rid, rlen);
  if (raw !== undefined) writeRaw(w, raw);
  else if (type < 0) w.u8(ABSENT);
  else {
    w.u8(type);
    w.f64(exp);
    w.u32(len);
    w.bytes(b!, off, off + len);
  }
  return true;
}

// ── pending calls ─────────────────────────────────────────────────────────────────────────────

const canRetry = (e: unknown): boolean => e instanceof RetryableGridError || e instanceof MemberUnreachableError;

/**
 * A FAST request that settles a promise of its own (promiseOf). A retryable error goes to
 * `retry` (a first attempt: routing takes over, waiting for a newer table) when it returns a
 * promise; otherwise the promise rejects.
 */
abstract class Call<T> extends FastCall {
  res!: (v: T) => void;
  rej!: (e: unknown) => void;

  protected retry(_e: unknown): Promise<T> | undefined {
    return undefined;
  }

  reject(e: unknown): void {
    const again = canRetry(e) ? this.retry(e) : undefined;
    if (again !== undefined) again.then(this.res, this.rej);
    else this.rej(e);
  }
}

let adopting: Call<any> | undefined;
/** The one executor of every call's promise: no closure per call (the Promise constructor runs it at once). */
function adopt(res: (v: any) => void, rej: (e: unknown) => void): void {
  adopting!.res = res;
  adopting!.rej = rej;
}

/** The promise `c` settles. Create it before sending `c`. */
export function promiseOf<T>(c: Call<T>): Promise<T> {
  adopting = c;
  const p = new Promise<T>(adopt);
  adopting = undefined;
  return p;
}

/** Routes a get or set again after a first FAST attempt failed with a retryable error. */
export interface Rerouter {
  getRouted(p: number, key: string, e: unknown): Promise<unknown>;
  setRouted(p: number, key: string, value: unknown, expiresAt: number, e: unknown, rid: string): Promise<void>;
}

/**
 * Where a member counts the lookups it made (its thread's hit and miss counters: `keyspace_hits`
 * of INFO, `shardgrid_hits_total`): a lookup served by another member is counted by the member
 * that asked, as one served here is. Before, remote lookups were counted nowhere.
 */
export interface HitCounter {
  hit(): void;
  miss(): void;
}

const NOT_COUNTED: HitCounter = { hit() {}, miss() {} };

/** Counts `v` as a hit or a miss in `c`; returns it. */
export function countLookup<T>(c: HitCounter, v: T): T {
  if (v === undefined) c.miss();
  else c.hit();
  return v;
}

/** A GET: resolves with the value. `owner`: set on a first attempt (retries go to owner.getRouted). */
export class GetCall<T = unknown> extends Call<T> {
  get reply(): number {
    return R_STATE;
  }

  get kind(): string {
    return 'get';
  }

  constructor(
    private readonly owner: Rerouter | undefined,
    private readonly p: number,
    private readonly key: string,
    private readonly counts: HitCounter = NOT_COUNTED,
  ) {
    super();
  }

  settle(r: FastReader): void {
    this.res(countLookup(this.counts, valueAt(r.buf, r.vType, r.vExp, r.vOff, r.vLen)) as T);
  }

  protected override retry(e: unknown): Promise<T> | undefined {
    return this.owner?.getRouted(this.p, this.key, e) as Promise<T> | undefined;
  }
}

/** An MGET: resolves with the values in key order. */
export class MgetCall<T = unknown> extends Call<T[]> {
  get reply(): number {
    return R_STATES;
  }

  get kind(): string {
    return 'mget';
  }

  constructor(
    private readonly count: number,
    private readonly counts: HitCounter = NOT_COUNTED,
  ) {
    super();
  }

  settle(r: FastReader): void {
    if (r.count !== this.count) throw new RetryableGridError(`getMany reply has ${r.count} values for ${this.count} keys`);
    const out = new Array<T>(r.count);
    for (let i = 0; i < r.count; i++) out[i] = countLookup(this.counts, valueAt(r.buf, r.types[i], r.exps[i], r.offs[i], r.lens[i])) as T;
    this.res(out);
  }
}

/** A SET: resolves once the primary and its backups applied it; retries go to owner.setRouted. */
export class SetCall extends Call<void> {
  get reply(): number {
    return R_OK;
  }

  get kind(): string {
    return 'set';
  }

  constructor(
    private readonly owner: Rerouter,
    private readonly p: number,
    private readonly key: string,
    private readonly value: unknown,
    private readonly expiresAt: number,
    private readonly rid: string,
  ) {
    super();
  }

  settle(): void {
    this.res(undefined);
  }

  protected override retry(e: unknown): Promise<void> {
    // the same request id: a primary that applied the first attempt does not apply it again
    return this.owner.setRouted(this.p, this.key, this.value, this.expiresAt, e, this.rid);
  }
}

/**
 * Counts the replicated writes one write waits for; `finish(err)` runs once all are answered.
 * Also records which copies hold the write (replicas.ts counts them before acknowledging).
 */
export class Shipment {
  private remaining = 1;
  private error: unknown;
  /** Copies that applied the write (a write has one or two: an array, not a Set per write). */
  readonly acked: string[] = [];
  /** Copies that missed it and that a committed table dropped since (one that is an owner again was re-synced after the write). */
  dropped: string[] | undefined;
  /**
   * @param targets the partition's copies when the write was applied (a member that became a
   *   copy later was streamed a snapshot that includes it)
   */
  constructor(
    private readonly finish: (err: unknown) => void,
    readonly targets: readonly string[] = [],
  ) {}

  add(): void {
    this.remaining++;
  }

  /** Copy `to` applied the write. */
  ack(to: string): void {
    if (!this.acked.includes(to)) this.acked.push(to);
  }

  /** A committed table dropped copy `to`, which missed the write. */
  drop(to: string): void {
    if (this.dropped === undefined) this.dropped = [to];
    else if (!this.dropped.includes(to)) this.dropped.push(to);
  }

  /** Whether owner `x` holds the write (or needs not: it was dropped, or became a copy after it). */
  holds(x: string): boolean {
    return this.acked.includes(x) || (this.dropped !== undefined && this.dropped.includes(x)) || !this.targets.includes(x);
  }

  /** One copy answered (or was given up on); `err` fails the whole write. */
  done(err?: unknown): void {
    if (err !== undefined && this.error === undefined) this.error = err;
    if (--this.remaining === 0) this.finish(this.error);
  }
}

/** What decides whether a copy's failure to apply a REP fails the write (the replicas layer). */
export interface CopyFailures {
  copyFailed(ship: Shipment, p: number, to: string, epoch: number, e: unknown, map: string, key: KeySource, attempt: number, done: Done | undefined): unknown;
}

/**
 * A REP nothing waits for (an evicted key's state, Replicas.shipEvictions): a copy that refused
 * or missed it keeps a key its primary no longer holds, which costs it memory only.
 */
export class UnwaitedRep extends FastCall {
  get reply(): number {
    return R_OK;
  }

  get kind(): string {
    return 'rep';
  }

  settle(): void {}

  reject(): void {}
}

/** A REP sent to one copy: reports to its shipment; on an error, `r` decides whether it fails the write. */
export class RepCall extends FastCall {
  get reply(): number {
    return R_OK;
  }

  get kind(): string {
    return 'rep';
  }

  constructor(
    private readonly shipment: Shipment,
    private readonly to: string,
    private readonly r: CopyFailures,
    private readonly p: number,
    private readonly epoch: number,
    private readonly map: string,
    private readonly key: KeySource,
    private readonly attempt: number,
    private readonly done: Done | undefined,
  ) {
    super();
  }

  settle(): void {
    this.shipment.ack(this.to);
    this.shipment.done();
  }

  reject(e: unknown): void {
    let err: unknown;
    try {
      err = this.r.copyFailed(this.shipment, this.p, this.to, this.epoch, e, this.map, this.key, this.attempt, this.done);
    } catch (x) {
      err = x;
    }
    this.shipment.done(err);
  }
}
