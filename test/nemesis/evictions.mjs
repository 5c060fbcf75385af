// The members' eviction records (src/storage/eviction-log.ts, SHARDGRID_TEST_EVICTION_LOG) for the
// checkers' memory mode: which keys of the workload's map some member evicted, and when, on the
// harness's clock.
import { readFileSync, readdirSync } from 'node:fs';
import { join } from 'node:path';

/**
 * Reads every `evictions-*.log` in `dir`. Times become the history's clock (performance.now() of
 * this process): both are wall-clock based. A line that does not parse (a member killed in the
 * middle of a write) is counted, not used.
 * @param {string} dir @param {string} map the workload's map
 * @returns {{ byKey: Map<string, number[]>, total: number, otherMaps: number, malformed: number, files: number }}
 */
export function readEvictions(dir, map) {
  /** @type {Map<string, number[]>} */
  const byKey = new Map();
  let total = 0, otherMaps = 0, malformed = 0, files = 0;
  let names = [];
  try {
    names = readdirSync(dir).filter((n) => n.startsWith('evictions-') && n.endsWith('.log'));
  } catch {
    // no member evicted anything (the folder is made by the harness, the files by members)
  }
  const origin = performance.timeOrigin;
  for (const name of names) {
    files++;
    for (const line of readFileSync(join(dir, name), 'utf8').split('\n')) {
      if (line === '') continue;
      // <ms> <partition> <map as JSON> <key as JSON>; JSON strings hold no unescaped space-quote pairs that matter here
      const m = /^(\d+\.\d+) (\d+) ("(?:[^"\\]|\\.)*"|null) ("(?:[^"\\]|\\.)*")(?: \S+)?$/.exec(line);
      if (m === null) { malformed++; continue; }
      let mapName, key;
      try { mapName = JSON.parse(m[3]); key = JSON.parse(m[4]); } catch { malformed++; continue; }
      total++;
      if (mapName !== map) { otherMaps++; continue; }
      let list = byKey.get(key);
      if (list === undefined) byKey.set(key, (list = []));
      list.push(Number(m[1]) - origin);
    }
  }
  for (const list of byKey.values()) list.sort((a, b) => a - b);
  return { byKey, total, otherMaps, malformed, files };
}

/**
 * The LRU check of memory mode: evictions of a key the workload hit within `hotMs` before (an op
 * of it under way or returned then) at a moment when some colder key was still held, i.e. a
 * unique key whose write returned more than `hotMs` earlier and which no member had evicted yet.
 * A cache whose members evict least recently used first (approximately: sampled, per partition)
 * does not do that while it holds keys nobody touched for a second; counters incremented every
 * few ms were (native-notes.md, "The cluster's LRU"). Ops are the checker's (readHistory).
 * @param {ReadonlyArray<{ key: string, f: string, status: string, call: number, ret: number }>} ops
 * @param {Map<string, number[]>} byKey readEvictions' byKey
 * @param {{ hotMs?: number, isHot: (key: string) => boolean, isCold: (key: string) => boolean }} o
 * @returns {{ hotEvictions: number, inversions: number, examples: string[] }}
 */
export function lruInversions(ops, byKey, o) {
  const hotMs = o.hotMs ?? 1000;
  /** @type {Map<string, Array<[number, number]>>} */
  const hits = new Map();
  /** @type {Map<string, number>} cold key -> when its first acknowledged write returned */
  const written = new Map();
  for (const op of ops) {
    if (o.isHot(op.key)) {
      let list = hits.get(op.key);
      if (list === undefined) hits.set(op.key, (list = []));
      list.push([op.call, op.ret]);
    } else if (o.isCold(op.key) && op.f === 'set' && op.status === 'ok' && !(written.get(op.key) <= op.ret)) written.set(op.key, op.ret);
  }
  const cold = [...written].map(([k, at]) => [at, byKey.get(k)?.[0] ?? Infinity]).sort((a, b) => a[0] - b[0]);
  let hotEvictions = 0;
  let inversions = 0;
  const examples = [];
  for (const [key, list] of hits) {
    for (const t of byKey.get(key) ?? []) {
      if (!list.some(([call, ret]) => call <= t && ret >= t - hotMs)) continue;
      hotEvictions++;
      let colder = 0;
      for (const [at, evictedAt] of cold) {
        if (at >= t - hotMs) break;
        if (evictedAt > t) colder++;
      }
      if (colder === 0) continue;
      inversions++;
      if (examples.length < 5) examples.push(`${key} evicted at ${Math.round(t)} ms while ${colder} keys written over ${hotMs} ms before were held`);
    }
  }
  return { hotEvictions, inversions, examples };
}
