/**
 * Compute pool thread (piscina worker entry). Attaches to the grid's shared memory on its first
 * task and keeps it; runs aggregation tasks over groups of partitions, reading the shard stores
 * directly (no data crosses a thread until the partial result) — these as a piscina worker —, and,
 * on a processor thread (processor-threads.ts: workerData carries the gate table), a cluster
 * member's entry processors (compute/local.ts computeTask), one msgpack byte array per task each
 * way over this thread's port. Every failure is returned as
 * `{ code, message, data }` so the caller rebuilds the right GridError (piscina would pass a
 * thrown error through structured clone, which drops the class and the code).
 */
import { parentPort, workerData } from 'node:worker_threads';
import { errorToWire } from '../errors.js';
import { attachGrid, type Grid } from '../grid.js';
import { decodeMsgpack, encodeMsgpack } from '../storage/codec.js';
import { runAggregateTask } from './aggregate.js';
import { GATE_SIZE, W_NONE, type PoolInit, type PoolReply, type PoolTask, type ProcessorRequest, type ProcessorResponse } from './types.js';

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

/** A processor thread: answers each ProcessorRequest posted to it (processor-threads.ts). */
async function serve(b: Uint8Array): Promise<void> {
  const [id, map, key, module, name, arg, slot] = decodeMsgpack(b) as ProcessorRequest;
  let res: ProcessorResponse;
  try {
    const gate = init.gates!.subarray(slot * GATE_SIZE, slot * GATE_SIZE + GATE_SIZE);
    const r = await (await attached()).map(map).computeTask({ kind: 'compute', map, key, processor: { module, name }, arg, gate });
    const w = r.w;
    res = w === undefined ? [id, 1, r.r, W_NONE] : [id, 1, r.r, w.k, w.type, w.bytes, w.len, w.num];
  } catch (e) {
    if (grid !== undefined && (await grid.catch(() => undefined)) === undefined) grid = undefined;
    res = [id, 0, errorToWire(e)];
  }
  let bytes: Uint8Array;
  try {
    bytes = encodeMsgpack(res);
  } catch (e) {
    bytes = encodeMsgpack([id, 0, errorToWire(e)] satisfies ProcessorResponse); // an error's data msgpack cannot carry
  }
  // a view into the packer's buffer would be posted with that whole buffer: just the bytes
  parentPort!.postMessage(new Uint8Array(bytes));
}

if (init.gates !== undefined) parentPort!.on('message', (b: Uint8Array) => void serve(b));
