// A deliberately naive linearizability checker, to cross-check checker.mjs on small histories.
// It shares no code with checker.mjs: its own sequential model, no event list, no memo, no
// partitioning by key. For every subset of the info ops it tries every order of the chosen ops
// that respects real time (a before b when a.ret < b.call), pruning an order as soon as one of its
// ops is impossible. Exponential: for histories of a dozen ops or fewer.

/**
 * One step of a multi-key store. Returns false when the recorded result is impossible.
 * @param {Map<string, any>} store @param {import('./checker.mjs').Op} op
 */
function step(store, op) {
  const cur = store.has(op.key) ? store.get(op.key) : null;
  const known = op.status === 'ok';
  switch (op.f) {
    case 'get':
    case 'final':
      return !known || op.output === cur;
    case 'set':
      store.set(op.key, op.input);
      return true;
    case 'delete':
      if (known && op.output !== (cur !== null)) return false;
      store.delete(op.key);
      return true;
    case 'cas': {
      const hit = cur === op.input[0];
      if (known && op.output !== hit) return false;
      if (hit) store.set(op.key, op.input[1]);
      return true;
    }
    case 'incr': {
      if (cur !== null && typeof cur !== 'number') return false;
      const next = (cur ?? 0) + op.input;
      if (known && op.output !== next) return false;
      store.set(op.key, next);
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
