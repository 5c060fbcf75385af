/**
 * ClusterNode: this process as a member of a cluster (native-notes.md, "Cluster"): its lifecycle
 * (start, removal and rejoin, close) and the composition of its layers, which call one way:
 * routed-map.ts (map API) → routing.ts → replicas.ts (partition copies) → records.ts (shared
 * memory); fast-serve.ts and migration.ts beside routing, over replicas; metadata/ (Raft + table)
 * below them all, importing none of them. This file only wires them and applies tables.
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
import { isMemberUrl, type ResolvedClusterOptions } from '../config.js';
import { GridClosedError, GridError, InvalidArgumentError, InvalidOptionError, MemberUnreachableError, ProtocolError, TimeoutError } from '../errors.js';
import { isTable, lastCopiesOf, migrating, migrations, namedIn, ownedBy, type PartitionTable } from '../ring/table.js';
import type { ShardStore } from '../storage/store.js';
import { Transport, type LogFn } from '../transport/transport.js';
import { memberIdFor } from '../transport/identity.js';
import { MAX_ID_CHARS, safeText } from '../transport/wire.js';
import { createLog, type Logger } from '../log.js';
import { RETRY_DEADLINE_MS, sleep, type MemberContext } from './context.js';
import { FastService } from './fast-serve.js';
import { Membership, type MemberInfo } from './membership.js';
import { Metadata } from './metadata/metadata.js';
import { Migration } from './migration.js';
import { Replicas } from './replicas.js';
import { Router } from './routing.js';
import { CLUSTER_STATUS_REQUEST, isCpStatus, type ClusterMemberStatus, type ClusterStatus } from './status.js';

export { RETRY_DEADLINE_MS } from './context.js';

/** Members re-check streams and sync reports this often. */
const TICK_MS = 500;
/** A new member waits this long to be admitted by the metadata leader. */
const ADMIT_MS = 15_000;
/** A graceful leave waits at most this long for the partitions only this member holds to be copied elsewhere. */
const HANDOVER_MS = 30_000;
/** A leaving metadata leader waits at most this long for another voter to take the lead (Metadata.handOverLead). */
const HAND_OVER_LEAD_MS = 5000;
/** A lite member whose table shows copies in flight asks a data member for a newer table at most this often. */
const LITE_REFRESH_MS = 1000;
/** Migrating partitions a cluster status lists (ClusterStatus.migrations); `migrating` counts them all. */
const MIGRATIONS_SHOWN = 32;
/** How long a member's dial of a joiner's advertised url may take (`grid.reach?`, checkAdvertise). */
const REACH_MS = 2000;
/** The request a joiner sends a seed: "dial me back at the url I advertise". */
const REACH_REQUEST = 'grid.reach?';
/** The notice a member sends one it could not dial at its advertised url (checkPeersAdvertised). */
const UNREACHED_NOTICE = 'grid.unreached';
/**
 * Dials back for `grid.reach?` a member makes at once, and starts per REACH_MS, over all peers: a
 * secret holder asking under 40 ids at once made 40 dials at once, and one asking back to back
 * made ~1,500 dials a second at whatever url its HELLO named (a third party's). Past either, the
 * asker is told the member is busy ({busy: true}) and its advertise goes unchecked by this seed.
 */
const REACH_AT_ONCE = 4;
const REACH_PER_WINDOW = 16;
/** Members a new member dials back at their advertised urls, at most (the first ones by start time). */
const PEERS_CHECKED = 32;
/** A member logs a peer's UNREACHED_NOTICE at most this often. */
const UNREACHED_LOG_MS = 10_000;
/** SHARDGRID_TRACE=1: log every cluster event (info level included) to stderr, for fault diagnosis. */
const TRACE = process.env.SHARDGRID_TRACE === '1';

export interface ClusterHost {
  readonly store: ShardStore;
  readonly lockTimeout: number;
  stats(): { entries: number; bytesUsed: number; bytesLimit: number };
}

/** Handlers that run map operations for other members (RoutedMap, in grid.ts). */
export type OpHandler = (body: Record<string, unknown>, from: string) => unknown;

export class ClusterNode extends EventEmitter implements MemberContext {
  memberId: string;
  readonly lite: boolean;
  readonly backups: number;
  readonly partitions: number;
  readonly store: ShardStore;
  /** The layers (see the header): partition copies, routing, migration, FAST service. */
  readonly replicas: Replicas;
  readonly router: Router;
  private readonly migration: Migration;
  private readonly fast: FastService;
  private readonly host: ClusterHost;
  private readonly opts: ResolvedClusterOptions;
  readonly log: LogFn;
  transport!: Transport;
  membership!: Membership;
  meta!: Metadata;
  closed = false;
  /** Set from a removal until the old identity is torn down: nothing is served, no table applied. */
  restarting = false;
  /** Set while the rejoin loop runs (a second removal meanwhile starts nothing). */
  private rejoining = false;
  /** The id of the current rejoin attempt was removed: the next attempt takes a new one. */
  private removedAgain = false;
  /** The ids this process had before it was removed and rejoined (the last 8). */
  private formerIds: string[] = [];
  private timer: NodeJS.Timeout | undefined;
  /** Lite member: when refreshLiteTable last asked for a table. */
  private liteRefreshedAt = 0;
  private opHandler: OpHandler | undefined;

  constructor(host: ClusterHost, opts: ResolvedClusterOptions, logger?: Logger) {
    super();
    this.host = host;
    this.opts = opts;
    this.lite = opts.lite;
    this.backups = opts.backups;
    this.store = host.store;
    this.partitions = host.store.partitions;
    this.memberId = memberIdFor(`${opts.lite ? 'lite' : 'm'}-${randomBytes(6).toString('hex')}`, opts.tls);
    this.replicas = new Replicas(this, host.lockTimeout);
    this.router = new Router(this, this.replicas);
    this.migration = new Migration(this, this.replicas);
    this.fast = new FastService(this, this.replicas);
    // SHARDGRID_TRACE=1 without a logger: every line, info included, to stderr with a timestamp
    // (the fault harness sets it); otherwise options.logger, else warnings as process warnings
    const sink = createLog(logger, () => `shardgrid ${this.memberId}`, 'SHARDGRID_CLUSTER');
    this.log =
      TRACE && logger === undefined
        ? (level, message, err) => process.stderr.write(`${new Date().toISOString()} ${this.memberId} ${level}: ${message}${err instanceof Error ? `: ${err.message}` : ''}\n`)
        : sink;
  }

  get url(): string {
    return this.transport.url;
  }

  /** The url of the socket itself (bind address, bound port): differs from `url` with options.cluster.advertise. */
  get boundUrl(): string {
    return this.transport.boundUrl();
  }

  get tableVersion(): number {
    return this.replicas.version;
  }

  /** @internal for stats and tests: the table this member applies now. */
  get currentTable(): PartitionTable | undefined {
    return this.replicas.table;
  }

  onOp(fn: OpHandler): void {
    this.opHandler = fn;
  }

  // ── lifecycle ─────────────────────────────────────────────────────────────────────────────────

  /**
   * Listens, then joins (or founds) the cluster. `signal` (createGrid's options.signal) stops a
   * join under way: abortStart ends its loops and closes the transport, so its dials and requests
   * fail at once instead of running to their deadlines (5 s to reach a seed, 15 s to be
   * admitted, 15 s for a table).
   */
  async start(signal?: AbortSignal): Promise<void> {
    const o = this.opts;
    if (o.secret === undefined) throw new InvalidOptionError('options.cluster.secret is required to join a cluster (the CLI also reads SHARDGRID_SECRET)', { option: 'options.cluster.secret' });
    try {
      this.transport = await Transport.listen({ host: o.host, port: o.port, advertise: o.advertise, sourceAddress: o.sourceAddress, secret: o.secret, memberId: this.memberId, log: this.log, tls: o.tls });
    } catch (e) {
      // a port in use or a host that is not this machine's: the option's fault, named as the RESP
      // and metrics servers name theirs (it was GRID_ERR_INVALID_ARGUMENT, naming no option)
      if (!(e instanceof InvalidArgumentError)) throw e;
      const cause = (e.data as { cause?: string } | undefined)?.cause;
      throw new InvalidOptionError(`options.cluster: ${e.message}`, { option: cause === 'EADDRINUSE' || cause === 'EACCES' ? 'options.cluster.port' : 'options.cluster.host' });
    }
    const onAbort = (): void => this.abortStart();
    signal?.addEventListener('abort', onAbort, { once: true });
    if (signal?.aborted === true) this.abortStart();
    try {
      // A seed list may name this member too (one list given to every member): it joins through
      // the others. Only itself: nobody could admit it (it used to wait 15 s for admission).
      const own = new Set([this.transport.url, this.transport.boundUrl()]);
      const seeds = o.seeds.filter((u) => !own.has(u));
      if (o.seeds.length > 0 && seeds.length === 0) {
        throw new InvalidOptionError(
          `options.cluster.seeds names only this member itself (${o.seeds.join(', ')}): a member given seeds joins through them and never founds a cluster; start the first member without seeds`,
          { option: 'options.cluster.seeds' },
        );
      }
      if (o.advertise !== undefined) await this.checkAdvertise(seeds);
      // only a member started without seeds founds a cluster
      await this.begin(seeds, o.seeds.length === 0);
      if (this.startAborted) throw new GridClosedError('closed while joining');
      void this.checkPeersAdvertised();
    } catch (e) {
      await this.transport.close();
      throw e;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /**
   * options.cluster.advertise, checked before this member joins: the first seed that answers dials
   * it back at the url it advertises (`grid.reach?`), as every member will. A url nothing listens
   * on (or another member's) used to join all the same: the joiner's own connections carried
   * everything at first, and the cluster failed to reach it once they dropped. Checked from a
   * peer, not by dialling itself: behind NAT or a proxy a member often cannot reach its own
   * public address while the others can. Not checked: a founding member (nobody to ask), a seed
   * of an older build (GRID_ERR_UNSUPPORTED), no seed answering (the join then fails as before),
   * every seed busy dialling others back (`reach`), and a rejoin after a removal (the url was
   * checked at the start). A start that checked nothing logs a warning saying so, and why.
   *
   * @throws {InvalidOptionError} naming options.cluster.advertise and the url, when the seed could not reach this member there.
   */
  private async checkAdvertise(seeds: readonly string[]): Promise<void> {
    const t = this.transport;
    /** Why each seed did not check it, for the warning when none did. */
    const unchecked: string[] = [];
    for (const seed of seeds) {
      let peer: string;
      let r: unknown;
      try {
        peer = await t.connect(seed, REACH_MS);
        r = await t.request<unknown>(peer, REACH_REQUEST, null, REACH_MS + 1000);
      } catch (e) {
        if (this.startAborted) throw new GridClosedError('closed while joining');
        // a seed down or of an older build: the next one, or nothing checked
        unchecked.push(`${seed}: ${e instanceof GridError ? e.code : 'no answer'}`);
        continue;
      }
      const a = (typeof r === 'object' && r !== null ? r : {}) as { id?: unknown; error?: unknown; busy?: unknown };
      if (a.id === this.memberId) return;
      if (a.busy === true) {
        // the seed made no dial (busy with others): the next one, or nothing checked
        unchecked.push(`${seed}: busy dialling other members back`);
        continue;
      }
      // the seed's text escaped and bounded: a seed sent 500,000 characters with terminal escapes into this error
      const got = typeof a.id === 'string' ? `it leads to member ${safeText(a.id, MAX_ID_CHARS)}, not to this one` : `it got ${typeof a.error === 'string' ? safeText(a.error, 400) : 'no answer'}`;
      throw new InvalidOptionError(
        `options.cluster.advertise: member ${peer} (seed ${seed}) dialled this member at its advertised url ${t.url} and ${got}; ` +
          `every member dials that url, so it must lead to this member, which listens on ${t.boundUrl()} (a proxy in front of it must be up before the member starts)`,
        { option: 'options.cluster.advertise', url: t.url },
      );
    }
    // it joined unchecked without a word when every seed was busy: a bad url then showed only later
    // (a founding member has no seed: the members that join it check it, checkPeersAdvertised)
    if (unchecked.length > 0) this.log(
      'warn',
      `options.cluster.advertise: no seed dialled this member back at its advertised url ${t.url}, so it was not checked (${unchecked.join('; ')}); ` +
        `if it does not lead to this member, which listens on ${t.boundUrl()}, the cluster fails to reach it once the connections it opened drop`,
    );
  }

  /**
   * After its start, a member dials every other member (PEERS_CHECKED at most) at the url it
   * advertises, as its own dials will later, in the background: a member that cannot be reached
   * there (a founding member's advertise is checked by nobody else) gets a warning here and a
   * notice (`grid.unreached`), which it logs too. Only a warning: the fault is the other member's.
   */
  private async checkPeersAdvertised(): Promise<void> {
    const others = this.membership.members().filter((m) => m.id !== this.memberId).slice(0, PEERS_CHECKED);
    for (const m of others) {
      if (this.closed || this.restarting) return;
      let problem: string;
      try {
        const id = await this.transport.probe(m.url, REACH_MS);
        if (id === m.id) continue;
        problem = `it leads to member ${safeText(id, MAX_ID_CHARS)}`; // named by whatever listens there, unauthenticated
      } catch (e) {
        if (this.closed || this.restarting) return;
        problem = e instanceof GridError ? `${e.code}: ${e.message}` : String(e);
      }
      this.log('warn', `member ${m.id} advertises ${m.url}, but this member cannot dial it there (${problem}); the cluster fails to reach it once the connections it opened drop: check its options.cluster.advertise (--advertise)`);
      this.transport.notify(m.id, UNREACHED_NOTICE, { error: problem });
    }
  }

  private unreachedLoggedAt = 0;

  /** A peer's UNREACHED_NOTICE: logged (the peer's text escaped, bounded), at most every UNREACHED_LOG_MS. */
  private onUnreached(b: unknown, from: string): void {
    if (Date.now() - this.unreachedLoggedAt < UNREACHED_LOG_MS) return;
    this.unreachedLoggedAt = Date.now();
    const error = typeof b === 'object' && b !== null ? (b as { error?: unknown }).error : undefined;
    this.log('warn', `member ${from} cannot dial this member at its advertised url ${this.transport.url} (${safeText(error, 200)}): the cluster fails to reach this member once the connections it opened drop; check options.cluster.advertise (--advertise)`);
  }

  /** Peers whose `grid.reach?` is being dialled now (one each: a peer that asks again meanwhile is told so, and no second dial starts). */
  private readonly reaching = new Set<string>();
  /** Dials back started since reachWindowAt (REACH_PER_WINDOW per REACH_MS). */
  private reachStarted = 0;
  private reachWindowAt = 0;

  /**
   * A joiner's `grid.reach?`: dials it at the url it advertised in its HELLO (never a url it sends)
   * and says who answered; `busy` when the dial was not made (one to it under way, or the
   * member's REACH_AT_ONCE / REACH_PER_WINDOW used up): the joiner asks another seed.
   */
  private async reach(from: string): Promise<{ id: string } | { error: string; busy?: true }> {
    const url = this.transport.urlOf(from);
    if (url === undefined) return { error: 'no url known for it' };
    if (url === this.transport.url) return { id: this.memberId }; // it advertises ours: no dial to ourselves
    // a member url as the membership takes one (ws(s)://host:port): a HELLO's url is only a string,
    // and a secret holder's made this member GET /latest/meta-data/...?action=delete, with
    // credentials, from an HTTP server of its choice (and learn its status code)
    if (!isMemberUrl(url)) return { error: `its advertised url ${safeText(url)} is not a ws:// or wss:// url of a host and a port` };
    if (this.reaching.has(from)) return { error: 'a dial back to it is already under way', busy: true };
    const now = performance.now();
    if (now - this.reachWindowAt >= REACH_MS) {
      this.reachWindowAt = now;
      this.reachStarted = 0;
    }
    if (this.reaching.size >= REACH_AT_ONCE || this.reachStarted >= REACH_PER_WINDOW) {
      return { error: `this member is busy dialling other members back (at most ${REACH_AT_ONCE} at once, ${REACH_PER_WINDOW} per ${REACH_MS} ms)`, busy: true };
    }
    this.reachStarted++;
    this.reaching.add(from);
    try {
      return { id: await this.transport.probe(url, REACH_MS) };
    } catch (e) {
      return { error: e instanceof GridError ? `${e.code}: ${e.message}` : String(e) };
    } finally {
      this.reaching.delete(from);
    }
  }

  /** Set by abortStart: the start under way fails (begin's and start's catch blocks undo it). */
  private startAborted = false;

  /** Ends a start under way: the join loops see closed, the transport's dials and requests reject. */
  private abortStart(): void {
    if (this.startAborted) return;
    this.startAborted = true;
    this.meta?.close();
    this.membership?.stop();
    void this.transport.close();
  }

  /** Joins (or starts) the cluster with the transport already listening: membership, metadata, a table. */
  private async begin(seeds: string[], mayFound: boolean): Promise<void> {
    const t = this.transport;
    t.handle('grid.rep', (b, from) => this.replicas.onReplicate(b, from));
    t.handle('grid.touch', (b, from) => this.replicas.onTouch(b, from));
    t.handle('grid.pressure', (b, from) => this.replicas.onPressure(b, from));
    t.handle('grid.snap', (b, from) => this.migration.onSnapshot(b, from));
    t.handle('grid.clr', (b, from) => this.replicas.onClearMap(b, from));
    t.handle('grid.op', (b, from) => {
      if (this.opHandler === undefined) throw new GridClosedError('member is not serving maps');
      // a body that is not a map (null, a number, an array) was read as one: a TypeError, sent as GRID_ERR_INTERNAL
      if (typeof b !== 'object' || b === null || Array.isArray(b) || Buffer.isBuffer(b)) throw new ProtocolError('grid.op: the request body must be a map');
      return this.opHandler(b as Record<string, unknown>, from);
    });
    const f = this.fast;
    t.serveFast({
      get: (peer, r) => f.serveRead(peer, r, false),
      set: (peer, r) => f.serveSet(peer, r),
      mget: (peer, r) => f.serveRead(peer, r, true),
      rep: (peer, r) => f.serveRep(peer, r),
    });
    t.handle('grid.member-stats', () => this.memberStats());
    t.handle(CLUSTER_STATUS_REQUEST, () => this.clusterStatus());
    t.handle(REACH_REQUEST, (_b, from) => this.reach(from));
    t.handle(UNREACHED_NOTICE, (b, from) => this.onUnreached(b, from));
    // a data member takes gossip about new members only from data members of its log (or from the
    // new member itself); a lite member, which has no log, from anyone it already knows
    this.membership = new Membership(t, { id: this.memberId, url: t.url, startedAt: Date.now(), lite: this.lite }, {
      seeds,
      settings: { partitions: this.partitions, backups: this.backups },
      vouches: (from) => (this.lite ? this.membership.statusOf(from) !== undefined : this.meta.state.members.has(from)),
      // a data member of the log that SWIM holds dead is probed again until the log removes it; a
      // lite member (no log) keeps probing the data members it knows, its only way back in
      recheck: (x) => (this.lite ? !x.lite : this.meta.state.members.has(x.id)),
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
        dataMembers: () => m.members().filter((x) => !x.lite && x.status === 'alive' && x.id !== this.memberId).map((x) => x.id),
        memberUrl: (id) => m.infoOf(id)?.url,
      },
      this.lite,
    );
    this.meta = meta;
    meta.lease.onChange = () => this.replicas.publish(); // other threads read local primaries under the same lease
    meta.on('table', (tb: PartitionTable, replace?: boolean) => this.applyTable(tb, replace === true));
    meta.on('removed', () => this.removed('the metadata leader removed this member'));
    meta.on('lost', (parts: number[]) => {
      this.log('error', `partition(s) ${parts.slice(0, 20).join(', ')}${parts.length > 20 ? ', …' : ''} lost every copy (more failures than backups: ${this.backups}); their data is gone`);
      this.emit('partition-lost', parts);
    });
    // SWIM takes back a member declared dead that refutes it; when the log has removed that id, the
    // member is not back (it drops its data and rejoins under a new id): that is no join to report,
    // nor its second death a leave. Members saw "member-joined m-old" after "member-left m-old".
    // (At most one entry per id of this membership table, which is bounded.)
    const unreported = new Set<string>();
    m.on('member-joined', (info: MemberInfo) => {
      if (!this.meta.state.wasRemoved(info.id) && !this.formerIds.includes(info.id)) this.emit('member-joined', info);
      else unreported.add(info.id);
    });
    m.on('member-left', (info: MemberInfo, reason: string) => {
      if (!unreported.delete(info.id)) this.emit('member-left', info, reason);
    });
    // SWIM's verdict on this member is only a suspicion (it refutes it); removal is the log's decision
    m.on('declared-dead', () => this.log('info', 'the other members declared this member dead; refuting (the metadata log decides removals)'));
    try {
      meta.listen(); // before membership: peers may send as soon as they know this member
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
    this.replicas.startEvictionShipping();
  }

  /**
   * This member was removed from the cluster (declared dead while paused or cut off, or removed
   * by the leader): it stops serving at once, drops every partition it held, and joins again
   * under a new id, with no data (native-notes.md, "Removed members").
   */
  private removed(why: string): void {
    if (this.rejoining) this.removedAgain = true;
    if (this.closed || this.restarting || this.rejoining) return;
    this.restarting = true;
    this.rejoining = true;
    this.log('warn', `${why}: dropping all partitions and rejoining under a new id`);
    this.meta.lease.revoke();
    this.replicas.stopServing(true);
    this.router.onTable();
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
      this.migration.reset();
      await this.replicas.clearAll();
      await old.close();
      if (this.closed) return;
      const o = this.opts;
      let fresh = true;
      for (let attempt = 0; !this.closed; attempt++) {
        // a new id only when the last one was removed: an attempt that timed out may have been
        // admitted by the log all the same, and leaving that id behind made it a dead member —
        // a dead voter, possibly, and two of them left the leader without a majority to remove
        // them (nemesis seed 1000 schedule 13: the cluster never admitted anyone again)
        if (fresh) {
          // this member's own former id, which the others' gossip may still carry as alive before
          // this new identity has the log that removed it
          this.formerIds = [this.memberId, ...this.formerIds.slice(0, 7)];
          this.memberId = memberIdFor(`${this.lite ? 'lite' : 'm'}-${randomBytes(6).toString('hex')}`, o.tls);
        }
        fresh = false;
        this.removedAgain = false;
        this.restarting = false; // the new identity applies its tables and serves once admitted
        try {
          this.transport = await Transport.listen({ host: o.host, port: o.port === 0 ? oldPort : o.port, advertise: o.advertise, sourceAddress: o.sourceAddress, secret: o.secret!, memberId: this.memberId, log: this.log, tls: o.tls });
          await this.begin([...seeds], false);
          this.log('warn', `rejoined the cluster as ${this.memberId}`);
          this.emit('rejoined', this.memberId);
          break;
        } catch (e) {
          // the log refuses a removed id for good (ProtocolError from meta.join)
          fresh = this.removedAgain || e instanceof ProtocolError;
          this.log('warn', `rejoining failed (attempt ${attempt + 1}); retrying${fresh ? ' under a new id' : ''}`, e);
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

  /**
   * Leaves gracefully: waits until no partition's only copy is here (handOverLastCopies), tells
   * the others (they promote this member's backups at once) and closes. Calling it again returns
   * the same promise.
   */
  close(): Promise<void> {
    return (this.closing ??= this.leaveAndClose());
  }

  private closing: Promise<void> | undefined;

  /**
   * Before a graceful leave, waits (at most HANDOVER_MS) until no partition has this member as
   * its only owner among the data members still up. A leave makes the leaver's backups primaries
   * and rebuilds the missing copies afterwards, so a member stopped right after another (a CLI
   * cluster stopped member by member) held the only copy of the partitions the first one had
   * shared with it, and its own leave destroyed them. Meanwhile this member goes on as before: it
   * is the primary that streams those copies. With backups 0 nothing is copied: no wait.
   */
  private async handOverLastCopies(): Promise<void> {
    if (this.lite || this.backups === 0 || this.restarting || this.rejoining || this.startAborted) return;
    const deadline = Date.now() + HANDOVER_MS;
    for (;;) {
      const t = this.replicas.table;
      if (t === undefined || this.meta === undefined) return;
      const up = new Set<string>();
      for (const id of this.meta.state.members.keys()) {
        const s = id === this.memberId ? undefined : this.membership.statusOf(id);
        if (s === 'alive' || s === 'suspect') up.add(id);
      }
      if (up.size === 0) return; // the last data member: nobody to hand anything to
      const last = lastCopiesOf(t, this.memberId, up);
      if (last.length === 0) return;
      // no metadata leader: nobody plans the copies, waiting would only delay the leave
      if (this.meta.describe().leader === undefined) return;
      if (Date.now() > deadline) {
        this.log('warn', `leaving with the only copy of partition(s) ${last.slice(0, 20).join(', ')}${last.length > 20 ? ', …' : ''}: no other member had a copy within ${HANDOVER_MS} ms`);
        return;
      }
      await this.replicas.tableChange(200);
    }
  }

  private async leaveAndClose(): Promise<void> {
    await this.handOverLastCopies().catch(() => undefined);
    // one leaver at a time, each once the cluster is whole again: waits, still serving, for the
    // metadata leader's go (two members leaving together lost the partitions they shared, and
    // two of three voters leaving together left no leader)
    if (!this.restarting && !this.rejoining && !this.startAborted) {
      await this.meta?.awaitLeaveTurn().catch(() => undefined);
      // a leader hands the lead over first: the new leader removes this member from the log and
      // the Raft configuration (see Metadata.handOverLead)
      await this.meta?.handOverLead(HAND_OVER_LEAD_MS).catch(() => undefined);
    }
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.timer);
    this.replicas.stopServing(false);
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

  isCoordinator(): boolean {
    return this.meta.isLeader();
  }

  private tick(): void {
    if (this.closed || this.restarting) return;
    this.migration.checkStreams();
    if (this.lite) this.refreshLiteTable();
  }

  /**
   * A lite member whose table still shows copies in flight, or is not confirmed yet, asks the data
   * members for a newer one (Metadata.liteHint), every LITE_REFRESH_MS at most. Its tables come
   * from the leader's pushes (to the lite members it knows and is linked to at that moment) and
   * from a refusal by a moved primary, each confirmed by f+1 data members: a lite member that
   * missed the push of the table that ended a migration kept the older one in an idle cluster for
   * good, and its status and metrics said partitions were migrating when none were (routing went
   * on working: the primaries had not changed).
   */
  private refreshLiteTable(): void {
    const t = this.replicas.table;
    if (t === undefined || (migrating(t) === 0 && this.meta.liteTableConfirmed) || Date.now() - this.liteRefreshedAt < LITE_REFRESH_MS) return;
    this.liteRefreshedAt = Date.now();
    this.meta.liteHint();
  }

  /** A lite member's first table: asked from the data members until one answers (then confirmed: Metadata.firstLiteTable). */
  private async fetchTable(ids: () => string[]): Promise<void> {
    const deadline = Date.now() + RETRY_DEADLINE_MS;
    while (this.replicas.table === undefined) {
      for (const id of ids()) {
        try {
          await this.ensureLink(id);
          const b = await this.transport.request(id, 'grid.table?', null, 2000);
          if (b !== null && isTable(b, this.partitions)) this.meta.firstLiteTable(b);
          if (this.replicas.table !== undefined) return;
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
    while (this.replicas.table === undefined) {
      if (this.closed || this.startAborted) throw new GridClosedError('closed while joining');
      if (Date.now() > deadline) throw new TimeoutError(`no partition table from the metadata log within ${ms} ms`);
      await this.replicas.tableChange(100);
    }
  }

  /**
   * A committed (or, on a lite member, confirmed) table: every layer applies it. `replace`: a lite
   * member's unconfirmed first table gives way to it even when it is older.
   */
  private applyTable(t: PartitionTable, replace = false): void {
    if (this.closed || this.restarting || !this.replicas.applyTable(t, replace)) return;
    this.router.onTable();
    this.migration.onTable(t);
  }

  async ensureLink(id: string): Promise<void> {
    if (this.transport.isConnected(id)) return;
    const info = this.membership.members().find((m) => m.id === id);
    if (info === undefined) throw new MemberUnreachableError(`member ${id} is not alive`, { member: id });
    try {
      await this.transport.connect(info.url);
    } catch (e) {
      // a failed dial rejects with the socket's own error (ECONNREFUSED): typed, so that routing retries it
      throw e instanceof GridError ? e : new MemberUnreachableError(`member ${id} is unreachable: ${(e as Error)?.message ?? String(e)}`, { member: id });
    }
  }

  // ── status ────────────────────────────────────────────────────────────────────────────────────

  private memberStats(): { entries: number; bytesUsed: number; bytesLimit: number } {
    const s = this.host.stats();
    return { entries: s.entries, bytesUsed: s.bytesUsed, bytesLimit: s.bytesLimit };
  }

  /**
   * Status rows of the members the partition table or the metadata log still names that SWIM does
   * not hold alive or suspect (dead, left, or never heard of): they vanished from `shardgrid status`
   * while the table still gave them partitions, and the counts of the rows shown did not add up to
   * the partition count. Not asked for figures: nobody reaches them.
   */
  private unreachedRows(t: PartitionTable | undefined, coord: string | undefined, listed: ReadonlySet<string>): ClusterMemberStatus[] {
    const rows: ClusterMemberStatus[] = [];
    for (const id of new Set([...namedIn(t), ...this.meta.state.members.keys()])) {
      if (listed.has(id)) continue;
      const info = this.membership.infoOf(id);
      const status = info?.status ?? 'unknown';
      const url = info?.url ?? this.meta.state.members.get(id)?.url ?? '';
      const why = status === 'unknown' ? 'unknown to this member\'s failure detector' : `${status} in this member's failure detector`;
      rows.push({ id, url, lite: false, status, startedAt: info?.startedAt ?? 0, coordinator: id === coord, ...ownedBy(t, id), error: `${why}; the partition table still names it (until the metadata leader removes it)` });
    }
    return rows;
  }

  /** Members, partitions per member and memory, as `shardgrid status` prints it. */
  async clusterStatus(): Promise<ClusterStatus> {
    const t = this.replicas.table;
    const d = this.meta.describe();
    let cp = this.meta.cpStatus();
    // a lite member is outside the metadata group (the CP group too): it asks a data member who
    // leads and what the CP state holds, so that the status reads the same through any member (it
    // showed no coordinator and term 0)
    if (this.lite) {
      for (const m of this.membership.members()) {
        if (m.lite || m.status !== 'alive') continue;
        try {
          await this.ensureLink(m.id);
          const r = await this.transport.request<unknown>(m.id, 'cp.status?', null, 2000);
          if (isCpStatus(r) && typeof r.leader === 'string') {
            cp = r;
            d.leader = r.leader;
            d.term = r.term;
            break;
          }
        } catch {
          // the next one
        }
      }
    }
    const coord = d.leader;
    const members: ClusterMemberStatus[] = await Promise.all(
      this.membership.members().map(async (m) => {
        const { primaries, backups } = ownedBy(t, m.id);
        const row = { id: m.id, url: m.url, lite: m.lite, status: m.status as 'alive' | 'suspect', startedAt: m.startedAt, coordinator: m.id === coord, primaries, backups };
        try {
          const s = m.id === this.memberId ? this.memberStats() : (await this.ensureLink(m.id), await this.transport.request<unknown>(m.id, 'grid.member-stats', null, 2000));
          // a peer's answer went into the status as it came (strings with terminal escapes, objects)
          if (!isMemberStats(s)) return { ...row, error: 'it answered grid.member-stats with something that is not its figures' };
          return { ...row, entries: s.entries, bytesUsed: s.bytesUsed, bytesLimit: s.bytesLimit };
        } catch (e) {
          return { ...row, error: e instanceof Error ? e.message : String(e) };
        }
      }),
    );
    members.push(...this.unreachedRows(t, coord, new Set(members.map((m) => m.id))));
    const lost: number[] = [];
    if (t !== undefined) for (let p = 0; p < this.partitions; p++) if (t.lost[p] > 0) lost.push(p);
    return { self: this.memberId, tableVersion: this.tableVersion, partitions: this.partitions, backups: this.backups, migrating: migrating(t), migrations: migrations(t, MIGRATIONS_SHOWN), members, leader: d.leader, term: d.term, lostPartitions: lost, cp, metadata: { role: d.role, voters: d.voters, learners: d.learners, leaseMs: d.leaseMs, safe: d.safe } };
  }
}

/** A grid.member-stats answer as it came off the wire: three counts, each a finite number from 0. */
function isMemberStats(x: unknown): x is { entries: number; bytesUsed: number; bytesLimit: number } {
  if (typeof x !== 'object' || x === null) return false;
  const s = x as Record<string, unknown>;
  return [s.entries, s.bytesUsed, s.bytesLimit].every((n) => typeof n === 'number' && Number.isFinite(n) && n >= 0);
}
