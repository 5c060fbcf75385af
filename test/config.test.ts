import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULTS, parseBytes, resolveMapOptions, resolveOptions } from '../src/config.js';
import { InvalidOptionError } from '../src/errors.js';
import { makeCa, tlsOf } from './fixtures/tls.js';

const MB = 1024 * 1024;
/** A cluster secret long enough to be accepted (16 bytes is the minimum). */
const SECRET = 'config-test-secret-0123456789';
const PROCS_URL = new URL('./fixtures/compute-procs.mjs', import.meta.url);

/** What resolveOptions(opts) throws (undefined when it does not). */
function thrownBy(opts: unknown): unknown {
  try {
    resolveOptions(opts as never);
  } catch (e) {
    return e;
  }
  return undefined;
}

function rejects(opts: unknown, path: string): void {
  const err = thrownBy(opts);
  expect(err).toBeInstanceOf(InvalidOptionError);
  expect((err as InvalidOptionError).message.startsWith(path + ' ')).toBe(true);
  expect((err as InvalidOptionError).data).toEqual({ option: path });
}

describe('options', () => {
  it('fills the defaults and freezes the result', () => {
    const o = resolveOptions();
    expect(o).toEqual({
      workers: os.availableParallelism(), partitions: 271, memory: 256 * MB, maxKeyBytes: 4096,
      maxValueBytes: MB, lockTimeout: 5000, expiryInterval: 100, maxMaps: 256, computeWorkers: undefined,
      compute: { modules: {}, workers: undefined, timeoutMs: 60_000, processorTimeoutMs: 0 }, cp: { primitives: 1024, maxValueBytes: 1024, waiters: 1024, sessionTtlMs: 10_000 }, cluster: undefined,
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
    [{ cp: { primitives: 0 } }, 'options.cp.primitives'], [{ cp: { maxValueBytes: 2 * MB } }, 'options.cp.maxValueBytes'], [{ cp: { waiters: 1.5 } }, 'options.cp.waiters'],
    [{ cp: 3 }, 'options.cp'], [{ cp: { sessionTtlMs: 100 } }, 'options.cp.sessionTtlMs'], [{ cp: { permits: 1 } }, 'options.cp.permits'],
    [{ cluster: { port: 70000 } }, 'options.cluster.port'], [{ cluster: { host: '' } }, 'options.cluster.host'],
    [{ cluster: { seeds: ['http://x'] } }, 'options.cluster.seeds'], [{ cluster: { secret: '' } }, 'options.cluster.secret'],
    [{ cluster: { secret: '15-bytes-secret' } }, 'options.cluster.secret'], [{ cluster: { secret: 'é'.repeat(7) } }, 'options.cluster.secret'],
    [{ cluster: { secret: 12345678901234567 } }, 'options.cluster.secret'], [{ cluster: {} }, 'options.cluster.secret'],
    [{ cluster: { backups: 7 } }, 'options.cluster.backups'], [{ cluster: { lite: 'yes' } }, 'options.cluster.lite'],
    [{ cluster: { advertise: 'example.com' } }, 'options.cluster.advertise'], [{ cluster: { advertise: 'a:0' } }, 'options.cluster.advertise'],
    [{ cluster: { advertise: 'ws://a:1' } }, 'options.cluster.advertise'], [{ cluster: { advertise: 'a b:1' } }, 'options.cluster.advertise'],
    [{ cluster: { sourceAddress: 'localhost' } }, 'options.cluster.sourceAddress'],
    [{ cluster: { tls: { key: 'k', cert: 'c' } } }, 'options.cluster.tls'], [{ cluster: { tls: { key: 'k', cert: 'c', ca: [] } } }, 'options.cluster.tls'],
    [{ cluster: { tls: { key: 'k', cert: 'c', ca: 'a', extra: 1 } } }, 'options.cluster.tls'], [{ cluster: { tls: 'pem' } }, 'options.cluster.tls'],
    [{ cluster: { tls: { key: 'k', cert: 'c', ca: 'a' }, seeds: ['ws://127.0.0.1:7401'] } }, 'options.cluster.seeds'],
    [{ cluster: { secret: SECRET, seeds: ['wss://127.0.0.1:7401'] } }, 'options.cluster.seeds'],
    [{ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:99999'] } }, 'options.cluster.seeds'], [{ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:0'] } }, 'options.cluster.seeds'],
    // a path (even a trailing /), credentials or no port: never a member's url (its handshake refused them, GRID_ERR_AUTH, after an HTTP request to the path)
    [{ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:7401/'] } }, 'options.cluster.seeds'], [{ cluster: { secret: SECRET, seeds: ['ws://u:p@127.0.0.1:7401'] } }, 'options.cluster.seeds'],
    [{ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:7401/x?y'] } }, 'options.cluster.seeds'], [{ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1'] } }, 'options.cluster.seeds'],
    [{ cluster: { secret: SECRET, seeds: ['127.0.0.1:7401'] } }, 'options.cluster.seeds'],
    [{ cluster: 5 }, 'options.cluster'], [{ bogus: 1 }, 'options.bogus'], [{ cluster: { bogus: 1 } }, 'options.cluster.bogus'],
  ])('rejects %o naming %s', (opts, path) => rejects(opts, path));

  it('the range messages say what is allowed', () => {
    expect(() => resolveOptions({ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:7401', 'wss://127.0.0.1:7402'] } })).toThrow(
      'options.cluster.seeds must be ws:// URLs without options.cluster.tls (a wss:// member asks for a certificate of its CA)',
    );
    expect(() => resolveOptions({ cluster: { port: 70000 } })).toThrow('options.cluster.port must be an integer from 0 to 65535');
    expect(() => resolveOptions({ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:7401/'] } })).toThrow(
      'options.cluster.seeds must be an array of member urls, each a ws:// or wss:// url of a host and a port such as ws://127.0.0.1:7400 (a port from 1 to 65535; no path, not even a trailing /, and no user:password@)',
    );
    expect(resolveOptions({ cluster: { secret: SECRET, seeds: ['ws://127.0.0.1:7401', 'ws://[::1]:7402', 'ws://member-3.example:7403'] } }).cluster!.seeds).toHaveLength(3);
    expect(() => resolveOptions({ memory: 'abc' })).toThrow("options.memory must be a byte count or a size string such as '64MB' (got 'abc')");
  });

  // createGrid({ memory: '1KB' }) said only "options.memory must be from 4MB to 4GB": not what it
  // got, nor (for a size string) how many bytes that is; the integer options said no more.
  it.each([
    [{ memory: '1KB' }, "options.memory must be from 4MB to 4GB (got '1KB' = 1024 bytes)"],
    [{ memory: '5GB' }, "options.memory must be from 4MB to 4GB (got '5GB' = 5368709120 bytes)"],
    [{ memory: 1000 }, 'options.memory must be from 4MB to 4GB (got 1000 bytes)'],
    [{ workers: 0 }, 'options.workers must be an integer from 1 to 256 (got 0)'],
    [{ workers: '2' }, "options.workers must be an integer from 1 to 256 (got the string '2')"],
    [{ memory: '16MB', maxValueBytes: 3 * MB }, 'options.maxValueBytes must be an integer from 1 to memory / 8 (2097152) (got 3145728)'],
    [{ cp: { sessionTtlMs: 100 } }, 'options.cp.sessionTtlMs must be an integer from 500 to 86400000 (got 100)'],
    [{ compute: { workers: 0 } }, 'options.compute.workers must be an integer from 1 to 256 (got 0)'],
    [{ cluster: { secret: SECRET, port: 70000 } }, 'options.cluster.port must be an integer from 0 to 65535 (got 70000)'],
    [{ resp: { queryBufferLimit: '1KB', outputHighWater: '512' } }, "options.resp.outputHighWater must be an integer from 1024 to 4294967296 (got '512' = 512 bytes)"],
    [{ resp: { maxReplyBytes: '1000' } }, "options.resp.maxReplyBytes must be an integer from 1024 to 4294967296 (got '1000' = 1000 bytes)"],
    [{ resp: { maxInFlightBytes: '2TB' } }, "options.resp.maxInFlightBytes must be an integer from 0 to 1099511627776 (got '2TB' = 2199023255552 bytes)"],
  ])('a refused number or size option says what it got: %o', (opts, message) => {
    const err = thrownBy(opts);
    expect(err).toBeInstanceOf(InvalidOptionError);
    expect((err as Error).message).toBe(message);
  });

  it('a lite member without seeds is refused at once (it used to wait 15 s for a table nobody would send)', () => {
    expect(() => resolveOptions({ cluster: { lite: true, secret: SECRET } })).toThrow('options.cluster.lite needs options.cluster.seeds');
    expect(resolveOptions({ cluster: { lite: true, secret: SECRET, seeds: ['ws://127.0.0.1:7400'] } }).cluster!.lite).toBe(true);
  });

  it('rejects options that are not a plain object', () => rejects([], 'options'));

  it('resolves cluster defaults, with the secret from SHARDGRID_SECRET', () => {
    process.env.SHARDGRID_SECRET = SECRET;
    try {
      expect(resolveOptions({ cluster: {} }).cluster).toEqual({ host: '127.0.0.1', port: 7400, advertise: undefined, sourceAddress: undefined, seeds: [], secret: SECRET, backups: 1, lite: false, tls: undefined });
      expect(resolveOptions({ cluster: { advertise: '[::1]:7500' } }).cluster!.advertise).toBe('[::1]:7500');
      expect(resolveOptions({ cluster: { advertise: 'grid-1.internal:7500' } }).cluster!.advertise).toBe('grid-1.internal:7500');
      // Docker's DNS names (Compose v1 containers: proj_grid_1) have underscores
      expect(resolveOptions({ cluster: { advertise: 'proj_grid_1:7500', seeds: ['ws://proj_grid_2:7500'] } }).cluster!.advertise).toBe('proj_grid_1:7500');
    } finally {
      delete process.env.SHARDGRID_SECRET;
    }
  });

  it('accepts a secret of exactly 16 UTF-8 bytes (8 two-byte characters) and says how long it must be when shorter', () => {
    expect(resolveOptions({ cluster: { secret: '0123456789abcdef' } }).cluster!.secret).toBe('0123456789abcdef');
    expect(resolveOptions({ cluster: { secret: 'é'.repeat(8) } }).cluster!.secret).toBe('é'.repeat(8));
    expect(() => resolveOptions({ cluster: { secret: 'short' } })).toThrow(/options\.cluster\.secret must be a shared secret of at least 16 bytes .*shardgrid secret/);
    // the message never repeats the secret
    let message = '';
    try {
      resolveOptions({ cluster: { secret: 'hunter2' } });
    } catch (e) {
      message = (e as Error).message;
    }
    expect(message).toMatch(/^options\.cluster\.secret /);
    expect(message).not.toContain('hunter2');
  });

  it('registers compute modules given as a URL object, a file URL string or an absolute path, as file URL hrefs', () => {
    const o = resolveOptions({ compute: { modules: { a: PROCS_URL, b: PROCS_URL.href, c: fileURLToPath(PROCS_URL) } } });
    expect({ ...o.compute.modules }).toEqual({ a: PROCS_URL.href, b: PROCS_URL.href, c: PROCS_URL.href });
    expect(Object.isFrozen(o.compute.modules)).toBe(true);
  });

  it.each([
    ['a data: URL string', 'data:text/javascript,export default 1', /got a data: URL/],
    ['a data: URL object', new URL('data:text/javascript,export default 1'), /got a data: URL/],
    ['an https: URL', 'https://example.com/procs.mjs', /got a https: URL/],
    ['an http: URL object', new URL('http://127.0.0.1/procs.mjs'), /got a http: URL/],
    ['a node: builtin', 'node:child_process', /got a node: URL/],
    ['a relative path', './procs.mjs', /relative path/],
    ['a missing file', '/nonexistent/dir/procs.mjs', /no such file/],
    ['a missing file: URL', 'file:///nonexistent/dir/procs.mjs', /no such file/],
    ['a directory', fileURLToPath(new URL('./fixtures/', import.meta.url)), /no such file/],
    ['a number', 42, /got number/],
  ])('refuses to register %s, naming options.compute.modules.<name>', (_what, v, detail) => {
    rejects({ compute: { modules: { procs: v } } }, 'options.compute.modules.procs');
    expect(() => resolveOptions({ compute: { modules: { procs: v as string } } })).toThrow(detail);
  });

  it('refuses bad module names, a modules value that is not an object and unknown compute options', () => {
    rejects({ compute: { modules: { 'a b': PROCS_URL } } }, 'options.compute.modules.a b');
    rejects({ compute: { modules: { '': PROCS_URL } } }, 'options.compute.modules.');
    rejects({ compute: { modules: { ['x'.repeat(65)]: PROCS_URL } } }, `options.compute.modules.${'x'.repeat(65)}`);
    rejects({ compute: { modules: [PROCS_URL] } }, 'options.compute.modules');
    rejects({ compute: { modules: 'procs' } }, 'options.compute.modules');
    rejects({ compute: 'procs' }, 'options.compute');
    rejects({ compute: { module: {} } }, 'options.compute.module');
    rejects({ compute: { workers: 0 } }, 'options.compute.workers');
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

describe('options.cluster.tls: the key, certificate and CA are checked when the grid is created', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(os.tmpdir(), 'sg-config-tls-'));
    makeCa(dir, 'ca', ['a', 'b']);
    makeCa(dir, 'other-ca', ['mallory']);
    makeCa(dir, 'old-ca', ['expired'], -1);
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const pem = (f: string) => readFileSync(join(dir, f));
  const withTls = (tls: unknown) => ({ cluster: { secret: SECRET, tls, seeds: ['wss://127.0.0.1:7401'] } });
  function refusal(tls: unknown): { message: string; data: unknown } {
    try {
      resolveOptions(withTls(tls) as never);
    } catch (e) {
      expect(e).toBeInstanceOf(InvalidOptionError);
      return { message: (e as Error).message, data: (e as InvalidOptionError).data };
    }
    throw new Error('accepted');
  }

  it('accepts a member certificate signed by the CA, the CA as a string, a buffer or an array, a bundle of several CAs', () => {
    const good = tlsOf(dir, 'a', 'ca');
    expect(resolveOptions(withTls(good) as never).cluster!.tls!.key).toBe(good.key);
    expect(resolveOptions(withTls({ ...good, key: good.key.toString(), cert: good.cert.toString(), ca: good.ca.toString() }) as never).cluster!.tls).toBeDefined();
    expect(resolveOptions(withTls({ ...good, ca: [pem('other-ca.pem'), good.ca] }) as never).cluster!.tls).toBeDefined();
    expect(resolveOptions(withTls({ ...good, ca: Buffer.concat([pem('other-ca.pem'), good.ca]) }) as never).cluster!.tls).toBeDefined();
  });

  it.each([
    ['a key of another certificate', () => ({ ...tlsOf(dir, 'a', 'ca'), key: pem('b.key') }), 'options.cluster.tls.cert', /does not match options\.cluster\.tls\.key/],
    ['a key that is not PEM', () => ({ ...tlsOf(dir, 'a', 'ca'), key: 'garbage' }), 'options.cluster.tls.key', /is not a PEM private key/],
    ['a certificate as the key', () => ({ ...tlsOf(dir, 'a', 'ca'), key: pem('a.pem') }), 'options.cluster.tls.key', /is not a PEM private key/],
    ['a certificate that is not PEM', () => ({ ...tlsOf(dir, 'a', 'ca'), cert: 'garbage' }), 'options.cluster.tls.cert', /holds no PEM certificate/],
    ['a CA that is not PEM', () => ({ ...tlsOf(dir, 'a', 'ca'), ca: 'garbage' }), 'options.cluster.tls.ca', /holds no PEM certificate/],
    ['a CA array with one bad entry', () => ({ ...tlsOf(dir, 'a', 'ca'), ca: [pem('ca.pem'), 'garbage'] }), 'options.cluster.tls.ca', /holds no PEM certificate/],
    ['a certificate another CA signed', () => ({ ...tlsOf(dir, 'mallory', 'other-ca'), ca: pem('ca.pem') }), 'options.cluster.tls.cert', /is not signed by options\.cluster\.tls\.ca .*other members will refuse it/],
    ['an expired certificate', () => tlsOf(dir, 'expired', 'old-ca'), 'options.cluster.tls.cert', /expired on .*20\d\d/],
  ])('refuses %s, naming the part (GRID_ERR_INVALID_OPTION)', (_what, tls, path, message) => {
    const r = refusal(tls());
    expect(r.message.startsWith(`${path} `)).toBe(true);
    expect(r.message).toMatch(message);
    expect(r.data).toEqual({ option: path });
  });
});

describe('options.cluster.tls: the certificate names the address other members dial', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(join(os.tmpdir(), 'sg-config-tls-host-'));
    makeCa(dir, 'ca', ['a']); // for IP 127.0.0.1
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  const resolve = (cluster: Record<string, unknown>) => () => resolveOptions({ cluster: { secret: SECRET, tls: tlsOf(dir, 'a', 'ca'), ...cluster } } as never);

  it('refuses a bind host or advertised host the certificate does not name (joiners failed with a hostname mismatch), accepts the ones it names', () => {
    expect(resolve({ host: 'localhost' })).toThrow(/^options\.cluster\.tls\.cert does not name localhost, the address other members dial \(it names IP Address:127\.0\.0\.1\)/);
    expect(resolve({ host: '0.0.0.0', advertise: 'grid-1.internal:7500' })).toThrow(/^options\.cluster\.tls\.cert does not name grid-1\.internal/);
    expect(resolve({ host: '127.0.0.2' })).toThrow(/does not name 127\.0\.0\.2/);
    expect(resolve({})().cluster!.host).toBe('127.0.0.1');
    expect(resolve({ host: '0.0.0.0', advertise: '127.0.0.1:7500' })().cluster!.advertise).toBe('127.0.0.1:7500');
    expect(resolve({ host: '0.0.0.0' })().cluster!.host).toBe('0.0.0.0'); // a wildcard bind: nothing to check against
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
