/**
 * grid.cp in a clustered grid: the same classes' API (FencedLock, AtomicLong, AtomicRef,
 * Semaphore) served by the CP state machine on the metadata Raft log (cluster/metadata/cp-state.ts;
 * native-notes.md, "CP subsystem on Raft").
 *
 * - One CP session per member, opened on first use and kept alive by heartbeats every quarter of
 *   options.cp.sessionTtlMs. Locks and permits are held by the session: by the member (as
 *   in-process they are held by a thread). A session that expires releases them; this member then
 *   opens a new one.
 * - Every mutation is a command with (session, sequence); retries reuse both, so nothing applies
 *   twice. A data member submits through its metadata driver; a lite member asks a data member
 *   (`cp.req`), which submits for it.
 * - Reads (get, isLocked, availablePermits) go through ReadIndex: linearizable.
 * - The `*Sync` forms need shared memory and throw GRID_ERR_UNSUPPORTED here.
 */
import { randomBytes } from 'node:crypto';
import {
  CpRangeError, CpSessionError, GridClosedError, InvalidArgumentError, LockNotHeldError, LockTimeoutError, MemberUnreachableError, ProtocolError, TimeoutError,
  UnsupportedError, errorFromWire,
} from '../errors.js';
import type { ClusterNode } from '../cluster/node.js';
import { CP_LIMITS, cpCommandBytes, cpToWire, isCpResult, noSuchSemaphore, type CpCommand, type CpResult } from '../cluster/metadata/cp-state.js';
import { UNSAFE_CP_LOCAL_READS, readState, type ReadKind } from '../cluster/metadata/cp-driver.js';
import { decodeMsgpack } from '../storage/codec.js';
import { encodeRefValue } from './encode.js';
import { LOCK_KEYS, TRY_LOCK_KEYS, leaseMsOf, timeoutMsOf } from './options.js';
import type { AcquireOptions, LockOptions, TryLockOptions, Versioned } from './primitives.js';

/** How long one attempt of a data member waits for its result before submitting again (same sequence). */
const ATTEMPT_MS = 10_000;
/** Give up on an operation (no leader, no data member) after this long: GRID_ERR_TIMEOUT. */
const OP_DEADLINE_MS = 30_000;
const LITE_REQUEST_MS = 6000;
/** A lite member asks the data member it uses who leads the metadata group at most this often. */
const LEADER_ASK_MS = 2000;
/** Names and values (UTF-8 and msgpack bytes, upper bounds) in one batched `cp.req`: below CP_LIMITS.maxBatchBytes. */
export const LITE_BATCH_BYTES = 512 * 1024;
/** After a data member refused a batched `cp.req` (GRID_ERR_PROTOCOL: a command failed its checks), commands go alone this long. */
const BATCH_OFF_MS = 30_000;
/** A batch answer without an answer for this command (no leader in time, or malformed): asked again. */
const NO_ANSWER: CpResult = ['q'];
/** What an operation of a closed CP session (grid.cp.session()) throws, in a cluster and in one process. */
export function sessionClosed(): CpSessionError {
  return new CpSessionError('this CP session is closed: its locks and permits were released');
}

/** The answer of an attempt cut short by ClusterCp.close. */
const ENDED: CpResult = ['q'];

type Body = Record<string, unknown> & { o: string };

/**
 * How a CP client reaches the CP state machine: a data member through its own log, a lite member
 * through a data member, a thread attached to a member through that member's main thread
 * (runtime/forward.ts, ForwardCpLink), which runs the call on its own link.
 */
export interface CpLink {
  open(key: string, ttl: number): Promise<number>;
  /** One attempt: the result, or ['q'] (queued and not granted yet, or no answer in time). */
  exec(cmd: CpCommand & { s: number; q: number }, waitMs: number): Promise<CpResult>;
  read(kind: ReadKind, name: string, permits: number, session: number): Promise<unknown>;
  heartbeat(id: number): void;
}

class DataLink implements CpLink {
  constructor(private readonly node: ClusterNode) {}
  /**
   * A member that is removed and rejoins (a long pause, an overload) gets a new Metadata and
   * driver: an open or a read cut short by the old one's close is asked again of the new one.
   * (Commands need nothing of the kind: an attempt that gets no answer is resubmitted anyway.)
   */
  private async again<T>(f: () => Promise<T>): Promise<T> {
    const end = Date.now() + OP_DEADLINE_MS;
    for (;;) {
      const meta = this.node.meta;
      try {
        return await f();
      } catch (e) {
        if (this.node.closed || !meta.cp.isClosed || Date.now() > end) throw e;
        // the rejoin makes a new Metadata once its transport listens again
        while (this.node.meta === meta && !this.node.closed && Date.now() <= end) await new Promise((r) => setTimeout(r, 200));
      }
    }
  }
  open(key: string, ttl: number): Promise<number> {
    return this.again(() => this.node.meta.cp.open(key, this.node.memberId, ttl, OP_DEADLINE_MS));
  }
  exec(cmd: CpCommand & { s: number; q: number }, waitMs: number): Promise<CpResult> {
    return new Promise((resolve) => {
      const t = setTimeout(() => {
        stop();
        resolve(['q']);
      }, waitMs);
      // the transport's sockets keep a member alive while it runs; after close() cut a wait, this
      // bound (up to ATTEMPT_MS) kept the process alive for its rest
      t.unref();
      const stop = this.node.meta.cp.submit(cmd, (r) => {
        if (r[0] === 'q') return false; // keep listening for the grant
        clearTimeout(t);
        resolve(r);
        return true;
      });
    });
  }
  async read(kind: ReadKind, name: string, permits: number, session: number): Promise<unknown> {
    return this.again(async () => {
      if (!UNSAFE_CP_LOCAL_READS) await this.node.meta.cp.barrier(OP_DEADLINE_MS);
      return readState(this.node.meta.state, kind, name, permits, session);
    });
  }
  heartbeat(id: number): void {
    this.node.meta.cp.heartbeat([id]);
  }
}

/** @internal exported for tests */
export class LiteLink implements CpLink {
  private via: string | undefined;
  private leaderAskedAt = 0;
  /** Commands of this task, sent together by sendQueued. */
  private queued: Array<{ cmd: CpCommand & { s: number; q: number }; waitMs: number; resolve: (r: CpResult) => void; reject: (e: unknown) => void }> = [];
  /** Date.now() until which commands go alone (a data member refused a batch). */
  private batchOffUntil = 0;
  constructor(private readonly node: ClusterNode) {}
  private async request<T>(type: string, body: unknown): Promise<T> {
    const tried = new Set<string>();
    for (;;) {
      const id = this.pick(tried);
      if (id === undefined) throw new MemberUnreachableError('no data member reachable for CP requests');
      tried.add(id);
      try {
        await this.node.ensureLink(id);
        const r = await this.node.transport.request<T>(id, type, body, LITE_REQUEST_MS);
        // only when none is chosen: a request still in flight to the member used before
        // findLeader moved to the leader must not move back (at c=64 one always was, and the lite
        // member stayed on a relaying member for good in 2 of 3 bench runs)
        if (this.via === undefined) this.via = id;
        this.findLeader(this.via);
        return r;
      } catch (e) {
        if (this.via === id) this.via = undefined;
        if (!(e instanceof MemberUnreachableError) && (e as { code?: string }).code !== 'GRID_ERR_TIMEOUT' && (e as { code?: string }).code !== 'GRID_ERR_MEMBER_LEFT') throw e;
      }
    }
  }
  /**
   * Every LEADER_ASK_MS at most: asks the data member in use (`via`) who leads the metadata group,
   * and uses the leader from then on. Any data member serves a lite member's commands, but one that
   * does not lead relays each to the leader and learns its result from the next commit notice: two
   * hops more per command. Only a routing preference: a leader that is gone fails the next
   * request, which picks another member, and dedupe makes a command asked again of another member
   * apply once.
   */
  private findLeader(via: string): void {
    const t = Date.now();
    if (t - this.leaderAskedAt < LEADER_ASK_MS) return;
    this.leaderAskedAt = t;
    this.node.transport.request<{ leader?: unknown } | null>(via, 'meta.leader?', null, LEADER_ASK_MS).then((r) => {
      const l = r?.leader;
      if (typeof l !== 'string' || l === this.via || !this.node.membership.members().some((m) => m.id === l && !m.lite && m.status === 'alive')) return;
      return this.node.ensureLink(l).then(() => {
        if (this.via === via) this.via = l;
      });
    }).catch(() => undefined);
  }
  private pick(tried: Set<string>): string | undefined {
    if (this.via !== undefined && !tried.has(this.via)) return this.via;
    const ids = this.node.membership.members().filter((m) => !m.lite && m.status === 'alive' && !tried.has(m.id)).map((m) => m.id);
    return ids.length === 0 ? undefined : ids[Math.floor(Math.random() * ids.length)];
  }
  async open(key: string, ttl: number): Promise<number> {
    const r = await this.request<unknown>('cp.req', { cmd: cpToWire({ c: 'cp', o: 'open', k: key, h: this.node.memberId, t: ttl }) });
    if (!isCpResult(r) || r[0] !== 'v' || typeof r[1] !== 'number') throw new CpSessionError('no CP session could be opened');
    return r[1];
  }
  exec(cmd: CpCommand & { s: number; q: number }, waitMs: number): Promise<CpResult> {
    return new Promise<CpResult>((resolve, reject) => {
      this.queued.push({ cmd, waitMs, resolve, reject });
      if (this.queued.length === 1) process.nextTick(this.sendQueuedBound);
    });
  }
  /** One command as its own `cp.req` (the form every version serves): waits up to waitMs for a grant. */
  private async single(cmd: CpCommand & { s: number; q: number }, waitMs: number): Promise<CpResult> {
    try {
      // checked as a batch's answers are: an error result's message went to errorFromWire's
      // String() as it came (an object with a toString field threw a TypeError at the caller)
      const r = await this.request<unknown>('cp.req', { cmd: cpToWire(cmd), w: Math.max(1, Math.min(2000, Math.ceil(waitMs))) });
      return isCpResult(r) ? r : NO_ANSWER;
    } catch (e) {
      if (e instanceof MemberUnreachableError) return ['q'];
      throw e;
    }
  }
  private readonly sendQueuedBound = () => this.sendQueued();
  /**
   * The commands this task's calls made (process.nextTick: after the microtasks they ran in, so
   * a round of 64 calls resolved by one reply goes out whole): one `cp.req {b: [...]}` per up to
   * CP_LIMITS.maxBatch commands and LITE_BATCH_BYTES of names and values; a lone command, or all
   * of them while batching is off, in the single form.
   */
  private sendQueued(): void {
    const q = this.queued;
    this.queued = [];
    if (q.length === 1 || Date.now() < this.batchOffUntil) {
      for (const x of q) this.single(x.cmd, x.waitMs).then(x.resolve, x.reject);
      return;
    }
    for (let i = 0; i < q.length;) {
      let bytes = 0;
      let j = i;
      while (j < q.length && j - i < CP_LIMITS.maxBatch) {
        const b = cpCommandBytes(q[j].cmd);
        if (j > i && bytes + b > LITE_BATCH_BYTES) break;
        bytes += b;
        j++;
      }
      const part = q.slice(i, j);
      i = j;
      if (part.length === 1) {
        this.single(part[0].cmd, part[0].waitMs).then(part[0].resolve, part[0].reject);
        continue;
      }
      this.request<unknown>('cp.req', { b: part.map((x) => cpToWire(x.cmd)) }).then(
        (rs) => {
          if (!Array.isArray(rs) || rs.length !== part.length) throw new ProtocolError('malformed CP batch answer');
          for (let k = 0; k < part.length; k++) {
            const x = part[k];
            const r = isCpResult(rs[k]) ? rs[k] : NO_ANSWER;
            // a wait the batch answered "queued" at once: ask again alone, which waits up to waitMs
            // for the grant (the state machine's dedupe answers with it if it came meanwhile). Only
            // here: a wait that went alone already waited waitMs (asking it again as well made a
            // lite member's tryLock and acquire wait twice their timeoutMs)
            if (r[0] === 'q' && r !== NO_ANSWER && (x.cmd.o === 'lock' || x.cmd.o === 'acq') && x.cmd.w) this.single(x.cmd, x.waitMs).then(x.resolve, x.reject);
            else x.resolve(r);
          }
        },
      ).catch((e: unknown) => {
        if (e instanceof MemberUnreachableError) {
          for (const x of part) x.resolve(NO_ANSWER);
          return;
        }
        // the data member refused the batch (GRID_ERR_PROTOCOL; before protocol 5 an older
        // version did so for the batch form): send these alone, and no batches for a while
        this.batchOffUntil = Date.now() + BATCH_OFF_MS;
        for (const x of part) this.single(x.cmd, x.waitMs).then(x.resolve, x.reject);
      });
    }
  }
  async read(kind: ReadKind, name: string, permits: number, session: number): Promise<unknown> {
    const r = await this.request<unknown>('cp.read', { k: kind, n: name, p: permits, s: session });
    // taken as it came: ['v', 'x'] made atomicLong.get throw a SyntaxError out of BigInt, ['v', { toString: 'x' }] a TypeError
    if (!isReadAnswer(kind, r)) throw new ProtocolError(`a data member answered a CP read of a ${kind} with something that is not one`);
    return r;
  }
  heartbeat(id: number): void {
    // an idle holder's session lives on these: move to another data member when this one is gone
    const t = this.node.transport;
    if (this.via !== undefined && !t.isConnected(this.via)) this.via = undefined;
    const to = this.via ?? this.pick(new Set());
    if (to === undefined) return;
    this.via = to;
    if (t.isConnected(to)) t.notify(to, 'cp.hb', { s: [id] });
    else this.node.ensureLink(to).then(() => t.notify(to, 'cp.hb', { s: [id] }), () => { if (this.via === to) this.via = undefined; });
  }
}

/** A data member's answer to a lite member's read of a `kind` (readState's forms), or an error result. */
function isReadAnswer(kind: ReadKind, r: unknown): boolean {
  if (Array.isArray(r)) return isCpResult(r) && (r[0] === 'e' || (r[0] === 'v' && (kind === 'lock' ? typeof r[1] === 'boolean' : kind === 'long' && typeof r[1] === 'number')));
  if (typeof r !== 'object' || r === null) return false;
  const o = r as Record<string, unknown>;
  if (kind === 'ref') return (o.b === null || o.b instanceof Uint8Array) && Number.isSafeInteger(o.ver);
  return kind === 'sem' && Number.isSafeInteger(o.v) && Number.isSafeInteger(o.held);
}

function isLink(x: ClusterNode | CpLink): x is CpLink {
  return typeof (x as CpLink).exec === 'function' && typeof (x as CpLink).heartbeat === 'function';
}

/** The value of a result, or its error thrown. */
function value(r: CpResult): number | boolean {
  if (r[0] !== 'v') fail(r);
  return r[1] as number | boolean;
}

/** A granted lock's fencing token, or the result's error thrown. */
function tokenOf(r: CpResult): number {
  if (r[0] !== 'v' || typeof r[1] !== 'number' || r[1] <= 0) fail(r);
  return r[1];
}

/** A result, or a promise of one, through run()'s `map` (when given). */
function mapped<T>(x: Promise<CpResult>, map: ((r: CpResult) => T) | undefined): Promise<CpResult | T>;
function mapped<T>(x: CpResult | Promise<CpResult>, map: ((r: CpResult) => T) | undefined): CpResult | T | Promise<CpResult | T>;
function mapped<T>(x: CpResult | Promise<CpResult>, map: ((r: CpResult) => T) | undefined): CpResult | T | Promise<CpResult | T> {
  if (map === undefined) return x;
  return Array.isArray(x) ? map(x) : x.then(map);
}

/** run() without a deadline or redo. */
const NO_OPTS: { until?: number; mayRedo?: boolean } = Object.freeze({});

/** An atomicLong's value of a result as a bigint, or its error thrown. */
const bigValue = (r: CpResult): bigint => BigInt(value(r) as number);

function fail(r: CpResult): never {
  if (r[0] === 'e') throw errorFromWire({ code: r[1], message: r[2] });
  throw new CpSessionError('unexpected CP result');
}

function leaseOf(o: LockOptions | undefined, keys = LOCK_KEYS): number {
  const v = leaseMsOf(o, keys);
  return v === undefined ? 0 : Math.max(1, Math.ceil(v));
}

function toSafe(v: unknown, what: string): number {
  if (typeof v === 'number' && Number.isSafeInteger(v)) return v;
  if (typeof v === 'bigint' && v >= BigInt(Number.MIN_SAFE_INTEGER) && v <= BigInt(Number.MAX_SAFE_INTEGER)) return Number(v);
  throw new CpRangeError(`${what} must be a safe integer (±${Number.MAX_SAFE_INTEGER}) in a clustered grid (got ${typeof v === 'bigint' ? `${v}n` : String(v)})`);
}

const syncUnsupported = (what: string): never => {
  throw new UnsupportedError(`${what}: the synchronous forms need the in-process CP region; a clustered grid serves grid.cp through the Raft log (use the Promise form)`);
};

/** This member's CP session and command numbering (one per grid). */
export class ClusterCp {
  /** How this client reaches the state machine (the member's own link also serves its attached threads' calls). */
  readonly link: CpLink;
  private readonly key = `cp-${randomBytes(8).toString('hex')}`;
  private keyN = 0;
  private session: Promise<number> | undefined;
  private sessionId = 0;
  private seq = 0;
  private readonly outstanding = new Set<number>();
  /** The lowest sequence number in `outstanding` (seq + 1 when empty): moves up as the oldest are answered. */
  private lowest = 1;
  private hb: NodeJS.Timeout | undefined;
  private closed = false;
  private closing = false;
  /** The waits in flight (lock, acquire): close() ends them at once with ENDED. */
  private readonly cuts = new Set<(r: CpResult) => void>();

  /**
   * One CP client with its own session: a member (`node`), or a thread attached to one (`link`,
   * the member's main thread): each attached thread holds its locks and permits in a session of
   * its own, so they are not the member's, and end when it stops heartbeating (exits or hangs).
   */
  constructor(
    via: ClusterNode | CpLink,
    private readonly ttlMs: number,
    /** What an operation cut short by close() throws: the grid closed, or (a session of grid.cp.session()) the session did. */
    private readonly closedError: () => Error = () => new GridClosedError('grid closed during a CP operation'),
  ) {
    this.link = isLink(via) ? via : via.lite ? new LiteLink(via) : new DataLink(via);
  }

  /** An attempt of a wait, which close() may cut short (the state machine drops the wait of a closed session without an answer). */
  private cuttable(p: Promise<CpResult>): Promise<CpResult> {
    return new Promise<CpResult>((resolve, reject) => {
      this.cuts.add(resolve);
      p.then(
        (r) => {
          this.cuts.delete(resolve);
          resolve(r);
        },
        (e: unknown) => {
          this.cuts.delete(resolve);
          reject(e);
        },
      );
    });
  }

  /** Another client on the same link with a session of its own (grid.cp.session()). */
  fork(): ClusterCp {
    return new ClusterCp(this.link, this.ttlMs, sessionClosed);
  }

  /** The current session id, opening one when there is none. */
  private ensure(): Promise<number> {
    if (this.closed) return Promise.reject(new CpSessionError('this CP client is closed'));
    // closing: the close command runs in the session it ends; nothing may open a new one
    if (this.closing && this.session === undefined) return Promise.reject(new CpSessionError('this CP client is closing'));
    if (this.session === undefined) {
      // a new key per session: a retried open of this one finds it, a later one makes a new session
      const key = `${this.key}.${++this.keyN}`;
      const p = this.link.open(key, this.ttlMs).then((id) => {
        this.sessionId = id;
        clearInterval(this.hb);
        this.hb = setInterval(() => this.link.heartbeat(id), Math.max(100, Math.floor(this.ttlMs / 4)));
        this.hb.unref();
        return id;
      });
      p.catch(() => {
        if (this.session === p) this.session = undefined;
      });
      this.session = p;
    }
    return this.session;
  }

  private expired(id: number): void {
    if (this.sessionId === id) {
      this.session = undefined;
      this.sessionId = 0;
      clearInterval(this.hb);
    }
  }

    /**
   * Runs one command to its final result (a wait: until granted, or `until`, after which it is
   * cancelled and the cancel's answer — the grant if it came first — is the result). Retries use
   * the same (session, sequence). `mayRedo`: the command may be run again under a new session if
   * the session expired (lock and acquire: an expired session released whatever it was granted).
   */
  run(body: Body, opts?: { until?: number; mayRedo?: boolean }): Promise<CpResult>;
  /** `map`: applied to the final result in the same reaction (a promise and a microtask less per call than a `.then` after). */
  run<T>(body: Body, opts: { until?: number; mayRedo?: boolean }, map: (r: CpResult) => T): Promise<T>;
  run<T>(body: Body, opts: { until?: number; mayRedo?: boolean } = {}, map?: (r: CpResult) => T): Promise<T | CpResult> {
    const s = this.sessionId;
    if (s === 0 || this.session === undefined || this.closing || this.closed || opts.until !== undefined) return mapped(this.runLoop(body, opts, 0), map);
    // the common case, without the loop's async frames: a session is open, the command has no
    // deadline, and its first attempt answers (a lite member's batch at c=64 spent a third of its
    // CPU in the frames of run and inSession)
    const q = this.begin();
    const t0 = Date.now();
    const sent = this.link.exec({ c: 'cp', s, q, a: this.lowest, ...body } as CpCommand & { s: number; q: number }, ATTEMPT_MS);
    // a wait (lock, acquire) may last: close() cuts it, as in the loop
    return (body.w === true ? this.cuttable(sent) : sent).then(
      (r) => {
        if (r === ENDED) {
          this.done(q);
          throw this.closedError();
        }
        if (r[0] === 'q') {
          // no answer: go on as the loop does, with the same sequence (inSession ends it)
          const pause = Date.now() - t0 < 50 ? new Promise((res) => setTimeout(res, 100)) : Promise.resolve();
          return mapped(pause.then(() => this.inSession(s, body, undefined, q)).then((r2) => this.settled(s, r2, body, opts, 0)), map);
        }
        this.done(q);
        return mapped(this.settled(s, r, body, opts, 0), map);
      },
      (e: unknown) => {
        this.done(q);
        throw e;
      },
    );
  }

  private async runLoop(body: Body, opts: { until?: number; mayRedo?: boolean }, redo: number): Promise<CpResult> {
    const s = await this.ensure();
    return this.settled(s, await this.inSession(s, body, opts.until), body, opts, redo);
  }

  /** A final result in session s: a session that expired meanwhile runs the command again under a new one when it may (lock, acquire). */
  private settled(s: number, r: CpResult, body: Body, opts: { until?: number; mayRedo?: boolean }, redo: number): CpResult | Promise<CpResult> {
    if (r[0] === 'e' && r[1] === 'GRID_ERR_CP_SESSION') {
      this.expired(s);
      if (opts.mayRedo === true && redo < 3 && !this.closing) return this.runLoop(body, opts, redo + 1); // a fresh session, a fresh sequence
      throw new CpSessionError('the CP session of this member expired during the operation: it may or may not have been applied');
    }
    return r;
  }

  /** A new sequence number, outstanding until done(). */
  private begin(): number {
    const q = ++this.seq;
    if (this.outstanding.size === 0) this.lowest = q;
    this.outstanding.add(q);
    return q;
  }

  private done(q: number): void {
    this.outstanding.delete(q);
    // sequence numbers only grow: the next outstanding one is above (amortized O(1) per command)
    if (q === this.lowest) while (this.lowest <= this.seq && !this.outstanding.has(this.lowest)) this.lowest++;
  }

  /** One command in session s, resubmitted with the same sequence (`given`, else a new one) until it has a final result. */
  private async inSession(s: number, body: Body, until: number | undefined, given?: number): Promise<CpResult> {
    const q = given ?? this.begin();
    const deadline = Date.now() + OP_DEADLINE_MS;
    const waits = body.w === true;
    try {
      for (;;) {
        if (this.closed) throw this.closedError();
        const a = this.lowest;
        const left = until === undefined ? ATTEMPT_MS : Math.max(1, Math.min(ATTEMPT_MS, until - Date.now()));
        const t0 = Date.now();
        const sent = this.link.exec({ c: 'cp', s, q, a, ...body } as CpCommand & { s: number; q: number }, left);
        const r = waits ? await this.cuttable(sent) : await sent;
        if (r === ENDED) throw this.closedError();
        if (r[0] !== 'q') return r;
        // no answer at once (no data member reachable): do not spin
        if (Date.now() - t0 < 50) await new Promise((res) => setTimeout(res, 100));
        if (until !== undefined && Date.now() >= until) {
          // stop waiting: the cancel's answer is the outcome (the grant, if it came first)
          const c = await this.inSession(s, { o: 'cancel', n: body.n as string, t: q }, undefined);
          if (c[0] === 'e') return c;
          return c[1] !== false && c[1] !== 0 ? c : ['v', body.o === 'lock' ? 0 : false];
        }
        // a wait without an end waits; anything else gives up when no leader answers in time
        if (!waits && Date.now() > deadline) throw new TimeoutError(`CP operation ${body.o} got no answer within ${OP_DEADLINE_MS} ms (no metadata leader?); it may or may not have been applied`);
      }
    } finally {
      this.done(q);
    }
  }

  async read(kind: ReadKind, name: string, permits = -1): Promise<unknown> {
    const r = await this.link.read(kind, name, permits, this.sessionId);
    if (Array.isArray(r) && r[0] === 'e') fail(r as CpResult);
    return r;
  }

  async close(): Promise<void> {
    if (this.closed || this.closing) return;
    this.closing = true;
    // a session still being opened is closed too (an operation in flight may be granted in it)
    const s = this.session === undefined ? 0 : await this.session.catch(() => 0);
    clearInterval(this.hb);
    if (s !== 0) {
      // best effort: the TTL ends it anyway
      await Promise.race([this.run({ o: 'close' }).catch(() => undefined), new Promise((r) => setTimeout(r, 2000).unref())]);
    }
    this.closed = true;
    for (const cut of this.cuts) cut(ENDED);
  }
}

// ── the primitives ──────────────────────────────────────────────────────────────────────────────

export class ClusterFencedLock {
  constructor(private readonly cp: ClusterCp, readonly name: string) {}

  // lock and unlock chain their promises (no async frames: a promise and a microtask fewer each)
  lock(options?: LockOptions): Promise<number> {
    let l: number;
    try {
      l = leaseOf(options);
    } catch (e) {
      return Promise.reject(e);
    }
    return this.cp.run({ o: 'lock', n: this.name, l, w: true }, { mayRedo: true }, tokenOf);
  }

  async tryLock(options?: TryLockOptions): Promise<number | undefined> {
    const lease = leaseOf(options, TRY_LOCK_KEYS);
    const timeout = timeoutMsOf(options, 0, TRY_LOCK_KEYS);
    const r = await this.cp.run({ o: 'lock', n: this.name, l: lease, w: timeout > 0 }, { until: Date.now() + timeout, mayRedo: true });
    if (r[0] !== 'v') fail(r);
    return typeof r[1] === 'number' && r[1] > 0 ? r[1] : undefined;
  }

  unlock(): Promise<void> {
    return this.cp.run({ o: 'unlock', n: this.name }).then(
      (r) => {
        if (r[0] !== 'v') fail(r);
      },
      (e: unknown) => {
        if (e instanceof CpSessionError) throw new LockNotHeldError(`lock '${this.name}': this member's CP session expired, and with it the hold`);
        throw e;
      },
    );
  }

  async isLocked(): Promise<boolean> {
    const r = (await this.cp.read('lock', this.name)) as CpResult;
    return r[1] === true;
  }

  lockSync(): number { return syncUnsupported('lockSync'); }
  tryLockSync(): number | undefined { return syncUnsupported('tryLockSync'); }
  unlockSync(): void { syncUnsupported('unlockSync'); }
  isLockedSync(): boolean { return syncUnsupported('isLockedSync'); }
}

export class ClusterAtomicLong {
  constructor(private readonly cp: ClusterCp, readonly name: string) {}

  private num(body: Body): Promise<number | boolean> {
    return this.cp.run(body, NO_OPTS, value);
  }

  async get(): Promise<bigint> {
    const r = (await this.cp.read('long', this.name)) as CpResult;
    return BigInt(r[1] as number);
  }
  async set(value: number | bigint): Promise<void> {
    await this.num({ o: 'lset', n: this.name, v: toSafe(value, 'value') });
  }
  // addAndGet and incrementAndGet chain their promises instead of awaiting them: each async frame
  // and await is a promise and a microtask more per call, on the lite member's share of a round
  addAndGet(delta: number | bigint): Promise<bigint> {
    let d: number;
    try {
      d = toSafe(delta, 'delta');
    } catch (e) {
      return Promise.reject(e);
    }
    return this.cp.run({ o: 'ladd', n: this.name, d }, NO_OPTS, bigValue);
  }
  async getAndAdd(delta: number | bigint): Promise<bigint> {
    const d = toSafe(delta, 'delta');
    return BigInt(((await this.num({ o: 'ladd', n: this.name, d })) as number) - d);
  }
  incrementAndGet(): Promise<bigint> {
    return this.addAndGet(1);
  }
  async compareAndSet(expected: number | bigint, next: number | bigint): Promise<boolean> {
    return (await this.num({ o: 'lcas', n: this.name, e: toSafe(expected, 'expected'), v: toSafe(next, 'next') })) === true;
  }

  getSync(): bigint { return syncUnsupported('getSync'); }
  setSync(): void { syncUnsupported('setSync'); }
  addAndGetSync(): bigint { return syncUnsupported('addAndGetSync'); }
  getAndAddSync(): bigint { return syncUnsupported('getAndAddSync'); }
  incrementAndGetSync(): bigint { return syncUnsupported('incrementAndGetSync'); }
  compareAndSetSync(): boolean { return syncUnsupported('compareAndSetSync'); }
}

export class ClusterAtomicRef<T = unknown> {
  constructor(private readonly cp: ClusterCp, readonly name: string) {}

  /** An expected value too large to be stored cannot be equal: it compares as an impossible value. */
  private encode(v: unknown, bounded = true): Uint8Array | null {
    return encodeRefValue(v, this.name, CP_LIMITS.maxValueBytes, 'the clustered atomicRef limit', bounded, () => new Uint8Array(0));
  }

  async getVersioned(): Promise<Versioned<T>> {
    const r = (await this.cp.read('ref', this.name)) as { b: Uint8Array | null; ver: number };
    return { value: r.b === null ? undefined : (decodeMsgpack(r.b) as T), version: r.ver };
  }
  async get(): Promise<T | undefined> {
    return (await this.getVersioned()).value;
  }
  async set(value: T | undefined): Promise<void> {
    const r = await this.cp.run({ o: 'rset', n: this.name, v: this.encode(value) });
    if (r[0] !== 'v') fail(r);
  }
  async compareAndSet(expected: T | undefined, next: T | undefined): Promise<boolean> {
    const r = await this.cp.run({ o: 'rcas', n: this.name, e: this.encode(expected, false), v: this.encode(next) });
    if (r[0] !== 'v') fail(r);
    return r[1] === true;
  }
  async compareAndSetVersion(version: number, next: T | undefined): Promise<boolean> {
    if (!Number.isSafeInteger(version) || version < 0) throw new InvalidArgumentError(`version must be an integer >= 0 (got ${String(version)})`);
    const r = await this.cp.run({ o: 'rcasv', n: this.name, e: version, v: this.encode(next) });
    if (r[0] !== 'v') fail(r);
    return r[1] === true;
  }

  getSync(): T | undefined { return syncUnsupported('getSync'); }
  getVersionedSync(): Versioned<T> { return syncUnsupported('getVersionedSync'); }
  setSync(): void { syncUnsupported('setSync'); }
  compareAndSetSync(): boolean { return syncUnsupported('compareAndSetSync'); }
  compareAndSetVersionSync(): boolean { return syncUnsupported('compareAndSetVersionSync'); }
}

export class ClusterSemaphore {
  /** `permits` as given to grid.cp.semaphore (-1 when not given: the semaphore must exist). */
  constructor(private readonly cp: ClusterCp, readonly name: string, private readonly given: number) {}

  get permits(): number { return this.given; }

  private count(n: unknown): number {
    if (!Number.isInteger(n) || (n as number) < 1 || (n as number) > 0x7fffffff) throw new InvalidArgumentError(`permits to acquire or release must be an integer from 1 to 2147483647 (got ${String(n)})`);
    if (this.given >= 0 && (n as number) > this.given) throw new InvalidArgumentError(`semaphore '${this.name}' has ${this.given} permits in all: ${String(n)} can never be granted`);
    return n as number;
  }

  async acquire(n = 1, options?: AcquireOptions): Promise<void> {
    const k = this.count(n);
    const timeout = timeoutMsOf(options, Infinity);
    const r = await this.cp.run({ o: 'acq', n: this.name, k, p: this.given, w: true }, { until: timeout === Infinity ? undefined : Date.now() + timeout, mayRedo: true });
    if (r[0] !== 'v') fail(r);
    if (r[1] !== true) throw new LockTimeoutError(`semaphore '${this.name}': ${k} permit(s) not acquired within ${timeout} ms`, { name: this.name });
  }
  async tryAcquire(n = 1, options?: AcquireOptions): Promise<boolean> {
    const k = this.count(n);
    const timeout = timeoutMsOf(options, 0);
    const r = await this.cp.run({ o: 'acq', n: this.name, k, p: this.given, w: timeout > 0 }, { until: Date.now() + timeout, mayRedo: true });
    if (r[0] !== 'v') fail(r);
    return r[1] === true;
  }
  async release(n = 1): Promise<void> {
    const r = await this.cp.run({ o: 'rel', n: this.name, k: this.count(n), p: this.given });
    if (r[0] !== 'v') fail(r);
  }
  async availablePermits(): Promise<number> {
    const r = (await this.cp.read('sem', this.name, this.given)) as { v: number };
    if (r.v < 0) throw new InvalidArgumentError(noSuchSemaphore(this.name), { option: 'permits' });
    return r.v;
  }

  acquireSync(): void { syncUnsupported('acquireSync'); }
  tryAcquireSync(): boolean { return syncUnsupported('tryAcquireSync'); }
  releaseSync(): void { syncUnsupported('releaseSync'); }
  availablePermitsSync(): number { return syncUnsupported('availablePermitsSync'); }
  heldPermitsSync(): number { return syncUnsupported('heldPermitsSync'); }
}
