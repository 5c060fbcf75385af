/**
 * The CP subsystem's side of the metadata driver (native-notes.md, "CP subsystem on Raft").
 *
 * - Submitting: a data member proposes a CP command through the Raft leader (itself, or a
 *   `cp.propose` notification to the leader) and learns its result when it applies the entry:
 *   every member applies every entry, so no reply travels back. A result is keyed by the command's
 *   (session, sequence); until it arrives the command is sent again every RESEND_MS with the same
 *   key (a leader change, a lost notification), and the state machine's dedupe makes that exactly
 *   once. A command that waits (lock, acquire) is answered "queued" and later granted by another
 *   entry, keyed the same way.
 * - Reads: ReadIndex through the Raft core (a follower's goes to the leader), then the local
 *   state once this member applied the answered index: linearizable.
 * - Lite members (no log) send `cp.req` (a command), `cp.read` and `cp.hb` to a data member,
 *   which submits for them; a lite member may act only for sessions it opened (host = its id).
 * - Leader duties, each tick: a session whose last heartbeat (the leader's memory, never the log)
 *   is older than its TTL by the leader's clock is expired by an entry; a lock hold whose lease
 *   passed is ended by an entry. A new leader starts every session's and lease's clock afresh at
 *   its election (it cannot know when its predecessor last heard from them): expiry only ever
 *   comes later than it would have, which costs liveness, never safety (fencing tokens do that).
 */
import { InvalidArgumentError, NotLeaderError, ProtocolError, TimeoutError } from '../../errors.js';
import type { LogFn, Transport } from '../../transport/transport.js';
import { now } from './lease.js';
import { CP_LIMITS, cpCommandBytes, cpToWire, isCpName, markFromWire, parseCpCommand, type CpApplied, type CpCommand, type CpResult } from './cp-state.js';
import type { MetaState } from './state.js';

/** A command not answered within this long is sent again (same session and sequence). */
export const RESEND_MS = 1000;
/** A read whose ReadIndex answer did not come within this long is asked again. */
const READ_RETRY_MS = 1000;
/** A lite member's request waits this long for a grant before answering "still queued". */
const LITE_WAIT_MS = 2000;
/** Session ids in one heartbeat. */
const MAX_HB_IDS = 1024;

export interface CpDriverHost {
  readonly memberId: string;
  readonly lite: boolean;
  readonly transport: Transport;
  readonly state: MetaState;
  readonly log: LogFn;
  isLeader(): boolean;
  leaderId(): string | undefined;
  /**
   * Proposes on this (leader) node, with the other CP commands of this task in one entry: 0, or
   * -1 when it does not lead. `via`: the data member that submitted it for its own or a lite
   * member's client (it learns the result when it applies the entry, so it must hear of the commit
   * at once); undefined for this member's own submissions. `wire`: the command as it was received
   * (`cpToWire(cmd)` to the element; the strict parser took nothing else), packed as it is.
   */
  propose(cmd: CpCommand, via?: string, wire?: unknown[]): number;
  /** Asks the Raft core for a read index; false when it cannot now (no leader known, too many reads). */
  readIndex(rid: string): boolean;
  flush(): void;
}

type Listener = (r: CpResult) => boolean;

/**
 * A submitted command: sent again every RESEND_MS until its first result (`answered`), kept until
 * `on` says it needs nothing more (a queued wait: its grant). `on` gets the record back, so a lite
 * batch shares one function for all its commands (`i`: the command's place in the batch).
 */
interface Sub {
  readonly cmd: CpCommand & { s: number; q: number };
  /** the command as it came off the wire (`cp.req`, `cp.propose`): packed into the entry as it is */
  readonly wire: unknown[] | undefined;
  readonly on: (r: CpResult, sub: Sub) => boolean;
  readonly i: number;
  at: number;
  answered: boolean;
}

/**
 * A table keyed by (session, sequence): a Map of sequences per session (session ids are stamps,
 * far beyond what one number could pack with a sequence), so no `${s}:${q}` string is built and
 * hashed per command. Exported for its unit test.
 */
export class BySession<V> {
  private readonly m = new Map<number, Map<number, V>>();
  size = 0;

  get(s: number, q: number): V | undefined {
    return this.m.get(s)?.get(q);
  }

  has(s: number, q: number): boolean {
    return this.m.get(s)?.has(q) === true;
  }

  set(s: number, q: number, v: V): void {
    let inner = this.m.get(s);
    if (inner === undefined) this.m.set(s, (inner = new Map()));
    const n = inner.size;
    inner.set(q, v);
    this.size += inner.size - n;
  }

  delete(s: number, q: number): void {
    const inner = this.m.get(s);
    if (inner === undefined || !inner.delete(q)) return;
    this.size--;
    if (inner.size === 0) this.m.delete(s);
  }

  *values(): IterableIterator<V> {
    for (const inner of this.m.values()) yield* inner.values();
  }

  clear(): void {
    this.m.clear();
    this.size = 0;
  }
}

/** Resend sweeps per RESEND_MS. */
const RESEND_TICKS = 4;

export class CpDriver {
  private readonly host: CpDriverHost;
  /** (s, q) → submitted commands waiting for results and grants */
  private readonly subs = new BySession<Sub>();
  private readonly openers = new Map<string, (id: number) => void>();
  private readonly endedHandlers = new Set<(id: number) => void>();
  private readonly reads = new Map<string, (index: number) => void>();
  private readonly readsApplied: Array<{ index: number; done: () => void }> = [];
  private nextRead = 0;
  private closed = false;
  private resendTimer: NodeJS.Timeout | undefined;
  private readonly resendBound = () => this.resend();
  // leader-only memory
  private readonly lastSeen = new Map<number, number>();
  private readonly expiring = new Set<number>();
  private readonly leaseEnds = new Map<string, { n: string; t: number; at: number }>();
  private readonly ending = new Set<string>();

  constructor(host: CpDriverHost) {
    this.host = host;
  }

  start(): void {
    const t = this.host.transport;
    t.handle('cp.propose', (b, from) => this.onPropose(b, from));
    t.handle('cp.hb', (b, from) => this.onHeartbeat(b, from));
    t.handle('cp.req', (b, from) => this.onLiteRequest(b, from));
    t.handle('cp.read', (b, from) => this.onLiteRead(b, from));
  }

  /** Closed with its Metadata (this member closes, or was removed and rejoins under a new one). */
  get isClosed(): boolean {
    return this.closed;
  }

  close(): void {
    this.closed = true;
    clearInterval(this.resendTimer);
    this.resendTimer = undefined;
    this.subs.clear();
    this.openers.clear();
    this.reads.clear();
    this.readsApplied.length = 0;
  }

  // ── from the metadata driver ──────────────────────────────────────────────────────────────────

  /** An applied CP command (one of an entry's): results, grants, sessions opened and ended; the leader times leases. */
  applied(a: CpApplied): void {
    if (a.opened !== undefined) {
      this.openers.get(a.opened.key)?.(a.opened.id);
      this.openers.delete(a.opened.key);
      if (a.opened.id > 0 && this.host.isLeader() && !this.lastSeen.has(a.opened.id)) this.lastSeen.set(a.opened.id, now());
    }
    if (a.result !== undefined) {
      const s = a.result.s;
      this.deliver(s, a.result.q, a.result.r);
      // a command of a session counts as a heartbeat (lastSeen is kept on the leader only)
      if (this.lastSeen.has(s) && this.host.isLeader()) this.lastSeen.set(s, now());
    }
    if (a.grants !== undefined) for (const g of a.grants) this.deliver(g.s, g.q, g.result);
    if (a.leased !== undefined && this.host.isLeader()) for (const l of a.leased) this.leaseEnds.set(`${l.n}\u0000${l.t}`, { n: l.n, t: l.t, at: now() + l.l });
    if (a.ended !== undefined) {
      for (const id of a.ended) {
        this.lastSeen.delete(id);
        this.expiring.delete(id);
        for (const h of this.endedHandlers) h(id);
      }
    }
  }

  /** Reads the Raft core confirmed: serve each once this member applied its index. */
  readStates(states: ReadonlyArray<{ rid: string; index: number }>): void {
    for (const rs of states) {
      const done = this.reads.get(rs.rid);
      if (done === undefined) continue;
      this.reads.delete(rs.rid);
      done(rs.index);
    }
  }

  /** Entries applied up to `index`: reads waiting for it are served. */
  appliedTo(index: number): void {
    if (this.readsApplied.length === 0) return;
    for (let i = this.readsApplied.length - 1; i >= 0; i--) {
      const r = this.readsApplied[i];
      if (r.index > index) continue;
      this.readsApplied.splice(i, 1);
      r.done();
    }
  }

  /** A new leader: every session and leased hold gets a full TTL or lease from now. */
  becameLeader(): void {
    const t = now();
    this.lastSeen.clear();
    this.expiring.clear();
    this.leaseEnds.clear();
    this.ending.clear();
    for (const s of this.host.state.cp.sessionList()) this.lastSeen.set(s.id, t);
    for (const h of this.host.state.cp.leasedHolds()) this.leaseEnds.set(`${h.n}\u0000${h.t}`, { n: h.n, t: h.t, at: t + h.l });
  }

  /** Leader, each tick: expire sessions that missed their TTL, end holds whose lease passed. */
  leaderTick(): void {
    const t = now();
    const cp = this.host.state.cp;
    for (const s of cp.sessionList()) {
      if (this.expiring.has(s.id)) continue;
      const seen = this.lastSeen.get(s.id);
      if (seen === undefined) {
        this.lastSeen.set(s.id, t);
        continue;
      }
      if (t - seen > s.ttl && this.host.propose({ c: 'cp', o: 'expire', s: s.id }) >= 0) {
        this.expiring.add(s.id);
        this.host.log('info', `CP session ${s.id} (host ${s.host}) missed its ${s.ttl} ms TTL: expiring it`);
      }
    }
    for (const [k, l] of this.leaseEnds) {
      if (l.at > t || this.ending.has(k)) continue;
      const st = cp.lockState(l.n);
      if (st.token !== l.t || st.holder === 0) {
        this.leaseEnds.delete(k);
        continue;
      }
      if (this.host.propose({ c: 'cp', o: 'leaseEnd', n: l.n, t: l.t }) >= 0) {
        this.ending.add(k);
        this.leaseEnds.delete(k);
      }
    }
    if (this.ending.size > 4096) this.ending.clear();
  }

  // ── for this member's clients (src/cp/cluster.ts) ─────────────────────────────────────────────

  onSessionEnded(h: (id: number) => void): () => void {
    this.endedHandlers.add(h);
    return () => this.endedHandlers.delete(h);
  }

  /** Opens a session (or finds the one a retried open with the same key made): its id. */
  open(key: string, host: string, ttlMs: number, deadlineMs: number): Promise<number> {
    const cmd: CpCommand = { c: 'cp', o: 'open', k: key, h: host, t: ttlMs };
    return new Promise((resolve, reject) => {
      const end = Date.now() + deadlineMs;
      let timer: NodeJS.Timeout | undefined;
      let done = false;
      const send = () => {
        if (done) return;
        if (this.closed) return reject(new TimeoutError('closed while opening a CP session'));
        if (Date.now() > end) {
          this.openers.delete(key);
          return reject(new TimeoutError(`no CP session within ${deadlineMs} ms (no metadata leader?)`));
        }
        this.send(cmd);
        // the entry is proposed now and flushed at the end of this task (host.flush batches): the
        // opener callback clears this timer when it applies
        if (!done) timer = setTimeout(send, RESEND_MS);
      };
      this.openers.set(key, (id) => {
        done = true;
        clearTimeout(timer);
        if (id === 0) reject(new InvalidArgumentError(`the cluster has ${CP_LIMITS.maxSessions} CP sessions open already`));
        else resolve(id);
      });
      send();
    });
  }

  /**
   * Submits a session command and calls `on` with each result for its (s, q): the first result,
   * then (for a queued wait) its grant. `on` returns true when it needs nothing more. The command
   * is sent again every RESEND_MS until a first result comes. Returns a function that stops it.
   */
  submit(cmd: CpCommand & { s: number; q: number }, on: Listener, wire?: unknown[]): () => void {
    const sub = this.track(cmd, wire, on, -1, Date.now());
    return () => this.untrack(sub);
  }

  /** Records a submit (replacing one of the same (s, q)), sends it and starts the resend sweep. */
  private track(cmd: CpCommand & { s: number; q: number }, wire: unknown[] | undefined, on: (r: CpResult, sub: Sub) => boolean, i: number, at: number): Sub {
    const sub: Sub = { cmd, wire, on, i, at, answered: false };
    this.subs.set(cmd.s, cmd.q, sub);
    this.send(cmd, wire);
    this.resendTimer ??= setInterval(this.resendBound, RESEND_MS / RESEND_TICKS);
    return sub;
  }

  /** Forgets a submit (if it is still the one recorded for its (s, q)). */
  private untrack(sub: Sub): void {
    if (this.subs.get(sub.cmd.s, sub.cmd.q) === sub) this.subs.delete(sub.cmd.s, sub.cmd.q);
  }

  /**
   * One timer for every unanswered submit: each is sent again once RESEND_MS passed since it was
   * last sent (so 1 to 1 + 1/RESEND_TICKS RESEND_MS after); the timer stops when none is left.
   */
  private resend(): void {
    const t = Date.now();
    let unanswered = false;
    if (!this.closed) {
      for (const sub of this.subs.values()) {
        if (sub.answered) continue;
        unanswered = true;
        if (t - sub.at < RESEND_MS) continue;
        sub.at = t;
        this.send(sub.cmd, sub.wire);
      }
    }
    if (!unanswered) {
      clearInterval(this.resendTimer);
      this.resendTimer = undefined;
    }
  }

  /** Linearizable read barrier: resolves once this member applied an index that ReadIndex confirmed. */
  async barrier(deadlineMs: number): Promise<void> {
    const end = Date.now() + deadlineMs;
    for (;;) {
      if (this.closed) throw new TimeoutError('closed while reading');
      const rid = `${this.host.memberId}.r${++this.nextRead}`;
      const index = await new Promise<number | undefined>((resolve) => {
        const t = setTimeout(() => {
          this.reads.delete(rid);
          resolve(undefined);
        }, READ_RETRY_MS);
        this.reads.set(rid, (i) => {
          clearTimeout(t);
          resolve(i);
        });
        if (!this.host.readIndex(rid)) {
          clearTimeout(t);
          this.reads.delete(rid);
          setTimeout(() => resolve(undefined), 50);
        }
        this.host.flush();
      });
      if (index !== undefined) {
        if (this.host.state.index >= index) return;
        await new Promise<void>((resolve) => this.readsApplied.push({ index, done: resolve }));
        return;
      }
      if (Date.now() > end) throw new TimeoutError(`no linearizable read within ${deadlineMs} ms (no metadata leader?)`);
    }
  }

  /** Heartbeats for sessions hosted here (or relayed for lite members): to the leader. */
  heartbeat(ids: number[]): void {
    if (ids.length === 0) return;
    const leader = this.host.leaderId();
    if (leader === undefined) return;
    if (leader === this.host.memberId) this.seen(ids);
    else if (this.host.transport.isConnected(leader)) this.host.transport.notify(leader, 'cp.hb', { s: ids });
  }

  private deliver(s: number, q: number, r: CpResult): void {
    const sub = this.subs.get(s, q);
    if (sub === undefined) return;
    sub.answered = true;
    if (sub.on(r, sub)) this.untrack(sub);
  }

  /** To the leader: proposed here when this member leads, else as `cp.propose`. */
  private send(cmd: CpCommand, wire?: unknown[]): void {
    const leader = this.host.leaderId();
    if (leader === undefined) return;
    if (leader === this.host.memberId) {
      if (this.host.propose(cmd, undefined, wire) >= 0) this.host.flush();
      return;
    }
    const t = this.host.transport;
    if (t.isConnected(leader)) t.notify(leader, 'cp.propose', wire ?? cpToWire(cmd));
  }

  private seen(ids: readonly number[]): void {
    if (!this.host.isLeader()) return;
    const t = now();
    for (const id of ids) if (this.host.state.cp.hasSession(id)) this.lastSeen.set(id, t);
  }

  // ── transport handlers ────────────────────────────────────────────────────────────────────────

  /** Leader: a data member of the log forwards a CP command (its own or a lite member's). */
  private onPropose(b: unknown, from: string): void {
    if (this.host.lite || !this.host.state.members.has(from)) return;
    const cmd = parseCpCommand(b);
    // leader-only commands (expire, leaseEnd) never come from the wire
    if (cmd === undefined || cmd.o === 'expire' || cmd.o === 'leaseEnd') throw new ProtocolError('malformed CP command');
    if (!this.host.isLeader()) return; // the sender resends to the leader it learns of
    markFromWire(cmd);
    if (this.host.propose(cmd, from, b as unknown[]) >= 0) this.host.flush();
  }

  private onHeartbeat(b: unknown, from: string): void {
    const ids = (b as { s?: unknown } | null)?.s;
    if (!Array.isArray(ids) || ids.length > MAX_HB_IDS || !ids.every((x) => Number.isSafeInteger(x) && x > 0)) throw new ProtocolError('malformed CP heartbeat');
    if (this.host.lite) return;
    if (this.host.isLeader()) {
      // a data member of the log speaks for its own and its lite members' sessions; anyone else only for the sessions it hosts
      if (this.host.state.members.has(from)) this.seen(ids);
      else this.seen(ids.filter((id) => this.hostOf(id) === from));
      return;
    }
    // a lite member's heartbeat: relay the sessions it hosts
    this.heartbeat(ids.filter((id) => this.hostOf(id) === from));
  }

  private hostOf(id: number): string | undefined {
    return this.host.state.cp.sessionHost(id);
  }

  /**
   * A lite member's command: submitted for it, answered with the result — or, for a wait not
   * granted within LITE_WAIT_MS, "queued" (it asks again with the same sequence number, which the
   * state machine answers with the grant once there is one).
   */
  private onLiteRequest(b: unknown, from: string): Promise<CpResult | CpResult[]> {
    if (this.host.lite) throw new NotLeaderError('a lite member serves no CP requests');
    const o = b as { cmd?: unknown; w?: unknown; b?: unknown } | null;
    if (o !== null && typeof o === 'object' && o.b !== undefined) return this.onLiteBatch(o.b, from);
    const cmd = parseCpCommand(o?.cmd);
    // how long the asker lets a wait last before it wants "still queued" back (tryLock timeouts)
    const waitMs = Number.isSafeInteger(o?.w) && (o?.w as number) >= 1 && (o?.w as number) <= LITE_WAIT_MS ? (o?.w as number) : LITE_WAIT_MS;
    if (cmd === undefined || cmd.o === 'expire' || cmd.o === 'leaseEnd') throw new ProtocolError('malformed CP request');
    markFromWire(cmd);
    if (cmd.o === 'open') {
      if (cmd.h !== from) throw new ProtocolError('a CP session is opened by its own host');
      return this.open(cmd.k, cmd.h, cmd.t, LITE_WAIT_MS * 2).then((id) => ['v', id] as CpResult);
    }
    const h = this.hostOf(cmd.s);
    if (h !== undefined && h !== from) throw new ProtocolError(`CP session ${cmd.s} is not ${from}'s`);
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined;
      // unanswered (no leader): let the lite member ask again; cleared on the answer, so a busy
      // member does not keep one 4 s timer per request it already answered
      const guard = setTimeout(() => {
        if (timer === undefined) {
          stop();
          resolve(['q']); // no answer yet (no leader?): the lite member asks again, same sequence
        }
      }, LITE_WAIT_MS * 2);
      guard.unref();
      const stop = this.submit(cmd, (r) => {
        if (r[0] === 'q') {
          clearTimeout(guard);
          timer ??= setTimeout(() => {
            stop();
            resolve(r);
          }, waitMs);
          return false;
        }
        clearTimeout(guard);
        clearTimeout(timer);
        resolve(r);
        return true;
      }, o!.cmd as unknown[]);
    });
  }

  /**
   * A lite member's batch, `cp.req {b: [command, ...]}` (the CP commands of one of its tasks):
   * each submitted for it, answered together with each command's *first* result — a wait that
   * queued is answered ['q'] at once, and the lite member asks again for it alone (the single
   * form, which waits for the grant). Checked whole before anything is submitted: at most
   * CP_LIMITS.maxBatch commands (before looking at one), each parsed strictly, no `open`,
   * `expire` or `leaseEnd`, no (session, sequence) twice, every session known here hosted by the
   * asker, and at most CP_LIMITS.maxBatchBytes of names and values (`cpCommandBytes`). (The
   * message itself was bounded by the transport's maxPayload before it was decoded, as every message.)
   */
  private onLiteBatch(list: unknown, from: string): Promise<CpResult[]> {
    if (!Array.isArray(list) || list.length === 0 || list.length > CP_LIMITS.maxBatch) throw new ProtocolError('malformed CP batch request');
    const cmds = new Array<CpCommand & { s: number; q: number }>(list.length);
    const keys = new BySession<true>();
    let bytes = 0;
    for (let i = 0; i < list.length; i++) {
      const cmd = parseCpCommand(list[i]);
      if (cmd === undefined || cmd.o === 'open' || cmd.o === 'expire' || cmd.o === 'leaseEnd') throw new ProtocolError('malformed CP batch request');
      const h = this.hostOf(cmd.s);
      if (h !== undefined && h !== from) throw new ProtocolError(`CP session ${cmd.s} is not ${from}'s`);
      if (keys.has(cmd.s, cmd.q)) throw new ProtocolError('a CP batch request names one command twice');
      keys.set(cmd.s, cmd.q, true);
      bytes += cpCommandBytes(cmd);
      if (bytes > CP_LIMITS.maxBatchBytes) throw new ProtocolError('CP batch request over its byte bound');
      cmds[i] = cmd;
    }
    for (const cmd of cmds) markFromWire(cmd);
    return new Promise((resolve) => {
      const out = new Array<CpResult | undefined>(cmds.length);
      const subs = new Array<Sub>(cmds.length);
      let left = cmds.length;
      const finish = () => {
        clearTimeout(guard);
        for (let i = 0; i < out.length; i++) if (out[i] === undefined) out[i] = ['q'];
        resolve(out as CpResult[]);
      };
      // no answer for some (no leader?): answer what there is, the lite member asks again for the rest
      const guard = setTimeout(() => {
        for (const sub of subs) this.untrack(sub);
        finish();
      }, LITE_WAIT_MS * 2);
      guard.unref();
      // one function for the batch: each command's first result, in its place
      const on = (r: CpResult, sub: Sub): boolean => {
        if (out[sub.i] === undefined) {
          out[sub.i] = r;
          if (--left === 0) finish();
        }
        return true;
      };
      const at = Date.now();
      for (let i = 0; i < cmds.length; i++) subs[i] = this.track(cmds[i], list[i] as unknown[], on, i, at);
    });
  }

  /** A lite member's read: `{ k: kind, n: name, p: permits, s: session }`, linearizable. */
  private async onLiteRead(b: unknown, from: string): Promise<unknown> {
    void from;
    if (this.host.lite) throw new NotLeaderError('a lite member serves no CP reads');
    const o = b as { k?: unknown; n?: unknown; p?: unknown; s?: unknown } | null;
    if (o === null || typeof o !== 'object' || !isCpName(o.n) || !['lock', 'long', 'ref', 'sem'].includes(o.k as string) || !Number.isSafeInteger(o.p) || (o.p as number) < -1 || !Number.isSafeInteger(o.s) || (o.s as number) < 0) {
      throw new ProtocolError('malformed CP read');
    }
    if (!UNSAFE_CP_LOCAL_READS) await this.barrier(LITE_WAIT_MS * 2);
    return readState(this.host.state, o.k as ReadKind, o.n as string, o.p as number, o.s as number);
  }
}

export type ReadKind = 'lock' | 'long' | 'ref' | 'sem';

/**
 * Test-only negative control (the fault harness's `--unsafe-cp-reads`): a data member answers CP
 * reads — its own and lite members' — from its applied state without the ReadIndex barrier, stale
 * on a lagging or isolated member; the linearizability checker must catch it.
 */
export const UNSAFE_CP_LOCAL_READS = process.env.SHARDGRID_UNSAFE_CP_LOCAL_READS === '1';

/** What a read of `name` returns (after the barrier), or a CP_KIND error as a result. */
export function readState(state: MetaState, kind: ReadKind, name: string, permits: number, session: number): CpResult | { b: Uint8Array | null; ver: number } | { v: number; held: number } {
  const cp = state.cp;
  const k = cp.kindOf(name);
  if (k !== undefined && k !== kind) return ['e', 'GRID_ERR_CP_KIND', `'${name}' is a ${k}, not a ${kind}`];
  switch (kind) {
    case 'lock': return ['v', cp.lockState(name).holder !== 0];
    case 'long': return ['v', cp.longValue(name)];
    case 'ref': return cp.refValue(name);
    case 'sem': return { v: cp.semAvailable(name, permits), held: cp.semHeld(name, session) };
  }
}
