import { describe, expect, it } from 'vitest';
import { MetaState, parseCommand, type Command } from '../../src/cluster/metadata/state.js';
import { assign, assignCached, lastCopiesOf, plan } from '../../src/ring/table.js';
import { Rounds, Tally, learnerToPromote, tableDigest, vouchersNeeded } from '../../src/cluster/metadata/vouch.js';

const P = 8;

/** A state with members a, b, c (joined at 1..3) and the table the leader would plan for them at 4. */
function threeMembers(): MetaState {
  const s = new MetaState(P);
  s.apply(1, { c: 'join', id: 'a', url: 'ws://127.0.0.1:1' });
  s.apply(2, { c: 'join', id: 'b', url: 'ws://127.0.0.1:2' });
  s.apply(3, { c: 'join', id: 'c', url: 'ws://127.0.0.1:3' });
  const next = plan(s.table, ['a', 'b', 'c'], 1, () => new Set())!;
  expect(s.apply(4, { c: 'table', base: 0, ...next }).table?.version).toBe(4);
  return s;
}

describe('metadata state machine', () => {
  it('a table version is the index of its entry; epochs move only where the primary changed', () => {
    const s = threeMembers();
    const t = s.table;
    expect(t.version).toBe(4);
    expect(t.epochs.every((e) => e === 4)).toBe(true);
    // removing b: its backups become primaries at this entry's index, the others keep their epoch
    const before = t.owners.map((o) => o[0]);
    const a = s.apply(5, { c: 'remove', id: 'b', why: 'dead' });
    expect(a.removed).toEqual({ id: 'b', why: 'dead' });
    for (let p = 0; p < P; p++) {
      expect(s.table.owners[p]).not.toContain('b');
      expect(s.table.epochs[p]).toBe(before[p] === 'b' ? 5 : 4);
    }
    expect(s.wasRemoved('b')).toBe(true);
    // a removed id is never admitted again
    expect(s.apply(6, { c: 'join', id: 'b', url: 'ws://127.0.0.1:2' }).joined).toBeUndefined();
  });

  it('refuses a planned table made from an older version, or one that drops the last copy of a partition', () => {
    const s = threeMembers();
    const stale = plan(s.table, ['a', 'b'], 1, () => new Set())!;
    expect(s.apply(5, { c: 'table', base: 3, ...stale }).table).toBeUndefined();
    // every owner of partition 0 replaced by members that hold none of its data
    const owners = s.table.owners.map((o) => o.slice());
    const holders = new Set(owners[0]);
    const stranger = ['a', 'b', 'c'].find((m) => !holders.has(m))!;
    owners[0] = [stranger];
    const pending = s.table.pending.map((l) => l.filter((m) => m !== stranger));
    expect(s.apply(6, { c: 'table', base: 4, owners, pending }).table).toBeUndefined();
    expect(s.table.version).toBe(4);
    // the same with the newcomer pending first (a copy that gets every write): accepted
    const withPending = s.table.pending.map((l) => l.slice());
    withPending[0] = [stranger];
    expect(s.apply(7, { c: 'table', base: 4, owners: s.table.owners, pending: withPending }).table?.version).toBe(7);
    expect(s.apply(8, { c: 'table', base: 7, owners, pending }).table?.version).toBe(8);
  });

  it('drops a copy that missed a write only at the epoch it was reported at, never the primary', () => {
    const s = threeMembers();
    const [primary, backup] = s.table.owners[0];
    expect(s.apply(5, { c: 'drop', p: 0, m: primary, epoch: 4 }).table).toBeUndefined();
    expect(s.apply(6, { c: 'drop', p: 0, m: backup, epoch: 3 }).table).toBeUndefined();
    const a = s.apply(7, { c: 'drop', p: 0, m: backup, epoch: 4 });
    expect(a.table?.owners[0]).toEqual([primary]);
    expect(a.table?.epochs[0]).toBe(4); // the primary did not change
  });

  it('marks a partition lost when a removal takes its last copy (beyond the tolerance)', () => {
    const s = threeMembers();
    const [x, y] = s.table.owners[0];
    s.apply(5, { c: 'remove', id: x, why: 'dead' });
    const a = s.apply(6, { c: 'remove', id: y, why: 'dead' });
    expect(a.lost).toContain(0);
    expect(s.table.lost[0]).toBe(6);
  });

  it('a member away (no lease) holding last copies: plan moves its other partitions and keeps those, and the state machine accepts that table', () => {
    const s = threeMembers();
    // c is removed (paused); b then holds the only copy of every partition it shared with c
    s.apply(5, { c: 'remove', id: 'c', why: 'dead' });
    const members = new Set(['a', 'b']);
    const last = lastCopiesOf(s.table, 'b', members);
    const shared = s.table.owners.map((o, p) => (o.includes('a') && o.includes('b') ? p : -1)).filter((p) => p >= 0);
    expect(last.length).toBeGreaterThan(0);
    expect(shared.length).toBeGreaterThan(0);
    for (const p of last) expect(s.table.owners[p]).toEqual(['b']);
    const away = new Set(['b']);
    // without `away`, plan recreates b's last copies empty on a: the data b may bring back would be gone
    const careless = plan(s.table, ['a'], 1, () => new Set())!;
    for (const p of last) expect(careless.owners[p]).toEqual(['a']);
    const next = plan(s.table, ['a'], 1, () => new Set(), { away })!;
    expect(next).toBeDefined();
    for (let p = 0; p < P; p++) {
      if (last.includes(p)) expect(next.owners[p]).toEqual(['b']); // the only copy stays where it is
      else expect(next.owners[p]).not.toContain('b');
      expect(next.pending[p]).not.toContain('b');
    }
    const before = s.table.owners.map((o) => o[0]);
    const a = s.apply(6, { c: 'table', base: 5, ...next });
    expect(a.table?.version).toBe(6);
    expect(a.lost).toBeUndefined();
    for (const p of shared) expect(s.table.epochs[p]).toBe(before[p] === 'b' ? 6 : s.table.epochs[p]); // promoted where b was primary
    // nothing left to move while b is away: undefined; a removal now would lose exactly the last copies
    expect(plan(s.table, ['a'], 1, () => new Set(), { away })).toBeUndefined();
    // b back: it gets copies again (pending until synced)
    const back = plan(s.table, ['a', 'b'], 1, () => new Set())!;
    expect(back.pending.some((l) => l.includes('b'))).toBe(true);
    const r = s.apply(7, { c: 'remove', id: 'b', why: 'dead' });
    expect([...(r.lost ?? [])].sort()).toEqual([...last].sort());
  });

  it('a copy its primary reported unreachable (blocked) is placed on another member, and comes back when the block ends', () => {
    const s = threeMembers();
    const members = ['a', 'b', 'c'];
    // partitions that a leads with b as its copy
    const ab = s.table.owners.map((o, p) => (o[0] === 'a' && o.includes('b') ? p : -1)).filter((p) => p >= 0);
    expect(ab.length).toBeGreaterThan(0);
    // a reported b unreachable for those: the drops commit
    let i = 5;
    for (const p of ab) s.apply(i++, { c: 'drop', p, m: 'b', epoch: s.table.epochs[p] });
    for (const p of ab) expect(s.table.owners[p]).toEqual(['a']);
    // the balanced plan puts b right back (where it cannot be streamed)
    const careless = plan(s.table, members, 1, () => new Set())!;
    for (const p of ab) expect([...careless.owners[p], ...careless.pending[p]]).toContain('b');
    // with the block, the second copy goes to c instead, and a stays primary
    const blocked = (primary: string, copy: string) => primary === 'a' && copy === 'b';
    const next = plan(s.table, members, 1, () => new Set(), { blocked })!;
    for (const p of ab) {
      expect(next.owners[p][0]).toBe('a');
      expect([...next.owners[p], ...next.pending[p]]).not.toContain('b');
      expect([...next.owners[p], ...next.pending[p]]).toContain('c');
    }
    // partitions of other primaries are planned as without the block
    for (let p = 0; p < P; p++) if (s.table.owners[p][0] !== 'a') expect(next.pending[p]).toEqual(careless.pending[p]);
  });

  it('parseCommand refuses junk: unknown kinds, bad ids and urls, out-of-range partitions, prototype tricks', () => {
    const bad: unknown[] = [
      null, 5, 'join', [], { c: 'nope' }, { c: 'join', id: '', url: 'ws://a:1' }, { c: 'join', id: 'a b', url: 'ws://a:1' },
      { c: 'join', id: 'a', url: 'http://a:1' }, { c: 'join', id: 'a', url: 'ws://user@a:1' }, { c: 'join', id: 'a', url: 'ws://a:99999' },
      { c: 'remove', id: 'a', why: 'bored' }, { c: 'drop', p: P, m: 'a', epoch: 1 }, { c: 'drop', p: -1, m: 'a', epoch: 1 },
      { c: 'table', base: 1, owners: [], pending: [] }, JSON.parse('{"__proto__": {"c": "join"}, "id": "a", "url": "ws://a:1"}'),
    ];
    for (const b of bad) expect(parseCommand(b, P), JSON.stringify(b)).toBeUndefined();
    const good: Command = { c: 'join', id: 'm-1f', url: 'ws://127.0.0.1:7400' };
    expect(parseCommand(good, P)).toEqual(good);
  });

  it('a snapshot restores the same members, removed ids and table', () => {
    const s = threeMembers();
    s.apply(5, { c: 'remove', id: 'c', why: 'left' });
    const copy = new MetaState(P);
    copy.restore(structuredClone(s.snapshot()));
    expect([...copy.members.keys()]).toEqual(['a', 'b']);
    expect(copy.wasRemoved('c')).toBe(true);
    expect(copy.table).toEqual(s.table);
  });
});

describe('assignCached', () => {
  it('returns what assign returns, the same frozen lists for the same members in any order, and recomputes when they change', () => {
    const a = assignCached(271, ['m-b', 'm-a', 'm-c'], 1);
    expect(a).toEqual(assign(271, ['m-a', 'm-b', 'm-c'], 1));
    expect(assignCached(271, ['m-c', 'm-a', 'm-b'], 1)).toBe(a);
    expect(Object.isFrozen(a) && Object.isFrozen(a[0])).toBe(true);
    const b = assignCached(271, ['m-a', 'm-b'], 1);
    expect(b).not.toBe(a);
    expect(b).toEqual(assign(271, ['m-a', 'm-b'], 1));
    expect(assignCached(271, ['m-a', 'm-b'], 0)).toEqual(assign(271, ['m-a', 'm-b'], 0));
    expect(assignCached(13, ['m-a', 'm-b'], 1)).toEqual(assign(13, ['m-a', 'm-b'], 1));
  });
});

describe('claims confirmed by f+1 members (vouch.ts)', () => {
  it('f+1 of n members vouch: 1 of 1-2, 2 of 3-4, 3 of 5-6', () => {
    expect([1, 2, 3, 4, 5, 6, 7].map(vouchersNeeded)).toEqual([1, 1, 2, 2, 3, 3, 4]);
  });

  it('agreement counts the ids of one certificate once: many members started with one key do not outvote the others', () => {
    const agrees = (asked: string[], yes: string[], self?: string) => {
      const t = new Tally(asked, self);
      let reached = false;
      for (const id of yes) reached = t.add(id);
      return reached;
    };
    // without TLS (no principal in the ids): f+1 ids, as before
    expect(agrees(['m-a', 'm-b', 'm-c'], ['m-a'])).toBe(false);
    expect(agrees(['m-a', 'm-b', 'm-c'], ['m-a', 'm-b'])).toBe(true);
    // a certificate per member, and one key that started four members (ids @e): 7 ids (4 needed)
    // of 4 certificates (2 needed); old rule (ids only): the four of @e alone were enough
    const asked = ['m-1@a', 'm-2@b', 'm-3@c', 'm-4@e', 'm-5@e', 'm-6@e', 'm-7@e'];
    expect(agrees(asked, ['m-4@e', 'm-5@e', 'm-6@e', 'm-7@e'])).toBe(false);
    expect(agrees(asked, ['m-1@a', 'm-2@b', 'm-4@e', 'm-5@e'])).toBe(true);
    // members that share one certificate: one principal, so the id count decides (as before)
    expect(agrees(['m-a@s', 'm-b@s', 'm-c@s'], ['m-a@s'])).toBe(false);
    expect(agrees(['m-a@s', 'm-b@s', 'm-c@s'], ['m-a@s', 'm-b@s'])).toBe(true);
    // removalRound counts the asking member in n: 2 others + self = 3, so 2 of the others
    expect(agrees(['m-b@b', 'm-c@c'], ['m-b@b'], 'm-a@a')).toBe(false);
    expect(agrees(['m-b@b', 'm-c@c'], ['m-b@b', 'm-c@c'], 'm-a@a')).toBe(true);
  });

  it('a learner is promoted to voter preferring one whose certificate no voter has', () => {
    const alive = (id: string) => !id.startsWith('dead');
    expect(learnerToPromote(['m-2@a', 'm-3@b'], ['m-1@a'], alive)).toBe('m-3@b');
    expect(learnerToPromote(['dead-3@b', 'm-2@a', 'm-4@c'], ['m-1@a'], alive)).toBe('m-4@c');
    // none of another certificate alive: the oldest alive (shared certificates, or no TLS)
    expect(learnerToPromote(['dead-3@b', 'm-2@a', 'm-5@a'], ['m-1@a'], alive)).toBe('m-2@a');
    expect(learnerToPromote(['m-b', 'm-c'], ['m-a'], alive)).toBe('m-b');
    expect(learnerToPromote(['dead-x'], [], alive)).toBeUndefined();
  });

  it("a table's digest covers every field and not the key order a peer sent them in", () => {
    const t = threeMembers().table;
    const same = { lost: t.lost, epochs: t.epochs, pending: t.pending, owners: t.owners, version: t.version };
    expect(tableDigest(same)).toBe(tableDigest(t));
    expect(tableDigest({ ...t, version: t.version + 1 })).not.toBe(tableDigest(t));
    expect(tableDigest({ ...t, owners: t.owners.map((o, p) => (p === 0 ? [...o].reverse() : o)) })).not.toBe(tableDigest(t));
    expect(tableDigest({ ...t, epochs: t.epochs.map((e, p) => (p === 1 ? e + 1 : e)) })).not.toBe(tableDigest(t));
  });

  it('hints during a round ask for one more round after it, not one each; a higher one starts a second beside it, never a third', async () => {
    const args: number[] = [];
    const releases: Array<() => void> = [];
    const r = new Rounds((arg) => {
      args.push(arg);
      return new Promise<boolean>((res) => releases.push(() => res(false)));
    });
    const settle = () => new Promise((res) => setTimeout(res, 2 * Rounds.MIN_GAP_MS + 20));
    r.hint(3);
    await settle();
    for (let i = 0; i < 100; i++) r.hint(i % 3); // nothing higher than the round in flight
    await settle();
    expect(args).toEqual([3]);
    for (let i = 4; i < 100; i++) r.hint(i); // higher: one more round, beside the first
    await settle();
    expect(args).toEqual([3, 99]);
    r.hint(200);
    await settle();
    expect(args).toEqual([3, 99]); // two in flight: the third waits for one to end
    releases[0]();
    await settle();
    expect(args).toEqual([3, 99, 200]);
    for (const f of releases.slice(1)) f();
    await settle();
    r.close();
    expect(args).toEqual([3, 99, 200]);
  });
});
