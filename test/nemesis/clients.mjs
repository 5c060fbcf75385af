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

  /** `t`: the invoke's time when another process recorded it (member clients), else now. */
  invoke(proc, f, key, value, t = this.now()) {
    const op = { id: this.nextId++, proc, f, key, value, t };
    if (proc > this.maxProc) this.maxProc = proc;
    this.write({ id: op.id, proc, type: 'invoke', f, key, value, t: op.t });
    return op;
  }

  /** `err`: an Error, or its text as another process recorded it; `at`: the completion's time from there, else now. */
  complete(op, type, value, err, at = this.now()) {
    const t = Math.max(at, op.t);
    const rec = { id: op.id, proc: op.proc, type, f: op.f, key: op.key, value, t };
    // why an op failed or is unknown, for diagnosis (the checkers read only the fields above)
    if (err !== undefined) rec.err = err instanceof Error ? `${err.code ?? err.name}: ${err.message.slice(0, 160)}` : String(err).slice(0, 160);
    this.write(rec);
    const c = (this.counts[op.f] ??= { ok: 0, fail: 0, info: 0 });
    c[type]++;
    if (type === 'ok' && WRITES.has(op.f)) this.okWriteTimes.push(t);
    if (err !== undefined) {
      // a member's text is `code: message` (as rec.err above)
      const code = err?.code ?? (err instanceof Error ? err.message.slice(0, 60) : String(err).split(':')[0].slice(0, 60));
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
   *           pad?: string, prefix?: string }} o  pad: appended to every unique key's value as stored (the
   *           history records the value without it; finalReads's `unpad` takes it off again). prefix:
   *           in every unique key and value and register value written, after its first letter, so
   *           clients of several processes, each with a history of its own ids, write distinct ones
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
    this.prefix = o.prefix ?? '';
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
        const key = `u${this.prefix}${h.nextId}`;
        const value = `v${this.prefix}${h.nextId}`;
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
          const value = `p${this.prefix}${proc}-${n++}`;
          r = await recorded(h, proc, 'set', key, value, () => map.set(key, value), T, () => value);
        } else {
          const expected = this.seen.get(key) ?? null;
          const next = `p${this.prefix}${proc}-${n++}`;
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

/**
 * How far apart the clocks of two processes on this host may read (ms): each member op's invoke is
 * recorded this much earlier and its completion this much later than the member said, so its
 * interval in the history holds the real one (performance.timeOrigin + performance.now() agreed
 * within 0.1 ms across processes here: CHECKER.md, evictions).
 */
export const MEMBER_CLOCK_SLACK_MS = 1;

const msHere = (absolute) => Math.round((absolute - performance.timeOrigin) * 1000) / 1000;

/**
 * The harness's side of member clients (member.mjs, `--member-clients N`): each data member
 * process runs N logical clients on its own grid.map and sends every invoke and completion as a
 * line; this turns them into lines of the one history. Member k's incarnation i has procs
 * `m<k>.<i>.<proc>` (strings: never one of the lite clients' numbers), and its unique keys and
 * register values carry `m<k>i<i>.`. An op still open when its process is gone (kill -9, a leave
 * that cut it short) completes as `info`, at the time the harness saw the process gone: a restarted
 * member runs new procs.
 */
export class MemberRecorder {
  /**
   * @param {{ history: History, n: number, mix: object, cas: boolean, timeoutMs: number, pad: string,
   *           seed: number, log?: (line: string) => void }} o
   */
  constructor(o) {
    this.history = o.history;
    this.o = o;
    this.log = o.log ?? (() => undefined);
    /** @type {import('./cluster.mjs').Cluster | undefined} */
    this.cluster = undefined;
    /** `${k}.${i}` -> Map(member's op id -> history op) of incarnations whose events are taken */
    this.open = new Map();
    /** `${k}.${i}` of incarnations told to start and not yet stopped or gone */
    this.running = new Set();
    this.taking = false;
    this.uniqueKeys = [];
    // aheadMs: how much later than the harness's clock when it read it a member stamped an event
    // (at most MEMBER_CLOCK_SLACK_MS, or the slack does not cover the clocks' disagreement)
    this.counts = { invoked: 0, ok: 0, fail: 0, info: 0, lostWithProcess: 0, malformed: 0, aheadMs: 0 };
    this.waiters = [];
  }

  /** member.mjs's --clients for member k's incarnation i */
  config(k, i) {
    const { n, mix, cas, timeoutMs, pad, seed } = this.o;
    return { n, mix, cas, timeoutMs, pad, prefix: `m${k}i${i}.`, seed: (seed ^ Math.imul(k * 1000 + i, 0x9e3779b1)) >>> 0 };
  }

  /** The clients of every running member start, and those of members started from now on. */
  start(cluster) {
    this.cluster = cluster;
    this.taking = true;
    for (const m of cluster.members.values()) if (m.state !== 'down') this.up(m.k, m.incarnation);
  }

  up(k, i) {
    if (!this.taking || this.cluster === undefined) return;
    const inc = `${k}.${i}`;
    if (this.open.has(inc) || !this.cluster.send(k, 'start')) return;
    this.open.set(inc, new Map());
    this.running.add(inc);
  }

  /** One `@h` line of member k's incarnation i. */
  event(k, i, text) {
    const inc = `${k}.${i}`;
    const ops = this.open.get(inc);
    let e;
    try {
      e = JSON.parse(text);
    } catch {
      e = undefined;
    }
    if (e?.e === 'stopped') {
      this.ended(inc);
      return;
    }
    if (ops === undefined || e === undefined || typeof e.t !== 'number') {
      this.counts.malformed++;
      return;
    }
    const h = this.history;
    this.counts.aheadMs = Math.max(this.counts.aheadMs, Math.round((msHere(e.t) - h.now()) * 1000) / 1000);
    if (e.e === 'i') {
      ops.set(e.id, h.invoke(`m${inc}.${e.proc}`, e.f, e.key, e.value, msHere(e.t) - MEMBER_CLOCK_SLACK_MS));
      this.counts.invoked++;
      if (e.f === 'set' && e.key.startsWith('u')) this.uniqueKeys.push(e.key);
    } else if (e.e === 'c' && ops.has(e.id) && (e.type === 'ok' || e.type === 'fail' || e.type === 'info')) {
      h.complete(ops.get(e.id), e.type, e.type === 'ok' ? e.value : null, e.err, msHere(e.t) + MEMBER_CLOCK_SLACK_MS);
      ops.delete(e.id);
      this.counts[e.type]++;
    } else {
      this.counts.malformed++;
    }
  }

  /** Member k's incarnation i is gone and every line it wrote was read: its open ops are in doubt. */
  gone(k, i) {
    const inc = `${k}.${i}`;
    const ops = this.open.get(inc);
    if (ops === undefined) return;
    for (const op of ops.values()) {
      this.history.complete(op, 'info', null, `MEMBER_GONE: member ${k}'s process ended with the op in flight`);
      this.counts.info++;
      this.counts.lostWithProcess++;
    }
    ops.clear();
    this.ended(inc);
  }

  ended(inc) {
    this.running.delete(inc);
    if (this.running.size === 0) for (const w of this.waiters.splice(0)) w();
  }

  /**
   * No member starts clients any more; running ones are told to stop and waited for (their ops end
   * within the client timeout). A member that has not stopped after `limitMs` is killed (its open
   * ops become info when it is gone): nothing may write after the final reads begin.
   */
  async stop(limitMs) {
    this.taking = false;
    if (this.cluster === undefined) return;
    for (const inc of this.running) this.cluster.send(Number(inc.split('.')[0]), 'stop');
    await this.idle(limitMs);
    for (const inc of [...this.running]) {
      const k = Number(inc.split('.')[0]);
      this.log(`member ${k}'s clients did not stop within ${limitMs} ms: kill -9`);
      await this.cluster.kill9(k);
    }
    await this.idle(10_000); // gone() comes once the killed process's last lines are read
  }

  /** Resolves once no incarnation runs clients, or after ms. */
  idle(ms) {
    if (this.running.size === 0) return Promise.resolve();
    return Promise.race([new Promise((r) => this.waiters.push(r)), new Promise((r) => setTimeout(r, ms).unref())]);
  }
}
