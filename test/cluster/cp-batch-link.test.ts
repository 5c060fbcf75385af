// The lite member → data member path of grid.cp without a network: LiteLink (src/cp/cluster.ts)
// against a fake node, and CpDriver (src/cluster/metadata/cp-driver.ts) against a fake host.
// native-notes.md, "CP subsystem on Raft", "Batched lite requests".
import { afterEach, describe, expect, it, vi } from 'vitest';
import { CpDriver, RESEND_MS, type CpDriverHost } from '../../src/cluster/metadata/cp-driver.js';
import { CP_LIMITS, cpToWire, type CpCommand, type CpResult } from '../../src/cluster/metadata/cp-state.js';
import { LiteLink } from '../../src/cp/cluster.js';
import { MemberUnreachableError, ProtocolError } from '../../src/errors.js';
import { packr, unpackr } from '../../src/transport/wire.js';

type Cmd = CpCommand & { s: number; q: number };
const ladd = (q: number, s = 7): Cmd => ({ c: 'cp', o: 'ladd', s, q, a: 1, n: 'ctr', d: 1 });
const lock = (q: number, s = 7): Cmd => ({ c: 'cp', o: 'lock', s, q, a: 1, n: `l${q}`, l: 0, w: true });
/** A command as it travels (protocol 5): `[op, ...fields]`. */
const w = (c: CpCommand): unknown[] => cpToWire(c);

interface Sent { to: string; type: string; body: any; resolve: (v: unknown) => void; reject: (e: unknown) => void }

/** A lite member's node as LiteLink sees it: every request is recorded and answered by hand. */
function fakeLiteNode(ids = ['A', 'B']) {
  const sent: Sent[] = [];
  const node = {
    memberId: 'lite-1',
    transport: {
      request: (to: string, type: string, body: unknown) => new Promise((resolve, reject) => sent.push({ to, type, body, resolve, reject })),
      isConnected: () => true,
      notify: () => undefined,
    },
    membership: { members: () => ids.map((id) => ({ id, lite: false, status: 'alive' })) },
    ensureLink: () => Promise.resolve(),
  };
  return { node, sent };
}

const tick = () => new Promise((r) => setImmediate(r));

describe('LiteLink', () => {
  it('stays on the leader it moved to while requests to the member it used before are in flight', async () => {
    const { node, sent } = fakeLiteNode();
    const link = new LiteLink(node as never);
    // every pick is random while none is chosen: pin the first to A
    const rnd = vi.spyOn(Math, 'random').mockReturnValue(0);
    const first = link.exec(ladd(1), 1000);
    await tick();
    expect(sent.map((s) => [s.to, s.type])).toEqual([['A', 'cp.req']]);
    // a second request to A is in flight when A's answer makes the link ask who leads
    const second = link.exec(ladd(2), 1000);
    await tick();
    expect(sent[1].to).toBe('A');
    sent[0].resolve(['v', 1]);
    expect(await first).toEqual(['v', 1]);
    await tick();
    const ask = sent.find((s) => s.type === 'meta.leader?')!;
    expect(ask.to).toBe('A');
    ask.resolve({ leader: 'B' });
    await tick();
    // the request still in flight to A is answered: the link must not move back to A
    sent[1].resolve(['v', 2]);
    expect(await second).toEqual(['v', 2]);
    const third = link.exec(ladd(3), 1000);
    await tick();
    const last = sent[sent.length - 1];
    expect(last.to).toBe('B');
    last.resolve(['v', 3]);
    expect(await third).toEqual(['v', 3]);
    rnd.mockRestore();
  });

  it("sends one task's commands as one cp.req and hands each its answer; a queued wait asks again alone", async () => {
    const { node, sent } = fakeLiteNode(['A']);
    const link = new LiteLink(node as never);
    const ps = [link.exec(ladd(1), 1000), link.exec(lock(2), 500), link.exec(ladd(3), 1000)];
    await tick();
    expect(sent).toHaveLength(1);
    expect(sent[0].body).toEqual({ b: [w(ladd(1)), w(lock(2)), w(ladd(3))] });
    sent[0].resolve([['v', 1], ['q'], ['e', 'GRID_ERR_CP_KIND', 'no']]);
    await tick();
    // the wait goes again in the single form, which waits w ms for its grant
    const again = sent.filter((s) => s.type === 'cp.req').slice(1);
    expect(again.map((s) => s.body)).toEqual([{ cmd: w(lock(2)), w: 500 }]);
    again[0].resolve(['v', 99]);
    expect(await Promise.all(ps)).toEqual([['v', 1], ['v', 99], ['e', 'GRID_ERR_CP_KIND', 'no']]);
  });

  it('a lone wait that went alone and waited its w ms without a grant is answered "queued", not asked again (a tryLock waited twice its timeoutMs)', async () => {
    const { node, sent } = fakeLiteNode(['A']);
    const link = new LiteLink(node as never);
    const p = link.exec(lock(1), 300);
    await tick();
    expect(sent.map((s) => s.body)).toEqual([{ cmd: w(lock(1)), w: 300 }]);
    sent[0].resolve(['q']); // the data member waited 300 ms: no grant
    await tick();
    expect(sent.filter((s) => s.type === 'cp.req')).toHaveLength(1);
    expect(await p).toEqual(['q']);
  });

  it('keeps a batch within CP_LIMITS.maxBatch commands; a lone command goes in the single form', async () => {
    const { node, sent } = fakeLiteNode(['A']);
    const link = new LiteLink(node as never);
    const ps = Array.from({ length: CP_LIMITS.maxBatch + 1 }, (_, i) => link.exec(ladd(i + 1), 1000));
    await tick();
    expect(sent.map((s) => (s.body.b !== undefined ? s.body.b.length : 'single'))).toEqual([CP_LIMITS.maxBatch, 'single']);
    sent[0].resolve(Array.from({ length: CP_LIMITS.maxBatch }, (_, i) => ['v', i + 1]));
    sent[1].resolve(['v', CP_LIMITS.maxBatch + 1]);
    const rs = await Promise.all(ps);
    expect(rs.map((r) => r[1])).toEqual(Array.from({ length: CP_LIMITS.maxBatch + 1 }, (_, i) => i + 1));
  });

  it('falls back to single requests when a data member refuses a batch (GRID_ERR_PROTOCOL)', async () => {
    const { node, sent } = fakeLiteNode(['A']);
    const link = new LiteLink(node as never);
    const ps = [link.exec(ladd(1), 1000), link.exec(ladd(2), 1000)];
    await tick();
    sent[0].reject(new ProtocolError('malformed CP request'));
    await tick();
    const reqs = () => sent.filter((s) => s.type === 'cp.req');
    expect(reqs().slice(1).map((s) => s.body)).toEqual([{ cmd: w(ladd(1)), w: 1000 }, { cmd: w(ladd(2)), w: 1000 }]);
    reqs()[1].resolve(['v', 1]);
    reqs()[2].resolve(['v', 2]);
    expect(await Promise.all(ps)).toEqual([['v', 1], ['v', 2]]);
    // and no batches for a while
    const more = [link.exec(ladd(3), 1000), link.exec(ladd(4), 1000)];
    await tick();
    expect(reqs().slice(3).map((s) => s.body.cmd?.[2])).toEqual([3, 4]);
    reqs()[3].resolve(['v', 3]);
    reqs()[4].resolve(['v', 4]);
    await Promise.all(more);
  });

  it('answers "queued" for a batch no data member could take (the caller asks again)', async () => {
    const { node, sent } = fakeLiteNode(['A']);
    const link = new LiteLink(node as never);
    const ps = [link.exec(ladd(1), 1000), link.exec(lock(2), 1000)];
    await tick();
    sent[0].reject(new MemberUnreachableError('gone'));
    expect(await Promise.all(ps)).toEqual([['q'], ['q']]);
    expect(sent.filter((s) => s.type === 'cp.req')).toHaveLength(1);
  });
});

/** A data member's CP driver with a fake host: proposals are recorded, results applied by hand. */
function fakeDriver(opts: { leader?: boolean; hosts?: Map<number, string> } = {}) {
  const handlers = new Map<string, (b: unknown, from: string) => unknown>();
  const proposed: CpCommand[] = [];
  const notified: Array<{ to: string; type: string; body: unknown }> = [];
  const hosts = opts.hosts ?? new Map([[7, 'lite-1']]);
  const host: CpDriverHost = {
    memberId: 'A',
    lite: false,
    transport: {
      handle: (type: string, fn: (b: unknown, from: string) => unknown) => handlers.set(type, fn),
      notify: (to: string, type: string, body: unknown) => notified.push({ to, type, body }),
      isConnected: () => true,
    } as never,
    state: { cp: { sessionHost: (id: number) => hosts.get(id) }, members: new Map() } as never,
    log: () => undefined,
    isLeader: () => opts.leader ?? true,
    leaderId: () => ((opts.leader ?? true) ? 'A' : 'L'),
    propose: (cmd) => {
      proposed.push(Object.fromEntries(Object.entries(cmd)) as CpCommand); // as packed into the log: without the from-the-wire mark
      return 0;
    },
    readIndex: () => false,
    flush: () => undefined,
  };
  const d = new CpDriver(host);
  d.start();
  // what the transport hands over: the body decoded from its frame (the test's own objects stay as they are)
  const req = (b: unknown, from = 'lite-1') => handlers.get('cp.req')!(unpackr.unpack(packr.pack(b)), from) as Promise<CpResult | CpResult[]>;
  const answer = (c: Cmd, r: CpResult) => d.applied({ result: { s: c.s, q: c.q, r } });
  return { d, proposed, notified, req, answer };
}

describe('CpDriver: batched lite requests', () => {
  it('submits every command of a batch and answers them together with their first results', async () => {
    const { proposed, req, answer } = fakeDriver();
    const cmds = [ladd(1), lock(2), ladd(3)];
    const p = req({ b: cmds.map(w) });
    expect(proposed).toEqual(cmds);
    answer(cmds[2], ['v', 3]);
    answer(cmds[0], ['v', 1]);
    let done = false;
    void p.then(() => (done = true));
    await tick();
    expect(done).toBe(false); // one still unanswered
    answer(cmds[1], ['q']); // queued: answered at once, the lite member asks again alone
    expect(await p).toEqual([['v', 1], ['q'], ['v', 3]]);
  });

  it('refuses a malformed batch whole, before submitting anything', () => {
    const { proposed, req } = fakeDriver({ hosts: new Map([[7, 'lite-1'], [8, 'lite-2']]) });
    const bad: unknown[] = [
      [], // empty
      'x',
      Array.from({ length: CP_LIMITS.maxBatch + 1 }, (_, i) => w(ladd(i + 1))), // over the count
      [w(ladd(1)), [...w(ladd(2)), 1]], // one malformed command: a field too many
      [w(ladd(1)), ladd(2)], // a command as a map (protocol 4)
      [w(ladd(1)), w({ c: 'cp', o: 'open', k: 'k', h: 'lite-1', t: 1000 })], // opens go alone
      [w(ladd(1)), w({ c: 'cp', o: 'expire', s: 7 })], // leader-only
      [w(ladd(1)), w({ c: 'cp', o: 'leaseEnd', n: 'x', t: 5 })],
      [w(ladd(1)), w(ladd(2, 8))], // a session of another member
      [w(ladd(1)), w(ladd(1))], // one (session, sequence) twice
      // over the byte bound: 17 refs of 64 KiB
      Array.from({ length: 17 }, (_, i) => w({ c: 'cp', o: 'rset', s: 7, q: i + 1, a: 1, n: 'r', v: new Uint8Array(CP_LIMITS.maxValueBytes) })),
    ];
    for (const b of bad) expect(() => req({ b }), JSON.stringify(b).slice(0, 80)).toThrow(ProtocolError);
    expect(proposed).toEqual([]);
  });

  it('serves the single form, and refuses a command as a map (protocol 4)', async () => {
    const { proposed, req, answer } = fakeDriver();
    expect(() => req({ cmd: ladd(1), w: 100 })).toThrow(ProtocolError);
    const p = req({ cmd: w(ladd(1)), w: 100 });
    expect(proposed).toEqual([ladd(1)]);
    answer(ladd(1), ['v', 5]);
    expect(await p).toEqual(['v', 5]);
  });
});

describe('CpDriver: one resend sweep for all submits', () => {
  afterEach(() => vi.useRealTimers());

  it('sends an unanswered command again after RESEND_MS, stops on its answer, and stops the sweep when none is left', () => {
    vi.useFakeTimers();
    const { d, notified, answer } = fakeDriver({ leader: false });
    const got: CpResult[] = [];
    d.submit(ladd(1), (r) => (got.push(r), true));
    d.submit(ladd(2), (r) => (got.push(r), true));
    expect(notified.map((n) => (n.body as unknown[])[2])).toEqual([1, 2]);
    expect(vi.getTimerCount()).toBe(1); // one timer for both
    vi.advanceTimersByTime(RESEND_MS - 1);
    expect(notified).toHaveLength(2);
    vi.advanceTimersByTime(RESEND_MS / 2);
    expect(notified.map((n) => (n.body as unknown[])[2])).toEqual([1, 2, 1, 2]);
    answer(ladd(1), ['v', 1]);
    vi.advanceTimersByTime(RESEND_MS + RESEND_MS / 2);
    expect(notified.map((n) => (n.body as unknown[])[2])).toEqual([1, 2, 1, 2, 2]);
    answer(ladd(2), ['v', 2]);
    expect(got).toEqual([['v', 1], ['v', 2]]);
    vi.advanceTimersByTime(RESEND_MS);
    expect(notified).toHaveLength(5);
    expect(vi.getTimerCount()).toBe(0);
  });

  it('a stopped submit is not sent again', () => {
    vi.useFakeTimers();
    const { d, notified } = fakeDriver({ leader: false });
    const stop = d.submit(ladd(1), () => true);
    stop();
    vi.advanceTimersByTime(RESEND_MS * 3);
    expect(notified).toHaveLength(1);
  });
});
