/**
 * The fixed-seed key hash every thread and every member computes identically.
 * MurmurHash3 (x86, 32-bit) over the key's UTF-8 bytes, seed HASH_SEED.
 * partition = hash mod partitionCount (unsigned).
 */
export const HASH_SEED = 0x5eed5eed;

export function murmur3(bytes: Uint8Array, len: number, seed: number): number {
  let h = seed | 0;
  const nblocks = len & ~3;
  let i = 0;
  for (; i < nblocks; i += 4) {
    let k = bytes[i] | (bytes[i + 1] << 8) | (bytes[i + 2] << 16) | (bytes[i + 3] << 24);
    h = mixBlock(h, k);
  }
  const rest = len & 3;
  if (rest !== 0) {
    let k = bytes[i];
    if (rest > 1) k |= bytes[i + 1] << 8;
    if (rest > 2) k |= bytes[i + 2] << 16;
    h ^= mixK(k);
  }
  h ^= len;
  return fmix32(h);
}

/**
 * murmur3 of an all-ASCII string straight from its char codes (its UTF-8 bytes are its char
 * codes), with no encoding pass. Returns the same hash as murmur3 over the UTF-8 bytes, or -1
 * when the string holds a non-ASCII character (the caller then encodes it).
 */
export function murmur3Ascii(s: string, seed: number): number {
  const len = s.length;
  let h = seed | 0;
  const nblocks = len & ~3;
  let i = 0;
  let any = 0;
  for (; i < nblocks; i += 4) {
    const c0 = s.charCodeAt(i);
    const c1 = s.charCodeAt(i + 1);
    const c2 = s.charCodeAt(i + 2);
    const c3 = s.charCodeAt(i + 3);
    any |= c0 | c1 | c2 | c3;
    let k = c0 | (c1 << 8) | (c2 << 16) | (c3 << 24);
    h = mixBlock(h, k);
  }
  const rest = len & 3;
  if (rest !== 0) {
    let k = s.charCodeAt(i);
    any |= k;
    if (rest > 1) {
      const c = s.charCodeAt(i + 1);
      any |= c;
      k |= c << 8;
    }
    if (rest > 2) {
      const c = s.charCodeAt(i + 2);
      any |= c;
      k |= c << 16;
    }
    h ^= mixK(k);
  }
  if (any >= 0x80) return -1;
  h ^= len;
  return fmix32(h);
}

/** The per-block key scramble of MurmurHash3 (small enough that V8 inlines it). */
function mixK(k: number): number {
  k = Math.imul(k, 0xcc9e2d51);
  k = (k << 15) | (k >>> 17);
  return Math.imul(k, 0x1b873593);
}

/** Folds one full 4-byte block into the running hash. */
function mixBlock(h: number, k: number): number {
  h ^= mixK(k);
  h = (h << 13) | (h >>> 19);
  return (Math.imul(h, 5) + 0xe6546b64) | 0;
}

export function fmix32(h: number): number {
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

export function partitionOf(hash: number, partitions: number): number {
  return (hash >>> 0) % partitions;
}

const scratch = new Uint8Array(4096);
/** Hash of a string key as every member computes it (UTF-8 bytes, HASH_SEED). */
export function hashKey(key: string): number {
  const bytes = Buffer.byteLength(key) <= scratch.length ? scratch : new Uint8Array(Buffer.byteLength(key));
  const n = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).write(key, 'utf8');
  return murmur3(bytes, n, HASH_SEED);
}
