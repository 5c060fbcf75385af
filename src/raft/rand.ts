/**
 * A small seeded PRNG (mulberry32) so the core and the simulation are reproducible from a seed:
 * the same seed and inputs give the same outputs, byte for byte. Not for anything secret.
 */
export class Rand {
  private s: number;
  constructor(seed: number) { this.s = seed >>> 0; }
  /** uniform in [0, 2^32) */
  u32(): number {
    this.s = (this.s + 0x6d2b79f5) >>> 0;
    let t = this.s;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }
  /** uniform in [0, 1) */
  float(): number { return this.u32() / 4294967296; }
  /** uniform integer in [lo, hi) */
  int(lo: number, hi: number): number { return lo + Math.floor(this.float() * (hi - lo)); }
  chance(p: number): boolean { return this.float() < p; }
  pick<T>(xs: readonly T[]): T { return xs[this.int(0, xs.length)]; }
}

/** FNV-1a over a string, to fold an id into a seed. */
export function hashString(s: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < s.length; i++) h = Math.imul(h ^ s.charCodeAt(i), 0x01000193);
  return h >>> 0;
}

/** Mixes two 32-bit values into a seed (splitmix-style finaliser). */
export function mixSeed(a: number, b: number): number {
  let h = (Math.imul(a >>> 0, 0x9e3779b1) ^ (b >>> 0)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}
