/** Message shapes between a member's main thread and its virtual nodes (one worker entry: worker.ts). */
import type { StoreBuffers } from '../storage/store.js';

/** Handed to a virtual node once, at start-up, as workerData. */
export interface VnodeInit {
  index: number;
  buffers: StoreBuffers;
  partitions: number[];
  lockTimeout: number;
  expiryInterval: number;
}

export type ToVnode =
  | { type: 'assign'; partitions: number[] }
  | { type: 'stop' };

export type FromVnode =
  | { type: 'ready'; index: number }
  | { type: 'stopped'; index: number };

/** The structured-clone-able value behind grid.handle. */
export interface GridHandle {
  /** Marks a shardgrid handle (attachGrid checks it). */
  readonly kind: 'shardgrid.handle';
  /** The handle's format version. */
  readonly version: 1;
  /** The SharedArrayBuffers of the grid's shard stores (control, heap, access map). */
  readonly buffers: StoreBuffers;
  /** options.lockTimeout of the grid, ms. */
  readonly lockTimeout: number;
  /** options.maxMaps of the grid. */
  readonly maxMaps: number;
  /** True when the creating process is a cluster member (attached threads then forward writes to it). */
  readonly clustered?: boolean;
  /** Cluster members: the BroadcastChannel their main thread takes other threads' map calls on. */
  readonly forward?: string;
  /**
   * The creating grid's registered compute modules (name → file: URL href), so that attached
   * grids and compute pool threads resolve a module name exactly as the member does. The handle
   * is made by the owning process and trusted; attachGrid still checks every entry is a file: URL.
   */
  readonly modules?: Readonly<Record<string, string>>;
  /** options.compute.timeoutMs of the creating grid: how long an aggregation of an attached grid may run, ms. */
  readonly computeTimeoutMs?: number;
  /** options.compute.processorTimeoutMs of the creating grid: how long an entry processor of an attached grid may run, ms (0: no limit). */
  readonly processorTimeoutMs?: number;
  /** The coordination primitives' region (grid.cp; src/cp/layout.ts). Absent for cluster members: their grid.cp runs on the metadata Raft log. */
  readonly cp?: SharedArrayBuffer;
  /** Cluster members: options.cp.sessionTtlMs, for the CP sessions of their attached threads. */
  readonly cpSessionTtlMs?: number;
}
