// The request records a primary keeps per key while their replication runs (replicas.ts Held):
// one record in two fields, a Map once a second write of the key is in flight. Every state the
// primary ships for the key carries them all (`rs`), so their answers must match a plain Map's.
import { describe, expect, it } from 'vitest';
import { Held } from '../../dist/cluster/replicas.js';

describe('Held request records', () => {
  it('answers as a Map of id → result would, through one record, many, and back to none', () => {
    let seed = 99;
    const rnd = (n: number) => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) % n);
    for (let round = 0; round < 200; round++) {
      const ref = new Map<string, unknown>([['r0', 0]]);
      const h = new Held('r0', 0);
      for (let step = 0; step < 30 && ref.size > 0; step++) {
        const id = `r${rnd(5)}`;
        if (rnd(2) === 0) {
          h.add(id, step);
          ref.set(id, step);
        } else if (ref.has(id)) {
          ref.delete(id);
          expect(h.remove(id)).toBe(ref.size === 0);
        }
        if (ref.size === 0) break;
        expect(h.size).toBe(ref.size);
        for (let i = 0; i < 5; i++) expect(h.has(`r${i}`)).toBe(ref.has(`r${i}`));
        expect(new Map(h.entries())).toEqual(ref);
      }
    }
  });
});
