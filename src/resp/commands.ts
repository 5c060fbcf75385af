/**
 * The commands of the RESP endpoint. Each reads its arguments (client bytes: lengths and counts
 * were bounded by the parser, and nothing here calls a method of anything a client chose) and
 * writes its reply to the connection's ReplyWriter, synchronously or after one awaited map call.
 * Replies and error texts are Redis's own, so clients and their error handling work unchanged.
 *
 * Values are byte strings: what RESP writes is stored as a Buffer; a value the library API stored
 * reads as its UTF-8 (string), decimal text (number) or msgpack bytes (anything else).
 * Read-modify-write commands run as one named update under the key's partition lock
 * (GridMap.updateBytes, src/updates.ts), on the key's primary in a cluster.
 */
import { ValueTooLargeError } from '../errors.js';
import { RESOLVED } from '../map.js';
import {
  ERR_NAN, ERR_NOT_FLOAT, ERR_NOT_INTEGER, EXP_ALWAYS, EXP_GT, EXP_LT, EXP_NX, EXP_XX, EXP_XX_LT, SET_ALWAYS, SET_NX, SET_XX,
  parseFloatText, type UpdateReply,
} from '../updates.js';
import { CP_SPECS } from './cp-commands.js';
import { ERR_SYNTAX, echoed, intArg, keyTooLarge, lower, safeInt, spec, text, valueBytes, type CommandSpec, type RespClient, type RespContext, type Run } from './command-kit.js';
import { globMatch, keyBytes, keyIn } from './keys.js';
import type { ReplyWriter } from './reply.js';

export { ERR_SYNTAX, errorReply, valueBytes, type CommandSpec, type RespClient, type RespContext } from './command-kit.js';

function sendUpdate(c: RespClient, r: UpdateReply): void {
  if (r[0] === 'i') c.out.int(r[1]);
  else if (r[0] === 'b') c.out.bulk(r[1]);
  else c.out.error(r[1]);
}

/** sendUpdate of a command that returns the key's old value (GETDEL, GETEX, SET … GET): counted as a read. */
function sendRead(cx: RespContext, c: RespClient, r: UpdateReply): void {
  if (r[0] === 'b') cx.countRead(r[1] !== null);
  sendUpdate(c, r);
}

function update(cx: RespContext, c: RespClient, key: Buffer, kind: string, arg: unknown, reads = false): void | Promise<void> {
  const k = keyIn(key, cx.maxKeyBytes);
  if (k === undefined) return neverExists(cx, c, key, kind);
  if (cx.updateNow !== undefined) {
    const r = cx.updateNow(k, kind, arg);
    if (r !== undefined) return reads ? sendRead(cx, c, r) : sendUpdate(c, r);
  }
  return cx.map.updateBytes(k, kind, arg).then((r) => (reads ? sendRead(cx, c, r) : sendUpdate(c, r)));
}

/**
 * An update's reply for a key over maxKeyBytes, which can never exist: what Redis answers for a
 * missing key (GETDEL and GETEX nil, counted as a miss; EXPIRE and PERSIST 0), and for an update
 * that would create it (INCR…, APPEND) the grid's GRID_ERR_KEY_TOO_LARGE.
 */
function neverExists(cx: RespContext, c: RespClient, key: Buffer, kind: string): void {
  if (kind === 'getdel' || kind === 'getex') {
    cx.countRead(false);
    return c.out.nil();
  }
  if (kind === 'expire' || kind === 'persist') return c.out.int(0);
  c.out.error(keyTooLarge(key, cx.maxKeyBytes));
}

/** A get through the fastest path the grid allows; the value as RESP bytes (a key over maxKeyBytes: none, a miss). */
function read(cx: RespContext, key: Buffer): Buffer | undefined | Promise<Buffer | undefined> {
  const k = keyIn(key, cx.maxKeyBytes);
  if (k === undefined) {
    cx.countRead(false);
    return undefined;
  }
  const v = cx.getNow(k);
  if (v !== cx.need) return valueBytes(v);
  return cx.map.get(k).then(valueBytes);
}

const INT64_MAX = 2n ** 63n - 1n;
/** The latest expiry time the grid keeps, ms (Redis: an int64). */
const MAX_SAFE = BigInt(Number.MAX_SAFE_INTEGER);

/** The options of SET (forSet) and GETEX, as Redis 7's parseExtendedStringArgumentsOrReply reads them. */
interface StringOptions {
  cond: number;
  get: boolean;
  keepTtl: boolean;
  persist: boolean;
  /** ex, px, exat or pxat, with its argument (checked later: expiryOf). */
  unit: string | undefined;
  expire: Buffer | undefined;
}

/**
 * SET's and GETEX's options, or undefined for a syntax error. As in Redis, an option may be
 * repeated (`NX NX`, `EX 1 EX 2`: the last value counts); only options that contradict each
 * other are refused (NX with XX, two different expiry units, an expiry with KEEPTTL or PERSIST),
 * and NX, XX, GET and KEEPTTL are SET's, PERSIST is GETEX's.
 */
function stringOptions(argv: Buffer[], from: number, forSet: boolean): StringOptions | undefined {
  const o: StringOptions = { cond: SET_ALWAYS, get: false, keepTtl: false, persist: false, unit: undefined, expire: undefined };
  for (let i = from; i < argv.length; i++) {
    const opt = lower(argv[i]);
    if (forSet && opt === 'nx' && o.cond !== SET_XX) o.cond = SET_NX;
    else if (forSet && opt === 'xx' && o.cond !== SET_NX) o.cond = SET_XX;
    else if (forSet && opt === 'get') o.get = true;
    else if (forSet && opt === 'keepttl' && o.unit === undefined) o.keepTtl = true;
    else if (!forSet && opt === 'persist' && o.unit === undefined) o.persist = true;
    else if ((opt === 'ex' || opt === 'px' || opt === 'exat' || opt === 'pxat') && !o.keepTtl && !o.persist && (o.unit ?? opt) === opt && i + 1 < argv.length) {
      o.unit = opt;
      o.expire = argv[++i];
    } else {
      return undefined;
    }
  }
  return o;
}

/**
 * An expiry option's value (EX s | PX ms | EXAT s | PXAT ms) as an absolute time in ms, relative
 * ones from `now`; or the error reply, as Redis checks it after all options were read: not an
 * integer, then not positive or past the range (here a safe integer of ms, README "RESP").
 */
function expiryOf(unit: string, b: Buffer, now: number, cmd: string): number | string {
  const n = intArg(b);
  if (n === undefined) return ERR_NOT_INTEGER;
  const invalid = `ERR invalid expire time in '${cmd}' command`;
  if (n <= 0n || n > MAX_SAFE) return invalid;
  const v = Number(n);
  const at = unit === 'ex' ? now + v * 1000 : unit === 'px' ? now + v : unit === 'exat' ? v * 1000 : v;
  return Number.isSafeInteger(at) ? at : invalid;
}

// ── the commands ────────────────────────────────────────────────────────────────────────────────

const ping: Run = (_cx, c, argv) => {
  if (argv.length > 2) return c.out.error("ERR wrong number of arguments for 'ping' command");
  if (argv.length === 2) c.out.bulk(argv[1]);
  else c.out.simple('PONG');
};

const auth: Run = (cx, c, argv) => {
  if (argv.length > 3) return c.out.error(ERR_SYNTAX);
  const user = argv.length === 3 ? text(argv[1]) : 'default';
  // without a password the default user is Redis's "nopass": `AUTH default <anything>` succeeds
  // (clients configured with a password send that form), `AUTH <password>` alone is an error
  const ok = passes(cx, user, argv[argv.length - 1]);
  if (ok === undefined && argv.length === 2) {
    return c.out.error('ERR AUTH <password> called without any password configured for the default user. Are you sure your configuration is correct?');
  }
  if (ok === false) return c.out.error('WRONGPASS invalid username-password pair or user is disabled.');
  c.authenticated = true;
  c.out.ok();
};

/** AUTH's check: true or false; undefined when no password is configured and the user is the default one (nopass). */
function passes(cx: RespContext, user: string, pass: Buffer): boolean | undefined {
  const ok = cx.checkPassword(user, pass);
  return ok === undefined ? (user === 'default' ? undefined : false) : ok;
}

const hello: Run = (cx, c, argv) => {
  let proto: 2 | 3 | undefined;
  let i = 1;
  if (argv.length > 1) {
    const v = safeInt(argv[1]);
    if (v === undefined) return c.out.error('ERR Protocol version is not an integer or out of range');
    if (v !== 2 && v !== 3) return c.out.error('NOPROTO unsupported protocol version');
    proto = v;
    i = 2;
  }
  let setName: string | undefined;
  for (; i < argv.length; i++) {
    const opt = lower(argv[i]);
    const more = argv.length - i - 1;
    if (opt === 'auth' && more >= 2) {
      if (passes(cx, text(argv[i + 1]), argv[i + 2]) === false) return c.out.error('WRONGPASS invalid username-password pair or user is disabled.');
      c.authenticated = true;
      i += 2;
    } else if (opt === 'setname' && more >= 1) {
      setName = text(argv[i + 1]);
      if (!validName(setName)) return c.out.error(ERR_CLIENT_NAME);
      i += 1;
    } else {
      return c.out.errorBytes(`ERR Syntax error in HELLO option '${echoed(argv[i])}'`);
    }
  }
  if (!c.authenticated) {
    return c.out.error('NOAUTH HELLO must be called with the client already authenticated, otherwise the HELLO <proto> AUTH <user> <pass> option can be used to authenticate the client and select the RESP protocol version at the same time');
  }
  if (setName !== undefined) c.name = setName;
  if (proto !== undefined) c.setProto(proto);
  const o = c.out;
  o.map(7);
  o.bulkText('server');
  o.bulkText('redis');
  o.bulkText('version');
  o.bulkText(REDIS_VERSION);
  o.bulkText('proto');
  o.int(o.proto);
  o.bulkText('id');
  o.int(c.id);
  o.bulkText('mode');
  o.bulkText('standalone');
  o.bulkText('role');
  o.bulkText('master');
  o.bulkText('modules');
  o.array(0);
};

/** The Redis version whose commands and replies this endpoint follows (INFO, HELLO). */
export const REDIS_VERSION = '7.2.0';

const ERR_CLIENT_NAME = 'ERR Client names cannot contain spaces, newlines or special characters.';
const validName = (s: string): boolean => /^[!-~]*$/.test(s);

/** A subcommand of CLIENT, CONFIG or COMMAND: its Redis arity (counting the command and its own name), what HELP says of it, and its run. */
interface Sub {
  arity: number;
  /** HELP's lines: the usage, then what it does. */
  help: [string, string];
  run: Run;
}

/**
 * A command made of subcommands, answering as Redis 7 does: `ERR unknown subcommand 'FOO'. Try
 * CLIENT HELP.`, `ERR wrong number of arguments for 'client|setname' command`, and HELP: the
 * subcommands served here, each with a line of what it does (an array of simple strings).
 */
function container(name: string, subs: Record<string, Sub>): Run {
  const table = new Map<string, Sub>(Object.entries(subs));
  const upper = name.toUpperCase();
  const help: string[] = [`${upper} <subcommand> [<arg> [value] [opt] ...]. Subcommands are:`];
  table.set('help', {
    arity: 2,
    help: ['HELP', 'Print this help.'],
    run: (_cx, c) => {
      c.out.array(help.length);
      for (const line of help) c.out.simple(line);
    },
  });
  for (const sub of table.values()) help.push(sub.help[0], `    ${sub.help[1]}`);
  return (cx, c, argv) => {
    const sub = lower(argv[1]);
    const s = table.get(sub);
    if (s === undefined) return c.out.errorBytes(`ERR unknown subcommand '${echoed(argv[1], 128)}'. Try ${upper} HELP.`);
    if (!arityOk(s, argv.length)) return c.out.error(`ERR wrong number of arguments for '${name}|${sub}' command`);
    return s.run(cx, c, argv);
  };
}

const client = container('client', {
  setname: {
    arity: 3,
    help: ['SETNAME <name>', 'Name this connection (no spaces, newlines or special characters).'],
    run: (_cx, c, argv) => {
      const n = text(argv[2]);
      if (!validName(n)) return c.out.error(ERR_CLIENT_NAME);
      c.name = n;
      c.out.ok();
    },
  },
  getname: { arity: 2, help: ['GETNAME', "This connection's name, or nil."], run: (_cx, c) => c.out.bulk(c.name === '' ? null : Buffer.from(c.name)) },
  id: { arity: 2, help: ['ID', "This connection's id."], run: (_cx, c) => c.out.int(c.id) },
  // Redis 7.2's: clients send their library's name and version; accepted, not kept
  setinfo: { arity: 4, help: ['SETINFO <LIB-NAME|LIB-VER> <value>', 'Accepted and ignored.'], run: (_cx, c) => c.out.ok() },
});

const select: Run = (_cx, c, argv) => {
  // an int in Redis (getIntFromObjectOrReply), with its text for a long past an int's range
  const n = intArg(argv[1]);
  if (n === undefined) return c.out.error(ERR_NOT_INTEGER);
  if (n < -(2n ** 31n) || n >= 2n ** 31n) return c.out.error('ERR value is out of range, value must between -2147483648 and 2147483647');
  if (n !== 0n) return c.out.error('ERR DB index is out of range');
  c.out.ok();
};

const get: Run = (cx, c, argv) => {
  const v = read(cx, argv[1]);
  if (v instanceof Promise) return v.then((b) => c.out.bulk(b));
  c.out.bulk(v);
};

const set: Run = (cx, c, argv) => {
  const o = stringOptions(argv, 3, true);
  if (o === undefined) return c.out.error(ERR_SYNTAX);
  const now = Date.now();
  const { cond, keepTtl, get: wantGet } = o;
  let at = 0;
  let ttl: number | undefined;
  const timed = o.unit !== undefined;
  if (timed) {
    const t = expiryOf(o.unit!, o.expire!, now, 'set');
    if (typeof t === 'string') return c.out.error(t);
    at = t;
    if (o.unit === 'ex' || o.unit === 'px') ttl = t - now;
  }
  const key = keyIn(argv[1], cx.maxKeyBytes);
  if (key === undefined) {
    // a key over maxKeyBytes never exists: XX does not write it, and answers as for a missing key
    if (cond !== SET_XX) return c.out.error(keyTooLarge(argv[1], cx.maxKeyBytes));
    if (wantGet) cx.countRead(false);
    return c.out.nil();
  }
  const value = argv[2];
  // the common forms take the map's own fast paths; the rest is one update under the lock
  if (!wantGet && !keepTtl && (!timed || ttl !== undefined)) {
    if (cond === SET_ALWAYS) {
      const r = cx.map.set(key, value, ttl === undefined ? undefined : { ttl });
      // written in the call (a free lock, this process's memory): reply now, no promise hop
      if (r === RESOLVED) return c.out.ok();
      return r.then(() => c.out.ok());
    }
    if (cond === SET_NX) return cx.map.setIfAbsent(key, value, ttl === undefined ? undefined : { ttl }).then((ok) => (ok ? c.out.ok() : c.out.nil()));
  }
  return cx.map.updateBytes(key, 'set', [value, cond, at, keepTtl, wantGet, cx.map.defaultTtl]).then((r) => {
    if (wantGet) sendRead(cx, c, r);
    else if (r[0] === 'i' && r[1] === '1') c.out.ok();
    else c.out.nil();
  });
};

const setnx: Run = (cx, c, argv) => {
  const key = keyIn(argv[1], cx.maxKeyBytes);
  if (key === undefined) return c.out.error(keyTooLarge(argv[1], cx.maxKeyBytes));
  return cx.map.setIfAbsent(key, argv[2]).then((ok) => c.out.int(ok ? 1 : 0));
};

const getdel: Run = (cx, c, argv) => update(cx, c, argv[1], 'getdel', [], true);

const getex: Run = (cx, c, argv) => {
  const o = stringOptions(argv, 2, false);
  if (o === undefined) return c.out.error(ERR_SYNTAX);
  if (!o.persist && o.unit === undefined) return get(cx, c, argv);
  if (o.persist) return update(cx, c, argv[1], 'getex', [2, 0], true);
  const t = expiryOf(o.unit!, o.expire!, Date.now(), 'getex');
  if (typeof t === 'number') return update(cx, c, argv[1], 'getex', [1, t], true);
  // Redis looks the key up before it checks the time: a missing key answers nil
  const v = read(cx, argv[1]);
  if (v instanceof Promise) return v.then((b) => (b === undefined ? c.out.nil() : c.out.error(t)));
  if (v === undefined) return c.out.nil();
  c.out.error(t);
};

/**
 * MGET: each distinct key is read once and its value encoded once, and the reply's size is known
 * before it is built: over maxReplyBytes it is refused. Named a million times in one request (7 MB),
 * a key of 2,000 bytes took the member 1.7 GB, one of 1 MiB named 500 times 1 GB.
 */
const mget: Run = async (cx, c, argv) => {
  // keys over maxKeyBytes can never exist: nil in their places (and a miss each), the rest read
  const n = argv.length - 1;
  const keys: string[] = [];
  const slot = new Map<string, number>();
  const at = new Int32Array(n); // index into keys, or -1
  const again = new Uint8Array(n); // 1: a key named earlier in the request
  for (let i = 0; i < n; i++) {
    const k = keyIn(argv[i + 1], cx.maxKeyBytes);
    if (k === undefined) {
      at[i] = -1;
      cx.countRead(false);
      continue;
    }
    let j = slot.get(k);
    if (j === undefined) slot.set(k, (j = keys.push(k) - 1));
    else again[i] = 1;
    at[i] = j;
  }
  const vals = (await cx.map.getMany(keys)).map(valueBytes);
  let bytes = 0;
  for (let i = 0; i < n; i++) {
    const v = at[i] < 0 ? undefined : vals[at[i]];
    if (again[i] === 1) cx.countRead(v !== undefined); // a hit or a miss each, as Redis counts them
    bytes += v === undefined ? 5 : v.length + 14; // $len CRLF value CRLF
  }
  if (bytes > cx.maxReplyBytes) throw new ValueTooLargeError(`MGET reply of ${bytes} bytes is over resp.maxReplyBytes (${cx.maxReplyBytes})`, { bytes, limit: cx.maxReplyBytes });
  c.out.array(n);
  for (let i = 0; i < n; i++) c.out.bulk(at[i] < 0 ? undefined : vals[at[i]]);
};

const mset: Run = async (cx, c, argv) => {
  if (argv.length % 2 !== 1) return c.out.error("ERR wrong number of arguments for 'mset' command");
  const entries: Array<[string, Buffer]> = [];
  for (let i = 1; i < argv.length; i += 2) {
    const k = keyIn(argv[i], cx.maxKeyBytes);
    // before anything is written: one key too long refuses the whole MSET
    if (k === undefined) return c.out.error(keyTooLarge(argv[i], cx.maxKeyBytes));
    entries.push([k, argv[i + 1]]);
  }
  await cx.map.setMany(entries);
  c.out.ok();
};

const del: Run = async (cx, c, argv) => {
  let n = 0;
  for (let i = 1; i < argv.length; i++) {
    const k = keyIn(argv[i], cx.maxKeyBytes); // a key over maxKeyBytes: none to delete
    if (k !== undefined && (await cx.map.delete(k))) n++;
  }
  c.out.int(n);
};

/** map.has, counted as a read of the key (Redis counts the lookups of EXISTS, TYPE and TTL); a key over maxKeyBytes is a miss. */
async function looksUp(cx: RespContext, key: string | undefined): Promise<boolean> {
  const found = key !== undefined && (await cx.map.has(key));
  cx.countRead(found);
  return found;
}

const exists: Run = async (cx, c, argv) => {
  let n = 0;
  for (let i = 1; i < argv.length; i++) if (await looksUp(cx, keyIn(argv[i], cx.maxKeyBytes))) n++;
  c.out.int(n);
};

function incrBy(cx: RespContext, c: RespClient, key: Buffer, delta: bigint): void | Promise<void> {
  return update(cx, c, key, 'incrby', [delta.toString(), cx.map.defaultTtl]);
}

const incr: Run = (cx, c, argv) => incrBy(cx, c, argv[1], 1n);
const decr: Run = (cx, c, argv) => incrBy(cx, c, argv[1], -1n);
const incrby: Run = (cx, c, argv) => {
  const d = intArg(argv[2]);
  if (d === undefined) return c.out.error(ERR_NOT_INTEGER);
  return incrBy(cx, c, argv[1], d);
};
const decrby: Run = (cx, c, argv) => {
  const d = intArg(argv[2]);
  if (d === undefined || d === -(2n ** 63n)) return c.out.error(d === undefined ? ERR_NOT_INTEGER : 'ERR decrement would overflow');
  return incrBy(cx, c, argv[1], -d);
};
const incrbyfloat: Run = (cx, c, argv) => {
  const d = parseFloatText(argv[2]);
  if (d === undefined) return c.out.error(ERR_NOT_FLOAT);
  // an infinite d (`inf`, or a text past a double's range such as 5e308, which Redis's long double
  // still holds) answers ERR_NAN from the update, after the key's value was read as a float
  return update(cx, c, argv[1], 'incrbyfloat', [d, cx.map.defaultTtl]);
};

const append: Run = (cx, c, argv) => update(cx, c, argv[1], 'append', [argv[2], cx.map.defaultTtl]);

const strlen: Run = (cx, c, argv) => {
  const v = read(cx, argv[1]);
  if (v instanceof Promise) return v.then((b) => c.out.int(b?.length ?? 0));
  c.out.int(v?.length ?? 0);
};

function expireCmd(unitMs: number, absolute: boolean, name: string): Run {
  return (cx, c, argv) => {
    // Redis 7: the options first, then the time. NX excludes the others, GT excludes LT, XX
    // combines with GT or LT; repeats are fine
    let nx = false;
    let xx = false;
    let gt = false;
    let lt = false;
    for (let i = 3; i < argv.length; i++) {
      const opt = lower(argv[i]);
      if (opt === 'nx') nx = true;
      else if (opt === 'xx') xx = true;
      else if (opt === 'gt') gt = true;
      else if (opt === 'lt') lt = true;
      else return c.out.errorBytes(`ERR Unsupported option ${echoed(argv[i])}`);
    }
    if (nx && (xx || gt || lt)) return c.out.error('ERR NX and XX, GT or LT options at the same time are not compatible');
    if (gt && lt) return c.out.error('ERR GT and LT options at the same time are not compatible');
    const n = intArg(argv[2]);
    if (n === undefined) return c.out.error(ERR_NOT_INTEGER);
    const cond = nx ? EXP_NX : gt ? EXP_GT : lt ? (xx ? EXP_XX_LT : EXP_LT) : xx ? EXP_XX : EXP_ALWAYS;
    // Redis refuses seconds whose ms pass an int64, and a time past int64 or (here) past a safe
    // integer of ms; a time long past is any time past (the key is deleted), as in Redis
    const invalid = `ERR invalid expire time in '${name}' command`;
    if (unitMs === 1000 && (n > INT64_MAX / 1000n || n < -INT64_MAX / 1000n)) return c.out.error(invalid);
    const at = n * BigInt(unitMs) + (absolute ? 0n : BigInt(Date.now()));
    if (at > MAX_SAFE) return c.out.error(invalid);
    return update(cx, c, argv[1], 'expire', [at < -MAX_SAFE ? -Number.MAX_SAFE_INTEGER : Number(at), cond]);
  };
}

const persist: Run = (cx, c, argv) => update(cx, c, argv[1], 'persist', []);

function ttlCmd(ms: boolean): Run {
  return async (cx, c, argv) => {
    const k = keyIn(argv[1], cx.maxKeyBytes);
    if (k === undefined) {
      cx.countRead(false);
      return c.out.int(-2);
    }
    const t = await cx.map.ttl(k);
    if (t !== undefined) {
      cx.countRead(true);
      // whole ms, as Redis keeps them: the library takes a fractional ttl (100_000 / 3), and its
      // remaining time written as is (":33326.33") is no RESP integer; then Redis's seconds
      const pttl = Math.ceil(t);
      return c.out.int(ms ? pttl : Math.floor((pttl + 500) / 1000));
    }
    c.out.int((await looksUp(cx, k)) ? -1 : -2);
  };
}

const type: Run = async (cx, c, argv) => c.out.simple((await looksUp(cx, keyIn(argv[1], cx.maxKeyBytes))) ? 'string' : 'none');

const dbsize: Run = async (cx, c) => c.out.int(await cx.map.size());

const flushdb: Run = async (cx, c, argv) => {
  if (argv.length > 2 || (argv.length === 2 && !['async', 'sync'].includes(lower(argv[1])))) return c.out.error(ERR_SYNTAX);
  await cx.map.clear();
  c.out.ok();
};

/**
 * SCAN cursor [MATCH pattern] [COUNT n] [TYPE t]. The cursor is the next partition to visit
 * (0: start, and 0 again when done); each call visits whole partitions until it has examined at
 * least COUNT keys, so every key present for the whole iteration is returned exactly once, and a
 * call may return more than COUNT keys (as Redis allows).
 */
const scan: Run = async (cx, c, argv) => {
  const cur = scanCursor(argv[1]);
  if (cur === undefined) return c.out.error('ERR invalid cursor');
  let pattern: Buffer | undefined;
  let count = 10;
  let onlyStrings = true;
  for (let i = 2; i < argv.length; i++) {
    const opt = lower(argv[i]);
    if (i + 1 >= argv.length) return c.out.error(ERR_SYNTAX);
    if (opt === 'match') pattern = argv[++i];
    else if (opt === 'count') {
      const n = intArg(argv[++i]); // a long in Redis: any int64
      if (n === undefined) return c.out.error(ERR_NOT_INTEGER);
      if (n < 1n) return c.out.error(ERR_SYNTAX);
      count = n > MAX_SAFE ? Number.MAX_SAFE_INTEGER : Number(n);
    } else if (opt === 'type') onlyStrings = lower(argv[++i]) === 'string';
    else return c.out.error(ERR_SYNTAX);
  }
  const found: Buffer[] = [];
  // a cursor past the last partition (no call returns one) ends the scan at once
  let p = cur < BigInt(cx.partitions) ? Number(cur) : cx.partitions;
  let examined = 0;
  while (p < cx.partitions && examined < count) examined += await matchIn(cx, p++, pattern, onlyStrings ? found : undefined);
  const next = p >= cx.partitions ? 0 : p;
  c.out.array(2);
  c.out.bulkText(String(next));
  c.out.array(found.length);
  for (const b of found) c.out.bulk(b);
};

/**
 * A SCAN cursor as Redis reads it (strtoul, base 10): an unsigned 64-bit number, with an optional
 * sign ('-1' is 2^64 - 1, as strtoul negates), no space first or last; '' is 0, as strtoul reads
 * no digits. Undefined past 64 bits or for anything else (Redis: "invalid cursor").
 */
function scanCursor(b: Buffer): bigint | undefined {
  if (b.length === 0) return 0n;
  const m = /^([-+]?)(0*)([0-9]{0,20})$/.exec(b.length > 65_536 ? '' : b.toString('latin1'));
  if (m === null || m[2].length + m[3].length === 0) return undefined;
  const n = BigInt(`0${m[3]}`);
  if (n >= 2n ** 64n) return undefined;
  return m[1] === '-' ? (2n ** 64n - n) % 2n ** 64n : n;
}

/**
 * Partition p's keys that match `pattern` (every key when undefined), as RESP bytes, pushed to
 * `out` (none when undefined); how many keys p holds. SCAN's and KEYS's walk.
 */
async function matchIn(cx: RespContext, p: number, pattern: Buffer | undefined, out: Buffer[] | undefined): Promise<number> {
  const keys = await cx.map.keysIn(p);
  if (out !== undefined) {
    for (const k of keys) {
      const b = keyBytes(k);
      if (pattern === undefined || globMatch(pattern, b)) out.push(b);
    }
  }
  return keys.length;
}

/** KEYS pattern: every key that matches, in one reply (all partitions, as Redis walks its whole keyspace). */
const keys: Run = async (cx, c, argv) => {
  const star = argv[1].length === 1 && argv[1][0] === 0x2a; // '*': no match to run
  const found: Buffer[] = [];
  for (let p = 0; p < cx.partitions; p++) await matchIn(cx, p, star ? undefined : argv[1], found);
  c.out.array(found.length);
  for (const b of found) c.out.bulk(b);
};

// MULTI/EXEC/DISCARD/WATCH: there are no transactions (a cluster applies each key's writes on
// its own primary). MULTI is refused, and so is every command after it up to EXEC or DISCARD (as
// Redis refuses the commands of a transaction with an error in it): EXEC then answers EXECABORT
// and none of what the client queued has run. Unknown commands, these used to let a client's
// MULTI INCR EXPIRE EXEC apply the INCR and the EXPIRE while it was told the transaction failed.
export const ERR_MULTI = 'ERR MULTI is not supported: shardgrid has no transactions; the commands up to EXEC or DISCARD are refused and EXEC answers EXECABORT';
export const ERR_IN_MULTI = 'ERR not run: this connection sent a MULTI, which is not supported; EXEC or DISCARD ends it';
const TX_CONTROL = new Set(['multi', 'exec', 'discard', 'watch', 'quit']);
/** Whether `name` still runs after a refused MULTI (the commands that end or concern the transaction). */
export const runsInRefusedMulti = (name: string): boolean => TX_CONTROL.has(name);

const multi: Run = (_cx, c) => {
  if (c.inRefusedMulti) return c.out.error('ERR MULTI calls can not be nested');
  c.inRefusedMulti = true;
  c.out.error(ERR_MULTI);
};

const exec: Run = (_cx, c) => {
  if (!c.inRefusedMulti) return c.out.error('ERR EXEC without MULTI');
  c.inRefusedMulti = false;
  c.out.error('EXECABORT Transaction discarded because of previous errors.');
};

const discard: Run = (_cx, c) => {
  if (!c.inRefusedMulti) return c.out.error('ERR DISCARD without MULTI');
  c.inRefusedMulti = false;
  c.out.ok();
};

const watch: Run = (_cx, c) =>
  c.out.error(c.inRefusedMulti ? 'ERR WATCH inside MULTI is not allowed' : 'ERR WATCH is not supported: shardgrid has no transactions (MULTI/EXEC)');

/** Nothing is ever watched. */
const unwatch: Run = (_cx, c) => c.out.ok();

const echo: Run = (_cx, c, argv) => c.out.bulk(argv[1]);

const quit: Run = (_cx, c) => c.quit();

const info: Run = async (cx, c, argv) => {
  c.out.verbatim(await cx.info(argv.slice(1).map(lower)));
};

const config = container('config', {
  get: {
    arity: -3,
    help: ['GET <pattern> [<pattern> ...]', 'The parameters that match the glob-like patterns, with their values.'],
    run: (cx, c, argv) => {
      const pairs: Array<[string, string]> = [];
      for (let i = 2; i < argv.length; i++) {
        const pat = argv[i];
        for (const name of cx.configNames()) if (globMatch(pat, Buffer.from(name)) && !pairs.some((x) => x[0] === name)) pairs.push([name, cx.config(name)!]);
      }
      c.out.map(pairs.length);
      for (const [k, v] of pairs) {
        c.out.bulkText(k);
        c.out.bulkText(v);
      }
    },
  },
  set: {
    arity: -4,
    help: ['SET <parameter> <value>', 'Not supported: settings are taken at start.'],
    run: (_cx, c) => c.out.error('ERR CONFIG SET is not supported: shardgrid takes its settings at start (createGrid options or shardgrid start flags)'),
  },
  resetstat: {
    arity: 2,
    help: ['RESETSTAT', "Start INFO's stats section from zero."],
    run: (cx, c) => {
      cx.resetStats();
      c.out.ok();
    },
  },
});

/** Every command of TABLE with its COMMAND INFO entry (COMMAND, and COMMAND INFO without names, as Redis 7). */
function allCommands(o: ReplyWriter): void {
  o.array(TABLE.size);
  for (const spec of TABLE.values()) commandInfo(o, spec);
}

const commandSubs = container('command', {
  count: { arity: 2, help: ['COUNT', 'How many commands this server has.'], run: (_cx, c) => c.out.int(TABLE.size) },
  list: {
    arity: -2,
    help: ['LIST', 'The names of all commands of this server.'],
    run: (_cx, c, argv) => {
      // Redis's FILTERBY is not served
      if (argv.length > 2) return c.out.error(ERR_SYNTAX);
      c.out.array(TABLE.size);
      for (const name of TABLE.keys()) c.out.bulkText(name);
    },
  },
  info: {
    arity: -2,
    help: ['INFO [<command-name> ...]', 'Details of the named commands (of all of them without names); nil for a name it does not know.'],
    run: (_cx, c, argv) => {
      if (argv.length === 2) return allCommands(c.out);
      c.out.array(argv.length - 2);
      for (let i = 2; i < argv.length; i++) {
        const spec = TABLE.get(lower(argv[i]));
        // a nil bulk in RESP2 ($-1, not *-1), null in RESP3, as Redis 7
        if (spec === undefined) c.out.nil();
        else commandInfo(c.out, spec);
      }
    },
  },
  // no documentation is served: clients (redis-cli) fall back to their own
  docs: { arity: -2, help: ['DOCS [<command-name> ...]', 'An empty map: no documentation is served.'], run: (_cx, c) => c.out.map(0) },
});

const command: Run = (cx, c, argv) => (argv.length === 1 ? allCommands(c.out) : commandSubs(cx, c, argv));

/** One command's COMMAND INFO entry, in Redis 7's 10-field form. */
function commandInfo(o: ReplyWriter, s: CommandSpec): void {
  o.array(10);
  o.bulkText(s.name);
  o.int(s.arity);
  o.set(s.flags.length);
  for (const f of s.flags) o.simple(f);
  o.int(s.firstKey);
  o.int(s.lastKey);
  o.int(s.step);
  o.set(0); // ACL categories
  o.set(0); // tips
  o.array(0); // key specs
  o.array(0); // subcommands
}

// ── the table ───────────────────────────────────────────────────────────────────────────────────

const W = ['write'];
const WD = ['write', 'denyoom'];
const R = ['readonly', 'fast'];
const F = ['fast'];
const C = ['noscript', 'loading', 'stale'];


export const TABLE: ReadonlyMap<string, CommandSpec> = new Map(
  [
    spec('ping', -1, F, 0, 0, 0, ping),
    spec('echo', 2, F, 0, 0, 0, echo),
    spec('hello', -1, [...C, 'no-auth', 'fast'], 0, 0, 0, hello, true),
    spec('auth', -2, [...C, 'no-auth', 'fast'], 0, 0, 0, auth, true),
    spec('select', 2, [...C, 'fast'], 0, 0, 0, select),
    spec('client', -2, C, 0, 0, 0, client),
    spec('command', -1, C, 0, 0, 0, command),
    spec('config', -2, ['admin', ...C], 0, 0, 0, config),
    spec('info', -1, C, 0, 0, 0, info),
    spec('quit', -1, [...C, 'no-auth', 'fast'], 0, 0, 0, quit, true),
    spec('get', 2, R, 1, 1, 1, get),
    spec('set', -3, WD, 1, 1, 1, set),
    spec('setnx', 3, [...WD, 'fast'], 1, 1, 1, setnx),
    spec('getdel', 2, [...W, 'fast'], 1, 1, 1, getdel),
    spec('getex', -2, [...W, 'fast'], 1, 1, 1, getex),
    spec('mget', -2, R, 1, -1, 1, mget),
    spec('mset', -3, WD, 1, -1, 2, mset),
    spec('del', -2, W, 1, -1, 1, del),
    spec('unlink', -2, [...W, 'fast'], 1, -1, 1, del),
    spec('exists', -2, R, 1, -1, 1, exists),
    spec('incr', 2, [...WD, 'fast'], 1, 1, 1, incr),
    spec('decr', 2, [...WD, 'fast'], 1, 1, 1, decr),
    spec('incrby', 3, [...WD, 'fast'], 1, 1, 1, incrby),
    spec('decrby', 3, [...WD, 'fast'], 1, 1, 1, decrby),
    spec('incrbyfloat', 3, [...WD, 'fast'], 1, 1, 1, incrbyfloat),
    spec('append', 3, WD, 1, 1, 1, append),
    spec('strlen', 2, R, 1, 1, 1, strlen),
    spec('expire', -3, [...W, 'fast'], 1, 1, 1, expireCmd(1000, false, 'expire')),
    spec('pexpire', -3, [...W, 'fast'], 1, 1, 1, expireCmd(1, false, 'pexpire')),
    spec('expireat', -3, [...W, 'fast'], 1, 1, 1, expireCmd(1000, true, 'expireat')),
    spec('pexpireat', -3, [...W, 'fast'], 1, 1, 1, expireCmd(1, true, 'pexpireat')),
    spec('persist', 2, [...W, 'fast'], 1, 1, 1, persist),
    spec('ttl', 2, R, 1, 1, 1, ttlCmd(false)),
    spec('pttl', 2, R, 1, 1, 1, ttlCmd(true)),
    spec('type', 2, R, 1, 1, 1, type),
    spec('dbsize', 1, R, 0, 0, 0, dbsize),
    spec('flushdb', -1, W, 0, 0, 0, flushdb),
    spec('scan', -2, ['readonly'], 0, 0, 0, scan),
    spec('keys', 2, ['readonly'], 0, 0, 0, keys),
    spec('multi', 1, ['noscript', 'loading', 'stale', 'fast'], 0, 0, 0, multi),
    spec('exec', 1, ['noscript', 'loading', 'stale', 'skip_slowlog'], 0, 0, 0, exec),
    spec('discard', 1, ['noscript', 'loading', 'stale', 'fast'], 0, 0, 0, discard),
    spec('watch', -2, ['noscript', 'loading', 'stale', 'fast'], 1, -1, 1, watch),
    spec('unwatch', 1, ['noscript', 'loading', 'stale', 'fast'], 0, 0, 0, unwatch),
    ...CP_SPECS,
  ].map((s) => [s.name, s]),
);

/** Redis's reply to a command it does not know, with the first arguments quoted: bytes, for ReplyWriter.errorBytes. */
export function unknownCommand(argv: Buffer[]): string {
  let args = '';
  for (let i = 1; i < argv.length && args.length < 128; i++) args += `'${echoed(argv[i], 128 - args.length)}' `;
  return `ERR unknown command '${echoed(argv[0], 128)}', with args beginning with: ${args}`;
}

/**
 * A command name of 1 to 6 bytes as one number: its length, then its bytes with A-Z lowered (at
 * most 3 + 48 bits: exact in a double); -1 for any other length. Every name in TABLE is lowercase
 * ASCII, so a name packs to a TABLE name's number exactly when `lower(name)` is that name.
 */
function packName(b: Buffer): number {
  const n = b.length;
  if (n === 0 || n > 6) return -1;
  let v = n;
  for (let i = 0; i < n; i++) {
    const c = b[i];
    v = v * 256 + (c >= 65 && c <= 90 ? c + 32 : c);
  }
  return v;
}

/** TABLE's names of up to 6 bytes (get, set, incr, del, ...) by packName: no string per request. */
const SHORT = new Map<number, CommandSpec>();
for (const [name, spec] of TABLE) if (name.length <= 6) SHORT.set(packName(Buffer.from(name, 'latin1')), spec);

/** The command spec for a request's name, or undefined. */
export function lookup(name: Buffer): CommandSpec | undefined {
  if (name.length <= 6) return SHORT.get(packName(name));
  return name.length > 32 ? undefined : TABLE.get(lower(name));
}

/** Whether argv satisfies the spec's (or a subcommand's) arity. */
export function arityOk(s: { arity: number }, argc: number): boolean {
  return s.arity >= 0 ? argc === s.arity : argc >= -s.arity;
}
