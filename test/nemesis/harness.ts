// Runs test/nemesis/run.mjs in a child process, as `npm run nemesis` does, for the integration
// tests: resolves with its exit code, its output and the folder it wrote (summary.json, ...).
import { spawn } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

const RUN = fileURLToPath(new URL('./run.mjs', import.meta.url));
const ROOT = fileURLToPath(new URL('../..', import.meta.url));
const dirs: string[] = [];

/** Runs the harness with `args` (SIGTERM after limitMs: its handler kills its member processes). */
export function runHarness<S>(args: string[], limitMs: number): Promise<{ code: number | null; out: string; dir: string; summary: S }> {
  const dir = mkdtempSync(join(tmpdir(), 'shardgrid-nemesis-'));
  dirs.push(dir);
  const child = spawn(process.execPath, [RUN, ...args, '--out', dir, '--quiet'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'] });
  let text = '';
  child.stdout.on('data', (d: Buffer) => (text += d.toString()));
  child.stderr.on('data', (d: Buffer) => (text += d.toString()));
  const killer = setTimeout(() => child.kill('SIGTERM'), limitMs);
  return new Promise((resolve, reject) => {
    child.on('close', (code) => {
      clearTimeout(killer);
      try {
        resolve({ code, out: text, dir, summary: JSON.parse(readFileSync(join(dir, 'summary.json'), 'utf8')) as S });
      } catch (err) {
        reject(new Error(`the harness wrote no summary (exit ${code}):\n${text}\n${String(err)}`));
      }
    });
  });
}

/** Removes the folders of every run (call from afterAll). */
export function removeHarnessDirs(): void {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
}
