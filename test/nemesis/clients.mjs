// Recording clients: lite members inside the harness process, `concurrency` logical clients
// (procs) issuing operations, every one recorded as an invoke line and exactly one completion
// line (history format: see README.md).
//
// Outcome rules (Jepsen's): `ok` when the call resolved; `fail` only for the errors the library
// raises before anything is sent (validation of the key and value: see DEFINITELY_NOT_APPLIED);
// everything else, and a call still pending after the client timeout, is `info` (it may or may
// not have happened). A proc whose op ended `info` retires and its loop continues as a fresh proc.
import { createWriteStream } from 'node:fs';
import { createGrid } from '../../dist/index.js';
import { freePort } from './proxy.mjs';

/**
 * Error codes thrown by GridMap argument checks before a request leaves the process: the only
 * errors recorded as `fail`. Kept short on purpose: a code raised after sending (timeouts, member
 * unreachable or left, closed grid, internal errors, wrong type raised by the owner...) is `info`.
 */
export const DEFINITELY_NOT_APPLIED = new Set([
  'GRID_ERR_INVALID_ARGUMENT',
  'GRID_ERR_KEY_TOO_LARGE',
  'GRID_ERR_VALUE_TOO_LARGE',
  'GRID_ERR_UNENCODABLE_VALUE',
]);

const WRITES = new Set(['set', 'incr', 'cas', 'delete']);

/** The recorder: one JSON line per event, to a file and (for the checkers) to memory. */
export class History {
  constructor(file) {
    this.file = file;
    this.out = file === undefined ? undefined : createWriteStream(file);
    /** @type {string[]} */
    this.lines = [];
    this.nextId = 1;
    /** counts[f][type] */
    this.counts = {};
    /** completion times of ok writes, in order */
    this.okWriteTimes = [];
    this.errors = {};
    /** the greatest proc number used so far: fresh procs start above it */
    this.maxProc = -1;
  }

  now() {
    return Math.round(performance.now() * 1000) / 1000;
  }

  write(o) {
    const line = JSON.stringify(o);
    this.lines.push(line);
    this.out?.write(`${line}\n`);
  }

  invoke(proc, f, key, value) {
    const op = { id: this.nextId++, proc, f, key, value, t: this.now() };
    if (proc > this.maxProc) this.maxProc = proc;
    this.write({ id: op.id, proc, type: 'invoke', f, key, value, t: op.t });
    return op;
  }

  complete(op, type, value, err) {
    const t = Math.max(this.now(), op.t);
    const rec = { id: op.id, proc: op.proc, type, f: op.f, key: op.key, value, t };
    // why an op failed or is unknown, for diagnosis (the checkers read only the fields above)
    if (err !== undefined) rec.err = err instanceof Error ? `${err.code ?? err.name}: ${err.message.slice(0, 160)}` : String(err).slice(0, 160);
    this.write(rec);
    const c = (this.counts[op.f] ??= { ok: 0, fail: 0, info: 0 });
    c[type]++;
    if (type === 'ok' && WRITES.has(op.f)) this.okWriteTimes.push(t);
    if (err !== undefined) {
      const code = err?.code ?? (err instanceof Error ? err.message.slice(0, 60) : String(err));
      this.errors[code] = (this.errors[code] ?? 0) + 1;
    }
  }

  close() {
    return new Promise((resolve) => (this.out === undefined ? resolve() : this.out.end(resolve)));
  }
}

class ClientTimeout extends Error {
  constructor(ms) {
    super(`no answer within ${ms} ms`);
    this.code = 'CLIENT_TIMEOUT';
  }
}

/** Runs `call` and records it: ok / fail / info. Returns { type, value }. */
export async function recorded(history, proc, f, key, invokeValue, call, timeoutMs, toOk = (v) => v) {
  const op = history.invoke(proc, f, key, invokeValue);
  let timer;
  try {
    const v = await Promise.race([
      call(),
      new Promise((_, reject) => {
        timer = setTimeout(() => reject(new ClientTimeout(timeoutMs)), timeoutMs);
      }),
    ]);
    const value = toOk(v);
    history.complete(op, 'ok', value);
    return { type: 'ok', value };
  } catch (err) {
    const type = DEFINITELY_NOT_APPLIED.has(err?.code) ? 'fail' : 'info';
    history.complete(op, type, null, err);
    return { type, err };
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Starts a lite member behind its own proxy, dialling from `ip`, known to the network as `name`.
 * Its port was free when picked, but another process on the machine can take it before the grid
 * binds it (`--seed 40000` schedules 41 and 70, beside other test runs): then it starts again on
 * a new port behind the same proxy, as `Cluster.launch` (cluster.mjs) does for members.
 */
export async function startLite({ network, name, ip, seeds, secret }) {
  let port = await freePort();
  network.addNode(name, ip);
  const proxy = await network.proxy(name, 0, port);
  for (let attempt = 1; ; attempt++) {
    try {
      const grid = await createGrid({
        workers: 1,
        memory: '16MB',
        cluster: { lite: true, host: '127.0.0.1', port, advertise: `127.0.0.1:${proxy.listenPort}`, seeds, secret, sourceAddress: ip },
      });
      return { name, grid, map: grid.map('nemesis') };
    } catch (err) {
      if (!/EADDRINUSE/.test(String(err?.message)) || attempt >= 3) throw err;
      port = await freePort();
      proxy.targetPort = port;
    }
  }
}

const absent = (v) => (v === undefined ? null : v);

/**
 * The kv workload's operations on the coordination primitives of a (lite) member's grid.cp, for
 * `--workload cp`: a counter key (`c…`) is an atomicLong (`increment` = addAndGet, a final read =
 * get), a register key (`r…`) an atomicRef (get, set, compareAndSet; unset reads as absent). The
 * same checkers then judge them: counters by their bounds and distinct results, registers by
 * per-key linearizability. No unique keys: each would be a primitive of its own.
 */
export function cpMap(grid) {
  const cp = grid.cp;
  return {
    get: async (key) => (key.startsWith('c') ? Number(await cp.atomicLong(key).get()) : cp.atomicRef(key).get()),
    set: (key, v) => cp.atomicRef(key).set(v),
    compareAndSet: (key, expected, next) => cp.atomicRef(key).compareAndSet(expected, next),
    increment: async (key, d) => Number(await cp.atomicLong(key).addAndGet(d)),
  };
}

/**
 * The workload. `mix` weights the three families: `unique` (a set of a key written once: the
 * acknowledged-write check), `incr` (+1 on one of `counters` shared counters), `register` (get,
 * set or cas on one of `registers` keys with values unique per proc: the linearizability check).
 */
export const DEFAULT_MIX = Object.freeze({ unique: 4, incr: 3, register: 3 });

export class Clients {
  /**
   * @param {{ history: History, lites: { map: any }[], concurrency?: number, mix?: {unique:number,incr:number,register:number},
   *           counters?: number, registers?: number, timeoutMs?: number, random?: () => number, cas?: boolean,
   *           pad?: string }} o  pad: appended to every unique key's value as stored (the history
   *           records the value without it; finalReads's `unpad` takes it off again)
   */
  constructor(o) {
    this.history = o.history;
    this.lites = o.lites;
    this.concurrency = o.concurrency ?? 64;
    this.mix = { unique: 0, incr: 0, register: 0, ...(o.mix ?? DEFAULT_MIX) };
    this.counters = o.counters ?? 20;
    this.registers = o.registers ?? 20;
    this.timeoutMs = o.timeoutMs ?? 20_000;
    this.pad = o.pad ?? '';
    this.random = o.random ?? Math.random;
    // register ops: get 0.5, set 0.3, cas 0.2 of the register share; without cas, get and set only
    this.registerWeight = o.cas === false ? 0.8 : 1;
    this.nextProc = this.concurrency;
    this.stopping = false;
    this.loops = [];
    /** per register key, the last value a client saw there (cas uses it as `expected`) */
    this.seen = new Map();
    /** every unique key written (final reads) */
    this.uniqueKeys = [];
    this.procsRetired = 0;
  }

  counterKeys() {
    return Array.from({ length: this.counters }, (_, i) => `c${i}`);
  }

  registerKeys() {
    return Array.from({ length: this.registers }, (_, i) => `r${i}`);
  }

  start() {
    for (let i = 0; i < this.concurrency; i++) this.loops.push(this.loop(i));
    return this;
  }

  async stop() {
    this.stopping = true;
    await Promise.all(this.loops);
  }

  pick() {
    const { unique, incr, register } = this.mix;
    const x = this.random() * (unique + incr + register);
    return x < unique ? 'unique' : x < unique + incr ? 'incr' : 'register';
  }

  async loop(i) {
    const map = this.lites[i % this.lites.length].map;
    const h = this.history;
    const T = this.timeoutMs;
    let proc = i;
    let n = 0;
    while (!this.stopping) {
      const family = this.pick();
      let r;
      if (family === 'unique') {
        const key = `u${h.nextId}`;
        const value = `v${h.nextId}`;
        this.uniqueKeys.push(key);
        const stored = this.pad === '' ? value : value + this.pad;
        r = await recorded(h, proc, 'set', key, value, () => map.set(key, stored), T, () => value);
      } else if (family === 'incr') {
        const key = `c${Math.floor(this.random() * this.counters)}`;
        r = await recorded(h, proc, 'incr', key, 1, () => map.increment(key, 1), T);
      } else {
        const key = `r${Math.floor(this.random() * this.registers)}`;
        const x = this.random() * this.registerWeight;
        if (x < 0.5) {
          r = await recorded(h, proc, 'get', key, null, () => map.get(key), T, absent);
          if (r.type === 'ok') this.seen.set(key, r.value);
        } else if (x < 0.8) {
          const value = `p${proc}-${n++}`;
          r = await recorded(h, proc, 'set', key, value, () => map.set(key, value), T, () => value);
        } else {
          const expected = this.seen.get(key) ?? null;
          const next = `p${proc}-${n++}`;
          r = await recorded(h, proc, 'cas', key, [expected, next], () => map.compareAndSet(key, expected ?? undefined, next), T, (ok) => ok === true);
        }
      }
      if (r.type === 'info') {
        // Jepsen: a proc with an operation in doubt never issues again; this loop goes on as a new proc
        proc = this.nextProc++;
        this.procsRetired++;
        n = 0;
      }
    }
  }
}

/**
 * After healing: a `final` read of every key through `map`, appended to the history. A read that
 * does not answer is retried (as a fresh proc) up to `attempts` times. No read starts after
 * `limitMs`: against a cluster that does not answer, the keys left are reported unread (the
 * checkers then say 'unknown' for them) instead of costing attempts × timeout each.
 */
export async function finalReads(history, map, keys, { parallel = 32, attempts = 5, timeoutMs = 20_000, firstProc, limitMs = 120_000, pad = '' } = {}) {
  // a unique key's value as stored ends with the pad: recorded without it; a value that should
  // end with it and does not is recorded whole (the checker then finds it corrupt)
  const unpad = (v) => (v.endsWith(pad) ? v.slice(0, -pad.length) : `without its pad: ${v.slice(0, 40)}`);
  const toOk = pad === '' ? absent : (v) => (typeof v === 'string' && v.startsWith('v') ? unpad(v) : absent(v));
  // fresh procs, above every proc of the history (a proc never issues again after an info)
  let nextProc = Math.max(firstProc ?? 0, history.maxProc + 1, 1_000_000);
  let i = 0;
  const unread = [];
  const deadline = performance.now() + limitMs;
  const worker = async () => {
    let proc = nextProc++;
    while (i < keys.length) {
      if (performance.now() > deadline) {
        unread.push(...keys.slice(i));
        i = keys.length;
        break;
      }
      const key = keys[i++];
      let done = false;
      for (let a = 0; a < attempts && !done && performance.now() <= deadline; a++) {
        const r = await recorded(history, proc, 'final', key, null, () => map.get(key), timeoutMs, toOk);
        done = r.type === 'ok';
        if (!done) proc = nextProc++;
      }
      if (!done) unread.push(key);
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return { unread };
}

/** The longest interval in [from, to] with no ok write completion (ms). */
export function longestWriteGap(okWriteTimes, from, to) {
  let prev = from;
  let best = { ms: 0, from, to: from };
  for (const t of okWriteTimes) {
    if (t < from) continue;
    if (t > to) break;
    if (t - prev > best.ms) best = { ms: t - prev, from: prev, to: t };
    prev = t;
  }
  if (to - prev > best.ms) best = { ms: to - prev, from: prev, to };
  return { ms: Math.round(best.ms), from: Math.round(best.from), to: Math.round(best.to) };
}
