// The request parser, key mapping and glob matcher on their own.
import { describe, expect, it } from 'vitest';
import { RespParser } from '../../dist/resp/parser.js';
import { globMatch, keyBytes, keyOf } from '../../dist/resp/keys.js';
import { TABLE, lookup } from '../../dist/resp/commands.js';
import { isUtf8 } from 'node:buffer';
import { formatFloat, parseFloatText, parseInt64 } from '../../dist/updates.js';
import { req } from './helpers.js';

const LIMITS = { maxBulk: 1 << 20, maxMultibulk: 1000, queryBufferLimit: 4 << 20 };
const words = (out: Buffer[][]) => out.map((a) => a.map((b) => b.toString('latin1')));

describe('RespParser', () => {
  it('gives the same requests whatever the chunking, long bulks included', () => {
    const big = Buffer.alloc(200_000, 7);
    const stream = Buffer.concat([req('SET', 'k', big), Buffer.from('PING x\r\n'), req('GET', 'k'), req('ECHO', ''), Buffer.from('*0\r\n'), req('A', 'b', 'c')]);
    let seed = 3;
    const rnd = () => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) / 0x7fffffff);
    for (let round = 0; round < 40; round++) {
      const p = new RespParser(LIMITS, true);
      const out: Buffer[][] = [];
      for (let i = 0; i < stream.length; ) {
        const n = 1 + Math.floor(rnd() * (round < 20 ? 20 : 70_000));
        expect(p.feed(stream.subarray(i, i + n), out)).toBeUndefined();
        i += n;
      }
      expect(out.length).toBe(5);
      expect(out[0][2].equals(big)).toBe(true);
      expect(words(out.slice(1))).toEqual([['PING', 'x'], ['GET', 'k'], ['ECHO', ''], ['A', 'b', 'c']]);
      expect(p.buffered).toBe(0);
    }
  });

  it('splits inline requests with quotes and escapes', () => {
    const p = new RespParser(LIMITS, true);
    const out: Buffer[][] = [];
    expect(p.feed(Buffer.from('SET "a b" \'c\\\'d\' "\\x41\\n"\r\n\r\n'), out)).toBeUndefined();
    expect(words(out)).toEqual([['SET', 'a b', "c'd", 'A\n']]);
  });

  it('refuses a declared bulk over the limit before any of it arrives', () => {
    const p = new RespParser({ ...LIMITS, maxBulk: 10 }, true);
    expect(p.feed(Buffer.from('*2\r\n$3\r\nGET\r\n$11\r\n'), [])).toBe('Protocol error: invalid bulk length');
  });

  it('before authentication stops behind an AUTH or HELLO, and reads on with the limits it left', () => {
    const p = new RespParser(LIMITS, false);
    const out: Buffer[][] = [];
    const big = Buffer.alloc(20_000, 1);
    expect(p.feed(Buffer.concat([req('PING'), Buffer.from('auth pw\r\n'), req('SET', 'k', big)]), out)).toBeUndefined();
    expect(p.stopped).toBe(true);
    expect(words(out)).toEqual([['PING'], ['auth', 'pw']]);
    p.authenticated = true; // the AUTH ran and succeeded
    expect(p.feed(Buffer.alloc(0), out)).toBeUndefined();
    expect(p.stopped).toBe(false);
    expect(out[2][2].equals(big)).toBe(true);
    // still unauthenticated after it: the limits apply to what follows
    const q = new RespParser(LIMITS, false);
    expect(q.feed(Buffer.concat([req('HELLO', '3', 'AUTH', 'default', 'x'), req('SET', 'k', big)]), [])).toBeUndefined();
    expect(q.stopped).toBe(true);
    expect(q.feed(Buffer.alloc(0), [])).toBe('Protocol error: unauthenticated bulk length');
  });

  it('holds no more than what was sent for a huge declared bulk', () => {
    const p = new RespParser({ ...LIMITS, maxBulk: 512 << 20, queryBufferLimit: 1 << 30 }, true);
    expect(p.feed(Buffer.from('*2\r\n$3\r\nSET\r\n$500000000\r\nabc'), [])).toBeUndefined();
    expect(p.buffered).toBeLessThan(100);
  });
});

describe('keys and glob', () => {
  it('maps byte keys to grid keys one to one, text keys to themselves', () => {
    const samples = [Buffer.from('user:1'), Buffer.from('héllo'), Buffer.from([0xff, 0xfe]), Buffer.from([0xc3]), Buffer.from('Ã'), Buffer.from([0xef, 0xbf, 0xbf, 0x41]), Buffer.from('')];
    const seen = new Set<string>();
    for (const b of samples) {
      const k = keyOf(b);
      expect(keyBytes(k).equals(b)).toBe(true);
      seen.add(k);
    }
    expect(seen.size).toBe(samples.length);
    expect(keyOf(Buffer.from('héllo'))).toBe('héllo');
  });

  it('maps keys as UTF-8 text or marked bytes, whichever path (ASCII scan or isUtf8) reads them', () => {
    // the definition, as the reference: bytes are marked when they are not UTF-8, or when their
    // text is U+FFFF followed by the latin1 spelling of marked bytes (the marked form of those)
    const marked = (b: Buffer): boolean => !isUtf8(b) || (b.length >= 3 && b[0] === 0xef && b[1] === 0xbf && b[2] === 0xbf && /^[\x00-\xff]*$/.test(b.toString('utf8', 3)) && marked(Buffer.from(b.toString('utf8', 3), 'latin1')));
    const reference = (b: Buffer) => (marked(b) ? '\uffff' + b.toString('latin1') : b.toString('utf8'));
    let seed = 11;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const pools = [[0, 0x20, 0x41, 0x7a, 0x7f], [0x41, 0x61, 0xc3, 0xa9, 0xef, 0xbf, 0xff, 0x80]];
    for (let round = 0; round < 3000; round++) {
      const len = [0, 1, 3, 127, 128, 129, 200][rnd(7)];
      const pool = pools[rnd(2)];
      const b = Buffer.alloc(len);
      for (let i = 0; i < len; i++) b[i] = pool[rnd(pool.length)];
      if (round % 5 === 0 && len >= 3) b.set([0xef, 0xbf, 0xbf], 0);
      expect(keyOf(b)).toBe(reference(b));
      expect(keyBytes(keyOf(b)).equals(b)).toBe(true);
    }
  });

  it('maps every grid key to bytes and back: keys the library made that start with U+FFFF too', () => {
    // library keys starting with U+FFFF (the mark) came back through SCAN as other keys' bytes
    // ('\uffffabc' as 'abc'), and their own UTF-8 reached another grid key
    const libraryKeys = ['\uffffabc', '\uffff', '\uffff\uffff', '\uffff\u0100', '\uffffé', '\uffff\u00ef\u00bf\u00bfa', '\uffff\u00ff', '\uffff😀', 'plain', 'é', ''];
    const bytes = new Set<string>();
    for (const k of libraryKeys) {
      const b = keyBytes(k);
      expect(keyOf(b), JSON.stringify(k)).toBe(k);
      bytes.add(b.toString('hex'));
    }
    expect(bytes.size).toBe(libraryKeys.length);
    // a key the library made that is not the marked form of any bytes reads as its own UTF-8
    expect(keyBytes('\uffffabc').equals(Buffer.from('\uffffabc', 'utf8'))).toBe(true);
    expect(keyOf(Buffer.from('\uffffxyz', 'utf8'))).toBe('\uffffxyz');
    // random strings of marks, latin1 letters and others, and random bytes: both ways, one to one
    let seed = 5;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    const chars = ['\uffff', 'a', '\u00ef', '\u00bf', '\u00c3', '\u00ff', '\u0080', 'é', '\u0100', '😀'];
    const pool = [0xef, 0xbf, 0xc3, 0xaf, 0xc2, 0x61, 0xff, 0x80];
    for (let round = 0; round < 5000; round++) {
      let k = rnd(2) === 0 ? '\uffff' : '';
      for (let n = rnd(8); n > 0; n--) k += chars[rnd(chars.length)];
      expect(keyOf(keyBytes(k)), JSON.stringify(k)).toBe(k);
      const b = Buffer.from(Array.from({ length: rnd(12) }, (_, i) => (i < 3 && round % 2 === 0 ? [0xef, 0xbf, 0xbf][i] : pool[rnd(pool.length)])));
      expect(keyBytes(keyOf(b)).equals(b), b.toString('hex')).toBe(true);
    }
  });

  it('maps a long key of nested marks in linear time', () => {
    // U+FFFF then the latin1 spelling of U+FFFF's bytes, nested: each level doubles the high bytes
    let b = Buffer.from('x');
    while (b.length < 3_000_000) b = Buffer.concat([Buffer.from([0xef, 0xbf, 0xbf]), Buffer.from(b.toString('latin1'), 'utf8')]);
    const t = performance.now();
    const k = keyOf(b);
    expect(keyBytes(k).equals(b)).toBe(true);
    expect(performance.now() - t).toBeLessThan(2000);
  });

  it('looks commands up by name in any letter case, and nothing else', () => {
    const reference = (b: Buffer) => (b.length > 32 ? undefined : TABLE.get(b.toString('latin1').toLowerCase()));
    let seed = 5;
    const rnd = (n: number) => (seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n;
    for (const name of TABLE.keys()) {
      const mixed = Buffer.from([...name].map((ch) => (rnd(2) === 0 ? ch.toUpperCase() : ch)).join(''), 'latin1');
      expect(lookup(mixed)).toBe(TABLE.get(name));
      expect(lookup(Buffer.from(name.toUpperCase(), 'latin1'))).toBe(TABLE.get(name));
    }
    // near misses: a letter changed, bytes beside A-Z (@ [ ` {), latin1 capitals, NUL, lengths 0..8
    const near = [0x40, 0x5b, 0x60, 0x7b, 0xc0, 0xc9, 0xe9, 0, 0x47, 0x67, 0x45, 0x54, 0x73, 0x65, 0x74];
    for (let round = 0; round < 20000; round++) {
      const b = Buffer.alloc(rnd(9));
      for (let i = 0; i < b.length; i++) b[i] = near[rnd(near.length)];
      expect(lookup(b)).toBe(reference(b));
    }
    expect(lookup(Buffer.from('gEt'))?.name).toBe('get');
    expect(lookup(Buffer.from('ge'))).toBeUndefined();
    expect(lookup(Buffer.from('get\u0000', 'latin1'))).toBeUndefined();
    expect(lookup(Buffer.from('\u0000get', 'latin1'))).toBeUndefined();
    expect(lookup(Buffer.from('\u0000\u0000del', 'latin1'))).toBeUndefined();
  });

  it('matches Redis glob patterns', () => {
    const m = (p: string, s: string) => globMatch(Buffer.from(p), Buffer.from(s));
    expect(m('*', '')).toBe(true);
    expect(m('h?llo', 'hello')).toBe(true);
    expect(m('h*llo', 'heeeello')).toBe(true);
    expect(m('h[ae]llo', 'hallo')).toBe(true);
    expect(m('h[^e]llo', 'hello')).toBe(false);
    expect(m('h[a-b]llo', 'hbllo')).toBe(true);
    expect(m('h\\*llo', 'h*llo')).toBe(true);
    expect(m('h\\*llo', 'hello')).toBe(false);
    expect(m('a*b*c', 'axxbyyc')).toBe(true);
    expect(m('a*b*c', 'axxbyy')).toBe(false);
    // many stars against a long non-matching key: linear, not exponential
    expect(m('*a*a*a*a*a*a*a*a*a*a*b', 'a'.repeat(5000))).toBe(false);
  });

  it('reads integers and prints floats as Redis does', () => {
    expect(parseInt64(Buffer.from('-0'))).toBeUndefined();
    expect(parseInt64(Buffer.from('007'))).toBeUndefined();
    expect(parseInt64(Buffer.from('9223372036854775808'))).toBeUndefined();
    expect(parseInt64(Buffer.from('-9223372036854775808'))).toBe(-(2n ** 63n));
    expect(formatFloat(1e21)).toBe('1000000000000000000000');
    expect(formatFloat(1e-7)).toBe('0.0000001');
    expect(formatFloat(10.6)).toBe('10.6');
  });

  it("takes a float text only within a long double's range and 5119 characters, as Redis's string2ld does; between a double's range and that, 0 or Infinity", () => {
    // each boundary checked against redis-server 7.0.15's INCRBYFLOAT: undefined where it answered "not a valid float";
    // these were 0 (under the range) and Infinity (over it), and a text of 5120 characters was read
    const f = (s: string) => parseFloatText(Buffer.from(s, 'latin1'));
    for (const bad of ['1e-5000', '-1e-5000', '1.8e-4951', '1e-99999999999999999999999', '0x1p-16446', '1e5000', '-1e4933', '1.18973149535723176508e4932',
      '0x1p16384', '0x1.ffffffffffffffffp16383', `1.${'0'.repeat(5118)}`]) {
      expect(f(bad), bad.slice(0, 40)).toBeUndefined();
    }
    // a long double holds these (the smallest subnormal is 2^-16445, about 3.65e-4951; the largest value about 1.18973e4932)
    for (const [text, v] of [['1.83e-4951', 0], ['0x1p-16445', 0], ['0x1.0000000000000002p-16446', 0], ['1e-400', 0], ['-1e-400', -0], ['0e-99999', 0],
      ['1.1897314953572317650e4932', Infinity], ['0x1.fffffffffffffffep16383', Infinity], ['-1e400', -Infinity], [`1.${'0'.repeat(5117)}`, 1]] as Array<[string, number]>) {
      expect(f(text), text.slice(0, 40)).toBe(v);
    }
  });

  it('reads a hexadecimal float as the nearest double, ties to even, subnormals and overflow included', () => {
    const f = (s: string) => parseFloatText(Buffer.from(s, 'latin1'));
    // the exact value of m × 2^e in decimal: JavaScript's Number() of it is the correctly rounded double
    const exact = (m: bigint, e: number): string => {
      if (e >= 0) return (m << BigInt(e)).toString();
      const digits = (m * 5n ** BigInt(-e)).toString().padStart(-e + 1, '0');
      return `${digits.slice(0, e)}.${digits.slice(e)}`;
    };
    expect(f('0x10')).toBe(16);
    expect(f('-0x1.8p1')).toBe(-3);
    expect(f('0x.8')).toBe(0.5);
    expect(f('0x1P-2')).toBe(0.25);
    expect(Object.is(f('-0x0'), -0)).toBe(true);
    expect(f('0x1.00000000000008p0')).toBe(1); // 1 + 2^-53: halfway, to the even 1
    expect(f('0x1.00000000000018p0')).toBe(1 + 2 ** -51); // 1 + 3·2^-53: halfway, to the even side
    expect(f('0x1.000000000000081p0')).toBe(1 + 2 ** -52); // just above halfway
    expect(f('0x1p-1074')).toBe(5e-324);
    expect(f('0x1p-1075')).toBe(0); // halfway between 0 and the smallest subnormal: to 0
    expect(f('0x1.8p-1075')).toBe(5e-324);
    expect(f('0x1.fffffffffffffp1023')).toBe(Number.MAX_VALUE);
    expect(f('0x1.fffffffffffff8p1023')).toBe(Infinity); // rounds up past the largest double
    // past a long double's range (Redis reads with strtold: ERANGE) the text is not a valid float
    expect(f('0x1p99999999999999999999')).toBeUndefined();
    expect(f(`0x${'0'.repeat(4000)}1p-99999999999`)).toBeUndefined();
    for (const bad of ['0x', '0x.', '0xp1', '0x1p', '0x1p+', ' 0x1', '0x1 ', '0x1.2.3', '0xg', 'x10', '0x-1', 'nan', '-nan']) expect(f(bad), bad).toBeUndefined();
    let seed = 11;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) & 0x7fffffff) % n);
    for (let i = 0; i < 3000; i++) {
      const digits = Array.from({ length: 1 + rnd(30) }, () => '0123456789abcdef'[rnd(16)]).join('');
      const point = rnd(digits.length + 1);
      const p = rnd(2400) - 1200 + (rnd(4) === 0 ? -1100 : 0);
      const text = `0x${digits.slice(0, point)}.${digits.slice(point)}p${p}`;
      const m = BigInt(`0x${digits}`);
      const want = Number(exact(m, p - 4 * (digits.length - point)));
      expect(f(text), text).toBe(want);
    }
  });
});
