// Every `js` block of README.md runs as pasted (issue 15), in a fresh `npm init -y` project that
// installed the packed tarball. A block whose first line is `// name.mjs` (or .cjs, .js) is saved
// under that name, others as readme-<n>.mjs; every block is saved before any runs, so one can
// import another. An HTML comment right above a block changes that, visibly in the README source:
// `<!-- readme-test: no-run (why) -->` saves it without running it (a worker or module file),
// `<!-- readme-test: skip (why) -->` leaves it out (it needs a running cluster), and
// `<!-- readme-test: install pkg@range … -->` runs it after installing those packages from the
// registry next to the tarball (an example of shardgrid with another library, e.g. keyv).
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, node, packAndInstall, type Consumer } from './consumer.js';

interface Block {
  line: number;
  file: string;
  code: string;
  mode: 'run' | 'no-run' | 'skip';
  /** Packages the block needs installed besides shardgrid. */
  install: string[];
}

function readmeBlocks(text: string): Block[] {
  const lines = text.split('\n');
  const blocks: Block[] = [];
  for (let i = 0; i < lines.length; i++) {
    if (lines[i] !== '```js') continue;
    const end = lines.indexOf('```', i + 1);
    const code = lines.slice(i + 1, end).join('\n') + '\n';
    let k = i - 1;
    while (k >= 0 && lines[k].trim() === '') k--;
    const marker = /^<!-- readme-test: (skip|no-run)\b/.exec(lines[k] ?? '');
    const named = /^\/\/ ([\w.-]+\.(?:mjs|cjs|js))\b/.exec(lines[i + 1] ?? '');
    const install = /^<!-- readme-test: install ([\w@./^~-]+(?: [\w@./^~-]+)*)/.exec(lines[k] ?? '');
    blocks.push({ line: i + 1, file: named?.[1] ?? `readme-${blocks.length + 1}.mjs`, code, mode: (marker?.[1] as Block['mode']) ?? 'run', install: install?.[1].split(' ') ?? [] });
    i = end;
  }
  return blocks;
}

const blocks = readmeBlocks(readFileSync(join(REPO, 'README.md'), 'utf8'));

describe('README code blocks, run from a project that installed the packed tarball', () => {
  let c: Consumer;
  beforeAll(async () => {
    c = await packAndInstall([...new Set(blocks.flatMap((b) => b.install))]);
    for (const b of blocks) if (b.mode !== 'skip') writeFileSync(join(c.project, b.file), b.code);
  }, 180_000);
  afterAll(() => c?.dispose());

  it('finds the quick start and the install snippets, and every block it leaves out is marked in the README', () => {
    const byFile = new Map(blocks.map((b) => [b.file, b]));
    for (const f of ['quickstart.mjs', 'worker.mjs', 'app.cjs', 'app.mjs', 'compute.mjs', 'procs.mjs', 'keyv.mjs']) expect(byFile.has(f), f).toBe(true);
    expect(byFile.get('keyv.mjs')!.install.length).toBeGreaterThan(0);
    expect(byFile.get('quickstart.mjs')!.mode).toBe('run');
    expect(new Set(blocks.map((b) => b.file)).size).toBe(blocks.length); // no two blocks overwrite one file
    expect(blocks.filter((b) => b.mode === 'skip').length).toBeLessThanOrEqual(1);
  });

  for (const b of blocks.filter((x) => x.mode === 'run')) {
    it(`README line ${b.line}: ${b.file} runs as pasted and exits cleanly`, { timeout: 150_000 }, async () => {
      const r = await node([b.file], c.project, 140_000);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      if (b.file === 'quickstart.mjs') {
        const out = r.stdout.split('\n');
        expect(out[0]).toBe("{ name: 'Ada' }");
        expect(out[1]).toBe('1');
        expect(out).toContain("[ { name: 'Ada' }, undefined ]");
        expect(out.filter((l) => l === "{ name: 'Ada' }").length).toBe(2); // the main thread's get and the worker's
      }
    });
  }
});
