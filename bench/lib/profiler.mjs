// CPU profiles through the V8 inspector (node:inspector Session, Profiler domain) of the calling
// thread — main thread or worker thread: each thread has its own inspector and profiles only
// itself — and their summary as self time (and inclusive time) per function.
//
// Functions are keyed by name + script:line of their definition; frames in dist/*.js are mapped
// to src/*.ts lines through the compiled source maps (node:module SourceMap, no flag needed).
// Inlined frames: V8 attributes samples to inlined functions where it kept their positions, so a
// small function that TurboFan inlined may still show up under its own name, or be merged into
// its caller. Run `node bench/profile.mjs --no-inline …` to see the finer split (slower code).
import { readFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { SourceMap } from 'node:module';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Starts the profiler of this thread. Returns `stop()`, which resolves to the V8 profile. */
export async function startProfile({ intervalUs = 100 } = {}) {
  const session = new Session();
  session.connect();
  const post = (method, params) => new Promise((resolve, reject) => session.post(method, params, (err, res) => (err ? reject(err) : resolve(res))));
  await post('Profiler.enable');
  await post('Profiler.setSamplingInterval', { interval: intervalUs });
  await post('Profiler.start');
  return async () => {
    const { profile } = await post('Profiler.stop');
    await post('Profiler.disable');
    session.disconnect();
    return profile;
  };
}

// ── source locations ────────────────────────────────────────────────────────────────────────────

const maps = new Map();

function sourceMapOf(file) {
  if (!maps.has(file)) {
    let sm = null;
    try {
      sm = new SourceMap(JSON.parse(readFileSync(`${file}.map`, 'utf8')));
    } catch {
      // no map: report the script's own line
    }
    maps.set(file, sm);
  }
  return maps.get(file);
}

/** "src/map.ts:123" for a call frame (0-based line/column of the function's definition). */
function where(frame) {
  const { url, lineNumber, columnNumber } = frame;
  if (!url) return '';
  let file = url.startsWith('file://') ? fileURLToPath(url) : url;
  let line = lineNumber + 1;
  if (file.startsWith(path.join(ROOT, 'dist'))) {
    const e = sourceMapOf(file)?.findEntry(lineNumber, columnNumber);
    if (e?.originalSource) {
      file = e.originalSource.startsWith('file://') ? fileURLToPath(e.originalSource) : path.resolve(path.dirname(file), e.originalSource);
      line = e.originalLine + 1;
    }
  }
  const rel = path.relative(ROOT, file);
  return `${rel.startsWith('..') ? file : rel}:${line}`;
}

const keyOf = (frame) => {
  const w = where(frame);
  return w ? `${frame.functionName || '(anonymous)'}  ${w}` : frame.functionName || '(anonymous)';
};

// ── summaries ───────────────────────────────────────────────────────────────────────────────────

/**
 * Self and inclusive microseconds per function key over one or more profiles. Inclusive time
 * counts a sample once per distinct function on its stack (recursion is not double-counted).
 */
export function summarize(profiles) {
  const self = new Map();
  const incl = new Map();
  let total = 0;
  for (const prof of profiles) {
    const byId = new Map(prof.nodes.map((n) => [n.id, n]));
    const parent = new Map();
    for (const n of prof.nodes) for (const c of n.children ?? []) parent.set(c, n.id);
    const keys = new Map(prof.nodes.map((n) => [n.id, keyOf(n.callFrame)]));
    const stackKeys = new Map();
    const stackOf = (id) => {
      let s = stackKeys.get(id);
      if (s === undefined) {
        s = new Set();
        for (let at = id; at !== undefined; at = parent.get(at)) s.add(keys.get(at));
        stackKeys.set(id, s);
      }
      return s;
    };
    const { samples, timeDeltas } = prof;
    for (let i = 0; i < samples.length; i++) {
      // timeDeltas[i] is the time before sample i; the time a sample stands for is the next delta.
      const dt = timeDeltas[i + 1] ?? 0;
      if (dt <= 0) continue;
      const id = samples[i];
      if (!byId.has(id)) continue;
      total += dt;
      const k = keys.get(id);
      self.set(k, (self.get(k) ?? 0) + dt);
      for (const s of stackOf(id)) incl.set(s, (incl.get(s) ?? 0) + dt);
    }
  }
  const rows = (m) => [...m].map(([fn, us]) => ({ fn, us, pct: total > 0 ? (100 * us) / total : 0 })).sort((a, b) => b.us - a.us);
  return { totalUs: total, self: rows(self), inclusive: rows(incl) };
}

/** Text lines of the top `n` rows of a summary table (self or inclusive). */
export function formatTop(rows, n, title) {
  const out = [title];
  for (const r of rows.slice(0, n)) out.push(`  ${r.pct.toFixed(1).padStart(5)} %  ${(r.us / 1000).toFixed(0).padStart(6)} ms  ${r.fn}`);
  return out.join('\n');
}

/**
 * The command-line options the profile-* scripts share (concurrency, measuring runs, warm-up,
 * profile on or off), for parseArgs; `extra` adds a script's own or overrides a default.
 */
export function profileOptions(extra = {}) {
  return {
    c: { type: 'string', default: '64' },
    seconds: { type: 'string', default: '3' },
    top: { type: 'string', default: '25' },
    'no-profile': { type: 'boolean', default: false },
    runs: { type: 'string', default: '3' },
    'run-ms': { type: 'string', default: '1000' },
    'warmup-ms': { type: 'string', default: '1000' },
    ...extra,
  };
}
