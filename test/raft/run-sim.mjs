#!/usr/bin/env node
// Long-run driver for the Raft simulation: node test/raft/run-sim.mjs --schedules N --seed S [--nodes 3|5]
// [--intensity X] [--unsafe skipLogUpToDateCheck|commitPriorTermByCount|grantMultipleVotes|readWithoutQuorum|readBeforeTermCommit|ignoreStickiness|voteRightAfterLeading|quietOmitsSelf] [--mutation forgetVote]
// [--leases] [--lazy-commit] [--keep-going]. `--lazy-commit`: leaders defer half their commit notices (sim.ts, lazyCommit). `--leases`: also check the new-leader lease bound (sim.ts, ScheduleOptions.leases;
// crashed nodes stay down during the chaos, leaders lose single links). Prints progress and a summary; on a violation, the schedule seed that reproduces it.
import { parseArgs } from 'node:util';
import { runSchedules, runSchedule } from '../../dist/raft/sim.js';

const { values } = parseArgs({
  options: {
    schedules: { type: 'string', default: '10000' },
    seed: { type: 'string', default: '1' },
    nodes: { type: 'string' },
    intensity: { type: 'string' },
    unsafe: { type: 'string' },
    mutation: { type: 'string' },
    'keep-going': { type: 'boolean', default: false },
    leases: { type: 'boolean', default: false },
    'lazy-commit': { type: 'boolean', default: false },
    replay: { type: 'string' },
  },
});
const int = (name, v) => {
  const n = Number(v);
  if (!Number.isSafeInteger(n) || n < 0) { console.error(`--${name} must be a non-negative integer`); process.exit(2); }
  return n;
};
const opts = {};
if (values.nodes !== undefined) {
  opts.voters = int('nodes', values.nodes);
  if (opts.voters !== 3 && opts.voters !== 5) { console.error('--nodes must be 3 or 5'); process.exit(2); }
}
if (values.intensity !== undefined) opts.intensity = Number(values.intensity);
if (values.unsafe !== undefined) opts.unsafe = { [values.unsafe]: true };
if (values.mutation !== undefined) opts.mutation = values.mutation;
if (values.leases) opts.leases = true;
if (values['lazy-commit']) opts.lazyCommit = true;

if (values.replay !== undefined) {
  const res = runSchedule({ ...opts, seed: int('replay', values.replay) });
  console.log(JSON.stringify(res, null, 2));
  process.exit(res.violations.length === 0 ? 0 : 1);
}

const schedules = int('schedules', values.schedules);
const seed = int('seed', values.seed);
const t0 = performance.now();
console.log(`raft-sim: ${schedules} schedules, seed ${seed}${values.nodes ? `, ${values.nodes} voters` : ', 3 or 5 voters'}` +
  `${opts.unsafe ? `, unsafe ${values.unsafe}` : ''}${opts.mutation ? `, mutation ${opts.mutation}` : ''}${opts.leases ? ', lease bound checked' : ''}${opts.lazyCommit ? ', lazy commit notices' : ''}`);
const summary = runSchedules({
  ...opts, schedules, seed, stopOnViolation: !values['keep-going'],
  progressEvery: Math.max(1, Math.min(5000, Math.floor(schedules / 20))),
  onProgress: (done, s) => {
    const secs = (performance.now() - t0) / 1000;
    console.log(`  ${done}/${schedules} schedules, ${s.violations} violations, ${(done / secs).toFixed(0)} schedules/s, ${secs.toFixed(1)} s`);
  },
});
const secs = (performance.now() - t0) / 1000;
const t = summary.totals;
console.log(`done: ${summary.schedules} schedules in ${secs.toFixed(1)} s (${(summary.schedules / secs).toFixed(0)} schedules/s)`);
console.log(`  violations: ${summary.violations} ${JSON.stringify(summary.violationsByKind)}`);
console.log(`  ticks ${t.ticks}, messages delivered ${t.delivered}, dropped ${t.dropped}, leaders elected ${t.leaders}, max term ${t.maxTerm}`);
console.log(`  entries committed ${t.committed}, proposals accepted ${t.proposals}, conf changes accepted ${t.confChanges}, crashes ${t.crashes}, compactions ${t.compactions}, snapshots sent ${t.snapshotsSent}`);
console.log(`  reads asked ${t.reads}, served ${t.readsServed} (each checked against every entry committed before it was asked)`);
if (opts.leases) console.log(`  lease bound: smallest gap between an earlier leader's last valid lease and a new leader's election ${t.minLeaseGap} ticks; smallest margin over the bound the new leader claimed (electionQuiet - ${Math.floor(10 / 2) + 1}) ${t.minLeaseMargin} ticks; largest bound claimed ${t.maxLeaseBound} ticks`);
console.log(`  recovery after healing: mean ${(t.recoveryTicks / Math.max(1, summary.schedules - summary.violations)).toFixed(1)} ticks, max ${summary.maxRecoveryTicks} ticks`);
if (summary.firstFailure !== undefined) {
  const f = summary.firstFailure;
  console.log(`FIRST FAILURE: schedule seed ${f.seed} (voters ${f.voters}, spare ${f.spare}): ${f.violations.map((v) => `[${v.kind} @tick ${v.tick}] ${v.message}`).join('\n')}`);
  console.log(`  reproduce: node test/raft/run-sim.mjs --replay ${f.seed}${values.leases ? ' --leases' : ''}${values['lazy-commit'] ? ' --lazy-commit' : ''}${values.unsafe ? ` --unsafe ${values.unsafe}` : ''}${values.mutation ? ` --mutation ${values.mutation}` : ''}${values.nodes ? ` --nodes ${values.nodes}` : ''}${values.intensity ? ` --intensity ${values.intensity}` : ''}`);
  process.exit(1);
}
