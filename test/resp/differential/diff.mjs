// Differential run of the RESP endpoint against a real redis-server (7.0.15 here), not part of npm
// test: the same random command sequences go to a redis-server it starts on a free loopback port and
// to a single-process grid's RESP port (npm run build first), in RESP2 and RESP3, one request at a
// time (or each sequence in one write with --pipelined), and the replies are compared byte for
// byte. Keys come from a small set so that commands interact (--odd-keys: empty, binary, long and
// glob-like keys). A sequence ends at its first difference; the kinds are printed with an example.
// Compared by shape only, as they legitimately differ: TTL/PTTL (within a few seconds), KEYS order,
// SCAN (run to the end from cursor 0 and the keys compared as a set; other cursors: an array);
// INCRBYFLOAT's long double results (README "RESP") end a sequence as documented. Relative times
// are 1 s or more, so that a key does not expire between the two servers' replies (with PX 100 it
// did, on a cluster member that answered a long pipeline more slowly).
//   node test/resp/differential/diff.mjs [seqs] [seed] [--len N] [--proto 2|3] [--pipelined] [--odd-keys] [--port P]
//   node test/resp/differential/fixed.mjs      fixed sequences: arities, HELLO, CLIENT, INFO, COMMAND, CONFIG, SCAN, errors
//   node test/resp/differential/cluster.mjs [seqs] [seed]   the same on a member of a 3-member cluster, against
//                                              redis-server and against a single-process grid
import { enc, gridUnderTest, openPair, startRedis } from './lib.mjs';

const argv = process.argv.slice(2);
const opt = (n, d) => { const i = argv.indexOf(n); return i >= 0 ? argv[i + 1] : d; };
const SEQS = Number(argv[0] ?? 200);
let seed = Number(argv[1] ?? 1);
const PROTOS = opt('--proto', 'both') === 'both' ? [2, 3] : [Number(opt('--proto'))];
const LEN = Number(opt('--len', 25));
const VERB = Number(opt('--ex', 1));
const HIST = Number(opt('--hist', 1));
const rnd = () => { seed = (seed * 1103515245 + 12345) & 0x7fffffff; return seed / 0x80000000; };
const pick = (a) => a[Math.floor(rnd() * a.length)];
const chance = (p) => rnd() < p;

const KEYS = process.argv.includes('--odd-keys') ? ['', 'a b\r\n', 'x'.repeat(300), Buffer.from([0xef, 0xbf, 0xbf, 0xc3, 0xbf]), Buffer.from([0xc3]), 'Ã', '*', '[', '\\'] : ['k1', 'k2', 'k3', 'é', Buffer.from([0xff, 0x00]), 'a*b', 'k?'];
const VALS = ['0', '1', '-1', '10', 'abc', '', '9223372036854775807', '-9223372036854775808', '9223372036854775806', '-9223372036854775807',
  '12345678901234567890', '1.5', '-0', '01', '+1', ' 1', '1 ', '1e3', '3.0e2', 'inf', '-inf', 'nan', '0x10', '1e-400', '1e400', '0.1', '-1.5e10',
  '1.7976931348623157e308', '5e-324', '00', '1.', '.5', 'x'.repeat(40)];
const INTS = ['1', '0', '-1', '100', '-100', '9223372036854775807', '-9223372036854775808', '9223372036854775808', 'abc', '1.5', '', '+5', '05', '-0', ' 1'];
const FLOATS = ['1', '0.1', '-0.1', '1e308', '-1e308', '1.7976931348623157e308', '1e-400', '1e400', 'inf', '-inf', 'nan', 'abc', '', '1e', '0x10', '5e-324', '1.5', '3', '-3.25e2', '  1', '1  ', '+1.5', '.5'];
const TIMES = () => pick(['1000', '30000', '0', '-1', '-100', 'abc', '1.5', '9223372036854775807', '9223372036854775806', '-9223372036854775808', '4611686018427387904', '100000000000000', '', '1e3']);
const key = () => pick(KEYS);
const val = () => (chance(0.5) ? pick(VALS) : `v${Math.floor(rnd() * 100)}`);
const up = (s) => (chance(0.3) ? s.toLowerCase() : s);

function setOpts() {
  const o = [];
  const n = Math.floor(rnd() * 4);
  for (let i = 0; i < n; i++) {
    const x = pick(['NX', 'XX', 'GET', 'KEEPTTL', 'EX', 'PX', 'EXAT', 'PXAT', 'BOGUS']);
    o.push(up(x));
    if (['EX', 'PX', 'EXAT', 'PXAT'].includes(x) && !chance(0.05)) o.push(absTime(x));
  }
  return o;
}
function absTime(x) {
  if (chance(0.5)) return TIMES();
  const now = Date.now();
  if (x === 'EX') return '1000';
  if (x === 'PX') return '100000';
  if (x === 'EXAT') return pick([String(Math.floor(now / 1000) + 1000), '1', String(Math.floor(now / 1000) - 10)]);
  return pick([String(now + 100000), '1', String(now - 10000)]);
}
function expOpts() {
  const o = [];
  const n = Math.floor(rnd() * 3);
  for (let i = 0; i < n; i++) o.push(up(pick(['NX', 'XX', 'GT', 'LT', 'NX', 'XX', 'GT', 'LT', 'FOO'])));
  return o;
}
const keysN = (n) => Array.from({ length: n }, key);

function gen() {
  const c = pick([
    () => ['GET', key()], () => ['GET'], () => ['GET', key(), key()],
    () => ['SET', key(), val(), ...setOpts()], () => ['SET', key(), val(), ...setOpts()], () => ['SET', key(), val(), ...setOpts()], () => ['SET', key()],
    () => ['SETNX', key(), val()], () => ['SETNX', key()],
    () => ['GETDEL', key()], () => ['GETDEL', key(), key()],
    () => { const o = []; const n = Math.floor(rnd() * 3); for (let i = 0; i < n; i++) { const x = pick(['EX', 'PX', 'EXAT', 'PXAT', 'PERSIST', 'KEEPTTL']); o.push(up(x)); if (!['PERSIST', 'KEEPTTL'].includes(x) && !chance(0.05)) o.push(absTime(x)); } return ['GETEX', key(), ...o]; },
    () => ['MGET', ...keysN(1 + Math.floor(rnd() * 4))], () => ['MGET'],
    () => { const n = 1 + Math.floor(rnd() * 3); const a = ['MSET']; for (let i = 0; i < n; i++) a.push(key(), val()); if (chance(0.1)) a.pop(); return a; },
    () => [up('DEL'), ...keysN(1 + Math.floor(rnd() * 3))], () => ['UNLINK', ...keysN(1 + Math.floor(rnd() * 3))], () => ['DEL'],
    () => ['EXISTS', ...keysN(1 + Math.floor(rnd() * 4))], () => ['EXISTS'],
    () => ['INCR', key()], () => ['DECR', key()], () => ['INCR', key(), '1'],
    () => ['INCRBY', key(), pick(INTS)], () => ['DECRBY', key(), pick(INTS)], () => ['INCRBY', key()],
    () => ['INCRBYFLOAT', key(), pick(FLOATS)], () => ['INCRBYFLOAT', key(), pick(FLOATS)], () => ['INCRBYFLOAT', key()],
    () => ['APPEND', key(), val()], () => ['STRLEN', key()],
    () => [pick(['EXPIRE', 'PEXPIRE']), key(), TIMES(), ...expOpts()],
    () => [pick(['EXPIRE', 'PEXPIRE']), key(), pick(['1000', '5000', '100000', '200000']), ...expOpts()],
    () => { const now = Date.now(); return chance(0.5) ? ['EXPIREAT', key(), pick([String(Math.floor(now / 1000) + 500), String(Math.floor(now / 1000) + 900), '1', TIMES()]), ...expOpts()] : ['PEXPIREAT', key(), pick([String(now + 500000), String(now + 900000), '1', TIMES()]), ...expOpts()]; },
    () => ['EXPIRE', key()],
    () => ['PERSIST', key()], () => ['TTL', key()], () => ['PTTL', key()], () => ['TYPE', key()],
    () => ['DBSIZE'], () => ['DBSIZE', 'x'],
    () => (chance(0.3) ? ['FLUSHDB', ...(chance(0.5) ? [pick(['ASYNC', 'SYNC', 'sync', 'foo'])] : [])] : ['PING']),
    () => { const a = ['SCAN', pick(['0', '0', '0', 'abc', '-1', '18446744073709551615', '18446744073709551616', ''])]; const n = Math.floor(rnd() * 3); for (let i = 0; i < n; i++) { const x = pick(['MATCH', 'COUNT', 'TYPE', 'FOO']); a.push(up(x)); if (!chance(0.05)) a.push(x === 'MATCH' ? pick(['*', 'k*', 'k?', '[k]1', '[^k]*', 'a\\*b', '*\\', '[', '[a-', '[z-a]*', '\\k1', '*b', 'é', '?', '**1']) : x === 'COUNT' ? pick(['1', '0', '-1', '100', 'abc', '9223372036854775807']) : pick(['string', 'list', 'STRING', 'foo', 'hash'])); } return a; },
    () => ['KEYS', pick(['*', 'k*', 'k?', '[k]1', '[^k]*', 'a\\*b', '[', '?', '*é*'])],
    () => ['SELECT', pick(['0', '-1', 'abc', '16', '00', '', '+0', '-0', ' 0'])],
    () => ['ECHO', val()], () => ['ECHO'], () => ['ECHO', 'a', 'b'],
    () => ['PING'], () => ['PING', val()], () => ['PING', 'a', 'b'],
    () => ['CLIENT', 'SETNAME', pick(['n1', 'a b', '', 'x\ny', 'é'])], () => ['CLIENT', 'GETNAME'], () => ['CLIENT', pick(['FOO', 'setname'])], () => ['CLIENT'],
    () => ['NOSUCH', 'a'],
  ]);
  return c();
}

const show = (x) => (Buffer.isBuffer(x) ? `<${x.toString('hex')}>` : JSON.stringify(x));

// normalization of legitimate differences
function norm(args, r) {
  const name = String(args[0]).toLowerCase();
  if (name === 'ttl' || name === 'pttl') {
    const m = /^:(\d+)\r\n$/.exec(r.raw);
    if (m && Number(m[1]) >= 0) return name === 'ttl' ? `:~${Math.round(Number(m[1]) / 3)}` : `:~${Math.round(Number(m[1]) / 2000)}`;
  }
  if (name === 'keys' && r.val.t === '*' || r.val.t === '~') return `${r.val.t}${r.val.v.map((x) => x.v).sort().join(',')}`;
  return r.raw;
}

async function scanAll(c, args) {
  // runs the SCAN to completion: the keys found (sorted) and the error if any
  const got = [];
  let cur = args[1];
  for (let i = 0; i < 1000; i++) {
    const r = await c.cmd(['SCAN', cur, ...args.slice(2)]);
    if (r.val.t !== '*' && r.val.t !== '>') return r.raw;
    cur = r.val.v[0].v;
    for (const x of r.val.v[1].v) got.push(x.v);
    if (cur === '0') break;
  }
  return `scan:${got.sort().map((x) => JSON.stringify(x)).join(',')}`;
}

async function one(c, args) {
  if (String(args[0]).toUpperCase() === 'SCAN') {
    if (/^[-+]?0*$/.test(args[1]) && args[1] !== '-' && args[1] !== '+') return scanAll(c, args);
    const r = await c.cmd(args);
    return r.val.t === '*' || r.val.t === '>' ? 'scan-array (shape only: cursors differ)' : r.raw;
  }
  return norm(args, await c.cmd(args));
}

/** Documented differences: INCRBYFLOAT's long double (README "RESP"). */
function allowed(args, a, b) {
  if (String(args[0]).toUpperCase() !== 'INCRBYFLOAT') return false;
  const num = (r) => (r.startsWith('$') || r.startsWith('=') ? Number(r.split('\r\n')[1]) : undefined);
  const [x, y] = [num(a), num(b)];
  if (x !== undefined && y !== undefined) return Math.abs(x - y) <= Math.abs(x) * 1e-15 + 1e-15;
  // past a double's range: Redis's long double holds it, the grid answers Redis's inf error
  return x !== undefined && (!Number.isFinite(x) || Math.abs(x) > 1.7976931348623157e308 || Math.abs(x) >= 1.79769313486231e308) && b.includes('NaN or Infinity');
}

/** Runs `body` for each sequence of each protocol, on a fresh pair of connections (closed after it). */
async function eachSequence(redisPort, gridPort, protos, seqs, body) {
  for (const proto of protos) {
    for (let s = 0; s < seqs; s++) {
      const cs = await openPair(redisPort, gridPort, proto);
      try {
        await body(cs, proto, s);
      } finally {
        for (const c of cs) c.end();
      }
    }
  }
}

/** Pipelined: each sequence in one write to each server, the replies compared in order (SCAN: shape only). */
export async function runPipelined({ gridPort, redisPort, seqs = SEQS, protos = PROTOS, len = LEN, log = console.log, seed: s0 }) {
  if (s0 !== undefined) seed = s0;
  let total = 0;
  let differ = 0;
  let documented = 0;
  await eachSequence(redisPort, gridPort, protos, seqs, async (cs, proto, s) => {
      const cmds = [];
      for (let i = 0; i < len; i++) {
        const a = gen();
        if (String(a[0]).toUpperCase() === 'QUIT') continue;
        cmds.push(a);
      }
      const outs = [];
      for (const c of cs) {
        c.sock.write(Buffer.concat(cmds.map(enc)));
        const rs = [];
        for (const a of cmds) {
          const r = await c.read(10_000);
          rs.push(String(a[0]).toUpperCase() === 'SCAN' ? (r.val.t === '*' || r.val.t === '>' ? 'scan-array' : r.raw) : norm(a, r));
        }
        outs.push(rs);
      }
      for (let i = 0; i < cmds.length; i++) {
        total++;
        if (outs[0][i] === outs[1][i]) continue;
        if (allowed(cmds[i], outs[0][i], outs[1][i]) || /invalid expire time/.test(outs[1][i])) documented++;
        else {
          differ++;
          log(`p${proto} seq ${s} #${i} ${cmds.slice(0, i + 1).map((x) => x.map(show).join(' ')).join(' ; ')}\n  redis ${JSON.stringify(outs[0][i]).slice(0, 200)}\n  grid  ${JSON.stringify(outs[1][i]).slice(0, 200)}`);
        }
        break; // the states may differ from here on
      }
  });
  log(`pipelined: ${total} replies compared, ${documented} sequences ended at a documented difference, ${differ} other differences`);
}

export async function run({ gridPort, redisPort, seqs = SEQS, protos = PROTOS, len = LEN, log = console.log, seed: s0 }) {
  if (s0 !== undefined) seed = s0;
  const diffs = new Map();
  let total = 0;
  let documented = 0;
  await eachSequence(redisPort, gridPort, protos, seqs, async (cs, proto) => {
      const hist = [];
      for (let i = 0; i < len; i++) {
        const args = gen();
        hist.push(args);
        const [a, b] = [await one(cs[0], args), await one(cs[1], args)];
        total++;
        if (a !== b && allowed(args, a, b)) { documented++; break; }
        if (a !== b) {
          const sig = `${String(args[0]).toUpperCase()} p${proto}: ${JSON.stringify(a.slice(0, 50))} | ${JSON.stringify(b.slice(0, 50))}`.replace(/[0-9]{6,}/g, 'N');
          const e = diffs.get(sig) ?? { n: 0, ex: [] };
          e.n++;
          if (e.ex.length < 2) e.ex.push({ hist: hist.slice(-40).map((h) => h.map(show).join(' ')), redis: a, grid: b });
          diffs.set(sig, e);
          // resync: copy state? simply end this sequence
          break;
        }
        if (String(args[0]).toUpperCase() === 'QUIT') break;
      }
  });
  log(`commands compared: ${total}, documented INCRBYFLOAT precision/range differences (sequence ended there): ${documented}, difference kinds: ${diffs.size}`);
  for (const [sig, e] of [...diffs].sort((x, y) => y[1].n - x[1].n)) {
    log(`\n[${e.n}] ${sig}`);
    for (const x of e.ex.slice(0, VERB)) log(`  seq: ${x.hist.slice(-HIST).join(' ; ')}\n  redis: ${JSON.stringify(x.redis).slice(0, 300)}\n  grid:  ${JSON.stringify(x.grid).slice(0, 300)}`);
  }
  return diffs;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const red = await startRedis();
  const { port: gridPort, grid } = await gridUnderTest(Number(opt('--port', 0)));
  try {
    if (argv.includes('--pipelined')) await runPipelined({ gridPort, redisPort: red.port });
    else await run({ gridPort, redisPort: red.port });
  } finally {
    red.proc.kill();
    await grid?.close();
  }
  process.exit(0);
}
