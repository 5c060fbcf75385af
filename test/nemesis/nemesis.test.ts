// The fault harness's pure parts: seeded schedules, the outcome rules of the recorder, and the
// unavailability measure. (The harness end to end: nemesis.integration.test.ts.)
import { describe, expect, it } from 'vitest';
// @ts-expect-error plain ESM JavaScript without type declarations
import { FAULTS, describeEvent, makeSchedule, prng, scenarioSchedule } from './nemesis.mjs';
// @ts-expect-error plain ESM JavaScript without type declarations
import { History, MEMBER_CLOCK_SLACK_MS, MemberRecorder, finalReads, longestWriteGap, recorded } from './clients.mjs';
// @ts-expect-error plain ESM JavaScript without type declarations
import { readHistory } from './checker.mjs';
// @ts-expect-error plain ESM JavaScript without type declarations
import { lruInversions } from './evictions.mjs';

interface Ev {
  kind: string;
  at: number;
  target?: number | 'leader';
  targets?: number[];
  ms?: number;
  downMs?: number;
  hearer?: number;
  speaker?: number;
  gap: number;
}

describe('nemesis schedules', () => {
  it('the same (seed, index) gives the same schedule, and other indexes or seeds give others', () => {
    const a = makeSchedule({ seed: 42, index: 3 });
    expect(makeSchedule({ seed: 42, index: 3 })).toEqual(a);
    const others = [makeSchedule({ seed: 42, index: 4 }), makeSchedule({ seed: 43, index: 3 })];
    for (const o of others) expect(JSON.stringify(o.events)).not.toBe(JSON.stringify(a.events));
    expect(prng(7)()).toBe(prng(7)());
  });

  it('draws only the faults asked for, with lengths in their ranges and valid member targets', () => {
    const kinds = new Set<string>();
    for (let i = 0; i < 100; i++) {
      const s = makeSchedule({ seed: 9, index: i, duration: 30_000, members: 3 });
      let prev = -1;
      for (const e of s.events as Ev[]) {
        kinds.add(e.kind);
        expect(FAULTS).toContain(e.kind);
        expect(e.at).toBeGreaterThan(prev); // in time order, one after another
        prev = e.at;
        expect(e.at).toBeLessThan(30_000);
        if (e.target !== undefined && e.target !== 'leader') expect([1, 2, 3]).toContain(e.target);
        if (e.kind === 'pause' || e.kind === 'isolate' || e.kind === 'oneway') expect(e.ms).toBeGreaterThanOrEqual(1000), expect(e.ms).toBeLessThanOrEqual(8000);
        if (e.kind === 'kill' || e.kind === 'leave') expect(e.downMs).toBeGreaterThanOrEqual(1000), expect(e.downMs).toBeLessThanOrEqual(5000);
        if (e.kind === 'oneway') expect(e.hearer).not.toBe(e.speaker);
        expect(describeEvent(e)).toMatch(/\w/);
      }
    }
    expect([...kinds].sort()).toEqual([...FAULTS].sort());
    for (let i = 0; i < 50; i++) {
      for (const e of makeSchedule({ seed: 1, index: i, faults: ['kill', 'restart'] }).events as Ev[]) expect(['kill', 'restart']).toContain(e.kind);
    }
    expect(() => makeSchedule({ seed: 1, index: 0, faults: ['nuke'] })).toThrow(/unknown fault nuke/);
  });

  it('beyond tolerance hits two different members in every fault', () => {
    for (let i = 0; i < 100; i++) {
      for (const e of makeSchedule({ seed: 5, index: i, beyondTolerance: true }).events as Ev[]) {
        expect(e.targets).toHaveLength(2);
        expect(e.targets![0]).not.toBe(e.targets![1]);
        expect(['pause', 'kill', 'leave', 'isolate']).toContain(e.kind);
      }
    }
  });

  it('the coordinator-pause scenario pauses the leader 4 s and writes only unique keys and counters', () => {
    const s = scenarioSchedule('coordinator-pause', 1, 0);
    expect(s.events).toEqual([expect.objectContaining({ kind: 'pause', target: 'leader', ms: 4000 })]);
    expect(s.mix.register).toBe(0);
    expect(() => scenarioSchedule('nope', 1, 0)).toThrow(/unknown scenario/);
  });
});

describe('nemesis recorder', () => {
  const coded = (code: string) => Object.assign(new Error(code), { code });

  it('records ok, fail only for errors raised before sending, info for everything else and for a timeout', async () => {
    const h = new History(undefined);
    expect((await recorded(h, 1, 'set', 'k', 'v1', async () => undefined, 1000, () => 'v1')).type).toBe('ok');
    expect((await recorded(h, 2, 'set', 'k', 'v2', async () => Promise.reject(coded('GRID_ERR_VALUE_TOO_LARGE')), 1000)).type).toBe('fail');
    expect((await recorded(h, 3, 'set', 'k', 'v3', async () => Promise.reject(coded('GRID_ERR_TIMEOUT')), 1000)).type).toBe('info');
    expect((await recorded(h, 4, 'set', 'k', 'v4', async () => Promise.reject(coded('GRID_ERR_MEMBER_UNREACHABLE')), 1000)).type).toBe('info');
    expect((await recorded(h, 5, 'set', 'k', 'v5', async () => Promise.reject(coded('GRID_ERR_CLOSED')), 1000)).type).toBe('info');
    expect((await recorded(h, 6, 'incr', 'c', 1, () => new Promise(() => undefined), 50)).type).toBe('info');
    expect((await recorded(h, 7, 'get', 'k', null, async () => undefined, 1000, (v: unknown) => (v === undefined ? null : v))).value).toBe(null);
    const events = h.lines.map((l: string) => JSON.parse(l));
    expect(events).toHaveLength(14);
    expect(events.filter((e: { type: string }) => e.type === 'invoke')).toHaveLength(7);
    expect(h.counts.set).toEqual({ ok: 1, fail: 1, info: 3 });
    expect(h.okWriteTimes).toHaveLength(1);
    // the checkers accept what the recorder writes
    const ops = readHistory(h.lines);
    expect(ops.map((o: { status: string }) => o.status)).toEqual(['ok', 'fail', 'info', 'info', 'info', 'info', 'ok']);
    for (const e of events) expect(typeof e.t).toBe('number');
  });

  it('final reads stop starting after their time limit and report the keys left unread', async () => {
    const h = new History(undefined);
    const keys = Array.from({ length: 200 }, (_, i) => `u${i}`);
    let calls = 0;
    const silent = { get: () => (calls++, new Promise(() => undefined)) }; // a cluster that never answers
    const { unread } = await finalReads(h, silent, keys, { parallel: 4, attempts: 5, timeoutMs: 50, limitMs: 300 });
    // without the limit every key would be tried 5 times: 1,000 reads
    expect(calls).toBeLessThan(keys.length * 5);
    expect(unread.length).toBeGreaterThan(150);
    expect(new Set(unread).size).toBe(unread.length);
    const answering = { get: async (k: string) => (k === 'u1' ? 'v1' : undefined) };
    const r = await finalReads(h, answering, ['u1', 'u2'], { parallel: 2 });
    expect(r.unread).toEqual([]);
    const ops = readHistory(h.lines);
    expect(ops.filter((o: { status: string }) => o.status === 'ok').map((o: { output: unknown }) => o.output).sort()).toEqual(['v1', null].sort());
  });

  it("member clients: each member op lands in the history widened by the clock slack, an op open when its member's process is gone ends info, and a restart runs new procs", async () => {
    const h = new History(undefined);
    const sent: string[] = [];
    const member = { k: 1, state: 'up', incarnation: 1 };
    const cluster = { members: new Map([[1, member]]), send: (k: number, line: string) => (sent.push(`${k} ${line}`), true), kill9: async () => undefined };
    const rec = new MemberRecorder({ history: h, n: 2, mix: { unique: 1, incr: 1, register: 1 }, cas: true, timeoutMs: 1000, pad: '', seed: 1 });
    rec.start(cluster);
    expect(sent).toEqual(['1 start']);
    const at = (ms: number) => performance.timeOrigin + ms; // a member's clock: absolute ms
    const ev = (i: number, o: object) => rec.event(1, i, JSON.stringify(o));
    ev(1, { e: 'i', id: 1, proc: 0, f: 'set', key: 'um1i1.1', value: 'vm1i1.1', t: at(10) });
    ev(1, { e: 'i', id: 2, proc: 1, f: 'incr', key: 'c3', value: 1, t: at(11) });
    ev(1, { e: 'c', id: 1, type: 'ok', value: 'vm1i1.1', t: at(12) });
    rec.gone(1, 1); // kill -9 with the incr in flight
    ev(1, { e: 'c', id: 2, type: 'ok', value: 5, t: at(13) }); // nothing may complete it twice
    member.incarnation = 2;
    rec.up(1, 2);
    expect(sent).toEqual(['1 start', '1 start']);
    ev(2, { e: 'i', id: 1, proc: 0, f: 'get', key: 'r1', value: null, t: at(20) });
    ev(2, { e: 'c', id: 1, type: 'ok', value: 'pm1i1.0-0', t: at(21) });
    const stopped = rec.stop(5000);
    expect(sent[2]).toBe('1 stop');
    ev(2, { e: 'stopped' });
    await stopped;
    const ops = readHistory(h.lines);
    expect(ops.map((o: { proc: string; status: string }) => `${o.proc} ${o.status}`)).toEqual(['m1.1.0 ok', 'm1.1.1 info', 'm1.2.0 ok']);
    expect(ops[0].call).toBeCloseTo(10 - MEMBER_CLOCK_SLACK_MS, 2);
    expect(ops[0].ret).toBeCloseTo(12 + MEMBER_CLOCK_SLACK_MS, 2);
    expect(rec.uniqueKeys).toEqual(['um1i1.1']);
    expect(rec.counts).toMatchObject({ invoked: 3, ok: 2, info: 1, lostWithProcess: 1, malformed: 1 });
  });

  it('longest write unavailability is the widest gap between ok writes, counting both ends of the period', () => {
    expect(longestWriteGap([], 0, 1000).ms).toBe(1000);
    expect(longestWriteGap([100, 200, 900, 950], 0, 1000)).toEqual({ ms: 700, from: 200, to: 900 });
    expect(longestWriteGap([100, 200], 0, 1000)).toEqual({ ms: 800, from: 200, to: 1000 });
    expect(longestWriteGap([-5, 500, 2000], 0, 1000)).toEqual({ ms: 500, from: 0, to: 500 });
  });
});

describe('memory mode: the LRU check', () => {
  const op = (key: string, f: string, call: number, ret: number, status = 'ok') => ({ key, f, call, ret, status });
  const o = { isHot: (k: string) => k.startsWith('c'), isCold: (k: string) => k.startsWith('u') };

  it('counts an eviction of a key hit within the second before while a colder key was still held', () => {
    const ops = [op('u1', 'set', 0, 10), op('u2', 'set', 0, 20), op('c1', 'incr', 4000, 4001), op('c1', 'incr', 4500, 4502)];
    // c1 hit at 4,500 ms and evicted at 5,000; u1 and u2 written at 10 and 20 ms
    expect(lruInversions(ops, new Map([['c1', [5000]]]), o)).toMatchObject({ hotEvictions: 1, inversions: 1 });
    // the colder keys were evicted before it: no inversion, still a hot eviction
    expect(lruInversions(ops, new Map([['c1', [5000]], ['u1', [4900]], ['u2', [4999]]]), o)).toMatchObject({ hotEvictions: 1, inversions: 0 });
    // one of them evicted only after it: an inversion
    expect(lruInversions(ops, new Map([['c1', [5000]], ['u1', [4900]], ['u2', [5001]]]), o)).toMatchObject({ hotEvictions: 1, inversions: 1 });
    // c1 last hit over a second before the eviction: not a hot eviction
    expect(lruInversions(ops, new Map([['c1', [5600]]]), o)).toMatchObject({ hotEvictions: 0, inversions: 0 });
    // an op under way at the eviction (returned later, or never: info) is a hit
    expect(lruInversions([...ops, op('c1', 'incr', 5590, Infinity, 'info')], new Map([['c1', [5600]]]), o)).toMatchObject({ hotEvictions: 1, inversions: 1 });
    // a key written less than a second before the eviction is not colder, nor one never acknowledged
    const young = [op('u1', 'set', 4200, 4300), op('u2', 'set', 0, 20, 'fail'), op('c1', 'incr', 4900, 4901)];
    expect(lruInversions(young, new Map([['c1', [5000]]]), o)).toMatchObject({ hotEvictions: 1, inversions: 0 });
  });
});
