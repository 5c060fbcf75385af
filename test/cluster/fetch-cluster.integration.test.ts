// map.fetch across members (issue 15): concurrent misses of one key from two members (an
// in-process data member and a lite member, each with its own shared memory) call the loader once
// in the whole cluster — the claim goes through the key's primary like any setIfAbsent — and every
// caller gets that value. The negative control (hand-written get → load → set) calls it per miss.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'fetch-cluster-test-secret-0123456789abcd';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('map.fetch in a cluster: one load per key across members', () => {
  const members: GridProcess[] = [];
  let data: Grid;
  let lite: Grid;

  beforeAll(async () => {
    members.push(await startGridMember({ backups: 1 }, SECRET));
    members.push(await startGridMember({ seeds: [members[0].url], backups: 1 }, SECRET));
    const cluster = { host: '127.0.0.1', port: 0, seeds: [members[0].url], secret: SECRET, backups: 1 };
    data = await createGrid({ workers: 1, memory: '16MB', cluster });
    lite = await createGrid({ workers: 1, memory: '16MB', cluster: { ...cluster, lite: true } });
    for (let t = 0; t < 240; t++) {
      const st = lite.stats();
      if (st.cluster!.migrating === 0 && st.members!.filter((x) => !x.lite && x.primaries > 0).length === 3) break;
      await sleep(250);
    }
  }, 120_000);

  afterAll(async () => {
    await lite?.close();
    await data?.close();
    for (const m of members) m.proc.kill('SIGKILL');
  });

  /** 2 × n concurrent reads of `key` (half from each member), each loading on a miss with a 100 ms loader. */
  async function stampede(key: string, n: number, plain: boolean) {
    let calls = 0;
    const loader = async (k: string) => {
      calls++;
      await sleep(100);
      return { key: k, by: `load-${calls}` };
    };
    const one = async (g: Grid) => {
      const m = g.map<{ key: string; by: string }>('fetched');
      if (!plain) return m.fetch(key, loader, { ttl: 60_000 });
      const v = await m.get(key);
      if (v !== undefined) return v;
      const loaded = await loader(key);
      await m.set(key, loaded, { ttl: 60_000 });
      return loaded;
    };
    const out = await Promise.all([...Array.from({ length: n }, () => one(data)), ...Array.from({ length: n }, () => one(lite))]);
    return { out, calls };
  }

  it('1,000 concurrent misses of one key from two members call the loader once; every caller gets its value', { timeout: 60_000 }, async () => {
    const r = await stampede('k:fetch', 500, false);
    expect(r.out).toHaveLength(1000);
    expect(new Set(r.out.map((v) => v.by)).size).toBe(1);
    expect(r.calls).toBe(1);
    expect(await lite.map('fetched').get('k:fetch')).toEqual(r.out[0]);
    expect(await data.map('fetched').get('k:fetch')).toEqual(r.out[0]);
    console.log(`cluster fetch: 1000 concurrent misses from 2 members, loader calls ${r.calls}`);
  });

  it('negative control: the hand-written get → load → set calls the loader once per miss', { timeout: 60_000 }, async () => {
    const r = await stampede('k:plain', 500, true);
    expect(r.calls).toBeGreaterThan(2);
    console.log(`cluster get/load/set: 1000 concurrent misses from 2 members, loader calls ${r.calls}`);
  });
});
