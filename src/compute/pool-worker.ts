/**
 * Compute pool thread (piscina worker entry). Attaches to the grid's shared memory on its first
 * task and keeps it; runs aggregation tasks over groups of partitions, reading the shard stores
 * directly (no data crosses a thread until the partial result), and a cluster member's entry
 * processors (compute/local.ts computeTask). Every failure is returned as
 * `{ code, message, data }` so the caller rebuilds the right GridError (piscina would pass a
 * thrown error through structured clone, which drops the class and the code).
 */
import { workerData } from 'node:worker_threads';
import { errorToWire } from '../errors.js';
import { attachGrid, type Grid } from '../grid.js';
import { runAggregateTask } from './aggregate.js';
import type { PoolInit, PoolReply, PoolTask } from './types.js';

const init = workerData as PoolInit;
let grid: Promise<Grid> | undefined;
const attached = (): Promise<Grid> => (grid ??= attachGrid(init.handle).then((a) => ((a.internal = true), a)));

export default async function task(t: PoolTask): Promise<PoolReply> {
  try {
    switch (t.kind) {
      case 'noop':
        return { ok: true, value: null };
      case 'aggregate': {
        return { ok: true, value: await runAggregateTask(await attached(), t) };
      }
      case 'compute':
        return { ok: true, value: await (await attached()).map(t.map).computeTask(t) };
    }
  } catch (e) {
    if (grid !== undefined && (await grid.catch(() => undefined)) === undefined) grid = undefined;
    return { ok: false, error: errorToWire(e) };
  }
}
