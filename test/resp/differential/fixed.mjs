// Fixed sequences (connection and server commands, arities, error texts) against redis-server and a
// shardgrid RESP port, RESP2 and RESP3 (see diff.mjs). Differences expected on 2026-11-28 (README
// "RESP"): INFO has fewer sections; MULTI, EXEC and WATCH are refused (no transactions); COMMAND
// and COMMAND INFO list this endpoint's commands; COMMAND GETKEYS, SETEX and CONFIG SET are not
// served. Everything else answered byte for byte as redis-server 7.0.15.
// usage: node fixed.mjs [--port P] [--redis R] [--proto 2|3]
import { gridUnderTest, openPair, startRedis } from './lib.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : d; };

function shape(args, r) {
  const name = String(args[0]).toLowerCase();
  const v = r.val;
  if (name === 'info' && (v.t === '$' || v.t === '=')) {
    const heads = (v.v ?? '').split('\r\n').filter((l) => l.startsWith('# ')).map((l) => l.slice(2).toLowerCase());
    return `info ${v.t} sections:${heads.join(',')}`;
  }
  if (name === 'hello' && (v.t === '*' || v.t === '%')) {
    return `hello ${v.t} ${v.v.map((x, i) => (i % 2 === 1 && ['version', 'id'].includes(v.v[i - 1].v) ? `${x.t}?` : `${x.t}${x.v}`)).join(' ')}`;
  }
  if (name === 'client' && String(args[1]).toLowerCase() === 'id' && v.t === ':') return 'id:int';
  if (name === 'client' && String(args[1]).toLowerCase() === 'help' && v.t === '*') return 'help:array';
  if (name === 'keys' && v.t === '*') return `keys ${v.v.map((x) => x.v).sort().join(',')}`;
  if (name === 'command' && args.length === 1) return `command ${v.t} (table: shape only)`;
  if (name === 'command' && /^(count)$/i.test(args[1] ?? '')) return `count ${v.t}`;
  if (name === 'command' && /^(list|docs|help)$/i.test(args[1] ?? '')) return `${args[1]} ${v.t}`;
  if (name === 'command' && /^info$/i.test(args[1] ?? '') && v.t === '*') {
    // per command: its name, arity, first/last key and step; flags shape only
    return `cinfo ${v.v.map((e) => (e.t === '*' ? `[${e.v[0].v} ${e.v[1].v} ${e.v[3].v} ${e.v[4].v} ${e.v[5].v}]` : `${e.t}${e.v}`)).join(' ')}`;
  }
  return r.raw;
}

const CMDS = ['get', 'set', 'setnx', 'getdel', 'getex', 'mget', 'mset', 'del', 'unlink', 'exists', 'incr', 'incrby', 'decr', 'decrby', 'incrbyfloat',
  'append', 'strlen', 'expire', 'pexpire', 'expireat', 'pexpireat', 'persist', 'ttl', 'pttl', 'type', 'dbsize', 'flushdb', 'scan', 'keys', 'info',
  'select', 'client', 'command', 'hello', 'echo', 'ping', 'auth', 'config', 'multi', 'exec', 'discard', 'watch', 'unwatch'];

const SEQS = [
  // arities: no argument, and many
  ...CMDS.map((c) => [[c]]),
  ...CMDS.filter((c) => !['multi', 'exec', 'discard', 'hello', 'auth', 'watch', 'client', 'command', 'config'].includes(c)).map((c) => [[c, 'a', 'b', 'c', 'd', 'e']]),
  ...CMDS.filter((c) => !['multi', 'exec', 'discard', 'hello', 'auth', 'client', 'command', 'config', 'flushdb', 'info', 'ping', 'select'].includes(c)).map((c) => [[c, 'a']]),
  [['PING'], ['PING', 'hello'], ['PING', ''], ['PING', 'a', 'b'], ['ping', 'é']],
  [['ECHO', ''], ['ECHO', 'x'.repeat(3000)], ['ECHO', Buffer.from([0, 255, 13, 10])]],
  [['SELECT', '0'], ['SELECT', '00'], ['SELECT', '-0'], ['SELECT', '+0'], ['SELECT', ' 0'], ['SELECT', '0 '], ['SELECT', '0x0'], ['SELECT', '99999999999999999999'], ['SELECT', '-1'], ['SELECT', '16'], ['SELECT', '2147483648'], ['SELECT', '1.0']],
  [['CLIENT', 'ID'], ['CLIENT', 'GETNAME'], ['CLIENT', 'SETNAME', 'abc'], ['CLIENT', 'GETNAME'], ['CLIENT', 'SETNAME', ''], ['CLIENT', 'GETNAME'], ['CLIENT', 'SETNAME', 'a b'], ['CLIENT', 'SETNAME', 'é'],
    ['CLIENT', 'SETNAME'], ['CLIENT', 'SETNAME', 'a', 'b'], ['CLIENT', 'GETNAME', 'x'], ['CLIENT', 'ID', 'x'], ['CLIENT', 'NOSUCH'], ['CLIENT', 'nosuch', 'a'], ['CLIENT', 'HELP'], ['CLIENT', 'help', 'x']],
  [['HELLO'], ['HELLO', '2'], ['HELLO', '3'], ['PING'], ['HELLO', '2'], ['HELLO', '4'], ['HELLO', '1'], ['HELLO', 'abc'], ['HELLO', '-1'], ['HELLO', '3', 'SETNAME', 'x y'], ['HELLO', '3', 'SETNAME', 'nm'], ['CLIENT', 'GETNAME'], ['HELLO', '2', 'SETNAME'], ['HELLO', '2', 'FOO'], ['HELLO', '2', 'AUTH', 'default'], ['HELLO', '2', 'AUTH', 'default', 'pw'], ['HELLO', '2', 'AUTH', 'bob', 'pw'], ['HELLO', '2', 'auth', 'default', 'x', 'SETNAME', 'q'], ['HELLO', '3', 'SETNAME', 'a', 'SETNAME', 'b'], ['CLIENT', 'GETNAME'], ['HELLO', '02']],
  [['AUTH', 'pw'], ['AUTH', 'default', 'pw'], ['AUTH', 'bob', 'pw'], ['AUTH', 'a', 'b', 'c'], ['AUTH']],
  [['INFO'], ['INFO', 'server'], ['INFO', 'clients'], ['INFO', 'memory'], ['INFO', 'stats'], ['INFO', 'keyspace'], ['INFO', 'SERVER'], ['INFO', 'nosuch'], ['INFO', 'server', 'clients'], ['INFO', 'all'], ['INFO', 'default'], ['INFO', 'everything'], ['INFO', 'server', 'nosuch', 'keyspace']],
  [['SET', 'k', '1'], ['INFO', 'keyspace'], ['SET', 'e', '1', 'EX', '100'], ['INFO', 'keyspace']],
  [['COMMAND'], ['COMMAND', 'COUNT'], ['COMMAND', 'INFO', 'get', 'set', 'nosuch', 'mset', 'GET', 'del', 'scan', 'ping'], ['COMMAND', 'INFO'], ['COMMAND', 'COUNT', 'x'], ['COMMAND', 'NOSUCH'], ['COMMAND', 'DOCS', 'get'], ['COMMAND', 'LIST'], ['COMMAND', 'HELP'], ['COMMAND', 'GETKEYS', 'get', 'k']],
  [['CONFIG', 'GET', 'maxclients'], ['CONFIG', 'GET', 'nosuch'], ['CONFIG', 'GET'], ['CONFIG', 'SET', 'a', 'b'], ['CONFIG', 'NOSUCH'], ['CONFIG', 'RESETSTAT'], ['CONFIG', 'RESETSTAT', 'x']],
  [['MULTI'], ['GET', 'k'], ['EXEC'], ['EXEC'], ['DISCARD'], ['UNWATCH'], ['MULTI'], ['MULTI'], ['DISCARD']],
  [['DBSIZE'], ['SET', 'a', '1'], ['SET', 'b', '2'], ['DBSIZE'], ['FLUSHDB', 'ASYNC'], ['DBSIZE'], ['SET', 'a', '1'], ['FLUSHDB', 'SYNC'], ['DBSIZE'], ['FLUSHDB', 'x'], ['FLUSHDB', 'SYNC', 'ASYNC']],
  [['SET', 'k', 'v'], ['TYPE', 'k'], ['TYPE', 'nosuch'], ['STRLEN', 'k'], ['STRLEN', 'nosuch'], ['APPEND', 'k', 'w'], ['GET', 'k'], ['APPEND', 'n', ''], ['EXISTS', 'n'], ['GET', 'n']],
  [['SET', 'k', 'v'], ['EXISTS', 'k', 'k', 'k', 'x', 'k'], ['DEL', 'k', 'k'], ['MSET', 'a', '1', 'a', '2'], ['GET', 'a'], ['MGET', 'a', 'a', 'zz'], ['UNLINK', 'a', 'a', 'zz']],
  [['SET', 'k', 'v'], ['TTL', 'k'], ['PTTL', 'k'], ['EXPIRE', 'k', '100'], ['TTL', 'k'], ['EXPIRE', 'k', '50', 'GT'], ['EXPIRE', 'k', '500', 'GT'], ['TTL', 'k'], ['EXPIRE', 'k', '50', 'LT'], ['TTL', 'k'], ['EXPIRE', 'k', '60', 'NX'], ['EXPIRE', 'k', '60', 'XX'], ['TTL', 'k'], ['PERSIST', 'k'], ['PERSIST', 'k'], ['TTL', 'k'], ['EXPIRE', 'k', '60', 'XX'], ['EXPIRE', 'k', '60', 'GT'], ['EXPIRE', 'k', '60', 'LT'], ['TTL', 'k'], ['EXPIRE', 'k', '0'], ['EXISTS', 'k'], ['SET', 'k', 'v'], ['EXPIRE', 'k', '-5'], ['EXISTS', 'k'], ['SET', 'k', 'v'], ['PEXPIREAT', 'k', '1'], ['EXISTS', 'k'],
    ['SET', 'k', 'v'], ['EXPIREAT', 'k', '0'], ['GET', 'k'], ['SET', 'k', 'v'], ['EXPIRE', 'k', '9223372036854775'], ['EXPIRE', 'k', '9223372036854776'], ['EXPIRE', 'k', '-9223372036854775'], ['EXPIRE', 'k', '-9223372036854776'], ['PEXPIRE', 'k', '-9223372036854775808'], ['EXISTS', 'k']],
  [['SET', 'k', 'v', 'EX', '100'], ['SET', 'k', 'w', 'KEEPTTL'], ['TTL', 'k'], ['SET', 'k', 'x'], ['TTL', 'k'], ['SET', 'k', 'y', 'EX', '100', 'GET'], ['SET', 'k', 'z', 'XX', 'GET'], ['SET', 'n', 'z', 'XX', 'GET'], ['SET', 'n', 'z', 'NX', 'GET'], ['SET', 'n', 'q', 'NX', 'GET'], ['GET', 'n'],
    ['SET', 'k', 'v', 'EXAT', '1'], ['EXISTS', 'k'], ['SET', 'k', 'v', 'PXAT', '1', 'GET'], ['GET', 'k'], ['SET', 'k', 'v', 'PX', '100000', 'PX', '200000'], ['SET', 'k', 'v', 'EX', '1', 'PX', '2'], ['SET', 'k', 'v', 'KEEPTTL', 'KEEPTTL'], ['SET', 'k', 'v', 'KEEPTTL', 'EX', '1'], ['SET', 'k', 'v', 'EX', '1', 'KEEPTTL'],
    ['SET', 'k', 'v', 'NX', 'XX'], ['SET', 'k', 'v', 'XX', 'XX'], ['SET', 'k', 'v', 'GET', 'GET'], ['SET', 'k', 'v', 'EX'], ['SET', 'k', 'v', 'EX', 'EX'], ['SET', 'k', 'v', 'PERSIST'], ['SET', 'k', 'v', 'EX', '0'], ['SET', 'k', 'v', 'EX', '-1'], ['SET', 'k', 'v', 'EX', '9223372036854775'], ['SET', 'k', 'v', 'EX', '9223372036854776'], ['SET', 'k', 'v', 'PX', ''], ['SET', 'k', 'v', 'EX', '1', 'FOO']],
  [['SET', 'k', 'v'], ['GETEX', 'k'], ['GETEX', 'k', 'EX', '100'], ['TTL', 'k'], ['GETEX', 'k', 'PERSIST'], ['TTL', 'k'], ['GETEX', 'k', 'PERSIST', 'PERSIST'], ['GETEX', 'k', 'KEEPTTL'], ['GETEX', 'k', 'NX'], ['GETEX', 'k', 'GET'], ['GETEX', 'k', 'EX', '1', 'PERSIST'], ['GETEX', 'k', 'PERSIST', 'EX', '1'], ['GETEX', 'k', 'EX', '0'], ['GETEX', 'n', 'EX', '0'], ['GETEX', 'n', 'EX', 'x'], ['GETEX', 'k', 'EX', 'x'], ['GETEX', 'k', 'EX', '10', 'EX', '20'], ['TTL', 'k'], ['GETEX', 'k', 'PXAT', '1'], ['EXISTS', 'k'], ['GETEX', 'n', 'PERSIST'], ['GETDEL', 'n']],
  [['SET', 'i', '9223372036854775806'], ['INCR', 'i'], ['INCR', 'i'], ['GET', 'i'], ['DECRBY', 'i', '-1'], ['DECRBY', 'i', '-9223372036854775808'], ['SET', 'i', '-9223372036854775807'], ['DECR', 'i'], ['DECR', 'i'], ['INCRBY', 'i', '9223372036854775807'], ['INCRBY', 'i', '9223372036854775808'], ['SET', 'i', ' 1'], ['INCR', 'i'], ['SET', 'i', '1.0'], ['INCR', 'i'], ['SET', 'i', ''], ['INCR', 'i'], ['SET', 'i', '-0'], ['INCR', 'i'], ['SET', 'i', '00'], ['INCR', 'i'], ['SET', 'i', '+1'], ['INCR', 'i'], ['SET', 'i', '10'], ['INCRBYFLOAT', 'i', '0.5'], ['INCRBYFLOAT', 'i', '-10.5'], ['GET', 'i'], ['INCR', 'i']],
  [['SET', 'f', '1e-5000'], ['INCRBYFLOAT', 'f', '1'], ['SET', 'f', 'abc'], ['INCRBYFLOAT', 'f', 'inf'], ['INCRBYFLOAT', 'g', '1e-5000'], ['INCRBYFLOAT', 'g', '1e5000'], ['INCRBYFLOAT', 'g', '0x1p-16446'], ['INCRBYFLOAT', 'g', '1e-400'], ['INCRBYFLOAT', 'g', `1.${'0'.repeat(5118)}`], ['INCRBYFLOAT', 'g', `1.${'0'.repeat(5117)}`], ['INCRBYFLOAT', 'g', '2.5'], ['INCRBYFLOAT', 'g', '-inf'], ['INCRBYFLOAT', 'g', 'nan']],
  [['SET', 'a', '1'], ['SET', 'ab', '1'], ['SET', 'b', '1'], ['SET', 'a*', '1'], ['SET', 'é', '1'], ['SET', Buffer.from([0xff]), '1'], ['KEYS', '*'], ['KEYS', 'a*'], ['KEYS', 'a\\*'], ['KEYS', '[ab]'], ['KEYS', '[^a]*'], ['KEYS', '[a-b]'], ['KEYS', '[b-a]'], ['KEYS', '?'], ['KEYS', '\\a'], ['KEYS', '[\\]]'], ['KEYS', '[a'], ['KEYS', 'a[']],
  [['SCAN', '0', 'COUNT', '0'], ['SCAN', '0', 'COUNT', '-1'], ['SCAN', '0', 'COUNT', 'x'], ['SCAN', '0', 'MATCH'], ['SCAN', 'x'], ['SCAN', ' 0'], ['SCAN', '0 '], ['SCAN', '0x0'], ['SCAN', '-'], ['SCAN', '+'], ['SCAN', '18446744073709551616'], ['SCAN', '0', 'TYPE', 'string', 'COUNT', '1', 'MATCH', 'q*'], ['SCAN', '0', 'NOSUCH', 'x']],
  [['QUIT'], ['PING']],
  [['QUIT', 'x'], ['PING']],
  [['NOSUCH', 'a\r\nb'], ['NOSUCH', '\r\na\r\n'], ['NOSUCH', Buffer.from([0xff, 0x41])], [Buffer.from([0xc3, 0xa9, 0xff])], ['NOSUCH', 'x'.repeat(200)], ['NOSUCH', 'é'.repeat(100)], ['NOSUCH', 'a', 'b'.repeat(130), 'c'], ['EXPIRE', 'k', '1', 'y'.repeat(300)], ['HELLO', '3', 'z'.repeat(300)], ['EXPIRE', 'k', '1', 'x\r\n'], ['EXPIRE', 'k', '1', 'a\x00b'], ['NOSUCH', 'a\x00b', 'c'], ['EXPIRE', 'k', '1', 'x\r\ny'], ['EXPIRE', 'k', '1', Buffer.from([0xff])], ['CLIENT', 'a\nb'], ['CLIENT', Buffer.from([0xff])], ['HELLO', '3', 'x\ny'], ['HELLO', '3', Buffer.from([0xfe])], ['CONFIG', 'x\r\n'], ['COMMAND', 'INFO', Buffer.from([0xff])], ['CLIENT', 'SETNAME', Buffer.from([0xff])], ['HELLO', '2', 'SETNAME', 'é'], ['CLIENT', 'x'.repeat(200)]],
  [['NOSUCH'], ['nosuch', 'a', 'b'], [''], ['get\x00x', 'a'], ['SETEX', 'a', '1', 'b'], ['__proto__']],
];

export async function runFixed(gridPort, redisPort, protos = [2, 3], log = console.log) {
  let diffs = 0;
  let total = 0;
  for (const proto of protos) {
    for (const seq of SEQS) {
      const cs = await openPair(redisPort, gridPort, proto);
      for (const args of seq) {
        const [a, b] = [shape(args, await cs[0].cmd(args)), shape(args, await cs[1].cmd(args))];
        total++;
        if (a !== b) {
          diffs++;
          log(`p${proto} ${args.map((x) => (Buffer.isBuffer(x) ? `<${x.toString('hex')}>` : JSON.stringify(x.length > 40 ? `${x.slice(0, 20)}…(${x.length})` : x))).join(' ')}\n   redis ${JSON.stringify(a).slice(0, 400)}\n   grid  ${JSON.stringify(b).slice(0, 400)}`);
        }
      }
      for (const c of cs) c.end();
    }
  }
  log(`fixed: ${total} commands compared, ${diffs} differ`);
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const red = opt('--redis') ? { port: Number(opt('--redis')) } : await startRedis();
  const { port: gridPort, grid } = await gridUnderTest(Number(opt('--port', 0)));
  try {
    await runFixed(gridPort, red.port, opt('--proto') ? [Number(opt('--proto'))] : [2, 3]);
  } finally {
    red.proc?.kill();
    await grid?.close();
  }
  process.exit(0);
}
