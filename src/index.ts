// Public API of shardgrid: re-exports only.
export { createGrid, attachGrid, Grid } from './grid.js';
export type { GridEvents, GridHandle, GridStats, MemberStats, WorkerStats } from './grid.js';
export type { MemberInfo, MemberStatus } from './cluster/membership.js';
export type { Logger, LogMethod } from './log.js';
export { GridMap } from './map.js';
export type { GridOptions, ClusterOptions, ComputeOptions, CpOptions, MapOptions, SetOptions } from './config.js';
export type { FetchOptions, Loader as FetchLoader } from './fetch.js';
export type { PartitionStats } from './storage/store.js';
export type { Aggregator, AggregatorRef, BuiltinAggregator, ComputeRef, EntryProcessor, FieldArg, ProcessorEntry } from './compute/types.js';
export * from './errors.js';
export { fetchClusterStatus } from './cluster/status.js';
export type { ClusterStatus, ClusterMemberStatus, ClusterCpStatus } from './cluster/status.js';
export { createFence } from './cp/fence.js';
export type { Fence } from './cp/fence.js';
export type { CoordinationPrimitives, CpSession, FencedLock, AtomicLong, AtomicRef, Semaphore, LockOptions, TryLockOptions, AcquireOptions, SemaphoreOptions, Versioned } from './cp/primitives.js';
