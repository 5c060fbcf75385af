/**
 * ClusterNode: this process as a member of a cluster (native-notes.md, "Cluster").
 *
 * - Membership (SWIM, membership.ts) over the authenticated transport (transport/).
 * - The partition table (ring/table.ts): the coordinator (oldest live data member) plans it from
 *   the live data members and the copies reported complete, and pushes each version to every
 *   member (and again every second); members apply only newer versions.
 * - Routing: RoutedMap asks `route(p, …)`; the partition's primary runs the operation on its own
 *   shared memory and replicates the key's resulting state to every backup and pending copy
 *   before the operation resolves (records.ts explains why states, not operations).
 * - Migration: a primary streams each partition to the members pending for it (a snapshot taken
 *   under the partition lock, sent on the same ordered connection as replicated writes), then
 *   reports it synced; the coordinator makes the copy an owner in the next version.
 * - Failover: a dead member's partitions keep their surviving copies; the first becomes primary at
 *   once in the next version, and missing backups are rebuilt as pending copies.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ResolvedClusterOptions } from '../config.js';
import {
  GridClosedError, GridError, InvalidOptionError, KeyTooLargeError, MemberUnreachableError, MemoryFullError, PartitionMovedError, ProtocolError,
  RetryableGridError, TimeoutError, ValueTooLargeError,
} from '../errors.js';
import { initialTable, isTable, migrating, newer, ownedBy, plan, type PartitionTable } from '../ring/table.js';
import { T_NUMBER } from '../storage/layout.js';
import { READ_SPIN_LIMIT, type ShardStore } from '../storage/store.js';
import { ABSENT, FastWriter, R_OK, R_STATE, R_STATES, STATE_HEAD, STATES_HEAD, VALUE_HEAD, readF64, type FastMap, type FastReader } from '../transport/fast.js';
import { Transport, type FastPeer, type LogFn } from '../transport/transport.js';
import { RepCall, Shipment, rawAt, rawSize, sendRep, writeRaw, type KeySource } from './fast-ops.js';
import { Membership, type MemberInfo } from './membership.js';
import { Records, checkState, type RawEntry, type RawState } from './records.js';
import { CLUSTER_STATUS_REQUEST, type ClusterStatus } from './status.js';

/** How long an operation keeps retrying a moved partition or an unreachable primary. */
export const RETRY_DEADLINE_MS = 15_000;
/** The coordinator republishes the table this often; members re-check streams and reports. */
const TICK_MS = 1000;
/** Debounce of re-planning after a membership change or a sync report. */
const REPLAN_MS = 30;
/** A partition snapshot is sent in messages of about this many value bytes. */
const SNAPSHOT_CHUNK_BYTES = 4 * 1024 * 1024;
/** Partitions streamed at once by one primary. */
const STREAM_CONCURRENCY = 4;
/** Time a streamed chunk may take to be applied. */
const STREAM_TIMEOUT_MS = 30_000;

export interface ClusterHost {
  readonly store: ShardStore;
  readonly lockTimeout: number;
  stats(): { entries: number; bytesUsed: number; bytesLimit: number };
}

/** Handlers that run map operations for other members (RoutedMap, in grid.ts). */
export type OpHandler = (body: Record<string, unknown>, from: string) => unknown;

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export class ClusterNode extends EventEmitter {
  readonly memberId: string;
  readonly lite: boolean;
  readonly backups: number;
  readonly partitions: number;
  readonly records: Records;
  private readonly host: ClusterHost;
  private readonly opts: ResolvedClusterOptions;
  private readonly log: LogFn;
  private transport!: Transport;
  private membership!: Membership;
  private table: PartitionTable | undefined;
  private tableWaiters: Array<() => void> = [];
  private closed = false;
  private timer: NodeJS.Timeout | undefined;
  private replanTimer: NodeJS.Timeout | undefined;
  /** Coordinator: pending copies reported complete, per partition. */
  private readonly synced = new Map<number, Set<string>>();
  /** Coordinator: copies a primary could not replicate to; they are rebuilt. */
  private readonly stale = new Map<number, Set<string>>();
  /** Primary: streams running ("p:member") and done (to re-report until the table moves on). */
  private readonly streaming = new Set<string>();
  private readonly streamed = new Set<string>();
  private streamSlots = STREAM_CONCURRENCY;
  private readonly streamQueue: Array<() => void> = [];
  private opHandler: OpHandler | undefined;
  /** Reply records of FAST requests are built here, then copied into the peer's frame. */
  private readonly out = new FastWriter();
  /** Open connection to each partition's primary (FAST requests), filled on use, emptied with every new table. */
  private peerCache: Array<FastPeer | undefined> = [];

  constructor(host: ClusterHost, opts: ResolvedClusterOptions, log?: LogFn) {
    super();
    this.host = host;
    this.opts = opts;
    this.lite = opts.lite;
    this.backups = opts.backups;
    this.partitions = host.store.partitions;
    this.memberId = `${opts.lite ? 'lite' : 'm'}-${randomBytes(6).toString('hex')}`;
    this.records = new Records(host.store, host.lockTimeout);
    this.log =
      log ??
      ((level, message, err) => {
        if (level === 'info') return;
        // the transport's messages already say what went wrong; add the error's text only when it is new
        const detail = err instanceof GridError ? ` [${err.code}]` : '';
        const text = err instanceof Error && !message.includes(err.message) ? `: ${err.message}` : '';
        process.emitWarning(`shardgrid ${this.memberId}: ${message}${text}${detail}`, { code: 'SHARDGRID_CLUSTER' });
      });
  }

  get url(): string {
    return this.transport.url;
  }

  get tableVersion(): number {
    return this.table?.version ?? 0;
  }

  /** @internal for stats and tests: the table this member applies now. */
  get currentTable(): PartitionTable | undefined {
    return this.table;
  }

  onOp(fn: OpHandler): void {
    this.opHandler = fn;
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────────

  async start(): Promise<void> {
    const o = this.opts;
    if (o.secret === undefined) throw new InvalidOptionError('options.cluster.secret is required to join a cluster (the CLI also reads SHARDGRID_SECRET)', { option: 'options.cluster.secret' });
    this.transport = await Transport.listen({ host: o.host, port: o.port, advertise: o.advertise, sourceAddress: o.sourceAddress, secret: o.secret, memberId: this.memberId, log: this.log, tls: o.tls });
    const t = this.transport;
    t.handle('grid.table', (b) => this.onTable(b));
    t.handle('grid.table?', () => this.table ?? null);
    t.handle('grid.synced', (b, from) => this.onSynced(b, from));
    t.handle('grid.stale', (b) => this.onStale(b));
    t.handle('grid.rep', (b) => this.onReplicate(b));
    t.handle('grid.snap', (b) => this.onSnapshot(b));
    t.handle('grid.op', (b, from) => {
      if (this.opHandler === undefined) throw new GridClosedError('member is not serving maps');
      return this.opHandler(b as Record<string, unknown>, from);
    });
    t.serveFast({
      get: (peer, r) => this.serveRead(peer, r, false),
      set: (peer, r) => this.serveSet(peer, r),
      mget: (peer, r) => this.serveRead(peer, r, true),
      rep: (peer, r) => this.serveRep(peer, r),
    });
    t.handle('grid.member-stats', () => this.memberStats());
    t.handle(CLUSTER_STATUS_REQUEST, () => this.clusterStatus());
    this.membership = new Membership(t, { id: this.memberId, url: t.url, startedAt: Date.now(), lite: this.lite }, { seeds: [...o.seeds] });
    const m = this.membership;
    m.on('member-joined', (info: MemberInfo) => {
      this.emit('member-joined', info);
      this.scheduleReplan();
    });
    m.on('member-left', (info: MemberInfo, reason: string) => {
      this.emit('member-left', info, reason);
      this.scheduleReplan();
    });
    try {
      await m.start();
      if (this.isCoordinator()) {
        if (this.table === undefined) this.applyTable(initialTable(this.partitions, this.memberId, this.dataMembers(), this.backups));
      } else {
        await this.fetchTable();
      }
    } catch (e) {
      m.stop();
      await t.close();
      throw e;
    }
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
    this.scheduleReplan();
  }

  /** Leaves gracefully: tells the others (they promote this member's backups at once) and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    clearTimeout(this.replanTimer);
    for (const w of this.tableWaiters.splice(0)) w();
    for (let p = 0; p < this.partitions; p++) this.host.store.setPrimaryHere(p, false);
    try {
      await this.membership.leave();
    } finally {
      await this.transport.close();
    }
  }

  // ── membership and coordination ───────────────────────────────────────────────────────────────

  members(): MemberInfo[] {
    return this.membership.members();
  }

  private dataMembers(): string[] {
    return this.membership
      .members()
      .filter((m) => !m.lite)
      .map((m) => m.id);
  }

  private coordinatorId(): string | undefined {
    return this.membership.members().find((m) => !m.lite)?.id;
  }

  isCoordinator(): boolean {
    return !this.lite && this.coordinatorId() === this.memberId;
  }

  private rank = (id: string): number => {
    const i = this.membership.members().findIndex((m) => m.id === id);
    return i < 0 ? Number.MAX_SAFE_INTEGER : i;
  };

  private scheduleReplan(): void {
    if (this.closed || this.replanTimer !== undefined) return;
    this.replanTimer = setTimeout(() => {
      this.replanTimer = undefined;
      this.replan();
    }, REPLAN_MS);
  }

  private replan(): void {
    if (this.closed || !this.isCoordinator()) return;
    const live = this.dataMembers();
    let cur = this.table ?? initialTable(this.partitions, this.memberId, live, this.backups);
    if (this.stale.size > 0) {
      // copies that missed a replicated write stop being owners (never the primary, never the
      // last copy); the plan then lists them as pending and their primary streams them afresh
      const owners = cur.owners.map((o, p) => {
        const bad = this.stale.get(p);
        return bad === undefined ? o : o.filter((m, i) => i === 0 || !bad.has(m));
      });
      cur = { ...cur, owners };
      this.stale.clear();
    }
    const next = plan(cur, this.memberId, live, this.backups, (p) => this.synced.get(p) ?? EMPTY);
    if (next === this.table) return;
    this.synced.clear();
    this.applyTable(next);
    this.publish();
  }

  private publish(): void {
    const t = this.table;
    if (t === undefined) return;
    for (const m of this.membership.members()) if (m.id !== this.memberId) this.transport.notify(m.id, 'grid.table', t);
  }

  private tick(): void {
    if (this.closed) return;
    if (this.isCoordinator()) {
      this.replan();
      this.publish();
    }
    this.checkStreams();
  }

  private async fetchTable(): Promise<void> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    while (this.table === undefined) {
      const c = this.coordinatorId();
      if (c === undefined && !this.lite) {
        this.applyTable(initialTable(this.partitions, this.memberId, this.dataMembers(), this.backups));
        return;
      }
      if (c !== undefined && c !== this.memberId) {
        try {
          await this.ensureLink(c);
          this.onTable(await this.transport.request(c, 'grid.table?', null));
        } catch {
          // the coordinator may be starting or gone: retry below
        }
      }
      if (this.table !== undefined) return;
      if (Date.now() > deadline) throw new TimeoutError(`no partition table from the cluster within ${RETRY_DEADLINE_MS} ms`);
      await sleep(100);
    }
  }

  private onTable(b: unknown): void {
    if (b === null) return;
    if (!isTable(b, this.partitions)) throw new ProtocolError('malformed partition table');
    this.applyTable(b);
  }

  private applyTable(t: PartitionTable): void {
    if (this.closed || !newer(t, this.table, this.rank)) return;
    this.table = t;
    this.peerCache = [];
    for (const w of this.tableWaiters.splice(0)) w();
    const me = this.memberId;
    const st = this.host.store;
    // other threads of this process read primaries straight from shared memory (runtime/forward.ts)
    for (let p = 0; p < this.partitions; p++) st.setPrimaryHere(p, t.owners[p][0] === me);
    for (let p = 0; p < this.partitions; p++) {
      // a copy this member no longer holds for anyone: drop it (a later pending copy starts from a reset anyway)
      if (st.countIn(p) > 0 && !t.owners[p].includes(me) && !t.pending[p].includes(me)) {
        void Promise.resolve(this.records.serial(p, () => this.records.clearPartition(p))).catch(() => undefined);
      }
    }
    for (const k of this.streamed) {
      const [p, m] = splitKey(k);
      if (!t.pending[p].includes(m) || t.owners[p][0] !== me) this.streamed.delete(k);
    }
    this.checkStreams();
  }

  /** Resolves when a newer table arrives or after `ms`. */
  private tableChange(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const t = setTimeout(resolve, ms);
      this.tableWaiters.push(() => {
        clearTimeout(t);
        resolve();
      });
    });
  }

  private onSynced(b: unknown, from: string): void {
    const { p, m } = (b ?? {}) as { p?: unknown; m?: unknown };
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.partitions || typeof m !== 'string') throw new ProtocolError('malformed sync report');
    const t = this.table;
    if (t === undefined || t.owners[p as number][0] !== from || !t.pending[p as number].includes(m)) return;
    let s = this.synced.get(p as number);
    if (s === undefined) this.synced.set(p as number, (s = new Set()));
    s.add(m);
    this.scheduleReplan();
  }

  private onStale(b: unknown): void {
    const { p, m } = (b ?? {}) as { p?: unknown; m?: unknown };
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.partitions || typeof m !== 'string') throw new ProtocolError('malformed stale report');
    if (!this.membership.isAlive(m)) return; // dead: the plan drops it anyway
    let s = this.stale.get(p as number);
    if (s === undefined) this.stale.set(p as number, (s = new Set()));
    s.add(m);
    this.scheduleReplan();
  }

  private async ensureLink(id: string): Promise<void> {
    if (this.transport.isConnected(id)) return;
    const info = this.membership.members().find((m) => m.id === id);
    if (info === undefined) throw new MemberUnreachableError(`member ${id} is not alive`, { member: id });
    await this.transport.connect(info.url);
  }

  // ── routing ───────────────────────────────────────────────────────────────────────────────────

  primaryOf(p: number): string | undefined {
    return this.table?.owners[p][0];
  }

  isPrimary(p: number): boolean {
    return this.table !== undefined && this.table.owners[p][0] === this.memberId;
  }

  /** Partitions this member is primary for. */
  primaries(): number[] {
    const out: number[] = [];
    const t = this.table;
    if (t !== undefined) for (let p = 0; p < this.partitions; p++) if (t.owners[p][0] === this.memberId) out.push(p);
    return out;
  }

  /** Throws the retryable error a caller gets when this member is not p's primary. */
  assertPrimary(p: number): void {
    if (this.closed) throw new GridClosedError('member is closing');
    if (!this.isPrimary(p)) throw new PartitionMovedError(`partition ${p} is not primary on member ${this.memberId}`, { partition: p, version: this.tableVersion });
  }

  /**
   * The open connection to partition p's primary when that is another member (for FAST
   * requests); undefined when this member is the primary, none is known, or not connected.
   */
  fastPeerOf(p: number): FastPeer | undefined {
    if (this.closed) return undefined;
    const c = this.peerCache[p];
    if (c !== undefined && c.isOpen) return c;
    const to = this.primaryOf(p);
    if (to === undefined || to === this.memberId) return undefined;
    const peer = this.transport.peer(to);
    if (peer !== undefined) this.peerCache[p] = peer;
    return peer;
  }

  /** The open connection to member `to` (after ensureLink), or undefined. */
  peer(to: string): FastPeer | undefined {
    return this.transport.peer(to);
  }

  /** A grid.op request to member `to`. */
  request<T>(to: string, body: Record<string, unknown>): Promise<T> {
    return this.transport.request(to, 'grid.op', body) as Promise<T>;
  }

  /**
   * Runs an operation on partition p's primary: `local()` when that is this member, else the
   * `body` as a grid.op request. Retries moved partitions and unreachable primaries until
   * RETRY_DEADLINE_MS, waiting for a newer table in between.
   */
  route<T>(p: number, local: () => T | Promise<T>, body: Record<string, unknown>): Promise<T> {
    const remote = (to: string) => this.transport.request(to, 'grid.op', body) as Promise<T>;
    // fast path: a remote primary we are connected to, one request, no async frame of our own
    const to = this.primaryOf(p);
    if (to !== undefined && to !== this.memberId && !this.closed && this.transport.isConnected(to)) {
      return remote(to).catch((e: unknown) => this.routeSlow(p, local, remote, e));
    }
    return this.routeSlow(p, local, remote, undefined);
  }

  /**
   * route() after a first attempt failed with `first` (or without one): waits for a newer table
   * when the error is retryable, then runs `local()` or `remote(primary)` again, until
   * RETRY_DEADLINE_MS.
   */
  async routeSlow<T>(p: number, local: () => T | Promise<T>, remote: (to: string) => Promise<T>, first: unknown): Promise<T> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    if (first !== undefined) {
      if (!(first instanceof RetryableGridError || first instanceof MemberUnreachableError)) throw first;
      await this.recover(first, this.primaryOf(p), 0);
    }
    for (let attempt = 0; ; attempt++) {
      if (this.closed) throw new GridClosedError('the grid is closed');
      if (this.table === undefined) await this.tableChange(100);
      const to = this.primaryOf(p);
      try {
        if (to === this.memberId) return await local();
        if (to === undefined) throw new MemberUnreachableError(`no live data member holds partition ${p}`, { partition: p });
        await this.ensureLink(to);
        return await remote(to);
      } catch (e) {
        if (!(e instanceof RetryableGridError || e instanceof MemberUnreachableError) || Date.now() > deadline) throw e;
        await this.recover(e, to, attempt);
      }
    }
  }

  /** Sends one request per member for the partitions it is primary for (getMany / setMany). */
  async routeMany<T>(parts: readonly number[], local: (idx: number[]) => Promise<T[]>, remote: (to: string, idx: number[]) => Promise<T[]>): Promise<T[]> {
    const out = new Array<T>(parts.length);
    let todo = parts.map((_, i) => i);
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    for (let attempt = 0; todo.length > 0; attempt++) {
      if (this.closed) throw new GridClosedError('the grid is closed');
      if (this.table === undefined) await this.tableChange(100);
      const groups = new Map<string | undefined, number[]>();
      for (const i of todo) {
        const to = this.primaryOf(parts[i]);
        let g = groups.get(to);
        if (g === undefined) groups.set(to, (g = []));
        g.push(i);
      }
      const failed: number[] = [];
      let firstErr: unknown;
      await Promise.all(
        [...groups].map(async ([to, idx]) => {
          try {
            let r: T[];
            if (to === this.memberId) r = await local(idx);
            else if (to === undefined) throw new MemberUnreachableError('no live data member holds some of the partitions');
            else {
              await this.ensureLink(to);
              r = await remote(to, idx);
            }
            for (let j = 0; j < idx.length; j++) out[idx[j]] = r[j];
          } catch (e) {
            if (!(e instanceof RetryableGridError || e instanceof MemberUnreachableError) || Date.now() > deadline) throw e;
            failed.push(...idx);
            firstErr ??= e;
          }
        }),
      );
      todo = failed;
      if (todo.length > 0) await this.recover(firstErr, undefined, attempt);
    }
    return out;
  }

  /** Sends `body` to every live data member (size, clear, aggregate) and returns their answers. */
  async broadcast<T>(local: () => Promise<T>, body: Record<string, unknown>): Promise<T[]> {
    const ids = this.dataMembers();
    return Promise.all(
      ids.map(async (id) => {
        if (id === this.memberId) return local();
        await this.ensureLink(id);
        return (await this.transport.request(id, 'grid.op', body)) as T;
      }),
    );
  }

  private async recover(e: unknown, to: string | undefined, attempt: number): Promise<void> {
    const v = e instanceof PartitionMovedError ? Number((e.data as { version?: unknown } | undefined)?.version) : NaN;
    if (to !== undefined && v > this.tableVersion) {
      // the primary we asked knows a newer table: take it from there
      try {
        this.onTable(await this.transport.request(to, 'grid.table?', null, 1000));
      } catch {
        // fall through to waiting
      }
      if (this.tableVersion >= v) return;
    }
    await this.tableChange(Math.min(10 * 2 ** attempt, 250));
  }

  // ── replication ───────────────────────────────────────────────────────────────────────────────

  /**
   * After a write on this primary: ships key's current state to every backup and pending copy of
   * its partition, and resolves when all live ones applied it. A copy that cannot be reached is
   * reported stale to the coordinator (it is rebuilt); a copy that says it is the primary now
   * (newer table) makes this write fail with PartitionMovedError, which route() retries there.
   */
  replicate(mapName: string, key: string): Promise<unknown> | undefined {
    if (this.table === undefined) return undefined;
    const r = this.records.withState(mapName, key, (p, s) => {
      this.assertPrimary(p); // read and send in the same run: still the primary when shipped
      const targets = copiesOf(this.table!, p, this.memberId);
      if (targets.length === 0) return undefined;
      return new Promise<void>((resolve, reject) => {
        const ship = new Shipment((err) => (err === undefined ? resolve() : reject(err)));
        const k: KeySource = { s: key, len: Buffer.byteLength(key, 'utf8') };
        for (const to of targets) this.ship(ship, p, to, mapName, k, s, undefined, 0, 0, 0, 0);
        ship.done();
      });
    });
    return r as Promise<unknown> | undefined;
  }

  /**
   * Sends one copy of partition p the key's state (a RawState, or a STATE of a received frame at
   * b[off..off+len) with its type and expiry) as a FAST REP, counted in `ship`; a generic grid.rep
   * when it does not fit a FAST record.
   */
  private ship(ship: Shipment, p: number, to: string, map: string, key: KeySource, raw: RawState | undefined, b: Buffer | undefined, type: number, exp: number, off: number, len: number): void {
    const peer = this.transport.peer(to);
    if (peer === undefined) {
      this.reportStale(p, to);
      return;
    }
    ship.add();
    if (sendRep(peer, map, this.tableVersion, key, raw, b, type, exp, off, len, new RepCall(ship, (e) => this.copyFailed(p, to, e)))) return;
    const k = key.s ?? Buffer.from(key.b!.subarray(key.off, key.off! + key.len)).toString('utf8');
    const s = raw !== undefined ? raw : rawAt(b!, type, exp, off, len);
    this.sendCopy(p, to, 'grid.rep', { m: map, k, s, v: this.tableVersion }).then(
      () => ship.done(),
      (e: unknown) => ship.done(e),
    );
  }

  /** A copy did not apply a replicated write: the error that fails the write, or undefined (the copy is reported stale). */
  private copyFailed(p: number, to: string, e: unknown): unknown {
    if (e instanceof PartitionMovedError) return e;
    if (e instanceof GridError && e.code === 'GRID_ERR_CLOSED' && this.closed) return e;
    this.log('warn', `copy of partition ${p} on ${to} missed a write`, e);
    this.reportStale(p, to);
    return undefined;
  }

  private sendCopy(p: number, to: string, type: string, body: unknown): Promise<void> {
    if (!this.transport.isConnected(to)) {
      this.reportStale(p, to);
      return Promise.resolve();
    }
    return this.transport.request(to, type, body).then(
      () => undefined,
      (e: unknown) => {
        const err = this.copyFailed(p, to, e);
        if (err !== undefined) throw err;
      },
    );
  }

  private reportStale(p: number, member: string): void {
    const c = this.coordinatorId();
    if (c === undefined) return;
    if (c === this.memberId) this.onStale({ p, m: member });
    else this.transport.notify(c, 'grid.stale', { p, m: member });
  }

  private onReplicate(b: unknown): unknown {
    const { m, k, s, v } = (b ?? {}) as { m?: unknown; k?: unknown; s?: unknown; v?: unknown };
    if (typeof m !== 'string' || typeof k !== 'string' || typeof v !== 'number') throw new ProtocolError('malformed replicated write');
    const state = checkState(s, this.host.store.maxValueBytes);
    const p = this.records.partitionOf(k);
    this.checkCopy(p, v);
    return this.records.serial(p, () => {
      this.records.putState(m, k, state);
      return true;
    });
  }

  /** A copy refuses writes from a primary whose table is older than its own, where it is not a copy. */
  private checkCopy(p: number, v: number): void {
    const t = this.table;
    if (t === undefined || t.version <= v) return;
    const me = this.memberId;
    if (t.owners[p][0] === me || (!t.owners[p].includes(me) && !t.pending[p].includes(me))) {
      throw new PartitionMovedError(`partition ${p} moved (table ${t.version})`, { partition: p, version: t.version });
    }
  }

  // ── FAST requests (transport/fast.ts) ─────────────────────────────────────────────────────────

  /** This member's store id of a map named on a connection (registered on first use, cached on the FastMap). */
  private fastMapId(m: FastMap): number {
    if (m.local >= 0) return m.local;
    const id = this.host.store.mapId(m.name);
    if (id < 0) throw new ProtocolError(`cannot register map '${m.name.slice(0, 40)}' (registry full or name too long)`);
    return (m.local = id);
  }

  /** Sets the store's current key to the record's key; its partition. */
  private fastKey(r: FastReader, mapId: number, off = r.keyOff, len = r.keyLen): number {
    const st = this.host.store;
    if (st.setKeyBytes(r.buf, off, len, mapId) < 0) throw new KeyTooLargeError(`key is ${len} bytes, over maxKeyBytes (${st.maxKeyBytes})`, { size: len, limit: st.maxKeyBytes });
    return st.kpart;
  }

  /**
   * Reads the STATE of the store's current key (map `mapId`, partition p) optimistically and
   * writes it, the value bytes copied straight out of shared memory: as a whole STATE reply
   * record [R_STATE, id, STATE] into the peer's frame when `peer` is given, else appended to
   * `this.out`. False (nothing written) when a writer kept the partition busy through the spin.
   */
  private writeStateOf(p: number, mapId: number, peer: FastPeer | undefined, id: number): boolean {
    const st = this.host.store;
    for (let spin = 0; spin < READ_SPIN_LIMIT; spin++) {
      const s = st.readBegin(p);
      if (s < 0) continue;
      const off = st.probe(p, mapId);
      let vlen = -1;
      let vo = 0;
      let exp = 0;
      if (off >= 0) {
        exp = st.expiresAt(off);
        if (exp === 0 || exp > Date.now()) {
          vlen = st.valueLength(off);
          vo = st.valueOffset(off);
          if (!st.inBounds(vo + vlen)) continue; // torn view
        }
      }
      const size = vlen < 0 ? 1 : VALUE_HEAD + vlen;
      let w: FastWriter;
      if (peer !== undefined) {
        if (STATE_HEAD + size > peer.maxRecord) {
          if (!st.readValid(p, s)) continue;
          throw new ValueTooLargeError(`value of ${vlen} bytes does not fit a frame (maxPayload ${peer.maxRecord + 1})`, { size: vlen });
        }
        w = peer.room(STATE_HEAD + size);
      } else {
        w = this.out;
        w.ensure(size);
      }
      const mark = w.len;
      if (peer !== undefined) {
        w.u8(R_STATE);
        w.u32(id);
      }
      if (vlen < 0) w.u8(ABSENT);
      else {
        w.u8(st.typeOf(off));
        w.f64(exp);
        w.u32(vlen);
        w.bytes(st.u8, vo, vo + vlen);
      }
      if (st.readValid(p, s)) {
        if (vlen >= 0) st.touch(off);
        return true;
      }
      w.len = mark;
    }
    return false;
  }

  /**
   * Moves the reply record built in `this.out` into the peer's frame (one copy of a few hundred
   * bytes, so the frame is never left with half a record and its size is known before it joins).
   */
  private sendOut(peer: FastPeer): void {
    const o = this.out;
    if (o.len > peer.maxRecord) {
      const n = o.len;
      o.len = 0;
      throw new ValueTooLargeError(`reply of ${n} bytes does not fit a frame (maxPayload ${peer.maxRecord + 1})`, { size: n });
    }
    peer.room(o.len).bytes(o.buf, 0, o.len);
    o.len = 0;
  }

  /** MGET: the STATES reply built in `this.out`, then moved into the frame; false when a partition was busy. */
  private readMany(peer: FastPeer, r: FastReader, mapId: number): boolean {
    const n = r.count;
    // all or nothing: every key's partition must be primary here before anything is read
    for (let i = 0; i < n; i++) this.assertPrimary(this.fastKey(r, mapId, r.keyOffs[i], r.keyLens[i]));
    const o = this.out;
    o.len = 0;
    o.ensure(STATES_HEAD);
    o.u8(R_STATES);
    o.u32(r.id);
    o.u32(n);
    for (let i = 0; i < n; i++) {
      const p = this.fastKey(r, mapId, r.keyOffs[i], r.keyLens[i]);
      if (!this.writeStateOf(p, mapId, undefined, 0)) {
        o.len = 0;
        return false;
      }
    }
    this.sendOut(peer);
    return true;
  }

  /**
   * GET (one key, R_STATE) and MGET (R_STATES): every value copied from shared memory into the
   * reply record. An MGET is all or nothing: each key's partition must be primary here first.
   */
  private serveRead(peer: FastPeer, r: FastReader, many: boolean): void {
    const mapId = this.fastMapId(r.map);
    if (!many) {
      const p = this.fastKey(r, mapId);
      this.assertPrimary(p);
      if (this.writeStateOf(p, mapId, peer, r.id)) return;
    } else if (this.readMany(peer, r, mapId)) return;
    const n = many ? r.count : 1;
    // a writer kept a partition busy: read (under the lock where needed) and answer then
    const id = r.id;
    const name = r.map.name;
    const keys: string[] = [];
    if (!many) keys.push(r.key());
    else for (let k = 0; k < n; k++) keys.push(r.buf.toString('utf8', r.keyOffs[k], r.keyOffs[k] + r.keyLens[k]));
    Promise.all(
      keys.map((key) =>
        this.records.withState(name, key, (p2, s) => {
          this.assertPrimary(p2);
          return s;
        }),
      ),
    ).then(
      (states) => this.replyRaw(peer, id, states, many),
      (e: unknown) => peer.replyError(id, e),
    );
  }

  /** Answers with RawStates: one (R_STATE) or a list (R_STATES). */
  private replyRaw(peer: FastPeer, id: number, states: RawState[], many = false): void {
    if (!peer.isOpen) return;
    let size = many ? STATES_HEAD : STATE_HEAD;
    for (const s of states) size += rawSize(s);
    if (size > peer.maxRecord) {
      peer.replyError(id, new ValueTooLargeError(`reply of ${size} bytes does not fit a frame (maxPayload)`));
      return;
    }
    const w = peer.room(size);
    w.u8(many ? R_STATES : R_STATE);
    w.u32(id);
    if (many) w.u32(states.length);
    for (const s of states) writeRaw(w, s);
  }

  /**
   * A SET routed here: written under the partition lock, and in the same synchronous run (still
   * under the lock) its state — the value bytes of the request — is shipped to every backup and
   * pending copy as a REP; the OK goes back once all live copies applied it.
   */
  private serveSet(peer: FastPeer, r: FastReader): void {
    const st = this.host.store;
    const mapId = this.fastMapId(r.map);
    const p = this.fastKey(r, mapId);
    this.assertPrimary(p);
    if (r.vLen > st.maxValueBytes) throw new ValueTooLargeError(`value is ${r.vLen} bytes, over maxValueBytes (${st.maxValueBytes})`, { size: r.vLen, limit: st.maxValueBytes });
    const { buf, id, keyOff, keyLen, vType, vExp, vOff, vLen } = r;
    const name = r.map.name;
    const write = (): void => {
      st.setKeyBytes(buf, keyOff, keyLen, mapId);
      this.assertPrimary(p);
      const num = vType === T_NUMBER ? readF64(buf, vOff) : 0;
      if (st.put(p, mapId, vType, vType === T_NUMBER ? null : buf.subarray(vOff, vOff + vLen), vLen, num, vExp) < 0) {
        throw new MemoryFullError('memory budget exhausted and nothing left to evict');
      }
      const targets = copiesOf(this.table!, p, this.memberId);
      const ship = new Shipment((err) => {
        if (!peer.isOpen) return;
        if (err !== undefined) {
          peer.replyError(id, err);
          return;
        }
        const w = peer.room(5);
        w.u8(R_OK);
        w.u32(id);
      });
      if (targets.length > 0) {
        const k: KeySource = { b: buf, off: keyOff, len: keyLen };
        for (const to of targets) this.ship(ship, p, to, name, k, undefined, buf, vType, vExp, vOff, vLen);
      }
      ship.done();
    };
    const res = this.records.serial(p, write);
    if (res instanceof Promise) res.then(undefined, (e: unknown) => peer.replyError(id, e));
  }

  /** A replicated write (REP) on a copy: fenced by table version, applied in arrival order per partition. */
  private serveRep(peer: FastPeer, r: FastReader): void {
    const st = this.host.store;
    const mapId = this.fastMapId(r.map);
    if (st.setKeyBytes(r.buf, r.keyOff, r.keyLen, mapId) < 0) throw new ProtocolError('replicated key is over maxKeyBytes');
    const p = st.kpart;
    this.checkCopy(p, r.version);
    if (r.vLen > st.maxValueBytes) throw new ValueTooLargeError(`replicated value is ${r.vLen} bytes, over maxValueBytes (${st.maxValueBytes})`, { size: r.vLen, limit: st.maxValueBytes });
    const { buf, id, keyOff, keyLen, vType, vExp, vOff, vLen } = r;
    const apply = (): void => {
      st.setKeyBytes(buf, keyOff, keyLen, mapId);
      if (vType < 0) {
        st.remove(p, mapId, Date.now());
        return;
      }
      const num = vType === T_NUMBER ? readF64(buf, vOff) : 0;
      if (st.put(p, mapId, vType, vType === T_NUMBER ? null : buf.subarray(vOff, vOff + vLen), vLen, num, vExp) < 0) {
        throw new MemoryFullError('memory budget exhausted and nothing left to evict (replica)');
      }
    };
    const ok = (): void => {
      if (!peer.isOpen) return;
      const w = peer.room(5);
      w.u8(R_OK);
      w.u32(id);
    };
    const res = this.records.serial(p, apply);
    if (res instanceof Promise) res.then(ok, (e: unknown) => peer.replyError(id, e));
    else ok();
  }

  // ── migration ─────────────────────────────────────────────────────────────────────────────────

  private checkStreams(): void {
    const t = this.table;
    if (t === undefined || this.closed || this.lite) return;
    const me = this.memberId;
    for (let p = 0; p < this.partitions; p++) {
      if (t.owners[p][0] !== me) continue;
      for (const m of t.pending[p]) {
        if (m === me) continue;
        const key = `${p}:${m}`;
        if (this.streamed.has(key)) {
          this.reportSynced(p, m); // again, in case the report or a table was lost
          continue;
        }
        if (this.streaming.has(key)) continue;
        this.streaming.add(key);
        void this.stream(p, m).then(
          () => {
            this.streamed.add(key);
            this.reportSynced(p, m);
          },
          // expected while members come and go (target gone, this member no longer primary): quiet
          (e) => this.log(this.closed || e instanceof RetryableGridError || e instanceof MemberUnreachableError || e instanceof GridClosedError ? 'info' : 'warn', `streaming partition ${p} to ${m} failed; will retry`, e),
        ).finally(() => this.streaming.delete(key));
      }
    }
  }

  private reportSynced(p: number, m: string): void {
    const c = this.coordinatorId();
    if (c === undefined) return;
    if (c === this.memberId) this.onSynced({ p, m }, this.memberId);
    else this.transport.notify(c, 'grid.synced', { p, m });
  }

  private async stream(p: number, to: string): Promise<void> {
    if (this.streamSlots === 0) await new Promise<void>((r) => this.streamQueue.push(r));
    else this.streamSlots--;
    try {
      await this.ensureLink(to);
      const sends = await this.records.withSnapshot(p, (entries) => {
        this.assertPrimary(p);
        const v = this.tableVersion;
        const out: Promise<unknown>[] = [];
        let from = 0;
        do {
          let bytes = 0;
          let end = from;
          while (end < entries.length && (end === from || bytes < SNAPSHOT_CHUNK_BYTES)) bytes += sizeOf(entries[end++]);
          out.push(this.transport.request(to, 'grid.snap', { p, e: entries.slice(from, end), first: from === 0, v }, STREAM_TIMEOUT_MS));
          from = end;
        } while (from < entries.length);
        return out;
      });
      await Promise.all(sends);
    } finally {
      const next = this.streamQueue.shift();
      if (next !== undefined) next();
      else this.streamSlots++;
    }
  }

  private onSnapshot(b: unknown): unknown {
    const { p, e, first, v } = (b ?? {}) as { p?: unknown; e?: unknown; first?: unknown; v?: unknown };
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.partitions || !Array.isArray(e) || typeof v !== 'number') {
      throw new ProtocolError('malformed partition snapshot');
    }
    const max = this.host.store.maxValueBytes;
    const entries: Array<[string, string, RawState]> = e.map((x: unknown) => {
      if (!Array.isArray(x) || x.length !== 3 || typeof x[0] !== 'string' || typeof x[1] !== 'string') throw new ProtocolError('malformed snapshot entry');
      return [x[0], x[1], checkState(x[2], max)];
    });
    for (const [, k] of entries) if (this.records.partitionOf(k) !== p) throw new ProtocolError('snapshot entry of another partition');
    return this.records.serial(p as number, () => {
      if (first === true) this.records.clearPartition(p as number);
      for (const [m, k, s] of entries) this.records.putState(m, k, s);
      return true;
    });
  }

  // ── status ────────────────────────────────────────────────────────────────────────────────────

  private memberStats(): { entries: number; bytesUsed: number; bytesLimit: number } {
    const s = this.host.stats();
    return { entries: s.entries, bytesUsed: s.bytesUsed, bytesLimit: s.bytesLimit };
  }

  /** Members, partitions per member and memory, as `shardgrid status` prints it. */
  async clusterStatus(): Promise<ClusterStatus> {
    const t = this.table;
    const coord = this.coordinatorId();
    const members = await Promise.all(
      this.membership.members().map(async (m) => {
        const { primaries, backups } = ownedBy(t, m.id);
        const row = { id: m.id, url: m.url, lite: m.lite, status: m.status as 'alive' | 'suspect', startedAt: m.startedAt, coordinator: m.id === coord, primaries, backups };
        try {
          const s = m.id === this.memberId ? this.memberStats() : (await this.ensureLink(m.id), await this.transport.request<{ entries: number; bytesUsed: number; bytesLimit: number }>(m.id, 'grid.member-stats', null, 2000));
          return { ...row, entries: s.entries, bytesUsed: s.bytesUsed, bytesLimit: s.bytesLimit };
        } catch (e) {
          return { ...row, error: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    return { self: this.memberId, tableVersion: this.tableVersion, partitions: this.partitions, backups: this.backups, migrating: migrating(t), members };
  }
}

const EMPTY: ReadonlySet<string> = new Set();

/** Backups and pending copies of p, other than `self`. */
function copiesOf(t: PartitionTable, p: number, self: string): string[] {
  const out: string[] = [];
  for (const m of t.owners[p]) if (m !== self) out.push(m);
  for (const m of t.pending[p]) if (m !== self && !out.includes(m)) out.push(m);
  return out;
}

function splitKey(k: string): [number, string] {
  const i = k.indexOf(':');
  return [Number(k.slice(0, i)), k.slice(i + 1)];
}

function sizeOf(e: RawEntry): number {
  const v = e[2][1];
  return 64 + e[0].length + e[1].length * 3 + (typeof v === 'string' ? v.length * 3 : typeof v === 'number' ? 8 : v.length);
}
