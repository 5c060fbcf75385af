// ClusterCp (src/cp/cluster.ts), the client side of grid.cp in a cluster, against a fake CpLink:
// the numbering every retry relies on (a retry reuses its (session, sequence); `a`, the lowest
// sequence still outstanding, never passes one that is), the fast path of a command whose session
// is open, and a session that expires under a command.
import { describe, expect, it } from 'vitest';
import { ClusterAtomicLong, ClusterCp, ClusterFencedLock, LiteLink, type CpLink } from '../../src/cp/cluster.js';
import type { CpCommand, CpResult } from '../../src/cluster/metadata/cp-state.js';
import type { ReadKind } from '../../src/cluster/metadata/cp-driver.js';

type Cmd = CpCommand & { s: number; q: number; a: number };

/** A link whose answers the test gives: each exec waits for `answer(i, result)`. */
class FakeLink implements CpLink {
  opens = 0;
  readonly calls: Cmd[] = [];
  private readonly waiting: Array<(r: CpResult) => void> = [];
  open(): Promise<number> {
    return Promise.resolve(++this.opens * 100);
  }
  exec(cmd: CpCommand & { s: number; q: number }): Promise<CpResult> {
    this.calls.push(cmd as Cmd);
    return new Promise((resolve) => this.waiting.push(resolve));
  }
  read(): Promise<unknown> {
    return Promise.resolve(null);
  }
  heartbeat(): void {}
  /** Answers call i (in call order). */
  answer(i: number, r: CpResult): void {
    this.waiting[i](r);
  }
  async calls_(n: number): Promise<void> {
    for (let k = 0; k < 200 && this.calls.length < n; k++) await new Promise((r) => setTimeout(r, 5));
    expect(this.calls.length).toBe(n);
  }
}

const body = (n: string) => ({ o: 'ladd', n, d: 1 });

/**
 * Call `at` (a command's first attempt) gets no answer: the client asks again with the same
 * session and sequence, and that attempt is answered with `r`.
 */
async function retriedAndAnswered(link: FakeLink, at: number, r: CpResult): Promise<void> {
  await link.calls_(at + 1);
  link.answer(at, ['q']); // no data member answered
  await link.calls_(at + 2);
  expect([link.calls[at + 1].s, link.calls[at + 1].q]).toEqual([link.calls[at].s, link.calls[at].q]);
  link.answer(at + 1, r);
}

/** A client on a fake link whose session is open (its first command answered). */
async function opened(): Promise<{ link: FakeLink; cp: ClusterCp }> {
  const link = new FakeLink();
  const cp = new ClusterCp(link, 10_000);
  const first = cp.run(body('first'));
  await link.calls_(1);
  link.answer(0, ['v', 0]);
  await first;
  return { link, cp };
}

describe('ClusterCp numbering', () => {
  it('numbers commands in one session, and `a` stays at the lowest sequence still outstanding', async () => {
    const link = new FakeLink();
    const cp = new ClusterCp(link, 10_000);
    const first = cp.run(body('x'));
    await link.calls_(1);
    link.answer(0, ['v', 1]);
    expect(await first).toEqual(['v', 1]);
    // the session is open now: three at once, the first answered last
    const rs = [cp.run(body('x')), cp.run(body('x')), cp.run(body('x'))];
    await link.calls_(4);
    expect(link.calls.slice(1).map((c) => [c.s, c.q, c.a])).toEqual([[100, 2, 2], [100, 3, 2], [100, 4, 2]]);
    link.answer(2, ['v', 3]);
    link.answer(3, ['v', 4]);
    await Promise.all([rs[1], rs[2]]);
    const next = cp.run(body('x'));
    await link.calls_(5);
    expect(link.calls[4].a).toBe(2); // q 2 is still outstanding
    link.answer(1, ['v', 2]);
    link.answer(4, ['v', 5]);
    expect(await Promise.all([rs[0], next])).toEqual([['v', 2], ['v', 5]]);
    const last = cp.run(body('x'));
    await link.calls_(6);
    expect([link.calls[5].q, link.calls[5].a]).toEqual([6, 6]); // none outstanding: its own
    link.answer(5, ['v', 6]);
    await last;
    expect(link.opens).toBe(1);
  });

  it('a command without an answer is asked again with the same session and sequence', async () => {
    const { link, cp } = await opened();
    const r = cp.run(body('y')); // the fast path
    await retriedAndAnswered(link, 1, ['v', 7]);
    expect(await r).toEqual(['v', 7]);
    const after = cp.run(body('y'));
    await link.calls_(4);
    expect(link.calls[3].a).toBe(link.calls[3].q); // the retried one is no longer outstanding
    link.answer(3, ['v', 8]);
    await after;
  });

  it('a session that expired under a command: lock and acquire run again in a new session; other commands fail with GRID_ERR_CP_SESSION', async () => {
    const { link, cp } = await opened();
    const redo = cp.run({ o: 'lock', n: 'l', l: 0, w: false }, { mayRedo: true });
    await link.calls_(2);
    link.answer(1, ['e', 'GRID_ERR_CP_SESSION', 'expired']);
    await link.calls_(3);
    expect(link.opens).toBe(2);
    expect(link.calls[2].s).toBe(200);
    link.answer(2, ['v', 42]);
    expect(await redo).toEqual(['v', 42]);
    const plain = cp.run(body('z'));
    await link.calls_(4);
    link.answer(3, ['e', 'GRID_ERR_CP_SESSION', 'expired']);
    await expect(plain).rejects.toMatchObject({ code: 'GRID_ERR_CP_SESSION' });
    const fresh = cp.run(body('z')); // a third session
    await link.calls_(5);
    expect(link.calls[4].s).toBe(300);
    link.answer(4, ['v', 1]);
    await fresh;
  });

  it('a wait (lock) in an open session takes the fast path: close() cuts it, and one without an answer is asked again with its sequence', async () => {
    const { link, cp } = await opened();
    const lock = cp.run({ o: 'lock', n: 'l', l: 0, w: true }, { mayRedo: true });
    await retriedAndAnswered(link, 1, ['v', 11]);
    expect(link.calls[1]).toMatchObject({ o: 'lock', w: true, s: 100, q: 2 });
    expect(await lock).toEqual(['v', 11]);
    // a wait still in flight when the client closes ends at once with the closed error
    const waiting = cp.run({ o: 'lock', n: 'm', l: 0, w: true }, { mayRedo: true });
    await link.calls_(4);
    const closing = cp.close();
    await link.calls_(5); // close's own command, in the session
    expect(link.calls[4]).toMatchObject({ o: 'close', s: 100 });
    link.answer(4, ['v', true]);
    await closing;
    await expect(waiting).rejects.toMatchObject({ code: 'GRID_ERR_CLOSED' });
  });

  it("atomicLong's chained forms: a bigint from the result, a typed error from an error result, and a bad delta as a rejection, not a throw", async () => {
    const { link, cp } = await opened();
    const n = new ClusterAtomicLong(cp, 'n');
    const inc = n.incrementAndGet();
    await link.calls_(2);
    expect(link.calls[1]).toMatchObject({ o: 'ladd', n: 'n', d: 1 });
    link.answer(1, ['v', 41]);
    expect(await inc).toBe(41n);
    const add = n.addAndGet(5n);
    await link.calls_(3);
    expect(link.calls[2]).toMatchObject({ o: 'ladd', d: 5 });
    link.answer(2, ['e', 'GRID_ERR_CP_KIND', "'n' is a lock"]);
    await expect(add).rejects.toMatchObject({ code: 'GRID_ERR_CP_KIND' });
    let p: Promise<bigint> | undefined;
    expect(() => (p = n.addAndGet(2n ** 60n))).not.toThrow();
    await expect(p).rejects.toMatchObject({ code: 'GRID_ERR_CP_RANGE' });
    expect(link.calls).toHaveLength(3); // nothing sent for it
  });

  it("the lock's chained forms: the token, a bad lease as a rejection, and a lost session's unlock as GRID_ERR_LOCK_NOT_HELD", async () => {
    const { link, cp } = await opened();
    const lock = new ClusterFencedLock(cp, 'l');
    let bad: Promise<number> | undefined;
    expect(() => (bad = lock.lock({ leaseMs: -1 }))).not.toThrow();
    await expect(bad).rejects.toMatchObject({ code: 'GRID_ERR_INVALID_ARGUMENT' });
    expect(link.calls).toHaveLength(1); // nothing sent for it
    const got = lock.lock();
    await link.calls_(2);
    link.answer(1, ['v', 4096]);
    expect(await got).toBe(4096);
    const un = lock.unlock();
    await link.calls_(3);
    link.answer(2, ['e', 'GRID_ERR_CP_SESSION', 'expired']);
    await expect(un).rejects.toMatchObject({ code: 'GRID_ERR_LOCK_NOT_HELD' });
  });

  // a lone command's answer was taken as it came: an error result whose message was an object with
  // a toString field reached errorFromWire's String() and threw a TypeError at the caller
  it("a lite member takes a data member's answer to a lone command only as a CP result; anything else is no answer", async () => {
    let reply: unknown;
    const link = liteLink(() => reply);
    const cmd = { c: 'cp', o: 'ladd', n: 'x', d: 1, s: 1, q: 1, a: 1 } as unknown as CpCommand & { s: number; q: number };
    for (const bad of [['e', 'GRID_ERR_CP_SESSION', { toString: 'x' }], ['e', 'GRID_ERR_NOT_CP', 'm'], ['e', 'GRID_ERR_CP_SESSION', 'x'.repeat(5000)], ['v', { a: 1 }], 'v1', 7, null]) {
      reply = bad;
      expect(await link.exec(cmd, 100)).toEqual(['q']);
    }
    reply = ['e', 'GRID_ERR_CP_SESSION', 'session 1 expired'];
    expect(await link.exec(cmd, 100)).toEqual(reply);
  });

  // a read's answer was taken as it came: ['v', 'x'] made atomicLong.get throw a SyntaxError out of BigInt, not a GridError
  it("a lite member takes a data member's answer to a read only in the read's form, else GRID_ERR_PROTOCOL", async () => {
    let reply: unknown;
    const link = liteLink(() => reply);
    const bad: Array<[ReadKind, unknown]> = [
      ['long', ['v', {}]], ['long', ['v', 'x']], ['long', ['v', true]], ['lock', ['v', 1]], ['lock', ['e', 'GRID_ERR_CP_KIND', { toString: 'x' }]],
      ['ref', { b: 'str', ver: 1 }], ['ref', { b: null }], ['sem', { v: '3', held: 0 }], ['sem', ['v', 3]], ['long', null],
    ];
    for (const [kind, r] of bad) {
      reply = r;
      await expect(link.read(kind, 'n', -1, 1)).rejects.toMatchObject({ code: 'GRID_ERR_PROTOCOL' });
    }
    const good: Array<[ReadKind, unknown]> = [['long', ['v', 41]], ['lock', ['v', false]], ['ref', { b: new Uint8Array([1]), ver: 2 }], ['ref', { b: null, ver: 0 }], ['sem', { v: 3, held: 1 }], ['long', ['e', 'GRID_ERR_CP_KIND', "'n' is a lock, not a long"]]];
    for (const [kind, r] of good) {
      reply = r;
      expect(await link.read(kind, 'n', -1, 1)).toEqual(r);
    }
  });
});

/** A lite member's link whose one data member answers every cp.req and cp.read with `reply()`. */
function liteLink(reply: () => unknown): LiteLink {
  const node = {
    memberId: 'lite-cpclient',
    membership: { members: () => [{ id: 'm-a', lite: false, status: 'alive' }] },
    ensureLink: () => Promise.resolve(),
    transport: { request: (_id: string, type: string) => Promise.resolve(type === 'meta.leader?' ? null : reply()), isConnected: () => true, notify: () => undefined },
  };
  return new LiteLink(node as never);
}
