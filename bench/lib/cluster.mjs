// The cluster-remote setup, shared by bench/scenarios/cluster-remote.mjs and bench/profile-remote.mjs:
// data members in child processes (bench/lib/cluster-member.mjs), a lite member in this process,
// and a wait until the table is settled.
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { createGrid } from '../../dist/index.js';

export const SECRET = 'bench-secret';
const MEMBER = fileURLToPath(new URL('./cluster-member.mjs', import.meta.url));

/** Starts a data member process; resolves to { proc, url, id } once it listens. `nodeArgs` go before the script (e.g. --cpu-prof). */
export function startMember(seeds, { nodeArgs = [], stderr = 'ignore' } = {}) {
  const proc = spawn(process.execPath, [...nodeArgs, MEMBER, JSON.stringify({ seeds, secret: SECRET })], { stdio: ['ignore', 'pipe', stderr] });
  return new Promise((resolve, reject) => {
    const t = setTimeout(() => reject(new Error('cluster member did not start')), 15_000);
    createInterface({ input: proc.stdout }).once('line', (l) => {
      clearTimeout(t);
      resolve({ proc, ...JSON.parse(l) });
    });
    proc.once('exit', (code) => reject(new Error(`cluster member exited (${code})`)));
  });
}

/**
 * `n` data members and a lite member (this process) of one cluster, settled: each member is
 * primary of some partitions and nothing migrates. `nodeArgs(i)`: node flags of member i.
 */
export async function startCluster(n, { nodeArgs = () => [], stderr } = {}) {
  const members = [];
  for (let i = 0; i < n; i++) members.push(await startMember(i === 0 ? [] : [members[0].url], { nodeArgs: nodeArgs(i), stderr }));
  const lite = await createGrid({ workers: 1, memory: '32MB', cluster: { port: 0, seeds: [members[0].url], secret: SECRET, lite: true } });
  for (const end = Date.now() + 20_000; ;) {
    const t = lite.cluster.currentTable;
    if (t && t.pending.every((l) => l.length === 0) && new Set(t.owners.map((o) => o[0])).size === n) break;
    if (Date.now() > end) throw new Error('cluster did not settle within 20 s');
    await new Promise((r) => setTimeout(r, 50));
  }
  return { members, lite };
}
