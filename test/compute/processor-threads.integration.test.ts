// The processor threads of a grid (src/compute/processor-threads.ts, run through
// ComputePool.runProcessor and GridMap.applyComputed as a cluster member's compute does): gate
// slots handed out again only after their task is answered, and a thread that dies replaced.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { packPlain, unpackPlain } from '../../dist/cluster/plain.js';
import { GATE_SLOTS } from '../../dist/compute/processor-threads.js';

const compute = { modules: { procs: new URL('../fixtures/compute-procs.mjs', import.meta.url) }, workers: 2 };
let grid: Grid;

beforeAll(async () => {
  grid = await createGrid({ workers: 1, memory: '32MB', compute });
});
afterAll(async () => {
  await grid?.close();
});

/** A member's compute of `key` on the processor threads: the processor there, its write applied here. */
async function compute1(map: string, key: string, name: string, arg: unknown): Promise<unknown> {
  const { reply, tid } = await grid.computePool().runProcessor({ map, key, processor: { module: 'procs', name }, arg: packPlain(arg) }, 30_000);
  return unpackPlain(grid.map(map).applyComputed(key, reply, tid), 'result');
}

describe('processor threads', () => {
  it('more computes at once than the gate table has slots each apply once, with the thread that kept the lock', async () => {
    const N = GATE_SLOTS + 904;
    const KEYS = 10;
    const results = await Promise.all(Array.from({ length: N }, (_, i) => compute1('pt-slots', `k${i % KEYS}`, 'increment', 1)));
    // a slot handed out again before its answer was read would give the wrong thread (the lock
    // take-over fails: GRID_ERR_WORKER) or let two tasks share a gate
    const m = grid.map('pt-slots');
    for (let k = 0; k < KEYS; k++) {
      expect(await m.get(`k${k}`)).toBe(N / KEYS);
      const mine = results.filter((_, i) => i % KEYS === k).sort((a, b) => (a as number) - (b as number));
      expect(mine).toEqual(Array.from({ length: N / KEYS }, (_, i) => i + 1));
    }
  });

  it('a processor that ends its thread fails with GRID_ERR_WORKER, writes nothing, and the next compute runs on a replacement thread', async () => {
    const m = grid.map('pt-exit');
    await m.set('k', 5);
    const err = await compute1('pt-exit', 'k', 'exitsThread', 3).catch((e: unknown) => e);
    expect(err).toMatchObject({ code: 'GRID_ERR_WORKER' });
    expect(await m.get('k')).toBe(5);
    expect(await compute1('pt-exit', 'k', 'increment', 2)).toBe(7);
    expect(await m.get('k')).toBe(7);
  });
});
