// A deliberately naive linearizability checker, to cross-check checker.mjs on small histories.
// It shares no code with checker.mjs: its own sequential model, no event list, no memo, no
// partitioning by key. For every subset of the info ops it tries every order of the chosen ops
// that respects real time (a before b when a.ret < b.call), pruning an order as soon as one of its
// ops is impossible. Exponential: for histories of a dozen ops or fewer.

/** The store's entry that says a member evicted `key` since its last write. @param {string} key */
const goneKey = (key) => `\0evicted:${key}`;

/**
 * One step of a multi-key store. Returns false when the recorded result is impossible.
 * An `evict` (a member evicted the key: checker.mjs's evictOps) marks the key; until its next
 * write the primary may have lost it (reads may see absent, an expected absent may match, a
 * delete may find nothing) and a copy may still hold it (the value stays and may read again).
 * @param {Map<string, any>} store @param {import('./checker.mjs').Op} op
 */
function step(store, op) {
  const cur = store.has(op.key) ? store.get(op.key) : null;
  const gone = store.has(goneKey(op.key));
  const known = op.status === 'ok';
  const write = (/** @type {any} */ v) => {
    if (v === null) store.delete(op.key);
    else store.set(op.key, v);
    store.delete(goneKey(op.key));
  };
  switch (op.f) {
    case 'evict':
      store.set(goneKey(op.key), true);
      return true;
    case 'get':
    case 'final':
      return !known || op.output === cur || (gone && op.output === null);
    case 'set':
      write(op.input);
      return true;
    case 'delete':
      if (!known) { write(null); return true; }
      if (op.output === true) { if (cur === null) return false; write(null); return true; }
      return cur === null || gone;
    case 'cas': {
      const hit = cur === op.input[0] || (gone && op.input[0] === null);
      if (known && op.output === false) return cur !== op.input[0] || gone;
      if (known && !hit) return false;
      if (hit) write(op.input[1]);
      return true;
    }
    case 'incr': {
      const fresh = gone ? op.input : undefined; // the primary evicted it: starts again from absent
      const next = cur !== null && typeof cur !== 'number' ? undefined : (cur ?? 0) + op.input;
      if (known) {
        if (op.output === next) { write(next); return true; }
        if (op.output === fresh) { write(fresh); return true; }
        return false;
      }
      if (next === undefined && fresh === undefined) return false;
      write(next ?? fresh);
      return true;
    }
    default:
      throw new Error(`unknown f ${op.f}`);
  }
}

/** @param {import('./checker.mjs').Op[]} ops @returns {boolean} */
export function bruteLinearizable(ops) {
  const live = ops.filter((o) => o.status !== 'fail');
  const required = live.filter((o) => o.status === 'ok');
  const optional = live.filter((o) => o.status !== 'ok');
  for (let mask = 0; mask < 1 << optional.length; mask++) {
    const chosen = [...required, ...optional.filter((_, i) => mask & (1 << i))];
    if (someOrder(chosen)) return true;
  }
  return false;
}

/** @param {import('./checker.mjs').Op[]} chosen */
function someOrder(chosen) {
  const n = chosen.length;
  const used = new Array(n).fill(false);
  /** @param {Map<string, any>} store @param {number} placed @returns {boolean} */
  const go = (store, placed) => {
    if (placed === n) return true;
    for (let i = 0; i < n; i++) {
      if (used[i]) continue;
      // i may come next only if every op that finished before i started is already placed
      let ready = true;
      for (let j = 0; j < n; j++) if (!used[j] && j !== i && chosen[j].ret < chosen[i].call) { ready = false; break; }
      if (!ready) continue;
      const next = new Map(store);
      if (!step(next, chosen[i])) continue;
      used[i] = true;
      const ok = go(next, placed + 1);
      used[i] = false;
      if (ok) return true;
    }
    return false;
  };
  return go(new Map(), 0);
}

/**
 * Plain Wing & Gong / Lowe search for one key, without any of checker.mjs's pruning (no forced
 * placement of pure ops, no dominance between info-op sets, list-order candidates, exact memo on
 * (linearized set as a BigInt, value)). Uses this file's model. For cross-checking checker.mjs on
 * histories too long for bruteLinearizable. Returns 'unknown' past `budgetMs`.
 * @param {import('./checker.mjs').Op[]} keyOps ops of one key
 * @param {number} [budgetMs]
 * @returns {boolean | 'unknown'}
 */
export function plainWgl(keyOps, budgetMs = 2000) {
  const ops = keyOps.filter((o) => o.status !== 'fail');
  /** @type {Array<{ op: number, call: boolean, t: number, prev: any, next: any, ret?: any }>} */
  const evs = [];
  ops.forEach((o, i) => {
    const ret = { op: i, call: false, t: o.ret, prev: null, next: null };
    evs.push({ op: i, call: true, t: o.call, prev: null, next: null, ret }, ret);
  });
  evs.sort((a, b) => (a.t === b.t ? (a.call === b.call ? 0 : a.call ? -1 : 1) : a.t < b.t ? -1 : 1));
  const head = { op: -1, call: false, t: -Infinity, prev: null, next: null };
  let p = head;
  for (const e of evs) { p.next = e; e.prev = p; p = e; }
  const seen = new Set();
  /** @type {Array<{ e: any, store: Map<string, any> }>} */
  const stack = [];
  let lin = 0n;
  let store = new Map();
  let e = head.next;
  const deadline = performance.now() + budgetMs;
  let spins = 0;
  for (;;) {
    if (e === null || (!e.call && e.t === Infinity)) return true;
    if ((++spins & 1023) === 0 && performance.now() > deadline) return 'unknown';
    if (e.call) {
      const next = new Map(store);
      const op = ops[e.op];
      if (step(next, op)) {
        const key = `${(lin | (1n << BigInt(e.op))).toString(36)}|${JSON.stringify(next.get(op.key) ?? null)}|${next.has(goneKey(op.key))}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ e, store });
          store = next;
          lin |= 1n << BigInt(e.op);
          e.prev.next = e.next; e.next.prev = e.prev;
          e.ret.prev.next = e.ret.next; if (e.ret.next) e.ret.next.prev = e.ret.prev;
          e = head.next;
          continue;
        }
      }
      e = e.next;
    } else {
      const top = stack.pop();
      if (top === undefined) return false;
      const c = top.e;
      c.ret.prev.next = c.ret; if (c.ret.next) c.ret.next.prev = c.ret;
      c.prev.next = c; c.next.prev = c;
      lin &= ~(1n << BigInt(c.op));
      store = top.store;
      e = c.next;
    }
  }
}
