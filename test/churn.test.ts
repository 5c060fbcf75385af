import { describe, expect, it } from 'vitest';
import { ChurnMap, ChurnSet } from '../src/churn.js';
import { rng } from './nemesis/histgen.mjs';

/** The Map or Set a ChurnMap / ChurnSet holds now (a private field, read to see when it is swapped). */
const inner = (x: object): object => (x as unknown as { m?: object; s?: object }).m ?? (x as unknown as { s: object }).s;

describe('ChurnMap', () => {
  it('behaves as a Map through its swaps: same entries, values and insertion order', () => {
    for (const seed of [1, 2, 3]) {
      const r = rng(seed);
      const model = new Map<string, number>();
      const m = new ChurnMap<string, number>();
      let swaps = 0;
      let last = inner(m);
      for (let i = 0; i < 20_000; i++) {
        const k = `k${Math.floor(r() * 300)}`;
        const op = r();
        if (op < 0.5) {
          model.set(k, i);
          m.set(k, i);
        } else if (op < 0.95) {
          expect(m.delete(k)).toBe(model.delete(k));
        } else if (op < 0.999) {
          expect(m.get(k)).toBe(model.get(k));
          expect(m.has(k)).toBe(model.has(k));
        } else {
          model.clear();
          m.clear();
        }
        if (inner(m) !== last) {
          swaps++;
          last = inner(m);
        }
        expect(m.size).toBe(model.size);
      }
      expect([...m]).toEqual([...model]);
      expect([...m.values()]).toEqual([...model.values()]);
      // 10,000 sets (half the operations) at a few hundred entries: renewed about every 1,024
      expect(swaps).toBeGreaterThanOrEqual(5);
    }
  });

  it('renews a large map only after four times its size in inserts (the copies stay O(1) per insert)', () => {
    const m = new ChurnMap<number, number>();
    for (let i = 0; i < 10_000; i++) m.set(i, i);
    const before = inner(m);
    // 10,000 live entries: 39,999 inserts in all are not yet four times the size
    for (let i = 10_000; i < 39_999; i++) {
      m.set(i, i);
      m.delete(i);
    }
    expect(inner(m)).toBe(before);
    m.set(-1, -1);
    m.delete(-1);
    m.set(-2, -2);
    expect(inner(m)).not.toBe(before);
    expect(m.size).toBe(10_001);
    expect(m.get(9_999)).toBe(9_999);
  });
});

describe('ChurnSet', () => {
  it('behaves as a Set through its swaps', () => {
    const r = rng(7);
    const model = new Set<number>();
    const s = new ChurnSet<number>();
    let swaps = 0;
    let last = inner(s);
    for (let i = 0; i < 20_000; i++) {
      const x = Math.floor(r() * 200);
      const op = r();
      if (op < 0.5) {
        model.add(x);
        s.add(x);
      } else if (op < 0.97) {
        expect(s.delete(x)).toBe(model.delete(x));
      } else if (op < 0.999) {
        expect(s.has(x)).toBe(model.has(x));
      } else {
        model.clear();
        s.clear();
      }
      if (inner(s) !== last) {
        swaps++;
        last = inner(s);
      }
      expect(s.size).toBe(model.size);
    }
    for (let x = 0; x < 200; x++) expect(s.has(x)).toBe(model.has(x));
    expect(swaps).toBeGreaterThanOrEqual(5);
  });
});
