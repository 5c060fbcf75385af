/**
 * The compute pool of one grid object: piscina pools whose threads attach to the grid's shared
 * memory (`attachGrid(handle)`, once per thread) and run next to the data: aggregation tasks, and
 * (threads of their own) a cluster member's entry processors. Each started on first use, closed by
 * grid.close(). One worker entry: ./pool-worker.ts.
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
/**
 * Entry processor tasks a thread of the processor pool is handed at once: they queue on the
 * thread, which runs them one after the other without a round trip to the caller in between
 * (64 computes in flight cost ~5x one at a time with one task per thread).
 */
const PROCESSOR_PIPELINE = 32;
/** runProcessor's timer fired and stopped the processor. */
const STOPPED = Symbol('stopped');

export class ComputePool {
  readonly size: number;
  /** Aggregations' threads, started on the first. */
  private pool: Piscina<PoolTask, PoolReply> | undefined;
  /** Entry processors' own threads (a cluster member's computes), started on the first. */
  private processors: Piscina<PoolTask, PoolReply> | undefined;
  private closing: Promise<void> | undefined;

  constructor(
    private readonly handle: GridHandle,
    size: number,
  ) {
    this.size = size;
  }

  /** A fixed set of `size` threads: each keeps its attached grid and loaded user modules warm. */
  private piscina(perThread: number): Piscina<PoolTask, PoolReply> {
    const pool = new Piscina<PoolTask, PoolReply>({
      filename: WORKER_FILE,
      name: 'default',
      minThreads: this.size,
      maxThreads: this.size,
      concurrentTasksPerWorker: perThread,
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
      reply = await (this.pool ??= this.piscina(1)).run(task, abort === undefined ? undefined : { signal: abort.signal });
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
   * Runs an entry processor on a thread of the processor pool (a cluster member's compute,
   * local.ts computeTask): its reply, and the thread, whose partition lock the caller takes over to
   * apply the reply's write (applyComputed). The processor pool hands each thread up to
   * PROCESSOR_PIPELINE tasks at once, so its tasks carry no abort signal (piscina never queues a
   * task behind an abortable one); the stop is done here instead. After `ms`, unless the thread
   * already claimed the gate (it is past user code and answers at once), the gate says STOPPED:
   * a task that has not started fails at once and is skipped when its turn comes; a started one
   * has its thread terminated (piscina starts another), and the TimeoutError waits for that
   * thread's exit, where its partition lock is recovered, so the caller's next call finds the
   * partition free. Tasks queued on a thread terminated for another (never started: no thread id
   * in their gate) are handed to the replacement thread, within their own time.
   */
  async runProcessor(task: Omit<ProcessorTask, 'kind' | 'gate'>, ms: number): Promise<{ reply: ProcessorReply; tid: number }> {
    const end = Date.now() + ms;
    // posting a view clones its whole buffer: an argument is a view into a frame or the packer's
    // buffer, so just its bytes are posted (new Uint8Array: a Buffer's slice() is a view)
    const a = task.arg;
    if (a !== undefined && a.byteLength !== a.buffer.byteLength) task = { ...task, arg: new Uint8Array(a) };
    const gate = new Int32Array(new SharedArrayBuffer(8));
    for (;;) {
      if (this.closing !== undefined) throw new GridClosedError('the grid is closed');
      const pool = (this.processors ??= this.piscina(PROCESSOR_PIPELINE));
      const run = pool.run({ kind: 'compute', ...task, gate });
      let timer: NodeJS.Timeout | undefined;
      const stopped = new Promise<never>((_, reject) => {
        timer = setTimeout(() => this.stopProcessor(pool, gate) && reject(STOPPED), Math.max(0, end - Date.now()));
      });
      let reply: PoolReply;
      try {
        reply = await Promise.race([run, stopped]);
      } catch (e) {
        if (e === STOPPED) {
          run.catch(() => undefined); // its thread was terminated, or it is skipped when its turn comes
          const tid = Atomics.load(gate, GATE_THREAD) - 1;
          if (tid < 0) throw processorTimeout(task.processor, ms, 'did not start in time: it waited behind other entry processors (options.compute.workers threads) or for its partition\'s lock');
          await afterThreadExit(tid);
          throw processorTimeout(task.processor, ms, 'did not return in time and was stopped with its pool thread');
        }
        if (this.closing !== undefined) throw new GridClosedError('the grid was closed while an entry processor ran');
        const unstarted = Atomics.load(gate, GATE_THREAD) === 0 && Atomics.load(gate, GATE_STATE) === GATE_RUNNING;
        if (unstarted) continue; // its thread was terminated for another task
        throw new WorkerError(`a compute pool thread failed while an entry processor ran (nothing was written): ${(e as Error)?.message ?? String(e)}`);
      } finally {
        clearTimeout(timer);
      }
      if (!reply.ok) throw errorFromWire(reply.error);
      return { reply: reply.value as ProcessorReply, tid: Atomics.load(gate, GATE_THREAD) - 1 };
    }
  }

  /**
   * The processor's time ran out: claims its gate (false when its thread claimed it first: it is
   * past user code) and terminates its thread if it started there. The thread id is read after
   * the claim: a thread that stores it later reads STOPPED and skips the task.
   */
  private stopProcessor(pool: Piscina<PoolTask, PoolReply>, gate: Int32Array): boolean {
    if (Atomics.compareExchange(gate, GATE_STATE, GATE_RUNNING, GATE_STOPPED) !== GATE_RUNNING) return false;
    const tid = Atomics.load(gate, GATE_THREAD) - 1;
    if (tid >= 0) void pool.threads.find((w) => w.threadId === tid)?.terminate();
    return true;
  }

  /** Lets running tasks finish (up to CLOSE_TIMEOUT_MS), then stops the threads. Idempotent. */
  close(): Promise<void> {
    return (this.closing ??= Promise.all([this.pool, this.processors].map((p) => p?.close().catch(() => undefined))).then(() => undefined));
  }
}

/** Virtual nodes of the member that owns `store` (the default pool size of attached grids). */
export function vnodeCount(store: { partitions: number; ownerOf(p: number): number }): number {
  let n = 0;
  for (let p = 0; p < store.partitions; p++) n = Math.max(n, store.ownerOf(p) + 1);
  return Math.max(1, n);
}
