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
      const m = /^(\d+\.\d+) (\d+) ("(?:[^"\\]|\\.)*"|null) ("(?:[^"\\]|\\.)*")$/.exec(line);
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
