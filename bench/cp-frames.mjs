// Frames and messages per CP operation at every member (issue 13): the coordination scenario's
// cluster half (3 data members in child processes, a lite member here), incrementAndGet of one
// counter or lock+unlock of C locks at concurrency C, and each process's transport counters
// before and after each run (data members print theirs on SIGHUP, bench/lib/cluster-member.mjs).
// Counts, not times: they say how well commands are batched into frames, which is what the
// leader's per-frame costs (sealing, ws framing, a writev) multiply. Rates are printed too; read
// them only on a quiet machine.
//
// Usage: npm run build && node bench/cp-frames.mjs [--op incr|lock] [--c 64] [--runs 3] [--ms 1500]
import { parseArgs } from 'node:util';
import { cpRound, memberStats, startCluster } from './lib/cluster.mjs';

const { values: opt } = parseArgs({ options: { op: { type: 'string', default: 'incr' }, c: { type: 'string', default: '64' }, runs: { type: 'string', default: '3' }, ms: { type: 'string', default: '1500' } } });
const C = Number(opt.c);
const { members, lite } = await startCluster(3, { stderr: 'inherit' });
const round = cpRound(lite, opt.op, C, 'frames');
const snap = async () => [{ ...lite.cluster.transport._stats, leader: false }, ...(await Promise.all(members.map(memberStats)))];
for (let w = 0; w < 20; w++) await round();
for (let r = 0; r < Number(opt.runs); r++) {
  const before = await snap();
  let ops = 0;
  const t = performance.now();
  while (performance.now() - t < Number(opt.ms)) {
    await round();
    ops += C;
  }
  const dt = performance.now() - t;
  const after = await snap();
  const per = (k, i) => ((after[i][k] - before[i][k]) / ops).toFixed(3);
  const who = ['lite', ...members.map((_, i) => `m${i}${after[i + 1].leader ? ' (leader)' : ''}`)];
  console.log(`${opt.op} c=${C}: ${(ops / dt).toFixed(2)} k ops/s; per op, frames out/in, messages out/in, bytes out/in: ${who.map((w, i) => `${w} ${per('framesOut', i)}/${per('framesIn', i)} ${per('messagesOut', i)}/${per('messagesIn', i)} ${i === 0 ? '-' : `${per('bytesOut', i)}/${per('bytesIn', i)}`}`).join(' · ')}`);
}
await lite.close();
for (const m of members) m.proc.kill('SIGTERM');
process.exit(0);
