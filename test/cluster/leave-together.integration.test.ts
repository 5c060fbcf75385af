// Two members leaving gracefully at the same moment (a scale-down by two, `docker compose stop`):
// the metadata leader lets them go one at a time, each once the copies the previous one took
// away are rebuilt. Before, the two were two failures at once: the partitions they shared lost
// every copy (7 of 31 here) and, two of the three metadata voters gone together, the rest never
// elected a leader again (every read failed for as long as it was watched).
import { afterAll, describe, expect, it } from 'vitest';
import { createGrid, fetchClusterStatus, type Grid } from '../../dist/index.js';

const SECRET = 'leave-together-test-secret-0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('members leaving together', () => {
  const grids: Grid[] = [];
  afterAll(async () => {
    await Promise.allSettled(grids.map((g) => g.close()));
  });

  it('two of four members closing at once lose no partition, and the two left keep a leader and every key', { timeout: 90_000 }, async () => {
    const common = { workers: 1, memory: '32MB', partitions: 31 } as const;
    const a = await createGrid({ ...common, cluster: { host: '127.0.0.1', port: 0, secret: SECRET } });
    grids.push(a);
    for (let i = 0; i < 3; i++) grids.push(await createGrid({ ...common, cluster: { host: '127.0.0.1', port: 0, secret: SECRET, seeds: [a.cluster!.url] } }));
    const lost: number[] = [];
    a.on('partition-lost', (ps: number[]) => lost.push(...ps));
    for (let i = 0; i < 200; i++) {
      const s = a.stats();
      if (s.cluster!.migrating === 0 && s.members!.filter((m) => !m.lite && m.primaries > 0).length === 4) break;
      await sleep(100);
    }
    const m = a.map<number>('together');
    const N = 300;
    for (let i = 0; i < N; i++) await m.set(`k${i}`, i);
    // the two members after `a`: with a, the three metadata voters of four members are among them
    await Promise.all([grids[1].close(), grids[2].close()]);
    expect(lost).toEqual([]);
    const left = [a, grids[3]];
    let leader: string | undefined;
    for (let i = 0; i < 100 && leader === undefined; i++) {
      const st = await fetchClusterStatus(a.cluster!.url, SECRET, 5000);
      leader = st.members.find((x) => x.coordinator)?.id;
      if (leader === undefined) await sleep(200);
    }
    expect(left.map((g) => g.cluster!.memberId)).toContain(leader);
    const values = await Promise.all(Array.from({ length: N }, (_, i) => m.get(`k${i}`)));
    expect(values).toEqual(Array.from({ length: N }, (_, i) => i));
    expect(lost).toEqual([]);
  });

  // The metadata leader leaving gracefully took the member out of the cluster but left it in the
  // Raft configuration (the leader never removed itself): of two voters the one that stayed could
  // never win an election again, and every read and write failed with
  // GRID_ERR_PARTITION_UNAVAILABLE for good (found scaling a CLI cluster down from 3 to 1).
  it('the metadata leader leaving a cluster of two: the member left elects itself and serves every key', { timeout: 60_000 }, async () => {
    const common = { workers: 1, memory: '16MB', partitions: 7 } as const;
    const a = await createGrid({ ...common, cluster: { host: '127.0.0.1', port: 0, secret: SECRET } });
    grids.push(a);
    const b = await createGrid({ ...common, cluster: { host: '127.0.0.1', port: 0, secret: SECRET, seeds: [a.cluster!.url] } });
    grids.push(b);
    for (let i = 0; i < 100 && !(b.stats().cluster!.migrating === 0 && b.stats().members!.every((m) => m.primaries > 0)); i++) await sleep(100);
    expect((await fetchClusterStatus(b.cluster!.url, SECRET)).leader).toBe(a.cluster!.memberId);
    const m = b.map<number>('leader-leaves');
    for (let i = 0; i < 50; i++) await m.set(`k${i}`, i);
    await a.close();
    const values = await Promise.all(Array.from({ length: 50 }, (_, i) => m.get(`k${i}`)));
    expect(values).toEqual(Array.from({ length: 50 }, (_, i) => i));
    await m.set('after', 1);
    const st = await fetchClusterStatus(b.cluster!.url, SECRET);
    expect(st.leader).toBe(b.cluster!.memberId);
    expect(st.metadata!.voters).toEqual([b.cluster!.memberId]);
  });
});
