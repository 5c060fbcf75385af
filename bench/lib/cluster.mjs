// The cluster-remote setup, shared by bench/scenarios/cluster-remote.mjs and bench/profile-remote.mjs:
// data members in child processes (bench/lib/cluster-member.mjs), a lite member in this process,
// and a wait until the table is settled.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGrid } from '../../dist/index.js';

/** At least 16 bytes (the minimum); handed to member processes in SHARDGRID_SECRET, never in argv. */
export const SECRET = 'bench-cluster-secret-not-for-production';
const MEMBER = fileURLToPath(new URL('./cluster-member.mjs', import.meta.url));

/**
 * Starts a data member process; resolves to { proc, url, id, lines } once it listens (`lines`:
 * its later stdout lines). `profile`: a file the member writes a CPU profile to, between two
 * SIGUSR2 (bench/lib/cluster-member.mjs).
 */
export function startMember(seeds, { profile, stderr = 'ignore' } = {}) {
  const proc = spawn(process.execPath, [MEMBER, JSON.stringify({ seeds, profile })], { stdio: ['ignore', 'pipe', stderr], env: { ...process.env, SHARDGRID_SECRET: SECRET } });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('cluster member did not start')), 15_000);
    const lines = createInterface({ input: proc.stdout });
    lines.once('line', (l) => {
      clearTimeout(t);
      resolve({ proc, lines, ...JSON.parse(l) });
    });
    proc.once('exit', (code) => reject(new Error(`cluster member exited (${code})`)));
  });
}

/**
 * `n` data members and a lite member (this process) of one cluster, settled: each member is
 * primary of some partitions and nothing migrates. `profile(i)`: the profile file of member i.
 */
export async function startCluster(n, { profile = () => undefined, stderr } = {}) {
  const members = [];
  for (let i = 0; i < n; i++) members.push(await startMember(i === 0 ? [] : [members[0].url], { profile: profile(i), stderr }));
  const lite = await createGrid({ workers: 1, memory: '32MB', cluster: { port: 0, seeds: [members[0].url], secret: SECRET, lite: true } });
  await waitSettled(lite, n, 20_000);
  return { members, lite };
}

/**
 * A data member's counters, printed on SIGHUP (bench/lib/cluster-member.mjs): the transport's
 * frames and messages, bytes, round trips, and its garbage collections so far.
 */
export function memberStats(m) {
  return new Promise((resolve) => {
    const on = (l) => {
      const s = JSON.parse(l).stats;
      if (s === undefined) return;
      m.lines.off('line', on);
      resolve(s);
    };
    m.lines.on('line', on);
    m.proc.kill('SIGHUP');
  });
}

/** Waits until `grid`'s table has `n` members as primaries and nothing migrates. */
export async function waitSettled(grid, n, ms) {
  for (const end = Date.now() + ms; ;) {
    const t = grid.cluster.currentTable;
    if (t && t.pending.every((l) => l.length === 0) && new Set(t.owners.map((o) => o[0])).size === n) return;
    if (Date.now() > end) throw new Error(`cluster did not settle within ${ms / 1000} s`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

/**
 * One round of C concurrent CP operations of a lite member, as the cluster CP benches run them:
 * `lock` (lock+unlock of C locks, one per slot) or `incr` (incrementAndGet of one counter).
 */
export function cpRound(lite, op, C, prefix) {
  const locks = Array.from({ length: C }, (_, j) => lite.cp.lock(`${prefix}-${j}`));
  const counter = lite.cp.atomicLong(`${prefix}-counter`);
  const step = op === 'lock'
    ? async (j) => {
      await locks[j].lock();
      await locks[j].unlock();
    }
    : () => counter.incrementAndGet();
  return () => {
    const ps = new Array(C);
    for (let j = 0; j < C; j++) ps[j] = step(j);
    return Promise.all(ps);
  };
}
