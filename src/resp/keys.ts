/**
 * Redis keys are byte strings; grid keys are JS strings (well-formed UTF-16) stored as UTF-8. The
 * mapping between them must be one-to-one both ways and match the library for text keys: a key
 * whose bytes are valid UTF-8 is the string they spell (so `grid.map('default').get('user:1')`
 * sees the key a Redis client set); any other key is *marked*: BINARY_MARK (U+FFFF, a
 * noncharacter) followed by its bytes as latin1 characters.
 *
 * The marked forms are strings too, and the library may make any string: so a text key that is
 * itself the marked form of some bytes (U+FFFF, then latin1 characters spelling marked bytes) is
 * marked as well, and a grid key is read as marked bytes exactly when it is such a marked form
 * (`markedForm`). Every other key, U+FFFF first or not, is its UTF-8: a key the library made,
 * such as '\uffffabc', is seen by SCAN as its own UTF-8 and reached by it (it used to be read as
 * the marked form of 'abc', so SCAN showed 'abc', another key, and its own bytes reached nothing).
 * Bytes → key → bytes and key → bytes → key are both the identity.
 */
import { isUtf8 } from 'node:buffer';

const BINARY_MARK = '\uffff';

/** Buffer's own latin1 decoder (what toString('latin1') calls after its argument checks). */
interface Latin1Slicer {
  latin1Slice(start: number, end: number): string;
}

/** Keys up to this long are checked for ASCII in JavaScript (cheaper than a native isUtf8 call). */
const ASCII_SCAN_MAX = 128;

const startsWithMark = (b: Buffer): boolean => b.length >= 3 && b[0] === 0xef && b[1] === 0xbf && b[2] === 0xbf;
const LATIN1 = /^[\x00-\xff]*$/;

/**
 * Whether bytes `b` are stored marked: they are not UTF-8, or their text is U+FFFF followed by
 * latin1 characters whose bytes are marked (the marked form of those shorter bytes). A loop over
 * the nested forms: each level has at most half the high bytes of the one before, so a few levels
 * at most, linear in all.
 */
function marked(b: Buffer): boolean {
  for (;;) {
    if (!isUtf8(b)) return true;
    if (!startsWithMark(b)) return false;
    const rest = b.toString('utf8', 3);
    if (!LATIN1.test(rest)) return false;
    b = Buffer.from(rest, 'latin1');
  }
}

/** Whether grid key `k` is the marked form of some bytes (U+FFFF, then latin1 characters spelling marked bytes). */
function markedForm(k: string): boolean {
  if (!k.startsWith(BINARY_MARK)) return false;
  const rest = k.slice(1);
  return LATIN1.test(rest) && marked(Buffer.from(rest, 'latin1'));
}

export function keyOf(b: Buffer): string {
  const n = b.length;
  if (n <= ASCII_SCAN_MAX) {
    let i = 0;
    while (i < n && b[i] < 0x80) i++;
    // ASCII (nearly every key): its latin1 text is its UTF-8 text, and it cannot start with the mark
    if (i === n) return (b as unknown as Latin1Slicer).latin1Slice(0, n);
  }
  if (isUtf8(b) && !(startsWithMark(b) && marked(b))) return b.toString('utf8');
  return BINARY_MARK + b.toString('latin1');
}

/**
 * keyOf of a key argument, or undefined when its stored form would be over `maxKeyBytes` UTF-8
 * bytes: such a key can never exist. The length is checked before anything is decoded (a stored
 * key is never shorter than its bytes); a key that is not UTF-8 is stored marked, one char per
 * byte after U+FFFF, and so may be longer stored than sent.
 */
export function keyIn(b: Buffer, maxKeyBytes: number): string | undefined {
  if (b.length > maxKeyBytes) return undefined;
  const k = keyOf(b);
  return k.charCodeAt(0) === 0xffff && Buffer.byteLength(k, 'utf8') > maxKeyBytes ? undefined : k;
}

export function keyBytes(k: string): Buffer {
  return markedForm(k) ? Buffer.from(k.slice(1), 'latin1') : Buffer.from(k, 'utf8');
}

/**
 * Redis's glob (SCAN MATCH, KEYS): `*`, `?`, `[abc]`, `[^a]`, `[a-z]`, `\x` escapes, on bytes.
 * Iterative with one backtrack point (the last `*`), so a pattern of many stars costs
 * O(pattern × key) rather than the exponential time of a naive recursive matcher.
 */
export function globMatch(pat: Buffer, s: Buffer): boolean {
  let p = 0;
  let i = 0;
  let starP = -1;
  let starI = 0;
  while (i < s.length) {
    if (p < pat.length) {
      const c = pat[p];
      if (c === 42) {
        // '*': remember where, try matching nothing first
        while (p < pat.length && pat[p] === 42) p++;
        if (p === pat.length) return true;
        starP = p;
        starI = i;
        continue;
      }
      const step = matchOne(pat, p, s[i]);
      if (step > 0) {
        p += step;
        i++;
        continue;
      }
    }
    if (starP < 0) return false;
    p = starP;
    i = ++starI;
  }
  while (p < pat.length && pat[p] === 42) p++;
  return p === pat.length;
}

/** Whether the pattern element at `p` matches byte `c`: its length in the pattern, or 0. */
function matchOne(pat: Buffer, p: number, c: number): number {
  const x = pat[p];
  if (x === 63) return 1; // '?'
  if (x === 92 && p + 1 < pat.length) return pat[p + 1] === c ? 2 : 0; // '\x'
  if (x !== 91) return x === c ? 1 : 0; // literal
  // '[...]'
  let q = p + 1;
  const not = q < pat.length && pat[q] === 94;
  if (not) q++;
  let hit = false;
  while (q < pat.length && pat[q] !== 93) {
    if (pat[q] === 92 && q + 1 < pat.length) {
      if (pat[q + 1] === c) hit = true;
      q += 2;
    } else if (q + 2 < pat.length && pat[q + 1] === 45 && pat[q + 2] !== 93) {
      let lo = pat[q];
      let hi = pat[q + 2];
      if (lo > hi) [lo, hi] = [hi, lo];
      if (c >= lo && c <= hi) hit = true;
      q += 3;
    } else {
      if (pat[q] === c) hit = true;
      q++;
    }
  }
  // an unclosed '[' matches up to the end of the pattern, as in Redis
  const len = (q < pat.length ? q + 1 : q) - p;
  return hit !== not ? len : 0;
}
