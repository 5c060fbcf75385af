// Insiders are bounded too (issue 11, F8 and F9): a peer that holds the cluster secret cannot
// install a partition table outside the metadata log, nor make a gossiped stranger the coordinator.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, fetchClusterStatus, type Grid } from '../../dist/index.js';
import { Transport } from '../../dist/transport/transport.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'insiders-test-secret-0123456789abcdef';


const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('insiders with the secret are bounded (F8, F9)', () => {
  let a: GridProcess;
  let b: GridProcess;
  let lite: Grid;
  let peer: Transport;

  beforeAll(async () => {
    a = await startGridMember({ backups: 1 }, SECRET);
    b = await startGridMember({ seeds: [a.url], backups: 1 }, SECRET);
    lite = await createGrid({ workers: 1, memory: '16MB', cluster: { lite: true, port: 0, seeds: [a.url], secret: SECRET } });
    peer = await Transport.listen({ host: '127.0.0.1', port: 0, secret: SECRET, memberId: `m-${randomBytes(6).toString('hex')}`, log: () => undefined });
    await peer.connect(a.url);
    await peer.connect(b.url);
  }, 90_000);

  afterAll(async () => {
    await lite?.close();
    await peer?.close();
    for (const m of [a, b]) m?.proc.kill('SIGKILL');
  });

  it('F8: a forged grid.table (version 2^53-1, no owners) changes nothing: tables come only from the log', async () => {
    const m = lite.map<string>('f8');
    for (let i = 0; i < 300; i++) await m.set(`k${i}`, `v${i}`);
    const before = await fetchClusterStatus(a.url, SECRET);
    const forged = { version: Number.MAX_SAFE_INTEGER, owners: Array.from({ length: 271 }, () => []), pending: Array.from({ length: 271 }, () => []), epochs: new Array(271).fill(0), lost: new Array(271).fill(0) };
    peer.notify(before.self, 'grid.table', forged);
    peer.notify(b.id, 'grid.table', forged);
    await sleep(1500);
    for (const u of [a.url, b.url]) {
      const s = await fetchClusterStatus(u, SECRET);
      expect(s.tableVersion).toBeLessThan(Number.MAX_SAFE_INTEGER);
      expect(s.members.filter((x) => !x.lite).every((x) => x.primaries > 0)).toBe(true);
    }
    const values = await m.getMany(Array.from({ length: 300 }, (_, i) => `k${i}`));
    expect(values).toEqual(Array.from({ length: 300 }, (_, i) => `v${i}`));
  }, 60_000);

  it('F9: 500 gossiped fake members (one with startedAt 0) do not become the coordinator, and the cluster keeps serving', async () => {
    const before = await fetchClusterStatus(a.url, SECRET);
    expect(before.leader === a.id || before.leader === b.id).toBe(true);
    const fakes = Array.from({ length: 500 }, (_, i) => [`m-fake${i}`, `ws://127.0.0.1:${1 + i}`, i === 0 ? 0 : 1, false, 0, 0]);
    peer.notify(a.id, 'swim.gossip', { u: fakes });
    peer.notify(b.id, 'swim.gossip', { u: fakes });
    await sleep(2000);
    for (const u of [a.url, b.url]) {
      const s = await fetchClusterStatus(u, SECRET);
      expect(s.leader === a.id || s.leader === b.id).toBe(true);
      expect(s.metadata?.voters.every((v) => v === a.id || v === b.id)).toBe(true);
    }
    const m = lite.map<string>('f9');
    await m.set('after', 'gossip');
    expect(await m.get('after')).toBe('gossip');
  }, 60_000);
});
