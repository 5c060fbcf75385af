import { describe, expect, it } from 'vitest';
import { TableWaiters, type TableCheck } from '../../src/cluster/table-waiters.js';
import type { PartitionTable } from '../../src/ring/table.js';

const table = (version: number): PartitionTable => ({ version, owners: [['a']], pending: [[]], epochs: [1], lost: [0] });

describe('writes waiting on the table', () => {
  it('keeps a wait that a settling wait starts during the same run (a dropped copy, then a second copy), and settles it on a later table', () => {
    const w = new TableWaiters();
    const log: string[] = [];
    // a write first waits for a table that dropped its missing copy (version 2), then for one with a second in-sync copy (version 3)
    const second: TableCheck = (t) => {
      if (t === undefined || t.version < 3) return false;
      log.push(`acknowledged at ${t.version}`);
      return true;
    };
    const first: TableCheck = (t) => {
      if (t === undefined || t.version < 2) return false;
      log.push(`copy dropped at ${t.version}`);
      w.add(second);
      return true;
    };
    w.add(first);
    w.run(table(1));
    expect(w.size).toBe(1);
    w.run(table(2));
    expect(log).toEqual(['copy dropped at 2']);
    expect(w.size).toBe(1); // the second wait was not lost
    w.run(table(3));
    expect(log).toEqual(['copy dropped at 2', 'acknowledged at 3']);
    expect(w.size).toBe(0);
  });

  it('passes leaseCheck through, removes a timed-out waiter, and fails every waiter (and those they start) when the member stops serving', () => {
    const w = new TableWaiters();
    const seen: Array<[number | undefined, boolean | undefined]> = [];
    const a: TableCheck = (t, lc) => {
      seen.push([t?.version, lc]);
      return false;
    };
    w.add(a);
    w.run(table(5), true);
    expect(seen).toEqual([[5, true]]);
    w.remove(a);
    expect(w.size).toBe(0);
    const failed: string[] = [];
    w.add((t) => {
      failed.push(`x ${String(t)}`);
      w.add((u) => (failed.push(`y ${String(u)}`), true));
      return true;
    });
    w.failAll();
    expect(failed).toEqual(['x undefined', 'y undefined']);
    expect(w.size).toBe(0);
  });
});
