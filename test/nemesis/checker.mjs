// Safety checkers for shardgrid's fault harness: per-key linearizability (Wing & Gong / Lowe
// search, as in Porcupine), counter bounds and acknowledged writes, over a Jepsen-style history.
//
// Plain ESM JavaScript with JSDoc types: the harness runs under plain `node` (Node 20 cannot run
// TypeScript), and vitest imports this file directly. It imports nothing from src/ or dist/, so it
// works without a build. See CHECKER.md next to this file for what each check means and its limits.

/**
 * @typedef {'ok' | 'fail' | 'info'} Status
 * @typedef {'get' | 'set' | 'cas' | 'delete' | 'incr' | 'final'} OpF
 * @typedef {string | number | boolean | null} Scalar
 *
 * @typedef {object} Op One client operation: an invoke paired with its completion.
 * @property {number | string} id     unique per operation in one history
 * @property {number | string} proc   the logical client
 * @property {OpF} f
 * @property {string} key
 * @property {any} input              the invoke's value (set: value; cas: [expected, next]; incr: delta)
 * @property {any} output             the ok completion's value; undefined for fail and info
 * @property {number} call            invoke time (ms)
 * @property {number} ret             completion time; Infinity for info and for a missing completion
 * @property {Status} status          a missing completion counts as 'info'
 * @property {boolean} [incomplete]   true when the history has no completion line for it
 */

const FS = new Set(['get', 'set', 'cas', 'delete', 'incr', 'final']);
const COMPLETIONS = new Set(['ok', 'fail', 'info']);

/** A history the checkers refuse to judge: it breaks the format, so any verdict would be a guess. */
export class HistoryError extends Error {
  /** @param {string} message @param {Record<string, unknown>} [data] */
  constructor(message, data) {
    super(message);
    this.name = 'HistoryError';
    this.code = 'NEMESIS_ERR_HISTORY';
    this.data = data;
  }
}

/** @param {unknown} v */
const isScalar = (v) => v === null || typeof v === 'string' || typeof v === 'boolean' || (typeof v === 'number' && Number.isFinite(v));

// ---------------------------------------------------------------------------------------------
// readHistory
// ---------------------------------------------------------------------------------------------

/**
 * Pairs each invoke with its completion. Accepts the JSON Lines text, an array of lines, or an
 * array of already parsed event objects. Throws a HistoryError (code NEMESIS_ERR_HISTORY, message
 * naming the line) for: unparseable lines, unknown type or f, a missing/invalid id, proc, key or t,
 * a duplicate invoke id, a completion without an invoke, a completion whose proc/f/key differ from
 * its invoke's, a second completion, two outstanding operations on one proc, a proc issuing again
 * after an info completion, a completion earlier than its invoke, and input/output values of the
 * wrong shape for their f.
 * @param {string | ReadonlyArray<string | Record<string, any>>} source
 * @returns {Op[]} in invoke order
 */
export function readHistory(source) {
  /** @type {ReadonlyArray<string | Record<string, any>>} */
  const lines = typeof source === 'string' ? source.split('\n') : source;
  if (!Array.isArray(lines)) throw new HistoryError('readHistory expects a string or an array of lines');
  /** @type {Op[]} */
  const ops = [];
  /** @type {Map<string, { op: Op, line: number }>} */
  const byId = new Map();
  /** @type {Map<string, Op>} proc -> its outstanding op */
  const outstanding = new Map();
  /** @type {Set<string>} procs that ended with info */
  const retired = new Set();
  const done = new Set();

  for (let i = 0; i < lines.length; i++) {
    const lineNo = i + 1;
    const raw = lines[i];
    /** @type {Record<string, any>} */
    let e;
    if (typeof raw === 'string') {
      if (raw.trim() === '') continue;
      try { e = JSON.parse(raw); } catch (err) {
        throw new HistoryError(`history line ${lineNo}: not JSON (${/** @type {Error} */ (err).message})`, { line: lineNo });
      }
    } else e = raw;
    const bad = (/** @type {string} */ why) => new HistoryError(`history line ${lineNo}: ${why}`, { line: lineNo, event: e });
    if (typeof e !== 'object' || e === null || Array.isArray(e)) throw bad('not an object');
    if (!(typeof e.id === 'number' && Number.isFinite(e.id)) && typeof e.id !== 'string') throw bad('id must be a number or a string');
    if (!(typeof e.proc === 'number' && Number.isFinite(e.proc)) && typeof e.proc !== 'string') throw bad('proc must be a number or a string');
    if (typeof e.t !== 'number' || !Number.isFinite(e.t)) throw bad('t must be a finite number');
    if (!FS.has(e.f)) throw bad(`unknown f ${JSON.stringify(e.f)}`);
    if (typeof e.key !== 'string') throw bad('key must be a string');
    const id = `${typeof e.id}:${e.id}`;
    const proc = `${typeof e.proc}:${e.proc}`;

    if (e.type === 'invoke') {
      if (byId.has(id)) throw bad(`id ${JSON.stringify(e.id)} invoked twice (first on line ${byId.get(id)?.line})`);
      if (retired.has(proc)) throw bad(`proc ${JSON.stringify(e.proc)} issues again after an info completion`);
      const busy = outstanding.get(proc);
      if (busy !== undefined) throw bad(`proc ${JSON.stringify(e.proc)} already has operation ${JSON.stringify(busy.id)} outstanding`);
      checkInput(e.f, e.value, bad);
      /** @type {Op} */
      const op = { id: e.id, proc: e.proc, f: e.f, key: e.key, input: e.value ?? null, output: undefined, call: e.t, ret: Infinity, status: 'info', incomplete: true };
      byId.set(id, { op, line: lineNo });
      outstanding.set(proc, op);
      ops.push(op);
    } else if (COMPLETIONS.has(e.type)) {
      const found = byId.get(id);
      if (found === undefined) throw bad(`completion of id ${JSON.stringify(e.id)} without an invoke before it`);
      if (done.has(id)) throw bad(`second completion of id ${JSON.stringify(e.id)}`);
      const op = found.op;
      if (`${typeof op.proc}:${op.proc}` !== proc) throw bad(`completion of id ${JSON.stringify(e.id)} on proc ${JSON.stringify(e.proc)}, invoked on proc ${JSON.stringify(op.proc)}`);
      if (op.f !== e.f || op.key !== e.key) throw bad(`completion of id ${JSON.stringify(e.id)} names ${e.f} ${JSON.stringify(e.key)}, its invoke ${op.f} ${JSON.stringify(op.key)}`);
      if (e.t < op.call) throw bad(`t goes backwards for id ${JSON.stringify(e.id)}: completion at ${e.t}, invoke at ${op.call}`);
      done.add(id);
      outstanding.delete(proc);
      delete op.incomplete;
      op.status = e.type;
      if (e.type === 'ok') {
        checkOutput(op, e.value, bad);
        op.output = e.value;
        op.ret = e.t;
      } else if (e.type === 'fail') {
        op.ret = e.t;
      } else {
        retired.add(proc);
      }
    } else {
      throw bad(`unknown type ${JSON.stringify(e.type)}`);
    }
  }
  return ops;
}

/** @param {string} f @param {any} v @param {(why: string) => Error} bad */
function checkInput(f, v, bad) {
  switch (f) {
    case 'set':
      if (!isScalar(v) || v === null) throw bad('set needs a non-null scalar value');
      return;
    case 'cas':
      if (!Array.isArray(v) || v.length !== 2 || !isScalar(v[0]) || !isScalar(v[1]) || v[1] === null) throw bad('cas needs value [expected, next] (scalars, next not null)');
      return;
    case 'incr':
      if (!Number.isSafeInteger(v)) throw bad('incr needs an integer delta');
      return;
    default: // get, delete, final
      if (v !== null && v !== undefined) throw bad(`${f} invoke value must be null`);
  }
}

/** @param {Op} op @param {any} v @param {(why: string) => Error} bad */
function checkOutput(op, v, bad) {
  switch (op.f) {
    case 'set':
      if (v !== op.input) throw bad(`ok set must echo its value ${JSON.stringify(op.input)}, got ${JSON.stringify(v)}`);
      return;
    case 'cas': case 'delete':
      if (typeof v !== 'boolean') throw bad(`ok ${op.f} value must be true or false`);
      return;
    case 'incr':
      if (!Number.isSafeInteger(v)) throw bad('ok incr value must be an integer (the new value)');
      return;
    default: // get, final
      if (!isScalar(v)) throw bad(`ok ${op.f} value must be a scalar or null`);
  }
}

// ---------------------------------------------------------------------------------------------
// checkLinearizable: a register per key, Wing & Gong / Lowe search with a memo of
// (linearized set, state), as in Porcupine.
// ---------------------------------------------------------------------------------------------

/**
 * Sequential register model over interned states. State 0 is "absent" (null); other states are
 * indices into `values`. Returns the next state, or -1 when the op's recorded result is
 * impossible from `state`. An info op (unknown result) is applied as "it took effect"; leaving it
 * out is the search's other choice (its return is at +infinity, see checkKey).
 */
class Register {
  /**
   * @param {Op[]} ops the key's ops. @param {boolean} [merge] false: keep every value distinct
   * (counterexamples replay with that, to show real values). Values that no op can tell apart (no read returned them, no cas
   * expected them) share one state, "unread": every op behaves the same in any of them (a read or
   * a cas compares with a value it names, a delete only asks "present?", a set ignores the state).
   * Writes of values nobody read then lead to equal states, and the memo merges what would
   * otherwise be different configurations. Not done for a key with incr, whose result depends
   * on the number itself.
   */
  constructor(ops, merge = true) {
    /**
     * A key some member evicted (an `evict` op: see withEvictions): each state also carries one
     * bit, "evicted since the last write", in its lowest bit. While it is set the key may read
     * absent, or come back with the value it held (a copy that still held it was promoted); a
     * write clears it. Never an older value.
     */
    this.lossy = ops.some((o) => o.f === 'evict');
    /** @type {Scalar[]} */
    this.values = [null];
    /** @type {Map<string, number>} */
    this.index = new Map([[tag(null), 0]]);
    /** @type {Set<string> | null} values some op can observe; null: every value is distinct */
    this.observed = null;
    /** index of the shared "unread" state, -1 until first needed */
    this.unread = -1;
    if (merge && !ops.some((o) => o.f === 'incr')) {
      this.observed = new Set();
      for (const o of ops) {
        if ((o.f === 'get' || o.f === 'final') && o.status === 'ok') this.observed.add(tag(o.output));
        if (o.f === 'cas') this.observed.add(tag(o.input[0]));
      }
    }
  }

  /** @param {Scalar} v */
  intern(v) {
    const t = tag(v);
    let i = this.index.get(t);
    if (i === undefined) {
      if (this.observed !== null && !this.observed.has(t)) {
        if (this.unread < 0) { this.unread = this.values.length; this.values.push(v); }
        i = this.unread;
      } else {
        i = this.values.length;
        this.values.push(v);
      }
      this.index.set(t, i);
    }
    return i;
  }

  /** The value of a state, for people. @param {number} state */
  show(state) {
    if (this.lossy) return `${this.showValue(state >> 1)}${state & 1 ? ' (evicted since: may read absent)' : ''}`;
    return this.showValue(state);
  }

  /** @param {number} v a value index */
  showValue(v) {
    return v === this.unread ? 'a value no read returned (such as ' + JSON.stringify(this.values[v]) + ')' : JSON.stringify(this.values[v]);
  }

  /**
   * Interns an op's values once, so the search's steps compare integers.
   * @param {Op} op @returns {Prepared}
   */
  prepare(op) {
    const known = op.status === 'ok';
    switch (op.f) {
      // pure: in every state where its recorded result is possible, it changes nothing (not an
      // incr by 0: on an absent key it creates the counter at 0)
      case 'get': case 'final': return { kind: READ, known, pure: true, a: this.intern(op.output), b: 0, out: null };
      case 'set': return { kind: SET, known, pure: false, a: this.intern(op.input), b: 0, out: null };
      case 'delete': return { kind: DELETE, known, pure: known && op.output === false, a: 0, b: 0, out: known ? op.output : null };
      case 'cas': {
        const a = this.intern(op.input[0]), b = this.intern(op.input[1]);
        // (a successful cas x->x on an evicted key is a write: it ends "evicted since")
        return { kind: CAS, known, pure: known && (op.output === false || (a === b && !this.lossy)), a, b, out: known ? op.output : null };
      }
      case 'incr': return { kind: INCR, known, pure: false, a: op.input, b: 0, out: known ? op.output : null };
      case 'evict': return { kind: EVICT, known: true, pure: false, a: 0, b: 0, out: null };
      default: throw new HistoryError(`unknown f ${JSON.stringify(op.f)} for op ${JSON.stringify(op.id)}`);
    }
  }

  /** @param {number} state @param {Prepared} p @returns {number} */
  step(state, p) {
    if (this.lossy) return this.stepLossy(state, p);
    switch (p.kind) {
      case READ:
        // info reads are dropped before the search; an ok read must see the current value
        return p.a === state ? state : -1;
      case SET:
        return p.a;
      case DELETE:
        if (!p.known) return 0;
        return p.out === (state !== 0) ? 0 : -1;
      case CAS: {
        const match = p.a === state;
        if (p.known && p.out !== match) return -1;
        return match ? p.b : state;
      }
      case INCR: {
        const cur = this.values[state];
        if (cur !== null && !Number.isSafeInteger(cur)) return -1; // incr of a non-integer fails in the grid
        const next = /** @type {number} */ (cur ?? 0) + p.a;
        if (p.known && next !== p.out) return -1;
        return this.intern(next);
      }
      default:
        return -1;
    }
  }

  /**
   * step for a key with evictions: state = value index << 1 | "evicted since the last write".
   * @param {number} state @param {Prepared} p @returns {number}
   */
  stepLossy(state, p) {
    const v = state >> 1;
    const gone = (state & 1) === 1;
    switch (p.kind) {
      case EVICT:
        return state | 1;
      case READ:
        return p.a === v || (gone && p.a === 0) ? state : -1;
      case SET:
        return p.a << 1;
      case DELETE:
        if (!p.known) return 0;
        // true: the primary held it; false: absent, or evicted there (a copy may still bring it back)
        if (p.out) return v !== 0 ? 0 : -1;
        return v === 0 || gone ? state : -1;
      case CAS: {
        // an evicted key matches an expected absent at the primary that evicted it
        const match = p.a === v || (gone && p.a === 0);
        if (!p.known) return match ? p.b << 1 : state;
        if (p.out) return match ? p.b << 1 : -1;
        return p.a !== v || gone ? state : -1;
      }
      case INCR: {
        const cur = this.values[v];
        if (cur !== null && !Number.isSafeInteger(cur)) return gone && (!p.known || p.out === p.a) ? this.intern(p.a) << 1 : -1;
        const next = /** @type {number} */ (cur ?? 0) + p.a;
        if (!p.known || next === p.out) return this.intern(next) << 1;
        return gone && p.out === p.a ? this.intern(p.a) << 1 : -1;
      }
      default:
        return -1;
    }
  }

  /** The register's value in `state`. @param {number} state */
  valueOf(state) {
    return this.values[this.lossy ? state >> 1 : state];
  }

  /** Why `op` cannot be applied in `state`, for counterexamples. @param {number} state @param {Op} op */
  explain(state, op) {
    const cur = this.show(state);
    switch (op.f) {
      case 'get': case 'final': return `${op.f} returned ${JSON.stringify(op.output)} but the register held ${cur}`;
      case 'delete': return `delete returned ${op.output} but the register held ${cur}`;
      case 'cas': return `cas ${JSON.stringify(op.input[0])}->${JSON.stringify(op.input[1])} returned ${op.output} but the register held ${cur}`;
      case 'incr': return `incr ${op.input} returned ${JSON.stringify(op.output)} but the register held ${cur}`;
      default: return `${op.f} cannot be applied to ${cur}`;
    }
  }
}

const READ = 0, SET = 1, DELETE = 2, CAS = 3, INCR = 4, EVICT = 5;
/** @typedef {{ kind: number, known: boolean, pure: boolean, a: number, b: number, out: any }} Prepared */

/** @param {Scalar} v */
const tag = (v) => (v === null ? 'n' : `${typeof v}:${v}`);

/** @param {Op} op */
export function describeOp(op) {
  if (op.f === 'evict') return `#${op.id} a member evicted ${JSON.stringify(op.key)} [${op.call}, ${op.ret}]`;
  const inp = op.f === 'get' || op.f === 'final' || op.f === 'delete' ? '' : ` ${JSON.stringify(op.input)}`;
  const out = op.status === 'ok' ? ` -> ${JSON.stringify(op.output)}` : ` (${op.incomplete ? 'no completion' : op.status})`;
  const ret = op.ret === Infinity ? 'inf' : String(op.ret);
  return `#${op.id} proc ${op.proc} ${op.f} ${JSON.stringify(op.key)}${inp}${out} [${op.call}, ${ret}]`;
}

/**
 * @typedef {object} KeyResult
 * @property {string} key
 * @property {true | false | 'unknown'} valid
 * @property {number} ops            operations searched (fail ops and info reads are dropped)
 * @property {number} explored       search steps taken (linearization attempts that reached a new cache entry)
 * @property {Counterexample} [counterexample]
 *
 * @typedef {object} Counterexample
 * @property {Op[]} linearized       the longest linearizable prefix found, in linearization order
 * @property {Scalar} state          the register's value after that prefix
 * @property {Op} blocking           the earliest-returning op not in the prefix: it had to be placed next at the latest
 * @property {{ op: Op, why: string }[]} unplaceable  every op that could come next, with why the model refuses it
 * @property {string} text           the above, for a human
 */

/**
 * Per-key linearizability of get/set/cas/delete/final (and incr, as an integer register) histories.
 * @param {Op[]} ops from readHistory
 * @param {{ budgetMs?: number, maxStates?: number, keys?: string[], evictions?: Evictions }} [options] budgetMs: search
 *   time per key before it is reported 'unknown' (default 10000); maxStates: memo entries per key
 *   before it is reported 'unknown' (default 1,000,000, a bound on memory: an entry is ~100-200
 *   bytes); keys: check only these keys; evictions: when members evicted keys (a cache may drop
 *   any key): each becomes an `evict` op of its key (see evictOps), which may then read absent
 *   until its next write, but never older
 * @returns {{ valid: true | false | 'unknown', keys: KeyResult[] }}
 */
export function checkLinearizable(ops, options = {}) {
  const budgetMs = options.budgetMs ?? 10_000;
  if (typeof budgetMs !== 'number' || !(budgetMs > 0)) throw new RangeError('options.budgetMs must be a positive number');
  const maxStates = options.maxStates ?? 1_000_000;
  if (typeof maxStates !== 'number' || !(maxStates > 0)) throw new RangeError('options.maxStates must be a positive number');
  const only = options.keys ? new Set(options.keys) : undefined;
  /** @type {Map<string, Op[]>} */
  const byKey = new Map();
  for (const op of ops) {
    if (only && !only.has(op.key)) continue;
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  if (options.evictions !== undefined) for (const [key, list] of byKey) list.push(...evictOps(key, options.evictions.get(key), list));
  /** @type {KeyResult[]} */
  const keys = [];
  for (const key of [...byKey.keys()].sort()) {
    keys.push(checkKey(key, /** @type {Op[]} */ (byKey.get(key)), budgetMs, maxStates));
  }
  return { valid: combine(keys.map((k) => k.valid)), keys };
}

/**
 * When members evicted each key: key -> times (ms, the history's clock), as readEvictions
 * (evictions.mjs) returns them.
 * @typedef {Map<string, number[]>} Evictions
 */

/**
 * How far an eviction's time may be from the history's clock (ms). Both are wall-clock based
 * (performance.timeOrigin + now) on one machine; measured within 0.1 ms across processes.
 */
export const EVICTION_SLACK_MS = 5;

/**
 * The evictions of a key as ops for the search: each happened at its recorded time (± the slack),
 * so it must be linearized there, and it sets the key's "evicted since the last write" bit. An
 * eviction during an acknowledged write of the key (`keyOps`: the key's ops) may take effect as
 * late as that write's return: a primary applies a write, then serves its key's earlier value
 * until the copies have it (unsettled.ts), so the value it evicts meanwhile may be the new one,
 * which becomes the key's visible state only when the write settles. (Seen in the memory mode,
 * 2026-11-27: a register evicted 18 ms into a set that then settled, and read absent right after
 * the set's acknowledgement; with windows of ± the slack only, the checker called it invalid.)
 * @param {string} key @param {number[] | undefined} times @param {Op[]} [keyOps] @returns {Op[]}
 */
export function evictOps(key, times, keyOps = []) {
  const writes = keyOps.filter((o) => o.status === 'ok' && (o.f === 'set' || o.f === 'cas' || o.f === 'delete' || o.f === 'incr'));
  return (times ?? []).map((t, i) => {
    let ret = t + EVICTION_SLACK_MS;
    for (const w of writes) if (w.call <= t + EVICTION_SLACK_MS && w.ret >= t - EVICTION_SLACK_MS && w.ret > ret) ret = w.ret;
    return { id: `evict-${i + 1}`, proc: 'member', f: 'evict', key, input: null, output: null, call: t - EVICTION_SLACK_MS, ret, status: 'ok' };
  });
}

/** @param {Array<true | false | 'unknown'>} verdicts @returns {true | false | 'unknown'} */
function combine(verdicts) {
  if (verdicts.includes(false)) return false;
  if (verdicts.includes('unknown')) return 'unknown';
  return true;
}

/**
 * @typedef {object} Node entry of the doubly linked event list
 * @property {number} op     index into the key's op list, -1 for the head
 * @property {boolean} isCall
 * @property {Node | null} match the return node of a call node
 * @property {Node | null} prev
 * @property {Node | null} next
 * @property {number} time
 */

/** @param {string} key @param {Op[]} all @param {number} budgetMs @param {number} maxStates @returns {KeyResult} */
function checkKey(key, all, budgetMs, maxStates) {
  // fail: certainly not applied. info reads: no result, no effect. Both constrain nothing.
  const kept = all.filter((o) => o.status !== 'fail' && !(o.status === 'info' && (o.f === 'get' || o.f === 'final')));
  // ops with a finite return must be linearized; ops returning at +infinity (info, no completion)
  // are optional. Indices [0, nReq) are the required ops, [nReq, n) the optional ones.
  const ops = [...kept.filter((o) => o.ret !== Infinity), ...kept.filter((o) => o.ret === Infinity)];
  const n = ops.length;
  const nReq = ops.findIndex((o) => o.ret === Infinity) < 0 ? n : ops.findIndex((o) => o.ret === Infinity);
  const model = new Register(ops);
  // the event list, ordered by time; at equal times calls come first, so touching intervals
  // count as concurrent (a precedes b only when a.ret < b.call)
  /** @type {Node[]} */
  const events = [];
  for (let i = 0; i < n; i++) {
    /** @type {Node} */
    const ret = { op: i, isCall: false, match: null, prev: null, next: null, time: ops[i].ret };
    events.push({ op: i, isCall: true, match: ret, prev: null, next: null, time: ops[i].call }, ret);
  }
  // (Infinity - Infinity is NaN, which || passes over like 0)
  events.sort((a, b) => (a.time - b.time) || (a.isCall === b.isCall ? 0 : a.isCall ? -1 : 1));
  /** @type {Node} */
  const head = { op: -1, isCall: false, match: null, prev: null, next: null, time: -Infinity };
  let prev = head;
  for (const ev of events) { prev.next = ev; ev.prev = prev; prev = ev; }

  const req = new Uint32Array(Math.max(1, Math.ceil(nReq / 32)));
  const opt = new Uint32Array(Math.ceil((n - nReq) / 32));
  /** @param {number} i */
  const flip = (i) => { if (i < nReq) req[i >>> 5] ^= 1 << (i & 31); else opt[(i - nReq) >>> 5] ^= 1 << ((i - nReq) & 31); };
  /** @type {Cache} */
  const cache = new Map();
  const prepared = ops.map((o) => model.prepare(o));
  /** @type {Frame[]} */
  const calls = [];
  /** @type {number[]} */
  let longest = [];
  let state = 0;
  let explored = 0;
  let spins = 0;
  const deadline = performance.now() + budgetMs;

  /**
   * Places every callable required op that is pure (a read, a cas or delete that returned false, a
   * cas x->x that returned true: ops that change nothing in any state where their
   * result is possible) and that the current state allows. Placing such an op now is never worse
   * than placing it later: it changes nothing wherever it goes, every op that returned
   * before its invoke is already placed (it is callable), and moving it earlier breaks no real-time
   * order. So these are pushed as forced: on backtracking the search does not try the branch where
   * they wait. Without this, k concurrent reads of one value make 2^k cache entries.
   * Returns false when a forced placement reaches a configuration already seen (it has one more
   * required op, so it is not on the current path: it was explored and failed): then the current
   * one fails too, and the caller backtracks.
   */
  const sweep = () => {
    let e = head.next;
    while (e !== null && e.isCall) {
      spins++;
      // (only required ops: an optional op that changes nothing need not be placed at all)
      if (prepared[e.op].pure && e.op < nReq && model.step(state, prepared[e.op]) >= 0) {
        flip(e.op);
        if (!cacheAdd(cache, req, opt, state)) { flip(e.op); return false; }
        explored++;
        calls.push({ node: e, state, forced: true, cands: null, ci: 0 });
        lift(e);
        e = head.next;
      } else {
        e = e.next;
      }
    }
    return true;
  };

  /**
   * The ops that may be linearized next: the calls before the first remaining return, tried
   * earliest return first (an op about to return must be placed soon; a long one can wait, and
   * info ops, returning at +infinity, come last). The order only steers the search: every
   * candidate is tried before giving up on a configuration. null when no required op is left.
   * @returns {Node[] | null}
   */
  const candidates = () => {
    /** @type {Node[]} */
    const out = [];
    let e = head.next;
    while (e !== null && e.isCall) { out.push(e); e = e.next; }
    if (e === null || e.time === Infinity) return null;
    out.sort((x, y) => ops[x.op].ret - ops[y.op].ret || ops[x.op].call - ops[y.op].call);
    return out;
  };

  let backtrack = !sweep();
  /** @type {Node[] | null} */
  let cands = backtrack ? [] : candidates();
  let ci = 0;
  for (;;) {
    if (!backtrack) {
      if (cands === null) {
        // every op with a finite return is linearized; what is left are info ops, which may be
        // left out (or, equivalently, placed after everything, where no later op observes them)
        return { key, valid: true, ops: n, explored };
      }
      if ((++spins & 1023) === 0 && (performance.now() > deadline || explored > maxStates)) {
        return { key, valid: 'unknown', ops: n, explored };
      }
      if (ci < cands.length) {
        const node = cands[ci++];
        const next = model.step(state, prepared[node.op]);
        if (next >= 0) {
          flip(node.op);
          if (cacheAdd(cache, req, opt, next)) {
            explored++;
            calls.push({ node, state, forced: false, cands, ci });
            state = next;
            lift(node);
            backtrack = !sweep();
            if (!backtrack) { cands = candidates(); ci = 0; }
          } else {
            flip(node.op);
          }
        }
        continue;
      }
      // every candidate was tried
    }
    // backtrack: undo forced placements and the choice that led to them, then try the next candidate
    backtrack = false;
    // the deepest configuration is left by a backtrack (or ends the search with success), so the
    // longest prefix is recorded here, not on every push
    if (calls.length > longest.length) longest = calls.map((c) => c.node.op);
    /** @type {Frame | undefined} */
    let top;
    do {
      top = calls.pop();
      if (top === undefined) {
        return { key, valid: false, ops: n, explored, counterexample: counterexample(ops, longest) };
      }
      flip(top.node.op);
      state = top.state;
      unlift(top.node);
    } while (top.forced);
    cands = top.cands;
    ci = top.ci;
  }
}

/** @typedef {{ node: Node, state: number, forced: boolean, cands: Node[] | null, ci: number }} Frame */

/** @typedef {Map<number, Array<{ lo: number, tail: Uint32Array, state: number, opts: Uint32Array[] }>>} Cache */

/**
 * The memo. A configuration is (required ops linearized, optional ops linearized, state). It is
 * skipped when one with the same required set and state and a subset of its optional ops was seen:
 * that one can do everything this one can (leave the extra optional ops out: they are optional
 * and, returning at +infinity, constrain no other op's order). With no optional ops this is
 * Porcupine's exact (bitset, state) cache. Returns false when skipped, else records it.
 * Entries are grouped by (required set, state); a group keeps only its minimal optional sets (a
 * new set drops the recorded supersets of it, which it dominates).
 * The required set is stored compactly: ops are numbered in invoke order and the search
 * linearizes roughly in that order, so the set is a run of full words, a short tail, then zeros;
 * a group keeps the index of the first non-full word and the words up to the last non-zero one.
 * @param {Cache} cache @param {Uint32Array} req @param {Uint32Array} opt @param {number} state
 */
function cacheAdd(cache, req, opt, state) {
  let lo = 0;
  while (lo < req.length && req[lo] === 0xffffffff) lo++;
  let hi = req.length;
  while (hi > lo && req[hi - 1] === 0) hi--;
  let h = Math.imul((2166136261 ^ state) >>> 0, 16777619) ^ lo;
  for (let i = lo; i < hi; i++) h = Math.imul(h ^ req[i], 16777619);
  h >>>= 0;
  let bucket = cache.get(h);
  if (bucket === undefined) cache.set(h, (bucket = []));
  let group;
  outer: for (const g of bucket) {
    if (g.state !== state || g.lo !== lo || g.tail.length !== hi - lo) continue;
    for (let i = lo; i < hi; i++) if (g.tail[i - lo] !== req[i]) continue outer;
    group = g;
    break;
  }
  const copy = opt.length === 0 ? opt : opt.slice();
  if (group === undefined) {
    bucket.push({ lo, tail: req.slice(lo, hi), state, opts: [copy] });
    return true;
  }
  const opts = group.opts;
  next: for (const o of opts) {
    for (let i = 0; i < opt.length; i++) if ((o[i] & ~opt[i]) !== 0) continue next;
    return false; // a recorded subset dominates this one
  }
  // drop the recorded supersets of the new set: it dominates them
  let w = 0;
  keep: for (let r = 0; r < opts.length; r++) {
    const o = opts[r];
    for (let i = 0; i < opt.length; i++) {
      if ((opt[i] & ~o[i]) !== 0) { opts[w++] = o; continue keep; }
    }
  }
  opts.length = w;
  opts.push(copy);
  return true;
}

/** Removes a call node and its return from the list (the return always follows the call). @param {Node} call */
function lift(call) {
  /** @type {Node} */ (call.prev).next = call.next;
  /** @type {Node} */ (call.next).prev = call.prev;
  const ret = /** @type {Node} */ (call.match);
  /** @type {Node} */ (ret.prev).next = ret.next;
  if (ret.next !== null) ret.next.prev = ret.prev;
}

/** Reinserts what lift removed, in reverse order. @param {Node} call */
function unlift(call) {
  const ret = /** @type {Node} */ (call.match);
  /** @type {Node} */ (ret.prev).next = ret;
  if (ret.next !== null) ret.next.prev = ret;
  /** @type {Node} */ (call.prev).next = call;
  /** @type {Node} */ (call.next).prev = call;
}

/**
 * @param {Op[]} ops the key's ops as searched @param {number[]} prefix op indices, in linearization order
 * @returns {Counterexample}
 */
function counterexample(ops, prefix) {
  // replay the prefix on a register that keeps every value distinct, to show real values (the
  // search's register may have merged values no read returned; both accept the same ops)
  const model = new Register(ops, false);
  let state = 0;
  for (const i of prefix) state = model.step(state, model.prepare(ops[i]));
  if (state < 0) throw new Error(`checker bug: the linearized prefix of key ${JSON.stringify(ops[0].key)} does not replay`);
  const placed = new Set(prefix);
  const rest = ops.map((_, i) => i).filter((i) => !placed.has(i));
  // the op that must come next at the latest: the earliest finite return among the rest
  let blocking = rest[0];
  for (const i of rest) if (ops[i].ret < ops[blocking].ret) blocking = i;
  const limit = ops[blocking].ret;
  const unplaceable = rest
    .filter((i) => ops[i].call <= limit)
    .sort((a, b) => ops[a].call - ops[b].call)
    .map((i) => {
      const next = model.step(state, model.prepare(ops[i]));
      const why = next < 0 ? model.explain(state, ops[i]) : `placing it here leads to a dead end later (value would become ${model.show(next)})`;
      return { op: ops[i], why };
    });
  const lines = [
    `longest linearizable prefix (${prefix.length} of ${ops.length} ops):`,
    ...prefix.map((i) => `  ${describeOp(ops[i])}`),
    `register value after it: ${model.show(state)}`,
    `must be placed next at the latest: ${describeOp(ops[blocking])}`,
    'no op that could come next fits:',
    ...unplaceable.map((u) => `  ${describeOp(u.op)}: ${u.why}`),
  ];
  return {
    linearized: prefix.map((i) => ops[i]),
    state: model.valueOf(state),
    blocking: ops[blocking],
    unplaceable,
    text: lines.join('\n'),
  };
}

// ---------------------------------------------------------------------------------------------
// checkCounters
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} CounterResult
 * @property {string} key
 * @property {number} acked        sum of the deltas of ok increments
 * @property {number} unknown      sum of the deltas of info increments (with negative deltas: see low/high)
 * @property {number} low          least value the final read may show: acked + negative info deltas
 * @property {number} high         greatest: acked + positive info deltas
 * @property {Scalar[]} final      the ok final reads of the key (null = absent = 0)
 * @property {'ok' | 'evicted' | 'lost' | 'applied twice' | 'duplicate results' | 'corrupt' | 'no final read' | 'not a counter'} verdict
 * @property {string} [detail]
 */

/**
 * For every key that saw incr: each ok final read must lie in [acked + negative info deltas,
 * acked + positive info deltas] (with deltas ≥ 0: acked ≤ final ≤ acked + unknown); and when every
 * delta is positive, the results of ok increments must be distinct (two equal results = a lost
 * update). A key that also saw set/cas/delete is 'not a counter' and a key without an ok final
 * read is 'no final read': both make the verdict 'unknown', never valid.
 * With `evictions` (a cache under memory pressure), a counter some member evicted restarts from
 * absent: it may end below its acknowledged increments (verdict 'evicted'), but not below those
 * invoked after its last eviction, whose results must also be distinct; above acked + unknown is
 * still 'applied twice'.
 * @param {Op[]} ops
 * @param {{ evictions?: Evictions }} [options]
 * @returns {{ valid: true | false | 'unknown', counters: CounterResult[] }}
 */
export function checkCounters(ops, options = {}) {
  /** @type {Map<string, Op[]>} */
  const byKey = new Map();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  /** @type {CounterResult[]} */
  const counters = [];
  /** @type {Array<true | false | 'unknown'>} */
  const verdicts = [];
  for (const key of [...byKey.keys()].sort()) {
    const list = /** @type {Op[]} */ (byKey.get(key));
    if (!list.some((o) => o.f === 'incr')) continue;
    let acked = 0, low = 0, high = 0, unknown = 0, allPositive = true;
    for (const o of list) {
      if (o.f !== 'incr' || o.status === 'fail') continue;
      if (o.input <= 0) allPositive = false;
      if (o.status === 'ok') acked += o.input;
      else { unknown += o.input; if (o.input < 0) low += o.input; else high += o.input; }
    }
    low += acked; high += acked;
    const final = list.filter((o) => o.f === 'final' && o.status === 'ok').map((o) => o.output);
    /** @type {CounterResult} */
    const r = { key, acked, unknown, low, high, final, verdict: 'ok' };
    const evictedAt = options.evictions?.get(key)?.at(-1);
    // ops invoked after this began after the key's last eviction
    const since = evictedAt === undefined ? -Infinity : evictedAt + EVICTION_SLACK_MS;
    const writers = list.filter((o) => o.f === 'set' || o.f === 'cas' || o.f === 'delete');
    if (writers.length > 0) {
      r.verdict = 'not a counter';
      r.detail = `${writers.length} set/cas/delete ops on a counter key (first: #${writers[0].id}); bounds do not apply`;
    } else if (final.length === 0) {
      r.verdict = 'no final read';
    } else {
      const bad = final.find((v) => v !== null && !Number.isSafeInteger(v));
      const values = final.map((v) => (v === null ? 0 : /** @type {number} */ (v)));
      if (bad !== undefined) {
        r.verdict = 'corrupt';
        r.detail = `final read ${JSON.stringify(bad)} is not an integer`;
      } else if (values.some((v) => v > high)) {
        r.verdict = 'applied twice';
        r.detail = `final ${Math.max(...values)} > acked ${acked} + unknown ${high - acked}: an increment was applied more than once (or a value came from nowhere)`;
      } else if (values.some((v) => v < low) && evictedAt !== undefined) {
        // every increment invoked after the last eviction went to one life of the counter, on
        // the primary and (the state is replicated) on its copies: those must all be there
        let after = 0;
        for (const o of list) if (o.f === 'incr' && ((o.status === 'ok' && o.call > since) || (o.status === 'info' && o.input < 0))) after += o.input;
        if (values.some((v) => v < after)) {
          r.verdict = 'lost';
          r.detail = `final ${Math.min(...values)} < ${after}, the increments acknowledged after its last eviction (at ${evictedAt}): an acknowledged increment was lost`;
        } else {
          r.verdict = 'evicted';
          r.detail = `final ${Math.min(...values)} < acked ${acked}; members evicted it ${options.evictions?.get(key)?.length} times, the last at ${evictedAt}`;
        }
      } else if (values.some((v) => v < low)) {
        r.verdict = 'lost';
        r.detail = `final ${Math.min(...values)} < acked ${acked}${low !== acked ? ` - ${acked - low} (negative unknown deltas)` : ''}: an acknowledged increment was lost`;
      }
      if ((r.verdict === 'ok' || r.verdict === 'evicted') && allPositive) {
        /** @type {Map<number, Op>} */
        const seen = new Map();
        for (const o of list) {
          if (o.f !== 'incr' || o.status !== 'ok' || o.call <= since) continue;
          const other = seen.get(o.output);
          if (other !== undefined) {
            r.verdict = 'duplicate results';
            r.detail = `incr #${other.id} and #${o.id} both returned ${o.output}: a lost update`;
            break;
          }
          seen.set(o.output, o);
        }
      }
    }
    counters.push(r);
    verdicts.push(r.verdict === 'ok' || r.verdict === 'evicted' ? true : r.verdict === 'no final read' || r.verdict === 'not a counter' ? 'unknown' : false);
  }
  return { valid: combine(verdicts), counters };
}

// ---------------------------------------------------------------------------------------------
// checkAckedWrites
// ---------------------------------------------------------------------------------------------

/**
 * @typedef {object} WriteProblem
 * @property {string} key
 * @property {Scalar} value     the value the final read should have shown (lost), or showed (stale, corrupt)
 * @property {number | string} id  the acknowledged set (lost), or the final read (stale, corrupt)
 * @property {string} detail
 */

/**
 * For keys written only with set (the harness writes unique keys once): every ok set must be
 * visible to the ok final reads of its key. A final of null where an ok set exists is 'lost'; a
 * final showing a value no set wrote (or only a failed set wrote) is 'corrupt'; a final showing a
 * written value that a later acknowledged set (strictly after it in real time) overwrote is 'stale'.
 * A set that ended info may or may not show. Keys with incr, cas or delete are skipped (the other
 * checkers judge them); an acked key without a final read makes the verdict 'unknown'.
 * With `evictions` (a cache under memory pressure), a final of null is 'vanished', not 'lost',
 * where some member evicted the key after its first acknowledged set was invoked: a cache may drop
 * any key, but only by evicting it.
 * @param {Op[]} ops
 * @param {{ evictions?: Evictions }} [options]
 * @returns {{ valid: true | false | 'unknown', lost: WriteProblem[], vanished: WriteProblem[], stale: WriteProblem[], corrupt: WriteProblem[], unread: string[], keys: number, skipped: string[] }}
 */
export function checkAckedWrites(ops, options = {}) {
  /** @type {Map<string, Op[]>} */
  const byKey = new Map();
  for (const op of ops) {
    let list = byKey.get(op.key);
    if (list === undefined) byKey.set(op.key, (list = []));
    list.push(op);
  }
  /** @type {WriteProblem[]} */ const lost = [];
  /** @type {WriteProblem[]} */ const vanished = [];
  /** @type {WriteProblem[]} */ const stale = [];
  /** @type {WriteProblem[]} */ const corrupt = [];
  /** @type {string[]} */ const unread = [];
  /** @type {string[]} */ const skipped = [];
  let checked = 0;
  for (const key of [...byKey.keys()].sort()) {
    const list = /** @type {Op[]} */ (byKey.get(key));
    const sets = list.filter((o) => o.f === 'set');
    if (sets.length === 0) continue;
    if (list.some((o) => o.f === 'incr' || o.f === 'cas' || o.f === 'delete')) { skipped.push(key); continue; }
    checked++;
    const acked = sets.filter((o) => o.status === 'ok');
    const maybe = sets.filter((o) => o.status === 'info');
    const finals = list.filter((o) => o.f === 'final' && o.status === 'ok');
    if (finals.length === 0) {
      if (acked.length > 0) unread.push(key);
      continue;
    }
    for (const fin of finals) {
      const v = fin.output;
      if (v === null) {
        if (acked.length > 0) {
          const last = latestAcked(acked);
          const first = Math.min(...acked.map((a) => a.call));
          const ev = options.evictions?.get(key)?.find((t) => t + EVICTION_SLACK_MS >= first);
          if (ev !== undefined) vanished.push({ key, value: last.input, id: last.id, detail: `final read #${fin.id} saw nothing; a member evicted it at ${ev}` });
          else lost.push({ key, value: last.input, id: last.id, detail: `final read #${fin.id} saw nothing; set #${last.id} of ${JSON.stringify(last.input)} was acknowledged${options.evictions ? ' and no member evicted it' : ''}` });
        }
        continue;
      }
      const writers = [...acked, ...maybe].filter((o) => o.input === v);
      if (writers.length === 0) {
        const failed = sets.find((o) => o.status === 'fail' && o.input === v);
        corrupt.push({ key, value: v, id: fin.id, detail: failed ? `final read #${fin.id} saw ${JSON.stringify(v)}, written only by set #${failed.id}, which failed` : `final read #${fin.id} saw ${JSON.stringify(v)}, which no set of this key wrote` });
        continue;
      }
      // acceptable when some writer of v is info (it may land at any time) or is an ok set that
      // no ok set strictly follows in real time
      const fine = writers.some((w) => w.status === 'info' || !acked.some((a) => a !== w && w.ret < a.call));
      if (!fine) {
        const over = acked.find((a) => writers.every((w) => w.ret < a.call && a !== w));
        stale.push({ key, value: v, id: fin.id, detail: `final read #${fin.id} saw ${JSON.stringify(v)}, overwritten by acknowledged set #${over?.id} of ${JSON.stringify(over?.input)}` });
      }
    }
  }
  const bad = lost.length + stale.length + corrupt.length > 0;
  return { valid: bad ? false : unread.length > 0 ? 'unknown' : true, lost, vanished, stale, corrupt, unread, keys: checked, skipped };
}

/** The ok set with the latest invoke (the one a final read must show, for a key written once). @param {Op[]} acked */
function latestAcked(acked) {
  let last = acked[0];
  for (const a of acked) if (a.call > last.call) last = a;
  return last;
}

// ---------------------------------------------------------------------------------------------
// summarize
// ---------------------------------------------------------------------------------------------

/**
 * A short text and a JSON-able object for the harness's summary file. Pass whichever results you
 * have: `{ linearizable, counters, ackedWrites }` (the return values of the three checkers).
 * @param {{ linearizable?: ReturnType<typeof checkLinearizable>, counters?: ReturnType<typeof checkCounters>, ackedWrites?: ReturnType<typeof checkAckedWrites> }} results
 * @returns {{ valid: true | false | 'unknown', text: string, json: Record<string, any> }}
 */
export function summarize(results) {
  /** @type {string[]} */
  const lines = [];
  /** @type {Record<string, any>} */
  const json = {};
  /** @type {Array<true | false | 'unknown'>} */
  const verdicts = [];
  const word = (/** @type {true | false | 'unknown'} */ v) => (v === true ? 'valid' : v === false ? 'INVALID' : 'unknown');

  const lin = results.linearizable;
  if (lin) {
    verdicts.push(lin.valid);
    const bad = lin.keys.filter((k) => k.valid === false);
    const unk = lin.keys.filter((k) => k.valid === 'unknown');
    const nops = lin.keys.reduce((s, k) => s + k.ops, 0);
    const explored = lin.keys.reduce((s, k) => s + k.explored, 0);
    lines.push(`linearizability: ${word(lin.valid)} (${lin.keys.length} keys, ${nops} ops, ${explored} search steps; ${bad.length} invalid, ${unk.length} unknown)`);
    for (const k of bad.slice(0, 3)) {
      lines.push(`  key ${JSON.stringify(k.key)} is not linearizable:`);
      for (const l of (k.counterexample?.text ?? '').split('\n').slice(-12)) lines.push(`    ${l}`);
    }
    if (bad.length > 3) lines.push(`  ... and ${bad.length - 3} more invalid keys`);
    if (unk.length > 0) lines.push(`  unknown (search budget exceeded): ${unk.map((k) => JSON.stringify(k.key)).join(', ')}`);
    json.linearizable = {
      valid: lin.valid,
      keys: lin.keys.length,
      ops: nops,
      explored,
      invalid: bad.map((k) => ({ key: k.key, ops: k.ops, counterexample: k.counterexample && jsonCounterexample(k.counterexample) })),
      unknown: unk.map((k) => k.key),
    };
  }
  const cnt = results.counters;
  if (cnt) {
    verdicts.push(cnt.valid);
    const bad = cnt.counters.filter((c) => c.verdict !== 'ok' && c.verdict !== 'evicted');
    const evicted = cnt.counters.filter((c) => c.verdict === 'evicted').length;
    lines.push(`counters: ${word(cnt.valid)} (${cnt.counters.length} counters, ${bad.length} with problems${evicted > 0 ? `, ${evicted} evicted` : ''})`);
    for (const c of bad) lines.push(`  ${JSON.stringify(c.key)}: ${c.verdict}${c.detail ? ` (${c.detail})` : ''}`);
    json.counters = { valid: cnt.valid, counters: cnt.counters };
  }
  const aw = results.ackedWrites;
  if (aw) {
    verdicts.push(aw.valid);
    lines.push(`acknowledged writes: ${word(aw.valid)} (${aw.keys} keys; ${aw.lost.length} lost, ${aw.stale.length} stale, ${aw.corrupt.length} corrupt, ${aw.unread.length} never read back${aw.vanished.length > 0 ? `; ${aw.vanished.length} evicted` : ''})`);
    for (const p of [...aw.lost.map((p) => ['lost', p]), ...aw.stale.map((p) => ['stale', p]), ...aw.corrupt.map((p) => ['corrupt', p])].slice(0, 10)) {
      lines.push(`  ${p[0]}: ${/** @type {WriteProblem} */ (p[1]).detail}`);
    }
    json.ackedWrites = { valid: aw.valid, keys: aw.keys, lost: aw.lost, vanished: aw.vanished.length, stale: aw.stale, corrupt: aw.corrupt, unread: aw.unread, skipped: aw.skipped.length };
  }
  const valid = combine(verdicts);
  json.valid = valid;
  return { valid, text: [`overall: ${word(valid)}`, ...lines].join('\n'), json };
}

/** @param {Counterexample} c */
function jsonCounterexample(c) {
  const plain = (/** @type {Op} */ o) => ({ ...o, ret: o.ret === Infinity ? null : o.ret });
  return {
    linearized: c.linearized.map(plain),
    state: c.state,
    blocking: plain(c.blocking),
    unplaceable: c.unplaceable.map((u) => ({ op: plain(u.op), why: u.why })),
    text: c.text,
  };
}
