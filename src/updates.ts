/**
 * Named atomic updates of one entry seen as a byte string: the read-modify-write commands of the
 * RESP endpoint (SET NX/XX/GET/KEEPTTL, GETDEL, GETEX, INCR*, INCRBYFLOAT, APPEND, EXPIRE,
 * PERSIST). GridMap.updateBytes runs one of them under the key's partition lock, so nothing
 * interleaves between its read and its write (as a Redis command on its single thread); in a
 * cluster RoutedMap sends the name and the argument to the key's primary, which runs it there and
 * replicates the result like any write.
 *
 * Only names travel: a peer picks one of the functions below, never code. Arguments come from
 * this process's RESP layer or from an authenticated member, and are still checked here (shape
 * and type) before use. Pure: imports nothing.
 */

/** What an update does to the entry. */
export const KEEP = 0;
export const PUT = 1;
export const DEL = 2;
/** Only the expiry changes: the value keeps its bytes and its type (a library object stays one). */
export const RETIME = 3;

/**
 * An update's reply, msgpack-safe (it crosses the wire and is recorded for retries):
 * ['i', decimal integer], ['b', bytes or null], ['e', error text as Redis words it].
 */
export type UpdateReply = ['i', string] | ['b', Uint8Array | null] | ['e', string];

export interface UpdateResult {
  write: typeof KEEP | typeof PUT | typeof DEL | typeof RETIME;
  /** The new value (PUT). */
  value?: Uint8Array;
  /** The new absolute expiry in ms since the epoch, 0 for none (PUT, RETIME). */
  expiresAt?: number;
  reply: UpdateReply;
}

/**
 * `cur`: the entry's current value as bytes (undefined when absent or expired); `exp`: its
 * absolute expiry (0: none); `arg`: the update's argument; `now`: Date.now() under the lock.
 */
export type ByteUpdate = (cur: Uint8Array | undefined, exp: number, arg: unknown, now: number) => UpdateResult;

export const ERR_NOT_INTEGER = 'ERR value is not an integer or out of range';
export const ERR_NOT_FLOAT = 'ERR value is not a valid float';
export const ERR_OVERFLOW = 'ERR increment or decrement would overflow';
export const ERR_NAN = 'ERR increment would produce NaN or Infinity';

const INT64_MIN = -(2n ** 63n);
const INT64_MAX = 2n ** 63n - 1n;
/** Redis's string2ll: optional '-', no '+', no leading zeros, no spaces; "-0" is not an integer. */
const INT64_TEXT = /^(?:0|-?[1-9][0-9]{0,18})$/;
/** What Redis's strtold-based parser takes for INCRBYFLOAT in decimal, and inf; no spaces, no nan. */
const FLOAT_TEXT = /^[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$|^[-+]?inf(?:inity)?$/i;
/** strtold's hexadecimal form, which Redis takes too: `0x10` (16), `-0x1.8p1` (-3), `0x.8` (0.5). */
const HEX_FLOAT_TEXT = /^([-+]?)0x([0-9a-f]*)(?:\.([0-9a-f]*))?(?:p([-+]?[0-9]+))?$/i;
/** Longest text either parser looks at (Redis: MAX_LONG_DOUBLE_CHARS). */
const MAX_NUMBER_TEXT = 5 * 1024;

const latin1 = (b: Uint8Array, max: number): string | undefined =>
  b.length > max ? undefined : Buffer.from(b.buffer, b.byteOffset, b.length).toString('latin1');

/** The int64 a byte string holds as Redis reads it, or undefined. */
export function parseInt64(b: Uint8Array): bigint | undefined {
  const s = latin1(b, 20);
  if (s === undefined || !INT64_TEXT.test(s)) return undefined;
  const n = BigInt(s);
  return n < INT64_MIN || n > INT64_MAX ? undefined : n;
}

/** The float a byte string holds as INCRBYFLOAT reads it, or undefined. */
export function parseFloatText(b: Uint8Array): number | undefined {
  // Redis copies the text into a buffer of MAX_LONG_DOUBLE_CHARS with its NUL: 5119 characters at most
  const s = latin1(b, MAX_NUMBER_TEXT - 1);
  if (s === undefined) return undefined;
  if (!FLOAT_TEXT.test(s)) return hexFloat(s);
  const t = s.toLowerCase();
  if (t.endsWith('inf') || t.endsWith('infinity')) return t.startsWith('-') ? -Infinity : Infinity;
  const x = Number(s);
  return (x === 0 || !Number.isFinite(x)) && pastLongDouble(s) ? undefined : x;
}

/**
 * Past a long double's range, where Redis's strtold sets ERANGE and the text is not a valid float:
 * a decimal whose value rounds to zero there (below half of 2^-16445, the smallest subnormal; its
 * digits are not all zeros) or to infinity (from (2^65 - 1) × 2^16319, LDBL_MAX plus half its
 * last place). Called for texts a double reads as 0 or ±Infinity: between the two ranges Redis
 * still computes (1e-400 is a tiny number, too small for the 17 decimals it prints; 1e400 is refused
 * here as the infinity it is in a double, README "RESP").
 */
function pastLongDouble(s: string): boolean {
  const m = /^[-+]?([0-9]*)\.?([0-9]*)(?:e([-+]?[0-9]+))?$/i.exec(s)!;
  const all = (m[1] + m[2]).replace(/^0+/, '');
  const digits = all.replace(/0+$/, '');
  if (digits === '') return false; // a zero, written as one
  // the value is D × 10^e, in [10^(mag-1), 10^mag); an exponent past ±10^6 decides by its sign alone
  const e = Math.max(-1e6, Math.min(1e6, Number(m[3] ?? 0))) - m[2].length + (all.length - digits.length);
  const mag = digits.length + e;
  const d = BigInt(digits);
  if (mag <= -4951) return true;
  if (mag === -4950) return d * 2n ** 16446n <= 10n ** BigInt(-e); // [1e-4951, 1e-4950) holds 2^-16446
  if (mag >= 4934) return true;
  if (mag === 4933) return e >= 0 ? d * 10n ** BigInt(e) >= LD_OVERFLOW : d >= LD_OVERFLOW * 10n ** BigInt(-e); // [1e4932, 1e4933) holds the threshold
  return false;
}

/** Where a long double's rounding reaches infinity: LDBL_MAX, (2^64 - 1) × 2^16320, plus half of its last place. */
const LD_OVERFLOW = (2n ** 65n - 1n) * 2n ** 16319n;

/**
 * A hexadecimal float (HEX_FLOAT_TEXT: at least one digit) as the nearest double, or undefined.
 * Its digits are an integer m, the value m × 2^e (e: the p exponent less 4 per fraction digit).
 * m is rounded to the bits the result can hold (53, fewer for a subnormal; ties to even), then
 * scaled by a power of two, which is exact. Past the largest double: ±Infinity, as "1e400" is;
 * past a long double's range (pastLongDouble), undefined.
 */
function hexFloat(s: string): number | undefined {
  const h = HEX_FLOAT_TEXT.exec(s);
  if (h === null) return undefined;
  const int = h[2];
  const frac = h[3] ?? '';
  if (int.length + frac.length === 0) return undefined;
  const sign = h[1] === '-' ? -1 : 1;
  let m = BigInt(`0x0${int}${frac}`);
  if (m === 0n) return sign * 0;
  // |exponent| is bounded so that the sum below stays exact; anything past ±100000 is 0 or Infinity anyway
  const p = h[4] === undefined ? 0 : Math.max(-100_000, Math.min(100_000, Number(h[4])));
  let e = p - 4 * frac.length;
  const bits = m.toString(2).length;
  const top = bits + e; // the value is in [2^(top-1), 2^top)
  // a long double's limits (pastLongDouble): to zero at 2^-16446 and below (a tie goes to the even 0), to infinity from LD_OVERFLOW
  if (top < -16445 || (top === -16445 && (m & (m - 1n)) === 0n)) return undefined;
  if (top > 16384 || (top === 16384 && (e >= 0 ? m << BigInt(e) : m) >= (e >= 0 ? LD_OVERFLOW : LD_OVERFLOW << BigInt(-e)))) return undefined;
  if (top > 1024) return sign * Infinity;
  const keep = Math.min(53, top + 1074); // bits above 2^-1074, the smallest subnormal
  if (keep < 0) return sign * 0;
  const drop = bits - keep;
  if (drop > 0) {
    const rest = m & ((1n << BigInt(drop)) - 1n);
    const half = 1n << BigInt(drop - 1);
    m >>= BigInt(drop);
    if (rest > half || (rest === half && (m & 1n) === 1n)) m += 1n;
    e += drop;
  }
  return sign * Number(m) * 2 ** e;
}

/**
 * A double as INCRBYFLOAT replies it: the shortest text that reads back as the same double,
 * never in exponent form (Redis prints with "%.17Lf" and trims zeros; see native-notes.md).
 */
export function formatFloat(x: number): string {
  const s = String(x);
  if (!s.includes('e')) return s;
  if (Math.abs(x) >= 1) return BigInt(x).toString(); // integral: every double >= 2^53 is
  return x.toFixed(20).replace(/0+$/, '').replace(/\.$/, '');
}

/** A number entry (stored by the library API) as the byte string RESP shows. */
export function numberText(x: number): string {
  return Number.isInteger(x) && Math.abs(x) < 1e21 ? x.toFixed(0) : formatFloat(x);
}

const bytes = (s: string): Uint8Array => Buffer.from(s, 'latin1');
const isBytes = (x: unknown): x is Uint8Array => x instanceof Uint8Array;
const isTime = (x: unknown): x is number => typeof x === 'number' && Number.isSafeInteger(x) && x >= 0;
/** The map's default time to live, ms (0: none; the library takes fractions). */
const isTtl = (x: unknown): x is number => typeof x === 'number' && Number.isFinite(x) && x >= 0;
/**
 * The expiry of a value written without one of its own: the map's default ttl (0: none), as
 * map.set gives it (the fast path of a plain SET, MSET, SETNX, and every write of the library).
 * The default travels in the argument, so in a cluster it is the member's that took the command.
 */
const fresh = (ttl: number, now: number): number => (ttl > 0 ? now + ttl : 0);
const tuple = (a: unknown, n: number): unknown[] => {
  if (!Array.isArray(a) || a.length !== n) throw new TypeError('bad update argument');
  return a;
};

const keep = (reply: UpdateReply): UpdateResult => ({ write: KEEP, reply });
const bulk = (b: Uint8Array | undefined): UpdateReply => ['b', b ?? null];
const int = (n: number | bigint): UpdateReply => ['i', String(n)];

/** Conditions of SET. */
export const SET_ALWAYS = 0;
export const SET_NX = 1;
export const SET_XX = 2;

/** Conditions of EXPIRE (Redis 7: NX, XX, GT, LT). */
export const EXP_ALWAYS = 0;
export const EXP_NX = 1;
export const EXP_XX = 2;
export const EXP_GT = 3;
export const EXP_LT = 4;
/** XX and LT together (XX and GT is GT: GT never moves a key without an expiry). */
export const EXP_XX_LT = 5;

/** A write of `value` expiring at `expiresAt`, or a delete when that moment has passed (as Redis does). */
function store(value: Uint8Array, expiresAt: number, now: number, reply: UpdateReply): UpdateResult {
  if (expiresAt !== 0 && expiresAt <= now) return { write: DEL, reply };
  return { write: PUT, value, expiresAt, reply };
}

/** A new expiry for the value as it is, or a delete when that moment has passed. */
function retime(expiresAt: number, now: number, reply: UpdateReply): UpdateResult {
  if (expiresAt !== 0 && expiresAt <= now) return { write: DEL, reply };
  return { write: RETIME, expiresAt, reply };
}

/** [delta as decimal text, the map's default ttl] */
function incrBy(cur: Uint8Array | undefined, exp: number, arg: unknown, now: number): UpdateResult {
  const [d, ttl] = tuple(arg, 2);
  if (typeof d !== 'string' || !INT64_TEXT.test(d) || !isTtl(ttl)) throw new TypeError('bad increment');
  const old = cur === undefined ? 0n : parseInt64(cur);
  if (old === undefined) return keep(['e', ERR_NOT_INTEGER]);
  const n = old + BigInt(d);
  if (n < INT64_MIN || n > INT64_MAX) return keep(['e', ERR_OVERFLOW]);
  return store(bytes(n.toString()), cur === undefined ? fresh(ttl, now) : exp, now, int(n));
}

/**
 * [increment, the map's default ttl]. An infinite increment (`inf`, or a text past a double's range)
 * answers ERR_NAN, but only after the value was read as a float: a value that is not one answers
 * ERR_NOT_FLOAT first, as Redis reads the key's value before the increment.
 */
function incrByFloat(cur: Uint8Array | undefined, exp: number, arg: unknown, now: number): UpdateResult {
  const [d, ttl] = tuple(arg, 2);
  if (typeof d !== 'number' || Number.isNaN(d) || !isTtl(ttl)) throw new TypeError('bad increment');
  const old = cur === undefined ? 0 : parseFloatText(cur);
  if (old === undefined) return keep(['e', ERR_NOT_FLOAT]);
  const n = old + d;
  if (!Number.isFinite(n)) return keep(['e', ERR_NAN]);
  const text = bytes(formatFloat(n));
  return store(text, cur === undefined ? fresh(ttl, now) : exp, now, ['b', text]);
}

/**
 * [value, condition (SET_*), expiresAt (0: none given), keepTtl, get, the map's default ttl].
 * Without an expiry of its own the value takes the default (KEEPTTL: the key's own expiry, when
 * the key exists), as a plain SET does through map.set.
 */
function set(cur: Uint8Array | undefined, exp: number, arg: unknown, now: number): UpdateResult {
  const [v, cond, at, keepTtl, get, ttl] = tuple(arg, 6);
  if (!isBytes(v) || (cond !== SET_ALWAYS && cond !== SET_NX && cond !== SET_XX) || !isTime(at) || typeof keepTtl !== 'boolean' || typeof get !== 'boolean' || !isTtl(ttl)) {
    throw new TypeError('bad SET argument');
  }
  const ok = cond === SET_ALWAYS || (cond === SET_NX) === (cur === undefined);
  const reply: UpdateReply = get ? bulk(cur) : int(ok ? 1 : 0);
  if (!ok) return keep(reply);
  return store(v, keepTtl && cur !== undefined ? exp : at !== 0 ? at : fresh(ttl, now), now, reply);
}

function getdel(cur: Uint8Array | undefined): UpdateResult {
  return cur === undefined ? keep(bulk(undefined)) : { write: DEL, reply: bulk(cur) };
}

/** [mode: 0 keep the expiry | 1 set it | 2 persist, expiresAt] */
function getex(cur: Uint8Array | undefined, exp: number, arg: unknown, now: number): UpdateResult {
  const [mode, at] = tuple(arg, 2);
  if ((mode !== 0 && mode !== 1 && mode !== 2) || !isTime(at)) throw new TypeError('bad GETEX argument');
  if (cur === undefined || mode === 0 || (mode === 2 && exp === 0)) return keep(bulk(cur));
  return retime(mode === 2 ? 0 : at, now, bulk(cur));
}

/** [bytes, the map's default ttl] */
function append(cur: Uint8Array | undefined, exp: number, arg: unknown, now: number): UpdateResult {
  const [v, ttl] = tuple(arg, 2);
  if (!isBytes(v) || !isTtl(ttl)) throw new TypeError('bad APPEND argument');
  const next = cur === undefined ? v : Buffer.concat([cur, v]);
  return store(next, cur === undefined ? fresh(ttl, now) : exp, now, int(next.length));
}

/** [expiresAt, condition (EXP_*)] */
function expire(cur: Uint8Array | undefined, exp: number, arg: unknown, now: number): UpdateResult {
  const [at, cond] = tuple(arg, 2);
  if (typeof at !== 'number' || !Number.isSafeInteger(at) || typeof cond !== 'number') throw new TypeError('bad EXPIRE argument');
  if (cur === undefined) return keep(int(0));
  // Redis: no expiry counts as an infinite one for GT and LT
  const ok =
    cond === EXP_ALWAYS || (cond === EXP_NX && exp === 0) || (cond === EXP_XX && exp !== 0) ||
    (cond === EXP_GT && exp !== 0 && at > exp) || (cond === EXP_LT && (exp === 0 || at < exp)) || (cond === EXP_XX_LT && exp !== 0 && at < exp);
  if (!ok) return keep(int(0));
  if (at <= now) return { write: DEL, reply: int(1) };
  return { write: RETIME, expiresAt: at, reply: int(1) };
}

function persist(cur: Uint8Array | undefined, exp: number): UpdateResult {
  if (cur === undefined || exp === 0) return keep(int(0));
  return { write: RETIME, expiresAt: 0, reply: int(1) };
}

const UPDATES: ReadonlyMap<string, ByteUpdate> = new Map<string, ByteUpdate>([
  ['incrby', incrBy],
  ['incrbyfloat', incrByFloat],
  ['set', set],
  ['getdel', getdel],
  ['getex', getex],
  ['append', append],
  ['expire', expire],
  ['persist', persist],
]);

/** The update named `name`, or undefined. */
export function updateOf(name: unknown): ByteUpdate | undefined {
  return typeof name === 'string' ? UPDATES.get(name) : undefined;
}
