/**
 * Cluster membership and failure detection: SWIM (Das, Gupta, Motivala 2002) over the Transport.
 *
 * - Probing: every probeInterval the next member of a shuffled round-robin list is pinged
 *   ('swim.ping'); without an ack within probeTimeout, k other members are asked to ping it
 *   ('swim.ping-req') and relay the ack; with no ack at all it becomes suspect.
 * - Suspicion: a suspect not refuted within suspicionTimeout is declared dead. A member that hears
 *   it is suspected raises its incarnation and spreads 'alive' (also sent at once to every member
 *   it is connected to, so a member that was only slow clears itself within one round trip).
 * - Dissemination: updates ride on ping / ack / ping-req bodies, at most MAX_PIGGYBACK per
 *   message, each sent about LAMBDA * log2(n + 1) times, fewest-sent first.
 * - Precedence (same member): dead/left > everything; suspect@i beats alive@j iff i >= j; alive@i
 *   beats suspect@j or alive@j iff i > j; suspect@i beats suspect@j iff i > j. Dead and left are
 *   final: the id is never accepted back (a restarted process uses a new id).
 *
 * Timer callbacks that decide something (suspicion expiry; request timeouts inside the Transport)
 * act one setImmediate later, so after a blocked event loop the messages already waiting in the
 * socket (the ack, the refutation) are read first and win.
 */
import { EventEmitter } from 'node:events';
import {
  AuthenticationError,
  GridClosedError,
  GridError,
  InvalidArgumentError,
  InvalidOptionError,
  MemberUnreachableError,
} from '../errors.js';
import type { Transport } from '../transport/transport.js';
import { isMemberUrl } from '../config.js';
import { isMemberId } from './metadata/state.js';

/**
 * A member's status in SWIM failure detection: `'suspect'` after it missed its probes, `'dead'`
 * when it did not refute the suspicion in time, `'left'` after it closed. Dead and left are final:
 * a restarted process joins under a new id.
 */
export type MemberStatus = 'alive' | 'suspect' | 'dead' | 'left';

/** A cluster member, as the `member-joined` and `member-left` events of a grid give it. */
export interface MemberInfo {
  /** The member's id (a restarted or rejoined member has a new one). */
  id: string;
  /** The address other members dial to reach it. */
  url: string;
  /** When it started, ms since the epoch (its own clock). */
  startedAt: number;
  /** True for a lite member (it owns no partitions). */
  lite: boolean;
  /** SWIM incarnation: raised by the member each time it refutes a suspicion. */
  incarnation: number;
  /** Its status when the event was emitted. */
  status: MemberStatus;
  /** Extra data the member announced about itself, if any. */
  meta?: Record<string, unknown>;
}

export interface MembershipOptions {
  /** Urls of members to join through; empty: start alone. */
  seeds: string[];
  /** ms between two probes. Default 200. */
  probeInterval?: number;
  /** ms to wait for a direct ack (and for each indirect one). Default 150. */
  probeTimeout?: number;
  /** Members asked to ping a target that missed its direct ack (k). Default 3. */
  indirectProbes?: number;
  /** ms a suspect has to refute before it is declared dead. Default 1200. */
  suspicionTimeout?: number;
  /** ms start() keeps trying the seeds. Default 5000. */
  joinTimeout?: number;
  /**
   * Whether member `from` may introduce *other* members it gossips about (default: anyone). A
   * member always introduces itself. The cluster passes "is a data member of the metadata log",
   * so a peer that merely holds the secret cannot fill the table with strangers (issue 11, F9).
   */
  vouches?: (from: string) => boolean;
  /**
   * Options every member of one cluster must share: a joiner sends its own, and a seed refuses a
   * joiner whose partition count differs (its keys would hash to other partitions), or a data
   * joiner whose backup count differs from a data seed's, with GRID_ERR_INVALID_OPTION naming
   * both values. Omitted (tests of SWIM alone): nothing is sent or checked.
   */
  settings?: { partitions: number; backups: number };
  /**
   * Whether a member this one holds dead should still be probed now and then (default: never).
   * The cluster passes "is still a data member of the metadata log": SWIM's verdicts are only
   * suspicions, and after an isolation both sides can hold each other dead while the log keeps
   * them both; without a probe nobody ever speaks again to refute it (nemesis seed 5000
   * schedules 18 and 28). The probe carries the target's tombstone, so it refutes it, and the
   * ack carries ours if it holds us dead.
   */
  recheck?: (m: MemberInfo) => boolean;
}

/** Members and tombstones remembered at most; gossip about more new ones is dropped. */
export const MAX_TABLE = 512;

export interface SelfInfo {
  id: string;
  url: string;
  startedAt: number;
  lite: boolean;
  meta?: Record<string, unknown>;
}

export const MEMBERSHIP_DEFAULTS = Object.freeze({
  probeInterval: 200,
  probeTimeout: 150,
  indirectProbes: 3,
  suspicionTimeout: 1200,
  joinTimeout: 5000,
});

/** Updates piggybacked on one message. */
const MAX_PIGGYBACK = 8;
/** Each update is sent about LAMBDA * log2(n + 1) times. */
const LAMBDA = 3;
/** One member held dead (and passing `recheck`) is probed every this many ticks. */
const RECHECK_EVERY = 5;
/** Pause between two rounds of join attempts while no seed answers. */
const JOIN_RETRY_MS = 100;
/** leave() waits this long at most for the others to acknowledge. */
const LEAVE_BOUND_MS = 500;
/**
 * Dead and left ids are forgotten after this long. Ids are never reused (a restart takes a new
 * id), so a tombstone only has to outlive the gossip about the old member, which is retired after
 * LAMBDA * log2(n + 1) sends, seconds at most; 10 minutes is ample and keeps the table bounded.
 */
const TOMBSTONE_TTL_MS = 10 * 60_000;

// wire status codes
const ALIVE = 0;
const SUSPECT = 1;
const DEAD = 2;
const LEFT = 3;
const STATUS: readonly MemberStatus[] = ['alive', 'suspect', 'dead', 'left'];

/** A membership update on the wire: [id, url, startedAt, lite, incarnation, status, meta?]. */
type Update = [string, string, number, boolean, number, number, Record<string, unknown>?];

interface Member {
  id: string;
  url: string;
  startedAt: number;
  lite: boolean;
  incarnation: number;
  status: number;
  meta: Record<string, unknown> | undefined;
  suspectTimer: NodeJS.Timeout | undefined;
  /** When it was declared dead or left (Date.now()); 0 while alive or suspect. */
  goneAt: number;
}

interface Gossip {
  update: Update;
  sends: number;
}

/**
 * An update as the wire may carry it. The id is a member id as the log takes it (letters, digits,
 * `._:-`): members log ids, and one gossiped with a newline and terminal escapes reached a log line
 * as it came. `meta` is a flat record of at most MAX_META_FIELDS short fields: it was any object,
 * and one member's meta of megabytes was stored by every member and re-sent on its pings.
 */
function isUpdate(u: unknown): u is Update {
  if (!Array.isArray(u) || u.length < 6 || u.length > 7) return false;
  const [id, url, startedAt, lite, inc, st, meta] = u;
  return (
    isMemberId(id) &&
    typeof url === 'string' && url.length <= 1024 &&
    typeof startedAt === 'number' && Number.isFinite(startedAt) &&
    typeof lite === 'boolean' &&
    typeof inc === 'number' && Number.isInteger(inc) && inc >= 0 &&
    (st === ALIVE || st === SUSPECT || st === DEAD || st === LEFT) &&
    (meta === undefined || meta === null || isMeta(meta))
  );
}

/** Fields of a member's meta, at most. */
export const MAX_META_FIELDS = 16;
/** Characters of a meta field's name, and of a string value, at most. */
const MAX_META_CHARS = 256;

/** A plain object of at most MAX_META_FIELDS fields, each null, a boolean, a finite number or a short string (counted without listing them all). */
function isMeta(x: unknown): x is Record<string, unknown> {
  if (typeof x !== 'object' || x === null || Object.getPrototypeOf(x) !== Object.prototype) return false;
  let n = 0;
  for (const k in x) {
    if (++n > MAX_META_FIELDS || k.length > MAX_META_CHARS || !Object.prototype.hasOwnProperty.call(x, k)) return false;
    const v = (x as Record<string, unknown>)[k];
    if (!(v === null || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v)) || (typeof v === 'string' && v.length <= MAX_META_CHARS))) return false;
  }
  return true;
}

function positiveInt(v: unknown, name: string, def: number): number {
  if (v === undefined) return def;
  if (typeof v !== 'number' || !Number.isInteger(v) || v <= 0) throw new InvalidArgumentError(`membership options.${name} must be a positive integer`);
  return v;
}

function shuffle<T>(a: T[]): T[] {
  for (let i = a.length - 1; i > 0; i--) {
    const j = Math.floor(Math.random() * (i + 1));
    const t = a[i]!;
    a[i] = a[j]!;
    a[j] = t;
  }
  return a;
}

function info(m: Member): MemberInfo {
  const i: MemberInfo = { id: m.id, url: m.url, startedAt: m.startedAt, lite: m.lite, incarnation: m.incarnation, status: STATUS[m.status]! };
  if (m.meta !== undefined) i.meta = m.meta;
  return i;
}

function toUpdate(m: Member): Update {
  const u: Update = [m.id, m.url, m.startedAt, m.lite, m.incarnation, m.status];
  if (m.meta !== undefined) u.push(m.meta);
  return u;
}

export class Membership extends EventEmitter {
  private readonly transport: Transport;
  private readonly self: Member;
  private readonly seeds: string[];
  private readonly probeInterval: number;
  private readonly probeTimeout: number;
  private readonly indirectProbes: number;
  private readonly suspicionTimeout: number;
  private readonly joinTimeout: number;
  private readonly vouches: ((from: string) => boolean) | undefined;
  private readonly recheck: ((m: MemberInfo) => boolean) | undefined;
  private readonly settings: { partitions: number; backups: number } | undefined;
  private recheckCursor = '';

  /** Every member ever heard of except self, including dead and left ones (tombstones). */
  private readonly table = new Map<string, Member>();
  private readonly gossip = new Map<string, Gossip>();
  private probeList: string[] = [];
  private probeIndex = 0;
  private readonly probing = new Set<string>();
  private tickTimer: NodeJS.Timeout | undefined;
  private running = false;
  private started = false;
  private declaredDead = false;
  private ticks = 0;

  private readonly onDisconnected = (id: string) => {
    const m = this.table.get(id);
    // a dropped connection is only a hint: probe now, let SWIM decide
    if (this.running && m !== undefined && m.status <= SUSPECT && !this.probing.has(id)) void this.probe(m);
  };

  constructor(transport: Transport, self: SelfInfo, opts: MembershipOptions) {
    super();
    if (typeof self?.id !== 'string' || self.id === '') throw new InvalidArgumentError('membership self.id must be a non-empty string');
    if (!Array.isArray(opts?.seeds) || opts.seeds.some((s) => typeof s !== 'string')) throw new InvalidArgumentError('membership options.seeds must be an array of urls');
    this.transport = transport;
    this.self = {
      id: self.id,
      url: self.url,
      startedAt: self.startedAt,
      lite: self.lite,
      incarnation: 0,
      status: ALIVE,
      meta: self.meta,
      suspectTimer: undefined,
      goneAt: 0,
    };
    this.seeds = opts.seeds.filter((s) => s !== self.url);
    this.probeInterval = positiveInt(opts.probeInterval, 'probeInterval', MEMBERSHIP_DEFAULTS.probeInterval);
    this.probeTimeout = positiveInt(opts.probeTimeout, 'probeTimeout', MEMBERSHIP_DEFAULTS.probeTimeout);
    this.indirectProbes = positiveInt(opts.indirectProbes, 'indirectProbes', MEMBERSHIP_DEFAULTS.indirectProbes);
    this.suspicionTimeout = positiveInt(opts.suspicionTimeout, 'suspicionTimeout', MEMBERSHIP_DEFAULTS.suspicionTimeout);
    this.joinTimeout = positiveInt(opts.joinTimeout, 'joinTimeout', MEMBERSHIP_DEFAULTS.joinTimeout);
    this.vouches = opts.vouches;
    this.recheck = opts.recheck;
    this.settings = opts.settings;

    transport.handle('swim.ping', (body, from) => this.onPing(body, from));
    transport.handle('swim.ping-req', (body, from) => this.onPingReq(body, from));
    transport.handle('swim.join', (body, from) => this.onJoin(body, from));
    transport.handle('swim.gossip', (body, from) => this.onGossip(body, from));
  }

  // ---------------------------------------------------------------- public API

  /** Joins through any reachable seed (all are tried, again and again until joinTimeout); with no seeds starts alone. */
  async start(): Promise<void> {
    if (this.started) throw new InvalidArgumentError('membership already started');
    this.started = true;
    this.running = true;
    this.transport.on('disconnected', this.onDisconnected);
    if (this.seeds.length > 0) {
      try {
        await this.join();
      } catch (err) {
        this.stop();
        throw err;
      }
    }
    this.enqueue(toUpdate(this.self));
    this.tickTimer = setTimeout(() => this.tick(), this.probeInterval);
    this.tickTimer.unref(); // background probing never keeps a process alive (the transport's sockets decide)
  }

  /** Alive and suspect members including self, sorted by (startedAt, id): the first is the coordinator. */
  members(): MemberInfo[] {
    const out: MemberInfo[] = [];
    if (this.self.status === ALIVE) out.push(info(this.self));
    for (const m of this.table.values()) if (m.status <= SUSPECT) out.push(info(m));
    return out.sort((a, b) => a.startedAt - b.startedAt || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  }

  /** True for self and for alive or suspect members. */
  isAlive(id: string): boolean {
    if (id === this.self.id) return this.self.status === ALIVE;
    const m = this.table.get(id);
    return m !== undefined && m.status <= SUSPECT;
  }

  /** What SWIM knows of a member, dead and left ones included; undefined when never heard of (or forgotten). */
  infoOf(id: string): MemberInfo | undefined {
    if (id === this.self.id) return info(this.self);
    const m = this.table.get(id);
    return m === undefined ? undefined : info(m);
  }

  /** SWIM's verdict on a member: its status, or undefined when never heard of (or forgotten). */
  statusOf(id: string): MemberStatus | undefined {
    if (id === this.self.id) return STATUS[this.self.status];
    const m = this.table.get(id);
    return m === undefined ? undefined : STATUS[m.status];
  }

  /** Tells everyone it can reach (within ~500 ms) that this member leaves, then stops. */
  async leave(): Promise<void> {
    if (!this.running) return;
    this.self.status = LEFT;
    const u = toUpdate(this.self);
    this.enqueue(u); // acks sent until we stop carry it too
    const body = { u: [u] };
    const deadline = Date.now() + LEAVE_BOUND_MS;
    const sends: Promise<unknown>[] = [];
    for (const m of this.table.values()) {
      if (m.status > SUSPECT) continue;
      sends.push(
        this.ensureConnected(m, LEAVE_BOUND_MS).then((ok) =>
          ok ? this.transport.request(m.id, 'swim.gossip', body, Math.max(1, deadline - Date.now())) : undefined,
        ),
      );
    }
    await Promise.allSettled(sends);
    this.stop();
  }

  /** Stops probing and answering, without telling anyone (others will detect it as dead). */
  stop(): void {
    this.running = false;
    if (this.tickTimer !== undefined) clearTimeout(this.tickTimer);
    this.tickTimer = undefined;
    for (const m of this.table.values()) {
      if (m.suspectTimer !== undefined) clearTimeout(m.suspectTimer);
      m.suspectTimer = undefined;
    }
    this.transport.off('disconnected', this.onDisconnected);
  }

  /** @internal Applies one membership update as if it came from gossip (tests). */
  _apply(u: { id: string; url?: string; startedAt?: number; lite?: boolean; incarnation: number; status: MemberStatus; meta?: Record<string, unknown> }): void {
    const st = STATUS.indexOf(u.status);
    const w: Update = [u.id, u.url ?? '', u.startedAt ?? 0, u.lite ?? false, u.incarnation, st];
    if (u.meta !== undefined) w.push(u.meta);
    if (!isUpdate(w)) throw new InvalidArgumentError('bad update');
    this.apply(w);
  }

  /** @internal This member's current incarnation (tests). */
  get _incarnation(): number {
    return this.self.incarnation;
  }

  // ---------------------------------------------------------------- join

  private async join(): Promise<void> {
    const deadline = Date.now() + this.joinTimeout;
    const body = this.settings === undefined ? { m: toUpdate(this.self) } : { m: toUpdate(this.self), s: [this.settings.partitions, this.settings.backups] };
    let last: unknown[] = [];
    for (;;) {
      if (!this.running) throw new GridClosedError('membership stopped while joining');
      const left = deadline - Date.now();
      if (left <= 0) break;
      const attempts = this.seeds.map(async (url) => {
        const id = await this.transport.connect(url, left);
        const reply = await this.transport.request<{ ms?: unknown }>(id, 'swim.join', body, Math.max(1, deadline - Date.now()));
        return reply;
      });
      try {
        const reply = await Promise.any(attempts);
        this.applyAll(reply?.ms);
        return;
      } catch (err) {
        last = (err as AggregateError).errors ?? [err];
      }
      // a wrong secret or a refused id will not get better by retrying
      if (last.every((e) => e instanceof AuthenticationError)) break;
      const refusal = last.find((e) => e instanceof InvalidArgumentError || e instanceof InvalidOptionError);
      if (refusal !== undefined) throw refusal;
      await new Promise((r) => setTimeout(r, Math.min(JOIN_RETRY_MS, Math.max(0, deadline - Date.now()))));
    }
    // what the seeds answered (each failure's own message: a wrong secret, a url the seed does not
    // advertise, a TLS refusal, a refused connection), else the operator sees only the verdict
    const why = [...new Set(last.map((e) => (e instanceof Error ? e.message : String(e))))];
    const reasons = why.length === 0 ? '' : `: ${why.slice(0, 3).join('; ')}${why.length > 3 ? `; and ${why.length - 3} more` : ''}`;
    if (last.length > 0 && last.every((e) => e instanceof AuthenticationError)) {
      throw new AuthenticationError(`cannot join: every seed refused our authentication${reasons}`, { seeds: this.seeds });
    }
    throw new MemberUnreachableError(`cannot join: no seed reachable within ${this.joinTimeout} ms (${this.seeds.join(', ')})${reasons}`, {
      seeds: this.seeds,
      causes: last.map((e) => (e instanceof GridError ? e.code : String(e))),
    });
  }

  // ---------------------------------------------------------------- handlers

  private checkRunning(): void {
    if (!this.running) throw new GridClosedError(`member ${this.self.id} is not running`);
  }

  private onPing(body: { u?: unknown } | undefined, from: string): { u?: Update[] } {
    this.checkRunning();
    this.applyAll(body?.u, from);
    return this.reply(from);
  }

  private async onPingReq(body: { t?: unknown; u?: unknown } | undefined, from: string): Promise<{ ok: boolean; u?: Update[] }> {
    this.checkRunning();
    this.applyAll(body?.u, from);
    const t = body?.t;
    const m = typeof t === 'string' ? this.table.get(t) : undefined;
    const ok = m !== undefined && m.status <= SUSPECT && (await this.ping(m, this.probeTimeout));
    const r = this.reply(from) as { ok: boolean; u?: Update[] };
    r.ok = ok;
    return r;
  }

  private onJoin(body: { m?: unknown; s?: unknown } | undefined, from: string): { ms: Update[] } {
    this.checkRunning();
    const u = body?.m;
    if (!isUpdate(u) || u[0] !== from || u[5] !== ALIVE) throw new InvalidArgumentError('swim.join: malformed member');
    // as gossip takes a new member (applyAll): a joiner's url was any string (a path, credentials)
    // that this member then dialled, and joins under new ids grew the table past MAX_TABLE
    if (!isMemberUrl(u[1])) throw new InvalidArgumentError('swim.join: the member url is not ws:// or wss:// and host:port');
    if (this.settings !== undefined && body?.s !== undefined) this.checkSettings(body.s, u[3]);
    const known = this.table.get(from);
    if (known !== undefined && known.status > SUSPECT) {
      throw new InvalidArgumentError(`member id ${from} was declared ${STATUS[known.status]}; a restarted member needs a new id`, { member: from });
    }
    if (known === undefined && this.table.size >= MAX_TABLE) throw new InvalidArgumentError(`swim.join: this member knows ${MAX_TABLE} members already (tombstones included)`);
    this.apply(u);
    const ms: Update[] = [toUpdate(this.self)];
    for (const m of this.table.values()) ms.push(toUpdate(m));
    return { ms };
  }

  /** Refuses a joiner whose shared options (MembershipOptions.settings) differ from this member's. */
  private checkSettings(s: unknown, joinerLite: boolean): void {
    const own = this.settings!;
    if (!Array.isArray(s) || s.length !== 2 || !Number.isSafeInteger(s[0]) || !Number.isSafeInteger(s[1])) throw new InvalidArgumentError('swim.join: malformed settings');
    const [partitions, backups] = s as [number, number];
    if (partitions !== own.partitions) {
      throw new InvalidOptionError(`this cluster has ${own.partitions} partitions and the joining member ${partitions}: every member needs the same partitions option (--partitions)`, { partitions: own.partitions });
    }
    if (!joinerLite && !this.self.lite && backups !== own.backups) {
      throw new InvalidOptionError(`this cluster keeps ${own.backups} backup(s) of each partition and the joining member was started with ${backups}: every data member needs the same backups option (--backups)`, { backups: own.backups });
    }
  }

  private onGossip(body: { u?: unknown } | undefined, from: string): Record<string, never> {
    this.checkRunning();
    this.applyAll(body?.u, from);
    return {};
  }

  /** Ack body: piggybacked updates, plus the tombstone of a sender we think dead (so it learns). */
  private reply(from: string): { u?: Update[] } {
    const u = this.pick();
    const m = this.table.get(from);
    if (m !== undefined && m.status > SUSPECT) return { u: u === undefined ? [toUpdate(m)] : [...u, toUpdate(m)] };
    return u === undefined ? {} : { u };
  }

  // ---------------------------------------------------------------- probing

  private tick(): void {
    this.tickTimer = undefined;
    if (!this.running) return;
    if (++this.ticks % 64 === 0) this.forgetTombstones();
    const m = this.nextTarget();
    if (m !== undefined) void this.probe(m);
    if (this.recheck !== undefined && this.ticks % RECHECK_EVERY === 0) this.recheckDead();
    this.tickTimer = setTimeout(() => this.tick(), this.probeInterval);
    this.tickTimer.unref(); // background probing never keeps a process alive (the transport's sockets decide)
  }

  private nextTarget(): Member | undefined {
    for (let round = 0; round < 2; round++) {
      while (this.probeIndex < this.probeList.length) {
        const m = this.table.get(this.probeList[this.probeIndex++]!);
        if (m !== undefined && m.status <= SUSPECT && !this.probing.has(m.id)) return m;
      }
      this.probeList = [];
      for (const m of this.table.values()) if (m.status <= SUSPECT) this.probeList.push(m.id);
      shuffle(this.probeList);
      this.probeIndex = 0;
    }
    return undefined;
  }

  /**
   * Pings the next member held dead (not left) that `recheck` still vouches for, in id order
   * after the last one, with its tombstone in the body: alive, it refutes, and its answer brings
   * the refutation back (and our own tombstone, if it holds us dead, which we refute in turn).
   */
  private recheckDead(): void {
    let first: Member | undefined;
    let next: Member | undefined;
    for (const m of this.table.values()) {
      if (m.status !== DEAD || this.probing.has(m.id) || !this.recheck!(info(m))) continue;
      if (first === undefined || m.id < first.id) first = m;
      if (m.id > this.recheckCursor && (next === undefined || m.id < next.id)) next = m;
    }
    const m = next ?? first;
    if (m === undefined) return;
    this.recheckCursor = m.id;
    this.probing.add(m.id);
    void this.ping(m, this.probeTimeout).finally(() => this.probing.delete(m.id));
  }

  private forgetTombstones(): void {
    const before = Date.now() - TOMBSTONE_TTL_MS;
    for (const [id, m] of this.table) if (m.status > SUSPECT && m.goneAt < before) this.table.delete(id);
  }

  /** A new member goes to a random place in the rest of this round, so it is probed within one round. */
  private addToProbeList(id: string): void {
    const lo = this.probeIndex;
    const at = lo + Math.floor(Math.random() * (this.probeList.length - lo + 1));
    this.probeList.splice(at, 0, id);
  }

  private async probe(m: Member): Promise<void> {
    this.probing.add(m.id);
    try {
      if (await this.ping(m, this.probeTimeout)) return;
      if (!this.running || m.status > SUSPECT) return;
      if (await this.indirect(m)) return;
      if (!this.running || m.status !== ALIVE) return;
      this.apply([m.id, m.url, m.startedAt, m.lite, m.incarnation, SUSPECT, ...(m.meta === undefined ? [] : [m.meta])] as Update);
    } finally {
      this.probing.delete(m.id);
    }
  }

  /** Direct ping within timeoutMs (connecting first if needed); true on ack. */
  private async ping(m: Member, timeoutMs: number): Promise<boolean> {
    const deadline = Date.now() + timeoutMs;
    if (!(await this.ensureConnected(m, timeoutMs))) return false;
    try {
      const ack = await this.transport.request<{ u?: unknown }>(m.id, 'swim.ping', this.pingBody(m), Math.max(1, deadline - Date.now()));
      this.applyAll(ack?.u, m.id);
      return true;
    } catch {
      return false;
    }
  }

  private async ensureConnected(m: Member, timeoutMs: number): Promise<boolean> {
    if (this.transport.isConnected(m.id)) return true;
    try {
      // the url may now belong to another process (a restart with a new id): then m is not there
      return (await this.transport.connect(m.url, timeoutMs)) === m.id;
    } catch {
      return false;
    }
  }

  /** ping-req through up to k other alive members; true as soon as one relays an ack. */
  private indirect(m: Member): Promise<boolean> {
    const helpers: Member[] = [];
    for (const h of this.table.values()) if (h.status === ALIVE && h.id !== m.id && this.transport.isConnected(h.id)) helpers.push(h);
    shuffle(helpers);
    helpers.length = Math.min(helpers.length, this.indirectProbes);
    if (helpers.length === 0) return Promise.resolve(false);
    // the helper connects (if needed) and pings within probeTimeout, then answers us
    const timeout = 2 * this.probeTimeout;
    return new Promise<boolean>((resolve) => {
      let waiting = helpers.length;
      for (const h of helpers) {
        this.transport.request<{ ok?: unknown; u?: unknown }>(h.id, 'swim.ping-req', { t: m.id, u: this.pick() }, timeout).then(
          (r) => {
            this.applyAll(r?.u, h.id);
            if (r?.ok === true) resolve(true);
            else if (--waiting === 0) resolve(false);
          },
          () => {
            if (--waiting === 0) resolve(false);
          },
        );
      }
    });
  }

  /** Piggybacked updates; a suspect (or dead) target also gets its own verdict, so it can refute it. */
  private pingBody(m: Member): { u?: Update[] } {
    const u = this.pick();
    if (m.status === SUSPECT || m.status === DEAD) return { u: u === undefined ? [toUpdate(m)] : [...u, toUpdate(m)] };
    return u === undefined ? {} : { u };
  }

  // ---------------------------------------------------------------- state

  /**
   * Applies gossiped updates. `from` is the member that sent them; undefined for the answer of a
   * seed this member chose to join through (trusted). A member not known yet is added only when
   * it introduces itself or the sender vouches for it, its url is a ws(s)://host:port url, and the
   * table has room.
   */
  private applyAll(list: unknown, from?: string): void {
    if (!Array.isArray(list)) return;
    const vouched = from === undefined || this.vouches === undefined || this.vouches(from);
    for (const u of list) {
      if (!isUpdate(u)) continue;
      if (!this.table.has(u[0]) && u[0] !== this.self.id) {
        if (!vouched && u[0] !== from) continue;
        if (this.table.size >= MAX_TABLE || !isMemberUrl(u[1])) continue;
      }
      this.apply(u, from);
    }
  }

  private apply(u: Update, from?: string): void {
    const [id, url, startedAt, lite, inc, st, meta] = u;
    if (id === this.self.id) {
      this.applySelf(inc, st, from);
      return;
    }
    let m = this.table.get(id);
    if (m === undefined) {
      m = { id, url, startedAt, lite, incarnation: inc, status: st, meta: meta ?? undefined, suspectTimer: undefined, goneAt: st > SUSPECT ? Date.now() : 0 };
      this.table.set(id, m);
      this.enqueue(u);
      if (st > SUSPECT) return; // a tombstone: remembered so the id is never taken back
      this.emit('member-joined', info(m));
      this.addToProbeList(id);
      if (this.running) void this.ensureConnected(m, this.joinTimeout);
      if (st === SUSPECT) {
        this.startSuspicion(m);
        this.emit('member-suspect', info(m));
      }
      return;
    }
    if (m.status === LEFT) return; // left is final
    if (m.status === DEAD) {
      // SWIM only detects: a member declared dead that refutes it (a higher incarnation) is alive
      // again here. Who belongs to the cluster is the metadata log's decision, not ours: a
      // member the log removed learns it there and rejoins under a new id.
      if (st !== ALIVE || inc <= m.incarnation) return;
      m.status = ALIVE;
      m.incarnation = inc;
      m.goneAt = 0;
      if (meta != null) m.meta = meta;
      this.enqueue(toUpdate(m));
      this.emit('member-joined', info(m));
      this.addToProbeList(id);
      if (this.running) void this.ensureConnected(m, this.joinTimeout);
      return;
    }
    switch (st) {
      case ALIVE:
        if (inc > m.incarnation) {
          m.incarnation = inc;
          if (meta != null) m.meta = meta;
          if (m.status === SUSPECT) {
            m.status = ALIVE;
            if (m.suspectTimer !== undefined) clearTimeout(m.suspectTimer);
            m.suspectTimer = undefined;
          }
          this.enqueue(toUpdate(m));
        }
        return;
      case SUSPECT:
        if (m.status === ALIVE ? inc >= m.incarnation : inc > m.incarnation) {
          const wasAlive = m.status === ALIVE;
          m.incarnation = inc;
          m.status = SUSPECT;
          const upd = toUpdate(m);
          this.enqueue(upd);
          this.startSuspicion(m);
          if (wasAlive) {
            // tell the suspect itself at once, so a member that was only slow refutes quickly
            this.transport.notify(m.id, 'swim.gossip', { u: [upd] });
            this.emit('member-suspect', info(m));
          }
        }
        return;
      default: {
        m.status = st;
        m.goneAt = Date.now();
        m.incarnation = Math.max(m.incarnation, inc);
        if (m.suspectTimer !== undefined) clearTimeout(m.suspectTimer);
        m.suspectTimer = undefined;
        this.enqueue(toUpdate(m));
        this.emit('member-left', info(m), st === LEFT ? 'left' : 'dead');
        this.transport.disconnect(m.id);
      }
    }
  }

  private applySelf(inc: number, st: number, from?: string): void {
    if (this.self.status !== ALIVE) return;
    if (st === SUSPECT || st === ALIVE || st === DEAD) {
      if (st === ALIVE ? inc <= this.self.incarnation : inc < this.self.incarnation) {
        // `from` still holds a suspicion or death of ours that we already refuted: our refutation
        // never reached it (sent while the link was down, its piggyback budget spent elsewhere).
        // Tell it again, or it keeps us dead for good and nobody ever re-sends it (nemesis seed
        // 2000 schedules 8 and 22: a member missing from two views 30 s after a 2 s pause)
        if (st !== ALIVE && from !== undefined && this.running) this.transport.notify(from, 'swim.gossip', { u: [toUpdate(this.self)] });
        return;
      }
      if (st === DEAD && !this.declaredDead) {
        this.declaredDead = true;
        // others declared us dead (we were paused, or cut off): refute it like a suspicion
        this.emit('declared-dead', info(this.self));
      }
      // refute: a higher incarnation than anyone has seen, sent to everyone we are connected to
      this.self.incarnation = inc + 1;
      const u = toUpdate(this.self);
      this.enqueue(u);
      if (this.running) for (const id of this.transport.peers()) this.transport.notify(id, 'swim.gossip', { u: [u] });
      return;
    }
  }

  private startSuspicion(m: Member): void {
    if (m.suspectTimer !== undefined || !this.running) return;
    const inc = m.incarnation;
    m.suspectTimer = setTimeout(() => {
      // one I/O turn first: a refutation already waiting in a socket is read before we decide
      setImmediate(() => {
        m.suspectTimer = undefined;
        if (!this.running || m.status !== SUSPECT || m.incarnation !== inc) return;
        this.apply([m.id, m.url, m.startedAt, m.lite, m.incarnation, DEAD]);
      });
    }, this.suspicionTimeout);
    m.suspectTimer.unref();
  }

  // ---------------------------------------------------------------- dissemination

  private enqueue(u: Update): void {
    this.gossip.set(u[0], { update: u, sends: 0 });
  }

  /** Up to MAX_PIGGYBACK updates, fewest-sent first; each retired after LAMBDA * log2(n + 1) sends. */
  private pick(): Update[] | undefined {
    if (this.gossip.size === 0) return undefined;
    let n = 1;
    for (const m of this.table.values()) if (m.status <= SUSPECT) n++;
    const limit = LAMBDA * Math.ceil(Math.log2(n + 1));
    const all = [...this.gossip.values()];
    if (all.length > MAX_PIGGYBACK) all.sort((a, b) => a.sends - b.sends);
    const out: Update[] = [];
    for (let i = 0; i < all.length && out.length < MAX_PIGGYBACK; i++) {
      const g = all[i]!;
      out.push(g.update);
      if (++g.sends >= limit) this.gossip.delete(g.update[0]);
    }
    return out;
  }
}
