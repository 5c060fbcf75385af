import os from 'node:os';
import { describe, expect, it } from 'vitest';
import { DEFAULTS, parseBytes, resolveMapOptions, resolveOptions } from '../src/config.js';
import { InvalidOptionError } from '../src/errors.js';

const MB = 1024 * 1024;

function rejects(opts: unknown, path: string): void {
  let err: unknown;
  try {
    resolveOptions(opts as never);
  } catch (e) {
    err = e;
  }
  expect(err).toBeInstanceOf(InvalidOptionError);
  expect((err as InvalidOptionError).message.startsWith(path + ' ')).toBe(true);
  expect((err as InvalidOptionError).data).toEqual({ option: path });
}

describe('options', () => {
  it('fills the defaults and freezes the result', () => {
    const o = resolveOptions();
    expect(o).toEqual({
      workers: os.availableParallelism(), partitions: 271, memory: 256 * MB, maxKeyBytes: 4096,
      maxValueBytes: MB, lockTimeout: 5000, expiryInterval: 100, maxMaps: 256, cluster: undefined,
    });
    expect(Object.isFrozen(o)).toBe(true);
    expect(Object.isFrozen(DEFAULTS)).toBe(true);
  });

  it.each([
    [{ workers: 0 }, 'options.workers'], [{ workers: 1.5 }, 'options.workers'], [{ workers: 'two' }, 'options.workers'],
    [{ partitions: 0 }, 'options.partitions'], [{ partitions: 70000 }, 'options.partitions'],
    [{ memory: 'lots' }, 'options.memory'], [{ memory: -1 }, 'options.memory'], [{ memory: '1MB' }, 'options.memory'], [{ memory: '64GB' }, 'options.memory'],
    [{ maxKeyBytes: 0 }, 'options.maxKeyBytes'], [{ maxKeyBytes: 70000 }, 'options.maxKeyBytes'],
    [{ maxValueBytes: 0 }, 'options.maxValueBytes'], [{ memory: '16MB', maxValueBytes: 3 * MB }, 'options.maxValueBytes'],
    [{ lockTimeout: 0 }, 'options.lockTimeout'], [{ expiryInterval: 5 }, 'options.expiryInterval'], [{ maxMaps: 0 }, 'options.maxMaps'],
    [{ cluster: { port: 70000 } }, 'options.cluster.port'], [{ cluster: { host: '' } }, 'options.cluster.host'],
    [{ cluster: { seeds: ['http://x'] } }, 'options.cluster.seeds'], [{ cluster: { secret: '' } }, 'options.cluster.secret'],
    [{ cluster: { backups: 7 } }, 'options.cluster.backups'], [{ cluster: { lite: 'yes' } }, 'options.cluster.lite'],
    [{ cluster: { advertise: 'example.com' } }, 'options.cluster.advertise'], [{ cluster: { advertise: 'a:0' } }, 'options.cluster.advertise'],
    [{ cluster: { advertise: 'ws://a:1' } }, 'options.cluster.advertise'], [{ cluster: { advertise: 'a b:1' } }, 'options.cluster.advertise'],
    [{ cluster: { sourceAddress: 'localhost' } }, 'options.cluster.sourceAddress'],
    [{ cluster: { tls: { key: 'k', cert: 'c' } } }, 'options.cluster.tls'], [{ cluster: { tls: { key: 'k', cert: 'c', ca: [] } } }, 'options.cluster.tls'],
    [{ cluster: { tls: { key: 'k', cert: 'c', ca: 'a', extra: 1 } } }, 'options.cluster.tls'], [{ cluster: { tls: 'pem' } }, 'options.cluster.tls'],
    [{ cluster: { tls: { key: 'k', cert: 'c', ca: 'a' }, seeds: ['ws://127.0.0.1:7401'] } }, 'options.cluster.seeds'],
    [{ cluster: 5 }, 'options.cluster'], [{ bogus: 1 }, 'options.bogus'], [{ cluster: { bogus: 1 } }, 'options.cluster.bogus'],
  ])('rejects %o naming %s', (opts, path) => rejects(opts, path));

  it('the range messages say what is allowed', () => {
    expect(() => resolveOptions({ cluster: { port: 70000 } })).toThrow('options.cluster.port must be an integer from 0 to 65535');
    expect(() => resolveOptions({ memory: 'abc' })).toThrow("options.memory must be a byte count or a size string such as '64MB' (got 'abc')");
  });

  it('rejects options that are not a plain object', () => rejects([], 'options'));

  it('resolves cluster defaults, with the secret from SHARDGRID_SECRET', () => {
    process.env.SHARDGRID_SECRET = 's3cret';
    try {
      expect(resolveOptions({ cluster: {} }).cluster).toEqual({ host: '127.0.0.1', port: 7400, advertise: undefined, sourceAddress: undefined, seeds: [], secret: 's3cret', backups: 1, lite: false, tls: undefined });
      expect(resolveOptions({ cluster: { tls: { key: 'k', cert: 'c', ca: ['a', Buffer.from('b')] }, seeds: ['wss://127.0.0.1:7401'] } }).cluster!.tls!.key).toBe('k');
      expect(resolveOptions({ cluster: { advertise: '[::1]:7500' } }).cluster!.advertise).toBe('[::1]:7500');
      expect(resolveOptions({ cluster: { advertise: 'grid-1.internal:7500' } }).cluster!.advertise).toBe('grid-1.internal:7500');
    } finally {
      delete process.env.SHARDGRID_SECRET;
    }
  });

  it('defaults maxValueBytes to memory / 8 for small budgets', () => {
    expect(resolveOptions({ memory: '4MB' }).maxValueBytes).toBe(512 * 1024);
  });
});

describe('parseBytes', () => {
  it.each([
    ['64MB', 64 * MB], ['1.5GB', 1.5 * 1024 * MB], ['512kib', 512 * 1024], ['10 mb', 10 * MB], ['100', 100], [1048576, MB],
  ])('parses %o', (v, n) => expect(parseBytes(v, 'options.memory')).toBe(n));

  it.each(['', 'MB', '12XB', '-5MB', '1e3', 'ten'])('rejects %o', (v) => {
    expect(() => parseBytes(v, 'options.memory')).toThrow(InvalidOptionError);
  });

  it('rejects negative and fractional byte counts', () => {
    expect(() => parseBytes(-1, 'options.memory')).toThrow(InvalidOptionError);
    expect(() => parseBytes(1.5, 'options.memory')).toThrow(InvalidOptionError);
  });
});

describe('map options', () => {
  it('accepts a ttl and defaults to none, with the decoded-value cache on', () => {
    expect(resolveMapOptions()).toEqual({ ttl: 0, cacheValues: true });
    expect(resolveMapOptions({ ttl: 500 })).toEqual({ ttl: 500, cacheValues: true });
    expect(resolveMapOptions({ cacheValues: false })).toEqual({ ttl: 0, cacheValues: false });
  });

  it('rejects a cacheValues that is not a boolean', () => {
    expect(() => resolveMapOptions({ cacheValues: 'yes' } as never)).toThrow(/options\.cacheValues/);
  });

  it.each([[{ ttl: -1 }], [{ ttl: Infinity }], [{ ttl: '5' }], [{ ttl: Number.NaN }]])('rejects %o', (o) => {
    expect(() => resolveMapOptions(o as never)).toThrow(/options\.ttl/);
  });

  it('rejects unknown map options', () => {
    expect(() => resolveMapOptions({ tll: 5 } as never)).toThrow('options.tll is not a known option');
  });
});
