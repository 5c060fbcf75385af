// The (session, sequence) table of the CP driver (cp-driver.ts BySession): the same answers as a
// Map keyed by `${s}:${q}`, which it replaced, over random sets, deletes and lookups.
import { describe, expect, it } from 'vitest';
import { BySession } from '../../dist/cluster/metadata/cp-driver.js';

describe('BySession', () => {
  it('agrees with a string-keyed Map, sizes and values included', () => {
    let seed = 7;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    const t = new BySession<number>();
    const ref = new Map<string, number>();
    // session ids are stamps (index * 1024 + position): large, past 2^31 too
    const sessions = [1025, 2_147_484_672, 9_007_199_254_740, 3 * 1024 + 5];
    for (let step = 0; step < 20_000; step++) {
      const s = sessions[rnd(sessions.length)];
      const q = rnd(40);
      const k = `${s}:${q}`;
      const op = rnd(3);
      if (op === 0) {
        t.set(s, q, step);
        ref.set(k, step);
      } else if (op === 1) {
        t.delete(s, q);
        ref.delete(k);
      }
      expect(t.get(s, q)).toBe(ref.get(k));
      expect(t.has(s, q)).toBe(ref.has(k));
      expect(t.size).toBe(ref.size);
      if (step % 1000 === 0) expect([...t.values()].sort((a, b) => a - b)).toEqual([...ref.values()].sort((a, b) => a - b));
    }
    t.clear();
    expect(t.size).toBe(0);
    expect([...t.values()]).toEqual([]);
  });
});
