/**
 * ClusterNode: this process as a member of a cluster (native-notes.md, "Cluster").
 *
 * - Membership (SWIM, membership.ts) over the authenticated transport (transport/): the failure
 *   *detector* only.
 * - Metadata (metadata/): the Raft group of the data members decides joins, removals and every
 *   partition table; its leader is the coordinator and grants primary leases. Table version =
 *   log index; epochs[p] = index of the entry that last changed p's primary.
 * - Routing: RoutedMap asks `route(p, …)`; the partition's primary runs the operation on its own
 *   shared memory, under its lease (checked by every operation), and replicates the key's
 *   resulting state to every backup and pending copy before the operation resolves
 *   (records.ts explains why states, not operations). A copy applies a replicated write or a
 *   snapshot only from the primary of its own table at the same epoch. A copy the primary cannot
 *   reach is reported to the leader, and the write waits until a committed table dropped it.
 * - Migration: a primary streams each partition to the members pending for it (a snapshot taken
 *   under the partition lock, sent on the same ordered connection as replicated writes), then
 *   reports it synced; the leader makes the copy an owner in the next table.
 * - Failover: a dead member is removed by one log entry that also removes it from every owner
 *   list; the first backup of each of its partitions is primary at that entry's epoch, and serves
 *   once the dead member's lease surely ended. A member that learns it was removed stops
 *   serving, drops its data and rejoins under a new id.
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import type { ResolvedClusterOptions } from '../config.js';
import {
  GridClosedError, GridError, InvalidOptionError, KeyTooLargeError, MemberUnreachableError, MemoryFullError, PartitionMovedError, PartitionUnavailableError,
  ProtocolError, RetryableGridError, TimeoutError, ValueTooLargeError,
} from '../errors.js';
import { isTable, migrating, ownedBy, type PartitionTable } from '../ring/table.js';
import { T_NUMBER } from '../storage/layout.js';
import { READ_SPIN_LIMIT, type ShardStore } from '../storage/store.js';
import { ABSENT, FastWriter, R_OK, R_STATE, R_STATES, STATE_HEAD, STATES_HEAD, VALUE_HEAD, readF64, type FastMap, type FastReader } from '../transport/fast.js';
import { Transport, type FastPeer, type LogFn } from '../transport/transport.js';
import { RepCall, Shipment, rawAt, rawSize, sendRep, writeRaw, type KeySource } from './fast-ops.js';
import { Dedupe, isRequestId, parseDedupeEntries } from './dedupe.js';
import { Membership, type MemberInfo } from './membership.js';
import { Metadata } from './metadata/metadata.js';
import { Records, checkState, type RawEntry, type RawState } from './records.js';
import { CLUSTER_STATUS_REQUEST, type ClusterStatus } from './status.js';

/** How long an operation keeps retrying a moved partition or an unreachable primary. */
export const RETRY_DEADLINE_MS = 15_000;
/** Members re-check streams and sync reports this often. */
const TICK_MS = 500;
/** A write whose copy missed it waits this long for a committed table that dropped the copy. */
const DROP_WAIT_MS = 10_000;
/** A copy that has not applied the current epoch yet gets the write again this many times (10, 20, 40 … 200 ms apart). */
const COPY_CATCH_UP_TRIES = 16;
/** A new member waits this long to be admitted by the metadata leader. */
const ADMIT_MS = 15_000;
/**
 * Test-only negative control (never set it in production): primaries serve without checking their
 * lease, and copies apply replicated writes and snapshots without the epoch fence, as before the
 * fencing work. The fault harness must catch it.
 */
const UNFENCED = process.env.SHARDGRID_UNSAFE_UNFENCED === '1';
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
  memberId: string;
  readonly lite: boolean;
  readonly backups: number;
  readonly partitions: number;
  readonly records: Records;
  /** Results of non-idempotent requests by request id, per partition (dedupe.ts). */
  readonly dedupe: Dedupe;
  private readonly host: ClusterHost;
  private readonly opts: ResolvedClusterOptions;
  private readonly log: LogFn;
  private transport!: Transport;
  private membership!: Membership;
  private meta!: Metadata;
  private table: PartitionTable | undefined;
  private tableWaiters: Array<() => void> = [];
  /** Writes waiting for a table that dropped a copy they could not reach. */
  private dropWaiters: Array<(t: PartitionTable | undefined) => boolean> = [];
  private closed = false;
  /** Set from a removal until the old identity is torn down: nothing is served, no table applied. */
  private restarting = false;
  /** Set while the rejoin loop runs (a second removal meanwhile starts nothing). */
  private rejoining = false;
  private timer: NodeJS.Timeout | undefined;
  /** Primary: streams running ("p:member:epoch") and done (to re-report until the table moves on). */
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
    this.dedupe = new Dedupe(host.store.partitions);
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
    try {
      // only a member started without seeds founds a cluster
      await this.begin([...o.seeds], o.seeds.length === 0);
    } catch (e) {
      await this.transport.close();
      throw e;
    }
  }

  /** Joins (or starts) the cluster with the transport already listening: membership, metadata, a table. */
  private async begin(seeds: string[], mayFound: boolean): Promise<void> {
    const t = this.transport;
    t.handle('grid.rep', (b, from) => this.onReplicate(b, from));
    t.handle('grid.snap', (b, from) => this.onSnapshot(b, from));
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
    // a data member takes gossip about new members only from data members of its log (or from the
    // new member itself); a lite member, which has no log, from anyone it already knows
    this.membership = new Membership(t, { id: this.memberId, url: t.url, startedAt: Date.now(), lite: this.lite }, {
      seeds,
      vouches: (from) => (this.lite ? this.membership.statusOf(from) !== undefined : this.meta.state.members.has(from)),
    });
    const m = this.membership;
    const meta = new Metadata(
      {
        memberId: this.memberId,
        url: t.url,
        partitions: this.partitions,
        backups: this.backups,
        transport: t,
        log: this.log,
        swimStatus: (id) => m.statusOf(id),
        liteMembers: () => m.members().filter((x) => x.lite).map((x) => x.id),
      },
      this.lite,
    );
    this.meta = meta;
    meta.on('table', (tb: PartitionTable) => this.applyTable(tb));
    meta.on('removed', () => this.removed('the metadata leader removed this member'));
    meta.on('lost', (parts: number[]) => {
      this.log('error', `partition(s) ${parts.slice(0, 20).join(', ')}${parts.length > 20 ? ', …' : ''} lost every copy (more failures than backups: ${this.backups}); their data is gone`);
      this.emit('partition-lost', parts);
    });
    m.on('member-joined', (info: MemberInfo) => this.emit('member-joined', info));
    m.on('member-left', (info: MemberInfo, reason: string) => this.emit('member-left', info, reason));
    // SWIM's verdict on this member is only a suspicion (it refutes it); removal is the log's decision
    m.on('declared-dead', () => this.log('info', 'the other members declared this member dead; refuting (the metadata log decides removals)'));
    try {
      await m.start();
      const others = () => m.members().filter((x) => !x.lite && x.id !== this.memberId).map((x) => x.id);
      if (this.lite) {
        meta.start(false);
        await this.fetchTable(others);
      } else {
        // a member given seeds never founds a cluster of its own (two clusters would never merge):
        // it keeps asking to be admitted until it is, or fails
        const bootstrap = mayFound && others().length === 0;
        meta.start(bootstrap);
        if (!bootstrap) await meta.join(others, ADMIT_MS);
        await this.waitTable(ADMIT_MS);
      }
    } catch (e) {
      meta.close();
      m.stop();
      throw e;
    }
    this.timer = setInterval(() => this.tick(), TICK_MS);
    this.timer.unref();
  }

  /**
   * This member was removed from the cluster (declared dead while paused or cut off, or removed
   * by the leader): it stops serving at once, drops every partition it held, and joins again
   * under a new id, with no data (native-notes.md, "Removed members").
   */
  private removed(why: string): void {
    if (this.closed || this.restarting || this.rejoining) return;
    this.restarting = true;
    this.rejoining = true;
    this.log('warn', `${why}: dropping all partitions and rejoining under a new id`);
    this.meta.lease.revoke();
    this.table = undefined;
    this.peerCache = [];
    const st = this.host.store;
    for (let p = 0; p < this.partitions; p++) st.setPrimaryHere(p, false);
    for (const w of this.dropWaiters.splice(0)) w(undefined);
    for (const w of this.tableWaiters.splice(0)) w();
    this.dedupe.clearAll();
    void (async () => {
      // every data member the log and SWIM ever told us of, whatever SWIM thinks of them now (a
      // member that was paused sees everyone else as dead when it resumes)
      const seeds = new Set<string>(this.opts.seeds);
      for (const x of this.meta.state.members.values()) if (x.id !== this.memberId) seeds.add(x.url);
      for (const x of this.membership.members()) if (x.id !== this.memberId && !x.lite) seeds.add(x.url);
      seeds.delete(this.transport.url);
      clearInterval(this.timer);
      this.meta.close();
      this.membership.stop();
      const old = this.transport;
      const oldPort = old.boundPort; // a rejoin keeps the address others (and an advertised proxy) know
      this.streaming.clear();
      this.streamed.clear();
      for (let p = 0; p < this.partitions; p++) await Promise.resolve(this.records.serial(p, () => this.records.clearPartition(p))).catch(() => undefined);
      await old.close();
      if (this.closed) return;
      const o = this.opts;
      for (let attempt = 0; !this.closed; attempt++) {
        // a new id for every attempt: a failed attempt may have been seen (and declared dead) already
        this.memberId = `${this.lite ? 'lite' : 'm'}-${randomBytes(6).toString('hex')}`;
        this.restarting = false; // the new identity applies its tables and serves once admitted
        try {
          this.transport = await Transport.listen({ host: o.host, port: o.port === 0 ? oldPort : o.port, advertise: o.advertise, sourceAddress: o.sourceAddress, secret: o.secret!, memberId: this.memberId, log: this.log, tls: o.tls });
          await this.begin([...seeds], false);
          this.log('warn', `rejoined the cluster as ${this.memberId}`);
          this.emit('rejoined', this.memberId);
          break;
        } catch (e) {
          this.log('warn', `rejoining failed (attempt ${attempt + 1}); retrying`, e);
          clearInterval(this.timer);
          this.meta?.close();
          this.membership?.stop();
          await this.transport?.close().catch(() => undefined);
          await sleep(Math.min(500 * 2 ** attempt, 5000));
        }
      }
      this.rejoining = false;
    })();
  }

  /** Leaves gracefully: tells the others (they promote this member's backups at once) and closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    for (const w of this.tableWaiters.splice(0)) w();
    for (const w of this.dropWaiters.splice(0)) w(undefined);
    for (let p = 0; p < this.partitions; p++) this.host.store.setPrimaryHere(p, false);
    try {
      // the leader removes us in one entry (our backups are primaries at once), then we stop
      if (!this.restarting && !this.rejoining) await this.meta.leave();
      this.meta.close();
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
    const t = this.meta.state.members;
    if (!this.lite) return [...t.keys()];
    return this.membership
      .members()
      .filter((m) => !m.lite)
      .map((m) => m.id);
  }

  /** Whether this member is the metadata Raft leader (the coordinator). */
  isCoordinator(): boolean {
    return this.meta.isLeader();
  }

  private tick(): void {
    if (this.closed || this.restarting) return;
    this.checkStreams();
  }

  /** A lite member's first table: asked from the data members until one answers. */
  private async fetchTable(ids: () => string[]): Promise<void> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    while (this.table === undefined) {
      for (const id of ids()) {
        try {
          await this.ensureLink(id);
          const b = await this.transport.request(id, 'grid.table?', null, 2000);
          if (b !== null && isTable(b, this.partitions)) this.meta.setLiteTable(b);
          if (this.table !== undefined) return;
        } catch {
          // starting or gone: try the next one
        }
      }
      if (Date.now() > deadline) throw new TimeoutError(`no partition table from the cluster within ${RETRY_DEADLINE_MS} ms`);
      await sleep(100);
    }
  }

  /** A data member waits for its first table (the log's, once it was admitted). */
  private async waitTable(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.table === undefined) {
      if (this.closed) throw new GridClosedError('closed while joining');
      if (Date.now() > deadline) throw new TimeoutError(`no partition table from the metadata log within ${ms} ms`);
      await this.tableChange(100);
    }
  }

  private applyTable(t: PartitionTable): void {
    if (this.closed || this.restarting || (this.table !== undefined && t.version <= this.table.version)) return;
    this.table = t;
    this.peerCache = [];
    for (const w of this.tableWaiters.splice(0)) w();
    if (this.dropWaiters.length > 0) this.dropWaiters = this.dropWaiters.filter((w) => !w(t));
    const me = this.memberId;
    const st = this.host.store;
    // other threads of this process read primaries straight from shared memory (runtime/forward.ts)
    for (let p = 0; p < this.partitions; p++) st.setPrimaryHere(p, t.owners[p][0] === me);
    for (let p = 0; p < this.partitions; p++) {
      // a copy this member no longer holds for anyone: drop it (a later pending copy starts from a reset anyway)
      if (!t.owners[p].includes(me) && !t.pending[p].includes(me)) {
        this.dedupe.clear(p);
        if (st.countIn(p) > 0) void Promise.resolve(this.records.serial(p, () => this.records.clearPartition(p))).catch(() => undefined);
      }
    }
    for (const k of this.streamed) {
      const [p, m, e] = splitKey(k);
      if (!t.pending[p].includes(m) || t.owners[p][0] !== me || t.epochs[p] !== e) this.streamed.delete(k);
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

  /** Whether this member may serve p now: its primary, under a lease that covers p's epoch. */
  serves(p: number): boolean {
    const t = this.table;
    return t !== undefined && t.owners[p][0] === this.memberId && !this.closed && !this.restarting && (UNFENCED || this.meta.lease.covers(t.epochs[p]));
  }

  /**
   * Throws the retryable error a caller gets when this member may not serve p now: it is not p's
   * primary in its table, or its lease does not cover p's epoch (lapsed after a pause, or an older
   * primary's lease may still run). Called by every operation on the primary, on its own path:
   * after a pause the buffered I/O runs before any timer could have noticed.
   */
  assertPrimary(p: number): void {
    if (this.closed) throw new GridClosedError('member is closing');
    const t = this.table;
    if (t === undefined || t.owners[p][0] !== this.memberId || this.restarting) {
      throw new PartitionMovedError(`partition ${p} is not primary on member ${this.memberId}`, { partition: p, version: this.tableVersion });
    }
    if (!UNFENCED && !this.meta.lease.covers(t.epochs[p])) {
      throw new PartitionUnavailableError(`member ${this.memberId} holds no lease for partition ${p} at epoch ${t.epochs[p]} now`, { partition: p, epoch: t.epochs[p] });
    }
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
        if (to === this.memberId) {
          this.assertPrimary(p); // the lease, for reads that do not check it themselves
          return await local();
        }
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
            if (to === this.memberId) {
              for (const i of idx) this.assertPrimary(parts[i]);
              r = await local(idx);
            }
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
    if (this.lite && to !== undefined && v > this.tableVersion) {
      // the primary we asked knows a newer table: a lite member takes it from there (a data
      // member's tables come from its own log, which is catching up)
      try {
        const b = await this.transport.request(to, 'grid.table?', null, 1000);
        if (b !== null && isTable(b, this.partitions)) this.meta.setLiteTable(b);
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
  replicate(mapName: string, key: string, done?: Done): Promise<unknown> | undefined {
    if (this.table === undefined) return undefined;
    const r = this.records.withState(mapName, key, (p, s) => {
      this.assertPrimary(p); // read and send in the same run: still the primary when shipped
      const targets = copiesOf(this.table!, p, this.memberId);
      if (targets.length === 0) return undefined;
      return new Promise<void>((resolve, reject) => {
        const ship = new Shipment((err) => (err === undefined ? resolve() : reject(err)));
        const k: KeySource = { s: key, len: Buffer.byteLength(key, 'utf8') };
        for (const to of targets) this.ship(ship, p, to, mapName, k, s, undefined, 0, 0, 0, 0, 0, done);
        ship.done();
      });
    });
    return r as Promise<unknown> | undefined;
  }

  /**
   * Sends one copy of partition p the key's state (a RawState, or a STATE of a received frame at
   * b[off..off+len) with its type and expiry) as a FAST REP stamped with p's epoch, counted in
   * `ship`; a generic grid.rep when it does not fit a FAST record.
   */
  private ship(ship: Shipment, p: number, to: string, map: string, key: KeySource, raw: RawState | undefined, b: Buffer | undefined, type: number, exp: number, off: number, len: number, attempt = 0, done?: Done): void {
    const peer = this.transport.peer(to);
    const epoch = this.table!.epochs[p];
    if (peer === undefined) {
      this.copyMissed(ship, p, to, epoch);
      return;
    }
    ship.add();
    const failed = (e: unknown): unknown => this.copyFailed(ship, p, to, epoch, e, map, key, attempt, done);
    // a write with a request id ships its dedupe record with the state: in the REP when the
    // result is undefined (set), else (a result to record) as a generic grid.rep
    if ((done === undefined || done[1] === undefined) && sendRep(peer, map, epoch, key, done?.[0], raw, b, type, exp, off, len, new RepCall(ship, failed))) return;
    const k = key.s ?? Buffer.from(key.b!.subarray(key.off, key.off! + key.len)).toString('utf8');
    const s = raw !== undefined ? raw : rawAt(b!, type, exp, off, len);
    const body = done === undefined ? { m: map, k, s, v: epoch } : { m: map, k, s, v: epoch, r: done[0], x: done[1] };
    this.transport.request(to, 'grid.rep', body).then(
      () => ship.done(),
      (e: unknown) => ship.done(failed(e)),
    );
  }

  /**
   * The copy has not applied the table of this epoch yet (it lags the log by a moment, typically
   * right after a hand-over): ship the key again to it shortly, read afresh then (never the old
   * state: a newer one may have been shipped meanwhile, and the connection keeps order), instead
   * of failing a write that this primary already applied (which a retry would apply twice).
   */
  private reship(ship: Shipment, p: number, to: string, map: string, key: KeySource, epoch: number, attempt: number, done: Done | undefined): void {
    ship.add();
    const k = key.s ?? Buffer.from(key.b!.subarray(key.off, key.off! + key.len)).toString('utf8');
    setTimeout(() => {
      const t = this.table;
      if (this.closed || t === undefined || t.owners[p][0] !== this.memberId || t.epochs[p] !== epoch) {
        ship.done(new PartitionMovedError(`partition ${p} moved while a copy caught up`, { partition: p, version: t?.version ?? 0 }));
        return;
      }
      if (!t.owners[p].includes(to) && !t.pending[p].includes(to)) {
        ship.done(); // no longer a copy: nothing to wait for
        return;
      }
      try {
        const r = this.records.withState(map, k, (_p, s) => {
          this.ship(ship, p, to, map, { s: k, len: Buffer.byteLength(k, 'utf8') }, s, undefined, 0, 0, 0, 0, attempt + 1, done);
          ship.done();
        });
        if (r instanceof Promise) r.then(undefined, (e: unknown) => ship.done(e));
      } catch (e) {
        ship.done(e);
      }
    }, Math.min(10 * 2 ** attempt, 200)).unref();
  }

  /**
   * A copy did not apply a replicated write: the error that fails the write (the copy refused it
   * for a fencing reason, which route() retries), or undefined when the copy was merely not
   * reached — then the write waits until a committed table dropped that copy (copyMissed).
   */
  private copyFailed(ship: Shipment, p: number, to: string, epoch: number, e: unknown, map: string, key: KeySource, attempt: number, done: Done | undefined): unknown {
    if (e instanceof PartitionUnavailableError && attempt < COPY_CATCH_UP_TRIES) {
      this.reship(ship, p, to, map, key, epoch, attempt, done);
      return undefined;
    }
    if (e instanceof PartitionMovedError) return e;
    if (e instanceof RetryableGridError) {
      // a copy that never caught up: treat it as one that missed the write
      this.copyMissed(ship, p, to, epoch);
      return undefined;
    }
    if (e instanceof GridError && e.code === 'GRID_ERR_CLOSED' && this.closed) return e;
    this.log('info', `copy of partition ${p} on ${to} missed a write`, e);
    this.copyMissed(ship, p, to, epoch);
    return undefined;
  }

  /**
   * Copy `to` of p missed a write: the write may be acknowledged without it only once a committed
   * table no longer lists it as a copy of p (it is then rebuilt from a snapshot). Until then the
   * write waits; if this member stops being p's primary at this epoch, the write fails with a
   * retryable error instead (its fate is then decided by the new primary's copy).
   */
  private copyMissed(ship: Shipment, p: number, to: string, epoch: number): void {
    ship.add();
    this.meta.reportDrop(p, to, epoch);
    let timer: NodeJS.Timeout | undefined;
    const check = (t: PartitionTable | undefined): boolean => {
      if (t === undefined) {
        clearTimeout(timer);
        ship.done(new PartitionMovedError(`partition ${p}: this member stopped serving it`, { partition: p }));
        return true;
      }
      if (t.owners[p][0] !== this.memberId || t.epochs[p] !== epoch) {
        clearTimeout(timer);
        ship.done(new PartitionMovedError(`partition ${p} moved while a copy was missing`, { partition: p, version: t.version }));
        return true;
      }
      if (!t.owners[p].includes(to) && !t.pending[p].includes(to)) {
        clearTimeout(timer);
        ship.done();
        return true;
      }
      // still listed: a pending copy that missed a write just streams again; an owner needs the drop
      return false;
    };
    if (check(this.table)) return;
    this.dropWaiters.push(check);
    timer = setTimeout(() => {
      const i = this.dropWaiters.indexOf(check);
      if (i >= 0) this.dropWaiters.splice(i, 1);
      ship.done(new TimeoutError(`partition ${p}: copy ${to} missed a write and no table dropped it within ${DROP_WAIT_MS} ms`, { partition: p, member: to }));
    }, DROP_WAIT_MS);
    timer.unref();
  }

  private onReplicate(b: unknown, from: string): unknown {
    const { m, k, s, v, r, x } = (b ?? {}) as { m?: unknown; k?: unknown; s?: unknown; v?: unknown; r?: unknown; x?: unknown };
    if (typeof m !== 'string' || typeof k !== 'string' || typeof v !== 'number' || (r !== undefined && !isRequestId(r))) throw new ProtocolError('malformed replicated write');
    const state = checkState(s, this.host.store.maxValueBytes);
    const p = this.records.partitionOf(k);
    this.checkCopy(p, v, from);
    return this.records.serial(p, () => {
      this.checkCopy(p, v, from);
      this.records.putState(m, k, state);
      if (r !== undefined) this.dedupe.put(p, r as string, x);
      return true;
    });
  }

  /**
   * The fence of every replicated write and snapshot: a copy applies one only from the primary of
   * its own current table, at that table's epoch for the partition, and only while it is itself a
   * copy (owner or pending) of it. A sender at an older epoch is refused for good
   * (PartitionMovedError); one at a newer epoch means this member has not applied that table yet
   * (PartitionUnavailableError: the primary's write fails and is retried, by then we caught up).
   */
  private checkCopy(p: number, epoch: number, from: string): void {
    if (UNFENCED) return;
    const t = this.table;
    const me = this.memberId;
    if (t === undefined || epoch > t.epochs[p]) {
      throw new PartitionUnavailableError(`partition ${p}: copy ${me} has not applied epoch ${epoch} yet`, { partition: p, epoch });
    }
    if (epoch < t.epochs[p] || t.owners[p][0] !== from || t.owners[p][0] === me || (!t.owners[p].includes(me) && !t.pending[p].includes(me))) {
      throw new PartitionMovedError(`partition ${p} moved (epoch ${t.epochs[p]}, table ${t.version})`, { partition: p, version: t.version });
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
    const rid = r.rid();
    let again = false;
    const write = (): void => {
      this.assertPrimary(p);
      if (rid !== undefined && this.dedupe.has(p, rid)) {
        // a retry of a SET this partition already applied (its reply was lost): applying it again
        // could undo a later write; it is answered once the copies hold the key's state again
        again = true;
        return;
      }
      st.setKeyBytes(buf, keyOff, keyLen, mapId);
      const num = vType === T_NUMBER ? readF64(buf, vOff) : 0;
      if (st.put(p, mapId, vType, vType === T_NUMBER ? null : buf.subarray(vOff, vOff + vLen), vLen, num, vExp) < 0) {
        throw new MemoryFullError('memory budget exhausted and nothing left to evict');
      }
      if (rid !== undefined) this.dedupe.put(p, rid, undefined);
      const targets = copiesOf(this.table!, p, this.memberId);
      const ship = new Shipment(reply);
      if (targets.length > 0) {
        const k: KeySource = { b: buf, off: keyOff, len: keyLen };
        const done: Done | undefined = rid === undefined ? undefined : [rid, undefined];
        for (const to of targets) this.ship(ship, p, to, name, k, undefined, buf, vType, vExp, vOff, vLen, 0, done);
      }
      ship.done();
    };
    const reply = (err: unknown): void => {
      if (!peer.isOpen) return;
      if (err !== undefined) {
        peer.replyError(id, err);
        return;
      }
      const w = peer.room(5);
      w.u8(R_OK);
      w.u32(id);
    };
    const resend = (): void => {
      const key = buf.toString('utf8', keyOff, keyOff + keyLen);
      new Promise((ok) => ok(this.replicate(name, key, [rid!, undefined]))).then(() => reply(undefined), reply);
    };
    const res = this.records.serial(p, write);
    if (res instanceof Promise) res.then(() => (again ? resend() : undefined), (e: unknown) => peer.replyError(id, e));
    else if (again) resend();
  }

  /** A replicated write (REP) on a copy: fenced by table version, applied in arrival order per partition. */
  private serveRep(peer: FastPeer, r: FastReader): void {
    const st = this.host.store;
    const mapId = this.fastMapId(r.map);
    if (st.setKeyBytes(r.buf, r.keyOff, r.keyLen, mapId) < 0) throw new ProtocolError('replicated key is over maxKeyBytes');
    const p = st.kpart;
    this.checkCopy(p, r.version, peer.id);
    if (r.vLen > st.maxValueBytes) throw new ValueTooLargeError(`replicated value is ${r.vLen} bytes, over maxValueBytes (${st.maxValueBytes})`, { size: r.vLen, limit: st.maxValueBytes });
    const { buf, id, keyOff, keyLen, vType, vExp, vOff, vLen } = r;
    const from = peer.id;
    const epoch = r.version;
    const rid = r.rid();
    const apply = (): void => {
      this.checkCopy(p, epoch, from);
      if (rid !== undefined) this.dedupe.put(p, rid, undefined);
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
        const e = t.epochs[p];
        const key = `${p}:${m}:${e}`;
        if (this.streamed.has(key)) {
          this.meta.reportSynced(p, m, e); // again, in case the report or a table was lost
          continue;
        }
        if (this.streaming.has(key)) continue;
        this.streaming.add(key);
        void this.stream(p, m).then(
          () => {
            // still the primary at the same epoch, with m still pending: the copy is complete
            const now = this.table;
            if (now === undefined || now.owners[p][0] !== me || now.epochs[p] !== e || !now.pending[p].includes(m)) return;
            this.streamed.add(key);
            this.meta.reportSynced(p, m, e);
          },
          // expected while members come and go (target gone, this member no longer primary): quiet
          (e) => this.log(this.closed || e instanceof RetryableGridError || e instanceof MemberUnreachableError || e instanceof GridClosedError ? 'info' : 'warn', `streaming partition ${p} to ${m} failed; will retry`, e),
        ).finally(() => this.streaming.delete(key));
      }
    }
  }

  private async stream(p: number, to: string): Promise<void> {
    if (this.streamSlots === 0) await new Promise<void>((r) => this.streamQueue.push(r));
    else this.streamSlots--;
    try {
      await this.ensureLink(to);
      const sends = await this.records.withSnapshot(p, (entries) => {
        this.assertPrimary(p);
        const v = this.table!.epochs[p];
        const out: Promise<unknown>[] = [];
        let from = 0;
        do {
          let bytes = 0;
          let end = from;
          while (end < entries.length && (end === from || bytes < SNAPSHOT_CHUNK_BYTES)) bytes += sizeOf(entries[end++]);
          const body = from === 0 ? { p, e: entries.slice(from, end), first: true, v, d: this.dedupe.entries(p) } : { p, e: entries.slice(from, end), first: false, v };
          out.push(this.transport.request(to, 'grid.snap', body, STREAM_TIMEOUT_MS));
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

  /** A chunk of a partition snapshot, fenced as replicated writes are (checkCopy). */
  private onSnapshot(b: unknown, from: string): unknown {
    const { p, e, first, v, d } = (b ?? {}) as { p?: unknown; e?: unknown; first?: unknown; v?: unknown; d?: unknown };
    const done = parseDedupeEntries(d);
    if (!Number.isInteger(p) || (p as number) < 0 || (p as number) >= this.partitions || !Array.isArray(e) || typeof v !== 'number' || done === undefined) {
      throw new ProtocolError('malformed partition snapshot');
    }
    const max = this.host.store.maxValueBytes;
    const entries: Array<[string, string, RawState]> = e.map((x: unknown) => {
      if (!Array.isArray(x) || x.length !== 3 || typeof x[0] !== 'string' || typeof x[1] !== 'string') throw new ProtocolError('malformed snapshot entry');
      return [x[0], x[1], checkState(x[2], max)];
    });
    for (const [, k] of entries) if (this.records.partitionOf(k) !== p) throw new ProtocolError('snapshot entry of another partition');
    this.checkCopy(p as number, v, from);
    return this.records.serial(p as number, () => {
      this.checkCopy(p as number, v, from); // again: a table may have been applied while this waited for the lock
      if (first === true) {
        this.records.clearPartition(p as number);
        this.dedupe.clear(p as number);
        for (const [id, res, at] of done) this.dedupe.put(p as number, id, res, at);
      }
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
    const coord = this.meta.leaderId;
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
    const lost: number[] = [];
    if (t !== undefined) for (let p = 0; p < this.partitions; p++) if (t.lost[p] > 0) lost.push(p);
    const d = this.meta.describe();
    return { self: this.memberId, tableVersion: this.tableVersion, partitions: this.partitions, backups: this.backups, migrating: migrating(t), members, leader: d.leader, term: d.term, lostPartitions: lost, metadata: { role: d.role, voters: d.voters, learners: d.learners, leaseMs: d.leaseMs, safe: d.safe } };
  }
}

/** A request id and the result it produced (dedupe.ts). */
type Done = [string, unknown];

/** Backups and pending copies of p, other than `self`. */
function copiesOf(t: PartitionTable, p: number, self: string): string[] {
  const out: string[] = [];
  for (const m of t.owners[p]) if (m !== self) out.push(m);
  for (const m of t.pending[p]) if (m !== self && !out.includes(m)) out.push(m);
  return out;
}

/** "p:member:epoch" → [p, member, epoch]. */
function splitKey(k: string): [number, string, number] {
  const i = k.indexOf(':');
  const j = k.lastIndexOf(':');
  return [Number(k.slice(0, i)), k.slice(i + 1, j), Number(k.slice(j + 1))];
}

function sizeOf(e: RawEntry): number {
  const v = e[2][1];
  return 64 + e[0].length + e[1].length * 3 + (typeof v === 'string' ? v.length * 3 : typeof v === 'number' ? 8 : v.length);
}
