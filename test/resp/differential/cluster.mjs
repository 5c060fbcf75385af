// The differential on a member of a 3-member cluster: against redis-server, and against a single-process grid.
// usage: node cluster.mjs [seqs] [seed]
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { randomBytes } from 'node:crypto';
import { startRedis } from './lib.mjs';
import { run, runPipelined } from './diff.mjs';
import { runFixed } from './fixed.mjs';

const FIXTURE = new URL('../../fixtures/grid-member.mjs', import.meta.url).pathname;
const secret = randomBytes(24).toString('hex');
function member(cfg) {
  const proc = spawn(process.execPath, [FIXTURE, JSON.stringify({ seeds: [], ...cfg })], { stdio: ['pipe', 'pipe', 'ignore'], env: { ...process.env, SHARDGRID_SECRET: secret } });
  return new Promise((resolve, reject) => {
    createInterface({ input: proc.stdout }).on('line', (l) => { const m = JSON.parse(l); if (m.ev === 'ready') resolve({ proc, ...m }); else if (m.ev === 'start-failed') reject(new Error(m.message)); });
    proc.once('exit', () => reject(new Error('exited')));
  });
}
const { createGrid } = await import(new URL('../../../dist/index.js', import.meta.url).href);
const red = await startRedis();
const a = await member({ backups: 1 });
const b = await member({ seeds: [a.url], backups: 1 });
const m = await createGrid({ workers: 1, memory: '32MB', cluster: { port: 0, seeds: [a.url], secret, backups: 1 }, resp: { port: 0 } });
const single = await createGrid({ workers: 1, memory: '32MB', resp: { port: 0 } });
await new Promise((r) => setTimeout(r, 3000)); // let the table settle (3 members)
{
  const r = m.cluster.replicas;
  const keys = ['k1', 'k2', 'k3', 'é', '\uffff\u00ff\u0000', 'a*b', 'k?', 'o1', 'e2', 'f1', 'a', 'b', 'k', 'i', 'f', 'g', 'n'];
  console.log('primary here:', keys.map((k) => `${JSON.stringify(k)}:${r.isPrimary(r.records.partitionOf(k)) ? 'here' : 'elsewhere'}`).join(' '));
}
const seqs = Number(process.argv[2] ?? 40);
const seed = Number(process.argv[3] ?? 5);
try {
  console.log('== cluster member vs redis-server');
  await run({ gridPort: m.resp.port, redisPort: red.port, seqs, seed });
  console.log('== cluster member vs single-process grid');
  await run({ gridPort: m.resp.port, redisPort: single.resp.port, seqs, seed });
  console.log('== pipelined, cluster member vs redis-server');
  await runPipelined({ gridPort: m.resp.port, redisPort: red.port, seqs, seed: seed + 1 });
  console.log('== pipelined, cluster member vs single-process grid');
  await runPipelined({ gridPort: m.resp.port, redisPort: single.resp.port, seqs, seed: seed + 1, len: 200 });
  console.log('== fixed sequences, cluster member vs redis-server');
  await runFixed(m.resp.port, red.port, [2, 3]);
  console.log('== fixed sequences, cluster member vs single-process grid');
  await runFixed(m.resp.port, single.resp.port, [2, 3]);
} finally {
  red.proc.kill();
  await m.close();
  await single.close();
  a.proc.kill('SIGKILL');
  b.proc.kill('SIGKILL');
}
process.exit(0);
