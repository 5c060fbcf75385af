// Seeded history generators for the checker's tests and timing script (not used by the harness).
// smallHistory: ≤ 8 ops over 1–2 keys with small value sets, integer times (ties happen), results
// either sampled at random or taken from a simulated register. bigHistory: a realistic concurrent
// history from a simulated register, with counters and unique write-once keys and final reads.

/** mulberry32: a small seeded PRNG. @param {number} seed @returns {() => number} in [0, 1) */
export function rng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** @param {() => number} r @param {number} lo @param {number} hi inclusive */
const int = (r, lo, hi) => lo + Math.floor(r() * (hi - lo + 1));
/** @template T @param {() => number} r @param {readonly T[]} xs @returns {T} */
const pick = (r, xs) => xs[Math.floor(r() * xs.length)];
/** @param {() => number} r @param {Record<string, number>} weights */
function weighted(r, weights) {
  const total = Object.values(weights).reduce((s, w) => s + w, 0);
  let x = r() * total;
  for (const [k, w] of Object.entries(weights)) { if ((x -= w) < 0) return k; }
  return Object.keys(weights)[0];
}

/** applyOp's result for an incr of a non-number: the grid raises GRID_ERR_WRONG_TYPE, a fail. */
export const WRONG_TYPE = Symbol('wrong type');

/**
 * A sequential multi-key store, the generators' ground truth. Applies one op with input `input`
 * and returns its result.
 * @param {Map<string, any>} store @param {string} f @param {string} key @param {any} input
 */
export function applyOp(store, f, key, input) {
  const cur = store.has(key) ? store.get(key) : null;
  switch (f) {
    case 'get': case 'final': return cur;
    case 'set': store.set(key, input); return input;
    case 'delete': store.delete(key); return cur !== null;
    case 'cas': if (cur === input[0]) { store.set(key, input[1]); return true; } return false;
    case 'incr': {
      if (cur !== null && typeof cur !== 'number') return WRONG_TYPE; // the grid refuses: a fail
      const next = (cur ?? 0) + input;
      store.set(key, next);
      return next;
    }
    default: throw new Error(`unknown f ${f}`);
  }
}

/**
 * @typedef {object} GenOp
 * @property {number} id
 * @property {number} proc
 * @property {string} f
 * @property {string} key
 * @property {any} input
 * @property {any} [output]
 * @property {number} call
 * @property {number} ret       Infinity: no completion line at all
 * @property {'ok' | 'fail' | 'info'} status
 * @property {number} [point]   linearization point used by the simulation (undefined: not applied)
 * @property {any} [before]     the key's value just before this op's linearization point
 */

/**
 * JSON Lines for generated ops: sorted by t; at equal t, completions of earlier ops first, then
 * invokes, then completions of zero-length ops (so a proc's next invoke never precedes its
 * previous completion and an invoke never follows its own completion).
 * @param {GenOp[]} ops @returns {string}
 */
export function toLines(ops) {
  /** @type {Array<{ t: number, rank: number, seq: number, e: Record<string, any> }>} */
  const evs = [];
  let seq = 0;
  for (const o of ops) {
    evs.push({ t: o.call, rank: 1, seq: seq++, e: { id: o.id, proc: o.proc, type: 'invoke', f: o.f, key: o.key, value: o.input, t: o.call } });
    if (o.ret === Infinity) continue;
    const value = o.status === 'ok' ? o.output : null;
    evs.push({ t: o.ret, rank: o.ret === o.call ? 2 : 0, seq: seq++, e: { id: o.id, proc: o.proc, type: o.status, f: o.f, key: o.key, value, t: o.ret } });
  }
  evs.sort((a, b) => a.t - b.t || a.rank - b.rank || a.seq - b.seq);
  return evs.map((x) => JSON.stringify(x.e)).join('\n') + '\n';
}

/**
 * A history of at most `maxOps` operations over 1–2 keys.
 * mode 'random': results sampled at random (mostly not linearizable);
 * mode 'register': results from a simulated register (linearizable by construction);
 * mode 'mutated': a simulated one with one ok result then changed at random.
 * @param {() => number} r @param {{ maxOps?: number, mode?: 'random' | 'register' | 'mutated', counter?: boolean }} [opts]
 * @returns {{ ops: GenOp[], text: string }}
 */
export function smallHistory(r, opts = {}) {
  const n = int(r, 1, opts.maxOps ?? 8);
  const mode = opts.mode ?? 'random';
  const counter = opts.counter ?? false;
  const keys = counter ? ['c'] : int(r, 1, 2) === 1 ? ['a'] : ['a', 'b'];
  const values = ['x', 'y', 'z'];
  const slots = int(r, 1, 4);
  const cursor = new Array(slots).fill(0);
  const procOf = Array.from({ length: slots }, (_, i) => i);
  let nextProc = slots;
  /** @type {GenOp[]} */
  const ops = [];
  for (let id = 1; id <= n; id++) {
    const s = int(r, 0, slots - 1);
    const call = cursor[s] + int(r, 0, 3);
    const ret = call + int(r, 0, 4);
    const status = /** @type {'ok' | 'fail' | 'info'} */ (weighted(r, { ok: 70, info: 15, fail: 15 }));
    const f = counter ? weighted(r, { incr: 60, get: 25, final: 15 }) : weighted(r, { get: 28, set: 25, cas: 20, delete: 12, final: 8, incr: 3 });
    const key = pick(r, keys);
    let input = null;
    if (f === 'set') input = pick(r, values);
    if (f === 'cas') input = [pick(r, [null, ...values]), pick(r, values)];
    if (f === 'incr') input = counter ? pick(r, [1, 1, 2, 3, -1, 0]) : 1;
    /** @type {GenOp} */
    const op = { id, proc: procOf[s], f, key, input, call, ret: status === 'info' && r() < 0.3 ? Infinity : ret, status };
    ops.push(op);
    cursor[s] = ret + 1;
    if (status === 'info') procOf[s] = nextProc++; // a proc never issues again after info
  }
  if (mode === 'random') {
    for (const o of ops) if (o.status === 'ok') o.output = randomResult(r, o, values);
  } else {
    simulate(r, ops, 6);
    if (mode === 'mutated') {
      const oks = ops.filter((o) => o.status === 'ok' && o.f !== 'set');
      if (oks.length > 0) { const o = pick(r, oks); o.output = randomResult(r, o, values); }
    }
  }
  return { ops, text: toLines(ops) };
}

/** @param {() => number} r @param {GenOp} o @param {string[]} values */
function randomResult(r, o, values) {
  switch (o.f) {
    case 'set': return o.input;
    case 'cas': case 'delete': return r() < 0.5;
    case 'incr': return int(r, -1, 6);
    default: return o.key === 'c' ? pick(r, [null, 0, 1, 2, 3, 4, 5]) : pick(r, [null, ...values]);
  }
}

/**
 * Gives each op a linearization point and computes ok results from a sequential store: ok ops at a
 * point inside [call, ret], info ops applied (at a point up to `infoLate` after call) or not, fail
 * ops never. Records point and before on each applied op.
 * @param {() => number} r @param {GenOp[]} ops @param {number} infoLate
 */
function simulate(r, ops, infoLate) {
  /** @type {GenOp[]} */
  const applied = [];
  for (const o of ops) {
    if (o.status === 'ok') o.point = o.call + r() * (o.ret - o.call);
    else if (o.status === 'info' && r() < 0.5) o.point = o.call + r() * infoLate;
    else continue;
    applied.push(o);
  }
  applied.sort((a, b) => /** @type {number} */ (a.point) - /** @type {number} */ (b.point));
  const store = new Map();
  for (const o of applied) {
    o.before = store.has(o.key) ? store.get(o.key) : null;
    const out = applyOp(store, o.f, o.key, o.input);
    if (out === WRONG_TYPE) { if (o.status === 'ok') o.status = 'fail'; delete o.point; continue; }
    if (o.status === 'ok') o.output = out;
  }
  return store;
}

/**
 * A realistic history: `procs` concurrent clients doing `ops` register operations over `keys` keys
 * (unique values, so a value names its write), `counterOps` increments over `counters` counter keys,
 * `uniqueKeys` write-once keys, then one final read of every key after everything has landed.
 * Times are floats in ms; info ops (rate `infoRate`) may land up to 20 ms after their invoke or
 * never; fail ops (rate `failRate`) never land.
 * @param {number} seed
 * @param {{ ops?: number, keys?: number, procs?: number, infoRate?: number, failRate?: number, counters?: number, counterOps?: number, uniqueKeys?: number }} [opts]
 * @returns {{ ops: GenOp[], text: string }}
 */
export function bigHistory(seed, opts = {}) {
  const r = rng(seed);
  const nReg = opts.ops ?? 10_000;
  const nKeys = opts.keys ?? 50;
  const nProcs = opts.procs ?? 32;
  const infoRate = opts.infoRate ?? 0.01;
  const failRate = opts.failRate ?? 0.01;
  const nCounters = opts.counters ?? 0;
  const nCounterOps = opts.counterOps ?? 0;
  const nUnique = opts.uniqueKeys ?? 0;
  /** @type {Array<{ f: string, key: string, input: any }>} */
  const work = [];
  /** @type {Map<string, string>} last value written per key in issue order: a likely-current cas expectation */
  const lastWritten = new Map();
  let vid = 0;
  for (let i = 0; i < nReg; i++) {
    const key = `k${int(r, 0, nKeys - 1)}`;
    const f = weighted(r, { get: 45, set: 30, cas: 17, delete: 8 });
    let input = null;
    if (f === 'set') { input = `v-${++vid}`; lastWritten.set(key, input); }
    if (f === 'cas') {
      const expected = r() < 0.7 ? lastWritten.get(key) ?? null : r() < 0.5 ? null : `v-${int(r, 1, Math.max(1, vid))}`;
      input = [expected, `v-${++vid}`];
      lastWritten.set(key, input[1]);
    }
    work.push({ f, key, input });
  }
  for (let i = 0; i < nCounterOps; i++) work.push({ f: 'incr', key: `c${int(r, 0, nCounters - 1)}`, input: int(r, 1, 3) });
  for (let i = 0; i < nUnique; i++) work.push({ f: 'set', key: `u${i}`, input: `w-${i}` });
  // shuffle the counter and unique-key work in among the register work
  for (let i = work.length - 1; i > 0; i--) { const j = int(r, 0, i); [work[i], work[j]] = [work[j], work[i]]; }

  const cursor = new Array(nProcs).fill(0).map(() => r() * 2);
  const procOf = Array.from({ length: nProcs }, (_, i) => i + 1);
  let nextProc = nProcs + 1;
  /** @type {GenOp[]} */
  const ops = [];
  let id = 0;
  for (const w of work) {
    // the slot that is free first issues next: real overlapping calls, like 32 clients
    let s = 0;
    for (let i = 1; i < nProcs; i++) if (cursor[i] < cursor[s]) s = i;
    const call = cursor[s] + r() * 0.2;
    const ret = call + 0.05 + -Math.log(1 - r()) * 1.5;
    const x = r();
    const status = x < infoRate ? 'info' : x < infoRate + failRate ? 'fail' : 'ok';
    ops.push({ id: ++id, proc: procOf[s], f: w.f, key: w.key, input: w.input, call: round(call), ret: status === 'info' && r() < 0.2 ? Infinity : round(ret), status });
    cursor[s] = ret + 0.01;
    if (status === 'info') procOf[s] = nextProc++;
  }
  const store = simulate(r, ops, 20);
  // after healing: one final read of every key, by fresh procs, after every info op has landed
  let t = Math.max(...cursor) + 30;
  const allKeys = [...new Set(ops.map((o) => o.key))].sort();
  const finalProc = nextProc++;
  for (const key of allKeys) {
    const call = round(t), ret = round(t + 0.5);
    ops.push({ id: ++id, proc: finalProc, f: 'final', key, input: null, output: store.has(key) ? store.get(key) : null, call, ret, status: 'ok' });
    t += 1;
  }
  return { ops, text: toLines(ops) };
}

/** @param {number} x */
const round = (x) => Math.round(x * 1000) / 1000;
