import { describe, expect, it } from 'vitest';
import { workerExecArgv } from '../dist/runtime/exec-argv.js';

describe('workerExecArgv', () => {
  it('drops the host script flags and keeps the rest', () => {
    expect(workerExecArgv(['--input-type=module', '-e', 'x()', '--inspect'])).toEqual(['--inspect']);
    expect(workerExecArgv(['-p', '1+1', '--input-type', 'module', '--max-old-space-size=100'])).toEqual(['--max-old-space-size=100']);
    expect(workerExecArgv(['--eval=x()', '--print=1', '-i', '--enable-source-maps'])).toEqual(['--enable-source-maps']);
    expect(workerExecArgv(['--loader', 'x.mjs'])).toEqual(['--loader', 'x.mjs']);
    expect(workerExecArgv([])).toEqual([]);
  });
});
