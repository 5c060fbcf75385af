/**
 * Other threads of a cluster member: their map calls.
 *
 * A member's shared memory holds primaries and backup copies alike, and a write must go through
 * routing and replication, which live on the member's main thread (ClusterNode). So an attached
 * thread of a member (attachGrid(handle) in a Worker, a piscina task) gets a ForwardedMap:
 *
 * - reads of a key whose partition this process is primary for (`get`, `getSync`, `has`, `ttl`,
 *   `getMany` when every key is) read shared memory directly, exactly as on the main thread; the
 *   member mirrors "primary here" per partition into the partition header (P_PRIMARY_HERE) each
 *   time it applies a partition table;
 * - everything else is forwarded to the main thread and runs there as the same call on the
 *   member's RoutedMap (so it is routed, replicated and retried like any call made there).
 *
 * Channel: the handle names a BroadcastChannel the member listens on for hellos. Each attached
 * grid opens its own BroadcastChannel under a fresh name, announces it with a hello and waits for
 * the member's welcome on it; requests and replies then travel on that private channel (two
 * instances: the attached thread's and the member's). BroadcastChannel because a handle is
 * structured-cloned to any number of threads, so it cannot carry a MessagePort.
 *
 * Values: arguments are structured-cloned (what cannot be cloned fails on the caller with
 * GRID_ERR_UNENCODABLE_VALUE). Results that are objects (object and byte values, getMany
 * arrays, entries pages, compute and aggregate results) travel as msgpack bytes encoded with the
 * value codec, so the caller gets what a local get would decode (a Buffer for byte values).
 * Errors travel as { code, message, data } and are rebuilt as the same GridError class.
 */
import { BroadcastChannel, threadId } from 'node:worker_threads';
import { randomUUID } from 'node:crypto';
import { refNames } from '../compute/modules.js';
import type { AggregatorRef, ComputeRef } from '../compute/types.js';
import type { SetOptions } from '../config.js';
import {
  GridClosedError,
  InvalidArgumentError,
  MemberUnreachableError,
  PartitionUnavailableError,
  ProtocolError,
  UnencodableValueError,
  UnsupportedError,
  errorFromWire,
  errorToWire,
  type WireError,
} from '../errors.js';
import { GridMap, NEED, type MapHost } from '../map.js';
import type { CpLink } from '../cp/cluster.js';
import { cpToWire, parseCpCommand } from '../cluster/metadata/cp-state.js';
import { decodeMsgpack, encodeMsgpack } from '../storage/codec.js';
import { ChurnMap } from '../churn.js';

/** How long an attached thread waits for the member's welcome. */
const CONNECT_TIMEOUT_MS = 5_000;
/** Longest a getSync of a local primary waits for the partition's replicated writes to settle. */
const GETSYNC_SETTLE_MS = 200;
/** Entries per page of a forwarded entries() iteration. */
const PAGE_ENTRIES = 256;

/** Operations an attached thread may forward: the public map methods and size()'s internal sibling expiring(), nothing else. */
const OPS = new Set(['get', 'has', 'ttl', 'getMany', 'size', 'expiring', 'set', 'setMany', 'delete', 'setIfAbsent', 'compareAndSet', 'increment', 'clear', 'compute', 'aggregate']);

interface Request {
  i: number;
  /** map name, operation, arguments (the map's options are registered in shared memory, which both threads read) */
  m?: string;
  o: string;
  a?: unknown[];
  /** iterator id (o: 'iter' | 'next' | 'end') */
  it?: number;
  /** a call of the attached thread's CP client on the member's CP link (o: 'open' | 'exec' | 'read' | 'hb'; cp/cluster.ts) */
  cp?: true;
}

type Reply = { i: number; v?: unknown; p?: Uint8Array; e?: WireError; done?: boolean };

/** What the member's main thread offers the forwarder: the maps it routes, and its CP link (grid.cp of attached threads). */
export interface ForwardHost {
  map(name: string): GridMap<unknown>;
  cpLink(): CpLink;
}

/** A result as it crosses: primitives as they are, objects as msgpack bytes. */
function toReply(i: number, v: unknown): Reply {
  if (v === null || typeof v !== 'object') return { i, v };
  try {
    return { i, p: encodeMsgpack(v) };
  } catch (err) {
    throw new UnencodableValueError(`the result cannot be sent to the calling thread: ${(err as Error).message}`);
  }
}

function fromReply(r: Reply): unknown {
  if (r.e !== undefined) throw errorFromWire(r.e);
  if (r.p === undefined) return r.v;
  // The clone arrives as a Uint8Array; msgpackr hands out byte values of the source's kind, and
  // a local get returns Buffers.
  return decodeMsgpack(Buffer.from(r.p.buffer, r.p.byteOffset, r.p.byteLength));
}

export function forwardChannelName(): string {
  return `shardgrid.forward:${process.pid}:${randomUUID()}`;
}

// ── the member's side ─────────────────────────────────────────────────────────────────────────

interface Session {
  bc: BroadcastChannel;
  tid: number;
  iters: Map<number, AsyncGenerator<[string, unknown]>>;
}

export class ForwardServer {
  private readonly hello: BroadcastChannel;
  private readonly sessions = new Map<string, Session>();
  private closed = false;

  constructor(
    private readonly host: ForwardHost,
    name: string,
  ) {
    this.hello = new BroadcastChannel(name);
    this.hello.unref();
    this.hello.onmessage = (ev) => this.onHello((ev as MessageEvent).data);
  }

  /** Sessions currently open (one per attached grid of another thread). */
  get size(): number {
    return this.sessions.size;
  }

  private onHello(msg: unknown): void {
    const { c, tid } = (msg ?? {}) as { c?: unknown; tid?: unknown };
    if (this.closed || typeof c !== 'string' || !c.startsWith('shardgrid.forward:') || this.sessions.has(c) || typeof tid !== 'number') return;
    const bc = new BroadcastChannel(c);
    bc.unref();
    const s: Session = { bc, tid, iters: new Map() };
    this.sessions.set(c, s);
    bc.onmessage = (ev) => void this.onRequest(c, s, (ev as MessageEvent).data as Request);
    bc.postMessage({ welcome: true });
  }

  private async onRequest(name: string, s: Session, req: Request): Promise<void> {
    if (req === null || typeof req !== 'object') return;
    if ((req as { bye?: unknown }).bye === true) return this.end(name);
    const i = req.i;
    if (typeof i !== 'number') return;
    let reply: Reply;
    try {
      reply = await this.run(s, req);
    } catch (err) {
      reply = { i, e: errorToWire(err) };
    }
    if (this.sessions.get(name) !== s) return;
    try {
      s.bc.postMessage(reply);
    } catch (err) {
      s.bc.postMessage({ i, e: errorToWire(err) });
    }
  }

  private async run(s: Session, req: Request): Promise<Reply> {
    const { i, o } = req;
    if (req.cp === true) return toReply(i, await this.cp(o, Array.isArray(req.a) ? req.a : []));
    if (o === 'next' || o === 'end') {
      const it = s.iters.get(req.it as number);
      if (it === undefined) throw new ProtocolError('forward: unknown iterator');
      if (o === 'end') {
        s.iters.delete(req.it as number);
        await it.return(undefined);
        return { i, v: true };
      }
      return this.page(s, req.it as number, it, i);
    }
    if (typeof req.m !== 'string') throw new ProtocolError('forward: map name must be a string');
    const map = this.host.map(req.m);
    if (o === 'iter') {
      const id = req.it as number;
      if (typeof id !== 'number' || s.iters.has(id)) throw new ProtocolError('forward: bad iterator id');
      const it = map.entries();
      s.iters.set(id, it);
      return this.page(s, id, it, i);
    }
    if (typeof o !== 'string' || !OPS.has(o)) throw new ProtocolError(`forward: unknown operation ${String(o).slice(0, 20)}`);
    const a = Array.isArray(req.a) ? req.a : [];
    const fn = (map as unknown as Record<string, (...args: unknown[]) => unknown>)[o];
    return toReply(i, await fn.apply(map, a.slice(0, 3)));
  }

  /**
   * An attached thread's CP client call, run on the member's own CP link: the thread has a session
   * of its own (opened, heartbeated and used by it through here), so what it holds is its own.
   */
  private async cp(o: string, a: unknown[]): Promise<unknown> {
    const link = this.host.cpLink();
    switch (o) {
      case 'open':
        if (typeof a[0] !== 'string' || typeof a[1] !== 'number') throw new ProtocolError('forward: cp open needs (key, ttl)');
        return link.open(a[0], a[1]);
      case 'exec': {
        // the command in its wire form, checked as a peer's would be: a malformed one would make
        // the leader's packing throw for every command of its entry (cp-state.ts cpToWire)
        const cmd = parseCpCommand(a[0]);
        if (cmd === undefined || cmd.o === 'open' || cmd.o === 'expire' || cmd.o === 'leaseEnd' || typeof a[1] !== 'number') throw new ProtocolError('forward: cp exec needs (session command, waitMs)');
        return link.exec(cmd, a[1]);
      }
      case 'read':
        if (typeof a[0] !== 'string' || typeof a[1] !== 'string' || typeof a[2] !== 'number' || typeof a[3] !== 'number') throw new ProtocolError('forward: cp read needs (kind, name, permits, session)');
        return link.read(a[0] as Parameters<CpLink['read']>[0], a[1], a[2], a[3]);
      case 'hb':
        if (typeof a[0] !== 'number') throw new ProtocolError('forward: cp hb needs a session id');
        link.heartbeat(a[0]);
        return true;
      default:
        throw new ProtocolError(`forward: unknown cp call ${String(o).slice(0, 20)}`);
    }
  }

  /** Up to PAGE_ENTRIES entries of an iteration; the iterator is dropped when it is done. */
  private async page(s: Session, id: number, it: AsyncGenerator<[string, unknown]>, i: number): Promise<Reply> {
    const out: Array<[string, unknown]> = [];
    let done = false;
    try {
      while (out.length < PAGE_ENTRIES) {
        const r = await it.next();
        if (r.done === true) {
          done = true;
          break;
        }
        out.push(r.value);
      }
    } catch (err) {
      s.iters.delete(id);
      throw err;
    }
    if (done) s.iters.delete(id);
    return { i, p: encodeMsgpack(out), done };
  }

  private end(name: string): void {
    const s = this.sessions.get(name);
    if (s === undefined) return;
    this.sessions.delete(name);
    for (const it of s.iters.values()) void it.return(undefined).catch(() => undefined);
    s.bc.close();
  }

  /** A thread of this process exited: drop its sessions (it cannot say goodbye any more). */
  threadExited(tid: number): void {
    for (const [name, s] of this.sessions) if (s.tid === tid) this.end(name);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.hello.close();
    for (const [name, s] of this.sessions) {
      s.bc.postMessage({ closed: true });
      this.end(name);
    }
  }
}

// ── the attached thread's side ────────────────────────────────────────────────────────────────

/** The CP link of a thread attached to a member: every call runs on the member's own link (ForwardServer.cp). */
export class ForwardCpLink implements CpLink {
  constructor(private readonly client: ForwardClient) {}
  private async call<T>(o: string, a: unknown[]): Promise<T> {
    return fromReply(await this.client.request({ cp: true, o, a })) as T;
  }
  open(key: string, ttl: number): Promise<number> {
    return this.call('open', [key, ttl]);
  }
  exec(cmd: Parameters<CpLink['exec']>[0], waitMs: number): ReturnType<CpLink['exec']> {
    return this.call('exec', [cpToWire(cmd), waitMs]);
  }
  read(kind: Parameters<CpLink['read']>[0], name: string, permits: number, session: number): Promise<unknown> {
    return this.call('read', [kind, name, permits, session]);
  }
  heartbeat(id: number): void {
    this.call('hb', [id]).catch(() => undefined); // a missed heartbeat is what the TTL is for
  }
}

interface Pending {
  resolve(r: Reply): void;
  reject(e: unknown): void;
}

export class ForwardClient {
  private readonly name = forwardChannelName();
  private readonly bc: BroadcastChannel;
  private connected: Promise<void> | undefined;
  private welcome: (() => void) | undefined;
  private readonly pending = new ChurnMap<number, Pending>();
  private nextId = 1;
  private closed = false;

  constructor(private readonly helloName: string) {
    this.bc = new BroadcastChannel(this.name);
    this.bc.unref();
    this.bc.onmessage = (ev) => this.onMessage((ev as MessageEvent).data);
  }

  private onMessage(msg: unknown): void {
    if (msg === null || typeof msg !== 'object') return;
    const m = msg as Reply & { welcome?: boolean; closed?: boolean };
    if (m.welcome === true) return this.welcome?.();
    if (m.closed === true) return this.shut(new GridClosedError('the member this grid belongs to closed'));
    const p = this.pending.get(m.i);
    if (p === undefined) return;
    this.pending.delete(m.i);
    if (this.pending.size === 0) this.bc.unref();
    p.resolve(m);
  }

  private connect(): Promise<void> {
    return (this.connected ??= new Promise<void>((resolve, reject) => {
      const t = setTimeout(() => {
        this.welcome = undefined;
        this.connected = undefined;
        this.onShut = undefined;
        reject(new MemberUnreachableError(`the member's main thread did not answer within ${CONNECT_TIMEOUT_MS} ms (is the grid closed?)`));
      }, CONNECT_TIMEOUT_MS);
      this.welcome = () => {
        clearTimeout(t);
        this.welcome = undefined;
        this.onShut = undefined;
        resolve();
      };
      this.onShut = (err) => {
        clearTimeout(t);
        this.welcome = undefined;
        reject(err);
      };
      const hello = new BroadcastChannel(this.helloName);
      hello.postMessage({ c: this.name, tid: threadId });
      hello.close();
    }));
  }

  /** Sends one request and waits for its reply. */
  async request(body: Omit<Request, 'i'>): Promise<Reply> {
    if (this.closed) throw new GridClosedError('the grid is closed');
    await this.connect();
    if (this.closed) throw new GridClosedError('the grid is closed');
    const i = this.nextId++;
    const reply = new Promise<Reply>((resolve, reject) => this.pending.set(i, { resolve, reject }));
    try {
      this.bc.postMessage({ ...body, i });
    } catch (err) {
      this.pending.delete(i);
      throw new UnencodableValueError(`an argument cannot be sent to the member's main thread: ${(err as Error).message}`);
    }
    if (this.pending.size === 1) this.bc.ref();
    return reply;
  }

  async call(body: Omit<Request, 'i'>): Promise<unknown> {
    return fromReply(await this.request(body));
  }

  /** Fails a connect still waiting for its welcome (set by connect). */
  private onShut: ((err: Error) => void) | undefined;

  private shut(err: Error): void {
    this.closed = true;
    // A hello still waiting for its welcome held a ref'd 5 s timer: after close() the thread
    // would linger that long before it could exit.
    this.onShut?.(err);
    this.onShut = undefined;
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
    this.bc.close();
  }

  close(): void {
    if (this.closed) return;
    if (this.connected !== undefined) this.bc.postMessage({ bye: true });
    this.shut(new GridClosedError('the grid is closed'));
  }
}

/** The map API of an attached thread of a cluster member (see the file comment). */
export class ForwardedMap<V = unknown> extends GridMap<V> {
  private readonly client: ForwardClient;
  private nextIter = 1;

  /** @internal use grid.map(name) */
  constructor(host: MapHost, client: ForwardClient, name: string, id: number) {
    super(host, name, id);
    this.client = client;
  }

  /** Runs operation `o` on the member's main thread (GRID_ERR_CLOSED at once when this grid is closed). */
  private async call<T>(o: string, a: unknown[]): Promise<T> {
    this.host.assertOpen(this.internal);
    return this.client.call({ m: this.name, o, a }) as Promise<T>;
  }

  /**
   * Validates the key (typed errors here) and returns its partition when this thread may read it
   * from shared memory, else -1: its primary must be this process, under a lease that runs now
   * (checked on this thread's clock: after a pause it may run before the main thread), with no
   * write of the partition being replicated (cluster/unsettled.ts: the main thread serves such keys the state their
   * copies hold). A direct read is trusted only if `still(p)` holds after it: the main thread
   * counts a write before applying it, so a read that saw a write's bytes sees it counted.
   */
  private local(key: string): number {
    this.host.assertOpen(this.internal);
    const p = this.key(key);
    return this.still(p) ? p : -1;
  }

  private still(p: number): boolean {
    const st = this.store;
    return st.primaryHere(p) && st.unsettledIn(p) === 0 && st.leaseLive();
  }

  override getSync(key: string): V | undefined {
    this.host.assertOpen(this.internal);
    const st = this.store;
    const p = this.key(key);
    const deadline = performance.now() + GETSYNC_SETTLE_MS;
    while (st.primaryHere(p)) {
      // after a pause of the process this thread may run before the main thread noticed the lease ended
      if (!st.leaseLive()) throw new PartitionUnavailableError(`getSync: this member holds no lease for the partition of key '${key}' now; use get()`, { partition: p });
      // a write of the partition is being replicated: wait for it (the main thread serves get() meanwhile)
      if (st.unsettledIn(p) !== 0 && !st.waitSettled(p, deadline - performance.now())) {
        throw new PartitionUnavailableError(`getSync: writes of the partition of key '${key}' did not settle within ${GETSYNC_SETTLE_MS} ms; use get()`, { partition: p });
      }
      const v = super.getSync(key);
      if (this.still(p)) return v;
    }
    throw new UnsupportedError(`getSync: the primary of key '${key}' is not this process; use get()`);
  }

  override get(key: string): Promise<V | undefined> {
    try {
      const p = this.local(key);
      if (p >= 0) {
        const v = this.getLocal(key);
        if (v !== NEED && this.still(p)) return Promise.resolve(v);
      }
    } catch (err) {
      return Promise.reject(err);
    }
    return this.call('get', [key]);
  }

  override async has(key: string): Promise<boolean> {
    return this.direct([key], () => super.has(key), 'has', [key]);
  }

  override async ttl(key: string): Promise<number | undefined> {
    return this.direct([key], () => super.ttl(key), 'ttl', [key]);
  }

  override async getMany(keys: readonly string[]): Promise<Array<V | undefined>> {
    if (!Array.isArray(keys)) throw new InvalidArgumentError('keys must be an array of strings');
    return this.direct(keys, () => super.getMany(keys), 'getMany', [keys]);
  }

  /** `read` from shared memory when every key may be read here and still may after it (local, still), else operation `o` on the member's main thread. */
  private async direct<T>(keys: readonly string[], read: () => Promise<T>, o: string, a: unknown[]): Promise<T> {
    const ps = keys.map((k) => this.local(k));
    if (ps.every((p) => p >= 0)) {
      const r = await read();
      if (ps.every((p) => this.still(p))) return r;
    }
    return this.call(o, a);
  }

  override async size(): Promise<number> {
    return this.call('size', []);
  }

  override async expiring(): Promise<number> {
    return this.call('expiring', []);
  }

  override async set(key: string, value: V, options?: SetOptions | number): Promise<void> {
    await this.call('set', options === undefined ? [key, value] : [key, value, options]);
  }

  override async setMany(entries: ReadonlyArray<readonly [string, V]>, options?: SetOptions | number): Promise<void> {
    await this.call('setMany', options === undefined ? [entries] : [entries, options]);
  }

  override async delete(key: string): Promise<boolean> {
    return this.call('delete', [key]);
  }

  override async setIfAbsent(key: string, value: V, options?: SetOptions | number): Promise<boolean> {
    return this.call('setIfAbsent', options === undefined ? [key, value] : [key, value, options]);
  }

  override async compareAndSet(key: string, expected: V | undefined, next: V): Promise<boolean> {
    return this.call('compareAndSet', [key, expected, next]);
  }

  override async increment(key: string, delta = 1): Promise<number> {
    return this.call('increment', [key, delta]);
  }

  override async clear(): Promise<void> {
    await this.call('clear', []);
  }

  // names only cross to the member's main thread, which resolves them through its registry
  override async compute<R = unknown>(key: string, processor: ComputeRef, arg?: unknown): Promise<R> {
    return this.call('compute', [key, refNames(processor, 'processor'), arg]);
  }

  override async aggregate<R = unknown>(aggregator: AggregatorRef, arg?: unknown): Promise<R> {
    return this.call('aggregate', [typeof aggregator === 'string' ? aggregator : refNames(aggregator, 'aggregator'), arg]);
  }

  override async *entries(): AsyncGenerator<[string, V]> {
    this.host.assertOpen(this.internal);
    const it = this.nextIter++;
    let r = await this.client.request({ m: this.name, o: 'iter', it });
    let done = false;
    try {
      for (;;) {
        const page = fromReply(r) as Array<[string, V]>;
        done = r.done === true;
        for (const e of page) yield e;
        if (done) return;
        this.host.assertOpen(this.internal);
        r = await this.client.request({ o: 'next', it });
      }
    } finally {
      // stopped early (break, return, a throw): let the member drop its iterator
      if (!done) void this.client.request({ o: 'end', it }).catch(() => undefined);
    }
  }
}
