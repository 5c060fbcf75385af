// The fault harness end to end (test/nemesis/run.mjs as `npm run nemesis` runs it, in a child
// process): a cluster of 3 CLI members behind proxies, 64 recording clients, a seeded schedule,
// final reads and the checkers. Two short runs:
//  - kill -9 + restart (today's cluster loses no acknowledged write there): no acknowledged set
//    or increment lost. Increments applied twice and non-linearizable registers (retried writes
//    applied again: today's exactly-once bug) are counted and printed, not asserted: see the test;
//  - the coordinator paused 4 s: the negative control. Today's cluster loses acknowledged writes
//    there, and the harness must say so. When the Raft + fencing work lands, this test is meant
//    to fail: then replace it with the same run asserting valid.
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';

const RUN = fileURLToPath(new URL('./run.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];

interface ScheduleResult {
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
  checker: { ackedWrites?: { valid: boolean | 'unknown' }; counters?: { valid: boolean | 'unknown' } };
}

interface Summary {
  totals: Record<string, number>;
  schedules: ScheduleResult[];
}

/** Runs the harness with `args`; resolves with its exit code, output and summary.json. */
function nemesis(args: string[], limitMs: number): Promise<{ code: number | null; out: string; summary: Summary; check: string }> {
  const out = mkdtempSync(join(tmpdir(), 'shardgrid-nemesis-'));
  dirs.push(out);
  const child = spawn(process.execPath, [RUN, ...args, '--out', out, '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  // SIGTERM: the runner's handler kills its member processes before exiting
  const killer = setTimeout(() => child.kill('SIGTERM'), limitMs);
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      try {
        const summary = JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary;
        let check = '';
        try {
          check = readFileSync(join(out, 'schedule-0', 'check.txt'), 'utf8');
        } catch {
          /* no checks ran: the summary says why */
        }
        resolve({ code, out: text, summary, check: `${text}\n${check}` });
      } catch (err) {
        reject(new Error(`the harness wrote no summary (exit ${code}):\n${text}\n${String(err)}`));
      }
    });
  });
}

afterAll(() => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

describe('nemesis harness (3 CLI members, 64 clients, proxies)', () => {
  it('kill -9 and restart of a member: no acknowledged set or increment is lost (register linearizability is checked and reported, not asserted)', async () => {
    // seed 7's schedule 0 with kill,restart faults: kill -9 m1, restart after ~1.9 s.
    // Not asserted, because today's cluster does not survive them and the harness says so:
    //  - increments applied twice (a retried increment is not deduplicated by request id);
    //  - register linearizability: a set or cas retried after its primary died is applied again
    //    after later writes (seen: a get/set-only run, 2 of 8 runs of this schedule non-linearizable;
    //    a cas applied and then answered false). When exactly-once retries land, assert
    //    s.linearizable === true and s.duplicatedIncrements === 0 here.
    const { out, summary, check } = await nemesis(['--schedules', '1', '--seed', '7', '--duration', '10000', '--faults', 'kill,restart'], 150_000);
    const s = summary.schedules[0];
    expect(s.error, out).toBeUndefined();
    expect(s.faults.length).toBeGreaterThan(0);
    expect(s.faults.every((f) => f.error === undefined && (f.kind === 'kill' || f.kind === 'restart'))).toBe(true);
    expect(s.ackedSets).toBeGreaterThan(100);
    expect(s.checker.ackedWrites?.valid, check).toBe(true);
    expect(s.lostSets).toBe(0);
    expect(s.staleSets + s.corruptSets + s.unreadKeys).toBe(0);
    expect(s.ackedIncrements).toBeGreaterThan(100);
    expect(s.lostIncrements, check).toBe(0);
    expect([true, false]).toContain(s.linearizable); // the search finished: a verdict, not 'unknown'
    expect(s.converged).toBe(true);
    console.log(`kill -9 run: ${s.lostSets}/${s.ackedSets} sets lost, ${s.lostIncrements}/${s.ackedIncrements} increments lost, ${s.duplicatedIncrements} applied twice, linearizable ${String(s.linearizable)} (${s.nonLinearizableKeys} keys), longest write unavailability ${s.longestWriteUnavailabilityMs} ms, convergence ${s.convergenceMs} ms`);
  }, 180_000);

  it('coordinator paused 4 s (negative control): the harness reports lost acknowledged writes on today\'s cluster', async () => {
    const { code, out, summary } = await nemesis(['--scenario', 'coordinator-pause', '--seed', '1', '--converge-limit', '10000'], 150_000);
    const s = summary.schedules[0];
    expect(s.error, out).toBeUndefined();
    expect(s.faults.map((f) => f.kind)).toEqual(['pause']);
    console.log(`coordinator-pause run: ${s.lostSets}/${s.ackedSets} sets lost, ${s.lostIncrements}/${s.ackedIncrements} increments lost, ${s.duplicatedIncrements} applied twice, longest write unavailability ${s.longestWriteUnavailabilityMs} ms, converged ${s.converged}`);
    expect(s.lostSets + s.lostIncrements, out).toBeGreaterThan(0);
    expect(s.valid).toBe(false);
    expect(code).toBe(1); // a failed checker makes the runner exit non-zero
  }, 180_000);
});
