// `npm pack` of a fresh clone (no dist/) builds first (the prepack script) and ships the same
// files as a pack of this working tree after `npm test`'s build: issue 15 found a fresh clone's
// tarball with 3 files. Two tsc passes: the slowest package test, so it has its own file.
import { cpSync, existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { REPO, run } from './consumer.js';

function packed(stdout: string): string[] {
  const info = JSON.parse(stdout.slice(stdout.indexOf('['))) as Array<{ files: Array<{ path: string }> }>;
  return info[0].files.map((f) => f.path).sort();
}

describe('prepack', () => {
  const root = mkdtempSync(join(tmpdir(), 'shardgrid-prepack-'));
  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it('npm pack of a clean checkout builds first: the tarball holds the same files as a pack of the built tree', { timeout: 240_000 }, async () => {
    const built = await run('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], REPO);
    expect(built.code).toBe(0);
    // a copy of the working tree's tracked and new files (so no dist/), sharing node_modules
    const listed = await run('git', ['ls-files', '--cached', '--others', '--exclude-standard', '-z'], REPO);
    const clone = join(root, 'clone');
    for (const f of listed.stdout.split('\0').filter(Boolean)) if (existsSync(join(REPO, f))) cpSync(join(REPO, f), join(clone, f));
    await run('ln', ['-s', join(REPO, 'node_modules'), join(clone, 'node_modules')], root);
    expect(existsSync(join(clone, 'dist'))).toBe(false);
    const r = await run('npm', ['pack', '--dry-run', '--json'], clone, 230_000);
    expect(r.code).toBe(0);
    const files = packed(r.stdout);
    expect(files).toContain('dist/index.js');
    expect(files).toContain('dist/cjs/index.js');
    expect(files).toEqual(packed(built.stdout));
  });
});
