// The CommonJS build: dist/cjs, next to the ES module build in dist/ (see native-notes.md,
// "Package layout"). tsc decides a .ts file's module system from the nearest package.json, so
// the sources are copied to .build/cjs-src under a {"type":"commonjs"} package.json and compiled
// there with the same compiler options. A file `x-cjs.cts` replaces `x.ts` in the copy: the
// CommonJS version of the few lines that differ (lib-file.ts: import.meta vs __dirname).
// The CLI and the demo are ES modules only (the bin runs dist/cli/main.js); they are not copied.
import { cpSync, mkdirSync, readdirSync, rmSync, writeFileSync, renameSync, existsSync } from 'node:fs';
import { spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';

const root = join(dirname(fileURLToPath(import.meta.url)), '..');
const src = join(root, 'src');
const copy = join(root, '.build', 'cjs-src');
const out = join(root, 'dist', 'cjs');
const SKIP = (rel) => rel === 'cli' || rel.startsWith('cli/') || /^demo[^/]*\.ts$/.test(rel);

rmSync(copy, { recursive: true, force: true });
rmSync(out, { recursive: true, force: true });
mkdirSync(copy, { recursive: true });
cpSync(src, copy, { recursive: true, filter: (p) => !SKIP(relative(src, p).split('\\').join('/')) });
const variants = [];
(function swap(dir) {
  for (const e of readdirSync(dir, { withFileTypes: true })) {
    const p = join(dir, e.name);
    if (e.isDirectory()) swap(p);
    else if (e.name.endsWith('-cjs.cts')) {
      const target = p.slice(0, -'-cjs.cts'.length) + '.ts';
      if (!existsSync(target)) throw new Error(`build-cjs: ${relative(copy, p)} replaces nothing (no ${relative(copy, target)})`);
      renameSync(p, target);
      variants.push(relative(copy, target));
    }
  }
})(copy);
writeFileSync(join(copy, 'package.json'), '{ "type": "commonjs" }\n');

const tsc = createRequire(import.meta.url).resolve('typescript/bin/tsc');
const r = spawnSync(process.execPath, [tsc, '-p', join(root, 'tsconfig.cjs.json')], { stdio: 'inherit' });
if (r.status !== 0) process.exit(r.status ?? 1);
writeFileSync(join(out, 'package.json'), '{ "type": "commonjs" }\n');
rmSync(join(root, '.build'), { recursive: true, force: true });
console.log(`build-cjs: dist/cjs written (CommonJS variants: ${variants.join(', ')})`);
