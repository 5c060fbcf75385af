// The fault harness end to end (test/nemesis/run.mjs as `npm run nemesis` runs it, in a child
// process): a cluster of 3 CLI members behind proxies, 64 recording clients, a seeded schedule,
// final reads and the checkers. Two short runs:
//  - kill -9 + restart (faults today's cluster survives): no acknowledged write lost, get/set
//    registers linearizable, no acknowledged increment lost (increments applied twice and CAS
//    retried are today's known exactly-once bug: counted, not asserted; see the test);
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
function nemesis(args: string[], limitMs: number): Promise<{ code: number | null; out: string; summary: Summary }> {
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
        resolve({ code, out: text, summary: JSON.parse(readFileSync(join(out, 'summary.json'), 'utf8')) as Summary });
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
  it('kill -9 and restart of a member: no acknowledged set or increment is lost and get/set registers stay linearizable', async () => {
    // seed 7's schedule 0 with kill,restart faults: kill -9 m1, restart after ~1.9 s. Registers
    // get get and set only (--no-cas): today a compareAndSet retried after its primary died can
    // be applied and then answered false (measured: seed 1 schedule 2), a known bug of the same
    // family as the increments applied twice (retries are not deduplicated by request id yet).
    const { out, summary } = await nemesis(['--schedules', '1', '--seed', '7', '--duration', '10000', '--faults', 'kill,restart', '--no-cas'], 150_000);
    const s = summary.schedules[0];
    expect(s.error, out).toBeUndefined();
    expect(s.faults.length).toBeGreaterThan(0);
    expect(s.faults.every((f) => f.error === undefined && (f.kind === 'kill' || f.kind === 'restart'))).toBe(true);
    expect(s.ackedSets).toBeGreaterThan(100);
    expect(s.checker.ackedWrites?.valid, out).toBe(true);
    expect(s.lostSets).toBe(0);
    expect(s.staleSets + s.corruptSets + s.unreadKeys).toBe(0);
    expect(s.ackedIncrements).toBeGreaterThan(100);
    expect(s.lostIncrements, out).toBe(0);
    expect(s.linearizable, out).toBe(true);
    expect(s.converged).toBe(true);
    // Not asserted: increments applied twice. Today a retried increment is not deduplicated, so a
    // kill -9 can apply one twice (the counter checker then says INVALID); the figure is printed.
    console.log(`kill -9 run: ${s.lostSets}/${s.ackedSets} sets lost, ${s.lostIncrements}/${s.ackedIncrements} increments lost, ${s.duplicatedIncrements} applied twice, longest write unavailability ${s.longestWriteUnavailabilityMs} ms, convergence ${s.convergenceMs} ms`);
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
