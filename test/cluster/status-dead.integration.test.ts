// A dead member in `shardgrid status` (found in a CLI review): the status listed only the members
// SWIM held alive or suspect, so a member killed with kill -9 vanished from it while the partition
// table still gave it partitions; the rows no longer added up to the partition count and nothing
// said which partitions sat on a member nobody reaches. With backups 0 the metadata leader keeps a
// dead member that holds the only copy of partitions in the table for its last-copy grace (15 s):
// that is the window this test looks in, and it checks the table still names the member before
// it asserts anything about the status.
import { afterAll, describe, expect, it } from 'vitest';
import { createGrid, fetchClusterStatus, type Grid } from '../../dist/index.js';
import { renderStatus } from '../../dist/cli/format.js';
import { ownedBy } from '../../dist/ring/table.js';
import { startGridMember, type GridProcess } from '../fixtures/grid-process.js';

const SECRET = 'status-dead-test-secret-0123456789abc';

describe('a member killed while the partition table still names it', () => {
  let first: Grid | undefined;
  let victim: GridProcess | undefined;
  afterAll(async () => {
    victim?.proc.kill('SIGKILL');
    await first?.close();
  });

  it('stays in the status, marked dead, with its partition counts (it vanished from it)', { timeout: 30_000 }, async () => {
    first = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 0 } });
    const url = first.stats().cluster!.url;
    victim = await startGridMember({ seeds: [url], backups: 0, memory: '16MB' }, SECRET, 20_000);
    type Node = { currentTable: Parameters<typeof ownedBy>[0]; membership: { statusOf(id: string): string | undefined } };
    const node = first.cluster as unknown as Node;
    const owns = () => ownedBy(node.currentTable, victim!.id).primaries;
    for (let i = 0; i < 400 && (owns() === 0 || first.stats().cluster!.migrating > 0); i++) await new Promise((r) => setTimeout(r, 50));
    expect(owns()).toBeGreaterThan(0);
    victim.proc.kill('SIGKILL');
    await victim.exited;
    for (let i = 0; i < 200 && node.membership.statusOf(victim.id) !== 'dead'; i++) await new Promise((r) => setTimeout(r, 50));
    expect(node.membership.statusOf(victim.id)).toBe('dead');
    const status = await fetchClusterStatus(url, SECRET);
    // the window: the table this status was made from still names the dead member
    const held = owns();
    expect(held).toBeGreaterThan(0);
    const row = status.members.find((m) => m.id === victim!.id);
    expect(row).toMatchObject({ id: victim.id, url: victim.url, status: 'dead', lite: false, primaries: held });
    expect(row!.error).toMatch(/partition table still names it/);
    expect(row!.entries).toBeUndefined();
    // the rows add up to every partition again
    expect(status.members.reduce((n, m) => n + m.primaries, 0)).toBe(status.partitions);
    const text = renderStatus(status);
    expect(text).toMatch(new RegExp(`^${victim.id}\\s+\\S+\\s+data\\s+dead\\s+${held}\\s`, 'm'));
    expect(text).toContain(`member ${victim.id} is not reachable: dead in this member's failure detector`);
  });
});

// a member's grid.member-stats answer went into the status as it came: strings with terminal
// escapes, objects and 100,000-character strings in the counts, printed as such by the CLI
describe('a member answering grid.member-stats with something that is not its figures', () => {
  const grids: Grid[] = [];
  afterAll(async () => {
    for (const g of grids.reverse()) await g.close();
  });

  it('gets a row with an error instead of its answer in the status', { timeout: 30_000 }, async () => {
    const a = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, secret: SECRET, backups: 1 } });
    grids.push(a);
    const b = await createGrid({ workers: 1, memory: '16MB', cluster: { host: '127.0.0.1', port: 0, seeds: [a.stats().cluster!.url], secret: SECRET, backups: 1 } });
    grids.push(b);
    const bid = b.stats().cluster!.memberId;
    const handle = (b.cluster as unknown as { transport: { handle(t: string, f: () => unknown): void } }).transport.handle.bind((b.cluster as unknown as { transport: object }).transport);
    for (const answer of [{ entries: '\x1b[2Jx', bytesUsed: { a: 1 }, bytesLimit: 'lots' }, { entries: 1, bytesUsed: -5, bytesLimit: 2 }, { entries: 1, bytesUsed: 'A'.repeat(100_000), bytesLimit: 2 }, null, 7]) {
      handle('grid.member-stats', () => answer);
      const status = await fetchClusterStatus(a.stats().cluster!.url, SECRET);
      const row = status.members.find((m) => m.id === bid);
      expect(row).toMatchObject({ id: bid, status: 'alive', error: 'it answered grid.member-stats with something that is not its figures' });
      expect(row!.entries).toBeUndefined();
      expect(row!.bytesUsed).toBeUndefined();
      expect(renderStatus(status)).not.toMatch(/[\x00-\x09\x0b-\x1f]/);
    }
    // control: its own figures are shown
    handle('grid.member-stats', () => ({ entries: 3, bytesUsed: 100, bytesLimit: 200 }));
    expect((await fetchClusterStatus(a.stats().cluster!.url, SECRET)).members.find((m) => m.id === bid)).toMatchObject({ entries: 3, bytesUsed: 100, bytesLimit: 200 });
  });
});
