// The fault harness end to end (test/nemesis/run.mjs as `npm run nemesis` runs it, in a child
// process): a cluster of 3 data members behind proxies (member.mjs: the CLI's options, and 8
// recording clients each by default), 64 recording clients on lite members, a seeded schedule,
// final reads and the checkers. Short runs:
//  - kill -9 + restart: no acknowledged write lost, no acknowledged increment lost and none
//    applied twice, and every register key linearizable (sets carry request ids since protocol
//    4: a set retried after its primary died is not applied again after a later write), with 8
//    clients inside each data member as well (member.mjs: their own-primary writes take the
//    member's local write path);
//  - the leader (coordinator) paused 4 s, the scenario that lost acknowledged writes before the
//    cluster ran on Raft with leases and epoch fencing: the same must hold;
//  - its control for member clients: sets a member acknowledges on its own primary before its
//    backup has them (SHARDGRID_UNSAFE_EARLY_OWN_ACK=1), with member clients only, caught at a kill;
//  - the same pause with the fencing switched off (SHARDGRID_UNSAFE_UNFENCED=1: no lease check,
//    no epoch fence): the negative control, which the harness must catch;
//  - members at 8 MB that evict under the load (`--memory`), a kill and a pause: a key may read
//    absent only where some member recorded evicting it, never older; and its control, an
//    eviction that makes copies drop another key (SHARDGRID_UNSAFE_SHIP_WRONG_KEY=1), caught.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { removeHarnessDirs, runHarness } from './harness.js';

interface ScheduleResult {
  dir: string;
  valid: boolean | 'unknown';
  error?: string;
  faults: { kind: string; description: string; error?: string }[];
  ops: Record<string, { ok: number; fail: number; info: number }>;
  ackedSets: number;
  lostSets: number;
  staleSets: number;
  corruptSets: number;
  unreadKeys: number;
  ackedIncrements: number;
  lostIncrements: number;
  duplicatedIncrements: number;
  linearizable: boolean | 'unknown' | string;
  nonLinearizableKeys: number;
  longestWriteUnavailabilityMs: number;
  convergenceMs: number;
  converged: boolean;
  memberClients?: { perMember: number; invoked: number; ok: number; fail: number; info: number; lostWithProcess: number; malformed: number; aheadMs: number; ofOps: number };
  memory?: { evictions: number; evictionsOtherMaps: number; malformedLines: number; evictedUniqueKeys: number; vanishedSets: number };
  checker: { ackedWrites?: { valid: boolean | 'unknown' }; counters?: { valid: boolean | 'unknown' } };
}

interface Summary {
  totals: Record<string, number>;
  schedules: ScheduleResult[];
}

/** Runs the harness with `args`; resolves with its exit code, output, summary.json and the first schedule's checks. */
async function nemesis(args: string[], limitMs: number): Promise<{ code: number | null; out: string; summary: Summary; check: string }> {
  const { code, out, dir, summary } = await runHarness<Summary>(args, limitMs);
  let check = '';
  try {
    check = readFileSync(join(summary.schedules[0]?.dir ?? join(dir, 'schedule-0'), 'check.txt'), 'utf8');
  } catch {
    /* no checks ran: the summary says why */
  }
  return { code, out, summary, check: `${out}\n${check}` };
}

afterAll(removeHarnessDirs);

describe('nemesis harness (3 data members with 8 clients each, 64 clients on lite members, proxies)', () => {
  const line = (name: string, s: ScheduleResult) =>
    console.log(`${name}: ${s.lostSets}/${s.ackedSets} sets lost, ${s.lostIncrements}/${s.ackedIncrements} increments lost, ${s.duplicatedIncrements} applied twice, linearizable ${String(s.linearizable)} (${s.nonLinearizableKeys} keys not), longest write unavailability ${s.longestWriteUnavailabilityMs} ms, convergence ${s.convergenceMs} ms (${s.converged ? 'converged' : 'NOT converged'})`);

  it('kill -9 and restart of a member: no acknowledged set or increment is lost, none applied twice, registers linearizable, with clients inside the data members too', async () => {
    const { check: out, summary } = await nemesis(['--schedules', '1', '--seed', '7', '--duration', '10000', '--faults', 'kill,restart', '--member-clients', '8'], 170_000);
    const s = summary.schedules[0];
    line('kill -9 run', s);
    console.log(`member clients: ${JSON.stringify(s.memberClients)}`);
    // the data members' own clients ran and are in the checked history (member.mjs)
    const mc = s.memberClients!;
    expect(mc.perMember).toBe(8);
    expect(mc.ok, out).toBeGreaterThan(100);
    expect(mc.malformed).toBe(0);
    expect(mc.aheadMs).toBeLessThanOrEqual(1); // MEMBER_CLOCK_SLACK_MS
    expect(s.error, out).toBeUndefined();
    expect(s.faults.length).toBeGreaterThan(0);
    expect(s.faults.every((f) => f.error === undefined && (f.kind === 'kill' || f.kind === 'restart'))).toBe(true);
    expect(s.ackedSets).toBeGreaterThan(100);
    expect(s.checker.ackedWrites?.valid, out).toBe(true);
    expect(s.lostSets).toBe(0);
    expect(s.staleSets + s.corruptSets + s.unreadKeys).toBe(0);
    expect(s.ackedIncrements).toBeGreaterThan(100);
    expect(s.lostIncrements, out).toBe(0);
    expect(s.duplicatedIncrements, out).toBe(0);
    expect(s.linearizable, out).toBe(true);
    expect(s.converged).toBe(true);
  }, 200_000);

  it('negative control for member clients: a member that acknowledges its own sets before its backup has them loses acknowledged sets at a kill -9', async () => {
    // SHARDGRID_UNSAFE_EARLY_OWN_ACK=1 changes only a data member's sets of its own primaries, so
    // only clients inside the members (no lite clients here) can see it: caught, the member
    // clients' ops are in the checked history. Measured: 265 of 4,226 sets lost (seed 1, 7.4 s).
    const { code, check: out, summary } = await nemesis(['--schedules', '1', '--seed', '1', '--duration', '2000', '--faults', 'restart', '--concurrency', '0', '--member-clients', '8', '--mix', '1,0,0', '--unsafe-early-own-ack'], 120_000);
    const s = summary.schedules[0];
    line('early-own-ack control', s);
    expect(s.error, out).toBeUndefined();
    expect(s.faults.map((f) => f.kind)).toEqual(['restart']);
    expect(s.memberClients!.invoked).toBe(s.memberClients!.ofOps); // member clients only
    expect(s.lostSets, out).toBeGreaterThan(0);
    expect(s.valid).toBe(false);
    expect(code).toBe(1);
  }, 150_000);

  it('the leader paused 4 s: no acknowledged write lost, no increment applied twice', async () => {
    const { check: out, summary } = await nemesis(['--scenario', 'coordinator-pause', '--seed', '1'], 170_000);
    const s = summary.schedules[0];
    line('coordinator-pause run', s);
    expect(s.error, out).toBeUndefined();
    expect(s.faults.map((f) => f.kind)).toEqual(['pause']);
    expect(s.ackedSets).toBeGreaterThan(100);
    expect(s.lostSets, out).toBe(0);
    expect(s.staleSets + s.corruptSets + s.unreadKeys).toBe(0);
    expect(s.lostIncrements, out).toBe(0);
    expect(s.duplicatedIncrements, out).toBe(0);
  }, 200_000);

  it('negative control: the same pause with leases and epoch fencing switched off is caught', async () => {
    // Without the fence a run loses acknowledged writes often but not always (the zombie must
    // have served writes buffered during its pause): measured 2 of 3 runs with sets and counters
    // only, 3 of 3 with registers in the mix. Three fresh clusters, of which at least one must be
    // caught, make a miss of the control itself unlikely (about 1 in 30 at the worse rate). On a
    // loaded machine the clients are slower, fewer writes sit buffered at the zombie, and it is
    // caught less often (0 of 3 once at load 15, 2026-11-26): then three more, on another seed.
    // One schedule per run (--first i), the same schedules in the same order as --schedules 3:
    // the control stops at the first one caught instead of finishing the three. Without member
    // clients (--member-clients 0), as measured above: with 8 per member the members are busier,
    // fewer writes sit buffered at the zombie, and it was caught in 4 of 10 schedules against 5 of
    // 6 without (seeds 1 and 2, 2026-11-28, load 6-9).
    let caught = 0;
    runs: for (const seed of ['1', '2']) {
      for (let i = 0; i < 3; i++) {
        const { code, check: out, summary } = await nemesis(['--scenario', 'coordinator-pause', '--schedules', '1', '--first', String(i), '--seed', seed, '--mix', '1,1,2', '--unsafe-unfenced', '--converge-limit', '10000', '--member-clients', '0'], 150_000);
        const s = summary.schedules[0];
        line(`unfenced coordinator-pause run (seed ${seed}, schedule ${i})`, s);
        expect(s.error, out).toBeUndefined();
        if (s.valid === false) {
          caught++;
          expect(code).toBe(1); // a failed checker makes the runner exit non-zero
          break runs;
        }
      }
    }
    expect(caught).toBe(1);
  }, 900_000);

  it('members at 8 MB, evicting under the load, with a kill and a pause: keys vanish only where a member evicted them, never read older', async () => {
    // 8 MB and values of 12 KB: at 16 MB and 6 KB a loaded machine (the whole suite beside a
    // fault campaign, 2026-11-28) wrote 1,752 sets in the 8 s, too few to fill three members, and
    // nothing was evicted; at 8 MB and 12 KB the same load wrote 1,524 and evicted 841
    const { check: out, summary } = await nemesis(['--schedules', '1', '--seed', '11', '--duration', '8000', '--faults', 'kill,pause', '--memory', '8MB', '--pad', '12000'], 170_000);
    const s = summary.schedules[0];
    line('memory 8MB kill/pause run', s);
    console.log(`memory run: ${JSON.stringify(s.memory)}`);
    expect(s.error, out).toBeUndefined();
    expect(s.memory!.evictions - s.memory!.evictionsOtherMaps, out).toBeGreaterThan(0); // the run was under pressure
    expect(s.memory!.malformedLines).toBe(0);
    expect(s.lostSets, out).toBe(0);
    expect(s.staleSets + s.corruptSets, out).toBe(0);
    expect(s.duplicatedIncrements, out).toBe(0);
    expect(s.nonLinearizableKeys, out).toBe(0);
    expect(s.valid, out).toBe(true);
  }, 200_000);

  it('negative control for the memory mode: copies that drop a key their primary still holds are caught after a kill', async () => {
    // with every eviction, copies are also told to drop the key last replicated in its partition;
    // a kill then promotes copies that lack acknowledged keys no member evicted. Caught with
    // seeds 12 and 13 alone (5 and 6 sets lost that no member evicted, 2026-11-27). A first
    // version shipped the wrong key *instead of* the evicted one: copies then kept every evicted
    // key, filled their members, and the hot keys they damaged were evicted for real (recorded),
    // which hid it in 3 of 4 runs. Without member clients: with 8 per member (busier members, fewer
    // evictions) seeds 12-14 were caught in 2 of 3 runs, against 3 of 3 without (2026-11-28).
    let caught = 0;
    for (const seed of ['12', '13']) {
      const { code, check: out, summary } = await nemesis(['--schedules', '1', '--seed', seed, '--duration', '8000', '--faults', 'kill', '--memory', '16MB', '--pad', '6000', '--unsafe-ship-wrong-key', '--member-clients', '0'], 170_000);
      const s = summary.schedules[0];
      line(`wrong-key control (seed ${seed})`, s);
      expect(s.error, out).toBeUndefined();
      if (s.valid === false) {
        caught++;
        expect(s.lostSets + s.nonLinearizableKeys, out).toBeGreaterThan(0);
        expect(code).toBe(1);
        break;
      }
    }
    expect(caught).toBe(1);
  }, 400_000);
});

