/**
 * Aggregations: the caller's half (split the partitions into one task per pool thread, run them,
 * combine the partials) and the pool thread's half (scan a group of partitions into a partial).
 *
 * For the cluster: the member that owns a set of partitions runs `aggregatePartitions` over them
 * and sends back its partial (not finished); the caller merges all members' partials with
 * `combineAndFinish`. Partials of the built-ins are plain numbers / arrays (msgpack-safe).
 */
import { InvalidArgumentError } from '../errors.js';
import type { ModuleTable } from '../config.js';
import type { Grid } from '../grid.js';
import type { ShardStore } from '../storage/store.js';
import { resolveAggregator, type ResolvedAggregator } from './aggregators.js';
import type { ComputePool } from './pool.js';
import type { AggregatorRef, PoolTask } from './types.js';

/** What the caller's half needs from a grid (Grid, or GridMap's host). */
export interface PoolHost {
  readonly store: ShardStore;
  /** The grid's registered compute modules (options.compute.modules, or the handle's copy). */
  readonly modules: ModuleTable;
  /** How long an aggregation may run, ms (options.compute.timeoutMs). */
  readonly computeTimeoutMs: number;
  assertOpen(): void;
  computePool(): ComputePool;
}

function checkPartitions(partitions: readonly number[], count: number): void {
  if (!Array.isArray(partitions)) throw new InvalidArgumentError('partitions must be an array of partition numbers');
  const seen = new Set<number>();
  for (const p of partitions) {
    if (!Number.isInteger(p) || p < 0 || p >= count) throw new InvalidArgumentError(`partition ${String(p)} is not a partition number from 0 to ${count - 1}`);
    if (seen.has(p)) throw new InvalidArgumentError(`partition ${p} is listed twice`);
    seen.add(p);
  }
}

/**
 * @internal Runs `agg` over `partitions` of map `mapName` in the host's pool, as `tasks` tasks
 * (default: one per pool thread; partitions dealt round-robin), and combines the partials.
 */
export async function runGroups(host: PoolHost, mapName: string, partitions: readonly number[], agg: ResolvedAggregator, arg: unknown, tasks?: number, timeoutMs = host.computeTimeoutMs): Promise<unknown> {
  if (partitions.length === 0) return agg.empty(arg);
  const pool = host.computePool();
  const n = Math.max(1, Math.min(tasks ?? pool.size, partitions.length));
  const groups: number[][] = Array.from({ length: n }, () => []);
  for (let i = 0; i < partitions.length; i++) groups[i % n].push(partitions[i]);
  // one deadline for the whole call: tasks still running (or queued) then are stopped
  const limit = { at: Date.now() + timeoutMs, ms: timeoutMs };
  const settled = await Promise.allSettled(
    groups.map((g) => pool.run({ kind: 'aggregate', map: mapName, partitions: g, aggregator: agg.spec, arg } satisfies PoolTask, limit)),
  );
  // wait for every task before failing, so no task of this call is still running afterwards
  for (const s of settled) if (s.status === 'rejected') throw s.reason;
  let acc = (settled[0] as PromiseFulfilledResult<unknown>).value;
  for (let i = 1; i < settled.length; i++) acc = agg.combine(acc, (settled[i] as PromiseFulfilledResult<unknown>).value);
  return acc;
}

/**
 * Aggregates the given partitions of map `mapName` held in this process, in the grid's compute
 * pool, and returns the combined partial accumulator (not finished). For the member that owns
 * the partitions; finish with `combineAndFinish`.
 */
export async function aggregatePartitions(grid: Grid, mapName: string, partitions: readonly number[], aggregator: AggregatorRef, arg?: unknown, timeoutMs?: number): Promise<unknown> {
  grid.assertOpen();
  grid.map(mapName);
  checkPartitions(partitions, grid.store.partitions);
  const agg = await resolveAggregator(aggregator, grid.modules);
  agg.validate(arg);
  return runGroups(grid, mapName, partitions, agg, arg, undefined, timeoutMs);
}

/**
 * Merges partial accumulators (from aggregatePartitions, any member) and finishes the result. A
 * user aggregator is resolved through `grid`'s registered modules.
 */
export async function combineAndFinish(grid: { readonly modules: ModuleTable }, aggregator: AggregatorRef, partials: readonly unknown[], arg?: unknown): Promise<unknown> {
  if (!Array.isArray(partials)) throw new InvalidArgumentError('partials must be an array');
  const agg = await resolveAggregator(aggregator, grid.modules);
  if (partials.length === 0) return agg.finish(agg.empty(arg));
  let acc = partials[0];
  for (let i = 1; i < partials.length; i++) acc = agg.combine(acc, partials[i]);
  return agg.finish(acc);
}

/** @internal GridMap.aggregate: every partition of this process. */
export async function aggregateMap(host: PoolHost, mapName: string, aggregator: AggregatorRef, arg: unknown): Promise<unknown> {
  const agg = await resolveAggregator(aggregator, host.modules);
  agg.validate(arg);
  host.assertOpen();
  const all = Array.from({ length: host.store.partitions }, (_, i) => i);
  return agg.finish(await runGroups(host, mapName, all, agg, arg));
}

/** Pool thread: scans a group of partitions into one partial. */
export async function runAggregateTask(grid: Grid, task: Extract<PoolTask, { kind: 'aggregate' }>): Promise<unknown> {
  const agg = await resolveAggregator(task.aggregator, grid.modules);
  const c = agg.collector(task.arg);
  const map = grid.map(task.map);
  const visit = (k: string | undefined, v: unknown): void => c.visit(k, v);
  const field = c.field !== undefined && c.visitField !== undefined ? { reader: c.field, visit: (x: number | null | undefined) => c.visitField!(x) } : undefined;
  for (const p of task.partitions) {
    await map.scanPartition(p, c.keys, c.values, visit, field);
    if (!c.underLock) c.flush();
  }
  return c.partial();
}
