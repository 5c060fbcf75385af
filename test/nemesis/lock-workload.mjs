// The lock workload of the fault harness (issue 13): lock clients in separate processes share a
// fenced resource served by the harness (an HTTP endpoint over a createFence()), while the
// schedule's faults hit the members and the harness pauses the clients themselves (SIGSTOP)
// past their lease. Checked afterwards, from the resource's own record of what it accepted:
// - no two critical sections the resource accepted overlap (a section = its accepted read and
//   its accepted write; a section whose write the fence refused changed nothing);
// - no lost update: the final value equals the number of accepted writes (each section writes
//   the value it read + 1: an overlapping pair loses one);
// - no token granted twice (two sections with one token could both pass the fence);
// - progress: some sections were accepted.
// `--unsafe-ttl-lock` swaps the lock for a TTL-only one without tokens (Redis's pattern) and the
// resource for one that checks nothing: the negative control, which must be caught overlapping.
import { spawn } from 'node:child_process';
import { createWriteStream } from 'node:fs';
import { createServer } from 'node:http';
import { createInterface } from 'node:readline';
import { createFence } from '../../dist/index.js';
import { adoptChild, sleep } from './cluster.mjs';

const CLIENT = new URL('./lock-client.mjs', import.meta.url).pathname;

/** The fenced resource: one integer register `R`, every access carrying the caller's token. */
export async function startResource({ fenced }) {
  const fence = createFence();
  const state = { value: 0, events: [] };
  const server = createServer((req, res) => {
    let body = '';
    req.on('data', (d) => { body += d; });
    req.on('end', () => {
      let m;
      try {
        m = JSON.parse(body);
      } catch {
        res.writeHead(400).end('{}');
        return;
      }
      let ok = true;
      if (fenced) {
        try {
          fence.check('R', m.t);
        } catch {
          ok = false; // StaleTokenError (or no token): refused
        }
      }
      const at = performance.now();
      if (ok && m.op === 'write') state.value = m.v;
      state.events.push({ op: m.op, c: m.c, s: m.s, t: m.t, ok, at, v: m.op === 'write' ? m.v : state.value });
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify(m.op === 'read' ? { ok, v: state.value } : { ok }));
    });
  });
  await new Promise((r) => server.listen(0, '127.0.0.1', r));
  return { url: `http://127.0.0.1:${server.address().port}/`, state, close: () => new Promise((r) => server.close(r)) };
}

/** Starts a lock client process and waits for its ready line. */
export async function startLockClient({ id, seeds, secret, leaseMs, ttlMs, resource, unsafe, pauseP = 0.1, onLine, logFile }) {
  const proc = spawn(process.execPath, [CLIENT, JSON.stringify({ id, seeds, leaseMs, ttlMs, resource, unsafe, pauseP })], { stdio: ['ignore', 'pipe', logFile === undefined ? 'ignore' : 'pipe'], env: { ...process.env, SHARDGRID_SECRET: secret } });
  if (logFile !== undefined) proc.stderr.pipe(createWriteStream(logFile));
  adoptChild(proc); // killed if the runner exits (SIGTERM, an error) before it stops them
  const lines = createInterface({ input: proc.stdout });
  const exited = new Promise((r) => proc.once('exit', r));
  await new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error(`lock client ${id} did not start within 60 s`)), 60_000);
    lines.on('line', (l) => {
      let x;
      try { x = JSON.parse(l); } catch { return; }
      if (x.ev === 'ready') { clearTimeout(t); resolve(); }
      onLine?.(x);
    });
    proc.once('exit', () => reject(new Error(`lock client ${id} exited during start`)));
  });
  return { id, proc, exited };
}

/** Pauses a random client (SIGSTOP) for 1.5–3 leases every `everyMs`, until `stop()`. */
export function pauser(clients, { leaseMs, everyMs, random, log }) {
  let stopped = false;
  let count = 0;
  const run = (async () => {
    while (!stopped) {
      await sleep(everyMs * (0.5 + random()));
      if (stopped) break;
      const c = clients[Math.floor(random() * clients.length)];
      const ms = Math.round(leaseMs * (1.5 + 1.5 * random()));
      count++;
      log?.(`pause lock client ${c.id} for ${ms} ms`);
      c.proc.kill('SIGSTOP');
      await sleep(ms);
      c.proc.kill('SIGCONT');
    }
  })();
  return { stop: async () => { stopped = true; await run; for (const c of clients) c.proc.kill('SIGCONT'); return count; } };
}

/** Checks the resource's record (see the header). */
export function checkLock(state, sectionsReported) {
  const bySection = new Map();
  for (const e of state.events) {
    const x = bySection.get(e.s) ?? { s: e.s, c: e.c, t: e.t };
    if (e.op === 'read' && e.ok) x.start = e.at;
    if (e.op === 'write' && e.ok) { x.end = e.at; x.wrote = true; }
    bySection.set(e.s, x);
  }
  const accepted = [...bySection.values()].filter((x) => x.start !== undefined && x.wrote === true).sort((a, b) => a.start - b.start);
  let overlaps = 0;
  const examples = [];
  let prev;
  for (const x of accepted) {
    if (prev !== undefined && x.start < prev.end) {
      overlaps++;
      if (examples.length < 3) examples.push(`${prev.s} (token ${prev.t}) [${prev.start.toFixed(1)}, ${prev.end.toFixed(1)}] and ${x.s} (token ${x.t}) [${x.start.toFixed(1)}, ${x.end.toFixed(1)}]`);
    }
    if (prev === undefined || x.end > prev.end) prev = x;
  }
  const writes = state.events.filter((e) => e.op === 'write' && e.ok).length;
  const refused = state.events.filter((e) => !e.ok).length;
  const tokens = new Map();
  let duplicateTokens = 0;
  for (const s of sectionsReported) {
    if (s.t === null || s.t === undefined) continue;
    const other = tokens.get(s.t);
    if (other !== undefined && other !== s.s) duplicateTokens++;
    tokens.set(s.t, s.s);
  }
  // tokens the resource accepted, in acceptance order, never go down (what the fence enforces)
  let tokenOrder = 0;
  let last = -Infinity;
  for (const e of state.events) {
    if (!e.ok || typeof e.t !== 'number') continue;
    if (e.t < last) tokenOrder++;
    last = e.t;
  }
  const lostUpdates = writes - state.value;
  const valid = overlaps === 0 && lostUpdates === 0 && duplicateTokens === 0 && tokenOrder === 0 && accepted.length > 0;
  return { valid, sections: bySection.size, acceptedSections: accepted.length, acceptedWrites: writes, finalValue: state.value, refused, overlaps, lostUpdates, duplicateTokens, tokenOrder, examples };
}
