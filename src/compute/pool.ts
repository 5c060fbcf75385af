/**
 * The compute pool of one grid object: a piscina pool whose threads attach to the grid's shared
 * memory (`attachGrid(handle)`, once per thread) and run aggregation tasks next to the data, and
 * a cluster member's entry processors. Created on first use, closed by grid.close(). One worker
 * entry: ./pool-worker.ts.
 */
import { Piscina } from 'piscina';
import { GridClosedError, InvalidArgumentError, TimeoutError, WorkerError, errorFromWire } from '../errors.js';
import { spawnExecArgv } from '../runtime/exec-argv.js';
import { libFile } from '../runtime/lib-file.js';
import type { GridHandle } from '../runtime/messages.js';
import { afterThreadExit } from '../runtime/thread-exit.js';
import { processorTimeout } from './processor.js';
import { GATE_RUNNING, GATE_STATE, GATE_STOPPED, GATE_THREAD, type PoolInit, type PoolReply, type PoolTask, type ProcessorReply, type ProcessorTask } from './types.js';

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
    const ms = limit === undefined ? 0 : Math.max(1, limit.at - Date.now());
    return this.runUntil(task, ms, undefined, () => {
      throw new TimeoutError(`an aggregation did not finish within ${limit!.ms} ms (options.compute.timeoutMs); its pool threads still running were stopped and replaced`, { timeoutMs: limit!.ms });
    });
  }

  /**
   * Runs an entry processor on a pool thread (a cluster member's compute, local.ts computeTask):
   * its reply, and the thread, whose partition lock the caller takes over to apply the reply's
   * write (applyComputed). After `ms` the task is dropped if still queued, and stopped with its
   * thread if it is still inside user code (`gate`: a thread that already claimed the gate is
   * past user code and answers at once). A stopped thread's partition lock is recovered when it
   * exits; the TimeoutError comes after that, so the caller's next call on the partition finds it
   * free.
   */
  async runProcessor(task: Omit<ProcessorTask, 'kind' | 'gate'>, ms: number): Promise<{ reply: ProcessorReply; tid: number }> {
    const gate = new Int32Array(new SharedArrayBuffer(8));
    const stop = (): boolean => Atomics.compareExchange(gate, GATE_STATE, GATE_RUNNING, GATE_STOPPED) === GATE_RUNNING;
    const reply = (await this.runUntil({ kind: 'compute', ...task, gate }, ms, stop, async () => {
      const tid = Atomics.load(gate, GATE_THREAD) - 1;
      if (tid < 0) throw processorTimeout(task.processor, ms, 'was still queued behind other compute pool tasks (options.compute.workers threads) and did not run');
      await afterThreadExit(tid);
      throw processorTimeout(task.processor, ms, 'did not return');
    })) as ProcessorReply;
    return { reply, tid: Atomics.load(gate, GATE_THREAD) - 1 };
  }

  /**
   * Runs a task; errors come back as data and are rebuilt as GridErrors. `ms` > 0: a timer then
   * aborts the task (piscina drops it if queued, terminates its thread if running), if `mayStop`
   * (when given) agrees; the call then ends with `timedOut()`, which throws.
   */
  private async runUntil(task: PoolTask, ms: number, mayStop: (() => boolean) | undefined, timedOut: () => never | Promise<never>): Promise<unknown> {
    if (this.closing !== undefined) throw new GridClosedError('the grid is closed');
    let reply: PoolReply;
    const abort = ms > 0 ? new AbortController() : undefined;
    const timer = abort === undefined ? undefined : setTimeout(() => (mayStop === undefined || mayStop()) && abort.abort(), ms);
    try {
      reply = await this.pool.run(task, abort === undefined ? undefined : { signal: abort.signal });
    } catch (e) {
      if (this.closing !== undefined) throw new GridClosedError('the grid was closed while a compute task ran');
      if (abort?.signal.aborted === true) return await timedOut();
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
