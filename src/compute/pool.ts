/**
 * The compute pool of one grid object: a piscina pool whose threads attach to the grid's shared
 * memory (`attachGrid(handle)`, once per thread) and run aggregation tasks next to the data.
 * Created on the first aggregate, closed by grid.close(). One worker entry: ./pool-worker.ts.
 */
import { Piscina } from 'piscina';
import { GridClosedError, InvalidArgumentError, TimeoutError, WorkerError, errorFromWire } from '../errors.js';
import { spawnExecArgv } from '../runtime/exec-argv.js';
import { libFile } from '../runtime/lib-file.js';
import type { GridHandle } from '../runtime/messages.js';
import type { PoolInit, PoolReply, PoolTask } from './types.js';

const WORKER_FILE = libFile('../compute/pool-worker.js');
/** How long close() lets running tasks finish before the threads are terminated. */
const CLOSE_TIMEOUT_MS = 10_000;

export class ComputePool {
  readonly size: number;
  private readonly pool: Piscina<PoolTask, PoolReply>;
  private closing: Promise<void> | undefined;

  constructor(handle: GridHandle, size: number) {
    this.size = size;
    this.pool = new Piscina<PoolTask, PoolReply>({
      filename: WORKER_FILE,
      name: 'default',
      // a fixed set of threads: each keeps its attached grid and loaded user modules warm
      minThreads: size,
      maxThreads: size,
      idleTimeout: Infinity,
      closeTimeout: CLOSE_TIMEOUT_MS,
      workerData: { handle } satisfies PoolInit,
      execArgv: spawnExecArgv(),
    });
    // piscina emits 'error' when close() times out; without a listener that would throw
    this.pool.on('error', () => undefined);
  }

  get closed(): boolean {
    return this.closing !== undefined;
  }

  /**
   * Runs one task on a pool thread. Errors come back as data and are rebuilt as GridErrors. At
   * `limit.at` (ms since the epoch; `limit.ms` after its call started) a task still queued is dropped, and one still running is
   * stopped with its thread (piscina terminates it and starts another): GRID_ERR_TIMEOUT. A user
   * aggregator that never returns would otherwise keep its thread, and every later aggregation
   * of the grid would queue behind it.
   */
  async run(task: PoolTask, limit?: { at: number; ms: number }): Promise<unknown> {
    if (this.closing !== undefined) throw new GridClosedError('the grid is closed');
    let reply: PoolReply;
    const abort = limit === undefined ? undefined : new AbortController();
    const timer = abort === undefined ? undefined : setTimeout(() => abort.abort(), Math.max(0, limit!.at - Date.now()));
    try {
      reply = await this.pool.run(task, abort === undefined ? undefined : { signal: abort.signal });
    } catch (e) {
      if (this.closing !== undefined) throw new GridClosedError('the grid was closed while a compute task ran');
      if (abort?.signal.aborted === true) {
        throw new TimeoutError(`an aggregation did not finish within ${limit!.ms} ms (options.compute.timeoutMs); its pool threads still running were stopped and replaced`, { timeoutMs: limit!.ms });
      }
      const err = e as Error;
      if (err?.name === 'DataCloneError') throw new InvalidArgumentError(`the aggregator argument cannot be passed to the compute pool: ${err.message}`);
      throw new WorkerError(`a compute pool thread failed: ${err?.message ?? String(e)}`);
    } finally {
      clearTimeout(timer);
    }
    if (!reply.ok) throw errorFromWire(reply.error);
    return reply.value;
  }

  /** Lets running tasks finish (up to CLOSE_TIMEOUT_MS), then stops the threads. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= this.pool.close().catch(() => undefined));
  }
}

/** Virtual nodes of the member that owns `store` (the default pool size of attached grids). */
export function vnodeCount(store: { partitions: number; ownerOf(p: number): number }): number {
  let n = 0;
  for (let p = 0; p < store.partitions; p++) n = Math.max(n, store.ownerOf(p) + 1);
  return Math.max(1, n);
}
