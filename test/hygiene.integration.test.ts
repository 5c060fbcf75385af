// Process hygiene (issue 15): one 'worker' listener however many grids; a virtual node whose
// replacement cannot start is reported and retried with backoff, not swallowed in a tight loop.
import { spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { resolveOptions } from '../dist/config.js';

const fixture = (name: string) => fileURLToPath(new URL(`./fixtures/${name}`, import.meta.url));

function child(args: string[], env: Record<string, string> = {}, boundMs = 120_000): Promise<{ out: string; err: string; code: number | null }> {
  return new Promise((resolve, reject) => {
    const cp = spawn(process.execPath, args, { stdio: ['ignore', 'pipe', 'pipe'], env: { ...process.env, ...env } });
    let out = '';
    let err = '';
    cp.stdout.on('data', (d) => (out += d));
    cp.stderr.on('data', (d) => (err += d));
    const t = setTimeout(() => cp.kill('SIGKILL'), boundMs);
    cp.once('error', reject);
    cp.once('exit', (code) => {
      clearTimeout(t);
      resolve({ out, err, code });
    });
  });
}

describe('process hygiene', () => {
  it('a hundred grids (and a hundred attached grids) in one process add one worker listener and raise no warning', { timeout: 180_000 }, async () => {
    const r = await child([fixture('many-grids.mjs')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.out) as { warnings: string[]; listeners: number; after: number; value: string };
    expect(out.warnings).toEqual([]);
    expect(out.listeners).toBe(1);
    expect(out.after).toBe(1); // the library's own, added when it loads and kept: workers started before a grid are watched too
    expect(out.value).toBe('GRID_ERR_CLOSED');
  });

  it('a worker started before the grid was created is watched too: a lock it dies holding is recovered', { timeout: 60_000 }, async () => {
    // The process 'worker' listener used to be added by the first createGrid: a worker started
    // before (a pool started at boot) had no exit watcher, and a lock it died holding stayed
    // taken — every later write of that partition failed with GRID_ERR_LOCK_TIMEOUT.
    const r = await child([fixture('early-worker.mjs')]);
    expect(r.err).toBe('');
    expect(r.code).toBe(0);
    expect(JSON.parse(r.out)).toEqual({ code: 7, set: 'ok', value: 'after', recoveries: 1 });
  });

  it('attached grids a thread never closes are not kept alive by the library', { timeout: 60_000 }, async () => {
    const r = await child(['--expose-gc', fixture('attach-unclosed.mjs')]);
    expect(r.err).toBe('');
    // (the most recent one may stay referenced by a per-thread cache; before the fix all 50 stayed)
    expect((JSON.parse(r.out) as { alive: number }).alive).toBeLessThanOrEqual(1);
  });

  it('a virtual node whose replacement fails to start is reported on each failure, retried with growing delays, and back once it can start', { timeout: 120_000 }, async () => {
    const dir = mkdtempSync(join(tmpdir(), 'shardgrid-respawn-'));
    try {
      const r = await child(['--require', fixture('fail-in-worker.cjs'), fixture('respawn-fail.mjs')], { SHARDGRID_TEST_FAIL_FLAG: join(dir, 'fail') });
      expect(r.code).toBe(0);
      const out = JSON.parse(r.out) as { lines: string[]; down: { up: boolean; failedStarts: number }; up: { up: boolean; restarts: number; failedStarts: number }; gaps: number[]; value: string };
      expect(out.lines[0]).toMatch(/virtual node 0 exited unexpectedly/);
      const failures = out.lines.filter((l) => /could not be restarted \(attempt \d+\); retrying in \d+ ms/.test(l));
      expect(failures.length).toBeGreaterThanOrEqual(4);
      expect(failures[0]).toContain('induced start failure');
      expect(out.down).toMatchObject({ up: false });
      expect(out.down.failedStarts).toBeGreaterThanOrEqual(4);
      // the delays double (100, 200, 400 ms, …): the gap between failures i+1 and i+2 is at least
      // the delay waited after failure i+1 (a lower bound only: a loaded machine makes it longer)
      expect(out.gaps.length).toBe(3);
      out.gaps.forEach((g, i) => expect(g).toBeGreaterThanOrEqual(100 * 2 ** i - 5));
      expect(out.lines.some((l) => /virtual node 0 restarted after \d+ failed attempt/.test(l))).toBe(true);
      expect(out.up.up).toBe(true);
      expect(out.up.restarts).toBeGreaterThan(0);
      expect(out.value).toBe('v');
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  it('a lite member listens on any free port by default; a data member on 7400', () => {
    const secret = 'x'.repeat(32);
    const seeds = ['ws://127.0.0.1:7400'];
    expect(resolveOptions({ cluster: { lite: true, secret, seeds } }).cluster!.port).toBe(0);
    expect(resolveOptions({ cluster: { secret } }).cluster!.port).toBe(7400);
    expect(resolveOptions({ cluster: { lite: true, port: 7500, secret, seeds } }).cluster!.port).toBe(7500);
  });
});
