import { describe, expect, it } from 'vitest';
import { createGrid } from '../dist/index.js';
import { tryLock, unlock } from '../dist/sync/mutex.js';

interface Internals {
  ci: Int32Array;
  kpart: number;
  setKey(key: string, mapId: number): number;
  lockIndex(p: number): number;
  check(p: number): string[];
}

describe("a partition's hash table", () => {
  it('finds every present key and no deleted one through random inserts and deletes in one partition (tombstones turned back into empty slots)', async () => {
    const grid = await createGrid({ workers: 1, memory: '16MB' });
    try {
      const m = grid.map<string>('table');
      const st = grid.store as unknown as Internals;
      const mapId = (m as unknown as { id: number }).id;
      st.setKey('seed', mapId);
      const p = st.kpart;
      // 200 keys of one partition: its table grows to a few hundred slots, and keys share probe runs
      const keys: string[] = [];
      for (let i = 0; keys.length < 200; i++) {
        st.setKey(`t${i}`, mapId);
        if (st.kpart === p) keys.push(`t${i}`);
      }
      const model = new Map<string, string>();
      let seed = 12345;
      const rand = (n: number) => ((seed = (Math.imul(seed, 1664525) + 1013904223) >>> 0) % n);
      const li = st.lockIndex(p);
      for (let op = 0; op < 20_000; op++) {
        const k = keys[rand(keys.length)];
        if (rand(3) === 0) {
          expect(m.deleteSync(k)).toBe(model.delete(k));
        } else {
          const v = `${k}:${op}`;
          m.setSync(k, v);
          model.set(k, v);
        }
        if (op % 500 === 499) {
          for (const key of keys) expect(m.getSync(key)).toBe(model.get(key));
          expect(tryLock(st.ci, li)).toBe(true);
          try {
            expect(st.check(p)).toEqual([]);
          } finally {
            unlock(st.ci, li);
          }
        }
      }
      expect(grid.stats().partitions[p].entries).toBe(model.size);
    } finally {
      await grid.close();
    }
  });
});
