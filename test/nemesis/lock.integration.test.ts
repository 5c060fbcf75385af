// The lock workload of the fault harness (test/nemesis/run.mjs --workload lock, in child
// processes): grid.cp lock clients in processes of their own take one lock, read and write a
// fenced resource with the token, pause themselves (and get SIGSTOPped) past their lease, while a
// member is paused or killed. Two short seeded runs, side by side:
//  - grid.cp's fenced lock: no overlapping critical section accepted, no lost update, no token
//    granted twice, and the fence did refuse paused holders (so the pauses did matter);
//  - the negative control (--unsafe-ttl-lock: a TTL-only lock and an unfenced resource): the
//    checker must catch overlapping sections and lost updates.
import { afterAll, describe, expect, it } from 'vitest';
import { removeHarnessDirs, runHarness } from './harness.js';

interface LockResult {
  valid: boolean;
  error?: string;
  acceptedSections: number;
  refused: number;
  overlaps: number;
  lostUpdates: number;
  duplicateTokens: number;
  tokenOrder: number;
  selfPauses?: number;
  clientPauses: number;
}

async function run(args: string[], limitMs: number): Promise<{ code: number | null; out: string; r: LockResult }> {
  const { code, out, summary } = await runHarness<{ schedules: LockResult[] }>(['--workload', 'lock', ...args], limitMs);
  return { code, out, r: summary.schedules[0] };
}

afterAll(removeHarnessDirs);

describe.concurrent('nemesis lock workload', () => {
  it('grid.cp fenced lock: paused holders are refused by the fence; no overlapping section, no lost update, no token twice', async () => {
    const { code, out, r } = await run(['--seed', '11', '--duration', '6000', '--faults', 'pause,kill', '--lock-clients', '3'], 150_000);
    expect(r.error, out).toBeUndefined();
    expect(r.acceptedSections).toBeGreaterThan(2); // progress (a leader kill and paused holders slow it a lot here)
    expect(r.overlaps).toBe(0);
    expect(r.lostUpdates).toBe(0);
    expect(r.duplicateTokens).toBe(0);
    expect(r.tokenOrder).toBe(0);
    expect(r.valid).toBe(true);
    expect(code).toBe(0);
    // the pauses put holders past their lease (else this run shows nothing)
    expect((r.selfPauses ?? 0) + r.clientPauses).toBeGreaterThan(0);
  }, 180_000);

  it('negative control: a TTL-only lock without fencing is caught with overlapping sections and lost updates', async () => {
    const { code, out, r } = await run(['--seed', '11', '--duration', '6000', '--faults', 'pause,kill', '--lock-clients', '3', '--unsafe-ttl-lock'], 150_000);
    expect(r.error, out).toBeUndefined();
    expect(r.overlaps).toBeGreaterThan(0);
    expect(r.lostUpdates).toBeGreaterThan(0);
    expect(r.valid).toBe(false);
    expect(code).toBe(1);
  }, 180_000);
});
