#!/usr/bin/env node
// A lock-workload client in a process of its own (test/nemesis/lock-workload.mjs starts several):
// a lite member that loops "take the lock, read the fenced resource, hold a while, write the value
// read + 1, unlock", passing the lock's fencing token to the resource with every access. The
// harness pauses these processes (SIGSTOP) past their lease at random, and a client pauses itself
// inside its critical section now and then (pauseP): its whole thread blocks (Atomics.wait, as a
// long GC pause would) for 1.5–3 leases between the read and the write.
//   argv[2] = JSON { seeds, id, leaseMs, resource (http url), unsafe (TTL-only lock, no token), ttlMs }
//   SHARDGRID_SECRET in the environment. stdout: {"ev":"ready"} then {"ev":"section",...} lines.
// --unsafe (the negative control): a TTL-only lock (Redis's SET NX PX pattern on a grid map:
// setIfAbsent with a ttl, compare-and-delete to release) and no token: a paused holder resumes and
// writes after its TTL handed the lock to someone else.
import { createGrid } from '../../dist/index.js';

const cfg = JSON.parse(process.argv[2]);
const out = (o) => process.stdout.write(`${JSON.stringify(o)}\n`);
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
process.on('warning', () => undefined);

const grid = await createGrid({ workers: 1, memory: '16MB', cp: { sessionTtlMs: cfg.ttlMs }, cluster: { lite: true, host: '127.0.0.1', port: 0, seeds: cfg.seeds, secret: process.env.SHARDGRID_SECRET } });
out({ ev: 'ready' });
let stopping = false;
process.on('SIGTERM', () => { stopping = true; });

async function resource(body) {
  const r = await fetch(cfg.resource, { method: 'POST', body: JSON.stringify(body), signal: AbortSignal.timeout(10_000) });
  return r.json();
}

const lock = grid.cp.lock('nemesis-lock');
const ttlMap = grid.map('nemesis-ttl-lock');
let n = 0;
while (!stopping) {
  const section = `${cfg.id}.${++n}`;
  let token = null;
  try {
    if (cfg.unsafe) {
      // TTL-only lock: whoever stores the key holds it until it expires or is deleted
      while (!(await ttlMap.setIfAbsent('L', section, { ttl: cfg.leaseMs }))) await sleep(10);
    } else {
      token = await lock.lock({ leaseMs: cfg.leaseMs });
    }
    const r = await resource({ op: 'read', c: cfg.id, s: section, t: token });
    let w = { ok: false };
    if (r.ok) {
      if (Math.random() < cfg.pauseP) {
        const ms = Math.round(cfg.leaseMs * (1.5 + 1.5 * Math.random()));
        out({ ev: 'self-pause', s: section, ms });
        Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
      } else {
        await sleep(Math.random() * 30);
      }
      w = await resource({ op: 'write', c: cfg.id, s: section, t: token, v: r.v + 1 });
    }
    out({ ev: 'section', s: section, t: token, read: r.ok, write: w.ok });
    if (cfg.unsafe) {
      if ((await ttlMap.get('L')) === section) await ttlMap.delete('L');
    } else {
      await lock.unlock().catch((e) => { if (e?.code !== 'GRID_ERR_LOCK_NOT_HELD') throw e; });
    }
  } catch (e) {
    out({ ev: 'error', s: section, code: e?.code, message: String(e?.message).slice(0, 200) });
    await sleep(100);
  }
}
await grid.close();
out({ ev: 'stopped' });
process.exit(0);
