// Whole-map operations of a cluster (size, aggregate, clear) while partitions move: a member
// joins, a member is killed with SIGKILL. Data members are child processes
// (test/fixtures/grid-member.mjs); the lite member is this process.
//
// size() and aggregate() asked every data member for a count of "its primaries", each by its own
// table: while a partition moved, two members counted it (20,154 of 20,000 during a join) or none
// did (a killed member's partitions, 14,098 of 20,000, until the table moved them). clear() had
// every member clear its own memory: a snapshot chunk sent before the primary's clear landed on a
// joining copy after the copy's, and whole partitions came back.
import { afterEach, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'scan-migration-test-secret-0123456789';
const PROCS = { modules: { procs: new URL('../fixtures/compute-procs.mjs', import.meta.url) } };
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

const running: GridProcess[] = [];
const grids: Grid[] = [];

afterEach(async () => {
  for (const g of grids.splice(0)) await g.close().catch(() => undefined);
  for (const m of running.splice(0)) {
    m.proc.kill('SIGKILL');
    await m.exited;
  }
});

async function member(seeds: string[]): Promise<GridProcess> {
  const m = await startGridMember({ seeds, memory: '32MB' }, SECRET, 15_000);
  running.push(m);
  return m;
}

async function until(what: string, ms: number, cond: () => boolean): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for: ${what}`);
    await sleep(50);
  }
}

/** Every partition has a primary and 2 owners among `alive`, nothing pending. */
function settled(g: Grid, alive: string[]): boolean {
  const t = g.cluster!.currentTable;
  return t !== undefined && t.owners.every((o) => o.length === 2 && o.every((id) => alive.includes(id))) && t.pending.every((l) => l.length === 0);
}

async function threeMembers(): Promise<{ ms: GridProcess[]; l: Grid }> {
  const a = await member([]);
  const b = await member([a.url]);
  const c = await member([a.url]);
  const l = await createGrid({ workers: 1, memory: '16MB', compute: PROCS, cluster: { host: '127.0.0.1', port: 0, seeds: [a.url], secret: SECRET, lite: true } });
  grids.push(l);
  await until('3 data members settled', 30_000, () => settled(l, [a.id, b.id, c.id]));
  return { ms: [a, b, c], l };
}

describe('size, aggregate and clear while partitions move', () => {
  it('size() and aggregate() count every entry exactly once while a member joins and while one is killed', { timeout: 90_000 }, async () => {
    const { ms, l } = await threeMembers();
    const m = l.map<{ v: number }>('counted');
    const N = 5000;
    for (let i = 0; i < N; i += 1000) await m.setMany(Array.from({ length: 1000 }, (_, j) => [`k${i + j}`, { v: 1 }] as [string, { v: number }]));
    expect(await m.size()).toBe(N);

    let stop = false;
    let rounds = 0;
    const wrong: string[] = [];
    const counting = (async () => {
      while (!stop) {
        const [size, count, sum, user] = await Promise.all([
          m.size(),
          m.aggregate<number>('count'),
          m.aggregate<number>('sum', { field: 'v' }),
          m.aggregate<{ n: number }>({ module: 'procs', name: 'stats' }, { field: 'v' }),
        ]);
        rounds++;
        if (size !== N || count !== N || sum !== N || user.n !== N) wrong.push(`size ${size}, count ${count}, sum ${sum}, stats.n ${user.n}`);
      }
    })();

    const d = await member([ms[0].url]);
    await until('4 data members settled', 45_000, () => settled(l, [...ms, d].map((x) => x.id)));
    ms[1].proc.kill('SIGKILL');
    await until('3 data members settled after the kill', 45_000, () => settled(l, [ms[0], ms[2], d].map((x) => x.id)));
    await sleep(300);
    stop = true;
    await counting;
    console.log(`whole-map counts during a join and a kill: ${rounds} rounds, ${wrong.length} wrong`);
    expect(wrong).toEqual([]);
    expect(rounds).toBeGreaterThan(5);
  });

  it('clear() while a member joins clears everything: no entry comes back with a partition streamed to the joiner', { timeout: 90_000 }, async () => {
    const { ms, l } = await threeMembers();
    const m = l.map<string>('cleared');
    const other = l.map<string>('kept');
    await other.setMany(Array.from({ length: 500 }, (_, i) => [`o${i}`, 'stays'] as [string, string]));
    const alive = ms.map((x) => x.id);
    // each attempt: fill, a member joins, clear() while its partitions are being streamed to it
    // (before the fix, 3 of 4 such clears left whole partitions behind)
    let left = 0;
    let attempts = 0;
    for (; attempts < 3 && left === 0; attempts++) {
      for (let i = 0; i < 30_000; i += 3000) await m.setMany(Array.from({ length: 3000 }, (_, j) => [`k${i + j}`, 'x'.repeat(200)] as [string, string]));
      const d = await member([ms[0].url]);
      alive.push(d.id);
      await sleep(250);
      await m.clear();
      await until('the joiner settled', 45_000, () => settled(l, alive));
      left = 0;
      for await (const _ of m.entries()) left++;
    }
    console.log(`clear during a join: ${attempts} attempts, ${left} entries left, size() ${await m.size()}`);
    expect(left).toBe(0);
    expect(await m.size()).toBe(0);
    expect(await other.size()).toBe(500); // the other map's entries are untouched
  });
});
