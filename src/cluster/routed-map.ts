/**
 * RoutedMap: the map API of a cluster member, the top layer (node.ts lists the layers). Each
 * operation goes through routing (routing.ts) to the primary of its key's partition: on this
 * member it runs on shared memory exactly as in a single process (GridMap), handed to the
 * replicas layer (replicas.ts `write` / `writeOnce`), which applies it and replicates the key's
 * state to the copies; elsewhere get, set and getMany travel as FAST records (transport/fast.ts,
 * cluster/fast-ops.ts; the primary answers them in fast-serve.ts) and every other operation as
 * one `grid.op` request. `serve` runs grid.op requests from other members, on the primary only.
 * Calls go down only: nothing below calls back into this file.
 *
 * Values cross the wire encoded (type tag, payload bytes, expiresAt), so a remote get or set
 * never decodes and re-encodes a value on the way. Operations whose arguments are compared or
 * computed on the primary (compareAndSet, setIfAbsent, compute, aggregate) carry them, and
 * compute results and aggregation partials come back, as the value codec's msgpack bytes
 * (packPlain); increment carries its number.
 */
import { aggregatePartitions, combineAndFinish } from '../compute/aggregate.js';
import { resolveAggregator } from '../compute/aggregators.js';
import { refNames, resolveRef } from '../compute/modules.js';
import type { AggregatorRef, ComputeRef } from '../compute/types.js';
import { MAX_COMPUTE_TIMEOUT_MS, setTtl, shownArg, type SetOptions } from '../config.js';
import { InvalidArgumentError, ModuleLoadError, PartitionMovedError, ProtocolError, UnknownModuleError, UnsupportedError } from '../errors.js';
import type { Grid } from '../grid.js';
import { GridMap, NEED, OP_ATOMIC, OP_DELETE, OP_GET, OP_READ, OP_SET, type MapHost } from '../map.js';
import { decodeMsgpack } from '../storage/codec.js';
import { T_BYTES, T_MSGPACK, T_NUMBER, T_STRING } from '../storage/layout.js';
import { isRequestId } from './dedupe.js';
import type { ClusterNode } from './node.js';
import type { Replicas } from './replicas.js';
import { UNSAFE_EARLY_OWN_ACK } from './context.js';
import type { Router } from './routing.js';
import { GetCall, MgetCall, SetCall, countLookup, promiseOf, sendGet, sendMget, sendSet } from './fast-ops.js';
import { checkState, type RawState } from './records.js';
import { keyOf } from './unsettled.js';
import { packArg, packPlain, unpackPlain } from './plain.js';
import type { UpdateReply } from '../updates.js';

type Body = Record<string, unknown>;
/** How much longer than its time limit (compute.timeoutMs, compute.processorTimeoutMs) the request of a member's aggregation share or compute waits for the member's answer. */
const AGG_REPLY_MARGIN_MS = 5000;

/** A value from its encoded state (undefined when absent or expired). */
export function fromState(s: RawState): unknown {
  if (s === null) return undefined;
  const [type, payload, exp] = s;
  if (exp !== 0 && exp <= Date.now()) return undefined;
  switch (type) {
    case T_STRING:
    case T_NUMBER:
      return payload;
    case T_BYTES:
      return Buffer.from(payload as Uint8Array); // a copy: the frame's buffer is not ours to keep
    case T_MSGPACK:
      return decodeMsgpack(payload as Uint8Array);
    default:
      throw new ProtocolError(`unknown value type ${type}`);
  }
}

const str = (v: unknown, what: string): string => {
  if (typeof v !== 'string') throw new ProtocolError(`grid.op: ${what} must be a string`);
  return v;
};

export class RoutedMap<V = unknown> extends GridMap<V> {
  private readonly node: ClusterNode;
  private readonly router: Router;
  private readonly rep: Replicas;
  private readonly grid: Grid;

  constructor(host: MapHost & Grid, node: ClusterNode, name: string, id: number) {
    super(host, name, id);
    this.node = node;
    this.router = node.router;
    this.rep = node.replicas;
    this.grid = host;
    this.countOps = false;
    if (UNSAFE_EARLY_OWN_ACK) this.putHere = this.putHereAckedEarly;
  }

  private part(key: string): number {
    this.host.assertOpen(this.internal);
    return this.key(key);
  }

  /** Encoded state of `value` with expiry, validated here (typed errors before anything moves). */
  private stateOf(value: unknown, options: SetOptions | number | undefined): Exclude<RawState, null> {
    return this.stateAt(value, this.expiry(options));
  }

  private stateAt(value: unknown, expiresAt: number): Exclude<RawState, null> {
    this.value(value);
    return this.encodedState(expiresAt);
  }

  /** The encoder's current value with expiry as a RawState (a copy: the encoder is reused). */
  private encodedState(expiresAt: number): Exclude<RawState, null> {
    const e = this.enc.snapshot();
    const payload = e.type === T_NUMBER ? e.num : e.type === T_STRING ? (e.bytes as string) : Buffer.from(e.bytes as Uint8Array);
    return [e.type, payload, expiresAt];
  }

  /** A fresh request id: this member's id and a counter (unique in the cluster). */
  private rid(): string {
    return `${this.node.memberId}.${(RoutedMap.seq = (RoutedMap.seq + 1) % Number.MAX_SAFE_INTEGER).toString(36)}`;
  }

  private static seq = 0;

  /**
   * Key's state on this primary (lease checked): what its copies hold while a write of it is
   * being replicated (unsettled.ts), else shared memory; read and checked in one synchronous run.
   */
  private localState(key: string): RawState | Promise<RawState> {
    return this.rep.records.withState(
      this.name,
      key,
      (p, s) => {
        this.rep.assertPrimary(p);
        const u = this.rep.unsettledOf(this.name, key);
        return u === undefined ? s : u.stable;
      },
      true,
    );
  }

  /** get() on this primary: the lock-free read when p has no unsettled key (checked in the same run, so no write can begin between), else localState. */
  private readLocal(p: number, key: string): Promise<V | undefined> {
    try {
      this.rep.assertPrimary(p);
      if (!this.rep.unsettledIn(p)) {
        const v = this.getLocal(key);
        if (v !== NEED) return Promise.resolve(v);
      }
      return Promise.resolve(this.localState(key)).then((s) => fromState(s) as V | undefined);
    } catch (e) {
      return Promise.reject(e);
    }
  }

  /** has() on this primary (localState: what the copies hold). */
  private async hasLocal(key: string): Promise<boolean> {
    const s = await this.localState(key);
    return s !== null && (s[2] === 0 || s[2] > Date.now());
  }

  /** ttl() on this primary: ms left, undefined when absent or without expiry. */
  private async ttlLocal(key: string): Promise<number | undefined> {
    const s = await this.localState(key);
    if (s === null || s[2] === 0) return undefined;
    const left = s[2] - Date.now();
    return left > 0 ? left : undefined;
  }

  /**
   * A routed set() (a retry, or any set under SHARDGRID_UNSAFE_EARLY_OWN_ACK) served on this
   * member's own primary (putHereAckedEarly instead under that switch, chosen in the constructor).
   */
  private putHere(p: number, key: string, s: RawState, rid: string): Promise<void> {
    return this.putState(p, key, s, rid);
  }

  /** The negative control UNSAFE_EARLY_OWN_ACK (context.ts): applied here and acknowledged; replicated (putState) a second later. */
  private async putHereAckedEarly(p: number, key: string, s: RawState, rid: string): Promise<void> {
    this.rep.assertPrimary(p);
    await this.rep.records.serial(p, () => this.rep.records.putState(this.name, key, s));
    setTimeout(() => void this.putState(p, key, s, rid).catch(() => undefined), 1000).unref();
  }

  /** Stores a state on this primary and replicates it; applied at most once per request id `rid`. */
  private putState(p: number, key: string, s: RawState, rid: string | undefined): Promise<void> {
    return this.rep.writeOnce(p, this.name, key, rid, async () => {
      await this.rep.records.serial(p, () => {
        // checked again under the lock: a FAST SET of the same id may have been applied meanwhile
        if (rid === undefined || !this.rep.dedupe.has(p, rid)) this.rep.records.putState(this.name, key, s);
      });
    });
  }

  // ── reads ─────────────────────────────────────────────────────────────────────────────────────

  override getSync(key: string): V | undefined {
    this.ops[OP_GET]++;
    const p = this.part(key);
    if (this.rep.isPrimary(p)) {
      this.rep.assertPrimary(p); // the lease: a typed, retryable error when it does not cover p now
      const u = this.rep.unsettledIn(p) ? this.rep.unsettledOf(this.name, key) : undefined;
      return u === undefined ? super.getSync(key) : (fromState(u.stable) as V | undefined);
    }
    throw new UnsupportedError(`getSync: the primary of key '${key}' is another member; use get()`);
  }

  /**
   * @internal get() without a promise, for the RESP endpoint: the value (or undefined) when this
   * member serves the key's partition now (primary, under its lease) with no write of it
   * unsettled and the record readable without the lock; NEED otherwise (then take get()).
   */
  getServed(key: string): V | undefined | typeof NEED {
    const p = this.part(key);
    if (!this.rep.serves(p) || this.rep.unsettledIn(p)) return NEED;
    const v = this.getLocal(key);
    if (v !== NEED) this.ops[OP_GET]++;
    return v;
  }

  override get(key: string): Promise<V | undefined> {
    this.ops[OP_GET]++;
    let p: number;
    try {
      p = this.part(key);
    } catch (e) {
      return Promise.reject(e);
    }
    if (this.rep.serves(p)) return this.readLocal(p, key);
    // one FAST GET to the primary; its reply record resolves this promise with the value
    const peer = this.router.fastPeerOf(p);
    if (peer !== undefined) {
      const c = new GetCall<V | undefined>(this, p, key, this.store);
      const pr = promiseOf(c);
      if (sendGet(peer, this.name, key, this.store.klen, c)) return pr;
    }
    return this.getRouted(p, key, undefined);
  }

  /** get() with retries (route): `first` is the error of a first attempt, if any. @internal */
  getRouted(p: number, key: string, first: unknown): Promise<V | undefined> {
    return this.router.routeSlow(
      p,
      () => this.readLocal(p, key),
      (to) => this.getFrom(to, key),
      first,
    );
  }

  /** One get from member `to`: a FAST GET, or a grid.op when the map cannot be named on the connection. */
  private getFrom(to: string, key: string): Promise<V | undefined> {
    const peer = this.router.peer(to);
    if (peer !== undefined) {
      const c = new GetCall<V | undefined>(undefined, 0, key, this.store);
      const pr = promiseOf(c);
      if (sendGet(peer, this.name, key, Buffer.byteLength(key, 'utf8'), c)) return pr;
    }
    return this.router.request<RawState>(to, { m: this.name, o: 'get', k: key }).then((s) => this.countedRemote(fromState(checkState(s, Infinity)) as V | undefined));
  }

  /** A value another member served, counted as this member's lookup (HitCounter). */
  private countedRemote(v: V | undefined): V | undefined {
    return countLookup(this.store, v);
  }

  override async has(key: string): Promise<boolean> {
    this.ops[OP_READ]++;
    const p = this.part(key);
    return this.router.route(p, () => this.hasLocal(key), { m: this.name, o: 'has', k: key });
  }

  override async ttl(key: string): Promise<number | undefined> {
    this.ops[OP_READ]++;
    const p = this.part(key);
    const r = await this.router.route<number | null | undefined>(p, () => this.ttlLocal(key), { m: this.name, o: 'ttl', k: key });
    return r ?? undefined;
  }

  override async getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    if (Array.isArray(keys)) this.ops[OP_GET] += keys.length;
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array of strings');
    const parts = keys.map((k) => this.part(k));
    // one FAST MGET (or grid.op mget) per primary member
    return this.router.routeMany<V | undefined>(
      parts,
      (idx) => Promise.all(idx.map((i) => this.readLocal(parts[i], keys[i]))),
      (to, idx) => this.getManyFrom(to, idx.map((i) => keys[i])),
    );
  }

  private getManyFrom(to: string, keys: string[]): Promise<Array<V | undefined>> {
    const peer = this.router.peer(to);
    if (peer !== undefined) {
      const c = new MgetCall<V | undefined>(keys.length, this.store);
      const pr = promiseOf(c);
      if (sendMget(peer, this.name, keys, c)) return pr;
    }
    return this.router.request<unknown[]>(to, { m: this.name, o: 'mget', ks: keys }).then((states) => states.map((s) => this.countedRemote(fromState(checkState(s, Infinity)) as V | undefined)));
  }

  override async size(): Promise<number> {
    return this.overPrimaries('size');
  }

  /** @internal size()'s count of the entries that have an expiry, over every member's primaries. */
  override async expiring(): Promise<number> {
    return this.overPrimaries('expiring');
  }

  /** A count over every partition, each counted once on its primary (Router.overPartitions). */
  private async overPrimaries(o: 'size' | 'expiring'): Promise<number> {
    this.host.assertOpen(this.internal);
    const counts = await this.router.overPartitions<number>(
      async (ps) => this.countLocal(o, ps),
      (to, ps) => this.router.request<number>(to, { m: this.name, o, ps }),
    );
    return counts.reduce((a, b) => a + b, 0);
  }

  /** The entries (or those with an expiry) of partitions `ps`, all primary here (else PartitionMovedError, before anything is counted). */
  private countLocal(o: 'size' | 'expiring', ps: readonly number[]): number {
    for (const p of ps) this.rep.assertPrimary(p);
    let n = 0;
    for (const p of ps) n += o === 'size' ? this.store.mapCountIn(p, this.id) : this.store.mapTtlCountIn(p, this.id);
    return n;
  }

  /**
   * Runs `fn` over partitions `ps`, which must all be primary here when it starts and still be
   * at the same epochs when it ends (an aggregation awaits the compute pool meanwhile): a
   * partition handed over in between throws PartitionMovedError, and the caller asks its new
   * primary instead.
   */
  private async onPrimaries<T>(ps: readonly number[], fn: () => Promise<T>): Promise<T> {
    for (const p of ps) this.rep.assertPrimary(p);
    const epochs = ps.map((p) => this.rep.table!.epochs[p]);
    const r = await fn();
    ps.forEach((p, i) => {
      this.rep.assertPrimary(p);
      if (this.rep.table!.epochs[p] !== epochs[i]) throw new PartitionMovedError(`partition ${p} changed hands during the operation`, { partition: p, version: this.rep.version });
    });
    return r;
  }

  override async *entries(): AsyncGenerator<[string, V]> {
    for (let p = 0; p < this.store.partitions; p++) {
      this.host.assertOpen(this.internal);
      const list = await this.router.route(p, () => this.scanLocal(p), { m: this.name, o: 'scan', p });
      for (const [k, s] of list) {
        const v = fromState(checkState(s, Infinity));
        if (v !== undefined) yield [k, v as V];
      }
    }
  }

  private scanLocal(p: number): Promise<Array<[string, RawState]>> {
    this.rep.assertPrimary(p);
    return this.rep.records.withSnapshot(p, (all) => {
      this.rep.assertPrimary(p);
      const out: Array<[string, RawState]> = [];
      for (const [m, k, s] of all) if (m === this.name) out.push([k, s]);
      return out;
    });
  }

  // ── writes ────────────────────────────────────────────────────────────────────────────────────

  override set(key: string, value: V, options?: SetOptions | number): Promise<void> {
    this.ops[OP_SET]++;
    let p: number;
    let klen: number;
    let expiresAt: number;
    try {
      p = this.part(key);
      klen = this.store.klen;
      expiresAt = this.expiry(options);
      this.value(value); // the encoder now holds the value: a FAST SET copies it into its frame
    } catch (e) {
      return Promise.reject(e);
    }
    // every attempt of this set carries one request id: a retry after a lost reply is not applied
    // again (it could undo a later write of another client)
    const rid = this.rid();
    // (the negative control SHARDGRID_UNSAFE_EARLY_OWN_ACK takes the routed path, putHere)
    if (this.rep.isPrimary(p) && !UNSAFE_EARLY_OWN_ACK) {
      const c = new SetCall(this, p, key, value, expiresAt, rid);
      const pr = promiseOf(c);
      this.setHere(p, key, klen, this.encodedState(expiresAt), rid, c);
      return pr;
    }
    const peer = this.router.fastPeerOf(p);
    if (peer !== undefined) {
      const c = new SetCall(this, p, key, value, expiresAt, rid);
      const pr = promiseOf(c);
      if (sendSet(peer, this.name, key, klen, rid, this.enc, expiresAt, c)) return pr;
    }
    return this.setRouted(p, key, value, expiresAt, undefined, rid);
  }

  /**
   * A first attempt of set() on this primary, served as a FAST SET from another member is
   * (fast-serve.ts serveSet): written under p's lock and shipped to the copies in the same run,
   * no promise of its own; `c` settles once every live copy applied it. A retryable error (moved,
   * no lease, a copy that refused) retries through setRouted with the same request id, as a
   * remote first attempt does: a retry of a set that was applied here is not applied again.
   */
  private setHere(p: number, key: string, klen: number, s: Exclude<RawState, null>, rid: string, c: SetCall): void {
    const rep = this.rep;
    const name = this.name;
    const uk = keyOf(name, key);
    const write = (): void => {
      rep.assertPrimary(p);
      // a fresh request id, never sent anywhere: no earlier attempt to look for in the records
      const u = rep.unsettled.begin(p, uk, () => rep.records.stateHere(this.key(key), this.id));
      try {
        rep.records.putState(name, key, s);
      } catch (e) {
        rep.unsettled.abandon(uk, u);
        throw e;
      }
      rep.shipPut(p, name, key, klen, uk, u, rid, s, undefined, 0, 0, 0, 0, (err) => (err === undefined ? c.settle() : c.reject(err)));
    };
    try {
      const res = rep.records.serial(p, write);
      if (res instanceof Promise) res.then(undefined, (e: unknown) => c.reject(e));
    } catch (e) {
      c.reject(e);
    }
  }

  /** set() with retries (route); the value travels as a grid.op state. `first`: the error of a first attempt, if any. @internal */
  setRouted(p: number, key: string, value: unknown, expiresAt: number, first: unknown, rid: string): Promise<void> {
    let s: Exclude<RawState, null>;
    try {
      s = this.stateAt(value, expiresAt);
    } catch (e) {
      return Promise.reject(e);
    }
    const body = { m: this.name, o: 'set', k: key, s, r: rid };
    if (first === undefined) return this.router.route(p, () => this.putHere(p, key, s, rid), body);
    return this.router.routeSlow(p, () => this.putHere(p, key, s, rid), (to) => this.router.request<void>(to, body), first);
  }

  override async setMany(entries: ReadonlyArray<readonly [string, V]>, options?: SetOptions | number): Promise<void> {
    if (Array.isArray(entries)) this.ops[OP_SET] += entries.length;
    this.host.assertOpen(this.internal);
    if (!Array.isArray(entries)) throw new InvalidArgumentError('entries must be an array of [key, value] pairs');
    const parts: number[] = [];
    const states: Array<Exclude<RawState, null>> = [];
    for (const pair of entries) {
      if (!Array.isArray(pair) || pair.length < 2) throw new InvalidArgumentError('entries must be an array of [key, value] pairs');
      parts.push(this.part(pair[0]));
      states.push(this.stateOf(pair[1], options));
    }
    await this.router.routeMany<boolean>(
      parts,
      (idx) => this.putMany(idx.map((i) => entries[i][0]), idx.map((i) => states[i])),
      (to, idx) => this.router.request<boolean[]>(to, { m: this.name, o: 'mset', ks: idx.map((i) => entries[i][0]), ss: idx.map((i) => states[i]) }),
    );
  }

  private async putMany(keys: string[], states: RawState[]): Promise<boolean[]> {
    const parts = keys.map((k) => this.part(k));
    for (const p of parts) this.rep.assertPrimary(p); // all or nothing before anything is written
    // no request ids: a retried setMany may apply a key's state again (README, "Retries")
    return Promise.all(keys.map((k, i) => this.putState(parts[i], k, states[i], undefined).then(() => true)));
  }

  override async delete(key: string): Promise<boolean> {
    this.ops[OP_DELETE]++;
    const p = this.part(key);
    const r = this.rid();
    return this.router.route(p, () => this.rep.writeOnce(p, this.name, key, r, () => super.delete(key)), { m: this.name, o: 'del', k: key, r });
  }

  override async setIfAbsent(key: string, value: V, options?: SetOptions | number): Promise<boolean> {
    this.ops[OP_ATOMIC]++;
    const p = this.part(key);
    this.stateOf(value, options); // typed errors here, not from the primary
    const r = this.rid();
    return this.router.route(p, () => this.rep.writeOnce(p, this.name, key, r, () => super.setIfAbsent(key, value, options)), { m: this.name, o: 'sia', k: key, v: packPlain(value), t: setTtl(options) ?? this.defaultTtl, r }); // the caller's default ttl, not the primary's
  }

  override async compareAndSet(key: string, expected: V | undefined, next: V): Promise<boolean> {
    this.ops[OP_ATOMIC]++;
    const p = this.part(key);
    this.stateOf(next, 0);
    const r = this.rid();
    return this.router.route(p, () => this.rep.writeOnce(p, this.name, key, r, () => super.compareAndSet(key, expected, next)), { m: this.name, o: 'cas', k: key, e: packPlain(expected), v: packPlain(next), r });
  }

  override async increment(key: string, delta = 1): Promise<number> {
    this.ops[OP_ATOMIC]++;
    const p = this.part(key);
    if (typeof delta !== 'number' || !Number.isFinite(delta)) throw new InvalidArgumentError(`delta must be a finite number (got ${shownArg(delta)})`);
    const r = this.rid();
    return this.router.route(p, () => this.rep.writeOnce(p, this.name, key, r, () => super.increment(key, delta)), { m: this.name, o: 'inc', k: key, d: delta, r });
  }

  override async updateBytes(key: string, kind: string, arg: unknown): Promise<UpdateReply> {
    this.ops[OP_ATOMIC]++;
    const p = this.part(key);
    const r = this.rid();
    return this.router.route(p, () => this.rep.writeOnce(p, this.name, key, r, () => super.updateBytes(key, kind, arg)), { m: this.name, o: 'upd', k: key, u: kind, a: arg, r });
  }

  override async keysIn(p: number): Promise<string[]> {
    this.host.assertOpen(this.internal);
    const list = await this.router.route(p, () => this.scanLocal(p), { m: this.name, o: 'scan', p });
    const now = Date.now();
    const keys: string[] = [];
    for (const [k, s] of list) {
      const st = checkState(s, Infinity);
      if (typeof k === 'string' && st !== null && (st[2] === 0 || st[2] > now)) keys.push(k);
    }
    return keys;
  }

  override async clear(): Promise<void> {
    this.host.assertOpen(this.internal);
    await this.router.overPartitions(
      (ps) => this.clearLocal(ps),
      (to, ps) => this.router.request<void>(to, { m: this.name, o: 'clear', ps }),
    );
  }

  /** Clears this map in partitions `ps` on this primary and its copies (Replicas.clearMap). */
  private async clearLocal(ps: readonly number[]): Promise<void> {
    for (const p of ps) this.rep.assertPrimary(p);
    await Promise.all(ps.map((p) => this.rep.clearMap(p, this.name)));
  }

  // Compute and aggregate send names only ({ module, name } of a registered module): the member
  // that runs the code resolves them through its own registry (src/compute/REGISTRY.md).

  override async compute<R = unknown>(key: string, processor: ComputeRef, arg?: unknown): Promise<R> {
    this.ops[OP_ATOMIC]++;
    const p = this.part(key);
    const f = refNames(processor, 'processor');
    const r = this.rid();
    const a = packArg(arg, `entry processor '${f.name.slice(0, 80)}'`);
    // this caller's limit bounds the processor wherever it runs (`t`)
    const t = this.grid.processorTimeoutMs;
    // the result as the wire carries it on either path, so that a retry answered from the
    // request's record (recorded here or on another member) reads the same
    const run = () => this.rep.writeOnce(p, this.name, key, r, () => this.computeOffThread(key, f, a, t));
    return this.router.route(p, run, { m: this.name, o: 'cmp', k: key, f, a, r, t }, t + AGG_REPLY_MARGIN_MS).then((b) => unpackPlain(b, 'compute result') as R);
  }

  /**
   * An entry processor on this primary, on the compute pool: never on this main thread, which
   * must go on serving heartbeats, Raft, replication and other keys while user code runs. Stopped
   * after `timeoutMs` (GRID_ERR_TIMEOUT, the entry unchanged; not retried elsewhere: it is the
   * processor's fault, not this member's). The module name is checked here first, so an unknown
   * one fails before a pool thread is used. Argument and result: msgpack bytes (plain.ts).
   * `timeoutMs` 0 (the caller's opt-out, compute.processorTimeoutMs 0): on this thread, unbounded.
   */
  private async computeOffThread(key: string, processor: ComputeRef, arg: Uint8Array | undefined, timeoutMs: number): Promise<Uint8Array | undefined> {
    if (timeoutMs === 0) return packPlain(await this.computeLocal(key, processor, unpackPlain(arg, 'argument'), 0));
    resolveRef(processor, 'processor', this.grid.modules);
    const { reply, tid } = await this.grid.computePool().runProcessor({ map: this.name, key, processor: { module: processor.module, name: processor.name }, arg }, timeoutMs);
    // in this run, then writeOnce's: the write, its request record and its replication, with no
    // other task of this thread between them (a snapshot of the partition taken between the write
    // and the record would carry the write without the record: a retry on the next primary would
    // apply it twice)
    return this.applyComputed(key, reply, tid);
  }

  override async aggregate<R = unknown>(aggregator: AggregatorRef, arg?: unknown): Promise<R> {
    this.host.assertOpen(this.internal);
    // resolved here first: an unknown or malformed aggregator fails before anything is sent, and
    // the caller combines the partials with its own copy of the module
    const agg = await resolveAggregator(aggregator, this.grid.modules);
    agg.validate(arg);
    const f = typeof aggregator === 'string' ? aggregator : refNames(aggregator, 'aggregator');
    const a = packArg(arg, `aggregator '${(typeof f === 'string' ? f : f.name).slice(0, 80)}'`);
    // every member's share is bounded by this caller's compute.timeoutMs (`t`): the member stops
    // its tasks then and answers GRID_ERR_TIMEOUT; the request itself waits a little longer for
    // that answer (the transport's default, 5 s, failed any share that took longer)
    const t = this.grid.computeTimeoutMs;
    const packed = await this.router.overPartitions(
      (ps) => this.aggregateLocal(f, arg, ps, t).then(packPlain),
      (to, ps) => this.node.transport.request(to, 'grid.op', { m: this.name, o: 'agg', f, a, ps, t }, t + AGG_REPLY_MARGIN_MS) as Promise<Uint8Array | undefined>,
    );
    const partials = packed.map((b) => unpackPlain(b, 'aggregation partial'));
    return (await combineAndFinish(this.grid, f, partials, arg)) as R;
  }

  /** The partial of `aggregator` over partitions `ps`, primary here from start to end (onPrimaries), within `timeoutMs`. */
  private aggregateLocal(aggregator: AggregatorRef, arg: unknown, ps: number[], timeoutMs: number): Promise<unknown> {
    return this.onPrimaries(ps, () => aggregatePartitions(this.grid, this.name, ps, aggregator, arg, timeoutMs));
  }

  /**
   * A module error of a compute or aggregation this member ran for another member: it names this
   * member (in the message and `data.member`). The module is looked up in the registry of the
   * member that runs it, so the caller's own grid may well have it ("not registered in this grid"
   * alone sent the reader to the wrong member's options).
   */
  private servedHere(e: unknown): unknown {
    if (!(e instanceof ModuleLoadError)) return e;
    const me = this.node.memberId;
    const Cls = e instanceof UnknownModuleError ? UnknownModuleError : ModuleLoadError;
    return new Cls(`on member ${me}: ${e.message}`, { ...(e.data ?? {}), member: me });
  }

  /** The partitions a whole-map grid.op names (peer data). */
  private partsOf(b: Body): number[] {
    const ps = b.ps;
    const n = this.store.partitions;
    if (!Array.isArray(ps) || ps.length > n || !ps.every((p) => Number.isInteger(p) && (p as number) >= 0 && (p as number) < n)) throw new ProtocolError(`grid.op ${String(b.o)}: bad partition list`);
    return ps as number[];
  }

  // ── the primary's side of grid.op ─────────────────────────────────────────────────────────────

  /** Runs an operation another member routed here. Throws PartitionMovedError when not primary. */
  serve(b: Body): unknown {
    const o = b.o;
    switch (o) {
      case 'size':
      case 'expiring':
        return this.countLocal(o, this.partsOf(b));
      case 'clear':
        return this.clearLocal(this.partsOf(b));
      case 'agg':
        if (!Number.isInteger(b.t) || (b.t as number) < 1 || (b.t as number) > MAX_COMPUTE_TIMEOUT_MS) throw new ProtocolError('grid.op agg: bad time limit');
        return this.aggregateLocal(b.f as AggregatorRef, unpackPlain(b.a, 'argument'), this.partsOf(b), b.t as number).then(packPlain, (e: unknown) => {
          throw this.servedHere(e);
        });
      case 'scan': {
        const p = b.p;
        if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.store.partitions) throw new ProtocolError('grid.op scan: bad partition');
        return this.scanLocal(p as number);
      }
      case 'mget': {
        const ks = b.ks;
        if (!Array.isArray(ks)) throw new ProtocolError('grid.op mget: keys must be an array');
        const keys = ks.map((k) => str(k, 'key'));
        for (const k of keys) this.rep.assertPrimary(this.part(k));
        return Promise.all(keys.map((k) => this.localState(k)));
      }
      case 'mset': {
        const { ks, ss } = b;
        if (!Array.isArray(ks) || !Array.isArray(ss) || ks.length !== ss.length) throw new ProtocolError('grid.op mset: keys and states must be arrays of one length');
        const max = this.store.maxValueBytes;
        return this.putMany(ks.map((k) => str(k, 'key')), ss.map((s) => checkState(s, max)));
      }
    }
    const key = str(b.k, 'key');
    const p = this.part(key);
    this.rep.assertPrimary(p);
    if (b.r !== undefined && !isRequestId(b.r)) throw new ProtocolError('grid.op: bad request id');
    const rid = b.r as string | undefined;
    switch (o) {
      case 'get':
        return this.localState(key);
      case 'has':
        return this.hasLocal(key);
      case 'ttl':
        return this.ttlLocal(key).then((t) => t ?? null);
      case 'set':
        return this.putState(p, key, checkState(b.s, this.store.maxValueBytes), rid);
      case 'del':
        return this.rep.writeOnce(p, this.name, key, rid, () => super.delete(key));
      case 'sia': {
        const ttl = b.t === undefined || b.t === null ? undefined : (b.t as number);
        return this.rep.writeOnce(p, this.name, key, rid, () => super.setIfAbsent(key, unpackPlain(b.v, 'value') as V, { ttl }));
      }
      case 'cas':
        // b.e undefined = "expected absent"; null is a value (msgpack keeps the two apart)
        return this.rep.writeOnce(p, this.name, key, rid, () => super.compareAndSet(key, unpackPlain(b.e, 'expected value') as V | undefined, unpackPlain(b.v, 'value') as V));
      case 'inc':
        return this.rep.writeOnce(p, this.name, key, rid, () => super.increment(key, b.d as number));
      case 'upd':
        return this.rep.writeOnce(p, this.name, key, rid, () => super.updateBytes(key, str(b.u, 'update'), b.a));
      case 'cmp': {
        const f = refNames(b.f, 'processor');
        if (b.a !== undefined && !(b.a instanceof Uint8Array)) throw new ProtocolError('grid.op: the argument must be msgpack bytes');
        // the caller's limit; a caller that sends none gets this member's
        if (b.t !== undefined && (!Number.isInteger(b.t) || (b.t as number) < 0 || (b.t as number) > MAX_COMPUTE_TIMEOUT_MS)) throw new ProtocolError('grid.op cmp: bad time limit');
        const t = (b.t as number | undefined) ?? this.grid.processorTimeoutMs;
        return this.rep.writeOnce(p, this.name, key, rid, () => this.computeOffThread(key, f, b.a as Uint8Array | undefined, t)).catch((e: unknown) => {
          throw this.servedHere(e);
        });
      }
      default:
        throw new ProtocolError(`grid.op: unknown operation ${String(o).slice(0, 20)}`);
    }
  }
}
