import { describe, expect, it } from 'vitest';
import {
  HistoryError,
  checkAckedWrites,
  checkCounters,
  checkLinearizable,
  evictOps,
  readHistory,
  summarize,
} from './checker.mjs';
import { bruteLinearizable, plainWgl } from './bruteforce.mjs';
import { bigHistory, rng, smallHistory, toLines } from './histgen.mjs';

type Op = ReturnType<typeof readHistory>[number];

/** One JSON line per event, from compact tuples: [id, proc, type, f, key, value, t]. */
function lines(...evs: Array<[number, number, string, string, string, unknown, number]>): string {
  return evs.map(([id, proc, type, f, key, value, t]) => JSON.stringify({ id, proc, type, f, key, value, t })).join('\n');
}

/** A complete op as invoke + completion lines. */
function op(id: number, proc: number, f: string, key: string, input: unknown, type: string, output: unknown, call: number, ret: number) {
  return [
    [id, proc, 'invoke', f, key, input, call],
    [id, proc, type, f, key, output, ret],
  ] as Array<[number, number, string, string, string, unknown, number]>;
}

function lin(...evs: Array<Array<[number, number, string, string, string, unknown, number]>>) {
  const flat = evs.flat().sort((a, b) => a[6] - b[6]);
  return checkLinearizable(readHistory(lines(...flat)));
}

const invalidKeys = (r: ReturnType<typeof checkLinearizable>) => r.keys.filter((k) => k.valid === false).map((k) => k.key);

describe('readHistory', () => {
  it('pairs invokes with completions into ops with call, ret and status', () => {
    const ops = readHistory(lines(
      [1, 1, 'invoke', 'set', 'a', 'x', 1],
      [2, 2, 'invoke', 'get', 'a', null, 1.5],
      [1, 1, 'ok', 'set', 'a', 'x', 2],
      [2, 2, 'info', 'get', 'a', null, 9],
      [3, 1, 'invoke', 'cas', 'a', ['x', 'y'], 3],
      [3, 1, 'fail', 'cas', 'a', null, 4],
      [4, 3, 'invoke', 'incr', 'c', 2, 5],
    ));
    expect(ops).toEqual([
      { id: 1, proc: 1, f: 'set', key: 'a', input: 'x', output: 'x', call: 1, ret: 2, status: 'ok' },
      { id: 2, proc: 2, f: 'get', key: 'a', input: null, output: undefined, call: 1.5, ret: Infinity, status: 'info' },
      { id: 3, proc: 1, f: 'cas', key: 'a', input: ['x', 'y'], output: undefined, call: 3, ret: 4, status: 'fail' },
      { id: 4, proc: 3, f: 'incr', key: 'c', input: 2, output: undefined, call: 5, ret: Infinity, status: 'info', incomplete: true },
    ]);
  });

  it('accepts an array of lines or of parsed events and skips blank lines', () => {
    const text = lines(...op(1, 1, 'set', 'a', 'x', 'ok', 'x', 1, 2));
    expect(readHistory(text.split('\n'))).toEqual(readHistory(`\n${text}\n\n`));
    expect(readHistory(text.split('\n').map((l) => JSON.parse(l)))).toEqual(readHistory(text));
  });

  const refusals: Array<[string, string, RegExp]> = [
    ['a completion without an invoke', lines([1, 1, 'ok', 'set', 'a', 'x', 1]), /without an invoke/],
    ['two outstanding ops on one proc', lines([1, 1, 'invoke', 'get', 'a', null, 1], [2, 1, 'invoke', 'get', 'a', null, 2]), /already has operation 1 outstanding/],
    ['t going backwards for one op', lines([1, 1, 'invoke', 'get', 'a', null, 5], [1, 1, 'ok', 'get', 'a', null, 4]), /t goes backwards/],
    ['a proc issuing again after info', lines([1, 1, 'invoke', 'get', 'a', null, 1], [1, 1, 'info', 'get', 'a', null, 2], [2, 1, 'invoke', 'get', 'a', null, 3]), /after an info completion/],
    ['a duplicate invoke id', lines([1, 1, 'invoke', 'get', 'a', null, 1], [1, 1, 'ok', 'get', 'a', null, 2], [1, 2, 'invoke', 'get', 'a', null, 3]), /invoked twice/],
    ['a second completion', lines([1, 1, 'invoke', 'get', 'a', null, 1], [1, 1, 'ok', 'get', 'a', null, 2], [1, 1, 'ok', 'get', 'a', null, 3]), /second completion/],
    ['a completion on another proc', lines([1, 1, 'invoke', 'get', 'a', null, 1], [1, 2, 'ok', 'get', 'a', null, 2]), /on proc 2, invoked on proc 1/],
    ['a completion naming another key', lines([1, 1, 'invoke', 'get', 'a', null, 1], [1, 1, 'ok', 'get', 'b', null, 2]), /names get "b"/],
    ['an unknown type', lines([1, 1, 'start', 'get', 'a', null, 1]), /unknown type/],
    ['an unknown f', lines([1, 1, 'invoke', 'append', 'a', 'x', 1]), /unknown f/],
    ['a missing t', '{"id":1,"proc":1,"type":"invoke","f":"get","key":"a","value":null}', /t must be a finite number/],
    ['a non-JSON line', '{"id":1,', /not JSON/],
    ['a cas without [expected, next]', lines([1, 1, 'invoke', 'cas', 'a', 'x', 1]), /cas needs value/],
    ['an ok set that does not echo its value', lines([1, 1, 'invoke', 'set', 'a', 'x', 1], [1, 1, 'ok', 'set', 'a', 'y', 2]), /must echo its value/],
    ['an incr with a fractional delta', lines([1, 1, 'invoke', 'incr', 'c', 1.5, 1]), /integer delta/],
  ];
  for (const [what, text, message] of refusals) {
    it(`refuses ${what} with a HistoryError naming the line`, () => {
      let caught: unknown;
      try { readHistory(text); } catch (err) { caught = err; }
      expect(caught).toBeInstanceOf(HistoryError);
      expect((caught as HistoryError).code).toBe('NEMESIS_ERR_HISTORY');
      expect((caught as Error).message).toMatch(/^history line \d+: /);
      expect((caught as Error).message).toMatch(message);
    });
  }
});

describe('checkLinearizable agrees with a brute-force checker on every small history', () => {
  it('agrees on 6000 seeded histories of ≤ 8 ops (1–2 keys, ok/info/fail, random and simulated results), per history and per key', () => {
    const r = rng(20261125);
    let valid = 0, invalid = 0, disagreements = 0, infoOps = 0, twoKeys = 0;
    const byMode: Record<string, { valid: number; invalid: number }> = {};
    const first: string[] = [];
    for (let i = 0; i < 6000; i++) {
      const mode = (['random', 'register', 'mutated'] as const)[i % 3];
      const h = smallHistory(r, { mode, counter: i % 5 === 4 });
      const ops = readHistory(h.text);
      const got = checkLinearizable(ops);
      const want = bruteLinearizable(ops);
      // per key too: the checker partitions by key, the brute force does not
      for (const k of got.keys) {
        const wantKey = bruteLinearizable(ops.filter((o: Op) => o.key === k.key));
        if (k.valid !== wantKey) { disagreements++; if (first.length < 3) first.push(`key ${k.key}:\n${h.text}`); }
      }
      if (got.valid !== want) { disagreements++; if (first.length < 3) first.push(h.text); }
      (byMode[mode] ??= { valid: 0, invalid: 0 })[want ? 'valid' : 'invalid']++;
      if (want) valid++; else invalid++;
      infoOps += ops.filter((o: Op) => o.status === 'info').length;
      if (new Set(ops.map((o: Op) => o.key)).size === 2) twoKeys++;
    }
    console.log(`brute-force agreement: 6000 histories, ${valid} linearizable, ${invalid} not, ${disagreements} disagreements; ` +
      `${infoOps} info ops, ${twoKeys} two-key histories; by mode ${JSON.stringify(byMode)}`);
    expect(first).toEqual([]);
    expect(disagreements).toBe(0);
    expect(valid).toBeGreaterThan(1500);
    expect(invalid).toBeGreaterThan(1500);
    expect(byMode.register.invalid).toBe(0); // simulated from a real register: must all be linearizable
    expect(byMode.mutated.invalid).toBeGreaterThan(300);
  });

  it('agrees with a plain WGL search (no pruning) on 1200 seeded histories of up to 80 ops', () => {
    // the small histories never fill a 32-bit word of the memo's bitset, nor have many concurrent
    // pure ops or info ops at once: these longer ones exercise the pruning and the compact memo keys
    const r = rng(3);
    let valid = 0, invalid = 0, skipped = 0, disagreements = 0, longest = 0;
    const first: string[] = [];
    for (let i = 0; i < 1200; i++) {
      const h = smallHistory(r, { mode: (['register', 'mutated', 'mutated'] as const)[i % 3], maxOps: 80, counter: i % 7 === 0 });
      const ops = readHistory(h.text);
      for (const k of checkLinearizable(ops).keys) {
        const keyOps = ops.filter((o: Op) => o.key === k.key);
        const want = plainWgl(keyOps, 500);
        if (want === 'unknown') { skipped++; continue; }
        longest = Math.max(longest, keyOps.length);
        if (k.valid !== want) { disagreements++; if (first.length < 2) first.push(`key ${k.key}:\n${h.text}`); }
        if (want) valid++; else invalid++;
      }
    }
    console.log(`plain-WGL agreement: ${valid + invalid} keys (up to ${longest} ops), ${valid} linearizable, ${invalid} not, ` +
      `${skipped} skipped (plain search over its budget), ${disagreements} disagreements`);
    expect(first).toEqual([]);
    expect(disagreements).toBe(0);
    expect(valid).toBeGreaterThan(500);
    expect(invalid).toBeGreaterThan(300);
  });

  it('the plain WGL search agrees with the brute force on small histories', () => {
    const r = rng(11);
    let n = 0;
    for (let i = 0; i < 1500; i++) {
      const ops = readHistory(smallHistory(r, { mode: (['random', 'register', 'mutated'] as const)[i % 3] }).text);
      for (const key of new Set(ops.map((o: Op) => o.key))) {
        const keyOps = ops.filter((o: Op) => o.key === key);
        expect(plainWgl(keyOps)).toBe(bruteLinearizable(keyOps));
        n++;
      }
    }
    expect(n).toBeGreaterThan(1500);
  });

  it('the brute-force checker itself rejects known-bad and accepts known-good small histories', () => {
    const read = (...evs: Array<Array<[number, number, string, string, string, unknown, number]>>) =>
      readHistory(lines(...evs.flat().sort((a, b) => a[6] - b[6])));
    // stale read
    expect(bruteLinearizable(read(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'set', 'a', 'y', 'ok', 'y', 2, 3), op(3, 1, 'get', 'a', null, 'ok', 'x', 4, 5)))).toBe(false);
    // the same read concurrent with the overwrite
    expect(bruteLinearizable(read(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'set', 'a', 'y', 'ok', 'y', 2, 5), op(3, 2, 'get', 'a', null, 'ok', 'x', 4, 6)))).toBe(true);
    // an info write may be seen
    expect(bruteLinearizable(read(op(1, 1, 'set', 'a', 'x', 'info', null, 0, 1), op(2, 2, 'get', 'a', null, 'ok', 'x', 4, 5)))).toBe(true);
    // a failed write may not
    expect(bruteLinearizable(read(op(1, 1, 'set', 'a', 'x', 'fail', null, 0, 1), op(2, 2, 'get', 'a', null, 'ok', 'x', 4, 5)))).toBe(false);
  });
});

describe('checkLinearizable on edge cases', () => {
  it('lets an info op with no completion take effect at any later time, or never', () => {
    const never = lines([1, 1, 'invoke', 'set', 'a', 'x', 0], ...op(2, 2, 'get', 'a', null, 'ok', null, 10, 11));
    const late = lines([1, 1, 'invoke', 'set', 'a', 'x', 0], ...op(2, 2, 'get', 'a', null, 'ok', null, 10, 11), ...op(3, 2, 'get', 'a', null, 'ok', 'x', 100, 101));
    const flipFlop = lines([1, 1, 'invoke', 'set', 'a', 'x', 0], ...op(2, 2, 'get', 'a', null, 'ok', 'x', 10, 11), ...op(3, 2, 'get', 'a', null, 'ok', null, 100, 101));
    expect(checkLinearizable(readHistory(never)).valid).toBe(true);
    expect(checkLinearizable(readHistory(late)).valid).toBe(true);
    expect(checkLinearizable(readHistory(flipFlop)).valid).toBe(false); // x then absent: nothing deleted it
  });

  it('does not let an info op take effect before its invoke', () => {
    expect(lin(op(1, 1, 'get', 'a', null, 'ok', 'x', 0, 1), op(2, 2, 'set', 'a', 'x', 'info', null, 5, 6)).valid).toBe(false);
  });

  it('accepts either result for a get concurrent with its key\'s first set, and refuses the value before the set began', () => {
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 10), op(2, 2, 'get', 'a', null, 'ok', null, 2, 3)).valid).toBe(true);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 10), op(2, 2, 'get', 'a', null, 'ok', 'x', 2, 3)).valid).toBe(true);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 5, 10), op(2, 2, 'get', 'a', null, 'ok', 'x', 2, 3)).valid).toBe(false);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 5, 10), op(2, 2, 'get', 'a', null, 'ok', null, 11, 12)).valid).toBe(false);
  });

  it('treats touching intervals (one op returns at the t another is invoked) as concurrent', () => {
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 5), op(2, 2, 'get', 'a', null, 'ok', null, 5, 6)).valid).toBe(true);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 5), op(2, 2, 'get', 'a', null, 'ok', null, 5.001, 6)).valid).toBe(false);
  });

  it('models cas with expected null as "only if absent"', () => {
    expect(lin(op(1, 1, 'cas', 'a', [null, 'x'], 'ok', true, 0, 1), op(2, 1, 'get', 'a', null, 'ok', 'x', 2, 3)).valid).toBe(true);
    expect(lin(op(1, 1, 'set', 'a', 'y', 'ok', 'y', 0, 1), op(2, 1, 'cas', 'a', [null, 'x'], 'ok', true, 2, 3)).valid).toBe(false);
    expect(lin(op(1, 1, 'set', 'a', 'y', 'ok', 'y', 0, 1), op(2, 1, 'cas', 'a', [null, 'x'], 'ok', false, 2, 3)).valid).toBe(true);
    expect(lin(op(1, 1, 'cas', 'a', [null, 'x'], 'ok', false, 0, 1)).valid).toBe(false); // absent, so it must have succeeded
  });

  it('models delete as returning whether the key existed and leaving it absent', () => {
    expect(lin(op(1, 1, 'delete', 'a', null, 'ok', false, 0, 1)).valid).toBe(true);
    expect(lin(op(1, 1, 'delete', 'a', null, 'ok', true, 0, 1)).valid).toBe(false);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'delete', 'a', null, 'ok', true, 2, 3), op(3, 1, 'get', 'a', null, 'ok', null, 4, 5)).valid).toBe(true);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'delete', 'a', null, 'ok', false, 2, 3)).valid).toBe(false);
    expect(lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'delete', 'a', null, 'ok', true, 2, 3), op(3, 1, 'final', 'a', null, 'ok', 'x', 4, 5)).valid).toBe(false);
  });

  it('distinguishes the string "1" from the integer 1', () => {
    expect(lin(op(1, 1, 'set', 'a', 1, 'ok', 1, 0, 1), op(2, 1, 'get', 'a', null, 'ok', '1', 2, 3)).valid).toBe(false);
  });

  it('checks incr as an integer register starting at 0', () => {
    expect(lin(op(1, 1, 'incr', 'c', 2, 'ok', 2, 0, 1), op(2, 1, 'incr', 'c', 3, 'ok', 5, 2, 3)).valid).toBe(true);
    expect(lin(op(1, 1, 'incr', 'c', 2, 'ok', 2, 0, 1), op(2, 1, 'incr', 'c', 3, 'ok', 3, 2, 3)).valid).toBe(false);
  });

  it('gives a readable counterexample: the longest linearizable prefix and the ops that could not be placed', () => {
    const r = lin(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'set', 'a', 'y', 'ok', 'y', 2, 3), op(3, 1, 'get', 'a', null, 'ok', 'x', 4, 5), op(4, 2, 'get', 'b', null, 'ok', null, 0, 9));
    expect(invalidKeys(r)).toEqual(['a']);
    const ce = r.keys.find((k) => k.key === 'a')!.counterexample!;
    expect(ce.linearized.map((o: Op) => o.id)).toEqual([1, 2]);
    expect(ce.state).toBe('y');
    expect(ce.blocking.id).toBe(3);
    expect(ce.unplaceable.map((u: { op: Op }) => u.op.id)).toEqual([3]);
    expect(ce.text).toContain('get returned "x" but the register held "y"');
    console.log(`counterexample for a stale read:\n${ce.text}`);
  });

  it('says unknown, never a verdict, for a key whose search exceeds its time or memo budget', () => {
    // 20 concurrent sets of distinct values and 20 concurrent reads of them, then a read of a value
    // nobody wrote: not linearizable, but only after every order of the sets has been ruled out
    const evs: Array<[number, number, string, string, string, unknown, number]> = [];
    for (let i = 0; i < 20; i++) evs.push(...op(i + 1, i + 1, 'set', 'a', `v${i}`, 'ok', `v${i}`, i * 0.01, 50 + i * 0.01));
    for (let i = 0; i < 20; i++) evs.push(...op(100 + i, 100 + i, 'get', 'a', null, 'ok', `v${(i * 7) % 20}`, 1 + i * 0.01, 60 + i * 0.01));
    evs.push(...op(999, 999, 'get', 'a', null, 'ok', 'nobody', 70, 71));
    evs.push(...op(200, 200, 'get', 'b', null, 'ok', null, 0, 1));
    const ops = readHistory(lines(...evs.sort((a, b) => a[6] - b[6])));
    const byTime = checkLinearizable(ops, { budgetMs: 50 });
    expect(byTime.valid).toBe('unknown');
    expect(byTime.keys.find((k) => k.key === 'a')!.valid).toBe('unknown');
    expect(byTime.keys.find((k) => k.key === 'b')!.valid).toBe(true);
    const byStates = checkLinearizable(ops, { maxStates: 5000 });
    expect(byStates.keys.find((k) => k.key === 'a')!.valid).toBe('unknown');
    // and with fewer sets the same shape is decided: false, not unknown
    const small = readHistory(lines(...[
      ...op(1, 1, 'set', 'a', 'v0', 'ok', 'v0', 0, 50), ...op(2, 2, 'set', 'a', 'v1', 'ok', 'v1', 0.01, 50.01),
      ...op(3, 3, 'get', 'a', null, 'ok', 'v1', 1, 60), ...op(999, 999, 'get', 'a', null, 'ok', 'nobody', 70, 71),
    ].sort((a, b) => a[6] - b[6])));
    expect(checkLinearizable(small, { budgetMs: 50 }).valid).toBe(false);
  });
});

/** Deep copy of generated history ops (Infinity survives structuredClone). */
const copy = (ops: Op[]) => structuredClone(ops) as Op[];

describe('injected anomalies in a realistic history are caught and attributed to the right key', () => {
  // 10,000 register ops on 50 keys by 32 procs, 1% info and 1% fail, plus 600 increments on 5
  // counters, 300 write-once keys and a final read of every key
  const gen = bigHistory(42, { ops: 10_000, keys: 50, procs: 32, infoRate: 0.01, failRate: 0.01, counters: 5, counterOps: 600, uniqueKeys: 300 });
  const base = readHistory(gen.text) as Op[];
  const meta = new Map(gen.ops.map((o) => [o.id, o]));
  const writes = (ops: Op[], key: string) => ops.filter((o) => o.key === key && o.status === 'ok' && (o.f === 'set' || (o.f === 'cas' && o.output === true)));
  const changes = (o: Op) => o.status === 'ok' && (o.f === 'set' || (o.f === 'cas' && o.output === true) || (o.f === 'delete' && o.output === true));

  /** A stale value for `read`: a value written by an ok write w1, then changed by an ok write w2 with w1 < w2 < read in real time. */
  function staleFor(ops: Op[], read: Op): unknown {
    const before = ops.filter((o) => o.key === read.key && changes(o) && o.ret < read.call);
    for (const w2 of before) {
      const w1 = writes(ops, read.key).find((w) => w.ret < w2.call && (w.f === 'set' ? w.input : w.input[1]) !== read.output);
      if (w1) return w1.f === 'set' ? w1.input : w1.input[1];
    }
    return undefined;
  }

  it('finds the unaltered history valid under every checker', () => {
    const t0 = performance.now();
    const l = checkLinearizable(base);
    const ms = performance.now() - t0;
    const c = checkCounters(base);
    const a = checkAckedWrites(base);
    const s = summarize({ linearizable: l, counters: c, ackedWrites: a });
    console.log(`realistic history: ${base.length} ops, ${base.filter((o) => o.status === 'info').length} info; linearizability in ${ms.toFixed(0)} ms\n${s.text}`);
    expect(l.valid).toBe(true);
    expect(c.valid).toBe(true);
    expect(a.valid).toBe(true);
    expect(a.keys).toBe(300);
    expect(c.counters.length).toBe(5);
    expect(s.valid).toBe(true);
  });

  it('catches a stale read (a get returning a value overwritten before its invoke)', () => {
    const ops = copy(base);
    const g = ops.find((o) => o.f === 'get' && o.status === 'ok' && o.key.startsWith('k') && o.call > 500 && staleFor(ops, o) !== undefined)!;
    g.output = staleFor(ops, g);
    const r = checkLinearizable(ops);
    expect(r.valid).toBe(false);
    expect(invalidKeys(r)).toEqual([g.key]);
  });

  it('catches a lost write (an ok set never seen while later reads see the older value)', () => {
    const ops = copy(base);
    // an ok set s of b whose previous value a came from an ok write strictly before s, with a read of b after s returned
    const s = ops.find((o) => {
      if (o.f !== 'set' || o.status !== 'ok' || !o.key.startsWith('k')) return false;
      const m = meta.get(o.id as number)!;
      if (typeof m.before !== 'string') return false;
      const w0 = writes(ops, o.key).find((w) => (w.f === 'set' ? w.input : w.input[1]) === m.before);
      const observers = ops.filter((x) => x !== o && x.key === o.key && x.status !== 'fail' && (x.output === o.input || (x.f === 'cas' && x.input[0] === o.input)));
      return w0 !== undefined && w0.ret < o.call && observers.length > 0 && observers.every((x) => x.f === 'get' || x.f === 'final') && observers.some((x) => x.call > o.ret);
    })!;
    const older = meta.get(s.id as number)!.before;
    let changed = 0;
    for (const x of ops) if (x.key === s.key && (x.f === 'get' || x.f === 'final') && x.status === 'ok' && x.output === s.input) { x.output = older; changed++; }
    expect(changed).toBeGreaterThan(0);
    const r = checkLinearizable(ops);
    expect(r.valid).toBe(false);
    expect(invalidKeys(r)).toEqual([s.key]);
  });

  it('catches a read of a value never written', () => {
    const ops = copy(base);
    const g = ops.find((o) => o.f === 'get' && o.status === 'ok' && o.key === 'k7')!;
    g.output = 'never-written';
    const r = checkLinearizable(ops);
    expect(invalidKeys(r)).toEqual(['k7']);
    expect(r.keys.find((k) => k.key === 'k7')!.counterexample!.text).toContain('"never-written"');
  });

  it('catches a cas that succeeded against a value that was not current', () => {
    const ops = copy(base);
    const c = ops.find((o) => o.f === 'cas' && o.status === 'ok' && o.key.startsWith('k') && o.call > 500 && staleFor(ops, o) !== undefined)!;
    c.input = [staleFor(ops, c), c.input[1]];
    c.output = true;
    const r = checkLinearizable(ops);
    expect(r.valid).toBe(false);
    expect(invalidKeys(r)).toEqual([c.key]);
  });

  it('catches a duplicated increment (final = acked + unknown + 1) as "applied twice"', () => {
    const ops = copy(base);
    const before = checkCounters(ops).counters.find((c) => c.key === 'c2')!;
    const fin = ops.find((o) => o.f === 'final' && o.key === 'c2')!;
    fin.output = before.acked + before.unknown + 1;
    const r = checkCounters(ops);
    expect(r.valid).toBe(false);
    expect(r.counters.filter((c) => c.verdict !== 'ok').map((c) => [c.key, c.verdict])).toEqual([['c2', 'applied twice']]);
    expect(invalidKeys(checkLinearizable(ops))).toEqual(['c2']);
  });

  it('catches a lost increment (final = acked - 1) as "lost"', () => {
    const ops = copy(base);
    const before = checkCounters(ops).counters.find((c) => c.key === 'c4')!;
    expect(before.acked).toBeGreaterThan(0);
    ops.find((o) => o.f === 'final' && o.key === 'c4')!.output = before.acked - 1;
    const r = checkCounters(ops);
    expect(r.valid).toBe(false);
    expect(r.counters.filter((c) => c.verdict !== 'ok').map((c) => [c.key, c.verdict])).toEqual([['c4', 'lost']]);
  });

  it('catches two ok increments of one counter returning the same value (a lost update)', () => {
    const ops = copy(base);
    const incs = ops.filter((o) => o.f === 'incr' && o.key === 'c1' && o.status === 'ok');
    incs[5].output = incs[4].output;
    const r = checkCounters(ops);
    expect(r.counters.filter((c) => c.verdict !== 'ok').map((c) => [c.key, c.verdict])).toEqual([['c1', 'duplicate results']]);
  });

  it('catches an acknowledged write-once set read back as null as "lost"', () => {
    const ops = copy(base);
    const s = ops.find((o) => o.f === 'set' && o.key.startsWith('u') && o.status === 'ok')!;
    ops.find((o) => o.f === 'final' && o.key === s.key)!.output = null;
    const r = checkAckedWrites(ops);
    expect(r.valid).toBe(false);
    expect(r.lost).toEqual([expect.objectContaining({ key: s.key, value: s.input, id: s.id })]);
    expect(r.stale).toEqual([]);
    expect(r.corrupt).toEqual([]);
    const sum = summarize({ ackedWrites: r });
    expect(sum.valid).toBe(false);
    expect(sum.text).toContain('1 lost');
  });

  it('checks 10,000 ops on 50 keys by 32 procs with info ops quickly (time printed, not asserted)', () => {
    const h = bigHistory(7, { ops: 10_000, keys: 50, procs: 32, infoRate: 0.02, failRate: 0.01 });
    const ops = readHistory(h.text);
    const t0 = performance.now();
    const r = checkLinearizable(ops);
    const ms = performance.now() - t0;
    const explored = r.keys.reduce((s: number, k: { explored: number }) => s + k.explored, 0);
    console.log(`performance: ${ops.length} ops (${ops.filter((o: Op) => o.status === 'info').length} info) on ${r.keys.length} keys checked in ${ms.toFixed(0)} ms, ${explored} search steps`);
    expect(r.valid).toBe(true);
  });
});

describe('checkCounters', () => {
  const hist = (...evs: Array<Array<[number, number, string, string, string, unknown, number]>>) => readHistory(lines(...evs.flat().sort((a, b) => a[6] - b[6])));
  it('accepts any final between acked and acked + unknown, and reads an absent counter as 0', () => {
    for (const fin of [3, 4, 5]) {
      const r = checkCounters(hist(op(1, 1, 'incr', 'c', 3, 'ok', 3, 0, 1), op(2, 2, 'incr', 'c', 2, 'info', null, 0, 1), op(3, 3, 'final', 'c', null, 'ok', fin, 9, 10)));
      expect(r.valid).toBe(true);
      expect(r.counters[0]).toMatchObject({ key: 'c', acked: 3, unknown: 2, verdict: 'ok' });
    }
    expect(checkCounters(hist(op(1, 1, 'incr', 'c', 2, 'info', null, 0, 1), op(3, 3, 'final', 'c', null, 'ok', null, 9, 10))).valid).toBe(true);
    expect(checkCounters(hist(op(1, 1, 'incr', 'c', 2, 'ok', 2, 0, 1), op(3, 3, 'final', 'c', null, 'ok', null, 9, 10))).counters[0].verdict).toBe('lost');
  });

  it('handles negative deltas with bounds [acked + negative unknown, acked + positive unknown]', () => {
    const base = [op(1, 1, 'incr', 'c', 5, 'ok', 5, 0, 1), op(2, 2, 'incr', 'c', -2, 'info', null, 0, 1), op(3, 3, 'incr', 'c', 1, 'info', null, 0, 1)];
    const at = (v: number) => checkCounters(hist(...base, op(4, 4, 'final', 'c', null, 'ok', v, 9, 10))).counters[0];
    expect(at(3).verdict).toBe('ok');
    expect(at(6).verdict).toBe('ok');
    expect(at(2).verdict).toBe('lost');
    expect(at(7).verdict).toBe('applied twice');
    expect(at(3)).toMatchObject({ low: 3, high: 6 });
  });

  it('says unknown, not valid, for a counter without a final read or one also written with set', () => {
    expect(checkCounters(hist(op(1, 1, 'incr', 'c', 1, 'ok', 1, 0, 1))).valid).toBe('unknown');
    const mixed = checkCounters(hist(op(1, 1, 'incr', 'c', 1, 'ok', 1, 0, 1), op(2, 1, 'set', 'c', 7, 'ok', 7, 2, 3), op(3, 1, 'final', 'c', null, 'ok', 7, 4, 5)));
    expect(mixed.valid).toBe('unknown');
    expect(mixed.counters[0].verdict).toBe('not a counter');
  });
});

describe('checkAckedWrites', () => {
  const hist = (...evs: Array<Array<[number, number, string, string, string, unknown, number]>>) => readHistory(lines(...evs.flat().sort((a, b) => a[6] - b[6])));
  it('lets a key whose set ended info read null or its value, and calls anything else corrupt', () => {
    const w = op(1, 1, 'set', 'u', 'x', 'info', null, 0, 1);
    expect(checkAckedWrites(hist(w, op(2, 2, 'final', 'u', null, 'ok', null, 5, 6))).valid).toBe(true);
    expect(checkAckedWrites(hist(w, op(2, 2, 'final', 'u', null, 'ok', 'x', 5, 6))).valid).toBe(true);
    const bad = checkAckedWrites(hist(w, op(2, 2, 'final', 'u', null, 'ok', 'zz', 5, 6)));
    expect(bad.valid).toBe(false);
    expect(bad.corrupt).toEqual([expect.objectContaining({ key: 'u', value: 'zz', id: 2 })]);
  });

  it('calls the value of a failed set corrupt', () => {
    const r = checkAckedWrites(hist(op(1, 1, 'set', 'u', 'x', 'fail', null, 0, 1), op(2, 2, 'final', 'u', null, 'ok', 'x', 5, 6)));
    expect(r.corrupt[0].detail).toMatch(/which failed/);
  });

  it('calls a final read of a value overwritten by a later acknowledged set stale', () => {
    const r = checkAckedWrites(hist(op(1, 1, 'set', 'u', 'x', 'ok', 'x', 0, 1), op(2, 1, 'set', 'u', 'y', 'ok', 'y', 2, 3), op(3, 2, 'final', 'u', null, 'ok', 'x', 5, 6)));
    expect(r.stale).toEqual([expect.objectContaining({ key: 'u', value: 'x', id: 3 })]);
    // concurrent sets: either may be last
    expect(checkAckedWrites(hist(op(1, 1, 'set', 'u', 'x', 'ok', 'x', 0, 3), op(2, 2, 'set', 'u', 'y', 'ok', 'y', 2, 4), op(3, 3, 'final', 'u', null, 'ok', 'x', 5, 6))).valid).toBe(true);
  });

  it('says unknown when an acknowledged key was never read back', () => {
    const r = checkAckedWrites(hist(op(1, 1, 'set', 'u', 'x', 'ok', 'x', 0, 1)));
    expect(r.valid).toBe('unknown');
    expect(r.unread).toEqual(['u']);
  });
});

describe('summarize', () => {
  it('gives an overall verdict, a short text and a JSON-able object', () => {
    const ops = readHistory(toLines([
      { id: 1, proc: 1, f: 'set', key: 'a', input: 'x', output: 'x', call: 0, ret: 1, status: 'ok' },
      { id: 2, proc: 1, f: 'get', key: 'a', input: null, output: 'q', call: 2, ret: 3, status: 'ok' },
      { id: 3, proc: 2, f: 'set', key: 'b', input: 'y', call: 0, ret: Infinity, status: 'info' },
    ]));
    const s = summarize({ linearizable: checkLinearizable(ops), counters: checkCounters(ops), ackedWrites: checkAckedWrites(ops) });
    expect(s.valid).toBe(false);
    expect(s.text.split('\n')[0]).toBe('overall: INVALID');
    expect(s.text).toContain('key "a" is not linearizable');
    const json = JSON.parse(JSON.stringify(s.json));
    expect(json.valid).toBe(false);
    expect(json.linearizable.invalid[0].key).toBe('a');
    expect(json.linearizable.invalid[0].counterexample.blocking.id).toBe(2);
  });
});

describe('the checkers when members evict keys (the harness\'s --memory mode)', () => {
  const read = (...evs: Array<Array<[number, number, string, string, string, unknown, number]>>) =>
    readHistory(lines(...evs.flat().sort((a, b) => a[6] - b[6])));
  const ev = (key: string, ...times: number[]) => new Map([[key, times]]);
  // set x, (an eviction somewhere), get null, get x, set y, get null
  const base = () => [
    op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1),
    op(2, 1, 'get', 'a', null, 'ok', null, 20, 21),
    op(3, 1, 'get', 'a', null, 'ok', 'x', 30, 31),
    op(4, 1, 'set', 'a', 'y', 'ok', 'y', 40, 41),
  ];

  it('lets a key read absent after an eviction, and its value come back (a copy that still held it was promoted), but not before it', () => {
    const h = read(...base());
    expect(checkLinearizable(h).valid).toBe(false);
    expect(checkLinearizable(h, { evictions: ev('a', 10) }).valid).toBe(true);
    // an eviction of another key, or one after the read, explains nothing
    expect(checkLinearizable(h, { evictions: ev('b', 10) }).valid).toBe(false);
    expect(checkLinearizable(h, { evictions: ev('a', 35) }).valid).toBe(false);
  });

  it('still refuses a value older than the last write, and absent after a write that followed the eviction', () => {
    const stale = read(...base(), op(5, 1, 'get', 'a', null, 'ok', 'x', 50, 51));
    expect(checkLinearizable(stale, { evictions: ev('a', 10, 45) }).valid).toBe(false);
    const absentAfterWrite = read(...base(), op(5, 1, 'get', 'a', null, 'ok', null, 50, 51));
    expect(checkLinearizable(absentAfterWrite, { evictions: ev('a', 10) }).valid).toBe(false);
    expect(checkLinearizable(absentAfterWrite, { evictions: ev('a', 10, 45) }).valid).toBe(true);
    const r = checkLinearizable(absentAfterWrite, { evictions: ev('a', 10) });
    expect(r.keys[0].counterexample?.text).toContain('a member evicted "a"');
  });

  it('lets an eviction during an acknowledged write take effect as late as that write settles (the primary evicted the new value while it still served the old)', () => {
    // the memory mode, seed 49100 schedule 3 (times shifted): r7 evicted at 17, 10 ms into a set
    // of p13-40 that settled at 35; meanwhile a read saw the old value, and right after the set's
    // acknowledgement a read saw nothing
    const h = read(
      op(1, 1, 'set', 'r', 'p3-34', 'ok', 'p3-34', 0, 5),
      op(2, 2, 'set', 'r', 'p13-40', 'ok', 'p13-40', 7, 35),
      op(3, 3, 'get', 'r', null, 'ok', 'p3-34', 22.6, 34.9),
      op(4, 4, 'get', 'r', null, 'ok', null, 35.1, 46),
    );
    expect(checkLinearizable(h, { evictions: ev('r', 17) }).valid).toBe(true);
    // an eviction that no acknowledged write overlapped keeps its ± slack window
    const after = read(op(1, 1, 'set', 'r', 'x', 'ok', 'x', 0, 5), op(2, 2, 'set', 'r', 'y', 'ok', 'y', 30, 35), op(3, 3, 'get', 'r', null, 'ok', null, 36, 40));
    expect(checkLinearizable(after, { evictions: ev('r', 17) }).valid).toBe(false);
    expect(evictOps('r', [17], h)[0].ret).toBe(35);
  });

  it('lets a cas expecting absent succeed on an evicted key, and one expecting the old value fail', () => {
    const h = read(op(1, 1, 'set', 'a', 'x', 'ok', 'x', 0, 1), op(2, 1, 'cas', 'a', [null, 'y'], 'ok', true, 20, 21), op(3, 2, 'cas', 'a', ['x', 'z'], 'ok', false, 30, 31), op(4, 1, 'get', 'a', null, 'ok', 'y', 40, 41));
    expect(checkLinearizable(h).valid).toBe(false);
    expect(checkLinearizable(h, { evictions: ev('a', 10) }).valid).toBe(true);
  });

  it('agrees with the brute-force checker on 4000 seeded small histories with evictions', () => {
    const r = rng(20261127);
    let valid = 0, invalid = 0, changed = 0;
    const first: string[] = [];
    for (let i = 0; i < 4000; i++) {
      const h = smallHistory(r, { mode: (['random', 'register', 'mutated'] as const)[i % 3], counter: i % 7 === 6 });
      const ops = readHistory(h.text);
      const keys = [...new Set(ops.map((o: Op) => o.key))];
      const end = Math.max(...ops.map((o: Op) => (o.ret === Infinity ? o.call : o.ret)));
      const evictions = new Map<string, number[]>();
      for (const k of keys) {
        const n = Math.floor(r() * 3);
        if (n > 0) evictions.set(k, Array.from({ length: n }, () => Math.round(r() * (end + 10) - 5)).sort((a, b) => a - b));
      }
      const got = checkLinearizable(ops, { evictions });
      const want = bruteLinearizable([...ops, ...keys.flatMap((k) => evictOps(k, evictions.get(k), ops.filter((o: Op) => o.key === k)))]);
      if (got.valid !== want && first.length < 3) first.push(`${h.text}\nevictions ${JSON.stringify([...evictions])}`);
      if (want) valid++; else invalid++;
      if (want !== bruteLinearizable(ops)) changed++;
    }
    expect(first).toEqual([]);
    expect(valid).toBeGreaterThan(1000);
    expect(invalid).toBeGreaterThan(500);
    expect(changed).toBeGreaterThan(50); // the evictions changed the verdict of some (81 with this seed)
  });

  it('checkAckedWrites: a key read back absent is evicted only if a member evicted it after its set began, else lost', () => {
    const h = read(op(1, 1, 'set', 'u1', 'v1', 'ok', 'v1', 10, 11), op(2, 3, 'set', 'u2', 'v2', 'ok', 'v2', 10, 11), op(3, 2, 'final', 'u1', null, 'ok', null, 50, 51), op(4, 4, 'final', 'u2', null, 'ok', null, 50, 51));
    const r = checkAckedWrites(h, { evictions: new Map([['u1', [30]], ['u2', [-100]]]) });
    expect(r.vanished.map((p) => p.key)).toEqual(['u1']);
    expect(r.lost.map((p) => p.key)).toEqual(['u2']);
    expect(r.valid).toBe(false);
    expect(checkAckedWrites(h, { evictions: new Map([['u1', [30]], ['u2', [12]]]) }).valid).toBe(true);
    expect(checkAckedWrites(h).lost).toHaveLength(2);
    // a value that no set wrote is corrupt, evicted or not
    const bad = read(op(1, 1, 'set', 'u1', 'v1', 'ok', 'v1', 10, 11), op(2, 2, 'final', 'u1', null, 'ok', 'v9', 50, 51));
    expect(checkAckedWrites(bad, { evictions: new Map([['u1', [30]]]) }).corrupt).toHaveLength(1);
  });

  it('checkCounters: an evicted counter may end low and repeat results, never high, and keeps what came after its last eviction', () => {
    const incs = [op(1, 1, 'incr', 'c', 1, 'ok', 1, 0, 1), op(2, 1, 'incr', 'c', 1, 'ok', 2, 2, 3), op(3, 1, 'incr', 'c', 1, 'ok', 1, 20, 21)];
    const low = read(...incs, op(4, 2, 'final', 'c', null, 'ok', 1, 30, 31));
    expect(checkCounters(low).valid).toBe(false);
    const e = checkCounters(low, { evictions: ev('c', 10) });
    expect(e.valid).toBe(true);
    expect(e.counters[0].verdict).toBe('evicted');
    const high = read(...incs, op(4, 2, 'final', 'c', null, 'ok', 4, 30, 31));
    expect(checkCounters(high, { evictions: ev('c', 10) }).counters[0].verdict).toBe('applied twice');
    // the increments after its last eviction must all be there, and their results distinct
    const later = [op(5, 1, 'incr', 'c', 1, 'ok', 2, 22, 23), op(6, 1, 'incr', 'c', 1, 'ok', 3, 24, 25)];
    expect(checkCounters(read(...incs, ...later, op(7, 2, 'final', 'c', null, 'ok', 3, 30, 31)), { evictions: ev('c', 10) }).counters[0].verdict).toBe('evicted');
    const short = checkCounters(read(...incs, ...later, op(7, 2, 'final', 'c', null, 'ok', 2, 30, 31)), { evictions: ev('c', 10) });
    expect(short.counters[0].verdict).toBe('lost');
    expect(short.valid).toBe(false);
    const twice = [op(5, 1, 'incr', 'c', 1, 'ok', 2, 22, 23), op(6, 1, 'incr', 'c', 1, 'ok', 2, 24, 25)];
    expect(checkCounters(read(...incs, ...twice, op(7, 2, 'final', 'c', null, 'ok', 3, 30, 31)), { evictions: ev('c', 10) }).counters[0].verdict).toBe('duplicate results');
  });
});
