// How long an aggregation may run (README, "Compute next to the data": compute.timeoutMs). In a
// cluster the members' shares were requests with the transport's 5 s default: an aggregation
// whose share took longer on a member failed with GRID_ERR_TIMEOUT although nothing was wrong,
// and a user aggregator that never returned kept its pool thread busy for good — every later
// aggregation of that member, built-ins included, then timed out too.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, TimeoutError, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'aggregate-time-test-secret-0123456789';
const PROCS = { modules: { procs: new URL('../fixtures/compute-procs.mjs', import.meta.url) } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('aggregation time in a cluster', () => {
  const members: GridProcess[] = [];
  let lite: Grid; // default compute.timeoutMs
  let strict: Grid; // compute.timeoutMs 1500

  beforeAll(async () => {
    members.push(await startGridMember({ backups: 1 }, SECRET));
    members.push(await startGridMember({ seeds: [members[0].url], backups: 1 }, SECRET));
    const cluster = { host: '127.0.0.1', port: 0, seeds: [members[0].url], secret: SECRET, lite: true };
    lite = await createGrid({ workers: 1, memory: '16MB', compute: PROCS, cluster });
    strict = await createGrid({ workers: 1, memory: '16MB', compute: { ...PROCS, timeoutMs: 1500 }, cluster });
    for (let t = 0; t < 200; t++) {
      const tb = lite.cluster!.currentTable;
      if (tb !== undefined && tb.pending.every((l) => l.length === 0) && new Set(tb.owners.map((o) => o[0])).size === 2) break;
      await sleep(100);
    }
  }, 60_000);

  afterAll(async () => {
    await strict?.close();
    await lite?.close();
    for (const m of members) m.proc.kill('SIGKILL');
  });

  it('a share that takes a member 7 s completes (it failed with GRID_ERR_TIMEOUT after 5 s)', { timeout: 60_000 }, async () => {
    const m = lite.map<number>('slow');
    await m.setMany(Array.from({ length: 400 }, (_, i) => [`k${i}`, i] as [string, number]));
    const t0 = Date.now();
    expect(await m.aggregate({ module: 'procs', name: 'slowCount' }, { ms: 35 })).toBe(400);
    expect(Date.now() - t0).toBeGreaterThan(5500);
  });

  it('a runaway aggregator fails with GRID_ERR_TIMEOUT after compute.timeoutMs, and the members aggregate again at once', { timeout: 60_000 }, async () => {
    const m = strict.map<number>('runaway');
    await m.setMany(Array.from({ length: 100 }, (_, i) => [`k${i}`, i] as [string, number]));
    const t0 = Date.now();
    const e = await m.aggregate({ module: 'procs', name: 'runawayAggregator' }).then(() => undefined, (err: unknown) => err as TimeoutError);
    expect(e).toBeInstanceOf(TimeoutError);
    expect(e!.code).toBe('GRID_ERR_TIMEOUT');
    expect(Date.now() - t0).toBeLessThan(6000);
    // the runaway threads were stopped and replaced: a built-in over the same members answers
    const t1 = Date.now();
    expect(await lite.map('runaway').aggregate('count')).toBe(100);
    expect(Date.now() - t1).toBeLessThan(3000);
  });
});
