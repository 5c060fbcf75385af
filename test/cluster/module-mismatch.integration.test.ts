// A compute module registered on only some members (README, "Compute next to the data": every
// member must register the same names): a call whose processor or aggregator runs on a member
// without it fails typed, GRID_ERR_UNKNOWN_MODULE, and says which member lacks it. The message
// used to say only that the module "is not registered in this grid" — the caller's own grid,
// which had it registered.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, UnknownModuleError, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'module-mismatch-test-secret-0123456789';
const PROCS = { modules: { procs: new URL('../fixtures/compute-procs.mjs', import.meta.url) } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('a compute module missing on one member', () => {
  let withProcs: GridProcess; // a child member that registers 'procs'
  let bare: Grid; // an in-process data member that registers no module
  let lite: Grid; // registers 'procs'

  beforeAll(async () => {
    withProcs = await startGridMember({ backups: 1 }, SECRET);
    const cluster = { host: '127.0.0.1', port: 0, seeds: [withProcs.url], secret: SECRET, backups: 1 };
    bare = await createGrid({ workers: 1, memory: '16MB', cluster });
    lite = await createGrid({ workers: 1, memory: '16MB', compute: PROCS, cluster: { ...cluster, lite: true } });
    for (let t = 0; t < 200; t++) {
      const tb = lite.cluster!.currentTable;
      if (tb !== undefined && tb.pending.every((l) => l.length === 0) && tb.owners.some((o) => o[0] === bare.cluster!.memberId)) break;
      await sleep(100);
    }
  }, 60_000);

  afterAll(async () => {
    await lite?.close();
    await bare?.close();
    withProcs?.proc.kill('SIGKILL');
  });

  it('compute and aggregate fail with GRID_ERR_UNKNOWN_MODULE naming the member without it; keys on the other member still compute', { timeout: 30_000 }, async () => {
    const m = lite.map<number>('mixed');
    const bareId = bare.cluster!.memberId;
    const t = lite.cluster!.currentTable!;
    const keys = Array.from({ length: 200 }, (_, i) => `k${i}`);
    const onBare = keys.find((k) => t.owners[m.part(k)][0] === bareId)!;
    const onOther = keys.find((k) => t.owners[m.part(k)][0] === withProcs.id)!;
    expect(onBare).toBeDefined();
    expect(onOther).toBeDefined();

    expect(await m.compute(onOther, { module: 'procs', name: 'increment' }, 2)).toBe(2);

    const e = await m.compute(onBare, { module: 'procs', name: 'increment' }, 2).then(() => undefined, (err: unknown) => err as UnknownModuleError);
    expect(e).toBeInstanceOf(UnknownModuleError);
    expect(e!.code).toBe('GRID_ERR_UNKNOWN_MODULE');
    expect(e!.message).toContain(bareId);
    expect(e!.data).toMatchObject({ module: 'procs', member: bareId });
    expect(await m.get(onBare)).toBeUndefined();

    await m.setMany(keys.map((k) => [k, 1] as [string, number]));
    const a = await m.aggregate({ module: 'procs', name: 'stats' }).then(() => undefined, (err: unknown) => err as UnknownModuleError);
    expect(a).toBeInstanceOf(UnknownModuleError);
    expect(a!.message).toContain(bareId);
    // built-ins need no registration
    expect(await m.aggregate('count')).toBe(200);
  });

  it('an argument that cannot travel to the members fails with GRID_ERR_UNENCODABLE_VALUE saying it is the argument', { timeout: 30_000 }, async () => {
    const m = lite.map<number>('mixed');
    const e = await m.compute('k1', { module: 'procs', name: 'increment' }, () => 1).then(() => undefined, (err: unknown) => err as Error & { code: string });
    expect(e?.code).toBe('GRID_ERR_UNENCODABLE_VALUE');
    expect(e!.message).toMatch(/^the argument of entry processor 'increment'/);
    const a = await m.aggregate({ module: 'procs', name: 'stats' }, { field: Symbol('x') }).then(() => undefined, (err: unknown) => err as Error & { code: string });
    expect(a?.code).toBe('GRID_ERR_UNENCODABLE_VALUE');
    expect(a!.message).toMatch(/^the argument of aggregator 'stats'/);
  });
});
