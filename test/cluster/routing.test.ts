// Router.overPartitions (size, aggregate, clear over every partition) with fake members and fake
// time: which partitions each member is asked for, and how long a refused group is retried.
import { afterEach, describe, expect, it, vi } from 'vitest';
import { Router } from '../../dist/cluster/routing.js';
import { MemberUnreachableError, PartitionMovedError } from '../../dist/errors.js';

type Table = { version: number; owners: string[][]; pending: string[][]; epochs: number[] };

function cluster(owners: string[]) {
  const state = { table: { version: 1, owners: owners.map((o) => [o]), pending: owners.map(() => []), epochs: owners.map(() => 1) } as Table };
  const r = {
    get table() {
      return state.table;
    },
    get version() {
      return state.table.version;
    },
    tableChange: (ms: number) => new Promise<void>((res) => setTimeout(res, ms)),
    assertPrimary: () => undefined,
  };
  const ctx = { partitions: owners.length, memberId: 'caller', closed: false, lite: true, ensureLink: async () => undefined, transport: {}, meta: {} };
  const router = new Router(ctx as never, r as never);
  const move = (p: number, to: string) => {
    const t = state.table;
    state.table = { ...t, version: t.version + 1, owners: t.owners.map((o, i) => (i === p ? [to] : o)), epochs: t.epochs.map((e, i) => (i === p ? e + 1 : e)) };
  };
  return { router, move, state };
}

/** Runs `p` to completion under fake timers. */
async function settle<T>(p: Promise<T>): Promise<T> {
  let done = false;
  const out = p.finally(() => (done = true));
  out.catch(() => undefined); // settled by the caller's await below
  for (let i = 0; i < 10_000 && !done; i++) await vi.advanceTimersByTimeAsync(50);
  return out;
}

afterEach(() => {
  vi.useRealTimers();
});

describe('Router.overPartitions', () => {
  it('asks each member for the partitions it is primary of in the caller table, each partition once', async () => {
    const { router } = cluster(['a', 'b', 'a', 'c', 'b']);
    const asked: Array<[string, number[]]> = [];
    const out = await router.overPartitions(
      async () => {
        throw new Error('the caller holds nothing');
      },
      async (to, ps) => (asked.push([to, ps]), ps.length),
    );
    expect(out.reduce((a, b) => a + b, 0)).toBe(5);
    expect(asked.sort()).toEqual([['a', [0, 2]], ['b', [1, 4]], ['c', [3]]]);
  });

  it('a group refused after a long run (a 20 s aggregation share whose partition moved meanwhile) is sent again to the new primary, not failed for the 15 s retry deadline', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { router, move } = cluster(['a', 'a', 'b', 'b']);
    const calls: string[] = [];
    const p = router.overPartitions(
      async () => 0,
      async (to, ps) => {
        calls.push(`${to}:${ps.join(',')}`);
        if (to === 'a' && calls.filter((c) => c.startsWith('a:')).length === 1) {
          await new Promise((r) => setTimeout(r, 20_000)); // the share runs 20 s
          move(1, 'b'); // a join took partition 1 meanwhile: a refuses the whole group
          throw new PartitionMovedError('partition 1 is not primary on member a', { partition: 1, version: 2 });
        }
        return ps.length;
      },
    );
    const total = await settle(p.then((r) => r.reduce((a, b) => a + b, 0)));
    expect(total).toBe(4);
    expect(calls).toEqual(['a:0,1', 'b:2,3', 'a:0', 'b:1']);
  });

  it('an unreachable member is still given up on after the retry deadline (the waiting is bounded)', async () => {
    vi.useFakeTimers({ now: 1_000_000 });
    const { router } = cluster(['a', 'b']);
    const p = router.overPartitions(
      async () => 0,
      async (to) => {
        if (to === 'a') throw new MemberUnreachableError('member a is not alive');
        return 1;
      },
    );
    const t0 = Date.now();
    const e = await settle(p.then(() => undefined, (err: unknown) => err as Error & { code: string }));
    expect(e?.code).toBe('GRID_ERR_MEMBER_UNREACHABLE');
    expect(Date.now() - t0).toBeGreaterThanOrEqual(15_000);
    expect(Date.now() - t0).toBeLessThan(17_000);
  });
});
