/**
 * Grid: lifecycle of a member (its shared buffers and virtual nodes) and the maps over it.
 * `createGrid` makes the member; `attachGrid(handle)` gives any other thread of the process the
 * same grid over the same memory.
 */
import { EventEmitter } from 'node:events';
import { createServer } from 'node:net';
import { Worker, threadId as selfThreadId } from 'node:worker_threads';
import { DEFAULTS, INTERNAL_MAPS, MAX_COMPUTE_TIMEOUT_MS, MODULE_NAME, resolveMapOptions, resolveOptions, type GridOptions, type MapOptions, type ModuleTable, type ResolvedOptions } from './config.js';
import { AttachError, GridClosedError, InvalidArgumentError, InvalidOptionError, TooManyMapsError, WorkerError } from './errors.js';
import { GridMap, claimMapOptions, type MapHost } from './map.js';
import { assignPartitions } from './ring/ring.js';
import { CLAIM_MAP, releaseHeldClaims } from './fetch.js';
import { ValueEncoder } from './storage/codec.js';
import { ShardStore, createStoreBuffers, planMemory, type PartitionStats } from './storage/store.js';
import { JOURNAL_SLOTS } from './storage/journal.js';
import type { FromVnode, GridHandle, ToVnode, VnodeInit } from './runtime/messages.js';
import { spawnExecArgv } from './runtime/exec-argv.js';
import { libFile } from './runtime/lib-file.js';
import { ComputePool, vnodeCount } from './compute/pool.js';
import { ClusterNode } from './cluster/node.js';
import { RoutedMap } from './cluster/routed-map.js';
import type { MemberInfo } from './cluster/membership.js';
import { migrating, ownedBy } from './ring/table.js';
import { ForwardClient, ForwardCpLink, ForwardServer, ForwardedMap, forwardChannelName } from './runtime/forward.js';
import { CpRegion } from './cp/region.js';
import { CoordinationPrimitives, threadOwner } from './cp/primitives.js';
import { RespServer } from './resp/server.js';
import { GridMetrics } from './metrics.js';
import type { Registry } from 'prom-client';
import { ClusterCp, type CpLink } from './cp/cluster.js';
import { createLog, type Log } from './log.js';
import { threadGone, threadStarted } from './runtime/thread-exit.js';

export type { GridHandle } from './runtime/messages.js';

/** One virtual node of a member (a worker thread), as {@link GridStats.workers} lists it. */
export interface WorkerStats {
  /** The virtual node's index, from 0 to `workers - 1`. */
  index: number;
  /** The `threadId` of the worker thread started for this virtual node most recently. */
  threadId: number;
  /** How many partitions this virtual node runs expiry and eviction for. */
  partitions: number;
  /** How many replacements were started for this virtual node after it exited unexpectedly. */
  restarts: number;
  /** Replacements of this virtual node that failed to start (each retried later, with backoff). */
  failedStarts: number;
  /** False while the virtual node is down (crashed, its replacement not started yet). */
  up: boolean;
}

/**
 * What {@link Grid.stats} returns: the figures of the shared memory of this process (every map
 * together), read from counters the grid keeps.
 */
export interface GridStats {
  /** Entries in this process's shared memory, every map together (in a cluster member, backup copies included). */
  entries: number;
  /** Bytes of the memory budget in use: the control and access-map buffers plus the heap pages in use. */
  bytesUsed: number;
  /**
   * The memory budget in bytes: `options.memory` in the grid made by createGrid; in an attached
   * grid, the size of the control and access-map buffers plus the most heap pages there may be.
   */
  bytesLimit: number;
  /** Bytes of live records (entries and the partitions' tables). */
  liveBytes: number;
  /** Reads (get, getSync, getMany) that found a value, counted by every thread of the process. */
  hits: number;
  /** Reads (get, getSync, getMany) that found no value, counted by every thread of the process. */
  misses: number;
  /** Entries evicted to keep within the memory budget. */
  evictions: number;
  /** Entries removed because their time to live had passed. */
  expirations: number;
  /** Size of a heap page in bytes. */
  pageSize: number;
  /** The figures of each partition. */
  partitions: PartitionStats[];
  /** The virtual nodes of this member; empty in an attached grid and in a lite member, which run none. */
  workers: WorkerStats[];
  /** Locks taken over from threads that died holding them, and the partitions repaired. */
  recoveries: number;
  /** Coordination primitives (grid.cp) whose locks, permits or waiters a dead thread left, and that were released. */
  cpRecoveries: number;
  /** Cluster members (alive or suspect) with the partitions each holds; absent for a single process. */
  members?: MemberStats[];
  /**
   * This member's id and the partition table version it applies; absent for a single process.
   * `url` is the address other members dial, `lite` is true for a lite member, `migrating` counts
   * the partitions of that table being migrated now.
   */
  cluster?: { memberId: string; url: string; lite: boolean; tableVersion: number; migrating: number };
}

/** A cluster member as {@link GridStats.members} lists it (this member's view). */
export interface MemberStats {
  /** The member's id. */
  id: string;
  /** The address other members dial to reach it. */
  url: string;
  /** True for a lite member (it owns no partitions). */
  lite: boolean;
  /** Its status in this member's view: `'alive'` or `'suspect'`. */
  status: string;
  /** Partitions it is the primary of, in the partition table this member applies. */
  primaries: number;
  /** Partitions it holds a backup copy of, in the same table. */
  backups: number;
}

interface Vnode {
  index: number;
  worker: Worker;
  threadId: number;
  partitions: number[];
  restarts: number;
  failedStarts: number;
  /** Set once the worker said 'ready': from then on its exit means a crash, handled by respawn. */
  ready: boolean;
}

/** Longest close() waits for the release of its fetch claims (one round trip to each claim's primary). */
const CLAIM_RELEASE_MS = 2000;
const WORKER_FILE = libFile('./worker.js');
const EMPTY_MODULES: ModuleTable = Object.freeze(Object.create(null) as Record<string, string>);
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;
/** CP session TTL of an attached thread when the member's handle does not say (made by an older shardgrid). */
const DEFAULT_CP_SESSION_TTL_MS = 10_000;
/** A replacement virtual node that fails to start is retried after 100 ms, 200 ms, … up to 30 s. */
const RESPAWN_BASE_MS = 100;
const RESPAWN_MAX_MS = 30_000;

/**
 * The events of a grid that is a cluster member (`grid.on(name, listener)`; the listener's
 * parameters are typed, and a misspelt event name does not compile).
 */
export interface GridEvents {
  /**
   * A member joined the cluster: failure detection (SWIM) saw it alive for the first time, or alive
   * again after it was declared dead (a pause it refuted). An id the cluster removed is never
   * reported again: that member rejoins under a new id, which is reported.
   */
  'member-joined': [member: MemberInfo];
  /** A member left: `reason` is `'left'` (it closed), or `'dead'` (failure detection gave up on it). */
  'member-left': [member: MemberInfo, reason: 'left' | 'dead'];
  /** Every copy of these partitions was lost (more failures than `backups`): their entries are gone. */
  'partition-lost': [partitions: number[]];
  /** This member was removed by the cluster (declared dead while alive) and rejoined empty under a new id. */
  rejoined: [memberId: string];
}

/**
 * A grid: the member of this process that {@link createGrid} made, or the same grid in another
 * thread through {@link attachGrid}. Its maps ({@link Grid.map}) are named namespaces over the
 * same partitions in shared memory; {@link Grid.cp} hands out coordination primitives;
 * {@link Grid.stats} reports the figures. A grid that is a cluster member emits the events of
 * {@link GridEvents}. Not constructed directly: call createGrid or attachGrid.
 *
 * @example
 * ```ts
 * import { createGrid } from 'shardgrid';
 *
 * const grid = await createGrid({ memory: '256MB' });
 * const users = grid.map<{ name: string }>('users', { ttl: 60_000 });
 * await users.set('u:1', { name: 'Ada' });
 * console.log(grid.stats().entries); // 1
 * await grid.close();
 * ```
 */
export class Grid extends EventEmitter<GridEvents> implements MapHost {
  /**
   * The grid's view of the shared memory. Not part of the API: public only because the grid's
   * maps reach it through {@link MapHost}, which Grid implements.
   */
  readonly store: ShardStore;
  /** The value encoder of this thread. Not part of the API: public only because {@link MapHost} requires it. */
  readonly encoder: ValueEncoder;
  /** How long an operation waits for a partition lock before failing with GRID_ERR_LOCK_TIMEOUT, ms (options.lockTimeout, carried by the handle). */
  readonly lockTimeout: number;
  /**
   * Structured-clone-able: pass it to another thread and call attachGrid(handle) there.
   *
   * @example
   * ```ts
   * const worker = new Worker(new URL('./worker.mjs', import.meta.url), { workerData: { handle: grid.handle } });
   * // worker.mjs: const grid = await attachGrid(workerData.handle);
   * ```
   */
  readonly handle: GridHandle;
  /**
   * Registered compute modules (options.compute.modules; attached grids: the handle's copy), name
   * to file: URL href. Public only because {@link MapHost} requires it.
   */
  readonly modules: ModuleTable;
  /**
   * How long an aggregation may run, ms (options.compute.timeoutMs; attached grids: the handle's).
   * Public only because {@link MapHost} requires it.
   */
  readonly computeTimeoutMs: number;
  /**
   * How long an entry processor may run, ms, 0 for no limit (options.compute.processorTimeoutMs;
   * attached grids: the handle's). Public only because {@link MapHost} requires it.
   */
  readonly processorTimeoutMs: number;
  private readonly maps = new Map<string, GridMap<any>>();
  private readonly vnodes: Vnode[] = [];
  private readonly options: ResolvedOptions | undefined;
  private closed = false;
  /** While close() releases this grid's fetch claims: the claim map's calls still pass assertOpen. */
  private releasingClaims = false;
  private closing: Promise<void> | undefined;
  private recoveries = 0;
  private cpRecoveries = 0;
  private readonly onThreadExit = (tid: number): void => this.threadExited(tid);
  /** Pending retries of virtual nodes that failed to restart (cleared by close). */
  private readonly respawns = new Set<NodeJS.Timeout>();
  /** @internal Where this grid's own messages go (options.logger, else process warnings). */
  readonly log: Log;
  private readonly cpRegion: CpRegion | undefined;
  private cpApi: CoordinationPrimitives | undefined;
  private clusterCp: ClusterCp | undefined;
  private pool: ComputePool | undefined;
  /** @internal This process as a cluster member (createGrid with options.cluster); undefined otherwise. */
  cluster: ClusterNode | undefined;
  /** @internal set for the compute pool's own attachment (reads partitions it is told to). */
  internal = false;
  /** Member of a cluster: serves the map calls of its other threads (runtime/forward.ts). */
  private forwarder: ForwardServer | undefined;
  /** Attached thread of a cluster member: forwards map calls to the member's main thread. */
  private forwardClient: ForwardClient | undefined;
  /** @internal The RESP endpoint (options.resp). */
  respServer: RespServer | undefined;
  private metricsApi: GridMetrics | undefined;

  /**
   * Not for use: a grid comes from {@link createGrid} or {@link attachGrid}. Left in the
   * declarations on purpose: without it they would show a constructor that takes no arguments.
   */
  constructor(handle: GridHandle, store: ShardStore, options?: ResolvedOptions) {
    super();
    this.handle = handle;
    this.store = store;
    this.lockTimeout = handle.lockTimeout;
    this.encoder = new ValueEncoder(store.maxValueBytes);
    this.options = options;
    this.modules = options?.compute.modules ?? handle.modules ?? EMPTY_MODULES;
    this.computeTimeoutMs = options?.compute.timeoutMs ?? handle.computeTimeoutMs ?? DEFAULTS.compute.timeoutMs;
    this.processorTimeoutMs = options?.compute.processorTimeoutMs ?? handle.processorTimeoutMs ?? DEFAULTS.compute.processorTimeoutMs;
    this.log = createLog(options?.logger, () => 'shardgrid', 'SHARDGRID_GRID');
    this.cpRegion = handle.cp !== undefined ? new CpRegion(handle.cp, handle.lockTimeout) : undefined;
    // An attached thread watches the workers *it* creates (the 'worker' event fires only in the
    // creating thread), so their coordination primitives are released when they exit too.
    if (options === undefined && this.cpRegion !== undefined) watchCp(this.cpRegion, +1);
    // ... and links them to itself in shared memory, for the member to find them when this
    // thread dies (Node ends them with it, and only this thread saw them start)
    if (options === undefined) {
      attachedGrids.add(this.weakSelf);
      attachedGone.register(this, this.weakSelf, this.weakSelf);
    }
  }

  /** This grid in attachedGrids: weakly, so an attached grid its thread never closes can still go. */
  private readonly weakSelf = new WeakRef<Grid>(this);

  /** @internal A worker this (attached) thread started: linked below it (store.linkThread). */
  linkChild(tid: number): boolean {
    return !this.store.closed && this.store.linkThread(tid, selfThreadId);
  }

  /**
   * @internal A worker this (attached) thread started and linked exited: the locks it and the
   * workers it started (gone with it) held are taken over and their partitions repaired.
   */
  childExited(tid: number): void {
    const tree = [tid, ...this.store.takeDescendants(tid)];
    this.store.unlinkThread(tid);
    if (this.store.closed) return;
    for (const t of tree) {
      if (this.cpRegion !== undefined) this.cpRecoveries += this.cpRegion.recoverThread(t);
      this.recoveries += this.store.recoverDeadThread(t).length;
    }
  }

  /**
   * Coordination primitives (locks with fencing tokens, atomicLong, atomicRef, semaphores) by
   * name, shared by every thread that attached this grid; in a clustered grid, by every member
   * (commands on the metadata Raft log, cp/cluster.ts). A thread attached to a cluster member is
   * a CP client of its own, through the member's main thread.
   *
   * @throws {AttachError} when this is a thread attached to a cluster member whose handle
   * has no forward channel (GRID_ERR_ATTACH).
   *
   * @example
   * ```ts
   * await grid.cp.withLock('orders', async (token) => { ... }, { leaseMs: 5_000 });
   * const seq = await grid.cp.atomicLong('seq').incrementAndGet();
   * ```
   */
  get cp(): CoordinationPrimitives {
    if (this.cpApi === undefined && this.cluster !== undefined) this.clusterCp = new ClusterCp(this.cluster, this.options!.cp.sessionTtlMs);
    // a thread attached to a member: its own CP session, through the member's main thread
    if (this.cpApi === undefined && this.forwarding()) this.clusterCp = new ClusterCp(new ForwardCpLink(this.forwardClientOf()), this.handle.cpSessionTtlMs ?? DEFAULT_CP_SESSION_TTL_MS);
    return (this.cpApi ??= new CoordinationPrimitives(this.cpRegion, () => this.assertOpen(), this.clusterCp, threadOwner()));
  }

  /** The address of the RESP endpoint (options.resp), or undefined without one (and in an attached grid). */
  get resp(): { host: string; port: number } | undefined {
    return this.respServer?.address;
  }

  /**
   * Prometheus metrics of this grid (prom-client): `grid.metrics.register(registry)` adds them to
   * an application's Registry, `grid.metrics.text()` renders them, `grid.metrics.address` is where
   * options.metrics.port serves /metrics. Collected when scraped, from counters the grid keeps.
   */
  get metrics(): GridMetrics {
    return (this.metricsApi ??= new GridMetrics(this));
  }

  /** @internal Per map name, operation counts of this thread's handles (GridMap.ops, OP_KINDS order). */
  mapOps(): Map<string, Float64Array> {
    const out = new Map<string, Float64Array>();
    for (const m of this.maps.values()) {
      const sum = out.get(m.name);
      if (sum === undefined) out.set(m.name, Float64Array.from(m.ops));
      else for (let k = 0; k < sum.length; k++) sum[k] += m.ops[k];
    }
    return out;
  }

  /**
   * @internal Registers on the application's registry (options.metrics.registry; createGrid,
   * before a cluster join, as a taken port is found before it).
   */
  registerMetrics(): void {
    const registry = this.options?.metrics?.registry;
    if (registry === undefined) return;
    try {
      this.metrics.register(registry as Registry);
    } catch (e) {
      if (!(e instanceof InvalidArgumentError)) throw e;
      throw new InvalidOptionError(`options.metrics.registry: ${e.message.replace(/^metrics\.register\(registry\): /, '')}`, { option: 'options.metrics.registry', metric: (e.data as { metric?: string }).metric });
    }
  }

  /** @internal Starts /metrics (options.metrics.port; createGrid). */
  async startMetrics(): Promise<void> {
    const o = this.options?.metrics;
    if (o?.port !== undefined) await this.metrics.listen(o);
  }

  /** @internal Starts the RESP endpoint of options.resp (createGrid). */
  async startResp(): Promise<void> {
    const o = this.options?.resp;
    if (o === undefined) return;
    const server = new RespServer(this, o);
    await server.listen();
    this.respServer = server;
  }

  /** @internal MapHost.clustered: a cluster member or a thread attached to one. */
  get clustered(): boolean {
    return this.handle.clustered === true;
  }

  /** True for the grid made by createGrid (it owns the virtual nodes); false for attached ones. */
  get isMember(): boolean {
    return this.options !== undefined;
  }

  /**
   * Throws when this grid is closed, or (an attached grid) when the grid of its handle was closed.
   * Maps call it before every operation.
   *
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   */
  assertOpen(internal = false): void {
    if ((this.closed && !(internal && this.releasingClaims)) || this.store.closed) throw new GridClosedError('the grid is closed');
  }

  /**
   * A named map. Maps are namespaces over the same partitions; the same name gives the same data
   * in every thread. `options` (default ttl, cacheValues) are registered for the name in the whole
   * grid, every thread included, by the first call that gives them; a later call that gives a
   * different value for an option throws GRID_ERR_INVALID_OPTION, and calls without options
   * use the registered ones (claimMapOptions). The same name in one thread gives the same
   * GridMap object. A call that throws registers nothing: the name takes none of the
   * options.maxMaps slots.
   *
   * @typeParam V - The type of the map's values (not checked at run time).
   * @param name - The map's name: 1 to 256 UTF-8 bytes.
   * @param options - The map's options for the whole grid: default `ttl`, `cacheValues`.
   * @returns The map handle of this thread.
   * @throws {InvalidArgumentError} when `name` is empty, not a string or over 256 UTF-8 bytes (GRID_ERR_INVALID_ARGUMENT).
   * @throws {InvalidOptionError} when `options` are invalid, or differ from the options registered for the name (GRID_ERR_INVALID_OPTION).
   * @throws {TooManyMapsError} when the grid already has options.maxMaps maps (GRID_ERR_TOO_MANY_MAPS).
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   *
   * @example
   * ```ts
   * const users = grid.map<{ name: string }>('users', { ttl: 60_000 }); // registers the default ttl
   * const same = grid.map<{ name: string }>('users');                  // any thread: the same data and ttl
   * ```
   */
  map<V = unknown>(name: string, options?: MapOptions): GridMap<V> {
    this.assertOpen();
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('map name must be a non-empty string');
    // names are stored as UTF-8, which turns every lone surrogate into U+FFFD: two such names would be one map
    if (!name.isWellFormed()) throw new InvalidArgumentError('map name is not well-formed UTF-16 (a lone surrogate)');
    const known = this.maps.get(name);
    if (known !== undefined && options === undefined) return known as GridMap<V>;
    // What can refuse the call is checked before mapId registers the name in shared memory: a
    // registered name keeps one of the maxMaps slots for good, so a refused call must not take
    // one. (A conflict with registered options concerns a name registered already.)
    const want = options !== undefined ? resolveMapOptions(options) : undefined;
    const forward = known === undefined && this.forwarding() ? this.forwardClientOf() : undefined;
    const id = known?.id ?? this.store.mapId(name);
    if (id === -2) throw new InvalidArgumentError(`map name is over 256 UTF-8 bytes`);
    if (id < 0) throw new TooManyMapsError(`the grid already has ${this.handle.maxMaps} maps (options.maxMaps)`);
    if (want !== undefined) claimMapOptions(this.store, id, name, options!, want);
    if (known !== undefined) return known as GridMap<V>;
    const m = this.cluster !== undefined ? new RoutedMap<V>(this, this.cluster, name, id) : forward !== undefined ? new ForwardedMap<V>(this, forward, name, id) : new GridMap<V>(this, name, id);
    this.maps.set(name, m);
    return m;
  }

  /** @internal ForwardHost: the member's CP link, on which its attached threads' CP calls run. */
  cpLink(): CpLink {
    void this.cp; // makes the member's CP client (and its link) on first use
    return this.clusterCp!.link;
  }

  /**
   * An attached grid of a cluster member: its shared memory holds primaries and backup copies
   * alike, and writes must be routed and replicated, so its maps forward to the member's main
   * thread (reads of local primaries stay direct). The compute pool's own attachment reads the
   * partitions it is told to and is not forwarded.
   */
  private forwarding(): boolean {
    return this.handle.clustered === true && !this.isMember && !this.internal;
  }

  private forwardClientOf(): ForwardClient {
    const name = this.handle.forward;
    if (name === undefined) throw new AttachError('this grid handle has no forward channel (made by an older shardgrid?)');
    return (this.forwardClient ??= new ForwardClient(name));
  }

  /**
   * The piscina pool that runs aggregations: created on first use, closed by close(). Not part
   * of the API: public only because {@link MapHost} requires it (GridMap.aggregate uses it).
   *
   * @throws {GridClosedError} when the grid is closed (GRID_ERR_CLOSED).
   */
  computePool(): ComputePool {
    this.assertOpen();
    return (this.pool ??= new ComputePool(this.handle, this.options?.compute.workers ?? this.options?.workers ?? vnodeCount(this.store)));
  }

  /**
   * The figures of this grid's shared memory (entries, memory, hits and misses, evictions,
   * expirations, per partition), of this member's virtual nodes, of the locks and coordination
   * primitives recovered from dead threads, and, in a cluster member, of the members and the
   * partition table. Read from counters: no entry is visited.
   *
   * @returns A new object on every call.
   */
  stats(): GridStats {
    const s = this.store.stats();
    return {
      entries: s.entries,
      bytesUsed: s.bytesUsed,
      // a lite member's store has no pages: its limit is what it holds, not options.memory
      bytesLimit: this.options !== undefined && this.options.cluster?.lite !== true ? this.options.memory : s.overheadBytes + s.pagesMax * s.pageSize,
      liveBytes: s.liveBytes,
      hits: s.hits,
      misses: s.misses,
      evictions: s.evictions,
      expirations: s.expirations,
      pageSize: s.pageSize,
      partitions: s.partitions,
      workers: this.vnodes.map((v) => ({ index: v.index, threadId: v.threadId, partitions: v.partitions.length, restarts: v.restarts, failedStarts: v.failedStarts, up: v.ready && v.worker.threadId !== -1 })),
      recoveries: this.recoveries,
      cpRecoveries: this.cpRecoveries,
      ...this.clusterStats(),
    };
  }

  private clusterStats(): Pick<GridStats, 'members' | 'cluster'> {
    const c = this.cluster;
    if (c === undefined) return {};
    const t = c.currentTable;
    const members = c.members().map((m) => ({ id: m.id, url: m.url, lite: m.lite, status: m.status, ...ownedBy(t, m.id) }));
    return { members, cluster: { memberId: c.memberId, url: c.url, lite: c.lite, tableVersion: c.tableVersion, migrating: migrating(t) } };
  }

  /** @internal Joins the cluster of options.cluster (createGrid). */
  async joinCluster(signal?: AbortSignal): Promise<void> {
    const node = new ClusterNode(this, this.options!.cluster!, this.options!.logger);
    this.cluster = node;
    node.onOp((b) => {
      const name = b.m;
      if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('grid.op: map name must be a non-empty string');
      return (this.map(name) as RoutedMap).serve(b);
    });
    node.on('member-joined', (info: MemberInfo) => this.emit('member-joined', info));
    node.on('member-left', (info: MemberInfo, reason: 'left' | 'dead') => this.emit('member-left', info, reason));
    node.on('partition-lost', (parts: number[]) => this.emit('partition-lost', parts));
    node.on('rejoined', (id: string) => this.emit('rejoined', id));
    await node.start(signal);
    if (this.handle.forward !== undefined) this.forwarder = new ForwardServer(this, this.handle.forward);
  }

  // ── member lifecycle ──────────────────────────────────────────────────────────────────────────

  /** @internal */
  async start(): Promise<void> {
    const o = this.options!;
    watchThreads(this.onThreadExit, +1);
    // a lite member owns no partitions: no virtual nodes to run their expiry and eviction
    if (o.cluster?.lite === true) return;
    const owners = Array.from({ length: o.workers }, (_, i) => i);
    const table = assignPartitions(o.partitions, owners);
    const parts: number[][] = owners.map(() => []);
    for (let p = 0; p < o.partitions; p++) {
      parts[table[p]].push(p);
      this.store.setOwner(p, table[p]);
    }
    try {
      await Promise.all(owners.map((i) => this.spawn(i, parts[i], 0, 0)));
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private spawn(index: number, partitions: number[], restarts: number, failedStarts: number): Promise<void> {
    const o = this.options!;
    const init: VnodeInit = { index, buffers: this.handle.buffers, partitions, lockTimeout: o.lockTimeout, expiryInterval: o.expiryInterval };
    let worker: Worker;
    try {
      worker = new Worker(WORKER_FILE, { workerData: init, name: `shardgrid-vnode-${index}`, execArgv: spawnExecArgv() });
    } catch (e) {
      // e.g. Node refusing a flag: a typed rejection (respawn() retries it), never a throw out of an 'exit' listener
      return Promise.reject(new WorkerError(`virtual node ${index} could not be created: ${(e as Error)?.message ?? String(e)}`));
    }
    const v: Vnode = { index, worker, threadId: worker.threadId, partitions, restarts, failedStarts, ready: false };
    this.vnodes[index] = v;
    worker.on('exit', () => {
      if (this.closed || this.vnodes[index] !== v || !v.ready) return; // a failed start is handled by respawn
      // Crash: its partitions' data is in shared memory and stays; recovery of any lock it held
      // runs from the process-wide 'worker' watcher. Start a replacement with the same partitions.
      this.log('warn', `virtual node ${index} exited unexpectedly; starting a replacement`);
      this.respawn(v, 0);
    });
    let startError: Error | undefined;
    worker.on('error', (e: Error) => void (startError ??= e)); // exit follows: respawn (after ready) or the start's rejection
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(new WorkerError(`virtual node ${index} did not start within ${START_TIMEOUT_MS} ms`));
        void worker.terminate(); // a hung start must not linger next to its replacement
      }, START_TIMEOUT_MS);
      const onMsg = (m: FromVnode): void => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        worker.off('message', onMsg);
        v.ready = true;
        // A virtual node only serves the process: it must not keep it alive. A script that never
        // calls close() then exits when its own work is done, as one using lru-cache does.
        // close() refs it again while it waits for the exit.
        if (!this.closed) worker.unref();
        resolve();
      };
      worker.on('message', onMsg);
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new WorkerError(`virtual node ${index} exited with code ${code} during start${startError !== undefined ? `: ${startError.message}` : ''}`));
      });
    });
  }

  /**
   * Starts a replacement for virtual node `dead.index` with its partitions. A replacement that
   * fails to start (its worker cannot load, crashes or hangs during start) is reported through
   * the log and retried after RESPAWN_BASE_MS × 2^attempt, at most RESPAWN_MAX_MS, until one
   * starts or the grid closes; `stats().workers` shows `up: false` and `failedStarts` meanwhile.
   * The retry timer is unref'd: a process whose work is done does not wait for it.
   */
  private respawn(dead: Vnode, attempt: number): void {
    if (this.closed) return;
    this.spawn(dead.index, dead.partitions, dead.restarts + 1, dead.failedStarts + attempt).then(
      () => {
        if (attempt > 0) this.log('warn', `virtual node ${dead.index} restarted after ${attempt} failed attempt(s)`);
      },
      (e: unknown) => {
        if (this.closed) return;
        const delay = Math.min(RESPAWN_MAX_MS, RESPAWN_BASE_MS * 2 ** attempt);
        const failed = this.vnodes[dead.index];
        if (failed !== undefined) failed.failedStarts = dead.failedStarts + attempt + 1;
        this.log('warn', `virtual node ${dead.index} could not be restarted (attempt ${attempt + 1}); retrying in ${delay} ms`, e);
        const t = setTimeout(() => {
          this.respawns.delete(t);
          this.respawn(dead, attempt + 1);
        }, delay);
        t.unref();
        this.respawns.add(t);
      },
    );
  }

  /**
   * Every worker created by this thread (our virtual nodes, the user's own workers, piscina's) is
   * watched: its `exit` is a perfect failure detector, and any grid lock it still held is taken
   * over, the state it protected repaired, and the lock released; its coordination primitives'
   * locks, permits and waiters are released (the next waiter is served at once). An attached
   * grid watches the workers of its own thread for the coordination primitives only.
   */
  private threadExited(tid: number): void {
    if (this.closed) return;
    // with it went the workers it started, which only it saw: those of its grids' links
    for (const t of [tid, ...this.store.takeDescendants(tid)]) {
      if (this.cpRegion !== undefined) this.cpRecoveries += this.cpRegion.recoverThread(t);
      this.forwarder?.threadExited(t);
      this.recoveries += this.store.recoverDeadThread(t).length;
    }
  }

  /**
   * First step of close(): the map.fetch claims this grid holds for loads still running are
   * released (fetch.ts, releaseHeldClaims), its claim map's calls passing assertOpen meanwhile, so
   * callers waiting for those loads in other threads or members load themselves at once instead
   * of waiting out their timeoutMs. Bounded by CLAIM_RELEASE_MS: an unreachable primary leaves the
   * claim to expire, as before.
   */
  private async releaseClaims(): Promise<void> {
    const claims = this.maps.get(CLAIM_MAP);
    if (claims === undefined) return;
    this.releasingClaims = true;
    let timer: NodeJS.Timeout | undefined;
    try {
      await Promise.race([releaseHeldClaims(claims), new Promise<void>((r) => (timer = setTimeout(r, CLAIM_RELEASE_MS)))]);
    } finally {
      clearTimeout(timer);
      this.releasingClaims = false;
    }
  }

  /**
   * Stops the virtual nodes (members) or detaches (attached grids). Later calls on maps fail with
   * GRID_ERR_CLOSED. It also closes the RESP endpoint and the /metrics server, ends this grid's
   * CP session in a cluster, leaves the cluster gracefully (a member: the others promote its
   * backups), and closes the compute pool once its running tasks have finished. Calling it again
   * returns the same promise.
   *
   * @returns A promise that resolves once everything is stopped.
   */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    await this.releaseClaims();
    await this.respServer?.close();
    await this.metricsApi?.close();
    // sessions of grid.cp.session() (RESP connections' among them), then this member's (or this
    // attached thread's) own CP session: their locks and permits go at once; an attached
    // thread's goes through the member, so before its forward channel closes
    await this.cpApi?.closeSessions().catch(() => undefined);
    await this.clusterCp?.close().catch(() => undefined);
    this.forwardClient?.close();
    this.forwarder?.close(); // other threads' pending calls fail with GRID_ERR_CLOSED
    await this.cluster?.close().catch(() => undefined); // leave first: the others promote our backups
    await this.pool?.close(); // lets running compute tasks finish first
    if (!this.isMember) {
      if (this.cpRegion !== undefined) watchCp(this.cpRegion, -1);
      attachedGrids.delete(this.weakSelf);
      attachedGone.unregister(this.weakSelf);
      return;
    }
    watchThreads(this.onThreadExit, -1);
    for (const t of this.respawns) clearTimeout(t);
    this.respawns.clear();
    this.store.markClosed();
    await Promise.all(
      this.vnodes.filter(Boolean).map(
        (v) =>
          new Promise<void>((resolve) => {
            const w = v.worker;
            if (w.threadId === -1) return resolve();
            // ref'd again: an unref'd worker's exit alone would not keep this thread's event loop
            // running, and code after `await grid.close()` would never run
            w.ref();
            const t = setTimeout(() => void w.terminate(), STOP_TIMEOUT_MS);
            w.once('exit', () => {
              clearTimeout(t);
              resolve();
            });
            w.postMessage({ type: 'stop' } satisfies ToVnode);
          }),
      ),
    );
  }
}

/**
 * One process-wide 'worker' listener, and one 'exit' listener per worker, for every grid of this
 * thread however many there are (a listener per grid made the eleventh grid raise
 * MaxListenersExceededWarning, on the process and on every worker): when a worker this thread
 * created exits, each watcher (the member grids, the attached grids' CP regions) gets its thread
 * id. Recovery is idempotent, so a watcher added after the worker started is harmless.
 *
 * The listener is added when this module loads and stays: Node announces a worker only once, at
 * its creation, so one started before the first createGrid (a pool started at boot) would
 * otherwise never be watched, and a lock it died holding would stay taken for good. It costs an
 * 'exit' listener per worker, and keeps nothing alive.
 */
const threadWatchers = new Set<(threadId: number) => void>();
/**
 * This thread's attached grids, open: a worker this thread starts is linked in each
 * (Grid.linkChild). Held weakly: a thread that attaches per task and never closes must not keep
 * every grid object (and its maps' read memos) alive.
 */
const attachedGrids = new Set<WeakRef<Grid>>();
const attachedGone = new FinalizationRegistry<WeakRef<Grid>>((ref) => attachedGrids.delete(ref));
function onAnyWorker(w: Worker): void {
  const tid = w.threadId;
  threadStarted(tid);
  const linked: Grid[] = [];
  for (const ref of attachedGrids) {
    const g = ref.deref();
    if (g === undefined) attachedGrids.delete(ref);
    else if (g.linkChild(tid)) linked.push(g);
  }
  w.once('exit', () => {
    for (const watch of threadWatchers) watch(tid);
    for (const g of linked) g.childExited(tid);
    threadGone(tid);
  });
}
process.on('worker', onAnyWorker);
function watchThreads(watch: (threadId: number) => void, delta: 1 | -1): void {
  if (delta > 0) threadWatchers.add(watch);
  else threadWatchers.delete(watch);
}

/**
 * Attached grids of this thread, by CP region: when a worker this thread created exits, its
 * coordination primitives are released. (Recovery is idempotent, so a member and an attached
 * grid of the same thread both running it is harmless.)
 */
const cpWatched = new Map<SharedArrayBuffer, { region: CpRegion; users: number }>();
function onCpWorker(tid: number): void {
  for (const { region } of cpWatched.values()) region.recoverThread(tid);
}
function watchCp(region: CpRegion, delta: 1 | -1): void {
  const e = cpWatched.get(region.buffer);
  if (delta > 0) {
    if (cpWatched.size === 0) watchThreads(onCpWorker, +1);
    if (e !== undefined) e.users++;
    else cpWatched.set(region.buffer, { region, users: 1 });
    return;
  }
  if (e === undefined || --e.users > 0) return;
  cpWatched.delete(region.buffer);
  if (cpWatched.size === 0) watchThreads(onCpWorker, -1);
}

/**
 * Creates the grid of this process: shared shard stores and `workers` virtual nodes. With
 * `options.cluster` the grid also joins (or founds) a cluster; with `options.resp` and
 * `options.metrics` it starts those endpoints. A failure after the shared memory was allocated
 * closes the grid before the promise rejects.
 *
 * @param options - The grid's options; every one is optional (see {@link GridOptions} for the defaults).
 * @returns The member grid of this process.
 * @throws {InvalidOptionError} when an option is unknown or invalid, or `options.memory`
 * is too small for the partitions; the message names the option (GRID_ERR_INVALID_OPTION). Also
 * when the RESP or /metrics port cannot be listened on.
 * @throws {WorkerError} when a virtual node did not start within 10 s or exited while
 * starting (GRID_ERR_WORKER).
 * @throws Whatever error made the join of `options.cluster` fail.
 *
 * @example
 * ```ts
 * import { createGrid } from 'shardgrid';
 *
 * const grid = await createGrid({ memory: '256MB' }); // workers default to os.availableParallelism()
 * const users = grid.map('users');
 * await users.set('u:1', { name: 'Ada' }, { ttl: 5_000 });
 * await grid.close();
 * ```
 */
export async function createGrid(options?: GridOptions): Promise<Grid> {
  const o = resolveOptions(options);
  const reservePages = Math.max(4, o.workers * 2);
  // the registry (and the per-map counters planMemory budgets for) has a slot per internal map too
  // a cluster data member's evictions go to its copies through the eviction journal (storage/journal.ts)
  const journalSlots = o.cluster !== undefined && !o.cluster.lite ? JOURNAL_SLOTS : 0;
  // a lite member owns no partitions and routes every operation: its store has no pages at all (it
  // allocated the heap and access map of options.memory, ~17MB at the default 256MB, never used)
  const noPages = o.cluster?.lite === true;
  const init = { partitions: o.partitions, memory: o.memory, maxMaps: o.maxMaps + INTERNAL_MAPS.length, maxKeyBytes: o.maxKeyBytes, maxValueBytes: o.maxValueBytes, reservePages, journalSlots, noPages };
  const plan = planMemory(init);
  const minPages = o.partitions * 2 + reservePages;
  if (!noPages && plan.maxPages < minPages) {
    // the smallest budget in whole MB whose plan leaves minPages pages (the plan's bookkeeping
    // grows with the budget, so no closed form); a few hundred plans at most, each a few steps
    let mb = Math.ceil(o.memory / 1048576);
    while (mb < 1 << 16 && planMemory({ ...init, memory: mb * 1048576 }).maxPages < minPages) mb++;
    throw new InvalidOptionError(`options.memory is too small for ${o.partitions} partitions: it leaves ${plan.maxPages} pages of ${2 ** plan.pageShift} bytes, at least ${minPages} are needed (about ${mb}MB)`, { option: 'options.memory' });
  }
  const buffers = createStoreBuffers(init);
  const store = new ShardStore(buffers, o.lockTimeout);
  for (const name of INTERNAL_MAPS) store.mapId(name); // before any map of the user's can take their slots
  const handle: GridHandle = Object.freeze({
    kind: 'shardgrid.handle', version: 1, buffers, lockTimeout: o.lockTimeout, maxMaps: o.maxMaps, clustered: o.cluster !== undefined,
    ...(o.cluster !== undefined ? { forward: forwardChannelName(), cpSessionTtlMs: o.cp.sessionTtlMs } : { cp: CpRegion.create({ capacity: o.cp.primitives, maxValueBytes: o.cp.maxValueBytes, waiters: o.cp.waiters }) }),
    modules: o.compute.modules,
    computeTimeoutMs: o.compute.timeoutMs,
    processorTimeoutMs: o.compute.processorTimeoutMs,
  });
  // options.signal: an abort stops the start where it is (a join's loops, its dials and requests)
  const signal = o.signal;
  const aborted = (): GridClosedError => new GridClosedError('createGrid was aborted (options.signal) before the grid was up', { aborted: true });
  const isAborted = (): boolean => signal?.aborted === true; // a function: the signal changes under the awaits
  if (isAborted()) throw aborted();
  const grid = new Grid(handle, store, o);
  await grid.start();
  try {
    grid.registerMetrics();
  } catch (e) {
    await grid.close();
    throw e;
  }
  if (o.cluster !== undefined || isAborted()) {
    try {
      if (isAborted()) throw aborted();
      // a taken RESP or metrics port fails the start before this member joins: it used to join as
      // a data member, get partitions planned onto it, and leave again at once
      await portFree(o.resp?.host, o.resp?.port, 'options.resp');
      await portFree(o.metrics?.host, o.metrics?.port, 'options.metrics');
      await grid.joinCluster(signal);
      if (isAborted()) throw aborted();
    } catch (e) {
      await grid.close();
      throw isAborted() ? aborted() : e;
    }
  }
  try {
    await grid.startResp();
    await grid.startMetrics();
  } catch (e) {
    await grid.close();
    throw e;
  }
  return grid;
}

/** Resolves when `host:port` can be listened on now (port 0 or none: nothing to check); else GRID_ERR_INVALID_OPTION as the server would give. */
function portFree(host: string | undefined, port: number | undefined, option: string): Promise<void> {
  if (host === undefined || port === undefined || port === 0) return Promise.resolve();
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', (e) => reject(new InvalidOptionError(`${option}: cannot listen on ${host}:${port}: ${e.message}`, { option: `${option}.port` })));
    probe.listen(port, host, () => probe.close(() => resolve()));
  });
}

/**
 * In another thread of the same process: the same grid over the same shared memory. The
 * attached grid runs no virtual nodes; its `close()` detaches this thread only. Its maps have the
 * options registered for their names; in a thread attached to a cluster member, calls that the
 * member must route or replicate go through the member's main thread.
 *
 * @param handle - `grid.handle` of the grid made by createGrid, passed to this thread (workerData, postMessage).
 * @returns This thread's grid.
 * @throws {AttachError} when `handle` is not a shardgrid handle, or is unusable (GRID_ERR_ATTACH).
 * @throws {GridClosedError} when the grid the handle belongs to is closed (GRID_ERR_CLOSED).
 *
 * @example
 * ```ts
 * // worker.mjs, started with { workerData: { handle: grid.handle } }
 * import { workerData } from 'node:worker_threads';
 * import { attachGrid } from 'shardgrid';
 *
 * const grid = await attachGrid(workerData.handle);
 * console.log(await grid.map('users').get('u:1'));
 * await grid.close();
 * ```
 */
export async function attachGrid(handle: GridHandle): Promise<Grid> {
  const h = handle as Partial<GridHandle> | undefined;
  const b = h?.buffers;
  if (h?.kind !== 'shardgrid.handle' || h.version !== 1 || b === undefined || !(b.control instanceof SharedArrayBuffer) || !(b.heap instanceof SharedArrayBuffer) || !(b.access instanceof SharedArrayBuffer) || (h.cp !== undefined && !(h.cp instanceof SharedArrayBuffer))) {
    throw new AttachError('not a shardgrid handle: pass grid.handle from the thread that created the grid');
  }
  const modules = handleModules(h.modules);
  let store: ShardStore;
  try {
    store = new ShardStore(b, h.lockTimeout ?? 5000);
  } catch (e) {
    throw new AttachError(`grid handle is unusable: ${(e as Error).message}`);
  }
  if (store.closed) throw new GridClosedError('the grid this handle belongs to is closed');
  try {
    const t = handle.computeTimeoutMs;
    if (t !== undefined && !(Number.isInteger(t) && t >= 1 && t <= MAX_COMPUTE_TIMEOUT_MS)) throw new Error('computeTimeoutMs must be a positive integer of ms');
    const pt = handle.processorTimeoutMs;
    if (pt !== undefined && !(Number.isInteger(pt) && pt >= 0 && pt <= MAX_COMPUTE_TIMEOUT_MS)) throw new Error('processorTimeoutMs must be an integer of ms, 0 or more');
    return new Grid(Object.freeze({ ...handle, modules }), store);
  } catch (e) {
    throw new AttachError(`grid handle is unusable: ${(e as Error).message}`);
  }
}

/**
 * The registry a handle carries, as a frozen null-prototype table. The handle comes from the
 * owning process and is trusted, but only registered-looking entries (a module name and a file:
 * URL) are taken: no other kind of URL is ever loaded, whatever the path it came by.
 */
function handleModules(m: unknown): ModuleTable {
  if (m === undefined) return EMPTY_MODULES;
  if (typeof m !== 'object' || m === null || Array.isArray(m)) throw new AttachError('grid handle is unusable: modules must be an object');
  const table = Object.create(null) as Record<string, string>;
  for (const [name, href] of Object.entries(m)) {
    if (!MODULE_NAME.test(name) || typeof href !== 'string' || !href.startsWith('file:')) throw new AttachError(`grid handle is unusable: module '${name.slice(0, 80)}' is not a registered file: URL`);
    table[name] = href;
  }
  return Object.freeze(table);
}
