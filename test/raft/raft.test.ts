import { describe, expect, it } from 'vitest';
import { GridError, InvalidArgumentError } from '../../dist/index.js';
import { RaftNode, validateMessage, LIMITS } from '../../dist/raft/index.js';
import type { Entry, RaftMessage, RaftNodeOptions, PersistentState } from '../../dist/raft/index.js';

/**
 * A tiny synchronous network for scenario tests: every node's ready() is handled right away
 * (persisted to an in-memory store, messages queued, committed entries recorded), and messages
 * are delivered until none are left, except across cut links.
 */
class Net {
  readonly nodes = new Map<string, RaftNode>();
  readonly applied = new Map<string, Entry[]>();
  readonly sent: RaftMessage[] = [];
  readonly snapshotsInstalled = new Map<string, number>();
  private readonly isolated = new Set<string>();
  private queue: RaftMessage[] = [];
  /** return false to drop a message */
  filter: (m: RaftMessage) => boolean = () => true;

  constructor(ids: string[], opts: Partial<RaftNodeOptions> = {}, learners: string[] = []) {
    for (const id of [...ids, ...learners]) this.add(new RaftNode({ id, voters: ids, learners, seed: 7, ...opts }));
  }
  add(n: RaftNode): RaftNode {
    this.nodes.set(n.id, n);
    this.applied.set(n.id, []);
    return n;
  }
  get(id: string): RaftNode { return this.nodes.get(id) as RaftNode; }
  isolate(id: string): void { this.isolated.add(id); }
  heal(): void { this.isolated.clear(); }
  flush(): void {
    for (const [id, n] of this.nodes) {
      while (n.hasReady()) {
        const rd = n.ready();
        if (rd.snapshot !== undefined) this.snapshotsInstalled.set(id, rd.snapshot.index);
        for (const m of rd.messages) { this.sent.push(m); this.queue.push(m); }
        (this.applied.get(id) as Entry[]).push(...rd.committed);
        n.advance();
      }
    }
  }
  deliver(maxRounds = 200): void {
    for (let round = 0; round < maxRounds; round++) {
      this.flush();
      if (this.queue.length === 0) return;
      const q = this.queue;
      this.queue = [];
      for (const m of q) {
        if (this.isolated.has(m.from) || this.isolated.has(m.to) || !this.filter(m)) continue;
        this.nodes.get(m.to)?.step(m);
      }
    }
  }
  /** tick the given nodes (default all) n times, delivering after each */
  tick(n = 1, ids?: string[]): void {
    for (let i = 0; i < n; i++) {
      for (const [id, node] of this.nodes) if (ids === undefined || ids.includes(id)) node.tick();
      this.deliver();
    }
  }
  /** only `id` ticks until it leads */
  elect(id: string): void {
    const n = this.get(id);
    for (let i = 0; i < 100 && n.role !== 'leader'; i++) this.tick(1, [id]);
    expect(n.role).toBe('leader');
  }
  leaders(): string[] { return [...this.nodes.values()].filter((n) => n.role === 'leader').map((n) => n.id); }
}

const bytes = (n: number) => new Uint8Array([n]);

describe('leader election', () => {
  it('elects the node whose timeout fires first and every voter follows it in the same term', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    for (const id of ['b', 'c']) {
      expect(net.get(id).role).toBe('follower');
      expect(net.get(id).leader).toBe('a');
      expect(net.get(id).term).toBe(net.get('a').term);
    }
    // the leader's empty entry of its term commits everywhere
    net.tick(2);
    for (const n of net.nodes.values()) expect(n.commitIndex).toBe(2);
    expect(net.leaders()).toEqual(['a']);
  });

  it('electionQuiet: the smallest silence of the voters that elected it, its own included; 0 after a transfer', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.tick(3);
    // a dies; b and c hear nothing from then on. c has heard nothing for 25 ticks more than b
    // (b ticks alone first: it cannot win without c's vote, so it just counts)
    net.isolate('a');
    net.isolate('c');
    net.tick(25, ['c']);
    net.heal();
    net.isolate('a');
    const b = net.get('b');
    let ticks = 0;
    for (; ticks < 100 && b.role !== 'leader'; ticks++) net.tick(1, ['b']);
    expect(b.role).toBe('leader');
    // b's own silence (ticks) is the smaller: c's counts the 25 extra ticks as well
    expect(b.electionQuiet).toBe(ticks);
    expect(b.electionQuiet).toBeGreaterThanOrEqual(10); // stickiness: an election timeout at least
    expect(net.get('c').electionQuiet).toBeUndefined();
    // a transfer's votes skip stickiness: no silence is claimed
    net.tick(2);
    expect(b.transferLeadership('c')).toBeUndefined();
    net.tick(3, ['b', 'c']);
    expect(net.get('c').role).toBe('leader');
    expect(net.get('c').wonByTransfer).toBe(true);
    expect(net.get('c').electionQuiet).toBe(0);
  });

  it('draws election timeouts from the seed: same seed, same inputs, identical outputs', () => {
    const run = () => {
      const net = new Net(['a', 'b', 'c'], { seed: 99 });
      net.tick(40);
      net.get(net.leaders()[0]).propose(bytes(1));
      net.tick(3);
      return JSON.stringify(net.sent, (_k, v) => (v instanceof Uint8Array ? [...v] : v));
    };
    expect(run()).toBe(run());
  });

  it('replicates and applies proposals in order on every node', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    for (let i = 1; i <= 5; i++) expect(net.get('a').propose(bytes(i))).toBe(2 + i);
    net.tick(2);
    for (const id of ['a', 'b', 'c']) {
      const data = (net.applied.get(id) as Entry[]).filter((e) => e.data !== undefined).map((e) => e.data?.[0]);
      expect(data).toEqual([1, 2, 3, 4, 5]);
    }
  });
});

describe('PreVote and CheckQuorum', () => {
  it('a partitioned node rejoining does not bump terms or disrupt a stable leader (PreVote)', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    const term = net.get('a').term;
    net.isolate('c');
    net.tick(60); // c times out over and over, but its pre-votes go nowhere
    expect(net.get('c').term).toBe(term);
    net.heal();
    net.tick(5);
    expect(net.leaders()).toEqual(['a']);
    for (const n of net.nodes.values()) expect(n.term).toBe(term);
  });

  it('without PreVote the same partition bumps terms and deposes the leader (the control)', () => {
    const net = new Net(['a', 'b', 'c'], { preVote: false });
    net.elect('a');
    const term = net.get('a').term;
    net.isolate('c');
    net.tick(60);
    expect(net.get('c').term).toBeGreaterThan(term);
    net.heal();
    net.tick(1);
    expect(net.get('a').role).not.toBe('leader');
  });

  it('a leader that has not heard from a majority for an election timeout steps down (CheckQuorum)', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('a');
    net.tick(10, ['a']);
    net.tick(10, ['a']);
    expect(net.get('a').role).toBe('follower');
    expect(net.get('a').leader).toBeUndefined();
  });

  it('a follower that heard from its leader within the election timeout ignores a higher-term vote request (stickiness)', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    const b = net.get('b');
    const term = b.term;
    b.step({ type: 'vote', from: 'c', to: 'b', term: term + 5, lastIndex: 100, lastTerm: term + 4, transfer: false });
    expect(b.term).toBe(term);
    expect(b.ready().messages).toEqual([]);
    b.advance();
    b.step({ type: 'preVote', from: 'c', to: 'b', term: term + 1, lastIndex: 100, lastTerm: term });
    expect(b.ready().messages).toEqual([]);
    b.advance();
  });

  it('quorumContactTick reports the latest tick a majority of voters acknowledged', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    const a = net.get('a');
    net.tick(3);
    expect(a.quorumContactTick()).toBe(a.ticks); // everyone answers within the tick here
    net.isolate('b');
    net.isolate('c');
    const before = a.ticks;
    net.tick(4, ['a']);
    expect(a.quorumContactTick()).toBe(before);
    expect(net.get('b').quorumContactTick()).toBeUndefined();
  });
});

describe('log replication', () => {
  it('repairs a long conflicting suffix with a few rejections, not one per entry (conflict hints)', () => {
    const e = (index: number, term: number): Entry => (index === 1
      ? { index: 1, term: 1, type: 'conf', config: { voters: ['a', 'b', 'c'], learners: [] } }
      : { index, term, type: 'normal', data: bytes(index) });
    const leaderLog = [e(1, 1), ...[2, 3, 4, 5, 6].map((i) => e(i, 2)), ...[7, 8, 9, 10, 11].map((i) => e(i, 4))];
    const stale = [e(1, 1), e(2, 2), e(3, 2), ...Array.from({ length: 40 }, (_x, k) => e(4 + k, 3))];
    const mk = (id: string, entries: Entry[], term: number): RaftNode =>
      new RaftNode({ id, seed: 1, maxEntriesPerAppend: 1024 }, { term, entries, commit: 1 } as PersistentState);
    const net = new Net([]);
    net.add(mk('a', leaderLog, 4));
    net.add(mk('b', leaderLog, 4));
    net.add(mk('c', stale, 3));
    net.elect('a');
    net.tick(3);
    const rejections = net.sent.filter((m) => m.type === 'appendResp' && m.from === 'c' && m.reject).length;
    expect(rejections).toBeGreaterThan(0);
    expect(rejections).toBeLessThanOrEqual(3);
    const a = net.get('a');
    const c = net.get('c');
    expect(c.lastIndex).toBe(a.lastIndex);
    for (let i = 1; i <= a.lastIndex; i++) expect(c.termAt(i)).toBe(a.termAt(i));
    expect(c.commitIndex).toBe(a.commitIndex);
  });

  it('commits an entry of an earlier term only together with one of the current term (§5.4.2)', () => {
    const conf = { index: 1, term: 1, type: 'conf', config: { voters: ['a', 'b', 'c'], learners: [] } } as Entry;
    const x = { index: 2, term: 2, type: 'normal', data: bytes(9) } as Entry;
    const build = (unsafe: boolean) => {
      const net = new Net([]);
      const o = { seed: 1, maxEntriesPerAppend: 1, unsafe: { commitPriorTermByCount: unsafe } };
      net.add(new RaftNode({ id: 'a', ...o }, { term: 3, entries: [conf, x], commit: 1 }));
      net.add(new RaftNode({ id: 'b', ...o }, { term: 3, entries: [conf, { index: 2, term: 3, type: 'normal' }], commit: 1 }));
      net.add(new RaftNode({ id: 'c', ...o }, { term: 3, entries: [conf], commit: 1 }));
      net.isolate('b');
      // 'a' wins term 4 with c's vote, then c gets x (index 2) but never a's own entry (index 3)
      net.filter = (m) => !(m.type === 'append' && m.to === 'c' && m.entries.some((en) => en.index === 3));
      net.elect('a');
      net.tick(3, ['a']);
      return net;
    };
    expect(build(false).get('a').commitIndex).toBe(1); // x is on a majority, but not committed
    const bad = build(true);
    expect(bad.get('a').commitIndex).toBe(2); // the Figure 8 bug: committed by counting...
    // ...and then overwritten: b (last term 3) wins c's vote and replaces x
    bad.heal();
    bad.isolate('a');
    bad.filter = () => true;
    // c must first notice a is gone (leader stickiness), so both tick; c cannot win (b refuses it)
    for (let i = 0; i < 100 && bad.get('b').role !== 'leader'; i++) bad.tick(1, ['b', 'c']);
    expect(bad.get('b').role).toBe('leader');
    bad.tick(2, ['b']);
    // two nodes now hold different committed entries at index 2: state-machine safety is broken
    // (c was told index 2 committed, so it keeps x yet acknowledges b's log up to there)
    expect(bad.get('a').termAt(2)).toBe(2);
    expect(bad.get('b').termAt(2)).toBe(3);
    expect(bad.get('b').commitIndex).toBeGreaterThanOrEqual(2);
  });
});

describe('commit notices', () => {
  it('commitNotice may defer telling a follower of a commit: it learns it from sendCommitTo, the next append or the heartbeat tick', () => {
    const asked: Array<[string, number, number]> = [];
    let defer = true;
    const net = new Net(['a', 'b', 'c'], { commitNotice: (to: string, from: number, upTo: number) => { asked.push([to, from, upTo]); return !defer; } });
    net.elect('a');
    net.tick(1);
    const a = net.get('a');
    const before = net.get('b').commitIndex;
    expect(typeof a.propose(bytes(1))).toBe('number');
    net.deliver();
    expect(a.commitIndex).toBe(before + 1);
    // asked for both followers, deferred: they hold the entry but do not know it committed
    expect(asked.some(([to, , upTo]) => to === 'b' && upTo === before + 1)).toBe(true);
    expect(net.get('b').commitIndex).toBe(before);
    expect(net.get('c').commitIndex).toBe(before);
    a.sendCommitTo('b');
    net.deliver();
    expect(net.get('b').commitIndex).toBe(before + 1);
    expect(net.get('c').commitIndex).toBe(before);
    net.tick(1, ['a']); // the heartbeat tick carries it to everyone
    expect(net.get('c').commitIndex).toBe(before + 1);
    // allowed at once: a heartbeat right away
    defer = false;
    a.propose(bytes(2));
    net.deliver();
    expect(net.get('c').commitIndex).toBe(before + 2);
  });
});

describe('compaction and snapshots', () => {
  it('sends a snapshot to a follower that is behind the leader\'s compacted log, then entries after it', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.isolate('c');
    for (let i = 1; i <= 20; i++) net.get('a').propose(bytes(i));
    net.tick(2, ['a', 'b']);
    const a = net.get('a');
    expect(a.appliedIndex).toBe(22);
    const snap = a.compact(20, new Uint8Array([1, 2, 3]));
    expect(snap).toMatchObject({ index: 20, term: a.termAt(21) });
    expect(a.firstIndex).toBe(21);
    a.propose(bytes(99));
    net.heal();
    net.tick(3);
    const c = net.get('c');
    expect(net.snapshotsInstalled.get('c')).toBe(20);
    expect(c.snapshotIndex).toBe(20);
    expect(c.lastIndex).toBe(a.lastIndex);
    expect(c.commitIndex).toBe(a.commitIndex);
    expect(net.sent.filter((m) => m.type === 'snapshot' && m.to === 'c').length).toBeGreaterThan(0);
    // c applied nothing up to 20 entry by entry: it took the snapshot, then the entries after it
    const appliedC = (net.applied.get('c') as Entry[]).map((e) => e.index);
    expect(appliedC.filter((i) => i > 20)).toEqual([21, 22, 23]);
  });

  it('refuses to compact beyond what was applied', () => {
    const net = new Net(['a']);
    net.elect('a');
    expect(() => net.get('a').compact(50, new Uint8Array())).toThrow(InvalidArgumentError);
  });
});

describe('learners and membership changes', () => {
  it('a learner receives the log but never campaigns, and its vote does not count', () => {
    const net = new Net(['a', 'b', 'c'], {}, ['l']);
    net.elect('a');
    net.get('a').propose(bytes(1));
    net.tick(2);
    expect(net.get('l').commitIndex).toBe(net.get('a').commitIndex);
    // the learner is never asked, and ticking it forever does not make it campaign
    expect(net.sent.some((m) => (m.type === 'vote' || m.type === 'preVote') && m.to === 'l')).toBe(false);
    net.isolate('a');
    net.tick(100, ['l']);
    expect(net.get('l').role).toBe('follower');
    // a candidate with the learner's grant but no voter's is not elected
    net.heal();
    net.isolate('b');
    net.isolate('c');
    const a = net.get('a');
    net.tick(25, ['a']);
    expect(a.role).not.toBe('leader');
    const term = a.term;
    a.step({ type: 'voteResp', from: 'l', to: 'a', term, reject: false, quiet: 0 });
    expect(a.role).not.toBe('leader');
  });

  it('adds a learner, promotes it, and it then counts for the quorum', () => {
    const net = new Net(['a', 'b', 'c']);
    net.add(new RaftNode({ id: 'd', seed: 3 })); // joins empty: no bootstrap config
    net.elect('a');
    net.tick(1);
    const a = net.get('a');
    expect(typeof a.proposeConfChange({ kind: 'addLearner', id: 'd' })).toBe('number');
    net.tick(2);
    expect(net.get('d').config.learners).toEqual(['d']);
    expect(typeof a.proposeConfChange({ kind: 'promote', id: 'd' })).toBe('number');
    net.tick(2);
    expect(a.config.voters).toEqual(['a', 'b', 'c', 'd']);
    // with b and c cut off, a and d are 2 of 4: not a majority, nothing commits
    net.isolate('b');
    net.isolate('c');
    const idx = a.propose(bytes(5)) as number;
    net.tick(1, ['a', 'd']);
    expect(a.commitIndex).toBeLessThan(idx);
    net.heal();
    net.tick(2);
    expect(a.commitIndex).toBeGreaterThanOrEqual(idx);
  });

  it('refuses a membership change while the previous one is uncommitted', () => {
    const net = new Net(['a', 'b', 'c']);
    net.filter = (m) => m.type !== 'appendResp'; // hold back the commit of the leader's first entry
    net.elect('a');
    const a = net.get('a');
    // before the leader's first entry of its term commits, no change at all
    expect(a.commitIndex).toBeLessThan(a.lastIndex);
    const early = a.proposeConfChange({ kind: 'addLearner', id: 'x' });
    expect(early).toBeInstanceOf(GridError);
    expect((early as GridError).code).toBe('GRID_ERR_RAFT_CONF_PENDING');
    net.filter = () => true;
    net.tick(1);
    const first = a.proposeConfChange({ kind: 'addLearner', id: 'x' });
    expect(first, String(first)).toBeTypeOf('number');
    const second = a.proposeConfChange({ kind: 'addLearner', id: 'y' });
    expect((second as GridError).code).toBe('GRID_ERR_RAFT_CONF_PENDING');
    net.tick(1);
    const third = a.proposeConfChange({ kind: 'addLearner', id: 'y' });
    expect(third, String(third)).toBeTypeOf('number');
    // the new configuration is in force as soon as it is appended, before it commits
    expect(a.config.learners).toEqual(['x', 'y']);
  });

  it('refuses invalid single-server changes with typed errors', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1);
    const a = net.get('a');
    for (const cc of [{ kind: 'addVoter', id: 'b' }, { kind: 'promote', id: 'b' }, { kind: 'remove', id: 'zz' }] as const) {
      const r = a.proposeConfChange(cc);
      expect(r).toBeInstanceOf(InvalidArgumentError);
    }
    expect(() => a.proposeConfChange({ kind: 'explode', id: 'b' } as never)).toThrow(InvalidArgumentError);
    const f = net.get('b').propose(bytes(1));
    expect(f).toBeInstanceOf(GridError);
    expect((f as GridError).code).toBe('GRID_ERR_RAFT_NOT_LEADER');
  });

  it('removing the leader: it keeps leading until the removal commits, then steps down and the rest elect a new leader', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1);
    const a = net.get('a');
    net.isolate('b');
    net.isolate('c');
    const idx = a.proposeConfChange({ kind: 'remove', id: 'a' }) as number;
    expect(a.config.voters).toEqual(['b', 'c']);
    expect(a.role).toBe('leader'); // not committed yet
    net.heal();
    net.deliver();
    net.tick(1);
    expect(a.commitIndex).toBeGreaterThanOrEqual(idx);
    expect(a.role).toBe('follower');
    net.tick(40, ['b', 'c', 'a']);
    const leaders = net.leaders();
    expect(leaders.length).toBe(1);
    expect(['b', 'c']).toContain(leaders[0]);
    // the removed node never campaigns again
    net.tick(60);
    expect(a.role).toBe('follower');
    expect(net.get(leaders[0]).config.voters).toEqual(['b', 'c']);
  });

  it('transfers leadership to a caught-up voter and refuses proposals meanwhile', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1);
    const a = net.get('a');
    net.isolate('b');
    a.propose(bytes(1));
    expect(a.transferLeadership('b')).toBeUndefined();
    const r = a.propose(bytes(2));
    expect((r as GridError).code).toBe('GRID_ERR_RAFT_TRANSFER');
    net.heal();
    net.tick(2);
    expect(net.get('b').role).toBe('leader');
    expect(a.role).toBe('follower');
  });
});

describe('validateMessage', () => {
  const good: RaftMessage = {
    type: 'append', from: 'a', to: 'b', term: 3, prevIndex: 4, prevTerm: 2, commit: 4, ctx: 17,
    entries: [{ index: 5, term: 3, type: 'normal', data: new Uint8Array([1]) }, { index: 6, term: 3, type: 'conf', change: { kind: 'addLearner', id: 'x' }, config: { voters: ['a', 'b'], learners: ['x'] } }],
  };

  it('accepts every message the core sends', () => {
    const net = new Net(['a', 'b', 'c'], {}, ['l']);
    net.elect('a');
    net.get('a').propose(bytes(1));
    net.tick(3);
    net.get('a').compact(2, new Uint8Array(2));
    net.add(new RaftNode({ id: 'd', seed: 2 }));
    net.get('a').proposeConfChange({ kind: 'addLearner', id: 'd' });
    net.tick(3);
    expect(net.sent.length).toBeGreaterThan(20);
    const types = new Set(net.sent.map((m) => m.type));
    expect(types).toEqual(new Set(['preVote', 'preVoteResp', 'vote', 'voteResp', 'append', 'appendResp', 'heartbeat', 'heartbeatResp', 'snapshot']));
    for (const m of net.sent) expect(validateMessage(m)).toBe(m);
    expect(validateMessage(good)).toBe(good);
  });

  it('rejects junk: wrong types, missing or extra fields, bad numbers, huge arrays, prototype tricks', () => {
    const bad: unknown[] = [
      null, 42, 'append', [], {},
      { ...good, type: 'nope' },
      { ...good, term: -1 }, { ...good, term: 1.5 }, { ...good, term: '3' }, { ...good, term: 2 ** 60 },
      { ...good, from: '' }, { ...good, from: 'x'.repeat(LIMITS.maxIdLength + 1) }, { ...good, from: 'a b' }, { ...good, to: 'a' },
      { ...good, extra: 1 },
      (() => { const { ctx: _c, ...rest } = good as Extract<RaftMessage, { type: 'append' }>; return rest; })(),
      { ...good, entries: 'nope' },
      { ...good, entries: new Array(LIMITS.maxEntries + 1).fill(good.type === 'append' ? good.entries[0] : null) },
      { ...good, entries: [{ index: 7, term: 3, type: 'normal' }] }, // not consecutive after prevIndex
      { ...good, entries: [{ index: 5, term: 9, type: 'normal' }] }, // entry term above message term
      { ...good, entries: [{ index: 5, term: 3, type: 'normal', data: [1, 2] }] },
      { ...good, entries: [{ index: 5, term: 3, type: 'conf', config: { voters: ['a', 'a'], learners: [] } }] },
      { ...good, entries: [{ index: 5, term: 3, type: 'conf', config: { voters: new Array(300).fill(0).map((_x, i) => `n${i}`), learners: [] } }] },
      { ...good, entries: [{ index: 5, term: 3, type: 'conf', change: { kind: 'pwn', id: 'x' }, config: { voters: ['a'], learners: [] } }] },
      JSON.parse('{"type":"heartbeat","from":"a","to":"b","term":1,"commit":0,"ctx":0,"__proto__":{"polluted":true}}'),
      JSON.parse('{"type":"voteResp","from":"a","to":"b","term":1,"reject":false,"quiet":0,"__proto__":null}'),
      Object.assign(Object.create({ inherited: 1 }), { type: 'voteResp', from: 'a', to: 'b', term: 1, reject: false, quiet: 0 }),
      Object.defineProperty({ type: 'voteResp', from: 'a', to: 'b', term: 1, quiet: 0 }, 'reject', { get: () => false, enumerable: true }),
      { type: 'voteResp', from: 'a', to: 'b', term: 1, reject: 'no', quiet: 0 },
      { type: 'voteResp', from: 'a', to: 'b', term: 1, reject: false }, // no quiet
      { type: 'voteResp', from: 'a', to: 'b', term: 1, reject: false, quiet: -1 },
      { type: 'voteResp', from: 'a', to: 'b', term: 1, reject: false, quiet: 1.5 },
      { type: 'voteResp', from: 'a', to: 'b', term: 1, reject: false, quiet: '9' },
      { type: 'snapshot', from: 'a', to: 'b', term: 1, ctx: 0, snapshot: { index: 3, term: 1, config: { voters: [], learners: [] }, data: 'x' } },
      { type: 'appendResp', from: 'a', to: 'b', term: 1, index: 0, reject: false, hintIndex: 0, ctx: 0 },
    ];
    for (const x of bad) expect(validateMessage(x), JSON.stringify(x)?.slice(0, 120)).toBeUndefined();
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
  });

  it('the core never throws on messages that passed validation, whatever their content', () => {
    const net = new Net(['a', 'b', 'c'], {}, ['l']);
    net.elect('a');
    net.get('a').propose(bytes(1));
    net.tick(2);
    // mutate recorded messages at random (seeded): numbers, ids and flags, keep only valid ones
    let s = 12345;
    const rnd = (n: number) => { s = (Math.imul(s, 1103515245) + 12345) >>> 0; return s % n; };
    const ids = ['a', 'b', 'c', 'l', 'zz'];
    const nums = [0, 1, 2, 3, 5, 100, 2 ** 40];
    let stepped = 0;
    for (let i = 0; i < 5000; i++) {
      const base = net.sent[rnd(net.sent.length)] as unknown as Record<string, unknown>;
      const m: Record<string, unknown> = { ...base };
      for (const k of Object.keys(m)) {
        if (rnd(3) !== 0) continue;
        if (k === 'from' || k === 'to') m[k] = ids[rnd(ids.length)];
        else if (typeof m[k] === 'number') m[k] = nums[rnd(nums.length)];
        else if (typeof m[k] === 'boolean') m[k] = rnd(2) === 0;
      }
      const v = validateMessage(m);
      if (v === undefined) continue;
      const target = net.nodes.get(v.to);
      if (target === undefined) continue;
      expect(() => { target.step(v); net.flush(); }).not.toThrow();
      stepped++;
    }
    expect(stepped).toBeGreaterThan(1000);
  });
});

describe('robustness', () => {
  it('a leader ignores acknowledgements beyond its log (a lying or confused peer cannot advance the commit index)', () => {
    const net = new Net(['a', 'b', 'c']);
    net.elect('a');
    net.tick(1);
    const a = net.get('a');
    net.isolate('b');
    net.isolate('c');
    const idx = a.propose(bytes(1)) as number;
    for (const from of ['b', 'c']) {
      a.step({ type: 'appendResp', from, to: 'a', term: a.term, index: 10 ** 9, reject: false, hintIndex: 0, hintTerm: 0, ctx: 0 });
    }
    expect(a.commitIndex).toBeLessThan(idx);
    expect(a.role).toBe('leader');
  });
});

describe('options', () => {
  it('rejects bad options and restored state with InvalidArgumentError naming the option', () => {
    expect(() => new RaftNode({ id: 'a', electionTicks: 1 })).toThrow(/options.electionTicks/);
    expect(() => new RaftNode({ id: 'a', heartbeatTicks: 10 })).toThrow(/options.heartbeatTicks/);
    expect(() => new RaftNode({ id: '' })).toThrow(InvalidArgumentError);
    expect(() => new RaftNode({ id: 'a', voters: ['a'], learners: ['a'] })).toThrow(InvalidArgumentError);
    expect(() => new RaftNode({ id: 'a' }, { term: 1, entries: [{ index: 2, term: 1, type: 'normal' }] })).toThrow(InvalidArgumentError);
    expect(() => new RaftNode({ id: 'a' }, { term: 1, commit: 5 })).toThrow(/state.commit/);
  });
});
