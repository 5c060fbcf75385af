// The logger option (issue 15): a pino-compatible logger gets every message at its level;
// without one the library is silent but for warnings, each kind once, as process warnings; and
// no library code writes to the console or emits process warnings behind the logger's back.
import { readFileSync, readdirSync } from 'node:fs';
import { join, relative } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { createGrid, InvalidOptionError } from '../dist/index.js';
import { createLog } from '../dist/log.js';

const SRC = fileURLToPath(new URL('../src/', import.meta.url));

describe('logger', () => {
  it('with a logger: every message at its level, the error as pino context, nothing on the process', () => {
    const got: Array<[string, unknown, unknown]> = [];
    const logger = {
      debug: (o: unknown, m?: string) => got.push(['debug', o, m]),
      info: (o: unknown, m?: string) => got.push(['info', o, m]),
      warn: (o: unknown, m?: string) => got.push(['warn', o, m]),
      error: (o: unknown, m?: string) => got.push(['error', o, m]),
    };
    const warned: string[] = [];
    const onWarning = (w: Error) => warned.push(w.message);
    process.on('warning', onWarning);
    try {
      const log = createLog(logger, () => 'shardgrid m-1', 'SHARDGRID_TEST');
      const err = new Error('boom');
      log('info', 'joined');
      log('warn', 'peer 1 slow');
      log('warn', 'peer 2 slow');
      log('error', 'lost', err);
      expect(got).toEqual([
        ['info', 'shardgrid m-1: joined', undefined],
        ['warn', 'shardgrid m-1: peer 1 slow', undefined],
        ['warn', 'shardgrid m-1: peer 2 slow', undefined],
        ['error', { err }, 'shardgrid m-1: lost'],
      ]);
    } finally {
      process.off('warning', onWarning);
    }
    expect(warned).toEqual([]);
  });

  it('without a logger: info and debug are dropped, warnings become process warnings once per kind', async () => {
    const warned: Array<{ message: string; code: unknown }> = [];
    const onWarning = (w: Error & { code?: unknown }) => warned.push({ message: w.message, code: w.code });
    process.on('warning', onWarning);
    try {
      const log = createLog(undefined, () => 'shardgrid test', 'SHARDGRID_TEST_ONCE');
      log('info', 'joined');
      log('debug', 'tick');
      log('warn', 'virtual node 1 could not be restarted (attempt 1)', new Error('cause'));
      log('warn', 'virtual node 1 could not be restarted (attempt 2)');
      log('warn', 'another kind of warning');
      await new Promise((r) => setImmediate(r)); // process warnings are emitted on the next tick
    } finally {
      process.off('warning', onWarning);
    }
    expect(warned).toEqual([
      { message: 'shardgrid test: virtual node 1 could not be restarted (attempt 1): cause', code: 'SHARDGRID_TEST_ONCE' },
      { message: 'shardgrid test: another kind of warning', code: 'SHARDGRID_TEST_ONCE' },
    ]);
  });

  it('createGrid refuses a logger without the four methods, naming options.logger', async () => {
    await expect(createGrid({ workers: 1, logger: { warn() {} } as never })).rejects.toBeInstanceOf(InvalidOptionError);
    await expect(createGrid({ workers: 1, logger: console.log as never })).rejects.toThrow(/options\.logger must be a pino-compatible logger/);
  });

  it('library code (src/, but the CLI and the demo) writes nothing to the console and emits no process warning but through log.ts', () => {
    const offenders: string[] = [];
    const walk = (dir: string): void => {
      for (const e of readdirSync(dir, { withFileTypes: true })) {
        const p = join(dir, e.name);
        const rel = relative(SRC, p).split('\\').join('/');
        if (e.isDirectory()) {
          if (rel !== 'cli') walk(p);
        } else if (/\.c?ts$/.test(e.name) && !rel.startsWith('demo') && rel !== 'log.ts') {
          readFileSync(p, 'utf8').split('\n').forEach((line, i) => {
            const code = line.replace(/\/\/.*$/, '').replace(/^\s*\*.*$/, '');
            if (/\bconsole\.(log|warn|error|info|debug|trace)\b|process\.emitWarning/.test(code)) offenders.push(`${rel}:${i + 1}: ${line.trim()}`);
          });
        }
      }
    };
    walk(SRC);
    expect(offenders).toEqual([]);
  });
});
