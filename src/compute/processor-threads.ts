/**
 * The processor threads of one grid object: the threads a cluster member runs entry processors on
 * (never its main thread; pool.ts runProcessor), with a task channel of their own instead of a
 * piscina pool. Each task crosses as one msgpack byte array each way (types.ts ProcessorRequest,
 * ProcessorResponse) over the thread's own port, and its gate is a slot of a gate table handed to
 * the threads once, at start-up. Measured on a member (native-notes.md, "Processor threads"): the
 * piscina task (its envelope and the task object structured-cloned both ways, a SharedArrayBuffer
 * per gate, its per-task bookkeeping) cost more CPU than the compute around it once the threads
 * had been idle between two calls, as they are while a write is replicated.
 *
 * Gate table (`gates`, Int32Array, GATE_SIZE words per slot, GATE_SLOTS slots):
 *   slot s: | GATE_STATE (RUNNING / COMMITTED / STOPPED) | GATE_THREAD (threadId + 1, 0: not started) |
 * A slot belongs to one task from its post until the thread that had it answers it or exits (a
 * stopped task that never started is still in that thread's queue and touches its gate when its
 * turn comes), and is cleared when it is handed out again.
 *
 * Each thread is handed up to PIPELINE tasks at once: they wait in the thread's own queue and run
 * back to back, without a round trip to the main thread in between. Tasks beyond that, or beyond
 * the free slots, wait here in order. A thread that exits (terminated for a runaway processor, or
 * crashed) is replaced; its tasks that never started (no thread id in their gate, still RUNNING)
 * are posted again, within their own time; the others fail.
 */
import { Worker } from 'node:worker_threads';
import { WorkerError } from '../errors.js';
import { decodeMsgpack, encodeMsgpack } from '../storage/codec.js';
import type { GridHandle } from '../runtime/messages.js';
import { GATE_RUNNING, GATE_SIZE, GATE_STATE, GATE_THREAD, W_NONE, type PoolInit, type PoolReply, type ProcessorReply, type ProcessorRequest, type ProcessorResponse } from './types.js';

/** Tasks a thread is handed at once (64 computes in flight cost ~5x one at a time with one task per thread). */
const PIPELINE = 32;
/** Tasks posted to threads at once, per grid (more wait here, in order): the gate table's size. */
export const GATE_SLOTS = 4096;

/** A task from its submission until its answer (ProcessorThreads.submit). */
export interface ProcessorRun {
  /** The thread's reply, and the id of the thread that ran the task (-1: it never started). */
  readonly promise: Promise<{ reply: PoolReply; tid: number }>;
  /** Its gate slot, -1 while it waits here for a slot. */
  readonly slot: number;
}

interface Task extends ProcessorRun {
  readonly id: number;
  readonly request: ProcessorRequest;
  slot: number;
  done: (v: { reply: PoolReply; tid: number }) => void;
  fail: (e: Error) => void;
}

interface Thread {
  readonly worker: Worker;
  readonly tasks: Map<number, Task>;
  online: boolean;
}

export class ProcessorThreads {
  /** The gate table, shared with every thread (see the file's comment). */
  readonly gates = new Int32Array(new SharedArrayBuffer(GATE_SLOTS * GATE_SIZE * 4));
  private readonly free: number[] = [];
  private readonly threads: Thread[] = [];
  private readonly queue: Task[] = [];
  private nextId = 1;
  private closed = false;
  /** A thread exited before it came online (the worker file failed to load): no more are started. */
  private broken: Error | undefined;

  constructor(
    private readonly handle: GridHandle,
    private readonly size: number,
    private readonly file: URL | string,
    private readonly execArgv: string[] | undefined,
  ) {
    for (let s = GATE_SLOTS - 1; s >= 0; s--) this.free.push(s);
    for (let i = 0; i < size; i++) this.start();
  }

  /** The gate of slot `s`: a view of the table (Atomics on it use GATE_STATE / GATE_THREAD). */
  gate(s: number): Int32Array {
    return this.gates.subarray(s * GATE_SIZE, s * GATE_SIZE + GATE_SIZE);
  }

  /**
   * Queues a task for the threads. Its promise settles with the thread's reply; it rejects with
   * WorkerError when its thread died after the task started, or when threads cannot be started.
   */
  submit(map: string, key: string, module: string, name: string, arg: Uint8Array | undefined): ProcessorRun {
    const id = this.nextId++;
    const task = { id, request: [id, map, key, module, name, arg, -1], slot: -1 } as unknown as Task;
    (task as { promise: ProcessorRun['promise'] }).promise = new Promise((done, fail) => {
      task.done = done;
      task.fail = fail;
    });
    if (this.broken !== undefined) task.fail(this.broken);
    else {
      this.queue.push(task);
      this.drain();
    }
    return task;
  }

  /** Drops a task that still waits here for a slot or a thread (its time ran out): true if it did. */
  withdraw(run: ProcessorRun): boolean {
    const i = this.queue.indexOf(run as Task);
    if (i < 0 || run.slot >= 0) return false;
    this.queue.splice(i, 1);
    return true;
  }

  /** The thread `tid`, terminated (its processor ran out of time): it exits, and is replaced. */
  terminate(tid: number): void {
    this.threads.find((t) => t.worker.threadId === tid)?.worker.terminate();
  }

  /**
   * Lets the tasks posted to threads finish (up to `timeoutMs`), then stops every thread; tasks
   * still waiting here, and those still running then, fail.
   */
  async close(timeoutMs: number): Promise<void> {
    this.closed = true;
    const err = new WorkerError('the processor threads were closed');
    for (const t of this.queue.splice(0)) t.fail(err);
    const running = this.threads.flatMap((t) => [...t.tasks.values()].map((k) => k.promise.catch(() => undefined)));
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([Promise.all(running), new Promise((r) => (timer = setTimeout(r, timeoutMs)))]);
    clearTimeout(timer);
    await Promise.all(this.threads.map((t) => t.worker.terminate()));
  }

  private start(): void {
    const worker = new Worker(this.file, { workerData: { handle: this.handle, gates: this.gates } satisfies PoolInit, execArgv: this.execArgv });
    const thread: Thread = { worker, tasks: new Map(), online: false };
    worker.unref();
    worker.once('online', () => (thread.online = true));
    worker.on('message', (b: Uint8Array) => this.answered(thread, b));
    // an uncaught error ends the thread: 'exit' follows and does the rest
    worker.on('error', () => undefined);
    worker.once('exit', (code) => this.exited(thread, code));
    this.threads.push(thread);
  }

  /** Posts waiting tasks to the threads with the fewest tasks, while slots and pipelines allow. */
  private drain(): void {
    while (this.queue.length > 0 && this.free.length > 0) {
      let best: Thread | undefined;
      for (const t of this.threads) if (t.tasks.size < PIPELINE && (best === undefined || t.tasks.size < best.tasks.size)) best = t;
      if (best === undefined) return;
      const task = this.queue.shift()!;
      if (task.slot < 0) {
        const s = this.free.pop()!;
        Atomics.store(this.gates, s * GATE_SIZE + GATE_STATE, GATE_RUNNING);
        Atomics.store(this.gates, s * GATE_SIZE + GATE_THREAD, 0);
        task.slot = s;
        task.request[6] = s;
      }
      this.post(best, task);
    }
  }

  private post(thread: Thread, task: Task): void {
    if (thread.tasks.size === 0) thread.worker.ref();
    thread.tasks.set(task.id, task);
    // encodeMsgpack hands out a view into the packer's buffer: posting it would clone that whole
    // buffer, so just the request's bytes are posted
    thread.worker.postMessage(new Uint8Array(encodeMsgpack(task.request)));
  }

  private answered(thread: Thread, b: Uint8Array): void {
    const m = decodeMsgpack(b) as ProcessorResponse;
    const task = thread.tasks.get(m[0]);
    if (task === undefined) return;
    thread.tasks.delete(task.id);
    if (thread.tasks.size === 0) thread.worker.unref();
    // read before the slot is handed out again (drain, below, clears it)
    const tid = Atomics.load(this.gates, task.slot * GATE_SIZE + GATE_THREAD) - 1;
    this.free.push(task.slot);
    if (m[1] === 1) {
      const [, , r, k, type, bytes, len, num] = m;
      const value: ProcessorReply = k === W_NONE ? { r } : { r, w: { k, type: type!, bytes: bytes ?? null, len: len!, num: num! } };
      task.done({ reply: { ok: true, value }, tid });
    } else {
      task.done({ reply: { ok: false, error: m[2] }, tid });
    }
    this.drain();
  }

  /**
   * A thread exited: its tasks that never started go to the other threads (or its replacement),
   * the others fail (WorkerError; the caller that stopped it reports its timeout instead).
   */
  private exited(thread: Thread, code: number): void {
    this.threads.splice(this.threads.indexOf(thread), 1);
    if (!thread.online && !this.closed) this.broken = new WorkerError(`a processor thread exited (code ${code}) before it started`);
    const again: Task[] = [];
    for (const task of thread.tasks.values()) {
      const g = task.slot * GATE_SIZE;
      const unstarted = Atomics.load(this.gates, g + GATE_THREAD) === 0 && Atomics.load(this.gates, g + GATE_STATE) === GATE_RUNNING;
      if (unstarted && !this.closed && this.broken === undefined) {
        again.push(task); // keeps its slot: no thread touched it
        continue;
      }
      this.free.push(task.slot);
      task.fail(this.broken ?? new WorkerError(`the processor thread exited (code ${code})`));
    }
    if (this.closed) return;
    if (this.broken !== undefined) {
      for (const t of again.concat(this.queue.splice(0))) {
        if (t.slot >= 0) this.free.push(t.slot);
        t.fail(this.broken);
      }
      return;
    }
    this.start();
    this.queue.unshift(...again);
    this.drain();
  }
}
