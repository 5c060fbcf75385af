/**
 * What GridMap (src/map.ts) shares with its grid and with the modules that hold its operations
 * (src/map-bulk.ts, src/map-atomic.ts, src/compute/local.ts): the MapHost a map belongs to, MapCore (the internal
 * members of a GridMap those modules use), the markers of GridMap.lockedValue, and the map option
 * registration and closed error that grids use. No runtime import of src/map.ts, so nothing here
 * closes an import cycle.
 */
import type { MapOptions, ModuleTable, SetOptions } from './config.js';
import { GridClosedError, InvalidOptionError } from './errors.js';
import type { ValueEncoder } from './storage/codec.js';
import type { ShardStore } from './storage/store.js';
import type { ComputePool } from './compute/pool.js';
import type { GridMap } from './map.js';

/**
 * What a map needs from the grid (or attached grid) it belongs to. Not part of the API: in the
 * declarations only because {@link Grid} implements it.
 */
export interface MapHost {
  /** The shared memory of the grid. */
  readonly store: ShardStore;
  /** This thread's value encoder. */
  readonly encoder: ValueEncoder;
  /** How long an operation waits for a partition lock, ms. */
  readonly lockTimeout: number;
  /**
   * Throws GRID_ERR_CLOSED when the grid is closed. `internal`: a call of the grid's own map of
   * fetch claims, which close() still makes while it releases the claims this grid holds.
   */
  assertOpen(internal?: boolean): void;
  /** The compute pool for aggregations (created on first use). */
  computePool(): ComputePool;
  /** Registered compute modules: the only code compute and aggregate calls can name. */
  readonly modules: ModuleTable;
  /** How long an aggregation may run, ms (options.compute.timeoutMs). */
  readonly computeTimeoutMs: number;
  /** How long an entry processor may run, ms; 0: no limit (options.compute.processorTimeoutMs). */
  readonly processorTimeoutMs: number;
  /**
   * True in a cluster member and its attached threads: every write is routed, leased and
   * replicated there, so no write completes synchronously (setSync/deleteSync refuse).
   */
  readonly clustered?: boolean;
  /** Another map of the same grid by name (map.fetch keeps its claims in one). */
  map?(name: string): GridMap<unknown>;
}

/**
 * The members of a GridMap that the modules holding its operations use (internal members, left
 * out of GridMap's declarations; src/map.ts describes each). key() and value() fill this thread's
 * scratch; lockNow() may hand back a promise, after which the scratch must be filled again;
 * release() ends the write section and lets go of the lock. Not part of the API.
 */
export interface MapCore {
  readonly id: number;
  readonly name: string;
  readonly internal: boolean;
  readonly host: MapHost;
  readonly store: ShardStore;
  readonly enc: ValueEncoder;
  key(key: string): number;
  value(v: unknown): void;
  expiry(options: SetOptions | number | undefined): number;
  lockNow(p: number, asyncWait?: boolean): Promise<unknown> | undefined;
  release(p: number): void;
  memoryFull(): never;
  liveRecord(p: number, now: number): number;
  lockedValue(off: number, now: number, copied: boolean): unknown;
}

/** GridMap.lockedValue: the record's entry has expired. */
export const EXPIRED_RECORD: unique symbol = Symbol('shardgrid.expiredRecord');
/** GridMap.lockedValue: the record's bounds do not hold (not a readable record). */
export const NO_RECORD: unique symbol = Symbol('shardgrid.noRecord');

/**
 * Registers a map's options for the whole grid (every thread: they live in the shared map
 * registry) when `options` is given, at grid.map(name, options). The first options given win;
 * a later call must give the same value for every option it names, or it throws
 * GRID_ERR_INVALID_OPTION (as Hazelcast refuses a conflicting map config). Calls without options
 * always succeed and use whatever is registered, now or later. `want` is `options` resolved
 * (resolveMapOptions), which the caller does before the name takes a registry slot, so that
 * invalid options are refused without using one up.
 */
export function claimMapOptions(store: ShardStore, id: number, name: string, options: MapOptions, want: { ttl: number; cacheValues: boolean }): void {
  const got = store.registerMapOptions(id, want);
  const differs = (options.ttl !== undefined && got.ttl !== want.ttl) || (options.cacheValues !== undefined && got.cacheValues !== want.cacheValues);
  if (differs) {
    throw new InvalidOptionError(`map '${name.slice(0, 80)}' is registered with { ttl: ${got.ttl}, cacheValues: ${got.cacheValues} }: grid.map(name, options) must give the same options, or none`, { option: 'options', map: name, registered: got });
  }
}

/** The GridClosedError a call on a closed grid throws (hosts throw what this returns). */
export function closedError(): GridClosedError {
  return new GridClosedError('the grid is closed');
}
