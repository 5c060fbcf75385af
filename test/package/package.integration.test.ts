// The package as a new user gets it (issue 15): the packed tarball installed into an empty
// `npm init -y` project, used through require(), import() and TypeScript (skipLibCheck: false),
// and checked by publint and @arethetypeswrong/cli. One pack and one install serve every test.
import { cpSync, existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO, node, packAndInstall, readJson, run, type Consumer } from './consumer.js';

const FIXTURES = new URL('./fixtures/', import.meta.url);
const BIN = (name: string) => join(REPO, 'node_modules', '.bin', name);

/** The warning lines of an npm run: `npm warn …` (npm 11) or `npm WARN …` (older). */
function warnings(out: string): string[] {
  return out.split('\n').filter((l) => /^npm warn/i.test(l));
}

describe('the packed tarball in a fresh npm init -y project', () => {
  let c: Consumer;
  const started = Date.now();
  beforeAll(async () => {
    c = await packAndInstall(['@types/node@20']);
    cpSync(FIXTURES, c.project, { recursive: true });
    console.log(`pack and install: ${Date.now() - started} ms`);
  }, 180_000);
  afterAll(() => c?.dispose());

  it('ships the library (dist, its maps and the sources they point at), LICENSE and the docs, and no demo', () => {
    const files = new Set(c.files);
    expect(files.has('LICENSE')).toBe(true);
    expect(files.has('dist/index.js') && files.has('dist/index.d.ts') && files.has('dist/cjs/index.js') && files.has('dist/cjs/index.d.ts')).toBe(true);
    expect(files.has('dist/runtime/worker.js') && files.has('dist/cjs/runtime/worker.js') && files.has('dist/cjs/compute/pool-worker.js')).toBe(true);
    expect(files.has('dist/cjs/package.json')).toBe(true);
    expect(c.files.filter((f) => /(^|\/)demo/.test(f))).toEqual([]);
    // every source map points at a file that is in the tarball
    const unresolved: string[] = [];
    for (const f of c.files.filter((x) => x.endsWith('.map'))) {
      const map = readJson<{ sources: string[] }>(join(c.project, 'node_modules', 'shardgrid', f));
      for (const s of map.sources) {
        const target = join(f, '..', s).split('\\').join('/');
        if (!files.has(target)) unresolved.push(`${f} -> ${s}`);
      }
    }
    expect(c.files.some((f) => f.endsWith('.map'))).toBe(true);
    expect(unresolved).toEqual([]);
    const pkg = readJson<Record<string, unknown>>(join(c.project, 'node_modules', 'shardgrid', 'package.json'));
    expect(readFileSync(join(REPO, 'LICENSE'), 'utf8')).toContain(`${pkg.license} License`);
    for (const k of ['repository', 'homepage', 'bugs', 'keywords']) expect(pkg[k], k).toBeDefined();
  });

  it('installs only runtime dependencies: no bench or test packages', () => {
    const lock = readJson<{ packages: Record<string, unknown> }>(join(c.project, 'package-lock.json'));
    const names = Object.keys(lock.packages).map((p) => p.replace(/^.*node_modules\//, ''));
    for (const dev of ['tinybench', 'lru-cache', 'ioredis', 'fast-check', 'vitest', 'typescript', '@types/ws']) expect(names, dev).not.toContain(dev);
    expect(names).toContain('msgpackr');
    expect(names).toContain('ws');
  });

  it("prints no warning but npm 11's notice about msgpackr-extract's install script, which the prebuilt addon does not need", async () => {
    // msgpackr has msgpackr-extract (a native string decoder) as an optional dependency; npm 11
    // skips its install script (node-gyp-build-optional-packages) unless the project approves it
    // and says so. Nothing a dependency declares can answer for the consumer (allowScripts and
    // overrides are read from the root project only). The script only compiles from source
    // where no prebuilt package exists; the prebuilt one loads without it:
    const other = warnings(c.install.stdout + c.install.stderr).filter((l) => !/install-scripts/.test(l));
    expect(other).toEqual([]);
    const notice = warnings(c.install.stderr).filter((l) => /msgpackr-extract@|[a-z-]+@\d/.test(l));
    for (const l of notice) expect(l).toMatch(/msgpackr-extract@/);
    const prebuilt = existsSync(join(c.project, 'node_modules', '@msgpackr-extract', `msgpackr-extract-${process.platform}-${process.arch}`));
    const accel = await node(['-p', "require('msgpackr').isNativeAccelerationEnabled"], c.project);
    if (prebuilt) expect(accel.stdout.trim()).toBe('true');
    // the README's advice: record the decision once, and installs are silent
    const deny = await run('npm', ['install-scripts', 'deny', 'msgpackr-extract'], c.project);
    expect(deny.code).toBe(0);
    const again = await run('npm', ['install', '--no-audit', '--no-fund'], c.project);
    expect(again.code).toBe(0);
    expect(warnings(again.stdout + again.stderr)).toEqual([]);
  }, 120_000);

  it('require("shardgrid") loads the CommonJS build, whose virtual nodes and compute pool run', async () => {
    const r = await node(['use.cjs'], c.project);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.entry).toMatch(/node_modules[\\/]shardgrid[\\/]dist[\\/]cjs[\\/]index\.js$/);
    expect(out).toMatchObject({ get: 7, sum: 5050, workers: 2, code: 'GRID_ERR_INVALID_ARGUMENT' });
  });

  it('import("shardgrid") loads the ES module build with the same exports, and errors are GridErrors of both copies', async () => {
    const r = await node(['use.mjs'], c.project);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as Record<string, unknown>;
    expect(out.entry).toMatch(/node_modules\/shardgrid\/dist\/index\.js$/);
    expect(out).toMatchObject({ get: 7, sum: 5050, workers: 2, cjsIsOtherCopy: true, crossCode: 'GRID_ERR_INVALID_OPTION' });
    const cjs = JSON.parse((await node(['use.cjs'], c.project)).stdout) as { exports: string[] };
    expect(out.exports).toEqual(cjs.exports.filter((k) => k !== 'default' && k !== '__esModule'));
  });

  // tsc over every declaration file takes 20-60 s on this loaded 2-core machine: a generous deadline
  it('a TypeScript consumer (ESM and CommonJS files, skipLibCheck: false) compiles with the repository\'s tsc', { timeout: 240_000 }, async () => {
    const r = await node([join(REPO, 'node_modules', 'typescript', 'bin', 'tsc'), '-p', join(c.project, 'ts')], c.project, 230_000);
    expect(r.stdout + r.stderr).toBe('');
    expect(r.code).toBe(0);
  });

  it('publint finds nothing in the tarball', async () => {
    const r = await run(BIN('publint'), ['run', '--strict', c.tarball], c.root);
    expect(r.stdout + r.stderr).toContain('All good!');
    expect(r.code).toBe(0);
  });

  it('@arethetypeswrong/cli finds no problem in the tarball', async () => {
    const r = await run(BIN('attw'), ['--format', 'json', c.tarball], c.root);
    const report = JSON.parse(r.stdout) as { analysis: { problems: unknown[] } };
    expect(report.analysis.problems).toEqual([]);
    expect(r.code).toBe(0);
  });
});
