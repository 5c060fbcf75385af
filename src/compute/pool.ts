/**
 * The compute pool of one grid object: threads that attach to the grid's shared memory
 * (`attachGrid(handle)`, once per thread) and run next to the data: a piscina pool for
 * aggregation tasks, and threads of their own for a cluster member's entry processors
 * (processor-threads.ts: one byte array per task each way, no piscina envelope). Each started on
 * first use, closed by grid.close(). One worker entry: ./pool-worker.ts.
 */
import { Piscina } from 'piscina';
import { GridClosedError, InvalidArgumentError, TimeoutError, WorkerError, errorFromWire } from '../errors.js';
import { spawnExecArgv } from '../runtime/exec-argv.js';
import { libFile } from '../runtime/lib-file.js';
import type { GridHandle } from '../runtime/messages.js';
import { afterThreadExit } from '../runtime/thread-exit.js';
import { processorTimeout } from './processor.js';
import { ProcessorThreads, type ProcessorRun } from './processor-threads.js';
import { GATE_RUNNING, GATE_STATE, GATE_STOPPED, GATE_THREAD, type PoolInit, type PoolReply, type PoolTask, type ProcessorReply, type ProcessorTask } from './types.js';

const WORKER_FILE = libFile('../compute/pool-worker.js');
/** How long close() lets running tasks finish before the threads are terminated. */
const CLOSE_TIMEOUT_MS = 10_000;
/** runProcessor's timer fired and stopped the processor, which had started on thread `tid` (-1: had not started). */
class Stopped {
  constructor(readonly tid: number) {}
}

export class ComputePool {
  readonly size: number;
  /** Aggregations' threads, started on the first. */
  private pool: Piscina<PoolTask, PoolReply> | undefined;
  /** Entry processors' own threads (a cluster member's computes), started on the first. */
  private processors: ProcessorThreads | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly handle: GridHandle,
    size: number,
  ) {
    this.size = size;
  }

  /** A fixed set of `size` threads: each keeps its attached grid and loaded user modules warm. */
  private piscina(): Piscina<PoolTask, PoolReply> {
    const pool = new Piscina<PoolTask, PoolReply>({
      filename: WORKER_FILE,
      name: 'default',
      minThreads: this.size,
      maxThreads: this.size,
      idleTimeout: Infinity,
      closeTimeout: CLOSE_TIMEOUT_MS,
      workerData: { handle: this.handle } satisfies PoolInit,
      execArgv: spawnExecArgv(),
    });
    // piscina emits 'error' when close() times out; without a listener that would throw
    pool.on('error', () => undefined);
    return pool;
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
      reply = await (this.pool ??= this.piscina()).run(task, abort === undefined ? undefined : { signal: abort.signal });
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

  /**
   * Runs an entry processor on a processor thread (a cluster member's compute, local.ts
   * computeTask; processor-threads.ts): its reply, and the thread, whose partition lock the caller
   * takes over to apply the reply's write (applyComputed). Each thread is handed several tasks at
   * once, so the stop is done here with the task's gate, not by an abort. After `ms`, unless the
   * thread already claimed the gate (it is past user code and answers at once), the gate says
   * STOPPED: a task that has not started fails at once and is skipped when its turn comes; a
   * started one has its thread terminated (another is started), and the TimeoutError waits for
   * that thread's exit, where its partition lock is recovered, so the caller's next call finds
   * the partition free. Tasks queued on a thread terminated for another (never started: no thread
   * id in their gate) are handed to the other threads, within their own time.
   */
  async runProcessor(task: Omit<ProcessorTask, 'kind' | 'gate'>, ms: number): Promise<{ reply: ProcessorReply; tid: number }> {
    const end = Date.now() + ms;
    if (this.closing !== undefined) throw new GridClosedError('the grid is closed');
    const threads = (this.processors ??= new ProcessorThreads(this.handle, this.size, WORKER_FILE, spawnExecArgv()));
    const run = threads.submit(task.map, task.key, task.processor.module, task.processor.name, task.arg);
    let timer: NodeJS.Timeout | undefined;
    const stopped = new Promise<never>((_, reject) => {
      timer = setTimeout(() => {
        const tid = this.stopProcessor(threads, run);
        if (tid !== undefined) reject(new Stopped(tid));
      }, Math.max(0, end - Date.now()));
    });
    let done: { reply: PoolReply; tid: number };
    try {
      done = await Promise.race([run.promise, stopped]);
    } catch (e) {
      if (e instanceof Stopped) {
        run.promise.catch(() => undefined); // its thread was terminated, or it is skipped when its turn comes
        if (e.tid < 0) throw processorTimeout(task.processor, ms, 'did not start in time: it waited behind other entry processors (options.compute.workers threads) or for its partition\'s lock');
        await afterThreadExit(e.tid);
        throw processorTimeout(task.processor, ms, 'did not return in time and was stopped with its pool thread');
      }
      if (this.closing !== undefined) throw new GridClosedError('the grid was closed while an entry processor ran');
      throw new WorkerError(`a compute pool thread failed while an entry processor ran (nothing was written): ${(e as Error)?.message ?? String(e)}`);
    } finally {
      clearTimeout(timer);
    }
    if (!done.reply.ok) throw errorFromWire(done.reply.error);
    return { reply: done.reply.value as ProcessorReply, tid: done.tid };
  }

  /**
   * The processor's time ran out: claims its gate (undefined when its thread claimed it first: it
   * is past user code) and terminates its thread if it started there; returns that thread's id
   * (-1: it had not started). The thread id is read after the claim: a thread that stores it later
   * reads STOPPED and skips the task. A task still waiting for a slot is just dropped.
   */
  private stopProcessor(threads: ProcessorThreads, run: ProcessorRun): number | undefined {
    if (run.slot < 0) return threads.withdraw(run) ? -1 : undefined;
    const gate = threads.gate(run.slot);
    if (Atomics.compareExchange(gate, GATE_STATE, GATE_RUNNING, GATE_STOPPED) !== GATE_RUNNING) return undefined;
    const tid = Atomics.load(gate, GATE_THREAD) - 1;
    if (tid >= 0) threads.terminate(tid);
    return tid;
  }

  /** Lets running tasks finish (up to CLOSE_TIMEOUT_MS), then stops the threads. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= Promise.all([this.pool?.close(), this.processors?.close(CLOSE_TIMEOUT_MS)].map((p) => p?.catch(() => undefined))).then(() => undefined));
  }
}

/** Virtual nodes of the member that owns `store` (the default pool size of attached grids). */
export function vnodeCount(store: { partitions: number; ownerOf(p: number): number }): number {
  let n = 0;
  for (let p = 0; p < store.partitions; p++) n = Math.max(n, store.ownerOf(p) + 1);
  return Math.max(1, n);
}
