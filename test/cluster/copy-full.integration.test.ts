// Members whose memory is full, and a large value (1 MiB, within maxValueBytes) written to a
// partition whose primary has room while its copies do not (smaller or fuller members: a full
// member's hash tables are page runs scattered over its heap, and no window of 257 pages is left
// for the value). Before: the copy refused the write (GRID_ERR_MEMORY_FULL), the primary had the
// copy dropped and streamed the partition to another member, which refused it the same way, again
// and again: the partition stayed migrating, the write and every later write to that partition
// failed with GRID_ERR_TIMEOUT. Now a copy with no room for a key's new value drops the key, as an
// eviction: the write is acknowledged, the partition settles, and no copy keeps the key's older
// value (a failover would have brought it back).
import { afterAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { ask, startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'copy-full-test-secret-0123456789abcdef';
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Waits until three data members are primaries and nothing migrates; false after 30 s. */
async function settled(grid: Grid): Promise<boolean> {
  for (let t = 0; t < 120; t++) {
    const s = grid.stats();
    if (s.cluster!.migrating === 0 && s.members!.filter((x) => !x.lite && x.primaries > 0).length === 3) return true;
    await sleep(250);
  }
  return false;
}

/** n keys whose primary is `grid`. */
function servedHere(grid: Grid, n: number): string[] {
  const rep = grid.cluster!.replicas;
  const keys: string[] = [];
  for (let i = 0; keys.length < n; i++) if (rep.serves(rep.records.partitionOf(`big${i}`))) keys.push(`big${i}`);
  return keys;
}

describe('a large value that the copies of its partition have no room for', () => {
  const procs: GridProcess[] = [];
  let grid: Grid | undefined;
  // the children first: a wedged partition (the bug) holds this member's graceful leave for 30 s
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await grid?.close();
  }, 60_000);

  it('is acknowledged, dropped by the copies as an eviction, and leaves its partition writable', { timeout: 120_000 }, async () => {
    // this member has room (64 MB); the two others are small (8 MB) and will be full
    grid = await createGrid({ workers: 1, memory: '64MB', cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 1 } });
    procs.push(await startGridMember({ memory: '8MB', backups: 1, seeds: [grid.cluster!.url] }, SECRET));
    procs.push(await startGridMember({ memory: '8MB', backups: 1, seeds: [grid.cluster!.url] }, SECRET));
    expect(await settled(grid)).toBe(true);
    const m = grid.map<string | Uint8Array>('m');
    // fill the small members: each holds two thirds of 80,000 keys of 100 B, far beyond 8 MB
    const v = 'x'.repeat(100);
    for (let i = 0; i < 80_000; i += 500) await Promise.all(Array.from({ length: 500 }, (_, j) => m.set(`s${i + j}`, v)));
    const rep = grid.cluster!.replicas;
    const keys = servedHere(grid, 3);
    const big = new Uint8Array(1024 * 1024 - 64).fill(7);
    for (const k of keys) {
      await m.set(k, 'old');
      await m.set(k, big); // before: GRID_ERR_TIMEOUT
      expect((await m.get(k))?.length).toBe(big.length);
      // no copy keeps the older value
      for (const c of procs) expect((await ask(c, { cmd: 'copy', map: 'm', key: k }, ['copy'])).value).not.toBe('old');
    }
    expect(await settled(grid)).toBe(true);
    // and the partitions take writes
    for (const k of keys) {
      const p = rep.records.partitionOf(k);
      let near = '';
      for (let i = 0; near === ''; i++) if (rep.records.partitionOf(`near${i}`) === p) near = `near${i}`;
      await m.set(near, 'small');
      expect(await m.get(near)).toBe('small');
    }
  });
});

// A member with less memory has a lower default maxValueBytes (memory / 8: 512 KiB at 4 MB, which
// 64 partitions allow). Before, its copy refused a 700 KiB value its primary held
// (GRID_ERR_VALUE_TOO_LARGE), and the partition was wedged as above.
describe('a value over the maxValueBytes of the members holding its copies', () => {
  const procs: GridProcess[] = [];
  let grid: Grid | undefined;
  // the children first: a wedged partition (the bug) holds this member's graceful leave for 30 s
  afterAll(async () => {
    for (const p of procs) p.proc.kill('SIGKILL');
    await grid?.close();
  }, 60_000);

  it('is acknowledged, dropped by those copies as an eviction, and leaves its partition writable', { timeout: 60_000 }, async () => {
    grid = await createGrid({ workers: 1, partitions: 64, memory: '64MB', cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 1 } });
    for (let i = 0; i < 2; i++) procs.push(await startGridMember({ memory: '4MB', partitions: 64, backups: 1, seeds: [grid.cluster!.url] }, SECRET));
    expect(await settled(grid)).toBe(true);
    const m = grid.map<string>('m');
    const keys = servedHere(grid, 3);
    const big = 'b'.repeat(700 * 1024);
    for (const k of keys) {
      await m.set(k, 'old');
      await m.set(k, big); // before: GRID_ERR_TIMEOUT
      expect(await m.get(k)).toBe(big);
      for (const c of procs) expect((await ask(c, { cmd: 'copy', map: 'm', key: k }, ['copy'])).value).not.toBe('old');
    }
    expect(await settled(grid)).toBe(true);
    for (const k of keys) {
      await m.set(k, 'small again'); // and the copies hold it again
      const copies = await Promise.all(procs.map((c) => ask(c, { cmd: 'copy', map: 'm', key: k }, ['copy'])));
      expect(copies.filter((c) => c.present).map((c) => c.value)).toEqual(['small again']);
    }
  });
});
