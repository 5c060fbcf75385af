import { spawnSync } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { acceptedBy, refusedFlags, workerExecArgv } from '../dist/runtime/exec-argv.js';

const FIXTURE = fileURLToPath(new URL('./fixtures/flags-grid.mjs', import.meta.url));

describe('workerExecArgv', () => {
  it('drops the host script flags and keeps the rest', () => {
    expect(workerExecArgv(['--input-type=module', '-e', 'x()', '--inspect'])).toEqual(['--inspect']);
    expect(workerExecArgv(['-p', '1+1', '--input-type', 'module', '--max-old-space-size=100'])).toEqual(['--max-old-space-size=100']);
    expect(workerExecArgv(['--eval=x()', '--print=1', '-i', '--enable-source-maps'])).toEqual(['--enable-source-maps']);
    expect(workerExecArgv(['--loader', 'x.mjs'])).toEqual(['--loader', 'x.mjs']);
    expect(workerExecArgv([])).toEqual([]);
  });
});

describe('flags a worker cannot take', () => {
  const refusal = (flags: string[]) => Object.assign(new Error(`Initiated Worker with invalid execArgv flags: ${flags.join(', ')}`), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' });

  it('reads the refused flags from Node’s message', () => {
    expect(refusedFlags(refusal(['--max-old-space-size=64', '--expose-gc']).message)).toEqual(['--max-old-space-size=64', '--expose-gc']);
    expect(refusedFlags('something else')).toEqual([]);
  });

  it('drops what is refused, keeps the rest, and gives up to no flags on a message it cannot read', () => {
    const process = new Set(['--max-old-space-size=64', '--expose-gc', '--title=x']);
    const tries: string[][] = [];
    const node = (a: string[]) => {
      tries.push(a);
      const bad = a.filter((f) => process.has(f));
      if (bad.length > 0) throw refusal(bad);
    };
    expect(acceptedBy(['--enable-source-maps', '--expose-gc', '--conditions=x', '--title=x'], node)).toEqual(['--enable-source-maps', '--conditions=x']);
    expect(tries.length).toBe(2);
    // an unreadable refusal: no flags at all, which our own workers run with
    let n = 0;
    const odd = (a: string[]) => {
      n++;
      if (a.length > 0) throw Object.assign(new Error('refused'), { code: 'ERR_WORKER_INVALID_EXEC_ARGV' });
    };
    expect(acceptedBy(['--a', '--b'], odd)).toEqual([]);
    expect(n).toBe(2);
    // any other error is not ours to swallow
    expect(() => acceptedBy(['--a'], () => { throw new TypeError('boom'); })).toThrow(TypeError);
  });

  // Before the fix, `node --max-old-space-size=… app.js` (or --expose-gc, --title, --perf-basic-prof,
  // --prof) could not create a grid at all: the workers' explicit execArgv made Node throw
  // ERR_WORKER_INVALID_EXEC_ARGV out of createGrid.
  const cases: Array<[string, string[]]> = [
    ['a script under process-wide flags', ['--max-old-space-size=256', '--expose-gc', '--title=sg-flags', FIXTURE]],
    ['a script under V8 tuning flags', ['--stack-size=1500', '--max-semi-space-size=32', FIXTURE]],
    ['node -e under process-wide flags (the workers get an explicit list)', ['--max-old-space-size=256', '--enable-source-maps', '-e', `import(${JSON.stringify(FIXTURE)})`]],
    ['node --input-type=module -e', ['--input-type=module', '--expose-gc', '-e', `await import(${JSON.stringify(FIXTURE)})`]],
  ];
  for (const [name, args] of cases) {
    it(`creates a grid with virtual nodes and a compute pool: ${name}`, { timeout: 60_000 }, () => {
      const r = spawnSync(process.execPath, args, { encoding: 'utf8', timeout: 50_000 });
      expect(r.stderr).not.toMatch(/ERR_WORKER_INVALID_EXEC_ARGV|Error/);
      expect(r.status).toBe(0);
      const out = JSON.parse(r.stdout.trim().split('\n').pop()!);
      expect(out).toMatchObject({ got: 41, sum: 43, workers: 2 });
      expect(out.execArgv.length).toBeGreaterThan(0);
    });
  }
});
