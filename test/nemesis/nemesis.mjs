// Nemeses and seeded schedules.
//
// A schedule is a list of fault events, one fault at a time: each is healed (and whatever it took
// down is running again) before the next starts. It is a pure function of (seed, index, options),
// so a failing run is replayed with the same --seed and its schedule number. Targets are member
// numbers chosen when the schedule is made, except 'leader', resolved when the fault starts (the
// member status calls the coordinator).
import { memberName, sleep } from './cluster.mjs';

/** mulberry32 over a 32-bit state (histgen.mjs): small, fast, good enough for choosing faults. */
import { rng as prng } from './histgen.mjs';

export { prng };

/** The generator of schedule `index` of run `seed` (independent streams per index). */
export function scheduleRandom(seed, index) {
  // splitmix-style mixing of (seed, index) into one 32-bit seed
  let z = (Math.imul(seed >>> 0, 0x9e3779b1) ^ Math.imul((index + 1) >>> 0, 0x85ebca77)) >>> 0;
  z = Math.imul(z ^ (z >>> 16), 0x7feb352d) >>> 0;
  z = Math.imul(z ^ (z >>> 15), 0x846ca68b) >>> 0;
  return prng((z ^ (z >>> 16)) >>> 0);
}

export const FAULTS = Object.freeze(['pause', 'kill', 'restart', 'leave', 'isolate', 'oneway']);

const int = (rnd, lo, hi) => lo + Math.floor(rnd() * (hi - lo + 1));
const choose = (rnd, xs) => xs[Math.floor(rnd() * xs.length)];

/**
 * Makes schedule `index` of run `seed`.
 * @param {{ seed: number, index: number, duration?: number, faults?: string[], members?: number, beyondTolerance?: boolean }} o
 * @returns {{ seed: number, index: number, duration: number, events: object[] }}
 */
export function makeSchedule(o) {
  const rnd = scheduleRandom(o.seed, o.index);
  const duration = o.duration ?? 20_000;
  const faults = o.faults ?? FAULTS;
  for (const f of faults) if (!FAULTS.includes(f)) throw new Error(`unknown fault ${f} (known: ${FAULTS.join(', ')})`);
  const n = o.members ?? 3;
  const members = Array.from({ length: n }, (_, i) => i + 1);
  const events = [];
  // a quiet start, so the history has writes before the first fault
  let at = int(rnd, 1000, 2500);
  while (true) {
    const kind = choose(rnd, faults);
    const e = { kind, at };
    if (o.beyondTolerance === true) {
      // two members down at once: more than backups=1 tolerates
      const [a, b] = twoOf(rnd, members);
      e.targets = [a, b];
      if (kind === 'pause') e.ms = int(rnd, 1000, 8000);
      else if (kind === 'isolate' || kind === 'oneway') {
        e.kind = 'isolate';
        e.ms = int(rnd, 1000, 8000);
        e.mode = choose(rnd, ['blackhole', 'reset']);
        e.clients = rnd() < 0.5;
      } else {
        e.kind = kind === 'leave' ? 'leave' : 'kill';
        e.downMs = kind === 'restart' ? 0 : int(rnd, 1000, 5000);
      }
    } else if (kind === 'pause') {
      e.target = rnd() < 0.4 ? 'leader' : choose(rnd, members);
      e.ms = int(rnd, 1000, 8000);
    } else if (kind === 'kill') {
      e.target = rnd() < 0.3 ? 'leader' : choose(rnd, members);
      e.downMs = int(rnd, 1000, 5000);
    } else if (kind === 'restart') {
      // kill -9 and an immediate replacement (a crash loop's restart)
      e.target = choose(rnd, members);
      e.downMs = 0;
    } else if (kind === 'leave') {
      e.target = choose(rnd, members);
      e.downMs = int(rnd, 1000, 5000);
    } else if (kind === 'isolate') {
      e.target = rnd() < 0.3 ? 'leader' : choose(rnd, members);
      e.ms = int(rnd, 1000, 8000);
      e.mode = choose(rnd, ['blackhole', 'reset']);
      e.clients = rnd() < 0.5; // also cut the clients off from it
    } else if (kind === 'oneway') {
      const [hearer, speaker] = twoOf(rnd, members);
      e.hearer = hearer; // still hears the speaker; nothing it sends reaches the speaker
      e.speaker = speaker;
      e.ms = int(rnd, 1000, 8000);
      e.mode = 'blackhole';
    }
    events.push(e);
    // a fault's own length is not known ahead (restarts take what they take): the runner waits
    // at least `gap` after a fault ends before the next one, and starts none after `duration`
    e.gap = int(rnd, 1000, 3000);
    at += faultLength(e) + e.gap;
    if (at >= duration - 1000) break;
  }
  return { seed: o.seed, index: o.index, duration, events };
}

function twoOf(rnd, members) {
  const a = choose(rnd, members);
  const b = choose(rnd, members.filter((m) => m !== a));
  return [a, b];
}

/** The planned length of a fault (restarts add the time a member takes to start). */
function faultLength(e) {
  return (e.ms ?? 0) + (e.downMs ?? 0) + (e.kind === 'kill' || e.kind === 'restart' || e.kind === 'leave' ? 1500 : 0);
}

/** A one-line description of an event, for logs and summaries. */
export function describeEvent(e) {
  const who = e.targets !== undefined ? e.targets.map((k) => `m${k}`).join('+') : e.target === 'leader' ? 'leader' : e.target !== undefined ? `m${e.target}` : '';
  switch (e.kind) {
    case 'pause':
      return `pause ${who} ${e.ms} ms`;
    case 'kill':
      return `kill -9 ${who}, restart after ${e.downMs} ms`;
    case 'restart':
      return `kill -9 ${who}, restart at once`;
    case 'leave':
      return `leave ${who} (SIGTERM), restart after ${e.downMs} ms`;
    case 'isolate':
      return `isolate ${who} ${e.ms} ms (${e.mode}${e.clients ? ', clients too' : ', clients still reach it'})`;
    case 'oneway':
      return `one-way ${e.ms} ms: m${e.hearer} hears m${e.speaker}, m${e.speaker} does not hear m${e.hearer} (${e.mode})`;
    default:
      return e.kind;
  }
}

/**
 * Runs a schedule against a cluster and its network, from now (t0 = start). Returns the events
 * as they happened: { ...event, target resolved, start, end (performance.now ms), error? }.
 * `clients` are the names of the client nodes (for isolations that include clients).
 */
export async function runSchedule(schedule, { cluster, network, clients = [], log = () => undefined, until, recoverLimitMs = 20_000 }) {
  const t0 = performance.now();
  const done = [];
  let nextAt = 0;
  for (const e of schedule.events) {
    const wait = Math.max(e.at, nextAt) - (performance.now() - t0);
    if (wait > 0) await sleep(wait);
    // a random schedule stops at its duration; a scenario runs every event (its duration is a minimum)
    if ((schedule.scenario === undefined && performance.now() - t0 >= schedule.duration) || (until !== undefined && until())) break;
    const rec = { ...e, start: performance.now() };
    try {
      if (rec.target === 'leader') {
        rec.target = (await cluster.leader()) ?? 1;
        rec.leader = true;
      }
      rec.description = describeEvent(rec);
      log(`fault: ${rec.description}`);
      await applyFault(rec, { cluster, network, clients });
    } catch (err) {
      rec.error = String(err?.stack ?? err);
      log(`fault ${rec.description ?? rec.kind} failed: ${rec.error}`);
      network.heal();
      for (const k of [...cluster.members.keys()]) if (cluster.members.get(k).state === 'down') await cluster.launch(k).catch(() => undefined);
    }
    rec.end = performance.now();
    log(`healed: ${rec.description} (${Math.round(rec.end - rec.start)} ms)`);
    // one fault at a time: the next starts only once the members agree again (or recoverLimitMs
    // passed: then the schedule goes on, and the event says the cluster had not recovered)
    const rc = await cluster.waitConverged(recoverLimitMs);
    rec.recovered = rc.ok;
    rec.recoveryMs = rc.ms;
    if (!rc.ok) log(`not recovered ${rc.ms} ms after ${rec.description}: ${rc.why}`);
    done.push(rec);
    nextAt = performance.now() - t0 + e.gap;
  }
  return done;
}

async function applyFault(e, { cluster, network, clients }) {
  const members = [...cluster.members.keys()].map(memberName);
  switch (e.kind) {
    case 'pause': {
      const ks = e.targets ?? [e.target];
      await Promise.all(ks.map((k) => cluster.pause(k, e.ms)));
      return;
    }
    case 'kill':
    case 'restart': {
      const ks = e.targets ?? [e.target];
      await Promise.all(ks.map((k) => cluster.kill9(k)));
      if (e.downMs > 0) await sleep(e.downMs);
      for (const k of ks) await cluster.launch(k);
      return;
    }
    case 'leave': {
      const ks = e.targets ?? [e.target];
      await Promise.all(ks.map((k) => cluster.leave(k)));
      if (e.downMs > 0) await sleep(e.downMs);
      for (const k of ks) await cluster.launch(k);
      return;
    }
    case 'isolate': {
      const ks = e.targets ?? [e.target];
      const everyone = e.clients ? [...members, ...clients] : members;
      for (const k of ks) network.isolate(memberName(k), everyone, e.mode);
      await sleep(e.ms);
      network.heal();
      return;
    }
    case 'oneway': {
      network.oneWay(memberName(e.hearer), memberName(e.speaker), e.mode);
      await sleep(e.ms);
      network.heal();
      return;
    }
    default:
      throw new Error(`unknown fault ${e.kind}`);
  }
}

/**
 * Named scenarios: fixed schedules for the measurements the harness exists for.
 *   coordinator-pause  the coordinator (leader) paused 4 s while writers write unique keys and
 *                      increment counters (no register ops).
 *   leader-kill        kill -9 of the leader under the same writers, restarted 3 s later
 *   leader-isolate     the leader blackholed from the other members for 5 s (clients still reach it)
 *   rolling            each member paused 4 s in turn, then a kill -9 and a replacement.
 */
export const SCENARIOS = Object.freeze({
  'coordinator-pause': {
    duration: 12_000,
    mix: { unique: 1, incr: 1, register: 0 },
    events: [{ kind: 'pause', at: 3000, target: 'leader', ms: 4000, gap: 1000 }],
  },
  'leader-kill': {
    duration: 12_000,
    mix: { unique: 1, incr: 1, register: 0 },
    events: [{ kind: 'kill', at: 3000, target: 'leader', downMs: 3000, gap: 1000 }],
  },
  'leader-isolate': {
    duration: 12_000,
    mix: { unique: 1, incr: 1, register: 0 },
    events: [{ kind: 'isolate', at: 3000, target: 'leader', ms: 5000, mode: 'blackhole', clients: false, gap: 1000 }],
  },
  rolling: {
    duration: 40_000,
    mix: { unique: 1, incr: 1, register: 0 },
    events: [
      { kind: 'pause', at: 2000, target: 1, ms: 4000, gap: 2000 },
      { kind: 'pause', at: 0, target: 2, ms: 4000, gap: 2000 },
      { kind: 'pause', at: 0, target: 3, ms: 4000, gap: 2000 },
      { kind: 'kill', at: 0, target: 'leader', downMs: 2000, gap: 2000 },
    ],
  },
});

export function scenarioSchedule(name, seed, index) {
  const s = SCENARIOS[name];
  if (s === undefined) throw new Error(`unknown scenario ${name} (known: ${Object.keys(SCENARIOS).join(', ')})`);
  return { seed, index, scenario: name, duration: s.duration, mix: s.mix, events: s.events.map((e) => ({ ...e })) };
}
