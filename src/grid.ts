/**
 * Grid: lifecycle of a member (its shared buffers and virtual nodes) and the maps over it.
 * `createGrid` makes the member; `attachGrid(handle)` gives any other thread of the process the
 * same grid over the same memory.
 */
import { EventEmitter } from 'node:events';
import { Worker } from 'node:worker_threads';
import { MODULE_NAME, resolveOptions, type GridOptions, type MapOptions, type ModuleTable, type ResolvedOptions } from './config.js';
import { AttachError, GridClosedError, InvalidArgumentError, InvalidOptionError, TooManyMapsError, WorkerError } from './errors.js';
import { GridMap, type MapHost } from './map.js';
import { assignPartitions } from './ring/ring.js';
import { ValueEncoder } from './storage/codec.js';
import { ShardStore, createStoreBuffers, planMemory, type PartitionStats } from './storage/store.js';
import type { FromVnode, GridHandle, ToVnode, VnodeInit } from './runtime/messages.js';
import { workerExecArgv } from './runtime/exec-argv.js';
import { libFile } from './runtime/lib-file.js';
import { ComputePool, vnodeCount } from './compute/pool.js';
import { ClusterNode } from './cluster/node.js';
import { RoutedMap } from './cluster/routed-map.js';
import type { MemberInfo } from './cluster/membership.js';
import { migrating, ownedBy } from './ring/table.js';
import { ForwardClient, ForwardServer, ForwardedMap, forwardChannelName } from './runtime/forward.js';
import { CpRegion } from './cp/region.js';
import { CoordinationPrimitives } from './cp/primitives.js';

export type { GridHandle } from './runtime/messages.js';

export interface WorkerStats {
  index: number;
  threadId: number;
  partitions: number;
  restarts: number;
}

export interface GridStats {
  entries: number;
  bytesUsed: number;
  bytesLimit: number;
  liveBytes: number;
  hits: number;
  misses: number;
  evictions: number;
  expirations: number;
  pageSize: number;
  partitions: PartitionStats[];
  workers: WorkerStats[];
  /** Locks taken over from threads that died holding them, and the partitions repaired. */
  recoveries: number;
  /** Coordination primitives (grid.cp) whose locks, permits or waiters a dead thread left, and that were released. */
  cpRecoveries: number;
  /** Cluster members (alive or suspect) with the partitions each holds; absent for a single process. */
  members?: MemberStats[];
  /** This member's id and the partition table version it applies; absent for a single process. */
  cluster?: { memberId: string; url: string; lite: boolean; tableVersion: number; migrating: number };
}

export interface MemberStats {
  id: string;
  url: string;
  lite: boolean;
  status: string;
  primaries: number;
  backups: number;
}

interface Vnode {
  index: number;
  worker: Worker;
  threadId: number;
  partitions: number[];
  restarts: number;
}

const WORKER_FILE = libFile('./worker.js');
const EMPTY_MODULES: ModuleTable = Object.freeze(Object.create(null) as Record<string, string>);
const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 3_000;

export class Grid extends EventEmitter implements MapHost {
  readonly store: ShardStore;
  readonly encoder: ValueEncoder;
  readonly lockTimeout: number;
  /** Structured-clone-able: pass it to another thread and call attachGrid(handle) there. */
  readonly handle: GridHandle;
  /** @internal Registered compute modules (options.compute.modules; attached grids: the handle's copy). */
  readonly modules: ModuleTable;
  private readonly maps = new Map<string, GridMap<any>>();
  private readonly vnodes: Vnode[] = [];
  private readonly options: ResolvedOptions | undefined;
  private closed = false;
  private closing: Promise<void> | undefined;
  private recoveries = 0;
  private cpRecoveries = 0;
  private readonly onWorker = (w: Worker): void => this.watchThread(w);
  private readonly cpRegion: CpRegion | undefined;
  private cpApi: CoordinationPrimitives | undefined;
  private pool: ComputePool | undefined;
  /** This process as a cluster member (createGrid with options.cluster); undefined otherwise. */
  cluster: ClusterNode | undefined;
  /** @internal set for the compute pool's own attachment (reads partitions it is told to). */
  internal = false;
  /** Member of a cluster: serves the map calls of its other threads (runtime/forward.ts). */
  private forwarder: ForwardServer | undefined;
  /** Attached thread of a cluster member: forwards map calls to the member's main thread. */
  private forwardClient: ForwardClient | undefined;

  /** @internal use createGrid / attachGrid */
  constructor(handle: GridHandle, store: ShardStore, options?: ResolvedOptions) {
    super();
    this.handle = handle;
    this.store = store;
    this.lockTimeout = handle.lockTimeout;
    this.encoder = new ValueEncoder(store.maxValueBytes);
    this.options = options;
    this.modules = options?.compute.modules ?? handle.modules ?? EMPTY_MODULES;
    this.cpRegion = handle.cp !== undefined ? new CpRegion(handle.cp, handle.lockTimeout) : undefined;
    // An attached thread watches the workers *it* creates (the 'worker' event fires only in the
    // creating thread), so their coordination primitives are released when they exit too.
    if (options === undefined && this.cpRegion !== undefined) watchCp(this.cpRegion, +1);
  }

  /**
   * Coordination primitives (locks with fencing tokens, atomicLong, atomicRef, semaphores) by
   * name, shared by every thread that attached this grid. In a clustered grid every call throws
   * GRID_ERR_UNSUPPORTED for now.
   */
  get cp(): CoordinationPrimitives {
    return (this.cpApi ??= new CoordinationPrimitives(this.cpRegion, () => this.assertOpen()));
  }

  /** @internal MapHost.clustered: a cluster member or a thread attached to one. */
  get clustered(): boolean {
    return this.handle.clustered === true;
  }

  /** True for the grid made by createGrid (it owns the virtual nodes); false for attached ones. */
  get isMember(): boolean {
    return this.options !== undefined;
  }

  assertOpen(): void {
    if (this.closed || this.store.closed) throw new GridClosedError('the grid is closed');
  }

  /** A named map. Maps are namespaces over the same partitions; the same name gives the same data in every thread. */
  map<V = unknown>(name: string, options?: MapOptions): GridMap<V> {
    this.assertOpen();
    if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('map name must be a non-empty string');
    const cacheKey = options?.ttl !== undefined ? `${name}\u0000${options.ttl}` : name;
    const known = this.maps.get(cacheKey);
    if (known !== undefined) return known as GridMap<V>;
    const id = this.store.mapId(name);
    if (id === -2) throw new InvalidArgumentError(`map name is over 256 UTF-8 bytes`);
    if (id < 0) throw new TooManyMapsError(`the grid already has ${this.handle.maxMaps} maps (options.maxMaps)`);
    const m = this.cluster !== undefined ? new RoutedMap<V>(this, this.cluster, name, id, options) : this.forwarding() ? new ForwardedMap<V>(this, this.forwardClientOf(), name, id, options) : new GridMap<V>(this, name, id, options);
    this.maps.set(cacheKey, m);
    return m;
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

  /** @internal The piscina pool that runs aggregations: created on first use, closed by close(). */
  computePool(): ComputePool {
    this.assertOpen();
    return (this.pool ??= new ComputePool(this.handle, this.options?.compute.workers ?? this.options?.workers ?? vnodeCount(this.store)));
  }

  stats(): GridStats {
    const s = this.store.stats();
    return {
      entries: s.entries,
      bytesUsed: s.bytesUsed,
      bytesLimit: this.options?.memory ?? s.overheadBytes + s.pagesMax * s.pageSize,
      liveBytes: s.liveBytes,
      hits: s.hits,
      misses: s.misses,
      evictions: s.evictions,
      expirations: s.expirations,
      pageSize: s.pageSize,
      partitions: s.partitions,
      workers: this.vnodes.map((v) => ({ index: v.index, threadId: v.threadId, partitions: v.partitions.length, restarts: v.restarts })),
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
  async joinCluster(): Promise<void> {
    const node = new ClusterNode(this, this.options!.cluster!);
    this.cluster = node;
    node.onOp((b) => {
      const name = b.m;
      if (typeof name !== 'string' || name.length === 0) throw new InvalidArgumentError('grid.op: map name must be a non-empty string');
      return (this.map(name) as RoutedMap).serve(b);
    });
    node.on('member-joined', (info: MemberInfo) => this.emit('member-joined', info));
    node.on('member-left', (info: MemberInfo, reason: string) => this.emit('member-left', info, reason));
    node.on('partition-lost', (parts: number[]) => this.emit('partition-lost', parts));
    node.on('rejoined', (id: string) => this.emit('rejoined', id));
    await node.start();
    if (this.handle.forward !== undefined) this.forwarder = new ForwardServer(this, this.handle.forward);
  }

  // ── member lifecycle ──────────────────────────────────────────────────────────────────────────

  /** @internal */
  async start(): Promise<void> {
    const o = this.options!;
    process.on('worker', this.onWorker);
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
      await Promise.all(owners.map((i) => this.spawn(i, parts[i], 0)));
    } catch (e) {
      await this.close();
      throw e;
    }
  }

  private spawn(index: number, partitions: number[], restarts: number): Promise<void> {
    const o = this.options!;
    const init: VnodeInit = { index, buffers: this.handle.buffers, partitions, lockTimeout: o.lockTimeout, expiryInterval: o.expiryInterval };
    const worker = new Worker(WORKER_FILE, { workerData: init, name: `shardgrid-vnode-${index}`, execArgv: workerExecArgv() });
    const v: Vnode = { index, worker, threadId: worker.threadId, partitions, restarts };
    this.vnodes[index] = v;
    worker.on('exit', () => {
      if (this.closed || this.vnodes[index] !== v) return;
      // Crash: its partitions' data is in shared memory and stays; recovery of any lock it held
      // runs from the process-wide 'worker' watcher. Start a replacement with the same partitions.
      void this.spawn(index, v.partitions, v.restarts + 1).catch(() => undefined);
    });
    worker.on('error', () => undefined); // the exit handler restarts it
    return new Promise<void>((resolve, reject) => {
      const timer = setTimeout(() => reject(new WorkerError(`virtual node ${index} did not start within ${START_TIMEOUT_MS} ms`)), START_TIMEOUT_MS);
      const onMsg = (m: FromVnode): void => {
        if (m.type !== 'ready') return;
        clearTimeout(timer);
        worker.off('message', onMsg);
        // A virtual node only serves the process: it must not keep it alive. A script that never
        // calls close() then exits when its own work is done, as one using lru-cache does.
        // close() refs it again while it waits for the exit.
        if (!this.closed) worker.unref();
        resolve();
      };
      worker.on('message', onMsg);
      worker.once('exit', (code) => {
        clearTimeout(timer);
        reject(new WorkerError(`virtual node ${index} exited with code ${code} during start`));
      });
    });
  }

  /**
   * Every worker created by this thread (our virtual nodes, the user's own workers, piscina's) is
   * watched: its `exit` is a perfect failure detector, and any grid lock it still held is taken
   * over, the state it protected repaired, and the lock released; its coordination primitives'
   * locks, permits and waiters are released (the next waiter is served at once). An attached
   * grid watches the workers of its own thread for the coordination primitives only.
   */
  private watchThread(w: Worker): void {
    const tid = w.threadId;
    w.once('exit', () => {
      if (this.closed) return;
      if (this.cpRegion !== undefined) this.cpRecoveries += this.cpRegion.recoverThread(tid);
      this.forwarder?.threadExited(tid);
      const repaired = this.store.recoverDeadThread(tid);
      this.recoveries += repaired.length;
    });
  }

  /** Stops the virtual nodes (members) or detaches (attached grids). Later calls on maps fail with GRID_ERR_CLOSED. */
  close(): Promise<void> {
    if (this.closing !== undefined) return this.closing;
    this.closed = true;
    this.closing = this.doClose();
    return this.closing;
  }

  private async doClose(): Promise<void> {
    this.forwardClient?.close();
    this.forwarder?.close(); // other threads' pending calls fail with GRID_ERR_CLOSED
    await this.cluster?.close().catch(() => undefined); // leave first: the others promote our backups
    await this.pool?.close(); // lets running compute tasks finish first
    if (!this.isMember) {
      if (this.cpRegion !== undefined) watchCp(this.cpRegion, -1);
      return;
    }
    process.off('worker', this.onWorker);
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
 * Attached grids of this thread, by CP region, and one 'worker' listener for all of them: when a
 * worker this thread created exits, its coordination primitives are released. (Recovery is
 * idempotent, so a member and an attached grid of the same thread both running it is harmless.)
 */
const cpWatched = new Map<SharedArrayBuffer, { region: CpRegion; users: number }>();
function onCpWorker(w: Worker): void {
  const tid = w.threadId;
  w.once('exit', () => {
    for (const { region } of cpWatched.values()) region.recoverThread(tid);
  });
}
function watchCp(region: CpRegion, delta: 1 | -1): void {
  const e = cpWatched.get(region.buffer);
  if (delta > 0) {
    if (cpWatched.size === 0) process.on('worker', onCpWorker);
    if (e !== undefined) e.users++;
    else cpWatched.set(region.buffer, { region, users: 1 });
    return;
  }
  if (e === undefined || --e.users > 0) return;
  cpWatched.delete(region.buffer);
  if (cpWatched.size === 0) process.off('worker', onCpWorker);
}

/** Creates the grid of this process: shared shard stores and `workers` virtual nodes. */
export async function createGrid(options?: GridOptions): Promise<Grid> {
  const o = resolveOptions(options);
  const reservePages = Math.max(4, o.workers * 2);
  const init = { partitions: o.partitions, memory: o.memory, maxMaps: o.maxMaps, maxKeyBytes: o.maxKeyBytes, maxValueBytes: o.maxValueBytes, reservePages };
  const plan = planMemory(init);
  const minPages = o.partitions * 2 + reservePages;
  if (plan.maxPages < minPages) {
    const need = Math.ceil((o.memory * minPages) / Math.max(1, plan.maxPages));
    throw new InvalidOptionError(`options.memory is too small for ${o.partitions} partitions: it leaves ${plan.maxPages} pages of ${2 ** plan.pageShift} bytes, at least ${minPages} are needed (about ${Math.ceil(need / 1048576)}MB)`, { option: 'options.memory' });
  }
  const buffers = createStoreBuffers(init);
  const store = new ShardStore(buffers, o.lockTimeout);
  const handle: GridHandle = Object.freeze({
    kind: 'shardgrid.handle', version: 1, buffers, lockTimeout: o.lockTimeout, maxMaps: o.maxMaps, clustered: o.cluster !== undefined,
    ...(o.cluster !== undefined ? { forward: forwardChannelName() } : { cp: CpRegion.create({ capacity: o.cp.primitives, maxValueBytes: o.cp.maxValueBytes, waiters: o.cp.waiters }) }),
    modules: o.compute.modules,
  });
  const grid = new Grid(handle, store, o);
  await grid.start();
  if (o.cluster !== undefined) {
    try {
      await grid.joinCluster();
    } catch (e) {
      await grid.close();
      throw e;
    }
  }
  return grid;
}

/** In another thread of the same process: the same grid over the same shared memory. */
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
