import { describe, expect, it } from 'vitest';
import { runSchedule, runSchedules } from '../../dist/raft/sim.js';
import type { RunOptions } from '../../dist/raft/sim.js';

// The long run (100,000 schedules) is `npm run raft-sim -- --schedules 100000 --seed S`; here a
// short seeded slice, the determinism of a schedule, and the negative controls: each deliberately
// broken node or application must be caught by the checker for the rule it breaks.

describe('raft simulation', () => {
  it('finds no violation in a seeded slice of 1,000 schedules of 3 and 5 voters with learners, membership changes, crashes, partitions and compaction', () => {
    // reads off: the slice as it was (its seed and thresholds), at its old cost; reads have their own slice below
    const s = runSchedules({ schedules: 1000, seed: 424242, stopOnViolation: true, reads: false });
    expect(s.firstFailure?.violations ?? []).toEqual([]);
    expect(s.schedules).toBe(1000);
    // the slice really exercised the features it claims to
    expect(s.totals.leaders).toBeGreaterThan(1000);
    expect(s.totals.committed).toBeGreaterThan(10_000);
    expect(s.totals.crashes).toBeGreaterThan(100);
    expect(s.totals.confChanges).toBeGreaterThan(100);
    expect(s.totals.compactions).toBeGreaterThan(100);
    expect(s.totals.snapshotsSent).toBeGreaterThan(100);
    expect(s.maxRecoveryTicks).toBeGreaterThan(0);
  });

  it('serves every ReadIndex read with all writes committed before it was asked, in 300 schedules with faults', () => {
    const s = runSchedules({ schedules: 300, seed: 515151, stopOnViolation: true });
    expect(s.firstFailure?.violations ?? []).toEqual([]);
    expect(s.totals.readsServed).toBeGreaterThan(5_000);
    expect(s.totals.leaders).toBeGreaterThan(300);
  });

  it('elects no leader (except by a transfer) before the bound its votes\' quiet gives (electionQuiet - electionTicks / 2 - 1 ticks after an earlier leader\'s last valid lease), in 500 schedules with partial partitions', () => {
    // the bound the metadata layer takes off a new leader's wait (cluster/metadata/metadata.ts newLeaderCreditMs)
    const s = runSchedules({ schedules: 500, seed: 777, leases: true, stopOnViolation: true });
    expect(s.firstFailure?.violations ?? []).toEqual([]);
    expect(s.totals.leaders).toBeGreaterThan(1000);
    expect(s.totals.minLeaseMargin).toBeGreaterThanOrEqual(0);
    // leader stickiness alone gives electionTicks / 2 - 1 (the fixed credit used before); the
    // votes' quiet gives more whenever the election came later than one election timeout
    expect(s.totals.minLeaseGap).toBeGreaterThanOrEqual(4);
    expect(s.totals.maxLeaseBound).toBeGreaterThan(10);
  });

  it('keeps every property with leaders that defer half their commit notices (lazyCommit), in 300 schedules with faults', () => {
    const s = runSchedules({ schedules: 300, seed: 616161, lazyCommit: true, stopOnViolation: true });
    expect(s.firstFailure?.violations ?? []).toEqual([]);
    expect(s.totals.readsServed).toBeGreaterThan(5_000);
    expect(s.totals.committed).toBeGreaterThan(5_000);
    expect(s.maxRecoveryTicks).toBeGreaterThan(0);
  });

  it('replays a schedule identically from its seed', () => {
    const a = runSchedule({ seed: 987654321 });
    const b = runSchedule({ seed: 987654321 });
    expect(JSON.stringify(b)).toBe(JSON.stringify(a));
    expect(a.stats.delivered).toBeGreaterThan(100);
  });
});

describe('raft simulation negative controls', () => {
  // reads: false keeps these schedules exactly as they were when their seeds were chosen (read
  // rounds add messages, which shift the network's random draws)
  const caught = (o: RunOptions) => {
    const s = runSchedules({ reads: false, ...o, stopOnViolation: true });
    return { kinds: (s.firstFailure?.violations ?? []).map((v) => v.kind), after: s.schedules };
  };

  it('catches voters that skip the log up-to-date check (leader completeness / state-machine safety)', () => {
    const r = caught({ schedules: 200, seed: 1, unsafe: { skipLogUpToDateCheck: true } });
    expect(r.kinds.length).toBe(1);
    expect(['leader-completeness', 'state-machine-safety']).toContain(r.kinds[0]);
  });

  it('catches voters that vote twice in a term (election safety)', () => {
    const r = caught({ schedules: 200, seed: 1, unsafe: { grantMultipleVotes: true } });
    expect(r.kinds).toEqual(['election-safety']);
  });

  it('catches an application that does not persist the vote (election safety after restarts)', () => {
    const r = caught({ schedules: 1000, seed: 1, mutation: 'forgetVote', intensity: 3 });
    expect(r.kinds).toEqual(['election-safety']);
  });

  it('catches storage that keeps a stale suffix after an overwrite (log matching)', () => {
    const r = caught({ schedules: 1000, seed: 1, mutation: 'keepStaleSuffix' });
    expect(r.kinds).toEqual(['log-matching']);
  });

  it('catches a cluster that can never elect a leader (liveness after healing)', () => {
    const r = caught({ schedules: 5, seed: 1, mutation: 'dropVoteResponses' });
    expect(r.kinds).toEqual(['liveness']);
  });

  it('catches a leader that commits entries of earlier terms by counting (the Figure 8 bug)', () => {
    // Rare in random schedules: it needs three leader changes with partial replication
    // (measured with these options, since the leader sends the entries of one ready() together
    // and tells followers of each commit: 3 hits in run seeds 1-60 x 300). F8_SEED is a run seed
    // at which the generator reaches it (at schedule 49); the run is deterministic.
    const r = caught({ schedules: 100, seed: F8_SEED, unsafe: { commitPriorTermByCount: true }, voters: 3, intensity: 3, electionTicks: 4 });
    expect(r.kinds.length).toBe(1);
    expect(['leader-completeness', 'state-machine-safety']).toContain(r.kinds[0]);
    // and the same slice with the rule intact is clean
    const safe = runSchedules({ schedules: r.after, seed: F8_SEED, voters: 3, intensity: 3, electionTicks: 4, reads: false });
    expect(safe.violations).toBe(0);
  });

  it('catches a leader that answers reads without a heartbeat round to a majority (stale read from a deposed leader)', () => {
    // rare: leader stickiness and CheckQuorum leave a deposed leader only a short window
    // (measured since commits are sent at once: 3 of run seeds 1-21 x 150 schedules). Run seed 11
    // reaches it at schedule 28; the run is deterministic.
    const r = caught({ schedules: 150, seed: 11, unsafe: { readWithoutQuorum: true }, reads: true });
    expect(r.kinds).toEqual(['stale-read']);
    const safe = runSchedules({ schedules: r.after, seed: 11 });
    expect(safe.violations).toBe(0);
    expect(safe.totals.readsServed).toBeGreaterThan(50);
  });

  it('catches a candidate that leaves its own silence out of electionQuiet (lease bound)', () => {
    // run seed 21 reaches it at schedule 8 (seeds 1, 2, 3 and 21 x 400 schedules: all four caught it)
    const r = caught({ schedules: 100, seed: 21, leases: true, reads: true, unsafe: { quietOmitsSelf: true } });
    expect(r.kinds).toEqual(['lease']);
    const safe = runSchedules({ schedules: r.after, seed: 21, leases: true });
    expect(safe.violations).toBe(0);
  });

  it('keeps the lease bound without leader stickiness: the votes\' quiet measures what stickiness used to promise', () => {
    // With the fixed credit (electionTicks / 2 - 1 ticks), voters without stickiness (run seed 21,
    // schedule 8) and a leader that voted for its successor right after stepping down (run seed
    // 31337, schedule 9,123) both broke the bound. electionQuiet reports the silence each voter
    // really had, so the bound those elections claim is smaller and holds.
    expect(runSchedules({ schedules: 100, seed: 21, leases: true, reads: true, unsafe: { ignoreStickiness: true } }).violations).toBe(0);
    const seed = 2279776454;
    expect(runSchedule({ seed, leases: true, unsafe: { voteRightAfterLeading: true } }).violations).toEqual([]);
    expect(runSchedule({ seed, leases: true, unsafe: { quietOmitsSelf: true } }).violations.map((v) => v.kind)).toEqual(['lease']);
  });

  it('does not call a late leader of an older term incomplete (leader completeness is owed to later terms only)', () => {
    // run seed 4242 schedule 17,366: n1's last vote reply of term 3 arrived after term 4 had
    // committed index 2; n1 leads term 3 without it, which Raft allows (it can commit nothing)
    expect(runSchedule({ seed: 4218116041 }).violations).toEqual([]);
  });

  it('catches a new leader that answers reads before committing an entry of its term (its commit index lags)', () => {
    const r = caught({ schedules: 200, seed: 77, unsafe: { readBeforeTermCommit: true }, reads: true });
    expect(r.kinds).toEqual(['stale-read']);
  });
});

const F8_SEED = 15;
