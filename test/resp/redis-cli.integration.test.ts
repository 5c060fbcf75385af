// The RESP endpoint driven by the real redis-cli (Debian package redis-tools): every command of
// issue 14, --pipe mass insertion, and the map API seeing what RESP wrote.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createGrid, type Grid } from '../../dist/index.js';
import { cli, cliPipe } from './helpers.js';

let grid: Grid;
let port: number;
const r = (...args: string[]) => cli(port, args);
const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));

beforeAll(async () => {
  grid = await createGrid({ workers: 1, memory: '64MB', resp: { port: 0 } });
  port = grid.resp!.port;
});
afterAll(async () => {
  await grid?.close();
});

describe('redis-cli against the RESP endpoint', () => {
  it('answers PING, ECHO, SELECT 0, CLIENT, HELLO and COMMAND', async () => {
    expect(await r('PING')).toBe('PONG');
    expect(await r('PING', 'hi')).toBe('hi');
    expect(await r('ECHO', 'a b')).toBe('a b');
    expect(await r('SELECT', '0')).toBe('OK');
    expect(await r('SELECT', '1')).toBe('ERR DB index is out of range');
    expect(await r('SELECT', 'x')).toBe('ERR value is not an integer or out of range');
    const out = await cli(port, [], 'CLIENT SETNAME tester\nCLIENT GETNAME\nCLIENT ID\n');
    const [ok, name, id] = out.split('\n');
    expect([ok, name]).toEqual(['OK', 'tester']);
    expect(Number(id)).toBeGreaterThan(0);
    expect(await r('CLIENT', 'SETNAME', 'a b')).toBe('ERR Client names cannot contain spaces, newlines or special characters.');
    const hello = (await r('HELLO', '3')).split('\n');
    expect(hello.slice(0, 3)).toEqual(['server redis', 'version 7.2.0', 'proto 3']);
    expect(await r('HELLO', '4')).toBe('NOPROTO unsupported protocol version');
    expect(Number(await r('COMMAND', 'COUNT'))).toBeGreaterThanOrEqual(38);
    expect((await r('COMMAND', 'INFO', 'get')).split('\n').slice(0, 2)).toEqual(['get', '2']);
  });

  it('answers an unknown command with Redis\'s text', async () => {
    expect(await r('FOO', 'a', 'b')).toBe("ERR unknown command 'FOO', with args beginning with: 'a' 'b' ");
    expect(await r('GET')).toBe("ERR wrong number of arguments for 'get' command");
  });

  it('GET, SET with EX/PX/EXAT/PXAT/NX/XX/KEEPTTL/GET, SETNX, GETDEL, GETEX', async () => {
    expect(await r('SET', 's1', 'v1')).toBe('OK');
    expect(await r('GET', 's1')).toBe('v1');
    expect(await r('GET', 'missing')).toBe('');
    expect(await r('SET', 's1', 'v2', 'NX')).toBe('');
    expect(await r('SET', 's2', 'v2', 'XX')).toBe('');
    expect(await r('EXISTS', 's2')).toBe('0');
    expect(await r('SET', 's1', 'v3', 'XX', 'GET')).toBe('v1');
    expect(await r('SET', 's1', 'v4', 'EX', '100')).toBe('OK');
    expect(Number(await r('TTL', 's1'))).toBeGreaterThan(90);
    expect(await r('SET', 's1', 'v5', 'KEEPTTL')).toBe('OK');
    expect(Number(await r('TTL', 's1'))).toBeGreaterThan(90);
    expect(await r('GET', 's1')).toBe('v5');
    expect(await r('SET', 's1', 'v6')).toBe('OK');
    expect(await r('TTL', 's1')).toBe('-1');
    expect(await r('SET', 's1', 'v', 'PX', '200000')).toBe('OK');
    expect(Number(await r('PTTL', 's1'))).toBeGreaterThan(150_000);
    const at = Math.floor(Date.now() / 1000) + 500;
    expect(await r('SET', 's1', 'v', 'EXAT', String(at))).toBe('OK');
    expect(Number(await r('TTL', 's1'))).toBeGreaterThan(400);
    expect(await r('SET', 's1', 'v', 'PXAT', String(Date.now() + 300_000))).toBe('OK');
    expect(Number(await r('TTL', 's1'))).toBeGreaterThan(200);
    expect(await r('SET', 's1', 'v', 'PXAT', String(Date.now() - 1000))).toBe('OK');
    expect(await r('EXISTS', 's1')).toBe('0');
    expect(await r('SET', 's1', 'v', 'EX', '0')).toBe("ERR invalid expire time in 'set' command");
    expect(await r('SET', 's1', 'v', 'NX', 'XX')).toBe('ERR syntax error');
    expect(await r('SET', 's1', 'v', 'EX', '10', 'KEEPTTL')).toBe('ERR syntax error');
    expect(await r('SET', 'sx', 'short', 'PX', '50')).toBe('OK');
    await sleep(120);
    expect(await r('GET', 'sx')).toBe('');
    expect(await r('SETNX', 'n1', 'a')).toBe('1');
    expect(await r('SETNX', 'n1', 'b')).toBe('0');
    expect(await r('GETDEL', 'n1')).toBe('a');
    expect(await r('GETDEL', 'n1')).toBe('');
    expect(await r('SET', 'g1', 'x')).toBe('OK');
    expect(await r('GETEX', 'g1', 'EX', '100')).toBe('x');
    expect(Number(await r('TTL', 'g1'))).toBeGreaterThan(90);
    expect(await r('GETEX', 'g1', 'PERSIST')).toBe('x');
    expect(await r('TTL', 'g1')).toBe('-1');
    expect(await r('GETEX', 'g1')).toBe('x');
  });

  it('MGET, MSET, DEL, UNLINK, EXISTS, TYPE, STRLEN, APPEND', async () => {
    expect(await r('MSET', 'm1', 'a', 'm2', 'bb')).toBe('OK');
    expect(await r('MSET', 'm1')).toBe("ERR wrong number of arguments for 'mset' command");
    expect(await r('MGET', 'm1', 'nope', 'm2')).toBe('a\n\nbb');
    expect(await r('EXISTS', 'm1', 'm2', 'm1', 'nope')).toBe('3');
    expect(await r('TYPE', 'm1')).toBe('string');
    expect(await r('TYPE', 'nope')).toBe('none');
    expect(await r('STRLEN', 'm2')).toBe('2');
    expect(await r('STRLEN', 'nope')).toBe('0');
    expect(await r('APPEND', 'm2', 'cc')).toBe('4');
    expect(await r('APPEND', 'a-new', 'xyz')).toBe('3');
    expect(await r('GET', 'm2')).toBe('bbcc');
    expect(await r('DEL', 'm1', 'nope')).toBe('1');
    expect(await r('UNLINK', 'm2', 'a-new')).toBe('2');
    expect(await r('MGET', 'm1', 'm2')).toBe('\n');
  });

  it('INCR, INCRBY, DECR, DECRBY, INCRBYFLOAT with Redis\'s errors', async () => {
    expect(await r('INCR', 'c1')).toBe('1');
    expect(await r('INCRBY', 'c1', '41')).toBe('42');
    expect(await r('DECR', 'c1')).toBe('41');
    expect(await r('DECRBY', 'c1', '50')).toBe('-9');
    expect(await r('GET', 'c1')).toBe('-9');
    expect(await r('SET', 'c2', '9223372036854775806')).toBe('OK');
    expect(await r('INCR', 'c2')).toBe('9223372036854775807');
    expect(await r('INCR', 'c2')).toBe('ERR increment or decrement would overflow');
    expect(await r('SET', 'c3', 'abc')).toBe('OK');
    expect(await r('INCR', 'c3')).toBe('ERR value is not an integer or out of range');
    expect(await r('SET', 'c3', ' 1')).toBe('OK');
    expect(await r('INCR', 'c3')).toBe('ERR value is not an integer or out of range');
    expect(await r('INCRBY', 'c1', 'x')).toBe('ERR value is not an integer or out of range');
    expect(await r('SET', 'f1', '10.50')).toBe('OK');
    expect(await r('INCRBYFLOAT', 'f1', '0.1')).toBe('10.6');
    expect(await r('INCRBYFLOAT', 'f1', '-5')).toBe('5.6');
    expect(await r('INCRBYFLOAT', 'f2', '3.0e3')).toBe('3000');
    expect(await r('INCRBYFLOAT', 'c3', '1')).toBe('ERR value is not a valid float');
    expect(await r('INCRBYFLOAT', 'f1', 'x')).toBe('ERR value is not a valid float');
    // INCR keeps the expiry, as in Redis
    expect(await r('SET', 'c4', '1', 'EX', '100')).toBe('OK');
    expect(await r('INCR', 'c4')).toBe('2');
    expect(Number(await r('TTL', 'c4'))).toBeGreaterThan(90);
  });

  it('EXPIRE, PEXPIRE (NX/XX/GT/LT), PERSIST, TTL, PTTL', async () => {
    expect(await r('SET', 'e1', 'x')).toBe('OK');
    expect(await r('TTL', 'e1')).toBe('-1');
    expect(await r('TTL', 'nope')).toBe('-2');
    expect(await r('PTTL', 'nope')).toBe('-2');
    expect(await r('EXPIRE', 'e1', '100', 'XX')).toBe('0');
    expect(await r('EXPIRE', 'e1', '100', 'NX')).toBe('1');
    expect(await r('EXPIRE', 'e1', '50', 'GT')).toBe('0');
    expect(await r('EXPIRE', 'e1', '50', 'LT')).toBe('1');
    expect(Number(await r('TTL', 'e1'))).toBeLessThanOrEqual(50);
    expect(await r('PEXPIRE', 'e1', '300000')).toBe('1');
    expect(Number(await r('PTTL', 'e1'))).toBeGreaterThan(200_000);
    expect(await r('PERSIST', 'e1')).toBe('1');
    expect(await r('PERSIST', 'e1')).toBe('0');
    expect(await r('EXPIRE', 'nope', '10')).toBe('0');
    expect(await r('EXPIRE', 'e1', '-1')).toBe('1');
    expect(await r('EXISTS', 'e1')).toBe('0');
    expect(await r('EXPIRE', 'e1', 'x')).toBe('ERR value is not an integer or out of range');
  });

  it('SCAN walks every key once with a real cursor, with MATCH and COUNT', async () => {
    expect(await r('FLUSHDB')).toBe('OK');
    expect(await r('DBSIZE')).toBe('0');
    const args = ['MSET'];
    for (let i = 0; i < 300; i++) args.push(`scan:${i}`, 'v');
    for (let i = 0; i < 20; i++) args.push(`other:${i}`, 'v');
    expect(await r(...args)).toBe('OK');
    expect(await r('DBSIZE')).toBe('320');
    const seen: string[] = [];
    let cursor = '0';
    let calls = 0;
    do {
      const out = (await r('SCAN', cursor, 'MATCH', 'scan:*', 'COUNT', '5')).split('\n');
      cursor = out[0];
      seen.push(...out.slice(1).filter((x) => x !== ''));
      calls++;
    } while (cursor !== '0' && calls < 1000);
    expect(calls).toBeGreaterThan(2);
    expect(new Set(seen).size).toBe(300);
    expect(seen.length).toBe(300);
    expect(await r('SCAN', 'x')).toBe('ERR invalid cursor');
    // KEYS: the same keys in one reply, with Redis's glob (here '?' and a class)
    const keys = (await r('KEYS', 'scan:*')).split('\n').filter((x) => x !== '');
    expect(new Set(keys)).toEqual(new Set(seen));
    expect((await r('KEYS', '*')).split('\n').filter((x) => x !== '').length).toBe(320);
    expect((await r('KEYS', 'other:1?')).split('\n').filter((x) => x !== '').sort()).toEqual(Array.from({ length: 10 }, (_, i) => `other:1${i}`).sort());
    expect((await r('KEYS', 'other:[23]')).split('\n').sort()).toEqual(['other:2', 'other:3']);
    expect(await r('KEYS', 'nothing:*')).toBe('');
    expect(await r('KEYS')).toBe("ERR wrong number of arguments for 'keys' command");
  });

  it('INFO has the server, clients, memory, stats and keyspace sections in Redis format', async () => {
    const info = await r('INFO');
    for (const s of ['# Server', '# Clients', '# Memory', '# Stats', '# Keyspace']) expect(info).toContain(s);
    expect(info).toMatch(/\r?\nconnected_clients:\d+/);
    expect(info).toMatch(/\r?\nkeyspace_hits:\d+/);
    expect(info).toMatch(/db0:keys=\d+,expires=\d+,avg_ttl=0/);
    const mem = await r('INFO', 'memory');
    expect(mem).toContain('# Memory');
    expect(mem).not.toContain('# Server');
  });

  it('mass-inserts 20,000 keys through redis-cli --pipe, and the map API sees them', async () => {
    const lines: string[] = [];
    for (let i = 0; i < 20_000; i++) {
      const k = `pipe:${i}`;
      const v = `value-${i}`;
      lines.push(`*3\r\n$3\r\nSET\r\n$${k.length}\r\n${k}\r\n$${v.length}\r\n${v}\r\n`);
    }
    const res = await cliPipe(port, Buffer.from(lines.join('')));
    expect(res.out).toContain('errors: 0, replies: 20000');
    expect(res.code).toBe(0);
    const m = grid.map('default');
    const v = await m.get('pipe:19999');
    expect(Buffer.isBuffer(v)).toBe(true);
    expect((v as Buffer).toString()).toBe('value-19999');
    expect(await r('GET', 'pipe:12345')).toBe('value-12345');
  });

  it('reads values the library stored: strings as UTF-8, numbers as text, objects as msgpack bytes', async () => {
    const m = grid.map('default');
    await m.set('lib:s', 'héllo');
    await m.set('lib:n', 42);
    await m.set('lib:o', { a: 1 });
    expect(await r('GET', 'lib:s')).toBe('héllo');
    expect(await r('INCR', 'lib:n')).toBe('43');
    // the grid's msgpack of { a: 1 }: map16(1) 'a' 1 = de 00 01 a1 61 01
    const hex = await r('--no-raw', 'GET', 'lib:o');
    expect(hex).toBe('"\\xde\\x00\\x01\\xa1a\\x01"');
    expect(await r('STRLEN', 'lib:o')).toBe('6');
  });
});
